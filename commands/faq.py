"""`bot.py faq check | ask | eval | calibrate`: the FAQ as the router sees it, and its thresholds."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import progress
from bot import resolve
from commands import faq_gaps, faq_import, faq_learn
from knowledge import (
    KnowledgeBase,
    KnowledgeError,
    KnowledgeHolder,
    Matcher,
    detect_language,
    load_knowledge,
)
from knowledge.calibration import CALIBRATION_FILE, Confidence, knowledge_fingerprint
from knowledge.calibration import save as save_calibration
from knowledge.decision import Outcome, decide
from knowledge.evaluate import calibrate_queries, evaluate_by_language, read_queries
from knowledge.learning import describe_counts
from knowledge.reloader import newest
from router.learning import FaqLearning
from server.config import BotConfig
from store import data, open_database

# The labelled texts `faq calibrate` reads unless told otherwise, kept in the FAQ folder.
DEFAULT_CALIBRATION_QUERIES = "calibration-queries.jsonl"


def run(config: BotConfig, base_dir: Path, args: argparse.Namespace) -> int:
    path = (
        Path(args.dir).resolve() if getattr(args, "dir", None) else resolve(base_dir, config.knowledge.path)
    )
    if args.action == "calibrate" and args.from_store:
        return asyncio.run(_faq_calibrate_from_store(config, base_dir, path, args))
    if args.action == "calibrate":  # an old or broken calibration.json is what it replaces: not read
        return _faq_calibrate(config, path, args)
    holder = KnowledgeHolder(
        path,
        known_departments=set(config.departments),
        default_confidence=config.knowledge.default_confidence(),
    )
    try:
        holder.load()
    except KnowledgeError as exc:
        return _knowledge_problems(path, exc)
    base, matcher = holder.current
    if args.action == "eval":
        return _faq_eval(config, matcher, base, args)
    if args.action == "check":
        print(f"OK: {len(base)} entries in {len(base.files)} files under {path}")
        print(_describe_confidence(matcher.confidence, base))
        if matcher.confidence.report is None and (path / CALIBRATION_FILE).is_file():
            print(
                f"  {CALIBRATION_FILE} was written for an older matcher and is not used: run `faq calibrate`"
            )
        if config.knowledge.learning.enabled:
            print(asyncio.run(_describe_learning(config, base_dir, matcher.confidence, base)))
        return 0
    question = " ".join(args.text)
    language = detect_language(question, default=config.router.default_language)
    matches = matcher.match(question, language, limit=args.limit)
    confidence = matcher.confidence
    decision = decide(
        question,
        matches,
        answer_threshold=confidence.answer_threshold,
        review_threshold=confidence.review_threshold,
        sensitive=config.router.sensitive.rule(),
    )
    top = decision.top
    verdicts = {
        Outcome.ANSWER: f"answer with {top.entry.id}" if top else "",
        Outcome.REVIEW: f"send to today's review, suggesting {top.entry.id}" if top else "",
        Outcome.FORWARD: "forward to a department",
        Outcome.SENSITIVE: "a sensitive report: never answered, sent to the restricted inbox",
    }
    print(
        f"language {language}; answer at {confidence.answer_threshold:.2f}, "
        f"review at {confidence.review_threshold:.2f}: {verdicts[decision.outcome]}"
    )
    for m in matches:
        flag = " (handoff: always)" if m.entry.handoff == "always" else ""
        print(f'  {m.score:.3f}  {m.entry.id:<28} {m.entry.department or "-":<12} "{m.question}"{flag}')
    if not matches:
        print("  (no entry shares any words with this text)")
    return 0


def _describe_confidence(confidence: Confidence, base: KnowledgeBase) -> str:
    """What `faq check` says about the thresholds: calibrated (when, on what, with what result) or not."""
    thresholds = f"answer at {confidence.answer_threshold:.3f}, review at {confidence.review_threshold:.3f}"
    report = confidence.report
    if report is None:
        return (
            f"not calibrated: the default confidence model with config.yaml's thresholds ({thresholds}); "
            "run `python bot.py faq calibrate --queries FILE`"
        )
    lines = [
        f"calibrated {report.calibrated_at} on {report.queries_file} ({report.queries} texts, "
        f"{report.in_scope} in scope): {thresholds}",
        f"  target precision {report.target_precision:.2f} at an out-of-scope rate of "
        f"{report.out_of_scope_rate:.1%}; on that file (out of fold): precision {report.precision:.3f}, "
        f"coverage {report.coverage:.1%}, out of scope answered {report.out_of_scope_answered:.1%}, "
        f"to review {report.review_share:.1%}",
    ]
    if report.knowledge_fingerprint != knowledge_fingerprint(base):
        lines.append(
            f"  the FAQ changed since ({report.knowledge_entries} entries then, {len(base)} now): "
            "run `faq calibrate` again"
        )
    return "\n".join(lines)


def _knowledge_problems(path: Path, error: KnowledgeError) -> int:
    print(f"{path}: the knowledge base has {len(error.problems)} problem(s):", file=sys.stderr)
    for problem in error.problems:
        print(f"  {problem}", file=sys.stderr)
    return 1


async def _describe_learning(
    config: BotConfig, base_dir: Path, files: Confidence, base: KnowledgeBase
) -> str:
    """What `faq check` says about learning from staff: the labels, and the thresholds refitted from them."""
    db = open_database(config.store, base_dir=base_dir)
    try:
        async with db.session() as session:
            counts = await data.count_faq_labels(session)
            fit = await data.latest_faq_fit(session)
    except Exception as exc:  # a store not created yet, or not reachable: the files are checked anyway
        return (
            f"learning from staff: the store could not be read ({type(exc).__name__}); a new one is set up "
            "by the server's start or `bot.py db upgrade`"
        )
    finally:
        await db.close()
    lines = [f"learning from staff: labels {describe_counts(counts)}"]
    fitted = Confidence.from_json(fit.confidence) if fit is not None and fit.confidence else None
    if fitted is None or fitted.report is None:
        lines.append(
            f"  thresholds not refitted from them yet (each night at {config.knowledge.learning.refit_at}, "
            f"once there are {config.knowledge.learning.min_labels} labels, "
            f"{config.knowledge.learning.min_out_of_scope} of texts not to answer)"
        )
        return "\n".join(lines)
    in_use = newest(files, fitted) is fitted
    lines.append(
        ("in use: " if in_use else "not in use (calibration.json is newer): ")
        + _describe_confidence(fitted, base).replace("calibrated", "refitted", 1)
    )
    return "\n".join(lines)


def _faq_calibrate(config: BotConfig, folder: Path, args: argparse.Namespace) -> int:
    try:
        base = load_knowledge(folder, known_departments=set(config.departments))
    except KnowledgeError as exc:
        return _knowledge_problems(folder, exc)
    matcher = Matcher(base, confidence=config.knowledge.default_confidence())
    queries_path = Path(args.queries) if args.queries else folder / DEFAULT_CALIBRATION_QUERIES
    try:
        queries = read_queries(queries_path, {entry.id for entry in base.entries})
        confidence = calibrate_queries(
            matcher,
            queries,
            target_precision=args.target_precision or 0.95,
            review_precision=args.review_precision,
            out_of_scope_rate=args.out_of_scope_rate,
            queries_file=queries_path.name,
            default_language=config.router.default_language,
            sensitive=config.router.sensitive.rule(),
            progress=progress.terminal("scoring the labelled texts", unit="text"),
        )
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.dry_run:
        print(_describe_confidence(confidence, base))
        return 0
    written = save_calibration(confidence, folder)
    print(f"wrote {written}")
    print(_describe_confidence(confidence, base))
    print("A running bot picks the new thresholds up with its next FAQ reload.")
    return 0


async def _faq_calibrate_from_store(
    config: BotConfig, base_dir: Path, folder: Path, args: argparse.Namespace
) -> int:
    """The nightly refit now: thresholds from staff's labels in the store, stored there for every instance."""
    holder = KnowledgeHolder(
        folder,
        known_departments=set(config.departments),
        default_confidence=config.knowledge.default_confidence(),
    )
    try:
        await asyncio.to_thread(holder.load)
    except KnowledgeError as exc:
        return _knowledge_problems(folder, exc)
    settings = config.knowledge.learning.model_copy(
        update={
            "target_precision": args.target_precision or config.knowledge.learning.target_precision,
            "review_precision": args.review_precision,
            "out_of_scope_rate": (
                config.knowledge.learning.out_of_scope_rate
                if args.out_of_scope_rate is None
                else args.out_of_scope_rate
            ),
        }
    )
    db = open_database(config.store, base_dir=base_dir)
    try:
        await db.upgrade()
        learning = FaqLearning(
            db,
            holder,
            settings,
            sensitive=config.router.sensitive.rule(),
            default_language=config.router.default_language,
            zone=config.router.zone,
            settle_hours=config.router.lifecycle.reopen_window_hours,
        )
        await learning.refresh(force=True)
        try:
            confidence = await learning.refit(store=not args.dry_run)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    finally:
        await db.close()
    print(_describe_confidence(confidence, holder.files_base))
    if args.dry_run:
        print("Dry run: nothing was stored.")
    else:
        print("Stored; running bots use the new thresholds within knowledge.learning.refresh_seconds.")
    return 0


