"""Turn an existing FAQ spreadsheet (a CSV export) into FAQ YAML files, one per category.

Pure: bytes of a CSV file and the column mapping in, the text of each YAML file out, with notes on
what was changed on the way (duplicate ids, duplicate questions, rows without an answer). Nothing is
written here; `python bot.py faq import` validates the result with the loader and writes it.
"""

from __future__ import annotations

import csv
import html
import io
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

import yaml

from knowledge.loader import Problem
from knowledge.model import is_slug
from knowledge.text import normalize

# Keyword cells: "대형폐기물, 가구; 소파" or one a line. Extra question cells: one a line, or "a | b".
_KEYWORD_SPLIT = re.compile(r"[,;|\n]")
_QUESTION_SPLIT = re.compile(r"[|\n]")
# Line breaks YAML 1.1 (and so the loader) also reads as line breaks: made plain newlines first.
_LINE_BREAKS = re.compile("\r\n|[\r\x85\u2028\u2029]")
# Control characters (but tab and newline) and the byte-order mark: never meant as text.
_CONTROLS = re.compile("[\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f\\ufeff]")
_HORIZONTAL_SPACE = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\n{3,}")
_PLAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
# A file's lines stay about this wide; Korean and other wide characters count double.
WIDTH = 100
# A Korean answer longer than this does not fit one text message (knowledge/faq/README.md).
SMS_CHARS = 220
_MAX_PROBLEMS = 200


@dataclass(frozen=True)
class ImportOptions:
    """Which column holds what, and where the entries go."""

    question_column: str = "question"
    answer_column: str = "answer"
    extra_question_columns: tuple[str, ...] = ()
    keyword_columns: tuple[str, ...] = ()
    id_column: str | None = None
    id_prefix: str = "faq"
    category_column: str | None = None
    language: str = "ko"
    # The department of a category missing from `department_map` (and of every entry without a category).
    default_department: str = "triage"
    department_map: Mapping[str, str] = field(default_factory=dict)
    skip_duplicates: bool = False
    # Scraped sheets carry HTML entities, often escaped twice ("&amp;amp;" for "&"): decode them.
    unescape_html: bool = False
    encoding: str = "utf-8-sig"
    delimiter: str = ","


@dataclass(frozen=True)
class ImportedEntry:
    id: str
    line: int
    questions: tuple[str, ...]
    answer: str  # empty: the row had none, so the entry is `handoff: always`
    keywords: tuple[str, ...]


@dataclass(frozen=True)
class ImportedFile:
    """One YAML file to write: `name` relative to the output folder."""

    name: str
    category: str | None
    department: str
    mapped: bool  # False: the category had no mapping and got the default department
    entries: tuple[ImportedEntry, ...]
    text: str


@dataclass(frozen=True)
class Note:
    """Something the import changed or decided; not an error."""

    line: int | None
    message: str


@dataclass(frozen=True)
class ImportResult:
    source: str
    rows: int  # data rows read (blank rows are not counted)
    files: tuple[ImportedFile, ...]
    notes: tuple[Note, ...]
    unmapped: Mapping[str, int]  # category -> entries that got the default department
    unused_mappings: tuple[str, ...]  # categories in the map that no row has
    long_answers: int  # answers longer than SMS_CHARS

    @property
    def entries(self) -> int:
        return sum(len(file.entries) for file in self.files)


