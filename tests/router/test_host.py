"""What the host does for a running channel: delivery reports, and a memory that survives a restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot import Bot, build
from channels.base import DeliveryReport
from channels.memory import MemoryChannel
from router import Staff
from store import Database
from tests.conftest import ROOT, all_sent, config_for_tests, outbox_of
from tests.waiting import until

City = tuple[Bot, MemoryChannel]
KIM = Staff(id="cli:kim", name="kim")


# --- delivery reports and cursors -------------------------------------------------------------------


async def test_delivery_reports_are_recorded_and_a_failure_is_an_event_once(city: City) -> None:
    bot, memory = city
    receipt = await memory.push("가로등이 고장났어요 어두워요")
    await memory.pop()
    await until(lambda: all_sent(bot))
    [row] = await outbox_of(bot)
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
    [row] = await outbox_of(bot)
    assert (row.delivery_status, row.delivery_error) == ("undelivered", "30003")
    assert receipt.reference
    view = await bot.desk.show(receipt.reference)
    assert [e.kind for e in view.events].count("delivery_failed") == 1
    unknown = DeliveryReport(channel="memory", status="delivered", at=at, provider_message_id="nope")
    assert not await bot.host.delivery_report(unknown)


async def test_poll_cursors_survive_a_restart(database: Database, tmp_path: Path) -> None:
    first = await build(config_for_tests(tmp_path), base_dir=ROOT, webchat=False, db=database)
    assert await first.host.recall("x", "mentions") is None
    await first.host.remember("x", "mentions", "1001")
    await first.host.remember("x", "mentions", "1002")
    await first.host.remember("x", "dms", "9")
    second = await build(config_for_tests(tmp_path), base_dir=ROOT, webchat=False, db=database, migrate=False)
    assert await second.host.recall("x", "mentions") == "1002"
    assert await second.host.recall("x", "dms") == "9"
