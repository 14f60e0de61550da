"""The chat on the city's web page: a static page at /chat and a small JSON API behind it.

The API (documented in the README):
  POST /chat/api/session                          -> {"session": TOKEN}
  POST /chat/api/messages  {"session", "id", "text"} -> {"accepted": true}   (id: the client's, for retries)
  GET  /chat/api/messages?session=TOKEN&version=V -> {"version", "messages": [...]}, long-polled

The token is the citizen's only credential, so the store never sees it: the contact's address is
a hash of it. The conversation itself comes from the store (through `ConversationSource`), so a
restart or a second instance loses nothing; this process only remembers which versions it has
announced, to wake long-polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

from aiohttp import web

from channels.base import (
    BadRequest,
    ConversationSource,
    InboundMessage,
    OutboundMessage,
    Receipt,
    SendResult,
    WebhookChannel,
)
from channels.webchat_config import WebchatConfig

STATIC = Path(__file__).parent / "webchat_static"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{32,128}$")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_MAX_SESSIONS = 20_000  # long-poll state kept for at most this many recent sessions


def address_of(token: str) -> str:
    """The contact address for a session token (a hash: the token itself is a credential)."""
    return "web-" + hashlib.sha256(token.encode()).hexdigest()[:32]


class _Session:
    __slots__ = ("changed", "sent_times", "version")

    def __init__(self) -> None:
        self.version = 0
        self.changed = asyncio.Event()
        self.sent_times: list[float] = []


class WebchatChannel(WebhookChannel):
    name: ClassVar[str] = "webchat"
    supports_buttons: ClassVar[bool] = True
    # No `find_sent` needed: `send` hands nothing to anyone (the reply is in the store already and
    # shows once recorded as sent), so sending it again after a crash shows it once all the same.
    can_find_sent: ClassVar[bool] = False
    max_body_bytes: ClassVar[int] = 32 * 1024

    def __init__(self, config: WebchatConfig, conversation: ConversationSource) -> None:
        super().__init__()
        self.config = config
        self._conversation = conversation
        self._epoch = secrets.token_hex(4)  # versions of another process (or before a restart) never match
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self._closing = False

    def routes(self) -> list[web.AbstractRouteDef]:
        return [
            web.get("/", self._home),  # the city's chat is what a visitor of the bare address wants
            web.get("/chat", self._page),
            web.get("/chat/", self._page),
            web.static("/chat/static", STATIC, append_version=True),
            web.post("/chat/api/session", self._new_session),
            web.post("/chat/api/messages", self.handle_webhook),
            web.get("/chat/api/messages", self._messages),
        ]

    async def _home(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("/chat")

    # --- the contract ---------------------------------------------------------------------

    def verify(self, request: web.Request, body: bytes) -> bool:
        # Any well-formed token is a session: tokens are 256-bit random values minted by
        # /chat/api/session, so holding one is the proof. The body is checked in `parse`.
        return True

    def parse(self, request: web.Request, body: bytes) -> list[InboundMessage]:
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest("the body must be JSON") from exc
        if not isinstance(data, dict):
            raise BadRequest("the body must be a JSON object")
        token, client_id, text = data.get("session"), data.get("id"), data.get("text")
        if not isinstance(token, str) or not _TOKEN.match(token):
            raise BadRequest("session must be a token from /chat/api/session")
        if not isinstance(client_id, str) or not _CLIENT_ID.match(client_id):
            raise BadRequest("id must be 8-64 characters of A-Z a-z 0-9 _ -")
        if not isinstance(text, str) or not text.strip():
            raise BadRequest("text must be a non-empty string")
        if len(text) > self.config.max_text_chars:
            raise BadRequest(f"text is longer than {self.config.max_text_chars} characters")
        address = address_of(token)
        language = (
            request.headers.get("Accept-Language", "").split(",")[0].split("-")[0].strip().lower() or None
        )
        return [
            InboundMessage(
                channel=self.name,
                sender=address,
                text=text.strip(),
                provider_message_id=f"{address}:{client_id}",
                received_at=datetime.now(UTC),
                language_hint=language,
            )
        ]

    def throttle(self, messages: Sequence[InboundMessage]) -> float | None:
        now = time.monotonic()
        for message in messages:
            session = self._session(message.sender)
            session.sent_times = [t for t in session.sent_times if now - t < 60]
            if len(session.sent_times) >= self.config.messages_per_minute:
                return 60 - (now - session.sent_times[0])
            session.sent_times.append(now)
        return None

    async def acknowledge(
        self, messages: Sequence[InboundMessage], receipts: Sequence[Receipt]
    ) -> web.StreamResponse:
        for message in messages:
            self._touch(message.sender)  # the page shows the citizen's own message at once
        return web.json_response({"accepted": True})

    async def send(self, message: OutboundMessage) -> SendResult:
        # The message is in the store already: recording it as sent is what makes it visible.
        return SendResult(provider_message_id=message.idempotency_key)

    def on_sent(self, message: OutboundMessage) -> None:
        self._touch(message.recipient)  # now the page's long-poll will find it

    async def stop(self) -> None:
        # Answer every held long-poll now, so the server can shut down without waiting them out.
        self._closing = True
        for session in self._sessions.values():
            session.changed.set()

    # --- handlers -------------------------------------------------------------------------

    async def _page(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "chat.html", headers={"Cache-Control": "no-cache"})

    async def _new_session(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {"session": secrets.token_urlsafe(32)}, headers={"Cache-Control": "no-store"}
        )

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        token = request.query.get("session", "")
        if not _TOKEN.match(token):
            return web.json_response({"error": "session must be a token from /chat/api/session"}, status=400)
        address = address_of(token)
        session = self._session(address)
        if request.query.get("version", "") == self._version(session) and not self._closing:
            changed = session.changed
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.long_poll_seconds):  # see router/dispatcher.py
                    await changed.wait()
        version = self._version(session)
        items = await self._conversation(self.name, address)
        messages = [
            {
                "id": item.id,
                "from": item.sender,
                "text": item.text,
                "at": item.at.isoformat(),
                "buttons": [{"label": b.label, "value": b.value} for b in item.buttons],
            }
            for item in items[-self.config.history_limit :]
        ]
        return web.json_response(
            {"version": version, "messages": messages}, headers={"Cache-Control": "no-store"}
        )

    # --- long-poll bookkeeping ------------------------------------------------------------

    def _session(self, address: str) -> _Session:
        session = self._sessions.get(address)
        if session is None:
            session = self._sessions[address] = _Session()
            while len(self._sessions) > _MAX_SESSIONS:
                self._sessions.popitem(last=False)
        self._sessions.move_to_end(address)
        return session

    def _version(self, session: _Session) -> str:
        return f"{self._epoch}.{session.version}"

    def _touch(self, address: str) -> None:
        session = self._session(address)
        session.version += 1
        session.changed.set()
        session.changed = asyncio.Event()