class CsvImportError(Exception):
    """The spreadsheet cannot be imported; every problem names the file and, where known, the line."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(problem) for problem in self.problems)


def import_csv(
    data: bytes,
    *,
    source: str,
    options: ImportOptions,
    known_departments: Collection[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Read a CSV file's bytes (`source` names it in messages) into YAML files, or raise CsvImportError."""
    problems: list[Problem] = []

    def fail(line: int | None, message: str) -> CsvImportError:
        return CsvImportError([*problems, Problem(source, line, None, message)])

    _check_options(options, source, known_departments)
    text = _decode(data, source, options.encoding)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=options.delimiter, strict=True)
    rows: list[tuple[int, list[str]]] = []
    line = 1
    try:
        header = next(reader, None)
        line = reader.line_num + 1
        for row in reader:
            rows.append((line, row))
            line = reader.line_num + 1
    except csv.Error as exc:
        raise fail(line, f"not valid CSV: {exc}") from None
    if header is None:
        raise fail(None, "is empty: expected a header row naming the columns")
    header = [name.strip() for name in header]
    if header:
        header[0] = header[0].removeprefix("\ufeff")

    columns = _Columns(header, source, options.delimiter)
    question_at = columns.find(options.question_column)
    answer_at = columns.find(options.answer_column)
    extra_at = [columns.find(name) for name in options.extra_question_columns]
    keyword_at = [columns.find(name) for name in options.keyword_columns]
    id_at = columns.find(options.id_column) if options.id_column else None
    category_at = columns.find(options.category_column) if options.category_column else None
    if columns.problems:
        raise CsvImportError(columns.problems)

    notes: list[Note] = []
    prefix = _slugify(options.id_prefix)
    drafts: list[_Draft] = []
    seen_questions: dict[str, _Draft] = {}
    position = 0
    for done, (line, row) in enumerate(rows, start=1):
        if progress is not None and (done % 100 == 0 or done == len(rows)):
            progress(done, len(rows))
        if len(problems) >= _MAX_PROBLEMS:
            break
        if not any(cell.strip() for cell in row):
            continue  # a blank line, or a spreadsheet's empty trailing row
        position += 1
        if options.unescape_html:
            row = [_unescape_html(cell) for cell in row]
        if len(row) != len(header) and not (
            len(row) > len(header) and not any(cell.strip() for cell in row[len(header) :])
        ):
            problems.append(
                Problem(
                    source,
                    line,
                    None,
                    f"has {len(row)} fields but the header has {len(header)} "
                    f"(a {_delimiter_name(options.delimiter)} in a text that is not quoted?)",
                )
            )
            continue
        question = _one_line(row[question_at])
        if not question:
            problems.append(Problem(source, line, None, f"empty question in column {header[question_at]!r}"))
            continue
        questions = [question]
        for at in extra_at:
            questions.extend(q for part in _QUESTION_SPLIT.split(row[at]) if (q := _one_line(part)))
        keywords = [
            k for at in keyword_at for part in _KEYWORD_SPLIT.split(row[at]) if (k := _one_line(part))
        ]
        category = _one_line(row[category_at]) if category_at is not None else None
        raw_id = row[id_at].strip() if id_at is not None else ""
        draft = _Draft(
            line=line,
            position=position,
            raw_id=raw_id,
            questions=_unique(questions),
            answer=_clean_answer(row[answer_at]),
            keywords=_unique(keywords),
            category=category or None,
        )
        key = normalize(question)
        first = seen_questions.get(key)
        if first is not None:
            if options.skip_duplicates:
                notes.append(Note(line, f"skipped: the same question as line {first.line} ({question!r})"))
                continue
            draft.duplicate_of = first
        else:
            seen_questions[key] = draft
        drafts.append(draft)
    if problems:
        raise CsvImportError(problems)
    if not drafts:
        raise fail(None, "has no rows with a question")

    _assign_ids(drafts, prefix, id_at is not None, notes)
    for draft in drafts:
        if draft.duplicate_of is not None:
            notes.append(
                Note(
                    draft.line,
                    f"entry {draft.id} has the same question as entry {draft.duplicate_of.id} "
                    f"(line {draft.duplicate_of.line}): both kept, {draft.questions[0]!r}",
                )
            )
        if not draft.answer:
            notes.append(
                Note(draft.line, f"entry {draft.id} has no answer: it is handoff: always (a person answers)")
            )
    notes.sort(key=lambda note: note.line or 0)

    files, unmapped = _files(drafts, source, options, prefix)
    categories = {draft.category for draft in drafts}
    unused = tuple(name for name in options.department_map if _category_key(name) not in categories)
    return ImportResult(
        source=source,
        rows=position,
        files=files,
        notes=tuple(notes),
        unmapped=unmapped,
        unused_mappings=unused,
        long_answers=sum(1 for draft in drafts if len(draft.answer) > SMS_CHARS),
    )


