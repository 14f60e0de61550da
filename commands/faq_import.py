"""`bot.py faq import FILE.csv --out DIR`: an FAQ spreadsheet into YAML files, one per category; the
work itself is in knowledge/importer.py."""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

import progress
from commands.support import display_width, fail, list_problems
from knowledge import KnowledgeError, load_knowledge
from knowledge.importer import CsvImportError, ImportOptions, ImportResult, import_csv
from knowledge.loader import find_yaml_files

if TYPE_CHECKING:
    from server.config import BotConfig


ACTIONS = frozenset({"import"})


def add_actions(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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


def run(config: BotConfig, base_dir: Path, args: argparse.Namespace) -> int:
    return import_command(config, args)


def import_command(config: BotConfig, args: argparse.Namespace) -> int:
    started = time.perf_counter()
    source = Path(args.file)
    out = Path(args.out)
    try:
        content = source.read_bytes()
    except OSError as exc:
        return fail(f"{source}: cannot be read: {exc.strerror or exc}")
    if out.exists() and not out.is_dir():
        return fail(f"{out} is not a folder")
    try:
        mapping = _department_map(args.department_map_file, args.department_map)
    except ValueError as exc:
        return fail(str(exc))
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
        return list_problems(f"{source}: cannot be imported; nothing was written:", exc.problems)

    existing = [file.name for file in result.files if (out / file.name).exists()]
    if existing and not args.force:
        listed = ", ".join(existing)
        return fail(f"{out} already has {listed}; nothing was written (--force overwrites them)")
    try:
        _check_import(out, result, known)
    except KnowledgeError as exc:
        return list_problems(
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
    width = max(display_width(file.name) for file in result.files)
    for file in result.files:
        where = f"department {file.department}"
        if file.category is not None:
            where += f" (category {file.category}{'' if file.mapped else ', no mapping'})"
        padding = " " * (width - display_width(file.name))
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
