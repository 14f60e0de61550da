"""A fake Slack: the Web API on a local port for the real slack_sdk / slack-bolt, and builders for what
Slack sends to an app (Events API, interactivity, slash commands), signed as Slack signs them.

    async with FakeSlack(bot_token=TOKEN) as fake:
        channel = fake.add_channel("dept-transport")
        client = AsyncWebClient(token=TOKEN, base_url=fake.api_url)
        app = AsyncApp(client=client, signing_secret=SECRET)

Web API calls arrive as slack_sdk 3.x sends them: `POST /api/{method}`, JSON for chat.* and views.*,
query parameters for auth.test, reactions.add and the GET readers; the token in `Authorization:
Bearer`. Slack also takes form-encoded bodies (nested values as JSON text) and a `token` field in a form
or query string, but not in a JSON body; so does this fake. It answers as Slack does: HTTP 200 with
`{"ok": true, ...}` or `{"ok": false, "error": "..."}`, HTTP 429 with `Retry-After` and
`{"ok": false, "error": "ratelimited"}` when a limit set with `limit()` is exceeded.

Message ts are "seconds.microseconds" strings from the wall clock, strictly increasing across the fake
and the builders (one generator), so they sort as Slack's do.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import hashlib
import json
import math
import secrets
import string
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

import aiohttp
from aiohttp import web
from slack_sdk.signature import SignatureVerifier

Json = dict[str, Any]

DEFAULT_TEAM_ID = "T0CITY"
DEFAULT_BOT_USER_ID = "U0BOT"
DEFAULT_BOT_ID = "B0BOT"
DEFAULT_APP_ID = "A0CITYAPP"
TEAM_DOMAIN = "city"
TEAM_NAME = "City Hall"
BOT_NAME = "city_intake"

MAX_TEXT = 40_000  # chat.postMessage text; longer is refused here (Slack may truncate instead)
MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
TRIGGER_LIFETIME = 3.0  # seconds a trigger_id can be exchanged for a modal
ACK_DEADLINE = 3.0  # seconds Slack waits for an app to answer before it retries
SIGNATURE_HEADER = "X-Slack-Signature"
TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
RETRY_NUM_HEADER = "X-Slack-Retry-Num"
RETRY_REASON_HEADER = "X-Slack-Retry-Reason"
USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"

_ID_CHARS = string.ascii_uppercase + string.digits


def new_id(prefix: str, length: int = 10) -> str:
    """A Slack-style id: a type letter (C channel, U user, V view, Ev event...) and upper-case base36."""
    return prefix + "".join(secrets.choice(_ID_CHARS) for _ in range(length))


class _TsClock:
    """Message timestamps as Slack writes them, strictly increasing within this process."""

    def __init__(self) -> None:
        self.last_us = 0

    def next(self) -> str:
        self.last_us = max(time.time_ns() // 1000, self.last_us + 1)
        return f"{self.last_us // 1_000_000}.{self.last_us % 1_000_000:06d}"


_ts_clock = _TsClock()


def next_ts() -> str:
    """A fresh message ts ("1732262400.000100"), later than every ts handed out before."""
    return _ts_clock.next()


def new_trigger_id(issued_at: float | None = None) -> str:
    """A trigger_id as this fake issues them: `{issued_ms}.{random}.{hex}`. The fake's views.open reads
    the issue time from it, so a trigger older than 3 seconds is `expired_trigger_id` (as in Slack)
    without the fake having to see the interaction that carried it."""
    issued = time.time() if issued_at is None else issued_at
    return f"{int(issued * 1000)}.{secrets.randbelow(10**9)}.{secrets.token_hex(10)}"


def _trigger_issued_at(trigger_id: str) -> float | None:
    parts = trigger_id.split(".")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit() or not parts[2]:
        return None
    return int(parts[0]) / 1000


# --- what the fake records ---------------------------------------------------------------------------


@dataclass
class Call:
    """One Web API request as it arrived (decoded: JSON values typed, form values strings)."""

    method: str
    params: Json
    at: float = field(default_factory=time.monotonic)
    http_method: str = "POST"
    content_type: str = ""
    token: str | None = None


@dataclass
class Posted:
    """A message in a channel: one the app posted, or one a test said a person wrote (`add_message`)."""

    ts: str
    text: str
    blocks: list[Json] | None
    thread_ts: str | None
    updated: int = 0  # how many chat.update calls changed it
    channel: str = ""
    user: str = DEFAULT_BOT_USER_ID
    bot: bool = True
    reply_broadcast: bool = False
    requested_thread_ts: str | None = None  # what the caller asked for, when Slack un-threaded it
    metadata: Json | None = None
    at: float = field(default_factory=time.monotonic)


@dataclass
class Ephemeral:
    channel: str
    user: str
    text: str
    blocks: list[Json] | None
    thread_ts: str | None
    message_ts: str
    at: float = field(default_factory=time.monotonic)


@dataclass
class OpenedView:
    trigger_id: str
    view: Json  # as the app sent it
    view_id: str
    at: float = field(default_factory=time.monotonic)


@dataclass
class Responded:
    """A POST the app made to a `response_url` the fake handed out."""

    url: str
    payload: Json
    at: float = field(default_factory=time.monotonic)


@dataclass
class AppReply:
    """What an app answered to something Slack delivered; `status` None: no answer within the ack
    deadline (Slack would retry with X-Slack-Retry-Num / X-Slack-Retry-Reason: http_timeout)."""

    status: int | None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    elapsed: float = 0.0

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class _Channel:
    id: str
    name: str
    is_private: bool = False
    members: set[str] | None = None  # None: everybody in the workspace
    archived: bool = False
    created: int = field(default_factory=lambda: int(time.time()))
    topic: str = ""
    purpose: str = ""


@dataclass
class _User:
    id: str
    real_name: str
    display_name: str = ""
    email: str | None = None
    is_bot: bool = False
    deleted: bool = False
    is_admin: bool = False
    tz: str = "Asia/Seoul"
    tz_offset: int = 9 * 3600


@dataclass
class _Limit:
    per_channel_per_second: int | None
    per_minute: int | None


class SlackError(Exception):
    """An error answer, as Slack shapes it."""

    def __init__(self, error: str, *, status: int = 200, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(error)
        self.error = error
        self.status = status
        self.headers = headers or {}
        self.extra = extra

    def response(self) -> web.Response:
        body: Json = {"ok": False, "error": self.error, **self.extra}
        return web.json_response(body, status=self.status, headers=self.headers)


class _Unavailable(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _Params:
    """Request parameters: the query string, then the body (form or JSON) on top."""

    def __init__(self, values: Json) -> None:
        self.values = values

    def text(self, name: str) -> str | None:
        value = self.values.get(name)
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        return json.dumps(value) if isinstance(value, dict | list) else str(value)

    def required(self, name: str) -> str:
        value = self.text(name)
        if not value:
            raise SlackError("invalid_arguments", response_metadata={"messages": [f"[ERROR] missing {name}"]})
        return value

    def flag(self, name: str) -> bool:
        value = self.values.get(name)
        if isinstance(value, str):
            return value.lower() in ("true", "1")
        return bool(value)

    def integer(self, name: str, default: int) -> int:
        value = self.values.get(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except (TypeError, ValueError):
            raise SlackError("invalid_arguments") from None

    def obj(self, name: str, *, error: str) -> Any:
        """A nested JSON value (blocks, view, metadata): typed in a JSON body, JSON text in a form."""
        value = self.values.get(name)
        if not isinstance(value, str):
            return value
        if value == "":
            return None
        try:
            return json.loads(value)
        except ValueError:
            raise SlackError(error) from None


# --- Block Kit checks: the limits Slack enforces that an adapter is most likely to hit ----------------

_BLOCK_TYPES = {
    "section",
    "divider",
    "image",
    "actions",
    "context",
    "header",
    "input",
    "rich_text",
    "markdown",
    "file",
    "video",
    "context_actions",
}


def _text_object_problems(obj: Any, pointer: str, *, max_length: int, plain_only: bool = False) -> list[str]:
    if not isinstance(obj, dict):
        return [f"must be an object [json-pointer:{pointer}]"]
    kinds = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if obj.get("type") not in kinds:
        return [f"must be one of {list(kinds)} [json-pointer:{pointer}/type]"]
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        return [f"must be more than 0 characters [json-pointer:{pointer}/text]"]
    if len(text) > max_length:
        return [f"must be less than {max_length + 1} characters [json-pointer:{pointer}/text]"]
    return []


def _element_problems(element: Any, pointer: str) -> list[str]:
    if not isinstance(element, dict) or not isinstance(element.get("type"), str):
        return [f"must provide an object with a type [json-pointer:{pointer}]"]
    problems: list[str] = []
    action_id = element.get("action_id")
    if action_id is not None and (not isinstance(action_id, str) or len(action_id) > 255):
        problems.append(f"must be less than 256 characters [json-pointer:{pointer}/action_id]")
    if element["type"] == "button":
        problems += _text_object_problems(
            element.get("text"), f"{pointer}/text", max_length=75, plain_only=True
        )
        value = element.get("value")
        if value is not None and (not isinstance(value, str) or len(value) > 2000):
            problems.append(f"must be less than 2001 characters [json-pointer:{pointer}/value]")
        if element.get("style") not in (None, "primary", "danger"):
            problems.append(f"must be one of [primary, danger] [json-pointer:{pointer}/style]")
    return problems


def block_problems(blocks: Any, *, max_blocks: int = MAX_MESSAGE_BLOCKS) -> list[str]:
    """Why Slack would answer `invalid_blocks` (in its `errors` wording), or an empty list."""
    if not isinstance(blocks, list):
        return ["must be an array [json-pointer:/blocks]"]
    problems: list[str] = []
    if len(blocks) > max_blocks:
        problems.append(f"no more than {max_blocks} items allowed [json-pointer:/blocks]")
    block_ids: set[str] = set()
    for i, block in enumerate(blocks):
        at = f"/blocks/{i}"
        if not isinstance(block, dict) or block.get("type") not in _BLOCK_TYPES:
            problems.append(f"must provide a known block type [json-pointer:{at}/type]")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if not isinstance(block_id, str) or not block_id or len(block_id) > 255:
                problems.append(f"must be 1 to 255 characters [json-pointer:{at}/block_id]")
            elif block_id in block_ids:
                problems.append(f"duplicate block_id {block_id} [json-pointer:{at}/block_id]")
            else:
                block_ids.add(block_id)
        kind = block["type"]
        if kind == "section":
            if "text" not in block and "fields" not in block:
                problems.append(f"must provide text or fields [json-pointer:{at}]")
            if "text" in block:
                problems += _text_object_problems(block["text"], f"{at}/text", max_length=3000)
            fields = block.get("fields", [])
            if not isinstance(fields, list) or len(fields) > 10:
                problems.append(f"no more than 10 items allowed [json-pointer:{at}/fields]")
            else:
                for j, item in enumerate(fields):
                    problems += _text_object_problems(item, f"{at}/fields/{j}", max_length=2000)
            if "accessory" in block:
                problems += _element_problems(block["accessory"], f"{at}/accessory")
        elif kind == "header":
            problems += _text_object_problems(
                block.get("text"), f"{at}/text", max_length=150, plain_only=True
            )
        elif kind in ("actions", "context"):
            elements = block.get("elements")
            limit = 25 if kind == "actions" else 10
            if not isinstance(elements, list) or not elements or len(elements) > limit:
                problems.append(f"must have 1 to {limit} items [json-pointer:{at}/elements]")
            elif kind == "actions":
                for j, element in enumerate(elements):
                    problems += _element_problems(element, f"{at}/elements/{j}")
        elif kind == "input":
            problems += _text_object_problems(
                block.get("label"), f"{at}/label", max_length=2000, plain_only=True
            )
            problems += _element_problems(block.get("element"), f"{at}/element")
    return problems


def view_problems(view: Any) -> list[str]:
    """Why Slack would refuse a modal view (`invalid_arguments`), or an empty list."""
    if not isinstance(view, dict):
        return ["view must be an object"]
    if view.get("type") != "modal":
        return ["must be one of [modal] [json-pointer:/view/type]"]
    problems = [p.replace("[json-pointer:", "[json-pointer:/view") for p in _view_text_problems(view)]
    blocks = view.get("blocks")
    problems += [
        p.replace("[json-pointer:", "[json-pointer:/view")
        for p in block_problems(blocks, max_blocks=MAX_VIEW_BLOCKS)
    ]
    has_input = isinstance(blocks, list) and any(
        isinstance(b, dict) and b.get("type") == "input" for b in blocks
    )
    if has_input and "submit" not in view:
        problems.append("submit is required when input blocks are present [json-pointer:/view/submit]")
    if len(str(view.get("private_metadata", ""))) > 3000:
        problems.append("must be less than 3001 characters [json-pointer:/view/private_metadata]")
    if len(str(view.get("callback_id", ""))) > 255:
        problems.append("must be less than 256 characters [json-pointer:/view/callback_id]")
    return problems


def _view_text_problems(view: Json) -> list[str]:
    problems = _text_object_problems(view.get("title"), "/title", max_length=24, plain_only=True)
    for key in ("submit", "close"):
        if key in view:
            problems += _text_object_problems(view[key], f"/{key}", max_length=24, plain_only=True)
    return problems


# --- the server ----------------------------------------------------------------------------------------


class FakeSlack:
    """The Slack Web API on 127.0.0.1. Workspace: `add_channel`, `add_user`, `add_message`. Switches:
    `not_member` (channel ids the bot is not in), `limit`, `fail_next`, `down`, `hang`."""

    def __init__(
        self,
        bot_token: str,
        *,
        team_id: str = DEFAULT_TEAM_ID,
        bot_user_id: str = DEFAULT_BOT_USER_ID,
        bot_id: str = DEFAULT_BOT_ID,
        app_id: str = DEFAULT_APP_ID,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bot_token = bot_token
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id
        self.clock = clock  # drives rate limits; a test may pass a hand-moved clock
        self.calls: list[Call] = []
        self.reactions: dict[tuple[str, str], list[str]] = {}  # (channel, ts) -> names, in order added
        self.ephemerals: list[Ephemeral] = []
        self.views: list[OpenedView] = []
        self.responses: list[Responded] = []
        self.deliveries: list[AppReply] = []
        self.not_member: set[str] = set()
        self.down = False
        self.api_url = ""
        self.url = ""
        self._channels: dict[str, _Channel] = {}
        self._users: dict[str, _User] = {}
        self._messages: dict[str, list[Posted]] = {}
        self._limits: dict[str, _Limit] = {}
        self._accepted: dict[tuple[str, str], collections.deque[float]] = {}
        self._failures: list[tuple[int, str | None, str | None]] = []
        self._exchanged_triggers: set[str] = set()
        self._hang = False
        self._released = asyncio.Event()
        self._released.set()
        self._tick = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._methods: dict[str, Callable[[_Params], Json]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "chat.postEphemeral": self._post_ephemeral,
            "chat.getPermalink": self._get_permalink,
            "reactions.add": self._reactions_add,
            "users.info": self._users_info,
            "conversations.info": self._conversations_info,
            "conversations.list": self._conversations_list,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "views.open": self._views_open,
        }
        self.add_user(bot_user_id, "City Intake", display_name=BOT_NAME, is_bot=True)

    # --- lifecycle

    async def __aenter__(self) -> FakeSlack:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/respond/{key}", self._respond)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        self.api_url = f"{self.url}/api/"
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.hang = False  # let hanging requests finish so the server can stop
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # --- the workspace

    def add_channel(
        self,
        name: str,
        *,
        private: bool = False,
        members: Iterable[str] | None = None,
        archived: bool = False,
        channel_id: str | None = None,
    ) -> str:
        """Create a channel and return its id ("C..."); `members`: user ids in it (None: everybody)."""
        name = name.removeprefix("#")
        if not name or name != name.lower() or len(name) > 80 or any(c in name for c in " .,"):
            raise ValueError(f"Slack would not accept the channel name {name!r}")
        if any(c.name == name for c in self._channels.values()):
            raise ValueError(f"a channel named {name!r} exists")
        cid = channel_id or new_id("C")
        self._channels[cid] = _Channel(
            cid, name, private, None if members is None else set(members), archived
        )
        self._messages[cid] = []
        return cid

    def archive(self, channel_id: str) -> None:
        self._channels[channel_id].archived = True

    def add_user(
        self,
        user_id: str,
        real_name: str,
        *,
        display_name: str = "",
        email: str | None = None,
        is_bot: bool = False,
        deleted: bool = False,
        is_admin: bool = False,
    ) -> None:
        self._users[user_id] = _User(user_id, real_name, display_name, email, is_bot, deleted, is_admin)

    def add_message(
        self, channel_id: str, text: str, *, user: str, thread_ts: str | None = None, ts: str | None = None
    ) -> Posted:
        """Record a message a person wrote (so the app can react to it, link it, or thread under it);
        pair it with `message_event(...)` to deliver it to the app."""
        self._channel(channel_id)
        posted = Posted(
            ts=ts or next_ts(),
            text=text,
            blocks=None,
            thread_ts=thread_ts,
            channel=channel_id,
            user=user,
            bot=False,
            at=time.monotonic(),
        )
        self._mark_parent(channel_id, thread_ts)
        self._messages[channel_id].append(posted)
        self._notify()
        return posted

    def channel_id(self, name: str) -> str:
        name = name.removeprefix("#")
        for channel in self._channels.values():
            if channel.name == name:
                return channel.id
        raise KeyError(name)

    # --- what tests read

    def calls_to(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    def messages(self, channel_id: str, *, top_level: bool = False) -> list[Posted]:
        """Every message in the channel in ts order, thread replies included (`top_level`: only those
        shown in the channel itself: parents and broadcast replies)."""
        found = sorted(self._messages.get(channel_id, []), key=lambda m: _ts_key(m.ts))
        if top_level:
            found = [m for m in found if m.thread_ts is None or m.thread_ts == m.ts or m.reply_broadcast]
        return found

    def thread(self, channel_id: str, ts: str) -> list[Posted]:
        """The replies in the thread under the message `ts` (the parent itself not included)."""
        return [m for m in self.messages(channel_id) if m.thread_ts == ts and m.ts != ts]

    def message(self, channel_id: str, ts: str) -> Posted | None:
        return next((m for m in self._messages.get(channel_id, []) if m.ts == ts), None)

    def message_json(self, channel_id: str, ts: str) -> Json:
        """The message as Slack shows it in payloads and API answers (for `action_request(message=)`)."""
        posted = self.message(channel_id, ts)
        if posted is None:
            raise KeyError((channel_id, ts))
        return self._message_json(posted)

    def response_url(self) -> str:
        """A response_url for an interaction payload; what the app POSTs to it lands in `responses`."""
        return f"{self.url}/respond/{secrets.token_hex(8)}"

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until `predicate()` holds, re-checking whenever the fake records something."""
        try:
            async with asyncio.timeout(timeout):
                while not predicate():
                    await self._tick.wait()
        except TimeoutError:
            raise AssertionError(f"FakeSlack: condition not met within {timeout} s") from None

    # --- switches

    @property
    def hang(self) -> bool:
        """While true every request waits, unanswered, until it is cleared."""
        return self._hang

    @hang.setter
    def hang(self, value: bool) -> None:
        self._hang = value
        if value:
            self._released.clear()
        else:
            self._released.set()

    def fail_next(
        self, n: int = 1, status: int = 500, *, method: str | None = None, error: str | None = None
    ) -> None:
        """The next `n` calls (of `method`, or of any) fail: with `error`, as Slack's JSON error at
        `status` (e.g. `fail_next(status=200, error="internal_error")`); a 429 as Slack's rate limit
        (Retry-After: 1); other statuses as an HTML page from Slack's edge."""
        self._failures.extend([(status, method, error)] * n)

    def limit(
        self, method: str, *, per_channel_per_second: int | None = None, per_minute: int | None = None
    ) -> None:
        """Enforce a rate limit on `method`: so many accepted calls per channel per second (Slack's
        chat.postMessage: 1, with short bursts tolerated; here not), or per minute for the whole
        workspace (the method's tier). Over it: HTTP 429, `Retry-After`, error `ratelimited`."""
        self._limits[method] = _Limit(per_channel_per_second, per_minute)

    # --- delivering to the app

    async def post_to_app(
        self, url: str, body: bytes, headers: dict[str, str], *, timeout: float = ACK_DEADLINE
    ) -> AppReply:
        """POST what a builder made to the app, as Slack does, waiting `timeout` (Slack's 3 s) for the
        answer. No answer in time: `AppReply(status=None)`."""
        assert self._session is not None, "use `async with FakeSlack(...)`"
        started = time.monotonic()
        try:
            async with (
                asyncio.timeout(timeout),
                self._session.post(url, data=body, headers={"User-Agent": USER_AGENT, **headers}) as answer,
            ):
                reply = AppReply(answer.status, await answer.read(), dict(answer.headers))
        except TimeoutError:
            reply = AppReply(None)
        reply.elapsed = time.monotonic() - started
        self.deliveries.append(reply)
        self._notify()
        return reply

    # --- HTTP

    def _notify(self) -> None:
        self._tick.set()
        self._tick = asyncio.Event()

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        try:
            values, from_json = await _read_params(request)
        except SlackError as exc:
            return exc.response()
        token = _bearer(request.headers.get("Authorization", ""))
        field_token = values.pop("token", None)  # never kept in the record
        if token is None and not from_json:
            token = field_token
        call = Call(method, values, time.monotonic(), request.method, request.content_type, token)
        self.calls.append(call)
        self._notify()
        try:
            await self._released.wait()
            if self.down:
                raise _Unavailable(503)
            handler = self._methods.get(method)
            if handler is None:
                raise SlackError("unknown_method", status=404, req_method=method)
            if not token:
                raise SlackError("not_authed")
            if not secrets.compare_digest(token, self.bot_token):
                raise SlackError("invalid_auth")
            self._injected_failure(method)
            params = _Params(values)
            self._rate_limit(method, params)
            result = handler(params)
        except SlackError as exc:
            return exc.response()
        except _Unavailable as exc:
            return _edge_error(exc.status)
        finally:
            self._notify()
        return web.json_response({"ok": True, **result})

    async def _respond(self, request: web.Request) -> web.Response:
        try:
            payload = await request.json()
        except ValueError:
            return web.Response(status=400, text="invalid_payload")
        self.responses.append(Responded(str(request.url), payload, time.monotonic()))
        self._notify()
        return web.Response(text="ok")

    def _injected_failure(self, method: str) -> None:
        for i, (status, only, error) in enumerate(self._failures):
            if only is None or only == method:
                del self._failures[i]
                if error is not None:
                    raise SlackError(error, status=status)
                if status == 429:
                    raise _ratelimited(1)
                raise _Unavailable(status)

    def _rate_limit(self, method: str, params: _Params) -> None:
        limit = self._limits.get(method)
        if limit is None:
            return
        now = self.clock()
        windows: list[tuple[tuple[str, str], int, float]] = []
        if limit.per_channel_per_second:
            channel = self._find_channel(params.text("channel") or "", by_name=True)
            if channel is not None:
                windows.append(((method, channel.id), limit.per_channel_per_second, 1.0))
        if limit.per_minute:
            windows.append(((method, ""), limit.per_minute, 60.0))
        for key, allowed, span in windows:
            accepted = self._accepted.setdefault(key, collections.deque())
            while accepted and now - accepted[0] >= span:
                accepted.popleft()
            if len(accepted) >= allowed:
                raise _ratelimited(max(1, math.ceil(span - (now - accepted[0]))))
        for key, _, _ in windows:
            self._accepted[key].append(now)

    # --- lookups

    def _find_channel(self, value: str, *, by_name: bool = False) -> _Channel | None:
        if value in self._channels:
            return self._channels[value]
        if by_name:
            name = value.removeprefix("#")
            return next((c for c in self._channels.values() if c.name == name), None)
        return None

    def _channel(self, value: str, *, by_name: bool = False) -> _Channel:
        channel = self._find_channel(value, by_name=by_name)
        if channel is None or (channel.is_private and channel.id in self.not_member):
            raise SlackError("channel_not_found")  # a private channel the bot is not in is invisible
        return channel

    def _readable(self, value: str) -> _Channel:
        channel = self._channel(value)
        if channel.id in self.not_member:
            raise SlackError("not_in_channel")
        return channel

    def _writable(self, value: str, *, by_name: bool = False) -> _Channel:
        channel = self._channel(value, by_name=by_name)
        if channel.archived:
            raise SlackError("is_archived")
        if channel.id in self.not_member:
            raise SlackError("not_in_channel")
        return channel

    def _mark_parent(self, channel_id: str, thread_ts: str | None) -> None:
        parent = self.message(channel_id, thread_ts) if thread_ts else None
        if parent is not None and parent.thread_ts is None:
            parent.thread_ts = parent.ts  # Slack gives a parent its own ts as thread_ts once it has replies

    def _find_message(self, channel_id: str, ts: str) -> Posted:
        posted = self.message(channel_id, ts)
        if posted is None:
            raise SlackError("message_not_found")
        return posted

    def _content(self, p: _Params, *, required: bool) -> tuple[str, list[Json] | None]:
        text = p.text("text") or ""
        blocks = p.obj("blocks", error="invalid_blocks_format")
        if blocks is not None:
            problems = block_problems(blocks)
            if problems:
                raise SlackError(
                    "invalid_blocks",
                    errors=problems,
                    response_metadata={"messages": [f"[ERROR] {problem}" for problem in problems]},
                )
            blocks = blocks or None
        attachments = p.obj("attachments", error="invalid_attachments")
        if required and not text and not blocks and not attachments:
            raise SlackError("no_text")
        if len(text) > MAX_TEXT:
            raise SlackError("msg_too_long")
        return text, blocks

    def _message_json(self, posted: Posted) -> Json:
        message: Json = {"type": "message", "text": posted.text, "ts": posted.ts, "team": self.team_id}
        if posted.bot:
            message.update(
                user=self.bot_user_id,
                bot_id=self.bot_id,
                app_id=self.app_id,
                bot_profile={
                    "id": self.bot_id,
                    "app_id": self.app_id,
                    "name": BOT_NAME,
                    "deleted": False,
                    "team_id": self.team_id,
                },
            )
        else:
            message["user"] = posted.user
        if posted.blocks:
            message["blocks"] = posted.blocks
        if posted.thread_ts:
            message["thread_ts"] = posted.thread_ts
            parent = self.message(posted.channel, posted.thread_ts)
            if parent is not None and parent.ts != posted.ts:
                message["parent_user_id"] = parent.user
        if posted.updated:
            message["edited"] = {"user": self.bot_user_id, "ts": next_ts()}
        if posted.metadata:
            message["metadata"] = posted.metadata
        return message

    # --- methods

    def _auth_test(self, p: _Params) -> Json:
        return {
            "url": f"https://{TEAM_DOMAIN}.slack.com/",
            "team": TEAM_NAME,
            "user": BOT_NAME,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _post_message(self, p: _Params) -> Json:
        channel = self._writable(p.required("channel"), by_name=True)
        text, blocks = self._content(p, required=True)
        requested = p.text("thread_ts") or None
        thread_ts = None
        if requested is not None:
            parent = self.message(channel.id, requested)
            if parent is not None:
                # A reply's ts threads under its parent (Slack advises passing the parent's ts).
                thread_ts = parent.thread_ts or parent.ts
            # else: Slack answers ok and posts it to the channel, un-threaded (no thread_ts in the answer)
        posted = Posted(
            ts=next_ts(),
            text=text,
            blocks=blocks,
            thread_ts=thread_ts,
            channel=channel.id,
            reply_broadcast=bool(thread_ts) and p.flag("reply_broadcast"),
            requested_thread_ts=requested if requested != thread_ts else None,
            metadata=p.obj("metadata", error="invalid_metadata_format"),
            at=time.monotonic(),
        )
        self._mark_parent(channel.id, thread_ts)
        self._messages[channel.id].append(posted)
        return {"channel": channel.id, "ts": posted.ts, "message": self._message_json(posted)}

    def _update(self, p: _Params) -> Json:
        channel = self._channel(p.required("channel"))
        posted = self._find_message(channel.id, p.required("ts"))
        if not posted.bot:
            raise SlackError("cant_update_message")
        text, blocks = self._content(p, required=False)
        if not text and blocks is None and p.obj("attachments", error="invalid_attachments") is None:
            raise SlackError("no_text")
        if "text" in p.values:
            posted.text = text
        if "blocks" in p.values:
            posted.blocks = blocks
        posted.updated += 1
        message = self._message_json(posted)
        return {"channel": channel.id, "ts": posted.ts, "text": posted.text, "message": message}

    def _post_ephemeral(self, p: _Params) -> Json:
        channel = self._writable(p.required("channel"), by_name=True)
        user_id = p.required("user")
        user = self._users.get(user_id)
        if user is None:
            raise SlackError("user_not_found")
        if channel.members is not None and user_id not in channel.members:
            raise SlackError("user_not_in_channel")
        text, blocks = self._content(p, required=True)
        ephemeral = Ephemeral(
            channel.id, user_id, text, blocks, p.text("thread_ts"), next_ts(), time.monotonic()
        )
        self.ephemerals.append(ephemeral)
        return {"message_ts": ephemeral.message_ts}

    def _get_permalink(self, p: _Params) -> Json:
        channel = self._channel(p.required("channel"))
        posted = self._find_message(channel.id, p.required("message_ts"))
        link = f"https://{TEAM_DOMAIN}.slack.com/archives/{channel.id}/p{posted.ts.replace('.', '')}"
        if posted.thread_ts and posted.thread_ts != posted.ts:
            link += "?" + urlencode({"thread_ts": posted.thread_ts, "cid": channel.id})
        return {"channel": channel.id, "permalink": link}

    def _reactions_add(self, p: _Params) -> Json:
        channel = self._writable(p.required("channel"))
        posted = self._find_message(channel.id, p.required("timestamp"))
        name = p.required("name")
        # Slack wants the bare name ("eyes", "+1", "thumbsup::skin-tone-2"), not ":eyes:".
        if name.startswith(":") or name.endswith(":") or not all(c.isalnum() or c in "_+-':" for c in name):
            raise SlackError("invalid_name")
        names = self.reactions.setdefault((channel.id, posted.ts), [])
        if name in names:
            raise SlackError("already_reacted")
        if len(names) >= 50:
            raise SlackError("too_many_reactions")
        names.append(name)
        return {}

    def _users_info(self, p: _Params) -> Json:
        user = self._users.get(p.required("user"))
        if user is None:
            raise SlackError("user_not_found")
        handle = user.display_name or user.real_name.lower().replace(" ", ".")
        profile: Json = {
            "title": "",
            "phone": "",
            "skype": "",
            "real_name": user.real_name,
            "real_name_normalized": user.real_name,
            "display_name": user.display_name,
            "display_name_normalized": user.display_name,
            "status_text": "",
            "status_emoji": "",
            "avatar_hash": "g0000000000",
            "image_72": "https://secure.gravatar.com/avatar/0.jpg",
            "team": self.team_id,
        }
        if user.email:
            profile["email"] = user.email
        if user.is_bot:
            profile.update(bot_id=self.bot_id, api_app_id=self.app_id, always_active=True)
        return {
            "user": {
                "id": user.id,
                "team_id": self.team_id,
                "name": handle,
                "deleted": user.deleted,
                "color": "9f69e7",
                "real_name": user.real_name,
                "tz": user.tz,
                "tz_label": "Korea Standard Time",
                "tz_offset": user.tz_offset,
                "profile": profile,
                "is_admin": user.is_admin,
                "is_owner": False,
                "is_primary_owner": False,
                "is_restricted": False,
                "is_ultra_restricted": False,
                "is_bot": user.is_bot,
                "is_app_user": False,
                "updated": int(time.time()),
            }
        }

    def _channel_json(self, channel: _Channel) -> Json:
        return {
            "id": channel.id,
            "name": channel.name,
            "name_normalized": channel.name,
            "is_channel": True,
            "is_group": False,
            "is_im": False,
            "is_mpim": False,
            "is_private": channel.is_private,
            "is_archived": channel.archived,
            "is_general": False,
            "is_shared": False,
            "is_ext_shared": False,
            "is_org_shared": False,
            "is_member": channel.id not in self.not_member,
            "created": channel.created,
            "creator": "U0ADMIN",
            "context_team_id": self.team_id,
            "topic": {"value": channel.topic, "creator": "", "last_set": 0},
            "purpose": {"value": channel.purpose, "creator": "", "last_set": 0},
            "num_members": len(channel.members) if channel.members is not None else len(self._users),
        }

    def _conversations_info(self, p: _Params) -> Json:
        return {"channel": self._channel_json(self._channel(p.required("channel")))}

    def _conversations_list(self, p: _Params) -> Json:
        types = set((p.text("types") or "public_channel").split(","))
        unknown = types - {"public_channel", "private_channel", "mpim", "im"}
        if unknown:
            raise SlackError("invalid_types")
        exclude_archived = p.flag("exclude_archived")
        limit = p.integer("limit", 100)
        if not 1 <= limit <= 1000:
            limit = 100 if limit <= 0 else 1000
        channels = [
            c
            for c in self._channels.values()
            if ("private_channel" if c.is_private else "public_channel") in types
            and not (c.is_private and c.id in self.not_member)  # private channels: only the bot's own
            and not (exclude_archived and c.archived)
        ]
        start = _offset(p)
        page = channels[start : start + limit]
        more = start + limit < len(channels)
        return {
            "channels": [self._channel_json(c) for c in page],
            "response_metadata": {"next_cursor": _cursor(start + limit) if more else ""},
        }

    def _conversations_history(self, p: _Params) -> Json:
        """The channel's own messages (thread replies only when also sent to the channel), newest
        first, those after `oldest` and before `latest` (exclusive unless `inclusive`)."""
        channel = self._readable(p.required("channel"))
        found = [m for m in self.messages(channel.id, top_level=True) if _in_range(m.ts, p)]
        return self._message_page(found[::-1], p)

    def _conversations_replies(self, p: _Params) -> Json:
        """A thread: its parent first (on the first page, whatever `oldest` says, as Slack does), then
        the replies in the range, oldest first; the ts of a reply or of a message without replies
        gives that message alone."""
        channel = self._readable(p.required("channel"))
        parent = self.message(channel.id, p.required("ts"))
        if parent is None:
            raise SlackError("thread_not_found")
        replies = [m for m in self.thread(channel.id, parent.ts) if _in_range(m.ts, p)]
        return self._message_page([parent, *replies], p)

    def _message_page(self, found: list[Posted], p: _Params) -> Json:
        """A page of messages as conversations.history / .replies answer; metadata's payload only
        with `include_all_metadata` (Slack leaves it out otherwise)."""
        limit = min(max(p.integer("limit", 100), 1), 999)
        start = _offset(p)
        page = found[start : start + limit]
        more = start + limit < len(found)
        messages = [self._message_json(m) for m in page]
        if not p.flag("include_all_metadata"):
            for message in messages:
                if "metadata" in message:
                    message["metadata"] = {"event_type": message["metadata"].get("event_type")}
        return {
            "messages": messages,
            "has_more": more,
            "response_metadata": {"next_cursor": _cursor(start + limit) if more else ""},
        }

    def _views_open(self, p: _Params) -> Json:
        trigger_id = p.text("trigger_id") or ""
        issued = _trigger_issued_at(trigger_id)
        if issued is None:
            raise SlackError("invalid_trigger_id")
        if trigger_id in self._exchanged_triggers:
            raise SlackError("exchanged_trigger_id")
        if time.time() - issued > TRIGGER_LIFETIME:
            raise SlackError("expired_trigger_id")
        view = p.obj("view", error="invalid_arguments")
        problems = view_problems(view)
        if problems:
            raise SlackError(
                "invalid_arguments",
                response_metadata={"messages": [f"[ERROR] {problem}" for problem in problems]},
            )
        self._exchanged_triggers.add(trigger_id)
        view_id = new_id("V")
        self.views.append(OpenedView(trigger_id, view, view_id, time.monotonic()))
        return {"view": self.view_json(view, view_id)}

    def view_json(self, view: Json, view_id: str) -> Json:
        """A view as Slack echoes it (views.open answer, `view` of a view_submission)."""
        return {
            "id": view_id,
            "team_id": self.team_id,
            "type": view["type"],
            "blocks": view.get("blocks", []),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "title": view["title"],
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "close": view.get("close"),
            "submit": view.get("submit"),
            "previous_view_id": None,
            "root_view_id": view_id,
            "app_id": self.app_id,
            "external_id": view.get("external_id", ""),
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }


def _ts_key(ts: str) -> tuple[int, int]:
    seconds, _, micros = ts.partition(".")
    return int(seconds), int(micros or 0)


def _in_range(ts: str, p: _Params) -> bool:
    """Whether a message's ts lies between `oldest` and `latest` (exclusive unless `inclusive`)."""
    key, oldest, latest = _ts_key(ts), _ts_key(p.text("oldest") or "0"), p.text("latest")
    if p.flag("inclusive"):
        return key >= oldest and (latest is None or key <= _ts_key(latest))
    return key > oldest and (latest is None or key < _ts_key(latest))


def _offset(p: _Params) -> int:
    """Where a page starts, from the `cursor` a previous page handed out."""
    cursor = p.text("cursor") or ""
    if not cursor:
        return 0
    try:
        return int(base64.b64decode(cursor).decode().removeprefix("offset:"))
    except ValueError:
        raise SlackError("invalid_cursor") from None


def _cursor(offset: int) -> str:
    return base64.b64encode(f"offset:{offset}".encode()).decode()


def _bearer(header: str) -> str | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


async def _read_params(request: web.Request) -> tuple[Json, bool]:
    """The query string, then the body on top; the flag tells a JSON body (where Slack ignores a token)."""
    values: Json = dict(request.query)
    raw = await request.read()
    if not raw:
        return values, False
    if request.content_type == "application/json":
        try:
            body = json.loads(raw)
        except ValueError:
            raise SlackError("invalid_json") from None
        if not isinstance(body, dict):
            raise SlackError("invalid_json")
        values.update(body)
        return values, True
    if request.content_type == "multipart/form-data":
        form = await request.post()
        values.update({k: v for k, v in form.items() if isinstance(v, str)})
        return values, False
    if request.content_type in ("application/x-www-form-urlencoded", "text/plain", ""):
        try:
            values.update(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            raise SlackError("invalid_form_data") from None
        return values, False
    raise SlackError("invalid_post_type")


def _ratelimited(retry_after: int) -> SlackError:
    return SlackError("ratelimited", status=429, headers={"Retry-After": str(retry_after)})


def _edge_error(status: int) -> web.Response:
    # What a failing Slack edge answers: an HTML page, not the API's JSON.
    title = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}.get(
        status, "Error"
    )
    html = f"<html><head><title>{status} {title}</title></head><body><h1>{title}</h1></body></html>"
    return web.Response(status=status, text=html, content_type="text/html")


# --- what Slack sends to the app -----------------------------------------------------------------------


def signed_headers(secret: str, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    """X-Slack-Request-Timestamp and X-Slack-Signature for `body`, as Slack computes them."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    assert signature is not None
    return {TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: signature}


def new_event_id() -> str:
    return new_id("Ev", 9)


def event_request(
    secret: str,
    event: Json,
    *,
    event_id: str | None = None,
    team_id: str = DEFAULT_TEAM_ID,
    api_app_id: str = DEFAULT_APP_ID,
    bot_user_id: str = DEFAULT_BOT_USER_ID,
    retry_num: int | None = None,
    retry_reason: str | None = None,
    timestamp: int | None = None,
    event_time: int | None = None,
) -> tuple[bytes, dict[str, str]]:
    """An Events API delivery (`event_callback` envelope) and its headers. A retry carries the same
    `event_id` with `retry_num` (1..3) and `retry_reason` ("http_timeout", "http_error", ...)."""
    envelope: Json = {
        "token": "verification-token-unused",  # Slack still sends the legacy verification token
        "team_id": team_id,
        "context_team_id": team_id,
        "context_enterprise_id": None,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or new_event_id(),
        "event_time": int(time.time()) if event_time is None else event_time,
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": "4-"
        + base64.urlsafe_b64encode(hashlib.sha1(json.dumps(event).encode()).digest()).decode(),
    }
    body = json.dumps(envelope).encode()
    headers = {"Content-Type": "application/json", **signed_headers(secret, body, timestamp=timestamp)}
    if retry_num is not None:
        headers[RETRY_NUM_HEADER] = str(retry_num)
        headers[RETRY_REASON_HEADER] = retry_reason or "http_timeout"
    return body, headers


def url_verification_request(
    secret: str, challenge: str | None = None, *, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """The request Slack sends when the Events URL is saved; the app must echo `challenge`."""
    payload = {
        "token": "verification-token-unused",
        "challenge": challenge or secrets.token_urlsafe(32),
        "type": "url_verification",
    }
    body = json.dumps(payload).encode()
    return body, {"Content-Type": "application/json", **signed_headers(secret, body, timestamp=timestamp)}


def _rich_text(text: str) -> list[Json]:
    return [
        {
            "type": "rich_text",
            "block_id": secrets.token_urlsafe(3)[:4],
            "elements": [{"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}],
        }
    ]


def message_event(
    channel: str,
    user: str,
    text: str,
    *,
    ts: str | None = None,
    thread_ts: str | None = None,
    parent_user_id: str | None = None,
    channel_type: str = "channel",
    team: str = DEFAULT_TEAM_ID,
) -> Json:
    """A `message` event from a person (in a thread when `thread_ts` is given); pass a `Posted` from
    `FakeSlack.add_message` as `ts=posted.ts` so the fake knows the message too."""
    ts = ts or next_ts()
    event: Json = {
        "client_msg_id": str(uuid.uuid4()),
        "type": "message",
        "text": text,
        "user": user,
        "ts": ts,
        "blocks": _rich_text(text),
        "team": team,
        "channel": channel,
        "event_ts": ts,
        "channel_type": channel_type,
    }
    if thread_ts is not None:
        event["thread_ts"] = thread_ts
        event["parent_user_id"] = parent_user_id or DEFAULT_BOT_USER_ID
    return event


def thread_reply_event(channel: str, thread_ts: str, user: str, text: str, **kwargs: Any) -> Json:
    """A person's reply in the thread under `thread_ts` (a staff answer under a ticket card)."""
    return message_event(channel, user, text, thread_ts=thread_ts, **kwargs)


def bot_message_event(
    channel: str,
    text: str,
    *,
    bot_id: str,
    ts: str | None = None,
    thread_ts: str | None = None,
    username: str = "Some Integration",
    channel_type: str = "channel",
) -> Json:
    """A message from a legacy bot or an incoming webhook: `subtype: bot_message`, a `bot_id`, no user."""
    ts = ts or next_ts()
    event: Json = {
        "type": "message",
        "subtype": "bot_message",
        "text": text,
        "ts": ts,
        "username": username,
        "bot_id": bot_id,
        "channel": channel,
        "event_ts": ts,
        "channel_type": channel_type,
    }
    if thread_ts is not None:
        event["thread_ts"] = thread_ts
    return event


def app_message_event(
    channel: str,
    text: str,
    *,
    bot_id: str = DEFAULT_BOT_ID,
    user: str = DEFAULT_BOT_USER_ID,
    app_id: str = DEFAULT_APP_ID,
    ts: str | None = None,
    thread_ts: str | None = None,
    channel_type: str = "channel",
    team: str = DEFAULT_TEAM_ID,
) -> Json:
    """A message an app posted with a bot token (the app's own posts echo back like this): `user` and
    `bot_id` and `app_id`, no subtype. Bolt drops the app's own by default."""
    ts = ts or next_ts()
    event: Json = {
        "type": "message",
        "text": text,
        "user": user,
        "bot_id": bot_id,
        "app_id": app_id,
        "ts": ts,
        "team": team,
        "bot_profile": {"id": bot_id, "app_id": app_id, "name": BOT_NAME, "deleted": False, "team_id": team},
        "channel": channel,
        "event_ts": ts,
        "channel_type": channel_type,
    }
    if thread_ts is not None:
        event["thread_ts"] = thread_ts
        event["parent_user_id"] = user
    return event


def _payload_request(secret: str, payload: Json, timestamp: int | None) -> tuple[bytes, dict[str, str]]:
    body = urlencode({"payload": json.dumps(payload)}).encode()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        **signed_headers(secret, body, timestamp=timestamp),
    }
    return body, headers


def _user_json(user_id: str, team_id: str, user_name: str | None) -> Json:
    name = user_name or user_id.lower()
    return {"id": user_id, "username": name, "name": name, "team_id": team_id}


def action_request(
    secret: str,
    *,
    action_id: str,
    value: str,
    user_id: str,
    channel_id: str,
    message_ts: str,
    trigger_id: str | None = None,
    block_id: str | None = None,
    thread_ts: str | None = None,
    message: Json | None = None,
    response_url: str | None = None,
    button_text: str = "Button",
    user_name: str | None = None,
    channel_name: str = "channel",
    team_id: str = DEFAULT_TEAM_ID,
    api_app_id: str = DEFAULT_APP_ID,
    timestamp: int | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A `block_actions` interaction (a button clicked on a message), form-encoded `payload=` JSON as
    Slack sends it. `message`: the message as Slack shows it (`FakeSlack.message_json`)."""
    block_id = block_id or secrets.token_urlsafe(3)[:4]
    container: Json = {
        "type": "message",
        "message_ts": message_ts,
        "channel_id": channel_id,
        "is_ephemeral": False,
    }
    if thread_ts is not None:
        container["thread_ts"] = thread_ts
    payload: Json = {
        "type": "block_actions",
        "user": _user_json(user_id, team_id, user_name),
        "api_app_id": api_app_id,
        "token": "verification-token-unused",
        "container": container,
        "trigger_id": trigger_id or new_trigger_id(),
        "team": {"id": team_id, "domain": TEAM_DOMAIN},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": channel_name},
        "message": message or {"type": "message", "ts": message_ts, "text": "", "user": DEFAULT_BOT_USER_ID},
        "state": {"values": {}},
        "response_url": response_url
        or f"https://hooks.slack.com/actions/{team_id}/1/{secrets.token_hex(12)}",
        "actions": [
            {
                "action_id": action_id,
                "block_id": block_id,
                "text": {"type": "plain_text", "text": button_text, "emoji": True},
                "value": value,
                "type": "button",
                "action_ts": next_ts(),
            }
        ],
    }
    return _payload_request(secret, payload, timestamp)


def view_submission_request(
    secret: str,
    *,
    callback_id: str,
    values: dict[str, dict[str, Any]],
    user_id: str,
    view: Json | None = None,
    view_id: str | None = None,
    private_metadata: str | None = None,
    trigger_id: str | None = None,
    user_name: str | None = None,
    team_id: str = DEFAULT_TEAM_ID,
    api_app_id: str = DEFAULT_APP_ID,
    timestamp: int | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A modal submitted: `values` is `{block_id: {action_id: value}}`, where a plain string stands for
    a plain_text_input's value and a dict is used as Slack's state entry itself. `view`: the view
    the app opened (an `OpenedView.view`), echoed with its blocks, title and metadata."""
    opened = view or {"type": "modal", "title": {"type": "plain_text", "text": "Form"}, "blocks": []}
    state = {
        block: {
            action: ({"type": "plain_text_input", "value": entry} if isinstance(entry, str) else entry)
            for action, entry in actions.items()
        }
        for block, actions in values.items()
    }
    vid = view_id or new_id("V")
    echoed: Json = {
        "id": vid,
        "team_id": team_id,
        "type": "modal",
        "blocks": opened.get("blocks", []),
        "private_metadata": opened.get("private_metadata", "")
        if private_metadata is None
        else private_metadata,
        "callback_id": callback_id,
        "state": {"values": state},
        "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
        "title": opened.get("title"),
        "clear_on_close": False,
        "notify_on_close": False,
        "close": opened.get("close"),
        "submit": opened.get("submit"),
        "previous_view_id": None,
        "root_view_id": vid,
        "app_id": api_app_id,
        "external_id": "",
        "app_installed_team_id": team_id,
        "bot_id": DEFAULT_BOT_ID,
    }
    payload: Json = {
        "type": "view_submission",
        "team": {"id": team_id, "domain": TEAM_DOMAIN},
        "user": _user_json(user_id, team_id, user_name),
        "api_app_id": api_app_id,
        "token": "verification-token-unused",
        "trigger_id": trigger_id or new_trigger_id(),
        "view": echoed,
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }
    return _payload_request(secret, payload, timestamp)


def command_request(
    secret: str,
    *,
    command: str = "/ticket",
    text: str = "",
    user_id: str,
    channel_id: str,
    trigger_id: str | None = None,
    response_url: str | None = None,
    user_name: str | None = None,
    channel_name: str = "channel",
    team_id: str = DEFAULT_TEAM_ID,
    api_app_id: str = DEFAULT_APP_ID,
    timestamp: int | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A slash command, form-encoded as Slack sends it."""
    form = {
        "token": "verification-token-unused",
        "team_id": team_id,
        "team_domain": TEAM_DOMAIN,
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_name or user_id.lower(),
        "command": command,
        "text": text,
        "api_app_id": api_app_id,
        "is_enterprise_install": "false",
        "response_url": response_url
        or f"https://hooks.slack.com/commands/{team_id}/1/{secrets.token_hex(12)}",
        "trigger_id": trigger_id or new_trigger_id(),
    }
    body = urlencode(form).encode()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        **signed_headers(secret, body, timestamp=timestamp),
    }
    return body, headers