# --- reading ------------------------------------------------------------------------------------


@dataclass
class _Draft:
    line: int
    position: int
    raw_id: str
    questions: tuple[str, ...]
    answer: str
    keywords: tuple[str, ...]
    category: str | None
    id: str = ""
    duplicate_of: _Draft | None = None


class _Columns:
    def __init__(self, header: list[str], source: str, delimiter: str) -> None:
        self.header = header
        self.source = source
        self.delimiter = delimiter
        self.problems: list[Problem] = []

    def find(self, name: str) -> int:
        wanted = name.strip()
        for exact in (True, False):
            found = [
                i
                for i, column in enumerate(self.header)
                if (column == wanted if exact else column.casefold() == wanted.casefold())
            ]
            if len(found) > 1:
                self.problems.append(
                    Problem(self.source, 1, None, f"column {wanted!r} is in the header twice")
                )
                return found[0]
            if found:
                return found[0]
        listed = ", ".join(repr(column) for column in self.header)
        message = f"no column {wanted!r} in the header (the columns are: {listed})"
        if len(self.header) == 1:
            others = [d for d in (",", ";", "\t", "|") if d != self.delimiter and d in self.header[0]]
            if others:
                message += f"; is the delimiter {_delimiter_name(others[0])}? (--delimiter)"
        if not any(problem.message == message for problem in self.problems):
            self.problems.append(Problem(self.source, 1, None, message))
        return 0


def _check_options(options: ImportOptions, source: str, known: Collection[str] | None) -> None:
    problems = []
    if len(options.delimiter) != 1:
        problems.append(
            Problem(source, None, None, f"the delimiter must be one character, got {options.delimiter!r}")
        )
    if known is not None:
        listed = ", ".join(sorted(known))
        departments = {options.default_department} | set(options.department_map.values())
        for department in sorted(departments - set(known)):
            problems.append(
                Problem(source, None, None, f"unknown department {department!r} (known: {listed})")
            )
    if problems:
        raise CsvImportError(problems)


def _decode(data: bytes, source: str, encoding: str) -> str:
    try:
        text = data.decode(encoding)
    except LookupError:
        raise CsvImportError([Problem(source, None, None, f"unknown encoding {encoding!r}")]) from None
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        message = f"is not valid {encoding}: byte 0x{data[exc.start]:02x} cannot be read"
        hint = next(
            (other for other in ("utf-8", "cp949") if other != encoding and _decodes(data, other)), None
        )
        if hint is not None:
            example = "Korean Excel exports are often cp949" if hint == "cp949" else "it reads as UTF-8"
            message += f"; try --encoding {hint} ({example})"
        raise CsvImportError([Problem(source, line, None, message)]) from None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        hint = "; is it UTF-16? save it as CSV UTF-8" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
        raise CsvImportError([Problem(source, line, None, f"contains a NUL character{hint}")])
    return text


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def _delimiter_name(delimiter: str) -> str:
    return {",": "comma", ";": "semicolon", "\t": "tab", "|": "'|'"}.get(delimiter, repr(delimiter))


def _unescape_html(text: str) -> str:
    for _ in range(5):
        decoded = html.unescape(text)
        if decoded == text:
            break
        text = decoded
    return text


def _strip_controls(text: str) -> str:
    return _CONTROLS.sub("", _LINE_BREAKS.sub("\n", text))


def _one_line(text: str) -> str:
    """A question, keyword or category: whitespace runs (line breaks too) become one space."""
    return " ".join(_strip_controls(text).split())


