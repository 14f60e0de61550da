"""The whole bot: FAQ edits while it runs, and the shipped knowledge base answering as promised."""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path

import pytest

from bot import build
from channels.memory import MemoryChannel
from knowledge import KnowledgeHolder, load_knowledge
from knowledge.calibration import knowledge_fingerprint
from knowledge.evaluate import evaluate, read_queries
from tests.conftest import FAQ_MIN, ROOT, config_for_tests, shipped_config


async def test_a_broken_faq_edit_is_reported_and_the_last_good_version_keeps_answering(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    faq = tmp_path / "faq"
    shutil.copytree(FAQ_MIN, faq)
    config = config_for_tests(tmp_path, faq=faq)
    config = config.model_copy(
        update={"knowledge": config.knowledge.model_copy(update={"reload_seconds": 0.05})}
    )
    memory = MemoryChannel()
    bot = await build(config, base_dir=ROOT, channels=[memory], webchat=False)
    async with bot.running():
        city_yaml = faq / "city.yaml"
        good = city_yaml.read_text(encoding="utf-8")
        city_yaml.write_text(
            good.replace("  - id: passport\n", "  - id: passport\n    handof: never\n"), "utf-8"
        )
        for _ in range(100):
            if "the FAQ edit was not taken" in caplog.text:
                break
            await asyncio.sleep(0.05)
        line = good.splitlines().index("  - id: passport") + 2
        assert f"city.yaml:{line}: entry 'passport': handof:" in caplog.text
        await memory.push("여권 만들려면")
        assert (await memory.pop()).text.startswith("여권은 구청")

        # A good edit is taken up while the bot runs.
        city_yaml.write_text(good.replace("신분증과 사진 1장을", "신분증과 여권 사진 1장을"), "utf-8")
        for _ in range(100):
            if "여권 사진" in (bot.knowledge.current[0].get("passport").answer["ko"]):  # type: ignore[union-attr]
                break
            await asyncio.sleep(0.05)
        await memory.push("여권 만들려면", sender="citizen-2")
        assert "신분증과 여권 사진 1장을" in (await memory.pop()).text


def test_the_shipped_faq_is_a_real_example_city() -> None:
    base = load_knowledge(
        ROOT / "knowledge" / "faq", known_departments=set(shipped_config(Path()).departments)
    )
    assert len(base) >= 40
    for entry in base.entries:
        assert {"ko", "en"} <= set(entry.questions), entry.id
        assert {"ko", "en"} <= set(entry.answer), entry.id
    assert {e.department for e in base.entries} == {
        "transport",
        "environment",
        "welfare",
        "housing",
        "safety",
        "triage",
        "integrity",
    }
    # Every entry of the restricted inbox is for a person only.
    assert all(e.handoff == "always" for e in base.entries if e.department == "integrity")


def test_the_shipped_faq_answers_only_what_it_is_sure_of() -> None:
    """Guards the shipped calibration on paraphrases it was not calibrated on (knowledge/faq/
    calibration-queries.jsonl is another set): a wrong automatic answer is worse than none."""
    config = shipped_config(Path())
    holder = KnowledgeHolder(
        ROOT / "knowledge" / "faq", default_confidence=config.knowledge.default_confidence()
    )
    holder.load()
    base, matcher = holder.current
    assert matcher.confidence.report is not None, "the shipped FAQ is calibrated"
    assert matcher.confidence.report.knowledge_fingerprint == knowledge_fingerprint(base), (
        "the FAQ changed since its calibration: run `python bot.py faq calibrate`"
    )
    queries = read_queries(ROOT / "tests" / "data" / "faq_paraphrases.jsonl", {e.id for e in base.entries})
    result = evaluate(matcher, queries, sensitive=config.router.sensitive.rule())
    assert result.queries >= 140 and result.in_scope >= 100
    assert result.precision >= 0.95
    assert result.out_of_scope_answered <= 0.05
    assert result.coverage >= 0.25
    # A larger set written apart from both (bench/small_faq.py reports it): near misses, complaints,
    # sensitive reports and chatter in five languages.
    citizens = read_queries(
        ROOT / "bench" / "data" / "shipped-faq-citizen-texts.jsonl", {e.id for e in base.entries}
    )
    result = evaluate(matcher, citizens, sensitive=config.router.sensitive.rule())
    assert result.queries >= 480 and result.precision >= 0.95 and result.coverage >= 0.2


@pytest.mark.parametrize(
    ("question", "entry"),
    [("How do I throw away a sofa?", "bulky-waste"), ("대형 폐기물은 어떻게 버리나요?", "bulky-waste")],
)
async def test_the_shipped_city_answers_its_own_questions(tmp_path: Path, question: str, entry: str) -> None:
    memory = MemoryChannel()
    bot = await build(shipped_config(tmp_path), base_dir=ROOT, channels=[memory], webchat=False)
    async with bot.running():
        receipt = await memory.push(question)
        reply = await memory.pop()
        base, _ = bot.knowledge.current
        found = base.get(entry)
        assert found is not None
        answer, footer = reply.text.rsplit("\n", 1)
        assert answer in found.answer.values()
        assert footer in (
            "Not what you needed? Reply 0 for a person.",
            bot.lifecycle.notices.render("answered_footer", "ko"),
        )
        assert receipt.reference and (await bot.desk.show(receipt.reference)).ticket.faq_entry == entry


@pytest.fixture(autouse=True)
def _quiet(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)


async def test_the_shipped_city_keeps_a_sensitive_report_out_of_automatic_answers(tmp_path: Path) -> None:
    memory = MemoryChannel()
    bot = await build(shipped_config(tmp_path), base_dir=ROOT, channels=[memory], webchat=False)
    async with bot.running():
        receipt = await memory.push("An official asked me for money to approve my permit")
        notice = await memory.pop()
        assert receipt.reference
        ticket = (await bot.desk.show(receipt.reference)).ticket
        assert ticket.sensitive and ticket.department == "integrity" and ticket.faq_entry is None
        assert "money" not in notice.text and "in confidence" in notice.text
