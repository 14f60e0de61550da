"""The web chat API through the real aiohttp app, against the whole bot."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot import Bot, build, make_app
from channels.webchat import address_of
from tests.conftest import ROOT, config_for_tests


@pytest.fixture
async def chat(tmp_path: Path) -> AsyncIterator[tuple[Bot, TestClient[Any, Any]]]:
    bot = await build(config_for_tests(tmp_path), base_dir=ROOT)
    async with bot.running(), TestClient(TestServer(make_app(bot))) as client:
        yield bot, client


async def new_session(client: TestClient[Any, Any]) -> str:
    response = await client.post("/chat/api/session")
    assert response.status == 200
    token: str = (await response.json())["session"]
    return token


async def say(client: TestClient[Any, Any], session: str, text: str, message_id: str = "msg-00000001") -> int:
    response = await client.post(
        "/chat/api/messages", json={"session": session, "id": message_id, "text": text}
    )
    return response.status


async def conversation(client: TestClient[Any, Any], session: str, version: str = "") -> dict[str, Any]:
    response = await client.get("/chat/api/messages", params={"session": session, "version": version})
    assert response.status == 200
    body: dict[str, Any] = await response.json()
    return body


async def wait_for_reply(client: TestClient[Any, Any], session: str, count: int) -> list[dict[str, Any]]:
    version = ""
    for _ in range(20):
        body = await conversation(client, session, version)
        if len(body["messages"]) >= count:
            return list(body["messages"])
        version = body["version"]
    raise AssertionError("no reply came")


async def test_the_page_and_its_assets_are_served(chat: tuple[Bot, TestClient[Any, Any]]) -> None:
    _, client = chat
    page = await client.get("/chat")
    assert page.status == 200 and "text/html" in page.headers["Content-Type"]
    html = await page.text()
    assert "/chat/static/chat.js" in html
    assert (await client.get("/chat/static/chat.js")).status == 200
    home = await client.get("/", allow_redirects=False)
    assert home.status == 302 and home.headers["Location"] == "/chat"


async def test_a_question_gets_the_faq_answer_and_a_complaint_a_ticket(
    chat: tuple[Bot, TestClient[Any, Any]],
) -> None:
    _, client = chat
    session = await new_session(client)
    assert await say(client, session, "How do I throw away a sofa?", "msg-00000001") == 200
    messages = await wait_for_reply(client, session, 2)
    assert [m["from"] for m in messages] == ["citizen", "city"]
    assert messages[1]["text"].startswith("Register bulky waste")

    assert await say(client, session, "A streetlight is broken on my street", "msg-00000002") == 200
    messages = await wait_for_reply(client, session, 4)
    assert messages[3]["text"].startswith("Ticket 2026-")
    assert "Transport and Roads" in messages[3]["text"] and "Expected by" in messages[3]["text"]


async def test_a_long_poll_returns_as_soon_as_the_reply_is_delivered(
    chat: tuple[Bot, TestClient[Any, Any]],
) -> None:
    _, client = chat
    session = await new_session(client)
    idle = await conversation(client, session)
    assert idle["messages"] == []
    waiting = asyncio.create_task(conversation(client, session, idle["version"]))
    await asyncio.sleep(0.1)
    assert not waiting.done()  # held open: nothing new yet
    await say(client, session, "여권 만들려면")
    body = await asyncio.wait_for(waiting, 5)
    assert body["version"] != idle["version"] and body["messages"][0]["text"] == "여권 만들려면"


async def test_a_retried_post_is_stored_once(chat: tuple[Bot, TestClient[Any, Any]]) -> None:
    bot, client = chat
    session = await new_session(client)
    for _ in range(3):
        assert await say(client, session, "여권 만들려면", "same-id-123") == 200
    messages = await wait_for_reply(client, session, 2)
    await asyncio.sleep(0.2)
    assert [m["from"] for m in (await conversation(client, session))["messages"]] == ["citizen", "city"]
    assert len(messages) == 2
    tickets = await bot.desk.list_tickets()
    assert len(tickets) == 1


async def test_sessions_never_see_each_others_messages(chat: tuple[Bot, TestClient[Any, Any]]) -> None:
    _, client = chat
    alice, bob = await new_session(client), await new_session(client)
    await say(client, alice, "여권 만들려면")
    await wait_for_reply(client, alice, 2)
    assert (await conversation(client, bob))["messages"] == []


async def test_the_store_keeps_a_hash_of_the_session_never_the_token(
    chat: tuple[Bot, TestClient[Any, Any]],
) -> None:
    bot, client = chat
    session = await new_session(client)
    await say(client, session, "여권 만들려면")
    await wait_for_reply(client, session, 2)
    (ticket,) = await bot.desk.list_tickets()
    view = await bot.desk.show(ticket.reference)
    assert view.contact.address == address_of(session) and session not in view.contact.address


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"not json", 400, "the body must be JSON"),
        (b"[1, 2]", 400, "the body must be a JSON object"),
        (b'{"session": "short", "id": "msg-00000001", "text": "hi"}', 400, "session must be a token"),
        (b'{"session": "%s", "id": "x", "text": "hi"}', 400, "id must be 8-64 characters"),
        (b'{"session": "%s", "id": "msg-00000001", "text": "   "}', 400, "text must be a non-empty string"),
        (
            b'{"session": "%s", "id": "msg-00000001", "text": "%s"}',
            400,
            "text is longer than 2000 characters",
        ),
    ],
)
async def test_bad_requests_get_a_clear_4xx_and_store_nothing(
    chat: tuple[Bot, TestClient[Any, Any]], body: bytes, status: int, error: str
) -> None:
    bot, client = chat
    session = await new_session(client)
    if body.count(b"%s") == 2:
        body = body % (session.encode(), b"a" * 2001)
    elif b"%s" in body:
        body = body % session.encode()
    response = await client.post(
        "/chat/api/messages", data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status == status
    assert error in (await response.json())["error"]
    assert await bot.desk.list_tickets() == []


async def test_an_oversized_body_is_refused_with_413(chat: tuple[Bot, TestClient[Any, Any]]) -> None:
    bot, client = chat
    response = await client.post("/chat/api/messages", data=b"x" * (64 * 1024))
    assert response.status == 413
    assert await bot.desk.list_tickets() == []


async def test_a_flood_from_one_session_is_slowed_with_429(chat: tuple[Bot, TestClient[Any, Any]]) -> None:
    _, client = chat
    session = await new_session(client)
    statuses = [await say(client, session, f"message {n}", f"flood-{n:05d}") for n in range(21)]
    assert statuses[:20] == [200] * 20 and statuses[20] == 429


async def test_health_reports_the_store_and_the_knowledge_base(
    chat: tuple[Bot, TestClient[Any, Any]],
) -> None:
    _, client = chat
    response = await client.get("/healthz")
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "ok" and body["store"] == "ok" and body["faq_entries"] == 3
    assert body["channels"] == ["open311", "webchat"]  # Open311 is on in the shipped config


async def test_a_store_failure_during_intake_asks_the_sender_to_retry(tmp_path: Path) -> None:
    from channels.base import InboundMessage, Receipt
    from channels.webchat import WebchatChannel
    from channels.webchat_config import WebchatConfig

    class BrokenHost:
        async def intake(self, message: InboundMessage) -> Receipt:
            raise ConnectionError("the database is down")

    async def no_history(channel: str, address: str) -> list[Any]:
        return []

    channel = WebchatChannel(WebchatConfig(), no_history)
    await channel.start(BrokenHost())  # type: ignore[arg-type]
    app = web.Application()
    app.add_routes(channel.routes())
    async with TestClient(TestServer(app)) as client:
        session = await new_session(client)
        response = await client.post(
            "/chat/api/messages", json={"session": session, "id": "m-0000001", "text": "hi"}
        )
        assert response.status == 503 and response.headers["Retry-After"] == "5"
        assert (await response.json())["error"] == "temporarily unavailable; please retry"
