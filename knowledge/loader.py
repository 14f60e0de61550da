"""Read and validate the FAQ YAML files, reporting every problem with its file, line and entry."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from knowledge.model import FaqEntry, KnowledgeBase, SourceRef, is_slug

YAML_SUFFIXES = (".yaml", ".yml")

_STR_TAG = "tag:yaml.org,2002:str"
_NULL_TAG = "tag:yaml.org,2002:null"
# Plain YAML only: anything the safe constructor cannot build (!!python/object, custom !tags) is refused
# before construction so the problem can name the tag and its line. Merge keys (<<) are resolved by the
# constructor itself and carry these two tags.
_ALLOWED_TAGS = frozenset(
    {tag for tag in SafeConstructor.yaml_constructors if tag is not None}
    | {"tag:yaml.org,2002:merge", "tag:yaml.org,2002:value"}
)
_ENTRY_FIELDS = tuple(name for name in FaqEntry.model_fields if name != "source")
_TOP_LEVEL_KEYS = ("department", "entries")


@dataclass(frozen=True)
class Problem:
    """One thing wrong in the FAQ files; `line` is 1-based, `entry` an id or a "#3" position."""

    file: str
    line: int | None
    entry: str | None
    message: str

    def __str__(self) -> str:
        parts = [self.file if self.line is None else f"{self.file}:{self.line}"]
        if self.entry is not None:
            parts.append(f"entry {self.entry}" if self.entry.startswith("#") else f"entry '{self.entry}'")
        parts.append(self.message)
        return ": ".join(parts)


class KnowledgeError(Exception):
    """The FAQ files have problems; all of them are listed, one per line."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(problem) for problem in self.problems)


def find_yaml_files(path: Path) -> list[Path]:
    """The FAQ files under `path`, recursively, in a stable order.

    Hidden files and folders (editor backups, .git) are skipped: nobody means them as FAQ.
    """
    found = []
    for candidate in path.rglob("*"):
        relative = candidate.relative_to(path)
        if candidate.suffix.lower() not in YAML_SUFFIXES or not candidate.is_file():
            continue
        if any(part.startswith(".") for part in relative.parts):
            continue
        found.append(candidate)
    return sorted(found, key=lambda file: file.relative_to(path).as_posix())


def load_knowledge(path: Path, *, known_departments: Collection[str] | None = None) -> KnowledgeBase:
    """Load every FAQ file under `path`; raise one KnowledgeError listing all problems of all files."""
    if not path.exists():
        raise KnowledgeError([Problem(str(path), None, None, "FAQ folder does not exist")])
    if not path.is_dir():
        raise KnowledgeError([Problem(str(path), None, None, "is not a folder of FAQ YAML files")])
    collector = _Collector(None if known_departments is None else frozenset(known_departments))
    files = []
    for file in find_yaml_files(path):
        name = file.relative_to(path).as_posix()
        files.append(name)
        collector.load_file(file, name)
    if collector.problems:
        raise KnowledgeError(collector.problems)
    return KnowledgeBase(entries=tuple(collector.entries), files=tuple(files))


@dataclass
class _Collector:
    """Accumulates entries and problems over all files (duplicate ids span files)."""

    known_departments: frozenset[str] | None
    entries: list[FaqEntry] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    first_seen: dict[str, SourceRef] = field(default_factory=dict)

    def load_file(self, file: Path, name: str) -> None:
        found = _FileLoader(self, name)
        found.load(file)
        # Within a file, report in reading order; the sort is stable for problems on one line.
        self.problems.extend(sorted(found.problems, key=lambda problem: problem.line or 0))


