"""What a provider's keywords and public posts get: STOP, START, HELP and /status, and a public
message answered in public with its reference only. Played on the in-memory channel; each
provider's own tests play the same through its adapter and a stand-in for the provider."""

from __future__ import annotations

import asyncio

from bot import Bot
from channels.memory import MemoryChannel
from router import Staff
from store import OutboxStatus
from tests.conftest import outbox_of
from tests.waiting import until

City = tuple[Bot, MemoryChannel]
KIM = Staff(id="cli:kim", name="kim")


# --- commands ---------------------------------------------------------------------------------


async def test_stop_silences_every_later_send_until_start(city: City) -> None:
    bot, memory = city
    receipt = await memory.push("가로등이 고장났어요 어두워요")
    assert receipt.reference
    await memory.pop()  # the forwarded notice

    assert not (await memory.push("STOP", command="stop")).duplicate
    await bot.desk.reply(receipt.reference, "내일 수리합니다", staff=KIM)

    async def refused() -> bool:
        return (await outbox_of(bot))[-1].status == OutboxStatus.FAILED

    await until(refused)
    assert memory.pending() == 0  # no reply to STOP, and the staff reply is not sent
    assert "opted out" in ((await outbox_of(bot))[-1].last_error or "")
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
