"""Citizens' photos: copied into the store before the provider's link expires, or marked failed."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import col, select

from bot import Bot
from channels.base import Attachment
from channels.memory import MemoryChannel
from router import Staff
from store import Media, MediaStatus
from tests.conftest import FakeClock
from tests.waiting import until

City = tuple[Bot, MemoryChannel]
KIM = Staff(id="cli:kim", name="kim")


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
