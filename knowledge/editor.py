"""Add question variants to FAQ entries in their YAML files, keeping each file's comments and layout.

A file is edited in ruamel.yaml's round-trip mode, the whole folder is loaded again with the edit in a
scratch copy (the loader must accept it, and only the intended questions may have changed), and only
then is the file replaced, atomically: a temporary file beside it, then os.replace. The running bot's
reloader sees the new file and takes it like any administrator's edit.
"""

from __future__ import annotations

import copy
import io
import os
import shutil
import tempfile
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from knowledge.loader import find_yaml_files, load_knowledge
from knowledge.model import FaqEntry, KnowledgeBase
from knowledge.text import normalize

# Indentation layouts tried, in order, until one writes an unchanged file back exactly: the shipped
# files' (mappings by 2, list items by 4 with the dash at 2), then other common ones.
_LAYOUTS = ((2, 4, 2), (2, 2, 0), (4, 4, 2), (4, 6, 4), (4, 4, 0), (2, 4, 0), (3, 5, 3), (4, 4, 4))


@dataclass(frozen=True)
class NewQuestion:
    """A question to add to an entry's list for a language."""

    entry_id: str
    language: str
    text: str


class EditError(Exception):
    """The edit cannot be made safely; nothing was written."""


def questions_like(base: KnowledgeBase, text: str) -> list[tuple[FaqEntry, str]]:
    """The entries (with the language) that already have `text` as a question, compared as the
    matcher compares texts (case, punctuation and spacing do not count)."""
    key = normalize(text)
    if not key:
        return []
    return [
        (entry, language)
        for entry in base.entries
        for language, questions in entry.questions.items()
        if any(normalize(question) == key for question in questions)
    ]


def add_questions(
    folder: Path,
    additions: Sequence[NewQuestion],
    *,
    known_departments: Collection[str] | None = None,
) -> list[str]:
    """Add each question to its entry, in the file the entry lives in; the names of the files changed.

    Raises KnowledgeError when the folder does not load before the edit, EditError when an edit
    cannot be made (an unknown entry, questions shared with another entry through a YAML anchor, a
    file changed meanwhile); nothing is written then.
    """
    base = load_knowledge(folder, known_departments=known_departments)
    by_file: dict[str, list[NewQuestion]] = {}
    for addition in additions:
        entry = base.get(addition.entry_id)
        if entry is None:
            raise EditError(f"no FAQ entry {addition.entry_id!r}")
        if not addition.text.strip():
            raise EditError(f"an empty question for {addition.entry_id}")
        by_file.setdefault(entry.source.file, []).append(addition)
    if not by_file:
        return []

    originals: dict[str, bytes] = {}
    edited: dict[str, str] = {}
    for name, wanted in by_file.items():
        originals[name] = (folder / name).read_bytes()
        edited[name] = _edit(name, originals[name].decode("utf-8-sig"), wanted)

    _validate(folder, edited, base, additions, known_departments)

    for name, text in edited.items():
        _replace(folder / name, originals[name], text)
    return sorted(edited)


# --- editing one file ---------------------------------------------------------------------------


def _edit(name: str, text: str, additions: Iterable[NewQuestion]) -> str:
    crlf = "\r\n" in text
    yaml, data = _load(name, text.replace("\r\n", "\n") if crlf else text)
    entries = data.get("entries") if isinstance(data, CommentedMap) else None
    if not isinstance(entries, CommentedSeq):
        raise EditError(f"{name}: no list of entries found")
    for addition in additions:
        entry = next(
            (
                item
                for item in entries
                if isinstance(item, CommentedMap) and item.get("id") == addition.entry_id
            ),
            None,
        )
        if entry is None:
            raise EditError(f"{name}: entry {addition.entry_id!r} not found")
        questions = entry.get("questions")
        if not isinstance(questions, CommentedMap):
            raise EditError(f"{name}: entry {addition.entry_id!r} has no questions mapping of its own")
        _add(questions, addition.language, addition.text)
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue().replace("\n", "\r\n") if crlf else out.getvalue()


def _load(name: str, text: str) -> tuple[YAML, Any]:
    """A round-trip loader set up with the indentation that reproduces the file exactly."""
    for mapping, sequence, offset in _LAYOUTS:
        yaml = _yaml(mapping, sequence, offset)
        try:
            data = yaml.load(text)
        except YAMLError as exc:
            raise EditError(f"{name}: cannot be read: {exc}") from None
        out = io.StringIO()
        yaml.dump(data, out)
        if out.getvalue() == text:
            return yaml, data
    raise EditError(
        f"{name}: its layout cannot be kept by an automatic edit (unusual indentation?); "
        "add the question by hand"
    )


