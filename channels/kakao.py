"""A KakaoTalk channel's chatbot: a Kakao i Open Builder skill at `/webhooks/kakao`.

Inbound: Open Builder POSTs a skill request (JSON) for each thing a citizen says in the channel's
chat; Kakao signs nothing, so the skill is set up to send a secret header, and a request without it,
or for another bot, gets 403. Parsing and the response format are in kakao_skill.py.

The answer goes back in the skill call's own HTTP response, within 5 seconds. The message says so
(`answer_window_seconds`): intake hands back the replies it queued (`Receipt.replies`), the answer
shows them, and once it is written `host.answered` records them sent; the dispatcher sends them
itself only if that never happens (the answer could not be written, the process died), after the
window, as later messages. Intake not done in time and Kakao gave a callback URL: we answer
`useCallback` at once and POST the replies there once they are ready.

Later messages (staff replies, resolutions, late notices) go through the paid Event API
(kakao_events.py) when their notice is in `event_notices`; the rest are held (kakao_held.py) and
shown at the top of the citizen's next answer.

Exactly once: Kakao's skill request has no id of its own. A request is taken to be Kakao's retry when
the same citizen sent the same utterance in the same block within `retry_window_seconds` of it: it
gets the first one's message id, so intake stores nothing new. A new message's id is the digest of
its callback URL (one-time, per request) when there is one, else a random one.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

import aiohttp
from aiohttp import web

from channels.base import (
    BadRequest,
    Button,
    ChannelHost,
    Command,
    InboundMessage,
    OutboundMessage,
    PermanentSendError,
    Receipt,
    SendResult,
    WebhookChannel,
    buttons_as_text,
)
from channels.kakao_config import KakaoConfig
from channels.kakao_events import EventApi
from channels.kakao_held import CHANNEL, Held, Shown, memory_name
from channels.kakao_skill import MAX_TEXT, SkillRequest, callback_ack, parse_request, response
from channels.splitting import split_text

log = logging.getLogger("channels.kakao")

WEBHOOK_PATH = "/webhooks/kakao"
_REMEMBERED_PUSHES = 1000  # keys whose first parts went out, so a retry does not repeat them
KAKAO_WAITS = 5.0  # seconds Kakao waits for a skill's answer
# An answer written later than this after the call began may have found Kakao gone: its replies are
# then not recorded as given, and the dispatcher sends them as later messages.
_IN_TIME = KAKAO_WAITS - 0.5


def command_of(text: str, config: KakaoConfig) -> Command | None:
    """What a whole message means in the channel's own words: stop or unstop (None otherwise)."""
    said = " ".join(text.split()).upper()
    if said in {" ".join(w.split()).upper() for w in config.stop_words}:
        return "stop"
    if said in {" ".join(w.split()).upper() for w in config.unstop_words}:
        return "unstop"
    return None


def _same_bot(given: str, configured: str) -> bool:
    # A development channel's bot is addressed with a trailing "!" in the Event API.
    return hmac.compare_digest(given.rstrip("!").encode(), configured.rstrip("!").encode())


