"""Delivery: retries with backoff, permanent failures recorded, and nothing lost in a crash."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from bot import Bot, build
from channels.memory import MemoryChannel
from store import Outbox, OutboxStatus, data
from tests.conftest import ROOT, FakeClock, config_for_tests

City = tuple[Bot, MemoryChannel]


async def settle(bot: Bot, clock: FakeClock, until: OutboxStatus) -> None:
    """Move the fake clock past each retry's backoff until the only row reaches `until`."""
    for _ in range(200):
        rows = await outbox_rows(bot)
        if rows and rows[0][0] == until:
            return
        clock.now += timedelta(seconds=1)
        bot.dispatcher.wake()
        await asyncio.sleep(0.01)
    raise AssertionError(f"outbox never became {until}: {await outbox_rows(bot)}")


async def outbox_rows(bot: Bot) -> list[tuple[str, int, str | None]]:
    async with bot.db.session() as s:
        rows = (await s.exec(select(Outbox).order_by(col(Outbox.id)))).all()
    return [(r.status, r.attempts, r.last_error) for r in rows]


async def test_a_transient_failure_is_retried_until_it_is_sent(city: City, clock: FakeClock) -> None:
    bot, memory = city
    memory.failures = ["transient", "transient"]
    await memory.push("소파 버리는 방법")
    await settle(bot, clock, OutboxStatus.SENT)
    assert (await memory.pop()).text.startswith("대형 폐기물")
    [(status, attempts, error)] = await outbox_rows(bot)
    assert (status, attempts, error) == (OutboxStatus.SENT, 3, None)


async def test_a_permanent_failure_stops_and_is_recorded_on_the_ticket(city: City, clock: FakeClock) -> None:
    bot, memory = city
    memory.failures = ["permanent"]
    receipt = await memory.push("소파 버리는 방법")
    await settle(bot, clock, OutboxStatus.FAILED)
    [(status, attempts, error)] = await outbox_rows(bot)
    assert (status, attempts) == (OutboxStatus.FAILED, 1)
    assert error == "permanent: the recipient cannot be reached"
    assert receipt.reference
    view = await bot.desk.show(receipt.reference)
    assert view.events[-1].kind == "delivery_failed" and view.events[-1].detail["attempts"] == 1
    assert memory.sent == []


async def test_the_last_attempt_gives_up(city: City, clock: FakeClock) -> None:
    bot, memory = city
    memory.failures = ["transient"] * 3  # max_attempts is 3 in the tests' config
    await memory.push("소파 버리는 방법")
    await settle(bot, clock, OutboxStatus.FAILED)
    [(status, attempts, error)] = await outbox_rows(bot)
    assert (status, attempts) == (OutboxStatus.FAILED, 3)
    assert error and error.startswith("gave up after 3 attempts: the provider is down")


# The child process: a bot whose channel never finishes sending (or whose dispatcher never runs),
# killed with SIGKILL once the message is stored. The parent then starts a bot on the same database.
CHILD = textwrap.dedent(
    """
    import asyncio, sys
    sys.path.insert(0, {root!r})
    from pathlib import Path
    import bot
    from channels.memory import MemoryChannel
    from tests.conftest import config_for_tests

    class Stuck(MemoryChannel):
        async def send(self, message):
            print("SENDING", flush=True)
            await asyncio.Event().wait()

    async def main():
        config = config_for_tests(Path({tmp!r}))
        dispatcher = config.router.dispatcher.model_copy(update={{"lease_seconds": 1}})
        router = config.router.model_copy(update={{"dispatcher": dispatcher}})
        config = config.model_copy(update={{"router": router}})
        channel = Stuck()
        b = await bot.build(config, base_dir=Path({root!r}), channels=[channel], webchat=False)
        if {run_dispatcher}:
            async with b.running():
                await channel.push("소파 버리는 방법")
                await asyncio.Event().wait()
        else:
            await channel.start(b.host)
            await channel.push("소파 버리는 방법")
            print("STORED", flush=True)
            await asyncio.Event().wait()

    asyncio.run(main())
    """
)


@pytest.mark.parametrize(("run_dispatcher", "signal_line"), [(False, "STORED"), (True, "SENDING")])
async def test_a_reply_pending_when_the_process_was_killed_is_sent_after_restart(
    tmp_path: Path, run_dispatcher: bool, signal_line: str
) -> None:
    code = CHILD.format(root=str(ROOT), tmp=str(tmp_path), run_dispatcher=run_dispatcher)
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        assert child.stdout is not None and child.stderr is not None
        line = await asyncio.wait_for(child.stdout.readline(), 60)
        if line.decode().strip() != signal_line:
            child.kill()
            pytest.fail(f"the child said {line!r}: {(await child.stderr.read()).decode()}")
    finally:
        if child.returncode is None:
            os.kill(child.pid, signal.SIGKILL)
        await child.wait()

    memory = MemoryChannel()
    restarted = await build(config_for_tests(tmp_path), base_dir=ROOT, channels=[memory], webchat=False)
    async with restarted.running():
        reply = await memory.pop(timeout=10)  # a claimed row waits for its 1 s lease to run out
        assert reply.text.startswith("대형 폐기물은 구청")
        await asyncio.sleep(0.2)
        assert len(memory.sent) == 1
        async with restarted.db.session() as s:
            assert await data.count_outbox(s, status=OutboxStatus.SENT) == 1
            assert await data.count_outbox(s, status=OutboxStatus.PENDING) == 0
