"""The FAQ administrators' commands beside `faq check/ask/eval`:

    python bot.py faq import FILE.csv --out DIR [...]     an FAQ spreadsheet into YAML files
    python bot.py faq learn [--since DATE] [--dry-run]    questions answered from the review queue
                                                          become variants of the entry staff sent
    python bot.py faq add-variant ENTRY_ID "TEXT"         one question, by hand
    python bot.py faq learned [--since DATE] [--all]      what was learned from staff
    python bot.py faq forget ID [ID ...]                  undo it
    python bot.py faq gaps [--since DATE] [--json]        what citizens ask that the FAQ does not answer

bot.py adds the parsers (`add_parsers`) and hands these actions to `run`; the work itself is in
knowledge/importer.py, knowledge/editor.py, knowledge/gaps.py and the store's data functions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import yaml

import progress
from knowledge import KnowledgeBase, KnowledgeError, KnowledgeHolder, Matcher, detect_language, load_knowledge
from knowledge.editor import EditError, NewQuestion, add_questions, questions_like
from knowledge.importer import CsvImportError, ImportOptions, ImportResult, import_csv
from knowledge.learning import PERSONAL, describe_counts
from knowledge.loader import find_yaml_files
from knowledge.text import normalize
from store import Database, data, open_database, utcnow

if TYPE_CHECKING:
    from server.config import BotConfig

ACTIONS = frozenset({"import", "learn", "add-variant", "gaps", "learned", "forget"})
LEARNED = "faq_learned"  # the ticket event that marks a question as learned
# Forwards that the FAQ had nothing for: no entry came close (triage), or a keyword rule or the
# department model chose. A forward for an entry with handoff: always ("faq:<id>") is not a gap.
GAP_REASONS = ("triage", "keyword:", "model")


def add_actions(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `faq import`, `learn`, `add-variant` and `gaps` sub-commands."""
    imp = actions.add_parser(
        "import",
        help="turn an FAQ spreadsheet (CSV) into YAML files, one per category",
        description="Turn an FAQ spreadsheet (a CSV export) into FAQ YAML files, one per category. "
        "Nothing is written unless the whole result loads; existing files are kept unless --force.",
    )
    imp.add_argument("file", help="the CSV file")
    imp.add_argument("--out", required=True, help="the folder to write the YAML files to")
    imp.add_argument(
        "--question-column", default="question", help="the question's column (default: question)"
    )
    imp.add_argument("--answer-column", default="answer", help="the answer's column (default: answer)")
    imp.add_argument(
        "--extra-question-column",
        action="append",
        default=[],
        metavar="COLUMN",
        help="more ways to ask, one a line or separated by | (repeatable)",
    )
    imp.add_argument(
        "--keyword-column",
        action="append",
        default=[],
        metavar="COLUMN",
        help="keywords, separated by , ; | or line breaks (repeatable)",
    )
    imp.add_argument(
        "--id-column", help="a column with a unique number or name per row (default: the row's position)"
    )
    imp.add_argument("--id-prefix", help="put before every id (default: the CSV file's name)")
    imp.add_argument("--category-column", help="a column whose values split the entries into files")
    imp.add_argument(
        "--language", help="the language of questions and answers (default: router.default_language)"
    )
    imp.add_argument(
        "--department",
        help="the department of categories without a mapping (default: router.triage_department)",
    )
    imp.add_argument(
        "--department-map",
        action="append",
        default=[],
        metavar="CATEGORY=DEPARTMENT",
        help="the department of a category's entries (repeatable)",
    )
    imp.add_argument(
        "--department-map-file", metavar="FILE", help="a YAML file of `category: department` lines"
    )
    imp.add_argument(
        "--encoding", default="utf-8-sig", help="utf-8, utf-8-sig (default), cp949 (Korean Excel)..."
    )
    imp.add_argument("--delimiter", help="the field separator: , (default; tab for .tsv) ; | or tab")
    imp.add_argument(
        "--unescape-html", action="store_true", help="decode HTML entities (&amp; ...) in the cells"
    )
    imp.add_argument(
        "--skip-duplicates", action="store_true", help="leave out rows whose question an earlier row has"
    )
    imp.add_argument("--force", action="store_true", help="overwrite YAML files of the same names")
    imp.add_argument("--dry-run", action="store_true", help="check and report, write nothing")

    learn = actions.add_parser(
        "learn",
        help="add the questions staff answered from the review queue to the entries they sent",
        description="Questions that staff answered from the review queue with an FAQ entry's answer become "
        "questions of that entry, in the YAML file it lives in. The running bot reloads the files itself.",
    )
    learn.add_argument("--since", help="only answers sent since this date (YYYY-MM-DD, in the city's time)")
    learn.add_argument("--dry-run", action="store_true", help="show what would be added, write nothing")
    learn.add_argument(
        "--include-edited", action="store_true", help="also learn questions whose answer staff edited"
    )
    learn.add_argument("--max-chars", type=int, default=200, help="skip longer questions (default: 200)")
    learn.add_argument(
        "--staff", default=os.environ.get("USER", "staff"), help="your name in the audit trail"
    )

    learned = actions.add_parser(
        "learned",
        help="what the FAQ learned from staff: the learned questions and the labels, by kind",
        description="The questions learned from review items staff sent with an entry (kept in the store, "
        "not in the YAML files, until `faq learn` writes them there), and how many labels of each kind "
        "the thresholds are refitted from.",
    )
    learned.add_argument("--since", help="learned since this date (YYYY-MM-DD, in the city's time)")
    learned.add_argument("--all", action="store_true", help="every label, not only the learned questions")
    forget = actions.add_parser(
        "forget",
        help="undo what was learned: the labels (and learned questions) with these ids",
        description="Forget labels by id (`faq learned` lists them): a learned question is no longer "
        "a question of its entry, and the label no longer counts when the thresholds are refitted.",
    )
    forget.add_argument("ids", nargs="+", type=int, metavar="ID")

    variant = actions.add_parser(
        "add-variant",
        help="add one question to an entry",
        description="Add a way of asking to an FAQ entry, in the YAML file it lives in.",
    )
    variant.add_argument("entry", help="the entry's id")
    variant.add_argument("text", nargs="+", help="the question")
    variant.add_argument("--language", help="its language (default: detected from the text)")

    gaps = actions.add_parser(
        "gaps",
        help="questions the FAQ did not answer, grouped: candidates for new entries",
        description="The questions that were forwarded to a department without an FAQ entry, or sent to "
        "review, grouped by similarity, the largest groups first. Sensitive reports are never listed.",
    )
    gaps.add_argument("--since", help="from this date (YYYY-MM-DD; default: the last 90 days)")
    gaps.add_argument("--limit", type=int, default=20, help="how many groups (default: 20)")
    gaps.add_argument("--min-size", type=int, default=2, help="smallest group to list (default: 2)")
    gaps.add_argument(
        "--threshold", type=float, help="how similar the questions of a group are, 0-1 (default: 0.4)"
    )
    gaps.add_argument("--json", action="store_true", help="print one JSON object")