def _faq_eval(config: BotConfig, matcher: Matcher, base: KnowledgeBase, args: argparse.Namespace) -> int:
    try:
        queries = read_queries(Path(args.queries), {entry.id for entry in base.entries})
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    result, by_language = evaluate_by_language(
        matcher,
        queries,
        default_language=config.router.default_language,
        sensitive=config.router.sensitive.rule(),
    )
    if args.json:
        found: dict[str, Any] = result.as_dict()
        found["by_language"] = {language: e.as_dict() for language, e in by_language.items()}
        print(json.dumps(found))
        return 0
    confidence = matcher.confidence
    state = "calibrated" if confidence.report else "not calibrated"
    print(
        f"{result.queries} queries, {result.in_scope} in scope; answer at {confidence.answer_threshold:.3f}, "
        f"review at {confidence.review_threshold:.3f} ({state})"
    )
    print(f"  answered automatically  {result.auto_answered} ({result.auto_correct} correct)")
    print(f"  precision               {result.precision:.3f}")
    print(f"  coverage                {result.coverage:.3f}")
    print(f"  out of scope answered   {result.out_of_scope_answered:.3f}")
    print(f"  for review              {result.review}")
    print(f"  entry first / in top 3  {result.top1:.3f} / {result.top3:.3f}")
    for language, e in by_language.items():
        print(
            f"  [{language}] {e.queries} texts, {e.in_scope} in scope: precision {e.precision:.3f}, "
            f"coverage {e.coverage:.3f}, first {e.top1:.3f}, top 3 {e.top3:.3f}"
        )
    return 0


