"""Delivery: retries with backoff, permanent failures recorded, and nothing lost in a crash."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from bot import Bot, build
from channels.base import OutboundMessage, SendResult
from channels.memory import MemoryChannel
from store import Database, Outbox, OutboxStatus, data
from tests.conftest import ROOT, FakeClock, config_for_tests
from tests.waiting import until

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


async def test_a_stored_message_that_cannot_be_read_fails_and_the_next_one_goes(
    city: City, clock: FakeClock
) -> None:
    bot, memory = city
    bad = OutboundMessage(channel="memory", recipient="kim", text="?", idempotency_key="bad").to_payload()
    bad["desk"] = {"kind": "poster"}  # written by a version that had a desk item this one lacks
    async with bot.db.transaction() as session:
        await data.queue_outgoing(session, payload=bad, ticket_id=None, now=clock.now)
    await memory.push("소파 버리는 방법")
    await settle(bot, clock, OutboxStatus.FAILED)
    assert (await memory.pop()).text.startswith("대형 폐기물")
    rows = await outbox_rows(bot)
    assert rows[0] == (
        OutboxStatus.FAILED,
        1,
        "permanent: the stored message cannot be read (unknown desk item kind 'poster')",
    )

    async def sent() -> bool:
        return (await outbox_rows(bot))[1][0] == OutboxStatus.SENT

    await until(sent)  # its outcome is committed with its batch, after the send


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


class Remembering(MemoryChannel):
    """A provider that can say what it received (as Twilio's message list and Slack's history can)."""

    can_find_sent = True

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    async def find_sent(self, message: OutboundMessage, *, since: datetime) -> SendResult | None:
        self.asked.append(message.idempotency_key)
        for n, sent in enumerate(self.sent, start=1):
            if sent.idempotency_key == message.idempotency_key:
                return SendResult(provider_message_id=f"out-{n}")
        return None


@pytest.mark.parametrize("reached_the_provider", [True, False])
async def test_a_send_cut_short_by_a_crash_is_asked_about_before_it_is_sent_again(
    database: Database, tmp_path: Path, clock: FakeClock, reached_the_provider: bool
) -> None:
    channel = Remembering()
    config = config_for_tests(tmp_path)
    bot = await build(config, base_dir=ROOT, channels=[channel], webchat=False, db=database, clock=clock)
    async with bot.running(sweeps=False):
        await channel.push("소파 버리는 방법")
        reply = await channel.pop()
    # Play the crash: the row is claimed again by this instance, as if it died after handing the
    # reply to the provider (or before) and before recording the outcome.
    async with database.transaction() as s:
        (row,) = (await s.exec(select(Outbox))).all()
        row.status, row.claimed_until, row.claimed_by = (
            OutboxStatus.SENDING,
            clock.now + timedelta(hours=1),
            bot.dispatcher.instance,
        )
        row.claimed_at = clock.now
        s.add(row)
    if not reached_the_provider:
        channel.sent.clear()
    restarted = await build(
        config, base_dir=ROOT, channels=[channel], webchat=False, db=database, clock=clock
    )
    async with restarted.running(sweeps=False):  # takes its own row back at once, not after the lease
        await until_sent(restarted)
    assert channel.asked == [reply.idempotency_key]
    assert [m.idempotency_key for m in channel.sent] == [reply.idempotency_key]  # exactly once
    async with database.session() as s:
        (row,) = (await s.exec(select(Outbox))).all()
    assert (row.status, row.attempts, row.unsure_since) == (OutboxStatus.SENT, 2, None)
    assert row.provider_message_id == "out-1"


async def until_sent(bot: Bot) -> None:
    async with asyncio.timeout(5):
        while True:
            async with bot.db.session() as s:
                if await data.count_outbox(s, status=OutboxStatus.SENT) == 1:
                    return
            await asyncio.sleep(0.02)


async def test_a_send_cut_short_but_reported_by_the_provider_is_not_sent_again(
    database: Database, tmp_path: Path, clock: FakeClock
) -> None:
    memory = MemoryChannel()  # a provider that cannot be asked, but reports deliveries (callbacks)
    config = config_for_tests(tmp_path)
    bot = await build(config, base_dir=ROOT, channels=[memory], webchat=False, db=database, clock=clock)
    async with bot.running(sweeps=False):
        await memory.push("소파 버리는 방법")
        await memory.pop()
    async with database.transaction() as s:
        (row,) = (await s.exec(select(Outbox))).all()
        row.status, row.claimed_until = OutboxStatus.SENDING, clock.now + timedelta(hours=1)
        row.claimed_by, row.claimed_at = bot.dispatcher.instance, clock.now
        row.delivery_status = "delivered"  # its status callback came before the crash was noticed
        s.add(row)
    restarted = await build(config, base_dir=ROOT, channels=[memory], webchat=False, db=database, clock=clock)
    async with restarted.running(sweeps=False):
        await until_sent(restarted)
    assert len(memory.sent) == 1
