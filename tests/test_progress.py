from __future__ import annotations

import io

import pytest

import progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("stream", [Terminal(), io.StringIO()], ids=["terminal", "file"])
def test_a_bar_on_a_terminal_and_nothing_in_a_file(
    monkeypatch: pytest.MonkeyPatch, stream: io.StringIO
) -> None:
    monkeypatch.setattr("sys.stderr", stream)
    update = progress.terminal("reading rows", unit="row")
    for done in (100, 200, 250):
        update(done, 250)
    shown = stream.getvalue()
    if isinstance(stream, Terminal):
        assert "reading rows:" in shown and "/250" in shown  # drawn, at most ten times a second
        assert shown.endswith("\r")  # and wiped when done: the command's own report follows
    else:
        assert shown == ""


def test_an_unknown_total_counts_up(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = Terminal()
    monkeypatch.setattr("sys.stderr", stream)
    update = progress.terminal("purging", unit="ticket")
    update(200, 0)
    update(400, 0)
    assert "purging:" in stream.getvalue() and "/" not in stream.getvalue().split("[")[0]