def run(config: BotConfig, base_dir: Path, args: argparse.Namespace) -> int:
    if args.action == "import":
        return import_command(config, args)
    if args.action == "add-variant":
        return add_variant_command(config, base_dir, args)
    if args.action == "learn":
        if config.knowledge.learning.enabled:
            return asyncio.run(fold_learned_command(config, base_dir, args))
        return asyncio.run(learn_command(config, base_dir, args))
    if args.action == "learned":
        return asyncio.run(learned_command(config, base_dir, args))
    if args.action == "forget":
        return asyncio.run(forget_command(config, base_dir, args))
    return asyncio.run(gaps_command(config, base_dir, args))


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def _problems(heading: str, problems: Sequence[object]) -> int:
    print(heading, file=sys.stderr)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)
    return 1


# --- faq import ---------------------------------------------------------------------------------


def import_command(config: BotConfig, args: argparse.Namespace) -> int:
    started = time.perf_counter()
    source = Path(args.file)
    out = Path(args.out)
    try:
        content = source.read_bytes()
    except OSError as exc:
        return _error(f"{source}: cannot be read: {exc.strerror or exc}")
    if out.exists() and not out.is_dir():
        return _error(f"{out} is not a folder")
    try:
        mapping = _department_map(args.department_map_file, args.department_map)
    except ValueError as exc:
        return _error(str(exc))
    delimiter = args.delimiter or ("\t" if source.suffix.lower() == ".tsv" else ",")
    delimiter = {"tab": "\t", "\\t": "\t"}.get(delimiter.lower(), delimiter)
    triage = config.router.triage_department
    options = ImportOptions(
        question_column=args.question_column,
        answer_column=args.answer_column,
        extra_question_columns=tuple(args.extra_question_column),
        keyword_columns=tuple(args.keyword_column),
        id_column=args.id_column,
        id_prefix=source.stem if args.id_prefix is None else args.id_prefix,
        category_column=args.category_column,
        language=args.language or config.router.default_language,
        default_department=args.department or triage,
        department_map=mapping,
        skip_duplicates=args.skip_duplicates,
        unescape_html=args.unescape_html,
        encoding=args.encoding,
        delimiter=delimiter,
    )
    known = set(config.departments)
    try:
        result = import_csv(
            content,
            source=str(source),
            options=options,
            known_departments=known,
            progress=progress.terminal("reading rows", unit="row"),
        )
    except CsvImportError as exc:
        return _problems(f"{source}: cannot be imported; nothing was written:", exc.problems)

    existing = [file.name for file in result.files if (out / file.name).exists()]
    if existing and not args.force:
        listed = ", ".join(existing)
        return _error(f"{out} already has {listed}; nothing was written (--force overwrites them)")
    try:
        _check_import(out, result, known)
    except KnowledgeError as exc:
        return _problems(
            f"{out}: the imported files would not load ({len(exc.problems)} problem(s)); nothing written:",
            exc.problems,
        )
    if not args.dry_run:
        _write_all(out, {file.name: file.text for file in result.files})
    _report_import(result, out, options, triage, time.perf_counter() - started, dry_run=args.dry_run)
    return 0