@dataclass
class _FileLoader:
    collector: _Collector
    name: str
    problems: list[Problem] = field(default_factory=list)
    default_department: str | None = None

    def problem(self, line: int | None, entry: str | None, message: str) -> None:
        self.problems.append(Problem(self.name, line, entry, message))

    def load(self, file: Path) -> None:
        root = self._compose(file)
        if root is None:
            return
        if not isinstance(root, MappingNode):
            self.problem(_line(root), None, "expected a mapping with 'entries:' and optionally 'department:'")
            return
        self._check_duplicate_keys(root, None, recursive=False)
        entries_node: Node | None = None
        department_node: Node | None = None
        for key_node, value_node in root.value:
            key = _scalar_key(key_node)
            if key == "entries":
                entries_node = value_node
            elif key == "department":
                department_node = value_node
            else:
                expected = " and ".join(repr(k) for k in _TOP_LEVEL_KEYS)
                self.problem(_line(key_node), None, f"unknown top-level key {key!r} (expected {expected})")
        if department_node is not None:
            self._load_default_department(department_node)
        if entries_node is None:
            self.problem(_line(root), None, "missing 'entries:' (a list of entries)")
        elif not isinstance(entries_node, SequenceNode):
            self.problem(_line(entries_node), None, "'entries' must be a list of entries")
        else:
            for position, entry_node in enumerate(entries_node.value, start=1):
                self._load_entry(position, entry_node)

    def _compose(self, file: Path) -> Node | None:
        try:
            data = file.read_bytes()
        except OSError as exc:
            self.problem(None, None, f"cannot be read: {exc.strerror or exc}")
            return None
        try:
            text = data.decode("utf-8-sig")  # tolerate the BOM some Windows editors add
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            self.problem(line, None, f"is not valid UTF-8 (byte 0x{data[exc.start]:02x}); save it as UTF-8")
            return None
        try:
            root = _compose(text)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            reason = exc.problem or "invalid YAML"
            if exc.context:
                # e.g. "while parsing a flow mapping (line 3)": where the unclosed thing started
                where = f" (line {exc.context_mark.line + 1})" if exc.context_mark else ""
                reason = f"{exc.context}{where}: {reason}"
            self.problem(None if mark is None else mark.line + 1, None, f"YAML syntax error: {reason}")
            return None
        except yaml.reader.ReaderError as exc:  # a control character the YAML spec forbids
            line = text.count("\n", 0, exc.position) + 1
            self.problem(line, None, f"YAML syntax error: character {exc.character!r} is not allowed")
            return None
        if root is None:
            self.problem(None, None, "is empty: expected 'entries:' with a list of entries")
        return root

    def _load_default_department(self, node: Node) -> None:
        if _is_null(node):
            return
        if not isinstance(node, ScalarNode) or node.tag != _STR_TAG or not node.value.strip():
            self.problem(_line(node), None, "'department' must be a department name")
            return
        self.default_department = node.value
        known = self.collector.known_departments
        if known is not None and node.value not in known:
            self.problem(_line(node), None, _unknown_department(node.value, known))

    def _load_entry(self, position: int, node: Node) -> None:
        label = f"#{position}"
        if not isinstance(node, MappingNode):
            self.problem(_line(node), label, "expected an entry (a mapping with id, questions and answer)")
            return
        id_node = _child(node, "id")
        if isinstance(id_node, ScalarNode) and id_node.tag == _STR_TAG and id_node.value.strip():
            label = id_node.value
        self._check_duplicate_keys(node, label, recursive=True)
        if not self._check_tags(node, label):
            return
        try:
            data: Any = SafeConstructor().construct_document(node)
        except yaml.MarkedYAMLError as exc:  # e.g. a malformed !!timestamp or !!binary
            mark = exc.problem_mark or exc.context_mark
            line = _line(node) if mark is None else mark.line + 1
            self.problem(line, label, f"cannot read this value: {exc.problem or exc}")
            return
        if not isinstance(data, dict):  # a tagged mapping such as !!set {a, b}
            self.problem(_line(node), label, "expected an entry (a mapping with id, questions and answer)")
            return
        # Constructing resolved merge keys (<<: *base) into the node, so an inherited id is visible now.
        id_node = _child(node, "id")
        if label.startswith("#") and is_slug(data.get("id")):
            label = data["id"]
        if "source" in data:
            source_key = _key_node(node, "source")
            self.problem(
                _line(source_key or node), label, "source: is set by the loader and must not be in the file"
            )
            del data["source"]

        inherited = data.get("department") is None
        if inherited:
            data["department"] = self.default_department
        source = SourceRef(self.name, _line(node))
        try:
            entry: FaqEntry | None = FaqEntry.model_validate({**data, "source": source})
        except ValidationError as exc:
            entry = None
            for error in exc.errors(include_url=False):
                self.problem(_line(_node_at(node, error["loc"])), label, _describe(error))

        self._check_duplicate_id(data.get("id"), id_node, node, label)
        self._check_department(data["department"], node, label, inherited=inherited)
        if entry is not None:
            self.collector.entries.append(entry)

    def _check_duplicate_id(
        self, entry_id: object, id_node: Node | None, node: MappingNode, label: str
    ) -> None:
        if not is_slug(entry_id) or id_node is None:
            return
        # An id merged in from an anchor elsewhere is reported at the entry that inherits it.
        inside = id_node.start_mark.line >= node.start_mark.line
        here = SourceRef(self.name, _line(id_node if inside else node))
        first = self.collector.first_seen.get(entry_id)
        if first is None:
            self.collector.first_seen[entry_id] = here
        else:
            self.problem(here.line, label, f"duplicate id: already used at {first}")

    def _check_department(
        self, department: object, node: MappingNode, label: str, *, inherited: bool
    ) -> None:
        if department is None:
            message = "has no department: set 'department:' on the entry or at the top of the file"
            self.problem(_line(node), label, message)
            return
        known = self.collector.known_departments
        if not isinstance(department, str) or not department.strip() or known is None or department in known:
            return  # a non-string or blank department is already a validation problem
        if inherited:
            return  # the file-level department was reported once, at its own line
        own = _child(node, "department")
        self.problem(_line(own or node), label, _unknown_department(department, known))

    def _check_tags(self, node: Node, label: str) -> bool:
        """Report every tag the safe constructor does not know; False if there was any."""
        clean = True
        for each in _walk(node):
            if each.tag not in _ALLOWED_TAGS:
                tag = each.tag.replace("tag:yaml.org,2002:", "!!")
                self.problem(_line(each), label, f"YAML tag {tag!r} is not allowed: only plain values are")
                clean = False
        return clean

    def _check_duplicate_keys(self, node: MappingNode, label: str | None, *, recursive: bool) -> None:
        # PyYAML silently keeps the last of two equal keys; an administrator never means that.
        for mapping in _walk(node) if recursive else (node,):
            if not isinstance(mapping, MappingNode):
                continue
            first_line: dict[str, int] = {}
            for key_node, _ in mapping.value:
                key = _scalar_key(key_node)
                if key is None or key == "<<":
                    continue
                if key in first_line:
                    message = f"duplicate key {key!r}: already given at line {first_line[key]}"
                    self.problem(_line(key_node), label, message)
                else:
                    first_line[key] = _line(key_node)