class KakaoChannel(WebhookChannel):
    name: ClassVar[str] = "kakao"
    supports_buttons: ClassVar[bool] = True  # as quick replies

    def __init__(self, config: KakaoConfig, *, public_url: str) -> None:
        super().__init__(config.rate_limit.to_rate_limit())
        self.config = config
        self.public_url = public_url.rstrip("/")
        self.events = EventApi(config)
        self.held = Held()
        self._recent: dict[str, tuple[str, str, float]] = {}  # user -> (digest, message id, at)
        self._pushed: dict[str, int] = {}  # idempotency key -> parts the Event API took
        self._callbacks: set[asyncio.Task[None]] = set()
        self._http: aiohttp.ClientSession | None = None

    # --- lifecycle

    def routes(self) -> list[web.AbstractRouteDef]:
        return [web.post(WEBHOOK_PATH, self.handle_webhook)]

    async def start(self, host: ChannelHost) -> None:
        await super().start(host)
        await self.events.start()
        if self._http is None:
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.config.timeout_seconds)
            )

    async def stop(self) -> None:
        for task in list(self._callbacks):
            task.cancel()
        await asyncio.gather(*self._callbacks, return_exceptions=True)
        await self.events.close()
        http, self._http = self._http, None
        if http is not None:
            await http.close()

    # --- inbound

    def verify(self, request: web.Request, body: bytes) -> bool:
        given = request.headers.get(self.config.secret_header, "")
        if not given or not hmac.compare_digest(given.encode(), self.config.skill_secret.encode()):
            return False
        try:  # another bot's request (a skill shared by mistake) is refused like a forged one
            bot = json.loads(body).get("bot", {}).get("id")
        except (ValueError, AttributeError):
            return True  # authentic but unreadable: parse answers 400
        return not isinstance(bot, str) or _same_bot(bot, self.config.bot_id)

    def parse(self, request: web.Request, body: bytes) -> list[InboundMessage]:
        """The message of a skill request, without its id: `handle_verified` gives it one, which
        needs the host's memory (Kakao's retries are recognised there)."""
        return [self._message(parse_request(body), provider_message_id="")]

    def _message(self, skill: SkillRequest, *, provider_message_id: str) -> InboundMessage:
        raw = dict(skill.payload)
        if isinstance(raw.get("userRequest"), dict):  # a one-time capability: not for the store
            raw["userRequest"] = {k: v for k, v in raw["userRequest"].items() if k != "callbackUrl"}
        # How long Kakao waits for this answer: the call itself, or the callback URL's minute.
        window = self.config.callback_within_seconds + 5 if skill.callback_url else KAKAO_WAITS
        return InboundMessage(
            channel=self.name,
            sender=skill.user_id,
            text=skill.utterance,
            provider_message_id=provider_message_id,
            received_at=datetime.now(UTC),
            language_hint=skill.language,
            raw=raw,
            command=command_of(skill.utterance, self.config),
            answer_window_seconds=window,
        )

    async def _message_id(self, skill: SkillRequest) -> str:
        """Kakao's retry gets the id of the message it repeats; a new message a new id."""
        digest = hashlib.sha256(
            f"{skill.user_id}\x1f{skill.block_id}\x1f{skill.utterance}".encode()
        ).hexdigest()[:32]
        now = time.time()
        name = memory_name("last", skill.user_id)
        last = self._recent.get(skill.user_id)
        if last is None:  # another instance may have taken the first call
            try:
                stored = json.loads(await self.host.recall(CHANNEL, name) or "{}")
                last = (stored["digest"], stored["id"], float(stored["at"]))
            except (ValueError, KeyError, TypeError):
                last = None
        if last is not None and last[0] == digest and 0 <= now - last[2] <= self.config.retry_window_seconds:
            return last[1]
        if skill.callback_url:
            message_id = "cb:" + hashlib.sha256(skill.callback_url.encode()).hexdigest()[:40]
        else:
            message_id = f"kk:{digest[:16]}:{uuid.uuid4().hex[:16]}"
        self._recent[skill.user_id] = (digest, message_id, now)
        if len(self._recent) > 10_000:
            self._recent.pop(next(iter(self._recent)))
        await self.host.remember(CHANNEL, name, json.dumps({"digest": digest, "id": message_id, "at": now}))
        return message_id

    async def handle_verified(self, request: web.Request, body: bytes) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        began = loop.time()
        try:
            skill = parse_request(body)
        except BadRequest as exc:
            return web.json_response({"error": str(exc)}, status=400)
        try:
            message = self._message(skill, provider_message_id=await self._message_id(skill))
            intake = asyncio.ensure_future(self.inbound(message))
            if skill.callback_url is None:
                # Without a callback nothing is said before the message is stored: if that takes
                # longer than Kakao waits, Kakao retries, and the retry is answered.
                receipt = await intake
            else:
                done, _ = await asyncio.wait({intake}, timeout=self.config.answer_within_seconds)
                if not done:
                    self._later(self._answer_later(skill, intake))
                    log.info("kakao: intake is slow; answering by the callback URL")
                    return web.json_response(callback_ack(self.config.pending_text))
                receipt = intake.result()
        except Exception:
            # Nothing was acknowledged, so Kakao may retry and nothing is lost; say "later".
            log.exception("kakao: could not store a skill request; asking Kakao to retry")
            return web.json_response({"error": "temporarily unavailable; please retry"}, status=503)
        if receipt.duplicate:
            reference = receipt.reference or "-"
            extra = [self.config.duplicate_text.format(reference=reference)]
            return await self._answer(request, skill.user_id, [], extra)
        return await self._answer(request, skill.user_id, receipt.replies, in_time=began + _IN_TIME)

    def _later(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self._callbacks.add(task)
        task.add_done_callback(self._callbacks.discard)

    async def _content(
        self, user_id: str, replies: Sequence[OutboundMessage], extra: Sequence[str] = ()
    ) -> tuple[dict[str, Any], list[Shown]]:
        """The response: held texts first (joined into one bubble), then the replies; and the held
        texts it took (to hold again if it cannot be delivered)."""
        held = await self.held.take(self.host, user_id)
        shown = [*(Shown.of(m) for m in replies), *(Shown(t) for t in extra)]
        texts = (["\n\n".join(h.text for h in held)] if held else []) + [s.text for s in shown]
        buttons = next((s.buttons for s in reversed(shown) if s.buttons), ())
        if not buttons and any(m.notice == "answer" for m in replies):
            buttons = tuple(Button(q.label, q.value) for q in self.config.answer_quick_replies)
        body, rest = response(texts, buttons)
        if rest:  # more than three bubbles: the rest waits for the next answer
            await self.held.add(self.host, user_id, [Shown(t) for t in rest])
        return body, held

    async def _answer(
        self,
        request: web.Request,
        user_id: str,
        replies: Sequence[OutboundMessage],
        extra: Sequence[str] = (),
        *,
        in_time: float | None = None,
    ) -> web.StreamResponse:
        body, held = await self._content(user_id, replies, extra)
        answer = web.json_response(body)
        try:
            await answer.prepare(request)
            await answer.write_eof()
        except (ConnectionError, RuntimeError, OSError):
            # Kakao gave up on the call (its 5 seconds passed): the replies go as later messages.
            log.warning("kakao: a skill answer could not be written; its texts go as later messages")
            await self.held.add(self.host, user_id, held)
            return answer
        if replies and (in_time is None or asyncio.get_running_loop().time() <= in_time):
            await self.host.answered(self.name, [m.idempotency_key for m in replies])
        elif replies:
            log.warning("kakao: a skill answer was late; its replies go as later messages too")
        return answer

    async def _answer_later(self, skill: SkillRequest, intake: asyncio.Future[Receipt]) -> None:
        """Once intake is done, POST the answer to the callback URL (once; it is good for a minute)."""
        if skill.callback_url is None or self._http is None:
            return
        replies: tuple[OutboundMessage, ...] = ()
        held: list[Shown] = []
        try:
            receipt = await intake
        except Exception:
            log.exception("kakao: could not store a skill request answered by callback")
            body = response([self.config.failed_text])[0]
        else:
            replies = receipt.replies
            reference = receipt.reference or "-"
            extra = [self.config.duplicate_text.format(reference=reference)] if receipt.duplicate else []
            body, held = await self._content(skill.user_id, replies, extra)
        try:
            async with self._http.post(skill.callback_url, json=body) as answer:
                ok = answer.status < 300
                detail = f"{answer.status} {(await answer.text())[:200]}"
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        if ok:
            if replies:
                await self.host.answered(self.name, [m.idempotency_key for m in replies], route="callback")
            return
        log.warning("kakao: the callback URL refused the answer (%s); it goes as later messages", detail)
        await self.held.add(self.host, skill.user_id, held)

    # --- outbound

    def _pushed_notice(self, message: OutboundMessage) -> bool:
        return (message.notice or "reply") in self.config.event_notices

    def _parts(self, message: OutboundMessage) -> list[str]:
        return split_text(buttons_as_text(message.text, message.buttons), MAX_TEXT)

    def send_cost(self, message: OutboundMessage) -> int:
        # Only Event API calls count against the rate limit; a held text costs nothing.
        return max(1, len(self._parts(message))) if self._pushed_notice(message) else 0

    async def send(self, message: OutboundMessage) -> SendResult:
        """A later message: pushed through the Event API when its notice is enabled, else held for
        the citizen's next answer."""
        if not self._pushed_notice(message):
            await self.held.add(self.host, message.recipient, [Shown.of(message)])
            return SendResult(provider_message_id="held", route="held")
        parts = self._parts(message)
        if not parts:
            raise PermanentSendError("nothing to send: the message has no text")
        key = message.idempotency_key
        first = None
        for index in range(self._pushed.get(key, 0), len(parts)):
            task = await self.events.push(message.recipient, parts[index])
            first = first or task
            self._pushed[key] = index + 1
            while len(self._pushed) > _REMEMBERED_PUSHES:
                self._pushed.pop(next(iter(self._pushed)))
        return SendResult(provider_message_id=f"event:{first}" if first else None, route="event")

    def on_sent(self, message: OutboundMessage) -> None:
        self._pushed.pop(message.idempotency_key, None)
