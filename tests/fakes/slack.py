"""A stand-in for Slack on RecordingServer: the Web API methods that our staff desk (channels/slack.py)
and slack-bolt call, for the real slack_sdk; and what Slack sends to the app (events, button clicks,
modal submissions, slash commands), signed as Slack signs them (v0: X-Slack-Signature).

    async with FakeSlack(bot_token=TOKEN) as fake:
        channel = fake.add_channel("dept-transport")
        client = AsyncWebClient(token=TOKEN, base_url=fake.api_url)

Answers are Slack's, `{"ok": true, ...}` or `{"ok": false, "error": ...}`; messages and modals are
checked as Slack checks Block Kit (tests/fakes/blockkit.py).
"""

from __future__ import annotations

import asyncio
import json
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from slack_sdk.signature import SignatureVerifier

from tests.fakes import blockkit
from tests.fakes.blockkit import SlackError, new_trigger_id
from tests.fakes.server import FAILURE, RecordingServer

Json = dict[str, Any]
Request = tuple[bytes, dict[str, str]]  # a body and its headers, for `FakeSlack.post_to_app`

TEAM_ID, BOT_USER_ID, BOT_ID, APP_ID, BOT_NAME = "T0CITY", "U0BOT", "B0BOT", "A0CITYAPP", "city_intake"
ACK_DEADLINE = 3.0  # seconds Slack waits for the app's answer before it retries
SIGNATURE_HEADER, TIMESTAMP_HEADER = "X-Slack-Signature", "X-Slack-Request-Timestamp"
RETRY_NUM_HEADER, RETRY_REASON_HEADER = "X-Slack-Retry-Num", "X-Slack-Retry-Reason"
_last_us = [0]


