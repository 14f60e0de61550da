"""DESIGN.md's "who owns what", checked on the source: which package may import which, and no
import cycle. Every import counts, in a function or under `if TYPE_CHECKING:` too (a type is a
dependency as well), except under `if __name__ == "__main__":`, a script's entry point."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("channels", "router", "knowledge", "store", "commands")
PROVIDER_SDKS = ("twilio", "telegram", "tweepy", "slack_sdk", "slack_bolt", "aiosmtpd", "aioimaplib")
DATABASE = ("sqlalchemy", "sqlmodel", "aiosqlite", "asyncpg", "alembic")


def product_modules() -> dict[str, Path]:
    """Every module of the product by dotted name: the packages and the top-level scripts."""
    found = {path.stem: path for path in ROOT.glob("*.py")}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _skipped(node: ast.If) -> bool:
    return ast.unparse(node.test) in ("__name__ == '__main__'", '__name__ == "__main__"')


def _imports(tree: ast.AST) -> Iterator[tuple[str, list[str]]]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _skipped(node):
            yield from _imports(ast.Module(body=node.orelse, type_ignores=[]))
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module, [alias.name for alias in node.names]
        else:
            yield from _imports(node)


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """What a module imports: project modules by name (`from a import b` counts `a.b` when that is a
    module, and `a` only when something else is taken from it), anything else by its top-level name."""
    found: set[str] = set()
    for module, names in _imports(ast.parse(path.read_text(encoding="utf-8"))):
        submodules = {f"{module}.{name}" for name in names if f"{module}.{name}" in modules}
        found.update(submodules)
        if len(submodules) < max(1, len(names)):  # something is taken from the module itself
            found.add(module if module in modules else module.split(".")[0])
    return found


MODULES = product_modules()
GRAPH = {name: imports_of(path, MODULES) for name, path in MODULES.items()}


def _in(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def violations(package: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{name} imports {target}"
        for name, targets in GRAPH.items()
        if _in(name, (package,))
        for target in targets
        if _in(target, forbidden)
    )


UPWARD = ("router", "channels", "commands", "bot")


def test_store_imports_nothing_above_it() -> None:
    assert violations("store", (*UPWARD, "knowledge")) == []


def test_knowledge_knows_no_tickets_and_no_channels() -> None:
    assert violations("knowledge", (*UPWARD, "store")) == []


def test_channels_touch_neither_the_store_nor_the_router() -> None:
    assert violations("channels", ("router", "store", "commands", "bot")) == []


# What every layer may know of channels: the shared message types and the staff desk's items.
SHARED_CHANNEL_TYPES = ("channels", "channels.base", "channels.desk")


def test_router_speaks_no_provider_protocol_and_no_sql() -> None:
    adapters = tuple(
        name for name in MODULES if name.startswith("channels.") and name not in SHARED_CHANNEL_TYPES
    )
    assert violations("router", (*PROVIDER_SDKS, *DATABASE, *adapters, "commands", "bot", "server")) == []


def test_importing_the_router_loads_no_provider_sdk_and_no_adapter() -> None:
    code = (
        "import sys, router\n"
        "loaded = sorted({m.split('.')[0] for m in sys.modules} & set(sys.argv[1].split(',')))\n"
        "shared = set(sys.argv[2].split(','))\n"
        "adapters = sorted(m for m in sys.modules if m.startswith('channels.') and m not in shared)\n"
        "print(loaded + adapters)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, ",".join(PROVIDER_SDKS), ",".join(SHARED_CHANNEL_TYPES)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "[]"


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in GRAPH[node]:
            if target not in GRAPH:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in GRAPH:
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle() -> None:
    assert _cycles() == []


@pytest.mark.parametrize("rule", ["store", "knowledge"])
def test_the_checker_sees_an_upward_import(rule: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rules can fail: a planted import of the router is reported."""
    planted = {**GRAPH, f"{rule}.planted": {"router.intake"}}
    monkeypatch.setattr(sys.modules[__name__], "GRAPH", planted)
    assert violations(rule, UPWARD) == [f"{rule}.planted imports router.intake"]


def test_the_checker_sees_a_cycle(monkeypatch: pytest.MonkeyPatch) -> None:
    planted = {**GRAPH, "store.a": {"store.b"}, "store.b": {"store.a"}}
    monkeypatch.setattr(sys.modules[__name__], "GRAPH", planted)
    assert ["store.a", "store.b"] in _cycles()