def _department_map(file: str | None, pairs: Sequence[str]) -> dict[str, str]:
    mapping = read_department_map_file(file) if file else {}
    for pair in pairs:
        category, sign, department = pair.partition("=")
        if not sign or not category.strip() or not department.strip():
            raise ValueError(f"--department-map {pair!r}: expected CATEGORY=DEPARTMENT, e.g. 복지=welfare")
        mapping[category.strip()] = department.strip()
    return mapping


def read_department_map_file(file: str) -> dict[str, str]:
    """A YAML file of `name in the sheet: department` lines (also `routing import`'s map file)."""
    try:
        loaded = yaml.safe_load(Path(file).read_text(encoding="utf-8-sig")) or {}
    except OSError as exc:
        raise ValueError(f"{file}: cannot be read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{file}: not valid YAML: {exc}") from None
    if not isinstance(loaded, dict) or not all(
        isinstance(key, str | int) and isinstance(value, str) for key, value in loaded.items()
    ):
        raise ValueError(f"{file}: expected `name: department` lines, e.g. `복지: welfare`")
    return {str(key): value for key, value in loaded.items()}


def _check_import(out: Path, result: ImportResult, known: set[str]) -> None:
    """The folder as it would be after the import must load: the new files with the ones there."""
    new = {file.name for file in result.files}
    with tempfile.TemporaryDirectory(prefix="faq-import-") as scratch:
        root = Path(scratch)
        if out.is_dir():
            for existing in find_yaml_files(out):
                name = existing.relative_to(out).as_posix()
                if name not in new:
                    (root / name).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(existing, root / name)
        for file in result.files:
            (root / file.name).write_text(file.text, encoding="utf-8")
        load_knowledge(root, known_departments=known)


def _write_all(out: Path, files: dict[str, str]) -> None:
    """Every file to a temporary name first, then each renamed into place: a failure while writing
    leaves nothing behind."""
    out.mkdir(parents=True, exist_ok=True)
    temporary: dict[str, Path] = {}
    try:
        for name, text in files.items():
            fd, written = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=out)
            temporary[name] = Path(written)
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(text)
        for name, file in temporary.items():
            os.replace(file, out / name)
    finally:
        for file in temporary.values():
            file.unlink(missing_ok=True)


