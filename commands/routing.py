"""The department model's commands (README, "Routing"):

    python bot.py routing import FILE.csv --text-column content --department-column depart
                                 [--title-column title] [--date-column date]
                                 [--department-map OLD=NEW ...] [--department-map-file FILE]
                                          historic complaints with their departments become examples
    python bot.py routing eval [--csv FILE.csv ...] [--json]
                                          how well the model routes held-out examples
    python bot.py routing ask "TEXT"      the departments the model sees in a text, with probabilities

bot.py adds the parsers (`add_parsers`) and hands the actions to `run`; the model is in
knowledge/routing.py, its use by the router and the import in router/routing.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import progress
from commands.faq_import import read_department_map_file
from knowledge.routing import (
    DepartmentModel,
    ExamplesFileError,
    FileExample,
    NotEnoughExamples,
    read_examples_csv,
)
from router.routing import import_examples, parse_department_map
from store import Database, data, open_database, utcnow

if TYPE_CHECKING:
    from server.config import BotConfig

ACTIONS = frozenset({"import", "eval", "ask"})


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `routing` command and its `import`, `eval` and `ask` actions."""
    routing = sub.add_parser("routing", help="the department model learned from resolved tickets")
    actions = routing.add_subparsers(dest="action", required=True)

    imp = actions.add_parser(
        "import",
        help="add historic complaints with their departments (CSV) as examples",
        description="Add the rows of a CSV file (a header, then one complaint a row) as examples of the "
        "department model. A row whose department is not configured is skipped and counted, unless "
        "--department-map renames it; a row already imported is not added again.",
    )
    imp.add_argument("file", help="the CSV file")
    _csv_arguments(imp, required=True)

    ev = actions.add_parser(
        "eval",
        help="validate the model: precision and coverage at its threshold, top-1 and top-3",
        description="Learn the department model as the server does and report, on held-out examples "
        "(the newer half, each part predicted by a model of older examples; or five shuffled folds "
        "with `router.routing.validation: shuffled` or without dates), the threshold it chose, "
        "the share of texts it routes automatically "
        "(coverage), how many of those go to the right department (precision) and top-1 and top-3 "
        "accuracy. From the stored examples, or from a CSV file (its departments as written or mapped).",
    )
    ev.add_argument("--csv", dest="file", help="evaluate the rows of this CSV file instead of the store")
    _csv_arguments(ev, required=False)
    ev.add_argument("--target-precision", type=float, help="(default: router.routing.target_precision)")
    ev.add_argument("--json", action="store_true", help="print one JSON object")

    ask = actions.add_parser("ask", help="the departments the model sees in a text, with probabilities")
    ask.add_argument("text", nargs="+")
    ask.add_argument("--limit", type=int, default=5)