def _clean_answer(text: str) -> str:
    """Whitespace runs within a line become one space; line breaks stay, blank lines at most one."""
    lines = [_HORIZONTAL_SPACE.sub(" ", line).strip() for line in _strip_controls(text).split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def _unique(values: Sequence[str]) -> tuple[str, ...]:
    """In order, without repeats (compared as the matcher compares them)."""
    seen: set[str] = set()
    kept = []
    for value in values:
        key = normalize(value) or value
        if key not in seen:
            seen.add(key)
            kept.append(value)
    return tuple(kept)


def _slugify(value: str) -> str:
    value = unicodedata.normalize("NFKC", value).lower()
    return re.sub(r"[^a-z0-9]+", "-", value).strip("-")


def _assign_ids(drafts: list[_Draft], prefix: str, from_column: bool, notes: list[Note]) -> None:
    """Ids from the id column (or the row's position), with the prefix; a repeated id gets -2, -3..."""

    def join(*parts: str) -> str:
        return "-".join(part for part in parts if part)

    for draft in drafts:
        slug = _slugify(draft.raw_id) if from_column else ""
        if from_column and not slug:
            what = "is empty" if not draft.raw_id else f"{draft.raw_id!r} has no letters or digits a-z, 0-9"
            draft.id = join(prefix or "row", f"row{draft.position}")
            notes.append(Note(draft.line, f"the id {what}: the entry is {draft.id}"))
        else:
            draft.id = join(prefix, slug or str(draft.position))
    taken = {draft.id for draft in drafts}
    seen: set[str] = set()
    for draft in drafts:
        if draft.id not in seen:
            seen.add(draft.id)
            continue
        number = 2
        while f"{draft.id}-{number}" in taken:
            number += 1
        new = f"{draft.id}-{number}"
        notes.append(Note(draft.line, f"the id {draft.id} is used by an earlier row: this entry is {new}"))
        draft.id = new
        taken.add(new)
        seen.add(new)
    assert all(is_slug(draft.id) for draft in drafts)


def _category_key(category: str) -> str:
    return _one_line(unicodedata.normalize("NFC", category))


def _files(
    drafts: list[_Draft], source: str, options: ImportOptions, prefix: str
) -> tuple[tuple[ImportedFile, ...], dict[str, int]]:
    mapping = {_category_key(name): department for name, department in options.department_map.items()}
    groups: dict[str | None, list[_Draft]] = {}
    for draft in drafts:
        key = _category_key(draft.category) if draft.category else None
        groups.setdefault(key, []).append(draft)
    names: Counter[str] = Counter()
    files = []
    unmapped: dict[str, int] = {}
    base = prefix or "faq"
    for category, members in groups.items():
        stem = base if category is None else f"{base}-{_file_part(category)}"
        names[stem] += 1
        name = f"{stem}.yaml" if names[stem] == 1 else f"{stem}-{names[stem]}.yaml"
        mapped = category is not None and category in mapping
        department = mapping[category] if category is not None and mapped else options.default_department
        if not mapped:
            unmapped[category or ""] = len(members)
        entries = tuple(ImportedEntry(d.id, d.line, d.questions, d.answer, d.keywords) for d in members)
        text = render_file(
            name=name,
            source=source,
            category=category,
            department=department,
            mapped=mapped or category is None,
            entries=entries,
            language=options.language,
        )
        files.append(ImportedFile(name, category, department, mapped, entries, text))
    return tuple(sorted(files, key=lambda file: file.name)), unmapped


def _file_part(category: str) -> str:
    """A category as part of a file name: letters (Hangul too) and digits, '-' for the rest."""
    text = unicodedata.normalize("NFC", category).lower()
    part = "".join(ch if unicodedata.category(ch)[0] in "LN" else "-" for ch in text)
    return re.sub("-+", "-", part).strip("-") or "other"


# --- writing ------------------------------------------------------------------------------------


def render_file(
    *,
    name: str,
    source: str,
    category: str | None,
    department: str,
    mapped: bool,
    entries: Sequence[ImportedEntry],
    language: str,
) -> str:
    """A FAQ file in the layout administrators write by hand: block style, text in double quotes
    (long answers as folded blocks), one blank line between entries."""
    what = f"category {category}, " if category else ""
    lines = [
        f"# {name}: imported from {source} by `python bot.py faq import` ({what}{len(entries)} entries).",
        "# How to edit these files: see README.md in the FAQ folder of the bot (knowledge/faq/README.md).",
    ]
    if not mapped:
        lines.append(f"# The category had no department in the import: its entries go to {department}.")
    lines.append(f"department: {_plain(department)}")
    lines.append("entries:")
    for number, entry in enumerate(entries):
        if number:
            lines.append("")
        lines.append(f"  - id: {_plain(entry.id)}")
        if not entry.answer:
            lines.append(
                f"    # Line {entry.line} of the spreadsheet has no answer: a person answers it for now."
            )
        lines.append("    questions:")
        lines.append(f"      {language}:")
        lines.extend(f"        - {_quoted(question)}" for question in entry.questions)
        if entry.answer:
            lines.append("    answer:")
            lines.extend(_text_field(f"      {language}:", entry.answer, indent=8))
        else:
            lines.append("    handoff: always")
        if entry.keywords:
            lines.append("    keywords:")
            lines.extend(f"      - {_quoted(keyword)}" for keyword in entry.keywords)
    return "\n".join(lines) + "\n"


def _plain(value: str) -> str:
    """A name (id, department) unquoted when YAML reads it back as the same text; quoted otherwise."""
    if _PLAIN.fullmatch(value) and yaml.safe_load(value) == value:
        return value
    return _quoted(value)


# YAML's printable set, without the characters YAML 1.1 reads as line breaks: anything else is escaped.
_NOT_PRINTABLE = (
    "[^\\x20-\\x7e\\xa0-\\u2027\\u202a-\\ud7ff\\ue000-\\ufefe\\uff00-\\ufffd\\U00010000-\\U0010ffff]"
)
_NEEDS_ESCAPE = re.compile(f'{_NOT_PRINTABLE}|["\\\\]')
_BLOCK_UNSAFE = re.compile(f"(?!\\n){_NOT_PRINTABLE}")
# East Asian wide and full-width characters (Hangul, CJK, kana, full-width forms) take two columns.
_WIDE = re.compile(
    "[\\u1100-\\u115f\\u2e80-\\u303e\\u3041-\\u33ff\\u3400-\\u4dbf\\u4e00-\\u9fff\\ua000-\\ua4cf"
    "\\uac00-\\ud7a3\\uf900-\\ufaff\\ufe30-\\ufe4f\\uff00-\\uff60\\uffe0-\\uffe6]"
)
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    code = ord(ch)
    return f"\\x{code:02X}" if code <= 0xFF else f"\\u{code:04X}" if code <= 0xFFFF else f"\\U{code:08X}"


def _quoted(text: str) -> str:
    return f'"{_NEEDS_ESCAPE.sub(_escape, text)}"'


def _width(text: str) -> int:
    return len(text) + len(_WIDE.findall(text))


def _text_field(key: str, text: str, *, indent: int) -> list[str]:
    """`key "text"` when it fits a line; else a folded block (one paragraph, its lines joined with
    spaces when read) or, for text with line breaks, a literal block."""
    single = f"{key} {_quoted(text)}"
    block_safe = _BLOCK_UNSAFE.search(text) is None and text == text.strip()
    if not block_safe or ("\n" not in text and _width(single) <= WIDTH):
        return [single]
    pad = " " * indent
    if "\n" in text:
        return [f"{key} |-", *(f"{pad}{line}" if line else "" for line in text.split("\n"))]
    lines = [f"{key} >-"]
    budget = max(WIDTH - indent, 40)
    current: list[str] = []
    used = 0
    for word in text.split(" "):
        size = _width(word)
        if current and used + 1 + size > budget:
            lines.append(pad + " ".join(current))
            current, used = [], 0
        used += size + (1 if current else 0)
        current.append(word)
    lines.append(pad + " ".join(current))
    return lines


__all__ = [
    "CsvImportError",
    "ImportOptions",
    "ImportResult",
    "ImportedEntry",
    "ImportedFile",
    "Note",
    "import_csv",
    "render_file",
]