def _report_import(
    result: ImportResult, out: Path, options: ImportOptions, triage: str, seconds: float, *, dry_run: bool
) -> None:
    verb = "Would write" if dry_run else "Wrote"
    print(
        f"Read {result.rows} rows of {result.source}. {verb} {result.entries} entries in "
        f"{len(result.files)} files to {out} ({seconds:.1f} s):"
    )
    width = max(_columns(file.name) for file in result.files)
    for file in result.files:
        where = f"department {file.department}"
        if file.category is not None:
            where += f" (category {file.category}{'' if file.mapped else ', no mapping'})"
        padding = " " * (width - _columns(file.name))
        print(f"  {file.name}{padding}  {len(file.entries):>5} entries  {where}")
    if result.unmapped:
        which = (
            "the --department given"
            if options.default_department != triage
            else "router.triage_department in the config"
        )
        listed = ", ".join(f"{name or '(empty)'} ({count})" for name, count in result.unmapped.items())
        print(
            f"No department mapping for {listed}: their entries go to {options.default_department} "
            f"({which}). Map a category with --department-map CATEGORY=DEPARTMENT."
        )
    for name in result.unused_mappings:
        print(f"The mapping for {name!r} was not used: no row has that category.")
    if result.notes:
        print(f"Notes ({len(result.notes)}):")
        for note in result.notes:
            where = result.source if note.line is None else f"{result.source}:{note.line}"
            print(f"  {where}: {note.message}")
    if result.long_answers:
        print(
            f"{result.long_answers} answers are longer than 220 characters, more than one text message: "
            "shorten them in the files (knowledge/faq/README.md, 'Writing questions and answers')."
        )
    if not dry_run:
        print(f"Check them with: python bot.py faq check {out}")


# --- faq learn and faq add-variant --------------------------------------------------------------


@dataclass
class Addition:
    question: NewQuestion
    tickets: list[tuple[int, str]] = field(default_factory=list)  # (id, reference)


@dataclass
class LearningPlan:
    additions: list[Addition] = field(default_factory=list)
    known: list[tuple[int, str, str]] = field(default_factory=list)  # already a question: id, ref, entry
    skipped: dict[str, list[str]] = field(default_factory=dict)  # reason -> references
    learned_before: int = 0

    def skip(self, reason: str, reference: str) -> None:
        self.skipped.setdefault(reason, []).append(reference)


def plan_learning(
    answers: Sequence[data.ReviewAnswer],
    base: KnowledgeBase,
    *,
    default_language: str,
    include_edited: bool = False,
    max_chars: int = 200,
) -> LearningPlan:
    """Which question goes to which entry, and why the others do not."""
    plan = LearningPlan()
    planned: dict[tuple[str, str], Addition] = {}
    for answer in answers:
        text = " ".join(answer.question.split())
        if answer.learned:
            plan.learned_before += 1
        elif answer.entry is None:
            plan.skip("answered in staff's own words, with no entry", answer.reference)
        elif answer.edited and not include_edited:
            plan.skip("an edited answer (--include-edited learns these too)", answer.reference)
        elif base.get(answer.entry) is None:
            plan.skip(f"entry {answer.entry} is no longer in the FAQ", answer.reference)
        elif not normalize(text):
            plan.skip("no text (a photo or location only)", answer.reference)
        elif len(text) > max_chars:
            plan.skip(f"longer than {max_chars} characters (--max-chars)", answer.reference)
        elif PERSONAL.search(text):
            plan.skip("looks like personal data (a phone number, e-mail or ID number)", answer.reference)
        else:
            owners = {entry.id for entry, _ in questions_like(base, text)}
            if answer.entry in owners:
                plan.known.append((answer.ticket_id, answer.reference, answer.entry))
            elif owners:
                plan.skip(f"already a question of {', '.join(sorted(owners))}", answer.reference)
            else:
                key = (answer.entry, normalize(text))
                addition = planned.get(key)
                if addition is None:
                    language = detect_language(text, default=default_language)
                    addition = planned[key] = Addition(NewQuestion(answer.entry, language, text))
                    plan.additions.append(addition)
                addition.tickets.append((answer.ticket_id, answer.reference))
    return plan


