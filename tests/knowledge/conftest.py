from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

Write = Callable[[str, str], Path]


@pytest.fixture
def faq(tmp_path: Path) -> Path:
    folder = tmp_path / "faq"
    folder.mkdir()
    return folder


@pytest.fixture
def write(faq: Path) -> Write:
    """Write a dedented YAML file under the FAQ folder; each write moves its mtime a second forward,
    so a watcher sees the change even on file systems with a coarse clock."""

    def _write(name: str, text: str) -> Path:
        file = faq / name
        file.parent.mkdir(parents=True, exist_ok=True)
        before = file.stat().st_mtime_ns if file.exists() else 0
        file.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        after = max(file.stat().st_mtime_ns, before + 1_000_000_000)
        os.utime(file, ns=(after, after))
        return file

    return _write
