"""What the city's IT team watches, through the whole bot's HTTP app: /metrics and /readyz."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import create_async_engine

import bot as bot_module
from channels.memory import MemoryChannel
from router.logs import JsonFormatter
from server.config import BotConfig
from store import Database, open_database
from store.config import StoreConfig
from tests.conftest import ROOT, FakeClock, config_for_tests

Served = tuple[bot_module.Bot, MemoryChannel, TestClient]


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample of the Prometheus text, or None when it is not there."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = re.fullmatch(r"([a-z_]+)(?:\{(.*)\})? (\S+)", line)
        if match and match[1] == name:
            found = ",".join(sorted((match[2] or "").split(","))) if match[2] else ""
            if found == wanted:
                return float(match[3])
    return None


async def serve(config: BotConfig, database: Database, clock: FakeClock) -> AsyncIterator[Served]:
    memory = MemoryChannel()
    bot = await bot_module.build(
        config, base_dir=ROOT, channels=[memory], webchat=False, db=database, clock=clock
    )
    async with bot.running(sweeps=False), TestClient(TestServer(bot_module.make_app(bot))) as client:
        yield bot, memory, client


@pytest.fixture
async def served(database: Database, tmp_path: Path, clock: FakeClock) -> AsyncIterator[Served]:
    config = config_for_tests(tmp_path)
    server = config.server.model_copy(update={"metrics_cache_seconds": 0})
    async for found in serve(config.model_copy(update={"server": server}), database, clock):
        yield found


async def scrape(client: TestClient) -> str:
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return await response.text()


async def test_metrics_count_each_message_by_channel_and_decision(served: Served) -> None:
    _, memory, client = served
    before = await scrape(client)
    assert sample(before, "city_intake_messages_total", channel="memory", decision="answered") is None

    await memory.push("How do I throw away a sofa?", sender="+821012345678", message_id="m1")
    await memory.push("How do I throw away a sofa?", sender="+821012345678", message_id="m1")  # a retry
    await memory.push("the bar downstairs is loud at night", sender="+821099998888")
    after = await scrape(client)
    assert sample(after, "city_intake_messages_total", channel="memory", decision="answered") == 1
    assert sample(after, "city_intake_messages_total", channel="memory", decision="duplicate") == 1
    assert sample(after, "city_intake_messages_total", channel="memory", decision="forwarded") == 1
    assert sample(after, "city_intake_answers_total", language="en") == 1
    assert sample(after, "city_intake_intake_seconds_count") == 2  # duplicates are not timed
    # The store's gauges: the forwarded ticket is open in its department, and nothing is overdue yet.
    assert sample(after, "city_intake_tickets_open", department="triage") == 1
    assert sample(after, "city_intake_tickets_overdue", department="triage") == 0
    # Once both replies are out: the outbox by state, and no reply waiting (an age of 0).
    await memory.pop()
    await memory.pop()
    for _ in range(100):  # the rows are marked sent, then counted, just after the channel took them
        sent = await scrape(client)
        waiting = [
            sample(sent, "city_intake_outbox", channel="memory", state=s) for s in ("pending", "sending")
        ]
        counted = sample(sent, "city_intake_sends_total", channel="memory", result="sent")
        if waiting == [None, None] and counted == 2:
            break
        await asyncio.sleep(0.05)
    assert sample(sent, "city_intake_outbox", channel="memory", state="sending") is None
    assert sample(sent, "city_intake_outbox_oldest_pending_seconds", channel="memory") == 0
    assert sample(sent, "city_intake_sends_total", channel="memory", result="sent") == 2
    assert sample(sent, "city_intake_sent_by_route_total", channel="memory", route="event") is None
    # A door that sends several ways (Kakao's paid Event API) has each way counted.
    memory.route = "event"
    await memory.push("How do I throw away a sofa?", sender="+821055556666")
    await memory.pop()
    for _ in range(100):
        routed = sample(
            await scrape(client), "city_intake_sent_by_route_total", channel="memory", route="event"
        )
        if routed == 1:
            break
        await asyncio.sleep(0.05)
    assert routed == 1
    # Nothing personal anywhere: not the number, not the words, not the reference.
    assert "+8210" not in sent and "sofa" not in sent and "2026-0000" not in sent


async def test_an_faq_reload_is_counted_by_result(served: Served, tmp_path: Path) -> None:
    bot, _, client = served
    for observer in bot.knowledge.observers:
        observer(True)
        observer(False)
    text = await scrape(client)
    assert sample(text, "city_intake_faq_reloads_total", result="ok") == 1
    assert sample(text, "city_intake_faq_reloads_total", result="failed") == 1


async def test_metrics_ask_for_the_token_when_one_is_set(
    database: Database, tmp_path: Path, clock: FakeClock
) -> None:
    config = config_for_tests(tmp_path)
    server = config.server.model_copy(update={"metrics_token": "s3cret"})
    async for _, _, client in serve(config.model_copy(update={"server": server}), database, clock):
        assert (await client.get("/metrics")).status == 403
        assert (await client.get("/metrics", headers={"Authorization": "Bearer wrong"})).status == 403
        allowed = await client.get("/metrics", headers={"Authorization": "Bearer s3cret"})
        assert allowed.status == 200 and "city_intake_messages_total" in await allowed.text()


async def test_ready_only_with_the_database_at_head_and_a_faq(tmp_path: Path, clock: FakeClock) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ready.db'}"
    database = open_database(StoreConfig(url=url))
    config = config_for_tests(tmp_path)
    async for bot, _, client in serve(config, database, clock):
        ready = await client.get("/readyz")
        assert ready.status == 200 and (await ready.json())["status"] == "ready"
        # The database goes away: its engine now points where nothing listens (a real refused
        # connection). Not ready, and it says why.
        engine = bot.db.engine
        bot.db.engine = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1:9/none")
        down = await client.get("/readyz")
        body = await down.json()
        assert down.status == 503 and list(body["problems"]) == ["database"]
        assert body["problems"]["database"].startswith("not answering (")
        await bot.db.engine.dispose()
        bot.db.engine = engine
        assert (await client.get("/readyz")).status == 200  # back: ready again
        real = bot.db.current_revision

        async def behind() -> str | None:
            return "0005"

        bot.db.current_revision = behind  # type: ignore[method-assign]
        late = await client.get("/readyz")
        assert (
            late.status == 503 and "run `bot.py db upgrade`" in (await late.json())["problems"]["migrations"]
        )
        bot.db.current_revision = real  # type: ignore[method-assign]
        assert (await client.get("/readyz")).status == 200


async def test_the_json_log_line_of_an_intake_says_what_happened_and_nothing_of_the_citizen(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    _, memory, _ = served
    caplog.set_level(logging.INFO, logger="router.intake")
    receipt = await memory.push(
        "How do I throw away a sofa? call me on 010-1234-5678", sender="+821055501234"
    )
    [record] = [r for r in caplog.records if r.name == "router.intake"]
    line = json.loads(JsonFormatter().format(record))
    assert {k: line[k] for k in ("level", "logger", "channel", "reference", "outcome")} == {
        "level": "INFO",
        "logger": "router.intake",
        "channel": "memory",
        "reference": receipt.reference,
        "outcome": line["outcome"],
    }
    assert line["outcome"] in ("answered", "review", "forwarded")
    text = json.dumps(line)
    assert "sofa" not in text and "1234" not in text and "5550" not in text
    # The last guard: whatever a message quotes that looks like a number or an address is masked.
    guarded = logging.LogRecord(
        "x", logging.WARNING, "", 0, "Twilio: +82 10-5550-1234 or kim@example.com", (), None
    )
    assert json.loads(JsonFormatter().format(guarded))["message"] == "Twilio: [masked] or [masked]"