def _faq_to_learn_into(
    config: BotConfig, base_dir: Path, args: argparse.Namespace
) -> tuple[Path, set[str], datetime | None, KnowledgeBase] | int:
    """The FAQ folder, its departments, --since and the base as the files have it; or the exit
    status of a bad --since or a broken FAQ (said on stderr)."""
    folder = _resolve(base_dir, config.knowledge.path)
    known = set(config.departments)
    try:
        since = _since(args.since, config.router.zone, default=None)
        base = load_knowledge(folder, known_departments=known)
    except ValueError as exc:
        return _error(str(exc))
    except KnowledgeError as exc:
        return _problems(f"{folder}: fix the FAQ first; it has {len(exc.problems)} problem(s):", exc.problems)
    return folder, known, since, base


async def learn_command(config: BotConfig, base_dir: Path, args: argparse.Namespace) -> int:
    loaded = _faq_to_learn_into(config, base_dir, args)
    if isinstance(loaded, int):
        return loaded
    folder, known, since, base = loaded
    db = await _open(config, base_dir)
    try:
        async with db.session() as session:
            answers = await data.review_answers(session, since=since, learned_kind=LEARNED)
        plan = plan_learning(
            answers,
            base,
            default_language=config.router.default_language,
            include_edited=args.include_edited,
            max_chars=args.max_chars,
        )
        period = f" since {args.since}" if args.since else ""
        print(f"{len(answers)} questions answered from the review queue{period}.")
        for addition in plan.additions:
            q = addition.question
            refs = ", ".join(reference for _, reference in addition.tickets)
            print(f'  + {q.entry_id} [{q.language}] "{q.text}" ({refs})')
        if plan.known:
            print(f"  {len(plan.known)} already among their entry's questions")
        if plan.learned_before:
            print(f"  {plan.learned_before} learned before")
        for reason, references in plan.skipped.items():
            shown = ", ".join(references[:10]) + (", ..." if len(references) > 10 else "")
            print(f"  {len(references)} not learned, {reason}: {shown}")
        if args.dry_run:
            print("Dry run: nothing was written.")
            return 0
        changed: list[str] = []
        if plan.additions:
            try:
                changed = await asyncio.to_thread(
                    add_questions, folder, [a.question for a in plan.additions], known_departments=known
                )
            except (EditError, KnowledgeError) as exc:
                return _error(f"nothing was written: {exc}")
        await _mark_learned(db, plan, args.staff, base)
        if plan.additions:
            entries = len({a.question.entry_id for a in plan.additions})
            print(
                f"Added {len(plan.additions)} questions to {entries} entries in {', '.join(changed)}; "
                "the running bot reloads the FAQ by itself."
            )
        else:
            print("Nothing new to add.")
        return 0
    finally:
        await db.close()


async def fold_learned_command(config: BotConfig, base_dir: Path, args: argparse.Namespace) -> int:
    """`faq learn` with knowledge.learning on: the learned questions in the store go into the YAML
    files (layout kept), and are marked as folded there."""
    loaded = _faq_to_learn_into(config, base_dir, args)
    if isinstance(loaded, int):
        return loaded
    folder, known, since, base = loaded
    db = await _open(config, base_dir)
    try:
        async with db.session() as session:
            rows = await data.faq_labels(session, since=since, variants_only=True)
        additions: list[NewQuestion] = []
        folded: list[int] = []
        skipped: dict[str, list[int]] = {}
        planned: set[tuple[str, str]] = set()
        for row in rows:
            key = (row.entry_id, normalize(row.text))
            if base.get(row.entry_id) is None:
                skipped.setdefault(f"entry {row.entry_id} is no longer in the FAQ", []).append(row.id or 0)
            elif len(row.text) > args.max_chars:
                skipped.setdefault(f"longer than {args.max_chars} characters", []).append(row.id or 0)
            elif key in planned or any(e.id == row.entry_id for e, _ in questions_like(base, row.text)):
                folded.append(row.id or 0)  # the files have it already
            else:
                planned.add(key)
                additions.append(NewQuestion(row.entry_id, row.language, row.text))
                folded.append(row.id or 0)
                print(f'  + {row.entry_id} [{row.language}] "{row.text}" (label {row.id})')
        for reason, ids in skipped.items():
            print(f"  {len(ids)} not written, {reason}: labels {', '.join(map(str, ids[:10]))}")
        if args.dry_run:
            print(f"Dry run: {len(additions)} questions would be written; nothing was.")
            return 0
        changed: list[str] = []
        if additions:
            try:
                changed = await asyncio.to_thread(add_questions, folder, additions, known_departments=known)
            except (EditError, KnowledgeError) as exc:
                return _error(f"nothing was written: {exc}")
        async with db.transaction() as session:
            await data.mark_faq_labels(session, label_ids=folded, folded_at=utcnow())
        if additions:
            print(
                f"Wrote {len(additions)} learned questions into {', '.join(changed)}; "
                "the running bot reloads the FAQ by itself."
            )
        else:
            print("Nothing new to write.")
        return 0
    finally:
        await db.close()