def _csv_arguments(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument("--text-column", required=required, help="the citizen's text")
    parser.add_argument("--title-column", help="a title, put before the text")
    parser.add_argument("--department-column", required=required, help="the department that handled it")
    parser.add_argument(
        "--date-column", help="when it was written (2020-11-30, 2020.11.30 ...; default: now)"
    )
    parser.add_argument(
        "--department-map",
        action="append",
        default=[],
        metavar="OLD=NEW",
        help="a department as written in the file -> a configured one (repeatable)",
    )
    parser.add_argument(
        "--department-map-file", metavar="FILE", help="a YAML file of `old name: department` lines"
    )
    parser.add_argument(
        "--encoding", default="utf-8-sig", help="utf-8, utf-8-sig (default), cp949 (Korean Excel)..."
    )


def run(config: BotConfig, base_dir: Path, args: argparse.Namespace) -> int:
    try:
        if args.action == "import":
            return asyncio.run(import_command(config, base_dir, args))
        if args.action == "eval":
            return asyncio.run(eval_command(config, base_dir, args))
        return asyncio.run(ask_command(config, base_dir, args))
    except ExamplesFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except NotEnoughExamples as exc:
        print(f"error: {exc}; `routing import` adds historic complaints", file=sys.stderr)
        return 1


def _mapping(args: argparse.Namespace, departments: list[str] | None) -> dict[str, str]:
    try:
        given = read_department_map_file(args.department_map_file) if args.department_map_file else {}
    except ValueError as exc:
        raise ExamplesFileError(str(exc)) from exc
    try:
        return parse_department_map(args.department_map, departments, given=given)
    except ValueError as exc:
        raise ExamplesFileError(f"--department-map {exc}") from exc


def _read(args: argparse.Namespace) -> tuple[list[FileExample], list[int]]:
    if not args.text_column or not args.department_column:
        raise ExamplesFileError("a CSV needs --text-column and --department-column")
    return read_examples_csv(
        Path(args.file),
        text_column=args.text_column,
        title_column=args.title_column,
        department_column=args.department_column,
        date_column=args.date_column,
        encoding=args.encoding,
    )


async def _open(config: BotConfig, base_dir: Path) -> Database:
    db = open_database(config.store, base_dir=base_dir)
    if config.store.migrate_on_start:
        await db.upgrade()
    return db


def learnable(config: BotConfig) -> list[str]:
    """The departments the router lets the model predict (not triage, not the restricted inbox)."""
    excluded = {config.router.triage_department, config.router.sensitive.department}
    return [name for name in config.departments if name not in excluded]


# --- routing import -----------------------------------------------------------------------------


async def import_command(config: BotConfig, base_dir: Path, args: argparse.Namespace) -> int:
    departments = list(config.departments)
    mapping = _mapping(args, departments)
    rows, empty = _read(args)
    db = await _open(config, base_dir)
    try:
        report = await import_examples(
            db,
            rows,
            departments=departments,
            mapping=mapping,
            origin=Path(args.file).name,
            now=utcnow(),
            progress=progress.terminal("storing examples", unit="row"),
        )
    finally:
        await db.close()
    print(
        f"{args.file}: {len(rows)} rows with a text; {report.added} examples added, "
        f"{report.already_there} already there"
    )
    for name, count in sorted(report.mapped.items(), key=lambda item: -item[1]):
        print(f"  {count:>5}  {name} -> {mapping[name]}")
    if empty:
        lines = ", ".join(map(str, empty[:10])) + (" ..." if len(empty) > 10 else "")
        print(f"skipped {len(empty)} rows without a text (lines {lines})")
    if report.unknown:
        skipped = sum(report.unknown.values())
        print(
            f"skipped {skipped} rows of {len(report.unknown)} departments that are not configured "
            "(map them with --department-map OLD=NEW):"
        )
        for name, count in report.unknown.most_common():
            print(f"  {count:>5}  {name}")
    minutes = config.router.routing.retrain_minutes
    print(f"A running bot learns from them within {minutes:g} minutes (router.routing.retrain_minutes).")
    return 0


# --- routing eval -------------------------------------------------------------------------------


async def _examples(
    config: BotConfig, base_dir: Path, args: argparse.Namespace
) -> tuple[list[str], list[str], list[Any], dict[str, Any]]:
    """Texts, departments, times, and what to say about where they came from."""
    if getattr(args, "file", None):
        mapping = _mapping(args, None)
        file_rows, _ = _read(args)
        labels = [mapping.get(row.department, row.department) for row in file_rows]
        now = utcnow()
        source = {"file": args.file, "rows": len(file_rows)}
        return [row.text for row in file_rows], labels, [row.at or now for row in file_rows], source
    db = await _open(config, base_dir)
    try:
        async with db.session() as session:
            counts = await data.count_routing_examples(session)
            rows = await data.routing_examples(session, departments=learnable(config))
    finally:
        await db.close()
    by_source = Counter[str]()
    left_out = Counter[str]()
    for (department, origin), count in counts.items():
        by_source[origin] += count
        if department not in learnable(config):
            left_out[department] += count
    source = {"store": dict(by_source), "not_predicted": dict(left_out)}
    return [r.text for r in rows], [r.department for r in rows], [r.created_at for r in rows], source


def _model(config: BotConfig, target: float | None = None) -> DepartmentModel:
    routing = config.router.routing
    return DepartmentModel(
        target_precision=target or routing.target_precision,
        min_examples=routing.min_examples_per_department,
        time_scale_days=routing.time_scale_days,
        validation=routing.validation,
    )


async def eval_command(config: BotConfig, base_dir: Path, args: argparse.Namespace) -> int:
    texts, labels, times, source = await _examples(config, base_dir, args)
    model = _model(config, args.target_precision)
    started = time.perf_counter()
    fitting = progress.terminal("learning the department model", unit="fold")
    await asyncio.to_thread(model.fit, texts, labels, times=times, progress=fitting)
    seconds = time.perf_counter() - started
    estimate = model.estimate
    assert estimate is not None
    if args.json:
        result = {
            **estimate.as_dict(),
            "threshold": model.threshold if model.threshold != float("inf") else None,
            "validated_by": model.validated_by,  # "examples" above: those judged
            "learned_from": model.examples,
            "target_precision": model.target_precision,
            "departments": list(model.departments),
            "skipped": model.skipped,
            "fit_seconds": round(seconds, 2),
            "source": source,
        }
        print(json.dumps(result, ensure_ascii=False))
        return 0
    if "store" in source:
        origins = ", ".join(f"{n} {name}" for name, n in sorted(source["store"].items()))
        print(f"stored examples: {origins or 'none'}")
        if source["not_predicted"]:
            names = ", ".join(f"{name} ({n})" for name, n in sorted(source["not_predicted"].items()))
            print(f"  never predicted (triage, the restricted inbox, or not configured): {names}")
    else:
        print(f"{source['file']}: {source['rows']} rows with a text")
    counts = Counter(labels)
    print(f"learned {len(model.departments)} departments from {model.examples} examples in {seconds:.1f} s")
    if model.skipped:
        few = sorted(model.skipped.items(), key=lambda i: -i[1])
        names = ", ".join(f"{name} ({n})" for name, n in few[:10])
        more = f" and {len(few) - 10} more" if len(few) > 10 else ""
        print(f"  {len(few)} with too few examples (< {model.min_examples}), never predicted: {names}{more}")
    if model.validated_by == "forward":
        how = f"validated forward in time (the newest {estimate.examples} examples, by models of older ones)"
    else:
        how = f"cross-validated ({estimate.examples} examples, 5 shuffled folds)"
    print(f"{how}; target precision {model.target_precision}:")
    threshold = "never (no confidence reaches the target)" if model.threshold == float("inf") else ""
    print(f"  threshold               {threshold or f'{model.threshold:.3f}'}")
    print(f"  routed automatically    {estimate.routed} ({estimate.routed_correct} right)")
    print(f"  precision               {estimate.precision:.3f}")
    print(f"  coverage                {estimate.coverage:.3f}")
    print(f"  top-1                   {estimate.top1:.3f}")
    print(f"  top-3                   {estimate.top3:.3f}")
    shuffled = model.shuffled_estimate
    if model.validated_by == "forward" and shuffled is not None:
        print(
            f"  shuffled folds would promise precision {shuffled.precision:.3f} at coverage "
            f"{shuffled.coverage:.3f} (judged on texts of the same weeks; README, Routing)"
        )
    largest = ", ".join(f"{name} {n}" for name, n in counts.most_common(5))
    print(f"  largest departments     {largest}")
    return 0


# --- routing ask --------------------------------------------------------------------------------


async def ask_command(config: BotConfig, base_dir: Path, args: argparse.Namespace) -> int:
    texts, labels, times, _ = await _examples(config, base_dir, argparse.Namespace())
    model = _model(config)
    await asyncio.to_thread(model.fit, texts, labels, times=times)
    text = " ".join(args.text)
    at = utcnow() if config.router.routing.time_scale_days else None
    ranked = model.predict(text, at=at, limit=args.limit)
    routed = model.route(text, at=at)
    verdict = (
        f"route to {routed[0]} ({routed[1]:.2f})"
        if routed
        else f"not sure enough: to {config.router.triage_department}"
    )
    print(f"threshold {model.threshold:.3f}: {verdict}")
    for department, probability in ranked:
        print(f"  {probability:.3f}  {department}")
    return 0