def _share(value: str) -> float:
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return number


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    faq = sub.add_parser("faq", help="the FAQ knowledge base")
    faq_actions = faq.add_subparsers(dest="action", required=True)
    faq_actions.add_parser("check", help="validate the YAML files").add_argument("dir", nargs="?")
    ask = faq_actions.add_parser("ask", help="show the entries a text would match, with scores")
    ask.add_argument("text", nargs="+")
    ask.add_argument("--limit", type=int, default=5)
    calibrate = faq_actions.add_parser(
        "calibrate", help="choose the answer and review thresholds from a labelled JSON-lines file"
    )
    calibrate.add_argument("--faq", dest="dir", help="FAQ folder (default: knowledge.path)")
    calibrate.add_argument(
        "--queries", help=f"labelled texts (default: {DEFAULT_CALIBRATION_QUERIES} in the FAQ folder)"
    )
    calibrate.add_argument(
        "--target-precision",
        type=_share,
        help="of automatic answers (default 0.95; with --from-store knowledge.learning.target_precision)",
    )
    calibrate.add_argument(
        "--review-precision", type=_share, default=0.5, help="of the suggestions sent to review"
    )
    calibrate.add_argument(
        "--out-of-scope-rate",
        type=_share,
        help="share of real traffic the FAQ cannot answer (default: the share of null texts in the file)",
    )
    calibrate.add_argument("--dry-run", action="store_true", help="report, do not write calibration.json")
    calibrate.add_argument(
        "--from-store",
        action="store_true",
        help="refit from staff's decisions in the store (as every night), not from a file; stored there",
    )
    ev = faq_actions.add_parser("eval", help="measure automatic answers on a labelled JSON-lines file")
    ev.add_argument("--faq", dest="dir", help="FAQ folder (default: knowledge.path)")
    ev.add_argument("--queries", required=True, help='one {"text": ..., "expect": id or null} a line')
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    for family in (faq_import, faq_learn, faq_gaps):  # import; learn, learned, forget, add-variant; gaps
        family.add_actions(faq_actions)
