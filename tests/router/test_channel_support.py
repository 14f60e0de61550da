"""What the router does for provider channels: commands, opt-out, public replies, media, delivery
reports, poll cursors, and the dispatcher's per-channel pacing. Played on the in-memory channel;
each provider's own tests play the same through its adapter and a stand-in for the provider."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import pytest
from sqlmodel import col, select

from bot import Bot, build
from channels.base import Attachment, DeliveryReport, OutboundMessage, RateLimit
from channels.memory import MemoryChannel
from router import Staff
from router.ratelimit import Pacer, wait_all
from store import Database, Media, MediaStatus, Outbox, OutboxStatus, data
from tests.conftest import ROOT, FakeClock, config_for_tests

City = tuple[Bot, MemoryChannel]
KIM = Staff(id="cli:kim", name="kim")


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def outbox(bot: Bot) -> list[Outbox]:
    async with bot.db.session() as s:
        return list((await s.exec(select(Outbox).order_by(col(Outbox.id)))).all())


# --- commands ---------------------------------------------------------------------------------


async def test_stop_silences_every_later_send_until_start(city: City) -> None:
    bot, memory = city
    receipt = await memory.push("가로등이 고장났어요 어두워요")
    assert receipt.reference
    await memory.pop()  # the forwarded notice

    assert not (await memory.push("STOP", command="stop")).duplicate
    await bot.desk.reply(receipt.reference, "내일 수리합니다", staff=KIM)

    async def refused() -> bool:
        return (await outbox(bot))[-1].status == OutboxStatus.FAILED

    await until(refused)
    assert memory.pending() == 0  # no reply to STOP, and the staff reply is not sent
    assert "opted out" in ((await outbox(bot))[-1].last_error or "")
    view = await bot.desk.show(receipt.reference)
    assert [e.kind for e in view.events].count("delivery_failed") == 1

    await memory.push("START", command="unstop")  # the opted_in notice is for SMS only (its test is there)
    await bot.desk.reply(receipt.reference, "수리했습니다", staff=KIM)
    assert "수리했습니다" in (await memory.pop()).text


async def test_help_and_start_answer_with_their_notices_in_the_contact_language(city: City) -> None:
    bot, memory = city
    await memory.push("/start", command="start", language_hint="en")
    welcome = (await memory.pop()).text
    assert welcome == bot.lifecycle.notices.render("welcome", "en")
    await memory.push("HELP", command="help", sender="citizen-2")
    assert (await memory.pop()).text == bot.lifecycle.notices.render("help", "ko")  # not the SMS variant


async def test_status_without_a_reference_gives_the_latest_ticket_or_help(city: City) -> None:
    bot, memory = city
    await memory.push("/status", command="status")
    assert (await memory.pop()).text == bot.lifecycle.notices.render("help", "ko")
    receipt = await memory.push("가로등이 고장났어요 어두워요")
    await memory.pop()
    await memory.push("/status", command="status")
    status = (await memory.pop()).text
    assert receipt.reference and receipt.reference in status


# --- public messages ----------------------------------------------------------------------------


async def test_a_public_message_gets_only_its_reference_in_public_and_the_rest_privately(city: City) -> None:
    bot, memory = city
    text = "우리 집 앞 가로등이 고장났어요 010-1234-5678로 연락주세요"
    receipt = await memory.push(text, public=True, reply_to="tweet-77")
    assert receipt.reference
    sent = [await memory.pop(), await memory.pop()]
    public = [m for m in sent if m.reply_to == "tweet-77"]
    private = [m for m in sent if m.reply_to is None]
    assert len(public) == 1 and len(private) == 1
    assert public[0].text == bot.lifecycle.render_notice(
        (await bot.desk.show(receipt.reference)).ticket, "public_reply"
    )
    assert receipt.reference in public[0].text
    for secret in ("010-1234-5678", "가로등", "교통"):  # no personal detail, no content, no department
        assert secret not in public[0].text
    assert receipt.reference in private[0].text and "교통도로과" in private[0].text


async def test_the_public_reply_is_sent_once_per_ticket_and_not_without_one(city: City) -> None:
    _, memory = city
    receipt = await memory.push("가로등이 고장났어요 어두워요", public=True, reply_to="tweet-1")
    sent = [await memory.pop(), await memory.pop()]
    assert [m.reply_to for m in sent].count("tweet-1") == 1
    await memory.push("아직도 어두워요", public=True, reply_to="tweet-2")  # joins the open ticket
    joined = await memory.pop()
    assert joined.reply_to is None and receipt.reference and receipt.reference in joined.text
    await memory.push("/start", command="start", public=True, reply_to="tweet-3")  # no ticket to name
    assert (await memory.pop()).reply_to is None
    await asyncio.sleep(0.2)
    assert memory.pending() == 0  # nothing more in public


# --- media ----------------------------------------------------------------------------------------


async def media_rows(bot: Bot) -> list[Media]:
    async with bot.db.session() as s:
        return list((await s.exec(select(Media).order_by(col(Media.id)))).all())


async def test_a_photo_is_copied_into_the_store_and_kept_after_the_link_expires(
    city: City, clock: FakeClock
) -> None:
    bot, memory = city
    memory.files["https://provider.example/p1"] = (b"\x89PNG photo", "image/png")
    memory.fetch_failures = ["transient"]  # the provider hiccups once
    receipt = await memory.push(
        "도로에 큰 구멍",
        attachments=(Attachment(url="https://provider.example/p1", content_type="image/png"),),
    )

    async def stored() -> bool:
        clock.now += timedelta(seconds=1)  # past the retry's backoff
        bot.media.wake()
        rows = await media_rows(bot)
        return bool(rows) and rows[0].status == MediaStatus.STORED

    await until(stored)
    del memory.files["https://provider.example/p1"]  # the provider's link expires
    [row] = await media_rows(bot)
    assert (row.data, row.content_type, row.size, row.attempts) == (b"\x89PNG photo", "image/png", 10, 2)
    assert receipt.reference
    view = await bot.desk.show(receipt.reference)
    [inbound] = [m for m in view.messages if m.direction == "in"]
    assert inbound.attachments[0]["media_id"] == row.id


async def test_a_photo_that_is_gone_is_marked_failed_with_an_event(city: City) -> None:
    bot, memory = city
    receipt = await memory.push("사진 첨부", attachments=(Attachment(url="https://provider.example/gone"),))

    async def failed() -> bool:
        rows = await media_rows(bot)
        return bool(rows) and rows[0].status == MediaStatus.FAILED

    await until(failed)
    assert receipt.reference
    view = await bot.desk.show(receipt.reference)
    assert "media_failed" in [e.kind for e in view.events]


# --- delivery reports and cursors -------------------------------------------------------------------


async def test_delivery_reports_are_recorded_and_a_failure_is_an_event_once(city: City) -> None:
    bot, memory = city
    receipt = await memory.push("가로등이 고장났어요 어두워요")
    await memory.pop()
    await until(lambda: _sent(bot))
    [row] = await outbox(bot)
    at = datetime.now(UTC)
    report = DeliveryReport(channel="memory", status="delivered", at=at, idempotency_key=row.idempotency_key)
    assert await bot.host.delivery_report(report)
    failed = DeliveryReport(
        channel="memory",
        status="undelivered",
        at=at + timedelta(seconds=1),
        provider_message_id="out-1",
        error="30003",
    )
    assert await bot.host.delivery_report(failed)
    assert await bot.host.delivery_report(failed)  # reported twice
    older = DeliveryReport(
        channel="memory", status="sent", at=at - timedelta(seconds=5), provider_message_id="out-1"
    )
    assert await bot.host.delivery_report(older)  # arrives late: changes nothing
    [row] = await outbox(bot)
    assert (row.delivery_status, row.delivery_error) == ("undelivered", "30003")
    assert receipt.reference
    view = await bot.desk.show(receipt.reference)
    assert [e.kind for e in view.events].count("delivery_failed") == 1
    unknown = DeliveryReport(channel="memory", status="delivered", at=at, provider_message_id="nope")
    assert not await bot.host.delivery_report(unknown)


async def _sent(bot: Bot) -> bool:
    rows = await outbox(bot)
    return bool(rows) and all(r.status == OutboxStatus.SENT for r in rows)


async def test_poll_cursors_survive_a_restart(database: Database, tmp_path: Path) -> None:
    first = await build(config_for_tests(tmp_path), base_dir=ROOT, webchat=False, db=database)
    assert await first.host.recall("x", "mentions") is None
    await first.host.remember("x", "mentions", "1001")
    await first.host.remember("x", "mentions", "1002")
    await first.host.remember("x", "dms", "9")
    second = await build(config_for_tests(tmp_path), base_dir=ROOT, webchat=False, db=database, migrate=False)
    assert await second.host.recall("x", "mentions") == "1002"
    assert await second.host.recall("x", "dms") == "9"


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
        if (await outbox(bot))[0].status == OutboxStatus.FAILED:
            break
    [row] = await outbox(bot)
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
        await until(lambda: _sent(a))
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
    rows = await outbox(bot)
    assert [r.attempts for r in rows] == [2, 1, 1]  # waiting behind another is not an attempt