async def learned_command(config: BotConfig, base_dir: Path, args: argparse.Namespace) -> int:
    try:
        since = _since(args.since, config.router.zone, default=None)
    except ValueError as exc:
        return _error(str(exc))
    db = await _open(config, base_dir)
    try:
        async with db.session() as session:
            rows = await data.faq_labels(session, since=since, variants_only=not args.all)
            counts = await data.count_faq_labels(session)
            fit = await data.latest_faq_fit(session)
    finally:
        await db.close()
    zone = config.router.zone
    for row in rows:
        when = row.created_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        what = "question" if row.variant else row.kind
        print(f'{row.id:>6}  {when}  {what:<12} {row.entry_id:<28} [{row.language}] "{row.text}"')
    if not rows:
        print("(nothing learned)" if not args.all else "(no labels)")
    print(f"labels in use: {describe_counts(counts)}")
    if fit is not None and fit.confidence:
        when = fit.fitted_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        print(f"thresholds last refitted {when} from {fit.labels} labels")
    elif fit is not None:
        print(f"last refit attempt {fit.fitted_at.astimezone(zone):%Y-%m-%d %H:%M}: too few labels yet")
    return 0


async def forget_command(config: BotConfig, base_dir: Path, args: argparse.Namespace) -> int:
    db = await _open(config, base_dir)
    try:
        async with db.transaction() as session:
            found = [await data.get_faq_label(session, label_id=i) for i in args.ids]
            missing = [i for i, row in zip(args.ids, found, strict=True) if row is None or row.forgotten_at]
            if missing:
                return _error(f"no label {', '.join(map(str, missing))} to forget (see `faq learned --all`)")
            await data.mark_faq_labels(session, label_ids=args.ids, forgotten_at=utcnow())
    finally:
        await db.close()
    folded = [row.id for row in found if row is not None and row.folded_at is not None]
    print(f"Forgot {len(args.ids)} label(s); running bots stop using them within a few seconds.")
    if folded:
        listed = ", ".join(map(str, folded))
        print(f"Labels {listed} were written into the YAML files by `faq learn`: remove them there too.")
    return 0


async def _mark_learned(db: Database, plan: LearningPlan, staff: str, base: KnowledgeBase) -> None:
    """An audit event on every ticket whose question is now among its entry's: it is not looked at again."""
    now = utcnow()
    async with db.transaction() as session:
        for addition in plan.additions:
            q = addition.question
            file = _file_of(base, q.entry_id)
            for ticket_id, _reference in addition.tickets:
                await data.add_event(
                    session,
                    ticket_id=ticket_id,
                    actor=f"staff:cli:{staff}",
                    actor_name=staff,
                    kind=LEARNED,
                    detail={"entry": q.entry_id, "language": q.language, "question": q.text, "file": file},
                    at=now,
                )
        for ticket_id, _reference, entry_id in plan.known:
            await data.add_event(
                session,
                ticket_id=ticket_id,
                actor=f"staff:cli:{staff}",
                actor_name=staff,
                kind=LEARNED,
                detail={"entry": entry_id, "already": True},
                at=now,
            )


def _file_of(base: KnowledgeBase, entry_id: str) -> str | None:
    entry = base.get(entry_id)
    return entry.source.file if entry else None


