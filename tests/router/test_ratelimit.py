"""The dispatcher's pacing per channel: a slow channel holds up no other, a send's cost and a
provider's Retry-After pace it, retries stop when a message is too old, leases, and the order of
one citizen's messages."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import pytest

from bot import Bot, build
from channels.base import OutboundMessage, RateLimit
from channels.memory import MemoryChannel
from router import Staff
from router.ratelimit import Pacer, wait_all
from store import Database, Outbox, OutboxStatus, data
from tests.conftest import ROOT, FakeClock, all_sent, config_for_tests, outbox_of
from tests.waiting import until

City = tuple[Bot, MemoryChannel]
KIM = Staff(id="cli:kim", name="kim")


# --- the dispatcher's pacing ----------------------------------------------------------------------


class Slow(MemoryChannel):
    """A channel whose provider allows two sends a second."""

    name: ClassVar[str] = "slow"


async def test_a_slow_channel_never_holds_up_another(database: Database, tmp_path: Path) -> None:
    slow, fast = Slow(RateLimit(per_second=2)), MemoryChannel()
    bot = await build(
        config_for_tests(tmp_path), base_dir=ROOT, channels=[slow, fast], webchat=False, db=database
    )
    async with bot.running(sweeps=False):
        started = time.monotonic()
        for n in range(6):
            await slow.push("소파 버리는 방법", sender=f"s{n}")
        await fast.push("소파 버리는 방법")
        await fast.pop()
        slow_sent_meanwhile = len(slow.sent)
        for _ in range(6):
            await slow.pop()
        slow_total = time.monotonic() - started
    # Six sends at two a second take at least 2.5 s; the other channel's reply did not wait for them.
    assert slow_total >= 2.4
    assert slow_sent_meanwhile < 6


async def test_cost_and_retry_after_pace_the_channel(database: Database, tmp_path: Path) -> None:
    channel = MemoryChannel(RateLimit(per_second=10))
    bot = await build(
        config_for_tests(tmp_path), base_dir=ROOT, channels=[channel], webchat=False, db=database
    )
    async with bot.running(sweeps=False):
        channel.retry_after = 1.0
        channel.failures = ["transient"]  # a 429 asking for a second's pause
        started = time.monotonic()
        await channel.push("소파 버리는 방법", sender="a")
        await channel.push("소파 버리는 방법", sender="b")
        first, second = await channel.pop(), await channel.pop()
        # Both waited for the Retry-After, also the one that was not refused.
        assert time.monotonic() - started >= 0.95
        assert {first.recipient, second.recipient} == {"a", "b"}
    assert channel.send_cost(OutboundMessage("memory", "a", "x" * 2500, "k")) == 3


async def test_a_transient_failure_is_retried_until_the_message_is_too_old(
    database: Database, tmp_path: Path, clock: FakeClock
) -> None:
    # The test drives every round itself: no dispatcher loop running beside it takes rounds away.
    memory = MemoryChannel()
    bot = await build(
        config_for_tests(tmp_path), base_dir=ROOT, channels=[memory], webchat=False, db=database, clock=clock
    )
    await memory.start(bot.host)
    bot.dispatcher.config = bot.dispatcher.config.model_copy(
        update={"max_attempts": 1000, "give_up_after_hours": 1}
    )
    memory.failures = ["transient"] * 1000
    await memory.push("소파 버리는 방법")
    for _ in range(100):
        clock.now += timedelta(minutes=2)
        await bot.dispatcher.run_once()
        if (await outbox_of(bot))[0].status == OutboxStatus.FAILED:
            break
    [row] = await outbox_of(bot)
    assert row.status == OutboxStatus.FAILED and "gave up" in (row.last_error or "")
    assert 25 <= row.attempts <= 35  # every two minutes for an hour


async def test_a_lease_is_renewed_only_while_the_claim_is_still_ours(database: Database) -> None:
    now = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    async with database.transaction() as s:
        await data.add_outbox(
            s,
            row=Outbox(idempotency_key="k1", channel="sms", recipient="+82", payload={}, next_attempt_at=now),
        )
    async with database.transaction() as s:
        [mine] = await data.claim_outbox(s, channels=["sms"], now=now, lease=timedelta(seconds=60), limit=5)
        assert await data.renew_outbox(
            s, outbox_id=mine.id or 0, attempt=mine.attempts, until=now + timedelta(seconds=120)
        )
    later = now + timedelta(minutes=5)  # the renewed lease ran out too: another sender takes the row
    async with database.transaction() as s:
        [theirs] = await data.claim_outbox(
            s, channels=["sms"], now=later, lease=timedelta(seconds=60), limit=5
        )
        assert theirs.attempts == mine.attempts + 1
        assert not await data.renew_outbox(s, outbox_id=mine.id or 0, attempt=mine.attempts, until=later)


async def test_a_send_held_by_the_overall_limit_still_keeps_the_recipients_interval() -> None:
    overall, per_recipient = Pacer(20.0), Pacer(10.0)  # 0.05 s apart overall, 0.1 s to one recipient
    sent: list[tuple[str, float]] = []
    for key in ["b", "c", "a", "a"]:  # a's first send waits for the overall slot
        await wait_all([(per_recipient, key), (overall, "")])
        sent.append((key, time.monotonic()))
    [first, second] = [at for key, at in sent if key == "a"]
    assert second - first >= 0.099
    gaps = [b - a for (_, a), (_, b) in itertools.pairwise(sent)]
    assert min(gaps) >= 0.049


async def test_of_two_instances_only_one_sends_on_a_rate_limited_channel(
    database: Database, tmp_path: Path
) -> None:
    if database.dialect != "postgresql":
        pytest.skip("SQLite serves one instance on one host")
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    async with database.engine.connect() as connection:
        schema = (await connection.execute(text("SELECT current_schema()"))).scalar()
    url = database.engine.url.render_as_string(hide_password=False)
    other = Database(create_async_engine(url, connect_args={"server_settings": {"search_path": schema}}))
    first, second = Slow(RateLimit(per_second=50)), Slow(RateLimit(per_second=50))
    config = config_for_tests(tmp_path)
    a = await build(config, base_dir=ROOT, channels=[first], webchat=False, db=database)
    b = await build(config, base_dir=ROOT, channels=[second], webchat=False, db=other, migrate=False)
    async with a.running(sweeps=False), b.running(sweeps=False):
        for n in range(6):
            await (first if n % 2 else second).push("소파 버리는 방법", sender=f"s{n}", message_id=f"m{n}")
        await until(lambda: all_sent(a))
    # The provider's limit is the account's: one instance sent everything, paced as one.
    assert sorted([len(first.sent), len(second.sent)]) == [0, 6]


async def test_a_retried_message_is_not_overtaken_by_the_next_one_to_the_same_citizen(
    database: Database, tmp_path: Path
) -> None:
    memory = MemoryChannel()
    bot = await build(
        config_for_tests(tmp_path), base_dir=ROOT, channels=[memory], webchat=False, db=database
    )
    await memory.start(bot.host)  # messages are queued before the dispatcher runs: one batch
    receipt = await memory.push("가로등이 고장났어요 어두워요")
    assert receipt.reference
    await bot.desk.reply(receipt.reference, "내일 수리합니다", staff=KIM)
    memory.failures, memory.retry_after = ["transient"], 0.3  # the first one hits a 429
    async with bot.running(sweeps=False):
        first = await memory.pop()
        await memory.push("언제 오나요?")  # a third message while the first waits
        second, third = await memory.pop(), await memory.pop()
    assert first.text.startswith(f"접수번호 {receipt.reference}: 교통도로과에 전달했습니다")
    assert second.text == f"[{receipt.reference}] 교통도로과: 내일 수리합니다"
    assert third.text.startswith(f"접수번호 {receipt.reference}에 추가했습니다")
    rows = await outbox_of(bot)
    assert [r.attempts for r in rows] == [2, 1, 1]  # waiting behind another is not an attempt
