"""Learning from staff through the whole bot, on SQLite and PostgreSQL: what each decision records,
how a learned question is answered the next time, forgetting, and the nightly refit."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bot import Bot, build
from channels.memory import MemoryChannel
from router import Staff
from store import Database, FaqLabel, TicketStatus, data
from tests.conftest import ROOT, FakeClock, config_for_tests

City = tuple[Bot, MemoryChannel]
KIM = Staff(id="cli:kim", name="Kim")
SEOUL = ZoneInfo("Asia/Seoul")
UNSURE = "furniture disposal sticker"  # the small FAQ's bulky-waste entry, not sure enough to answer
SURE = "How do I throw away a sofa?"  # one of its questions as written: answered at once


async def labels(bot: Bot) -> list[FaqLabel]:
    async with bot.db.session() as session:
        return list(await data.faq_labels(session))


async def ask(bot: Bot, memory: MemoryChannel, text: str, sender: str) -> str:
    receipt = await memory.push(text, sender=sender)
    assert receipt.reference is not None
    await memory.pop()
    return receipt.reference


async def status(bot: Bot, reference: str) -> str:
    return (await bot.desk.show(reference)).ticket.status


async def test_a_review_item_sent_with_an_entry_is_learned_and_answered_next_time(city: City) -> None:
    bot, memory = city
    learning = bot.router.learning
    assert learning is not None
    # The bot's first learning round at start-up records tonight's refit attempt (too few labels):
    # let it be done, so that "nothing changed" below is about this test's labels alone.
    await learning.refit_if_due()
    first = await ask(bot, memory, UNSURE, "citizen-1")
    assert await status(bot, first) == TicketStatus.REVIEW
    await bot.desk.send_review(first, staff=KIM)
    [label] = await labels(bot)
    assert (label.kind, label.entry_id, label.text, label.variant) == (
        "positive",
        "bulky-waste",
        UNSURE,
        True,
    )
    assert (label.actor, label.actor_name, label.language) == ("staff:cli:kim", "Kim", "en")

    assert await learning.refresh()
    assert not await learning.refresh()  # nothing changed since
    base, _ = bot.knowledge.current
    bulky = base.get("bulky-waste")
    assert bulky is not None and UNSURE in bulky.questions["en"]
    assert (
        UNSURE not in (bot.knowledge.files_base.get("bulky-waste") or bulky).questions["en"]
    )  # YAML untouched
    second = await ask(bot, memory, UNSURE, "citizen-2")
    assert await status(bot, second) == TicketStatus.ANSWERED


async def test_the_same_question_twice_is_two_labels_and_one_question(city: City) -> None:
    bot, memory = city
    assert bot.router.learning is not None
    for n in (1, 2):  # both sent before the bot learned from the first
        await bot.desk.send_review(await ask(bot, memory, UNSURE, f"citizen-{n}"), staff=KIM)
    assert [x.kind for x in await labels(bot)] == ["positive", "positive"]
    await bot.router.learning.refresh()
    base, _ = bot.knowledge.current
    bulky = base.get("bulky-waste")
    assert bulky is not None and bulky.questions["en"].count(UNSURE) == 1
    # Once learned, the same question in other spacing and case is a near-duplicate: a label only.
    third = await ask(bot, memory, "Furniture  disposal-sticker", "citizen-3")
    if await status(bot, third) == TicketStatus.REVIEW:
        await bot.desk.send_review(third, staff=KIM)
        assert not (await labels(bot))[-1].variant


async def test_a_question_with_personal_data_is_a_label_never_a_question(city: City) -> None:
    bot, memory = city
    reference = await ask(bot, memory, f"{UNSURE} call me 010-1234-5678", "citizen-1")
    assert await status(bot, reference) == TicketStatus.REVIEW
    await bot.desk.send_review(reference, staff=KIM)
    [label] = await labels(bot)
    assert label.kind == "positive" and not label.variant


async def test_an_answer_in_staffs_own_words_is_out_of_scope_for_the_suggestion(city: City) -> None:
    bot, memory = city
    reference = await ask(bot, memory, UNSURE, "citizen-1")
    await bot.desk.send_review(reference, staff=KIM, text="Please call the district office.")
    [label] = await labels(bot)
    assert (label.kind, label.entry_id, label.variant) == ("out_of_scope", "bulky-waste", False)


async def test_an_edited_entry_answer_teaches_nothing(city: City) -> None:
    bot, memory = city
    reference = await ask(bot, memory, UNSURE, "citizen-1")
    await bot.desk.send_review(reference, staff=KIM, entry_id="bulky-waste", text="Bulky waste: call 120.")
    assert await labels(bot) == []


async def test_zero_after_an_automatic_answer_is_a_negative_and_replaces_nothing_else(city: City) -> None:
    bot, memory = city
    reference = await ask(bot, memory, SURE, "citizen-1")
    assert await status(bot, reference) == TicketStatus.ANSWERED
    await memory.push("0", sender="citizen-1")
    [label] = await labels(bot)
    assert (label.kind, label.entry_id, label.text, label.actor) == (
        "negative",
        "bulky-waste",
        SURE,
        "citizen",
    )


async def test_a_zero_counts_in_a_refit_once_the_answers_of_its_time_are_settled(
    city: City, clock: FakeClock
) -> None:
    """A "0" comes at once, an acceptance only when the reopen window passes: until then, counting
    the "0"s would make every recent automatic answer above the threshold look wrong."""
    bot, memory = city
    assert bot.router.learning is not None
    await ask(bot, memory, SURE, "citizen-1")
    await memory.push("0", sender="citizen-1")
    assert [x.kind for x in await labels(bot)] == ["negative"]
    assert await bot.router.learning.labels() == []
    clock.now += timedelta(hours=bot.config.router.lifecycle.reopen_window_hours)
    assert [x.kind for x in await bot.router.learning.labels()] == ["negative"]


async def test_zero_after_a_confirmed_review_replaces_its_positive(city: City) -> None:
    bot, memory = city
    reference = await ask(bot, memory, UNSURE, "citizen-1")
    await bot.desk.send_review(reference, staff=KIM)
    await memory.pop()
    await memory.push("0", sender="citizen-1")
    # Staff answered, not the bot: "0" asks for a person, and says nothing about the FAQ's confidence.
    [label] = await labels(bot)
    assert label.kind == "positive"


async def test_an_automatic_answer_that_closes_without_zero_was_accepted(
    city: City, clock: FakeClock
) -> None:
    bot, memory = city
    reference = await ask(bot, memory, SURE, "citizen-1")
    clock.now += timedelta(hours=bot.config.router.lifecycle.reopen_window_hours + 1)
    await bot.sweeper.sweep_once()
    assert await status(bot, reference) == TicketStatus.CLOSED
    [label] = await labels(bot)
    assert (label.kind, label.entry_id, label.variant, label.actor) == (
        "accepted",
        "bulky-waste",
        False,
        "system",
    )


async def test_a_forgotten_question_is_no_longer_one(city: City) -> None:
    bot, memory = city
    learning = bot.router.learning
    assert learning is not None
    reference = await ask(bot, memory, UNSURE, "citizen-1")
    await bot.desk.send_review(reference, staff=KIM)
    await learning.refresh()
    assert len(bot.knowledge.learned) == 1
    [label] = await labels(bot)
    async with bot.db.transaction() as session:
        await data.mark_faq_labels(session, label_ids=[label.id or 0], forgotten_at=clock_now(bot))
    assert await learning.refresh()
    assert bot.knowledge.learned == ()
    assert await labels(bot) == []
    again = await ask(bot, memory, UNSURE, "citizen-2")
    assert await status(bot, again) == TicketStatus.REVIEW


def clock_now(bot: Bot) -> datetime:
    return bot.router.clock()


async def test_the_nightly_refit_runs_once_a_night_and_needs_enough_labels(
    city: City, clock: FakeClock
) -> None:
    bot, memory = city
    learning = bot.router.learning
    assert learning is not None
    # Monday 10:00 in Seoul: the last refit time was 03:00 today, and none was made: one is due.
    assert not await learning.refit_if_due()  # too few labels: an attempt is remembered ...
    async with bot.db.session() as session:
        attempt = await data.latest_faq_fit(session)
    assert attempt is not None and attempt.confidence == ""
    assert not await learning.refit_if_due()  # ... and not made again before the next night
    async with bot.db.session() as session:
        assert (await data.latest_faq_fit(session)) == attempt

    for n in range(24):  # enough labels: half confirmed, half out of scope
        reference = await ask(bot, memory, f"{UNSURE} {n}", f"citizen-{n}")
        if await status(bot, reference) != TicketStatus.REVIEW:
            continue
        if n % 2:
            await bot.desk.send_review(reference, staff=KIM, text="Not something the city does, sorry.")
        else:
            await bot.desk.send_review(reference, staff=KIM)
    learning.config = learning.config.model_copy(update={"min_labels": 10, "min_out_of_scope": 5})
    clock.now += timedelta(days=1)  # Tuesday 10:00: Tuesday's 03:00 refit is due
    assert await learning.refit_if_due()
    await learning.refresh()
    _, matcher = bot.knowledge.current
    report = matcher.confidence.report
    assert report is not None and report.queries_file == "staff decisions" and report.queries >= 20
    assert matcher.confidence.review_threshold <= matcher.confidence.answer_threshold


async def test_with_learning_off_nothing_is_recorded(
    database: Database, tmp_path: Path, clock: FakeClock
) -> None:
    config = config_for_tests(tmp_path)
    learning = config.knowledge.learning.model_copy(update={"enabled": False})
    config = config.model_copy(
        update={"knowledge": config.knowledge.model_copy(update={"learning": learning})}
    )
    memory = MemoryChannel()
    bot = await build(config, base_dir=ROOT, channels=[memory], webchat=False, db=database, clock=clock)
    async with bot.running(sweeps=False):
        reference = await ask(bot, memory, UNSURE, "citizen-1")
        await bot.desk.send_review(reference, staff=KIM)
        assert await labels(bot) == []