def add_variant_command(config: BotConfig, base_dir: Path, args: argparse.Namespace) -> int:
    folder = _resolve(base_dir, config.knowledge.path)
    known = set(config.departments)
    text = " ".join(" ".join(args.text).split())
    if not normalize(text):
        return _error("the question needs some words")
    try:
        base = load_knowledge(folder, known_departments=known)
    except KnowledgeError as exc:
        return _problems(f"{folder}: fix the FAQ first; it has {len(exc.problems)} problem(s):", exc.problems)
    entry = base.get(args.entry)
    if entry is None:
        return _error(f"no FAQ entry {args.entry!r}")
    language = args.language or detect_language(text, default=config.router.default_language)
    owners = questions_like(base, text)
    if any(owner.id == entry.id for owner, _ in owners):
        language_had = next(lang for owner, lang in owners if owner.id == entry.id)
        print(f'"{text}" is already a question of {entry.id} [{language_had}]; nothing to add.')
        return 0
    if owners:
        others = ", ".join(sorted({owner.id for owner, _ in owners}))
        return _error(f'"{text}" is already a question of {others}: a question belongs to one entry')
    try:
        (changed,) = add_questions(folder, [NewQuestion(entry.id, language, text)], known_departments=known)
    except (EditError, KnowledgeError) as exc:
        return _error(f"nothing was written: {exc}")
    print(
        f'Added "{text}" to {entry.id} [{language}] in {changed}; the running bot reloads the FAQ by itself.'
    )
    return 0


# --- faq gaps -----------------------------------------------------------------------------------


async def gaps_command(config: BotConfig, base_dir: Path, args: argparse.Namespace) -> int:
    # scikit-learn takes a second to import: only this command needs it.
    from knowledge.gaps import DEFAULT_THRESHOLD, group_texts

    started = time.perf_counter()
    try:
        since = _since(args.since, config.router.zone, default=timedelta(days=90))
    except ValueError as exc:
        return _error(str(exc))
    threshold = DEFAULT_THRESHOLD if args.threshold is None else args.threshold
    if not 0 < threshold <= 1:
        return _error(f"--threshold must be between 0 and 1, got {threshold}")
    db = await _open(config, base_dir)
    try:
        async with db.session() as session:
            decisions = await data.first_decisions(session, statuses=("forwarded", "review"), since=since)
    finally:
        await db.close()
    asked = [
        decision
        for decision in decisions
        if decision.status == "review" or (decision.reason or "").startswith(GAP_REASONS)
    ]
    groups = await asyncio.to_thread(group_texts, [d.question for d in asked], threshold=threshold)
    listed = [group for group in groups if len(group) >= args.min_size][: max(args.limit, 0)]
    matcher = _matcher(config, base_dir)

    reports = []
    for group in listed:
        members = [asked[index] for index in group.members]
        representative = members[0]
        examples = _examples(members)
        outcomes = Counter("review" if m.status == "review" else "forwarded" for m in members)
        departments = Counter(m.department or "-" for m in members)
        reports.append(
            {
                "size": len(members),
                "representative": representative.question,
                "examples": examples,
                "forwarded": outcomes["forwarded"],
                "review": outcomes["review"],
                "departments": dict(departments.most_common()),
                "first": min(m.at for m in members).isoformat(),
                "last": max(m.at for m in members).isoformat(),
                "references": [m.reference for m in sorted(members, key=lambda m: m.at, reverse=True)[:10]],
                "best_entry": _best_entry(config, matcher, representative.question),
            }
        )
    grouped = sum(len(group) for group in groups if len(group) >= args.min_size)
    if args.json:
        result = {
            "since": since.isoformat() if since else None,
            "questions": len(asked),
            "groups": reports,
            "grouped": grouped,
            "seconds": round(time.perf_counter() - started, 2),
        }
        print(json.dumps(result, ensure_ascii=False))
        return 0
    _print_gaps(config, args, threshold, since, asked, reports, groups, time.perf_counter() - started)
    return 0


def _examples(members: Sequence[data.FirstDecision], count: int = 3) -> list[str]:
    """Other ways the group's question was put, from the closest to the representative to the
    farthest, so that the examples show how wide the group is."""
    seen = {normalize(members[0].question)}
    distinct = []
    for member in members[1:]:
        key = normalize(member.question)
        if key not in seen:
            seen.add(key)
            distinct.append(member.question)
    if len(distinct) <= count:
        return distinct
    step = (len(distinct) - 1) / (count - 1)
    return [distinct[round(i * step)] for i in range(count)]