def next_ts() -> str:
    """A fresh message ts ("1732262400.000100"), later than every ts handed out before."""
    _last_us[0] = us = max(time.time_ns() // 1000, _last_us[0] + 1)
    return f"{us // 1_000_000}.{us % 1_000_000:06d}"


@dataclass
class Posted:
    """A message: the app's, a person's (`add_message`), or an ephemeral one (`user`: who sees it)."""

    ts: str
    text: str
    blocks: list[Json] | None
    thread_ts: str | None
    channel: str
    user: str = BOT_USER_ID
    metadata: Json | None = None
    updated: int = 0  # how many chat.update calls changed it


@dataclass
class AppReply:
    """The app's answer to what Slack delivered; `status` None: none within the ack deadline."""

    status: int | None
    body: bytes = b""

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def _arg(p: Json, name: str) -> str:  # a missing one is not found, as in Slack ("channel_not_found")
    return str(p.get(name) or "")


class FakeSlack(RecordingServer):
    """Slack's Web API on 127.0.0.1; the method `a.bC` is served by `api_a_bC`. The workspace:
    `add_channel`, `add_user`, `add_message`. Controls: RecordingServer's (`fail_next`, `down`, `hang`;
    `requests`, `of`), `limit` (429 with Retry-After) and `not_member` (channels the bot is not in)."""

    def __init__(self, bot_token: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.bot_token = bot_token
        self.clock = clock  # drives the rate limits; a test may pass a hand-moved clock
        self.not_member: set[str] = set()  # channel ids
        self.reactions: dict[tuple[str, str], list[str]] = {}  # (channel, ts) -> names, in order added
        self.ephemerals: list[Posted] = []
        self.modals = blockkit.Modals()
        self.views = self.modals.opened  # the modals views.open showed, in order
        self._ids: dict[str, str] = {}  # channel name -> id
        self._messages: dict[str, list[Posted]] = {}  # channel id -> its messages
        self._users: dict[str, Json] = {}
        self._limits: dict[str, tuple[int, int]] = {}
        self._taken: dict[tuple[str, str], list[float]] = {}  # when the calls within a limit were taken
        self.add_user(BOT_USER_ID, "City Intake", display_name=BOT_NAME, is_bot=True)

    @property
    def api_url(self) -> str:  # what slack_sdk takes as `base_url`
        return f"{self.base_url}/api/"

    def routes(self) -> list[web.RouteDef]:
        return [web.route("*", "/api/{method}", self._api)]

    def error(self, status: int, request: web.Request) -> web.StreamResponse:
        """`fail_next(error=...)`: Slack's JSON error at that status (200, "internal_error"). Without
        one a 429 is Slack's rate limit (Retry-After: 1), another status an HTML page from its edge."""
        code = request.get(FAILURE) or ("ratelimited" if status == 429 else "")
        if code:
            refusal = SlackError(code, status=status)
            return web.json_response(refusal.body(), status=refusal.status, headers=refusal.headers)
        page = f"<html><head><title>{status}</title></head><body><h1>Error {status}</h1></body></html>"
        return web.Response(status=status, text=page, content_type="text/html")  # Slack's edge, not the API

    def limit(self, method: str, *, per_channel_per_second: int = 0, per_minute: int = 0) -> None:
        """Rate-limit `method` (no numbers: lift it): so many calls per channel per second (Slack's
        chat.postMessage: 1), or per minute in the workspace (the method's tier)."""
        self._limits[method] = (per_channel_per_second, per_minute)

    def add_channel(self, name: str) -> str:
        """Create a channel ("dept-transport") and return its id ("C...")."""
        if (name := name.removeprefix("#")) in self._ids or name != name.lower() or " " in name:
            raise ValueError(f"Slack would not create a channel named {name!r}")
        self._ids[name] = channel_id = "C" + secrets.token_hex(5).upper()
        self._messages[channel_id] = []
        return channel_id

    def add_user(self, user_id: str, real_name: str, *, display_name: str = "", is_bot: bool = False) -> None:
        profile = {"real_name": real_name, "display_name": display_name}
        user = {"id": user_id, "team_id": TEAM_ID, "name": display_name or real_name.lower()}
        self._users[user_id] = user | {"real_name": real_name, "is_bot": is_bot, "profile": profile}

    def add_message(self, channel_id: str, text: str, *, user: str, thread_ts: str | None = None) -> Posted:
        """A message a person wrote (to react to, or thread under); deliver it with `thread_reply_event`."""
        return self._add(Posted(next_ts(), text, None, thread_ts, channel_id, user))

    def channel_id(self, name: str) -> str:
        return self._ids[name.removeprefix("#")]

    def messages(self, channel_id: str, *, top_level: bool = False) -> list[Posted]:
        """The channel's messages in ts order, thread replies too unless `top_level`."""
        found = sorted(self._messages.get(channel_id, []), key=lambda m: Decimal(m.ts))
        return [m for m in found if m.thread_ts in (None, m.ts)] if top_level else found

    def thread(self, channel_id: str, ts: str) -> list[Posted]:
        """The replies under the message `ts` (the parent not included)."""
        return [m for m in self.messages(channel_id) if m.thread_ts == ts and m.ts != ts]

    def message(self, channel_id: str, ts: str) -> Posted | None:
        return next((m for m in self._messages.get(channel_id, []) if m.ts == ts), None)

    def message_json(self, channel_id: str, ts: str) -> Json:
        """The message as Slack shows it in API answers and payloads (`action_request(message=)`)."""
        if (posted := self.message(channel_id, ts)) is None:
            raise KeyError((channel_id, ts))
        shown: Json = {"type": "message", "text": posted.text, "ts": ts, "user": posted.user, "team": TEAM_ID}
        shown |= {"bot_id": BOT_ID, "app_id": APP_ID} if posted.user == BOT_USER_ID else {}
        shown |= {"blocks": posted.blocks, "thread_ts": posted.thread_ts, "metadata": posted.metadata}
        return {key: value for key, value in shown.items() if value is not None}

    async def post_to_app(
        self, url: str, body: bytes, headers: dict[str, str], *, timeout: float = ACK_DEADLINE
    ) -> AppReply:
        """POST what a builder made to the app as Slack does, waiting `timeout` (Slack's 3 s) for it."""
        headers = {"User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)", **headers}
        try:
            async with asyncio.timeout(timeout), self.http.post(url, data=body, headers=headers) as answer:
                return AppReply(answer.status, await answer.read())
        except TimeoutError:
            return AppReply(None)

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        handler = getattr(self, "api_" + method.replace(".", "_"), None)
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        from_json = request.content_type == "application/json" and request.body_exists
        p: Json = {**request.query, **(await request.json() if from_json else await request.post())}
        try:
            if handler is None:
                raise SlackError("unknown_method", status=404)
            if scheme.lower() != "bearer" or not token:
                raise SlackError("not_authed")
            if not secrets.compare_digest(token, self.bot_token):
                raise SlackError("invalid_auth")
            self._rate_limit(method, p)
            return web.json_response({"ok": True, **handler(p)})
        except SlackError as refusal:
            return web.json_response(refusal.body(), status=refusal.status, headers=refusal.headers)

    def _rate_limit(self, method: str, p: Json) -> None:
        per_channel, per_minute = self._limits.get(method, (0, 0))
        channel = self._ids.get(str(p.get("channel") or "").removeprefix("#"), p.get("channel"))
        windows = [((method, channel), per_channel, 1.0)] if per_channel and channel else []
        windows += [((method, ""), per_minute, 60.0)] if per_minute else []
        now = self.clock()
        for key, allowed, span in windows:
            self._taken[key] = taken = [t for t in self._taken.get(key, []) if now - t < span]
            if len(taken) >= allowed:
                raise SlackError("ratelimited", status=429, retry_after=math.ceil(span - (now - taken[0])))
        for key, _, _ in windows:
            self._taken[key].append(now)

    def _channel(self, p: Json, *, by_name: bool = False, member: bool = True) -> str:
        """The id of the `channel` asked for (by its name too, where Slack takes one: chat.post*)."""
        channel = _arg(p, "channel")
        channel = self._ids.get(channel.removeprefix("#"), channel) if by_name else channel
        if channel not in self._messages:
            raise SlackError("channel_not_found")
        if member and channel in self.not_member:
            raise SlackError("not_in_channel")
        return channel

    def _existing(self, channel: str, ts: str) -> Posted:
        if (posted := self.message(channel, ts)) is None:
            raise SlackError("message_not_found")
        return posted

    def _add(self, posted: Posted) -> Posted:
        parent = self.message(posted.channel, posted.thread_ts or "")
        if parent is not None and parent.thread_ts is None:
            parent.thread_ts = parent.ts  # a parent gets its own ts as thread_ts once it has replies
        self._messages[posted.channel].append(posted)
        return posted

    def _content(self, p: Json) -> tuple[str, list[Json] | None]:
        text, blocks = str(p.get("text") or ""), p.get("blocks")
        blockkit.check_message(text, blocks)
        return text, blocks or None

    # --- the Web API methods

    def api_auth_test(self, p: Json) -> Json:
        workspace = {"url": "https://city.slack.com/", "team": "City Hall", "team_id": TEAM_ID}
        return workspace | {"user": BOT_NAME, "user_id": BOT_USER_ID, "bot_id": BOT_ID}

    def api_chat_postMessage(self, p: Json) -> Json:
        channel, (text, blocks) = self._channel(p, by_name=True), self._content(p)
        # A thread_ts that matches no message: Slack says ok and posts to the channel, un-threaded.
        parent = self.message(channel, str(p.get("thread_ts") or ""))
        thread_ts = (parent.thread_ts or parent.ts) if parent is not None else None
        posted = self._add(Posted(next_ts(), text, blocks, thread_ts, channel, metadata=p.get("metadata")))
        return {"channel": channel, "ts": posted.ts, "message": self.message_json(channel, posted.ts)}

    def api_chat_update(self, p: Json) -> Json:
        channel = self._channel(p, member=False)
        posted, (text, blocks) = self._existing(channel, _arg(p, "ts")), self._content(p)
        posted.text = text if "text" in p else posted.text
        posted.blocks = blocks if "blocks" in p else posted.blocks
        posted.updated += 1
        return {"channel": channel, "ts": posted.ts, "message": self.message_json(channel, posted.ts)}

    def api_chat_postEphemeral(self, p: Json) -> Json:
        channel, (text, blocks) = self._channel(p, by_name=True), self._content(p)
        self.ephemerals.append(Posted(next_ts(), text, blocks, p.get("thread_ts"), channel, _arg(p, "user")))
        return {"message_ts": self.ephemerals[-1].ts}

    def api_reactions_add(self, p: Json) -> Json:
        channel = self._channel(p)
        posted, name = self._existing(channel, _arg(p, "timestamp")), _arg(p, "name")
        # Slack wants the bare name ("eyes", "+1", "thumbsup::skin-tone-2"), not ":eyes:".
        if name.startswith(":") or name.endswith(":") or not all(c.isalnum() or c in "_+-':" for c in name):
            raise SlackError("invalid_name")
        if name in (names := self.reactions.setdefault((channel, posted.ts), [])):
            raise SlackError("already_reacted")
        names.append(name)
        return {}

    def api_users_info(self, p: Json) -> Json:
        if (user := self._users.get(_arg(p, "user"))) is None:
            raise SlackError("user_not_found")
        return {"user": user}

    def api_conversations_list(self, p: Json) -> Json:
        channels = [
            {"id": i, "name": name, "is_member": i not in self.not_member} for name, i in self._ids.items()
        ]
        return self._page("channels", channels, p)

    def api_conversations_history(self, p: Json) -> Json:
        """The channel's own messages after `oldest`, newest first (thread replies not included)."""
        channel = self._channel(p)
        return self._messages_page(channel, self.messages(channel, top_level=True)[::-1], p)

    def api_conversations_replies(self, p: Json) -> Json:
        """A thread: its parent first (whatever `oldest` says, as in Slack), then the replies after it."""
        channel = self._channel(p)
        if (parent := self.message(channel, _arg(p, "ts"))) is None:
            raise SlackError("thread_not_found")
        return self._messages_page(channel, self.thread(channel, parent.ts), p, parent)

    def _messages_page(self, channel: str, found: list[Posted], p: Json, parent: Any = None) -> Json:
        """Those after `oldest`; metadata's payload only if `include_all_metadata` (as in Slack)."""
        oldest = Decimal(str(p.get("oldest") or 0))
        found = ([parent] if parent else []) + [m for m in found if Decimal(m.ts) > oldest]
        messages = [self.message_json(channel, m.ts) for m in found]
        if str(p.get("include_all_metadata")).lower() not in ("1", "true"):
            for message in (m for m in messages if "metadata" in m):
                message["metadata"] = {"event_type": message["metadata"]["event_type"]}
        page = self._page("messages", messages, p)
        return page | {"has_more": bool(page["response_metadata"]["next_cursor"])}

    def _page(self, key: str, items: list[Json], p: Json) -> Json:
        """One page by `limit`, from the `cursor` (here an offset) that the page before handed out."""
        limit, start = min(int(p.get("limit") or 100), 1000), int(p.get("cursor") or 0)
        following = str(start + limit) if start + limit < len(items) else ""
        return {key: items[start : start + limit], "response_metadata": {"next_cursor": following}}

    def api_views_open(self, p: Json) -> Json:
        opened = self.modals.open(str(p.get("trigger_id") or ""), p.get("view"))
        return {"view": blockkit.shown_view(opened.view, opened.view_id) | {"team_id": TEAM_ID}}


# --- what Slack sends to the app ---------------------------------------------------------------------


def signed_headers(secret: str, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    """X-Slack-Request-Timestamp and X-Slack-Signature (v0) for `body`, as Slack computes them."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    return {TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: str(signature)}


def _signed(secret: str, payload: Json, *, form: bool = False, timestamp: int | None = None) -> Request:
    """A JSON body, or a form (interactions, slash commands), with its signed headers."""
    body = (urlencode(payload) if form else json.dumps(payload)).encode()
    kind = "application/x-www-form-urlencoded" if form else "application/json"
    return body, {"Content-Type": kind, **signed_headers(secret, body, timestamp=timestamp)}


def event_request(
    secret: str,
    event: Json,
    *,
    event_id: str = "",
    retry_num: int = 0,
    retry_reason: str = "http_timeout",
    timestamp: int | None = None,
) -> Request:
    """An Events API delivery (`event_callback`); `timestamp`: when it was signed. A retry carries the
    same `event_id`, with `retry_num` (1..3) and `retry_reason` ("http_timeout", "http_error")."""
    envelope: Json = {"type": "event_callback", "team_id": TEAM_ID, "api_app_id": APP_ID, "event": event}
    envelope |= {"event_id": event_id or "Ev" + secrets.token_hex(5).upper(), "event_time": int(time.time())}
    envelope["authorizations"] = [{"team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True}]
    body, headers = _signed(secret, envelope, timestamp=timestamp)
    if retry_num:
        headers |= {RETRY_NUM_HEADER: str(retry_num), RETRY_REASON_HEADER: retry_reason}
    return body, headers


def url_verification_request(secret: str, challenge: str) -> Request:
    """What Slack sends when the Events URL is saved; the app must echo `challenge`."""
    return _signed(secret, {"type": "url_verification", "challenge": challenge, "token": "unused"})


def _message(channel: str, text: str, thread_ts: str | None, ts: str = "", **fields: Any) -> Json:
    ts = ts or next_ts()
    event = {"type": "message", "text": text, "ts": ts, "event_ts": ts, "channel": channel, **fields}
    return event | {"channel_type": "channel"} | ({"thread_ts": thread_ts} if thread_ts else {})


def thread_reply_event(
    channel: str, thread_ts: str, user: str, text: str, *, ts: str = "", parent_user_id: str = BOT_USER_ID
) -> Json:
    """A person's reply in the thread under `thread_ts` (a staff answer under a ticket card); pass the
    ts of a message from `FakeSlack.add_message` as `ts` so the fake knows it too."""
    return _message(channel, text, thread_ts, ts, user=user, team=TEAM_ID, parent_user_id=parent_user_id)


def bot_message_event(channel: str, text: str, *, bot_id: str, thread_ts: str | None = None) -> Json:
    """A message from a legacy bot or an incoming webhook: `subtype: bot_message`, a `bot_id`, no user."""
    return _message(channel, text, thread_ts, subtype="bot_message", bot_id=bot_id)


def app_message_event(
    channel: str, text: str, *, bot_id: str = BOT_ID, user: str = BOT_USER_ID, thread_ts: str | None = None
) -> Json:
    """A message an app posted with its bot token (the app's own posts echo back like this): `user`,
    `bot_id` and `app_id`, no subtype. Bolt drops the app's own."""
    return _message(channel, text, thread_ts, user=user, bot_id=bot_id, app_id=APP_ID, team=TEAM_ID)


def _interaction(secret: str, payload: Json) -> Request:
    """An interaction (tests/fakes/blockkit.py) from this workspace, form-encoded as `payload=` JSON."""
    payload["user"] |= {"username": payload["user"]["id"].lower(), "team_id": TEAM_ID}
    payload |= {"team": {"id": TEAM_ID, "domain": "city"}, "api_app_id": APP_ID, "token": "unused"}
    return _signed(secret, {"payload": json.dumps(payload)}, form=True)


def action_request(secret: str, **click: Any) -> Request:
    """A button clicked on a message (the arguments: `blockkit.block_actions`)."""
    return _interaction(secret, blockkit.block_actions(**click))


def view_submission_request(secret: str, **submitted: Any) -> Request:
    """A modal submitted (the arguments: `blockkit.view_submission`)."""
    return _interaction(secret, blockkit.view_submission(**submitted))


def command_request(secret: str, *, command: str, text: str, user_id: str, channel_id: str) -> Request:
    """A slash command, form-encoded as Slack sends it."""
    where = {"team_id": TEAM_ID, "team_domain": "city", "channel_id": channel_id, "channel_name": "x"}
    who = {"user_id": user_id, "user_name": user_id.lower(), "api_app_id": APP_ID, "token": "unused"}
    form = where | who | {"command": command, "text": text, "trigger_id": new_trigger_id()}
    return _signed(secret, form | {"response_url": "https://hooks.slack.com/commands/1/x"}, form=True)