def _compose(text: str) -> Node | None:
    """The node tree of one YAML document; nothing is constructed until every tag has been checked.

    libyaml's safe loader is several times faster (a few thousand entries take seconds in pure
    Python), but its error messages differ, so a failure is composed again in pure Python: the
    problems administrators see are then the same with or without libyaml.
    """
    fast = getattr(yaml, "CSafeLoader", None)
    if fast is not None:
        try:
            node: Node | None = yaml.compose(text, Loader=fast)
        except yaml.YAMLError:
            pass
        else:
            return node
    return yaml.compose(text, Loader=yaml.SafeLoader)


def _unknown_department(department: str, known: frozenset[str]) -> str:
    listed = ", ".join(sorted(known)) if known else "none are configured"
    return f"unknown department {department!r} (known: {listed})"


def _describe(error: Mapping[str, Any]) -> str:
    """A pydantic error as "answer.en: must not be empty"."""
    kind = error["type"]
    if kind == "missing":
        message = "is required"
    elif kind == "extra_forbidden":
        message = f"unknown field (expected one of: {', '.join(_ENTRY_FIELDS)})"
    elif kind == "too_short":
        message = "must not be empty"
    elif kind == "value_error" and "ctx" in error:
        message = str(error["ctx"]["error"])
    else:
        message = error["msg"]
        given = error.get("input")
        if isinstance(given, str | int | float | bool) or given is None:
            message += f" (got {given!r})"
    where = _format_loc(error["loc"])
    return f"{where}: {message}" if where else message


def _format_loc(loc: Sequence[int | str]) -> str:
    text = ""
    for part in loc:
        if part == "[key]":
            continue  # the key itself is the problem; its name is already in the path
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def _node_at(node: Node, loc: Sequence[int | str]) -> Node:
    """The deepest node of the composed tree that exists along a pydantic error location."""
    current = node
    key_node: Node | None = None
    for part in loc:
        if part == "[key]" and key_node is not None:
            return key_node
        if isinstance(current, MappingNode):
            found = None
            for candidate_key, candidate_value in current.value:
                # the last equal key wins, as in the constructor
                if isinstance(candidate_key, ScalarNode) and candidate_key.value == str(part):
                    found = (candidate_key, candidate_value)
            if found is None:
                break
            key_node, current = found
        elif isinstance(current, SequenceNode) and isinstance(part, int) and 0 <= part < len(current.value):
            key_node, current = None, current.value[part]
        else:
            break
    return current


def _walk(node: Node) -> Iterable[Node]:
    """Every node below `node` once; aliases make the tree a graph, possibly with cycles."""
    seen: set[int] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, MappingNode):
            for key_node, value_node in reversed(current.value):
                stack.extend((value_node, key_node))
        elif isinstance(current, SequenceNode):
            stack.extend(reversed(current.value))


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _NULL_TAG


def _scalar_key(node: Node) -> str | None:
    return node.value if isinstance(node, ScalarNode) and isinstance(node.value, str) else None


def _key_node(mapping: MappingNode, key: str) -> Node | None:
    found = None
    for key_node, _ in mapping.value:
        if _scalar_key(key_node) == key:
            found = key_node
    return found


def _child(mapping: MappingNode, key: str) -> Node | None:
    found = None
    for key_node, value_node in mapping.value:
        if _scalar_key(key_node) == key:
            found = value_node
    return found