def _matcher(config: BotConfig, base_dir: Path) -> Matcher | None:
    holder = KnowledgeHolder(
        _resolve(base_dir, config.knowledge.path),
        known_departments=set(config.departments),
        default_confidence=config.knowledge.default_confidence(),
    )
    try:
        holder.load()
    except KnowledgeError as exc:
        print(
            f"the FAQ does not load ({len(exc.problems)} problem(s)): no best entries shown", file=sys.stderr
        )
        return None
    return holder.current[1]


def _best_entry(config: BotConfig, matcher: Matcher | None, question: str) -> dict[str, Any] | None:
    if matcher is None:
        return None
    language = detect_language(question, default=config.router.default_language)
    matches = matcher.match(question, language, limit=1)
    if not matches:
        return None
    top = matches[0]
    if top.entry.handoff != "auto":
        decision = "handoff"
    elif top.score >= matcher.confidence.answer_threshold:
        decision = "answer"
    elif top.score >= matcher.confidence.review_threshold:
        decision = "review"
    else:
        decision = "forward"
    return {"id": top.entry.id, "score": round(top.score, 3), "decision": decision}


def _print_gaps(
    config: BotConfig,
    args: argparse.Namespace,
    threshold: float,
    since: datetime | None,
    asked: Sequence[data.FirstDecision],
    reports: Sequence[dict[str, Any]],
    groups: Sequence[object],
    seconds: float,
) -> None:
    zone = config.router.zone
    when = f"since {since.astimezone(zone):%Y-%m-%d}" if since else "so far"
    review = sum(1 for d in asked if d.status == "review")
    print(
        f"{len(asked)} questions {when} were not answered by the FAQ: {len(asked) - review} forwarded to a "
        f"department, {review} sent to review (sensitive reports are never listed). "
        f"{len(groups)} groups at similarity {threshold:.2f} ({seconds:.1f} s)."
    )
    if not reports:
        print(f"(no group of {args.min_size} or more similar questions; --min-size 1 lists single ones)")
    verbs = {
        "answer": "would be answered now",
        "review": "would go to review",
        "handoff": "an entry that always goes to a person",
        "forward": "too far to suggest",
    }
    for number, report in enumerate(reports, start=1):
        departments = ", ".join(f"{name} {count}" for name, count in report["departments"].items())
        first = datetime.fromisoformat(report["first"]).astimezone(zone)
        last = datetime.fromisoformat(report["last"]).astimezone(zone)
        counts = f"forwarded {report['forwarded']}, review {report['review']}"
        print(
            f"\n{number:>2}. {report['size']} questions ({counts}) to {departments}; "
            f"{first:%Y-%m-%d} .. {last:%Y-%m-%d}"
        )
        print(f'    "{report["representative"]}"')
        for example in report["examples"]:
            print(f'      also "{example}"')
        best = report["best_entry"]
        if best is None:
            print("    best entry now: none shares a word with it")
        else:
            print(f"    best entry now: {best['id']} ({best['score']:.2f}, {verbs[best['decision']]})")
        more = ", ..." if report["size"] > len(report["references"]) else ""
        print(f"    tickets: {', '.join(report['references'])}{more}")


# --- shared -------------------------------------------------------------------------------------


def _columns(text: str) -> int:
    """How many terminal columns a text takes: Korean and other wide characters take two."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def _resolve(base: Path, path: Path) -> Path:
    return path if path.is_absolute() else base / path


async def _open(config: BotConfig, base_dir: Path) -> Database:
    db = open_database(config.store, base_dir=base_dir)
    if config.store.migrate_on_start:
        await db.upgrade()
    return db


def _since(text: str | None, zone: ZoneInfo, *, default: timedelta | None) -> datetime | None:
    """--since as an aware time: a date is its midnight in the city's time zone."""
    if not text:
        return None if default is None else utcnow() - default
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--since {text!r}: expected a date like 2026-11-01 (or 2026-11-01T09:00)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


__all__ = ["ACTIONS", "add_actions", "run"]