def _yaml(mapping: int, sequence: int, offset: int) -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 1_000_000  # never re-wrap a long line
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    return yaml


def _add(questions: CommentedMap, language: str, text: str) -> None:
    value = DoubleQuotedScalarString(text)
    existing = questions.get(language)
    if isinstance(existing, CommentedSeq):
        trailing = _detach_trailing(existing)
        existing.append(value)
        _attach_trailing(existing, trailing)
        return
    if existing is not None:
        raise EditError(f"the {language} questions are not a list")
    trailing = _detach_trailing(questions)
    new = CommentedSeq([value])
    # In the style of the entry's other languages: ["a", "b"] or one "- a" a line.
    if any(isinstance(other, CommentedSeq) and other.fa.flow_style() for other in questions.values()):
        new.fa.set_flow_style()
    questions[language] = new
    _attach_trailing(questions, trailing)


# ruamel keeps the blank lines and comments after a block (before the next entry) on its last item,
# so an item appended after it would come after them. They are moved to the new last item.


def _last_slot(node: Any) -> tuple[Any, Any, int] | None:
    """(container, key, comment position) of a block collection's last item."""
    if isinstance(node, CommentedSeq) and len(node) and not node.fa.flow_style():
        return node, len(node) - 1, 0
    if isinstance(node, CommentedMap) and len(node) and not node.fa.flow_style():
        return node, list(node.keys())[-1], 2
    return None


def _detach_trailing(node: Any) -> Any:
    slot = _last_slot(node)
    while slot is not None:
        container, key, position = slot
        comments = container.ca.items.get(key)
        token = comments[position] if comments and len(comments) > position else None
        if token is not None and "\n" in token.value:
            end_of_line, rest = token.value.split("\n", 1)
            if not rest:
                return None  # only a comment on the item's own line: it stays there
            if end_of_line.strip():
                token_kept = copy.copy(token)
                token_kept.value = end_of_line + "\n"
                comments[position] = token_kept
            else:
                comments[position] = None
            moved = copy.copy(token)
            moved.value = "\n" + rest
            return moved
        slot = _last_slot(container[key])
    return None


def _attach_trailing(node: Any, token: Any) -> None:
    if token is None:
        return
    slot = _last_slot(node)
    while slot is not None:
        container, key, position = slot
        deeper = _last_slot(container[key])
        if deeper is None:
            comments = container.ca.items.setdefault(key, [None, None, None, None])
            comments[position] = token
            return
        slot = deeper


# --- checking and writing -----------------------------------------------------------------------


def _validate(
    folder: Path,
    edited: dict[str, str],
    before: KnowledgeBase,
    additions: Sequence[NewQuestion],
    known_departments: Collection[str] | None,
) -> None:
    """Load the folder with the edits in a scratch copy: it must load, and every entry's questions
    must be what they were plus exactly the additions."""
    with tempfile.TemporaryDirectory(prefix="faq-edit-") as scratch:
        root = Path(scratch)
        for file in find_yaml_files(folder):
            name = file.relative_to(folder).as_posix()
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if name in edited:
                target.write_text(edited[name], encoding="utf-8")
            else:
                shutil.copyfile(file, target)
        after = load_knowledge(root, known_departments=known_departments)
    expected = {
        entry.id: {lang: list(qs) for lang, qs in entry.questions.items()} for entry in before.entries
    }
    for addition in additions:
        expected[addition.entry_id].setdefault(addition.language, []).append(addition.text)
    for entry in after.entries:
        if {lang: list(qs) for lang, qs in entry.questions.items()} != expected.get(entry.id):
            raise EditError(
                f"entry {entry.id} would change too (its questions are shared through a YAML anchor?); "
                "add the question by hand"
            )
    if len(after) != len(before):
        raise EditError("the number of entries would change; nothing was written")


def _replace(file: Path, original: bytes, text: str) -> None:
    """Write `text` over `file` atomically, unless someone changed the file since it was read."""
    fd, temporary = tempfile.mkstemp(prefix=f".{file.name}.", suffix=".tmp", dir=file.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        shutil.copymode(file, temporary)
        if file.read_bytes() != original:
            raise EditError(f"{file} was changed while the questions were added; run the command again")
        os.replace(temporary, file)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


__all__ = ["EditError", "NewQuestion", "add_questions", "questions_like"]
