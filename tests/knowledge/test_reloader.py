from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from knowledge import KnowledgeError, KnowledgeHolder, Problem

Write = Callable[[str, str], Path]

GOOD = """
department: civil
entries:
  - id: passport
    questions: {en: ["Where can I apply for a passport?"]}
    answer: {en: "At the district office."}
"""

GOOD_PLUS = (
    GOOD
    + """
  - id: parking-permit
    questions: {en: ["How do I apply for a residential parking permit?"]}
    answer: {en: "On the district website."}
"""
)

BROKEN = """
department: civil
entries:
  - id: passport
    questions: {en: ["Where can I apply for a passport?"]}
    answer: {en: ""}
"""

BROKEN_PROBLEM = Problem("civil.yaml", 5, "passport", "answer.en: must not be empty")


def ids(holder: KnowledgeHolder) -> list[str]:
    base, _ = holder.current
    return [entry.id for entry in base.entries]


def test_nothing_is_loaded_until_load(faq: Path, write: Write) -> None:
    write("civil.yaml", GOOD)
    holder = KnowledgeHolder(faq)
    with pytest.raises(RuntimeError, match="call load"):
        _ = holder.current
    holder.load()
    base, matcher = holder.current
    assert ids(holder) == ["passport"]
    assert matcher.match("Where can I apply for a passport?")[0].entry is base.entries[0]


def test_the_first_load_fails_loudly(faq: Path, write: Write) -> None:
    write("civil.yaml", BROKEN)
    holder = KnowledgeHolder(faq)
    with pytest.raises(KnowledgeError) as caught:
        holder.load()
    assert caught.value.problems == [BROKEN_PROBLEM]


def test_known_departments_are_checked(faq: Path, write: Write) -> None:
    write("civil.yaml", GOOD)
    with pytest.raises(KnowledgeError, match="unknown department 'civil'"):
        KnowledgeHolder(faq, known_departments=["environment"]).load()


def test_a_broken_edit_keeps_the_last_good_base_and_a_fix_is_picked_up(
    faq: Path, write: Write, caplog: pytest.LogCaptureFixture
) -> None:
    write("civil.yaml", GOOD)
    holder = KnowledgeHolder(faq)
    holder.load()
    good = holder.current

    write("civil.yaml", BROKEN)
    with caplog.at_level(logging.ERROR, logger="knowledge"):
        error = holder.reload()

    assert error is not None
    assert error.problems == [BROKEN_PROBLEM]
    assert holder.current is good
    assert [(record.name, record.levelno) for record in caplog.records] == [("knowledge", logging.ERROR)]
    assert str(BROKEN_PROBLEM) in caplog.text

    write("civil.yaml", GOOD_PLUS)
    assert holder.reload() is None
    assert holder.current is not good
    assert ids(holder) == ["passport", "parking-permit"]
    _, matcher = holder.current
    assert matcher.match("residential parking permit")[0].entry.id == "parking-permit"


async def wait_until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    async def poll() -> None:
        # The holder has no event to wait on: a reload only swaps `current`, so poll it.
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)


async def test_watch_reloads_on_change_and_reports_each_broken_state_once(faq: Path, write: Write) -> None:
    write("civil.yaml", GOOD)
    holder = KnowledgeHolder(faq)
    holder.load()
    errors: list[KnowledgeError] = []

    async def on_error(error: KnowledgeError) -> None:
        errors.append(error)

    watcher = asyncio.create_task(holder.watch(0.02, on_error))
    try:
        write("civil.yaml", GOOD_PLUS)
        await wait_until(lambda: len(ids(holder)) == 2)
        good = holder.current

        write("civil.yaml", BROKEN)
        await wait_until(lambda: bool(errors))
        await asyncio.sleep(0.15)  # several more checks of the same broken files
        assert [error.problems for error in errors] == [[BROKEN_PROBLEM]]
        assert holder.current is good

        write("new.yaml", "entries: [")  # another broken state: reported again
        await wait_until(lambda: len(errors) == 2)
        assert {problem.file for problem in errors[1].problems} == {"civil.yaml", "new.yaml"}

        (faq / "new.yaml").unlink()
        write("civil.yaml", GOOD)
        await wait_until(lambda: ids(holder) == ["passport"])
        assert len(errors) == 2
    finally:
        watcher.cancel()
        with pytest.raises(asyncio.CancelledError):
            await watcher
    assert watcher.cancelled()


async def test_watch_survives_a_failing_on_error(
    faq: Path, write: Write, caplog: pytest.LogCaptureFixture
) -> None:
    write("civil.yaml", GOOD)
    holder = KnowledgeHolder(faq)
    holder.load()
    calls: list[KnowledgeError] = []

    async def on_error(error: KnowledgeError) -> None:
        calls.append(error)
        raise ConnectionError("Slack is down")

    watcher = asyncio.create_task(holder.watch(0.02, on_error))
    try:
        write("civil.yaml", BROKEN)
        await wait_until(lambda: bool(calls))
        write("civil.yaml", GOOD_PLUS)
        await wait_until(lambda: len(ids(holder)) == 2)
        assert not watcher.done()
    finally:
        watcher.cancel()
        with pytest.raises(asyncio.CancelledError):
            await watcher
    assert "on_error callback failed" in caplog.text


async def test_watch_with_no_interval_returns_at_once(faq: Path) -> None:
    holder = KnowledgeHolder(faq)
    await asyncio.wait_for(holder.watch(0), timeout=1)


def test_fingerprint_follows_the_yaml_files(faq: Path, write: Write) -> None:
    holder = KnowledgeHolder(faq)
    assert holder.fingerprint() == ()
    write("civil.yaml", GOOD)
    write("notes.txt", "ignored")
    first = holder.fingerprint()
    assert [name for name, _, _ in first] == ["civil.yaml"]
    write("civil.yaml", GOOD_PLUS)
    assert holder.fingerprint() != first
    missing = KnowledgeHolder(faq / "nowhere").fingerprint()
    assert missing not in ((), first)
