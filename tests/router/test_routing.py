"""The department model in the running bot: resolved tickets teach it (the final department after a
reassignment, never a sensitive report), it routes what no rule decides when it is sure, triage gets
the rest, and it learns again when the examples change."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import bot as bot_module
from bot import Bot
from channels.base import StaffAction
from channels.memory import MemoryChannel
from knowledge import KnowledgeHolder, Match
from router import Staff
from router.departments import KeywordRules, Route, choose_department
from store import Database, RoutingExample, RoutingSource, TicketStatus, data
from tests.conftest import FAQ_MIN, ROOT, FakeClock, config_for_tests
from tests.routing_examples import examples
from tests.waiting import until

City = tuple[Bot, MemoryChannel]
KIM = Staff(id="cli:kim", name="Kim Minji")


async def stored_examples(db: Database) -> list[RoutingExample]:
    async with db.session() as session:
        return list(await data.routing_examples(session))


async def add_examples(db: Database, pairs: list[tuple[str, str]]) -> None:
    """Stored as a city's history is: the departments' complaints mixed in time, a day apart (the
    threshold is validated forward in time, and the helper's list runs department by department)."""
    mixed = random.Random(7).sample(pairs, len(pairs))
    start = datetime(2024, 1, 1, tzinfo=UTC)
    async with db.transaction() as session:
        await data.add_routing_examples(
            session,
            examples=[
                RoutingExample(
                    text=t, department=d, source=RoutingSource.IMPORT, created_at=start + timedelta(days=n)
                )
                for n, (t, d) in enumerate(mixed)
            ],
        )


async def forwarded_reason(bot: Bot, reference: str) -> str:
    view = await bot.desk.show(reference)
    return next(e.detail["reason"] for e in view.events if e.to_status == TicketStatus.FORWARDED)


async def test_a_reassigned_then_resolved_ticket_teaches_its_final_department(city: City) -> None:
    bot, memory = city
    text = "The streetlight on Main Street is out, and the pavement under it is broken"
    receipt = await memory.push(text)
    reference = receipt.reference
    assert reference is not None
    await bot.desk.reassign(reference, "housing", reason="the pavement belongs to the building", staff=KIM)
    assert await stored_examples(bot.db) == []  # nothing is learned before the ticket is resolved
    await bot.desk.resolve(reference, "Fixed by the owner.", staff=KIM)
    [example] = await stored_examples(bot.db)
    assert (example.text, example.department, example.source) == (text, "housing", "ticket")
    assert example.ticket_id is not None

    # Reopened and sent on again: the earlier lesson is withdrawn; the next resolution counts.
    await bot.desk.reopen(reference, reason="not fixed", staff=KIM)
    await bot.desk.reassign(reference, "safety", reason="it is dangerous", staff=KIM)
    assert await stored_examples(bot.db) == []
    await bot.desk.resolve(reference, staff=KIM)
    assert [(e.text, e.department) for e in await stored_examples(bot.db)] == [(text, "safety")]


async def test_a_sensitive_ticket_never_becomes_an_example(city: City) -> None:
    bot, memory = city
    receipt = await memory.push("I want to report a bribe at the permit office")
    assert receipt.reference is not None
    view = await bot.desk.show(receipt.reference)
    assert view.ticket.sensitive and view.ticket.department == "integrity"
    await bot.desk.resolve(receipt.reference, staff=KIM)
    assert await stored_examples(bot.db) == []


async def test_without_examples_the_bot_runs_and_triage_gets_what_no_rule_decides(city: City) -> None:
    bot, memory = city
    assert await bot.router.learner.retrain(force=True)
    assert bot.router.learner.model is None
    receipt = await memory.push("택시 운전기사가 불친절해요")
    assert receipt.reference is not None
    assert await forwarded_reason(bot, receipt.reference) == "triage"


async def test_the_model_routes_what_it_is_sure_of_and_triage_gets_the_rest(city: City) -> None:
    bot, memory = city
    # The triage desk's and the restricted inbox's examples are kept but never learned.
    # 136 examples: enough for a threshold validated forward in time (96 are not, and route nothing).
    await add_examples(bot.db, [*examples(30), *[(f"문의 {i}번 기타", "triage") for i in range(12)]])
    # The bot's own learner may have read the new examples already (it starts with the bot): either
    # way the model is learned from them once.
    await bot.router.learner.retrain()
    model = bot.router.learner.model
    assert model is not None and set(model.departments) == {"transport", "environment", "welfare", "housing"}
    assert not await bot.router.learner.retrain()  # nothing changed: nothing to learn again

    sure = await memory.push("택시 운전기사가 불친절해요", sender="citizen-1")
    assert sure.reference is not None
    view = await bot.desk.show(sure.reference)
    assert view.ticket.department == "transport" and view.ticket.status == TicketStatus.FORWARDED
    reason = await forwarded_reason(bot, sure.reference)
    department, confidence = reason.removeprefix("model:").split(":")
    assert department == "transport" and float(confidence) >= model.threshold
    # Staff see why it came to them in the ticket's history (here: the desk's /ticket lookup).
    lookup = await bot.host.staff_action(
        StaffAction(kind="lookup", staff_id="slack:U1", staff_name="Kim", reference=sure.reference)
    )
    assert any(line.endswith(f"->forwarded by bot ({reason})") for line in lookup.lines)

    unsure = await memory.push("the bar downstairs is loud at night", sender="citizen-2")
    assert unsure.reference is not None
    assert await forwarded_reason(bot, unsure.reference) == "triage"

    # A keyword rule still comes first: "streetlight" is transport's whatever the model thinks.
    rule = await memory.push("the streetlight near my landlord's rent office is out", sender="citizen-3")
    assert rule.reference is not None
    assert await forwarded_reason(bot, rule.reference) == "keyword:streetlight"


async def test_the_periodic_retraining_picks_up_new_examples(database: Database, tmp_path: Path) -> None:
    config = config_for_tests(tmp_path)
    routing = config.router.routing.model_copy(update={"retrain_minutes": 0.002})  # every 0.12 s
    config = config.model_copy(update={"router": config.router.model_copy(update={"routing": routing})})
    memory = MemoryChannel()
    bot = await bot_module.build(
        config, base_dir=ROOT, channels=[memory], webchat=False, db=database, clock=FakeClock()
    )
    pairs = examples(30)
    await add_examples(bot.db, [(t, d) for t, d in pairs if d != "housing"])
    async with bot.running(sweeps=False):
        learner = bot.router.learner
        await until(lambda: learner.model is not None, timeout=60.0)
        assert learner.model is not None and "housing" not in learner.model.departments

        await add_examples(bot.db, [(t, d) for t, d in pairs if d == "housing"])
        await until(
            lambda: learner.model is not None and "housing" in learner.model.departments, timeout=60.0
        )
        receipt = await memory.push("my landlord wants more rent")
        assert receipt.reference is not None
        assert (await forwarded_reason(bot, receipt.reference)).startswith("model:housing:")


def test_the_order_is_keyword_rule_then_faq_entry_then_model_then_triage() -> None:
    knowledge = KnowledgeHolder(FAQ_MIN)
    knowledge.load()
    _, matcher = knowledge.current
    rules = KeywordRules([("safety", "맨홀")])
    sure = lambda text: ("transport", 0.97)  # noqa: E731  (a model that is always sure)
    unsure = lambda text: None  # noqa: E731
    text = "소파 버리는 방법"
    matches = matcher.match(text, "ko")
    assert matches and matches[0].entry.id == "bulky-waste"

    def route(text: str, matches: list[Match], model: Callable[[str], tuple[str, float] | None]) -> Route:
        return choose_department(text, matches, rules=rules, faq_threshold=0.0, triage="triage", model=model)

    assert route("맨홀 뚜껑이 " + text, list(matches), sure) == Route("safety", "keyword:맨홀")
    assert route(text, list(matches), sure) == Route("environment", "faq:bulky-waste")
    assert route(text, [], sure) == Route("transport", "model:transport:0.97")
    assert route(text, [], unsure) == Route("triage", "triage")
