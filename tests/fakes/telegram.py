"""A fake Telegram Bot API: a real HTTP server on 127.0.0.1 that the real python-telegram-bot talks to.

    async with FakeTelegram(TOKEN) as fake:
        bot = Bot(TOKEN, base_url=fake.base_url, base_file_url=fake.base_file_url)

Requests arrive as PTB 22 sends them: `POST {base_url}{token}/{method}`, form-encoded, every value that
is not a string JSON-encoded (`chat_id=42`, `reply_markup={"inline_keyboard": ...}`), multipart when a
file is uploaded. Telegram also accepts a JSON body and a query string; so does this fake, and it
decodes each parameter by the type the Bot API gives it, as Telegram does.

It answers like Telegram: `{"ok": true, "result": ...}` or `{"ok": false, "error_code": ...,
"description": ...}` with the same HTTP status, so PTB raises the same exceptions it would in
production (Forbidden, BadRequest, RetryAfter, Conflict, InvalidToken, NetworkError, TimedOut).

The module-level builders (`text_update`, `photo_update`, ...) produce updates exactly as Telegram
sends them, for `queue_update` (getUpdates) or `push` (a webhook call with the secret token).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from aiohttp import ClientSession, ClientTimeout, web

MAX_TEXT_LENGTH = 4096
MAX_CALLBACK_DATA_BYTES = 64
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024  # bots may download files up to 20 MB
SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# Update types Telegram leaves out unless a bot asks for them in allowed_updates.
_OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
_INLINE_BUTTON_ACTIONS = frozenset(
    {
        "url",
        "callback_data",
        "web_app",
        "login_url",
        "switch_inline_query",
        "switch_inline_query_current_chat",
        "switch_inline_query_chosen_chat",
        "copy_text",
        "callback_game",
        "pay",
    }
)
_COMMAND = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")

Json = dict[str, Any]
# The bot as builders show it when no `bot_user` is given (FakeTelegram derives its own from the token).
DEFAULT_BOT_USER: Json = {
    "id": 1_000_001,
    "is_bot": True,
    "first_name": "City Intake",
    "username": "city_intake_bot",
}


# --- what the fake records -------------------------------------------------------------------------


@dataclass
class ApiCall:
    """One request as it arrived: `params` holds the raw values (strings when form-encoded)."""

    method: str
    params: dict[str, Any]
    content_type: str
    at: float


@dataclass
class SentMessage:
    chat_id: int
    text: str
    reply_markup: Json | None
    at: float
    message_id: int = 0
    parse_mode: str | None = None
    reply_to_message_id: int | None = None

    @property
    def buttons(self) -> list[list[Json]]:
        """The inline keyboard's rows (empty without one)."""
        return list((self.reply_markup or {}).get("inline_keyboard", []))


@dataclass
class CallbackAnswer:
    callback_query_id: str
    text: str | None
    show_alert: bool
    at: float


@dataclass
class MarkupEdit:
    chat_id: int
    message_id: int
    reply_markup: Json | None
    at: float


@dataclass
class Webhook:
    url: str
    secret_token: str | None
    allowed_updates: list[str] | None
    max_connections: int
    drop_pending_updates: bool


@dataclass
class _File:
    file_id: str
    data: bytes
    file_size: int
    content_type: str
    file_path: str


class ApiError(Exception):
    """An error answer, exactly as Telegram shapes it."""

    def __init__(self, status: int, description: str, parameters: Json | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def response(self) -> web.Response:
        body: Json = {"ok": False, "error_code": self.status, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return web.json_response(body, status=self.status)


def _bad(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


class _Params:
    """Typed access to request parameters, decoded as the Bot API types them: a form-encoded value is a
    string and nested values are JSON text; a JSON body carries them typed already."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def text(self, name: str) -> str | None:
        value = self.values.get(name)
        if value is None or isinstance(value, str):
            return value
        return json.dumps(value) if isinstance(value, dict | list) else str(value)

    def integer(self, name: str) -> int | None:
        value = self.values.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            raise _bad(f"invalid {name} specified")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise _bad(f"invalid {name} specified") from None

    def number(self, name: str) -> float | None:
        value = self.values.get(name)
        if value is None or value == "":
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            raise _bad(f"invalid {name} specified") from None

    def flag(self, name: str) -> bool:
        value = self.values.get(name)
        if isinstance(value, str):
            return value.lower() in ("true", "1")
        return bool(value)

    def obj(self, name: str) -> Any:
        value = self.values.get(name)
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError:
            raise _bad(f"can't parse {name} JSON object") from None

    def chat_id(self) -> int:
        value = self.values.get("chat_id")
        if value is None or value == "":
            raise _bad("chat_id is empty")
        try:
            return int(value)
        except (TypeError, ValueError):
            # "@channelusername": this fake knows no public channels
            raise _bad("chat not found") from None


# --- the server --------------------------------------------------------------------------------------


class FakeTelegram:
    """The Bot API on a local port. Switches: `blocked`, `deactivated`, `missing_chats` (sets of chat
    ids), `fail_next`, `flood`, `down`, `hang`, `rate_limit_per_chat`, `require_https`."""

    def __init__(self, token: str, *, bot_username: str = "city_intake_bot") -> None:
        self.token = token
        bot_id = token.split(":", 1)[0]
        self.bot_user: Json = {
            "id": int(bot_id) if bot_id.isdigit() else 1_000_001,
            "is_bot": True,
            "first_name": "City Intake",
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        self.requests: list[ApiCall] = []
        self.sent: list[SentMessage] = []
        self.callback_answers: list[CallbackAnswer] = []
        self.edits: list[MarkupEdit] = []
        self.downloads: list[str] = []  # file_ids downloaded
        self.commands: list[Json] = []  # from setMyCommands
        self.webhook: Webhook | None = None
        self.webhook_last_error: str | None = None
        self.blocked: set[int] = set()
        self.deactivated: set[int] = set()
        self.missing_chats: set[int] = set()
        self.down = False
        # Seconds Telegram wants between two messages to one chat (about 1); None: no limit enforced.
        self.rate_limit_per_chat: float | None = None
        self.require_https = False  # Telegram itself refuses http:// webhooks; tests serve plain http
        self._hang = False
        self._released = asyncio.Event()
        self._released.set()
        self._tick = asyncio.Event()
        self._closing = False
        self._pending: list[Json] = []
        self._allowed_updates: list[str] = []
        self._poll_generation = 0
        self._failures: list[list[Any]] = []  # [status, method or None for any, calls to let pass first]
        self._floods: list[tuple[int, str]] = []  # (retry_after, method)
        self._files: dict[str, _File] = {}
        self._file_paths: dict[str, str] = {}
        self._messages: dict[tuple[int, int], Json] = {}
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._last_sent_at: dict[int, float] = {}
        self._chats: dict[int, Json] = {}
        self._answered_queries: set[str] = set()
        self._runner: web.AppRunner | None = None
        self.url = ""
        self._methods: dict[str, Callable[[_Params], Awaitable[Any]]] = {
            "getme": self._get_me,
            "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook,
            "getwebhookinfo": self._get_webhook_info,
            "getupdates": self._get_updates,
            "sendmessage": self._send_message,
            "sendchataction": self._send_chat_action,
            "answercallbackquery": self._answer_callback_query,
            "editmessagereplymarkup": self._edit_message_reply_markup,
            "getfile": self._get_file,
            "setmycommands": self._set_my_commands,
            "getmycommands": self._get_my_commands,
        }

    # --- lifecycle

    async def __aenter__(self) -> FakeTelegram:
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        # Let long polls and hanging requests return so the server shuts down at once.
        self._closing = True
        self.hang = False
        self._notify()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        """For `Bot(base_url=...)` / `ApplicationBuilder().base_url(...)`: PTB appends the token."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self.url}/file/bot"

    # --- switches and inputs for tests

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

    def fail_next(self, n: int = 1, status: int = 500, *, method: str | None = None, after: int = 0) -> None:
        """The next `n` API calls (of `method`, or of any method) answer `status`; with `after`, only
        once that many such calls have succeeded (to fail the second part of a long message)."""
        only = method.lower() if method else None
        self._failures.append([status, only, after])
        self._failures.extend([status, only, 0] for _ in range(n - 1))

    def flood(self, retry_after: int = 3, *, times: int = 1, method: str = "sendMessage") -> None:
        """The next `times` calls of `method` answer 429 with `retry_after`, as Telegram's flood control."""
        self._floods.extend([(retry_after, method.lower())] * times)

    def queue_update(self, update: Json) -> None:
        """Make an update available to getUpdates."""
        self._learn(update)
        self._pending.append(update)
        self._notify()

    @property
    def pending(self) -> list[Json]:
        """Updates not yet confirmed by a getUpdates offset."""
        return list(self._pending)

    def add_file(
        self,
        file_id: str,
        data: bytes,
        *,
        content_type: str = "image/jpeg",
        file_size: int | None = None,
    ) -> None:
        """Register a file's bytes for getFile and download; `file_size` may claim a size (e.g. over
        20 MB) without allocating it."""
        path = f"photos/file_{len(self._files)}.jpg"
        size = len(data) if file_size is None else file_size
        self._files[file_id] = _File(file_id, data, size, content_type, path)
        self._file_paths[path] = file_id

    def calls(self, method: str) -> list[ApiCall]:
        return [call for call in self.requests if call.method.lower() == method.lower()]

    def message(self, chat_id: int, message_id: int) -> Json | None:
        """A message the bot sent, as Telegram stores it now (edits applied)."""
        return self._messages.get((chat_id, message_id))

    async def push(
        self, update: Json, *, secret: str | None = None, omit_secret: bool = False, timeout: float = 10.0
    ) -> int:
        """Deliver an update to the registered webhook as Telegram does (JSON body, the secret token in
        `X-Telegram-Bot-Api-Secret-Token`) and return the HTTP status; Telegram would retry on non-2xx.
        `secret` overrides the registered token (a forgery); `omit_secret` sends none."""
        if self.webhook is None:
            raise RuntimeError("no webhook is set")
        self._learn(update)
        headers = {"Content-Type": "application/json"}
        token = self.webhook.secret_token if secret is None else secret
        if token is not None and not omit_secret:
            headers[SECRET_HEADER] = token
        async with (
            ClientSession(timeout=ClientTimeout(total=timeout)) as session,
            session.post(self.webhook.url, data=json.dumps(update), headers=headers) as response,
        ):
            await response.read()
            if response.status >= 300:
                self.webhook_last_error = f"Wrong response from the webhook: {response.status}"
            return response.status

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until `predicate()` holds, re-checking whenever the fake records something."""
        try:
            async with asyncio.timeout(timeout):
                while not predicate():
                    tick = self._tick
                    await tick.wait()
        except TimeoutError:
            raise AssertionError(f"FakeTelegram: condition not met within {timeout} s") from None

    # --- HTTP

    def _notify(self) -> None:
        self._tick.set()
        self._tick = asyncio.Event()

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        raw = await _read_params(request)
        self.requests.append(ApiCall(method, raw, request.content_type, time.monotonic()))
        self._notify()
        try:
            await self._gate()
            if request.match_info["token"] != self.token:
                raise ApiError(401, "Unauthorized")
            handler = self._methods.get(method.lower())
            if handler is None:
                raise ApiError(404, "Not Found")
            self._injected_failure(method.lower())
            result = await handler(_Params(raw))
        except ApiError as exc:
            return exc.response()
        except _Down:
            return _bad_gateway()
        finally:
            self._notify()
        return web.json_response({"ok": True, "result": result})

    async def _download(self, request: web.Request) -> web.Response:
        try:
            await self._gate()
            if request.match_info["token"] != self.token:
                raise ApiError(401, "Unauthorized")
            file_id = self._file_paths.get(request.match_info["path"])
            if file_id is None:
                raise ApiError(404, "Not Found")
        except ApiError as exc:
            return exc.response()
        except _Down:
            return _bad_gateway()
        self.downloads.append(file_id)
        self._notify()
        stored = self._files[file_id]
        return web.Response(body=stored.data, content_type=stored.content_type)

    async def _gate(self) -> None:
        await self._released.wait()
        if self.down:
            raise _Down

    def _injected_failure(self, method: str) -> None:
        for i, (status, only, skip) in enumerate(self._failures):
            if only is None or only == method:
                if skip:
                    self._failures[i][2] -= 1
                    break
                del self._failures[i]
                raise ApiError(status, HTTPStatus(status).phrase)
        for i, (retry_after, only) in enumerate(self._floods):
            if only == method:
                del self._floods[i]
                raise _flood(retry_after)

    def _learn(self, update: Json) -> None:
        """Remember the chats an update mentions, so messages sent there carry the same chat."""
        for value in update.values():
            if isinstance(value, dict):
                message = value.get("message", value)
                chat = message.get("chat") if isinstance(message, dict) else None
                if isinstance(chat, dict) and "id" in chat:
                    self._chats.setdefault(chat["id"], chat)

    # --- methods

    async def _get_me(self, p: _Params) -> Json:
        return self.bot_user

    async def _set_webhook(self, p: _Params) -> bool:
        url = p.text("url") or ""
        if not url:
            return await self._delete_webhook(p)
        if self.require_https and not url.startswith("https://"):
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        if not url.startswith(("http://", "https://")):
            raise _bad("bad webhook: Failed to resolve host: Name or service not known")
        secret = p.text("secret_token")
        if secret is not None and not SECRET_TOKEN.fullmatch(secret):
            raise _bad("secret token contains unallowed characters")
        allowed = p.obj("allowed_updates")
        if allowed is not None and not (
            isinstance(allowed, list) and all(isinstance(a, str) for a in allowed)
        ):
            raise _bad("can't parse allowed updates")
        drop = p.flag("drop_pending_updates")
        if drop:
            self._pending.clear()
        self.webhook = Webhook(url, secret, allowed, p.integer("max_connections") or 40, drop)
        self.webhook_last_error = None
        return True

    async def _delete_webhook(self, p: _Params) -> bool:
        if p.flag("drop_pending_updates"):
            self._pending.clear()
        self.webhook = None
        return True

    async def _get_webhook_info(self, p: _Params) -> Json:
        info: Json = {"url": "", "has_custom_certificate": False, "pending_update_count": len(self._pending)}
        if self.webhook is not None:
            info.update(url=self.webhook.url, max_connections=self.webhook.max_connections)
            if self.webhook.allowed_updates:
                info["allowed_updates"] = self.webhook.allowed_updates
            if self.webhook_last_error:
                info.update(last_error_date=int(time.time()), last_error_message=self.webhook_last_error)
        return info

    async def _get_updates(self, p: _Params) -> list[Json]:
        if self.webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = p.integer("offset") or 0
        limit = min(max(p.integer("limit") or 100, 1), 100)
        timeout = max(p.number("timeout") or 0.0, 0.0)
        allowed = p.obj("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = [str(a) for a in allowed]  # remembered for later calls, as Telegram does
        self._confirm(offset)
        # A newer getUpdates ends an older one still waiting: two pollers cannot share a bot.
        self._poll_generation += 1
        generation = self._poll_generation
        self._notify()
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            if generation != self._poll_generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; "
                    "make sure that only one bot instance is running",
                )
            self._drop_unwanted()
            remaining = deadline - asyncio.get_running_loop().time()
            if self._pending or remaining <= 0 or self._closing:
                return self._pending[:limit]
            tick = self._tick
            try:
                async with asyncio.timeout(remaining):
                    await tick.wait()
            except TimeoutError:
                pass

    def _confirm(self, offset: int) -> None:
        if offset > 0:
            self._pending = [u for u in self._pending if u["update_id"] >= offset]
        elif offset < 0:
            self._pending = self._pending[offset:]  # the last -offset updates; the rest is forgotten

    def _drop_unwanted(self) -> None:
        def wanted(update: Json) -> bool:
            kind = next((k for k in update if k != "update_id"), "")
            if self._allowed_updates:
                return kind in self._allowed_updates
            return kind not in _OPT_IN_UPDATES

        self._pending = [u for u in self._pending if wanted(u)]

    def _check_chat(self, chat_id: int) -> None:
        if chat_id in self.missing_chats:
            raise _bad("chat not found")
        if chat_id in self.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        if chat_id in self.deactivated:
            raise ApiError(403, "Forbidden: user is deactivated")

    async def _send_message(self, p: _Params) -> Json:
        chat_id = p.chat_id()
        text = p.text("text") or ""
        self._check_chat(chat_id)
        if not text.strip():
            raise _bad("message text is empty")
        if len(text) > MAX_TEXT_LENGTH:
            raise _bad("message is too long")
        parse_mode = p.text("parse_mode")
        if parse_mode and parse_mode.lower() not in ("html", "markdown", "markdownv2"):
            raise _bad(f"unsupported parse_mode {parse_mode}")
        markup = _check_markup(p.obj("reply_markup"))
        reply_to = p.obj("reply_parameters")
        if isinstance(reply_to, dict):  # PTB 22 sends reply_parameters; older clients reply_to_message_id
            reply_to_id = _Params(reply_to).integer("message_id")
        else:
            reply_to_id = p.integer("reply_to_message_id")
        now = time.monotonic()
        last = self._last_sent_at.get(chat_id)
        if self.rate_limit_per_chat and last is not None and now - last < self.rate_limit_per_chat:
            raise _flood(max(1, math.ceil(self.rate_limit_per_chat - (now - last))))
        self._last_sent_at[chat_id] = now
        message_id = next(self._message_ids.setdefault(chat_id, itertools.count(1)))
        message: Json = {
            "message_id": message_id,
            "from": {k: self.bot_user[k] for k in ("id", "is_bot", "first_name", "username")},
            "chat": self._chats.get(chat_id) or _chat(chat_id, "Citizen"),
            "date": int(time.time()),
            "text": text,
        }
        if reply_to_id is not None and (chat_id, reply_to_id) in self._messages:
            message["reply_to_message"] = self._messages[(chat_id, reply_to_id)]
        if markup is not None and "inline_keyboard" in markup:
            message["reply_markup"] = markup  # Telegram returns only inline keyboards
        self._messages[(chat_id, message_id)] = message
        self.sent.append(SentMessage(chat_id, text, markup, now, message_id, parse_mode, reply_to_id))
        return message

    async def _send_chat_action(self, p: _Params) -> bool:
        self._check_chat(p.chat_id())
        return True

    async def _answer_callback_query(self, p: _Params) -> bool:
        query_id = p.text("callback_query_id")
        if not query_id or query_id in self._answered_queries:
            raise _bad("query is too old and response timeout expired or query ID is invalid")
        text = p.text("text")
        if text is not None and len(text) > 200:
            raise _bad("MESSAGE_TOO_LONG")
        self._answered_queries.add(query_id)
        self.callback_answers.append(CallbackAnswer(query_id, text, p.flag("show_alert"), time.monotonic()))
        return True

    async def _edit_message_reply_markup(self, p: _Params) -> Json:
        if p.text("inline_message_id"):
            raise _bad("message to edit not found")  # this fake has no inline messages
        chat_id = p.chat_id()
        message_id = p.integer("message_id")
        if message_id is None:
            raise _bad("message identifier is not specified")
        self._check_chat(chat_id)
        message = self._messages.get((chat_id, message_id))
        if message is None:
            raise _bad("message to edit not found")
        markup = _check_markup(p.obj("reply_markup"))
        if markup is not None and "inline_keyboard" not in markup:
            raise _bad("inline keyboard expected")
        if markup == message.get("reply_markup"):
            raise _bad(
                "message is not modified: specified new message content and reply markup are exactly "
                "the same as a current content and reply markup of the message"
            )
        if markup is None:
            message.pop("reply_markup", None)
        else:
            message["reply_markup"] = markup
        message["edit_date"] = int(time.time())
        self.edits.append(MarkupEdit(chat_id, message_id, markup, time.monotonic()))
        return message

    async def _get_file(self, p: _Params) -> Json:
        stored = self._files.get(p.text("file_id") or "")
        if stored is None:
            raise _bad("invalid file_id")
        if stored.file_size > MAX_DOWNLOAD_BYTES:
            raise _bad("file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": _unique_id(stored.file_id),
            "file_size": stored.file_size,
            "file_path": stored.file_path,
        }

    async def _set_my_commands(self, p: _Params) -> bool:
        commands = p.obj("commands")
        if not isinstance(commands, list) or not all(
            isinstance(c, dict) and c.get("command") and c.get("description") for c in commands
        ):
            raise _bad("can't parse commands JSON object")
        self.commands = commands
        return True

    async def _get_my_commands(self, p: _Params) -> list[Json]:
        return self.commands


class _Down(Exception):
    pass


def _bad_gateway() -> web.Response:
    # What Telegram's front end answers when the Bot API is down: HTML, not JSON.
    html = (
        "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
        "<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
    )
    return web.Response(status=502, text=html, content_type="text/html")


def _flood(retry_after: int) -> ApiError:
    return ApiError(429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after})


def _check_markup(markup: Any) -> Json | None:
    """Validate an inline keyboard the way Telegram refuses a bad one."""
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise _bad("can't parse reply keyboard markup JSON object")
    rows = markup.get("inline_keyboard")
    if rows is None:
        return markup  # a reply keyboard, keyboard removal or force reply: accepted as is
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise _bad('can\'t parse inline keyboard button: field "inline_keyboard" must be an Array of Array')
    for row in rows:
        for button in row:
            if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                raise _bad("can't parse inline keyboard button: Text must be a String")
            actions = _INLINE_BUTTON_ACTIONS & button.keys()
            if len(actions) != 1:
                raise _bad("text buttons are unallowed in the inline keyboard")
            data = button.get("callback_data")
            if "callback_data" in actions and not (
                isinstance(data, str) and 1 <= len(data.encode()) <= MAX_CALLBACK_DATA_BYTES
            ):
                raise _bad("BUTTON_DATA_INVALID")
    return markup


async def _read_params(request: web.Request) -> dict[str, Any]:
    values: dict[str, Any] = dict(request.query)
    if request.method != "POST" or not request.body_exists:
        return values
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            values.update(body)
        return values
    form = await request.post()
    for key, value in form.items():
        values[key] = value if isinstance(value, str) else value.file.read()
    return values


# --- update builders: JSON exactly as Telegram sends it ---------------------------------------------


def _unique_id(file_id: str) -> str:
    return f"AQAD{abs(hash(file_id)) % 10**10:010d}"


def _user(user_id: int, first_name: str, language_code: str | None, username: str | None) -> Json:
    user: Json = {"id": user_id, "is_bot": False, "first_name": first_name}
    if username:
        user["username"] = username
    if language_code:
        user["language_code"] = language_code
    return user


def _chat(chat_id: int, first_name: str, username: str | None = None) -> Json:
    if chat_id < 0:
        return {"id": chat_id, "title": "Neighbourhood group", "type": "group"}
    chat: Json = {"id": chat_id, "first_name": first_name, "type": "private"}
    if username:
        chat["username"] = username
    return chat


def _message(
    chat_id: int,
    message_id: int | None,
    update_id: int,
    user_id: int | None,
    first_name: str,
    language_code: str | None,
    username: str | None,
    date: int | None,
) -> Json:
    return {
        "message_id": update_id if message_id is None else message_id,
        "from": _user(chat_id if user_id is None else user_id, first_name, language_code, username),
        "chat": _chat(chat_id, first_name, username),
        "date": int(time.time()) if date is None else date,
    }


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def command_entities(text: str) -> list[Json]:
    """`bot_command` entities as Telegram marks them; offsets and lengths are in UTF-16 code units."""
    return [
        {"offset": _utf16_len(text[: m.start()]), "length": _utf16_len(m.group()), "type": "bot_command"}
        for m in _COMMAND.finditer(text)
    ]


def text_update(
    update_id: int,
    chat_id: int,
    text: str,
    *,
    user_id: int | None = None,
    language_code: str | None = "ko",
    first_name: str = "Minji",
    username: str | None = None,
    message_id: int | None = None,
    date: int | None = None,
) -> Json:
    """A text message. In a private chat the user's id is the chat id unless `user_id` says otherwise."""
    message = _message(chat_id, message_id, update_id, user_id, first_name, language_code, username, date)
    message["text"] = text
    if entities := command_entities(text):
        message["entities"] = entities
    return {"update_id": update_id, "message": message}


def command_update(update_id: int, chat_id: int, text: str = "/start", **kwargs: Any) -> Json:
    """A command such as "/start" or "/status 2026-000123", with its `bot_command` entity."""
    if not text.startswith("/"):
        raise ValueError("a command starts with /")
    return text_update(update_id, chat_id, text, **kwargs)


def edited_text_update(update_id: int, chat_id: int, text: str, message_id: int, **kwargs: Any) -> Json:
    """The citizen edited an earlier message: Telegram sends `edited_message` with `edit_date`."""
    update = text_update(update_id, chat_id, text, message_id=message_id, **kwargs)
    message = update.pop("message")
    message["edit_date"] = message["date"] + 5
    return {"update_id": update_id, "edited_message": message}


def photo_update(
    update_id: int,
    chat_id: int,
    file_id: str,
    caption: str | None = None,
    *,
    width: int = 1280,
    height: int = 960,
    file_size: int = 180_000,
    user_id: int | None = None,
    language_code: str | None = "ko",
    first_name: str = "Minji",
    username: str | None = None,
    message_id: int | None = None,
    date: int | None = None,
) -> Json:
    """A photo: Telegram sends several PhotoSizes, smallest first; `file_id` is the largest."""
    message = _message(chat_id, message_id, update_id, user_id, first_name, language_code, username, date)
    sizes = []
    for side in (90, 320, 800):
        if side < width:
            scale = side / width
            sizes.append(
                {
                    "file_id": f"{file_id}-{side}",
                    "file_unique_id": _unique_id(f"{file_id}-{side}"),
                    "file_size": max(1, int(file_size * scale * scale)),
                    "width": side,
                    "height": max(1, round(height * scale)),
                }
            )
    sizes.append(
        {
            "file_id": file_id,
            "file_unique_id": _unique_id(file_id),
            "file_size": file_size,
            "width": width,
            "height": height,
        }
    )
    message["photo"] = sizes
    if caption:
        message["caption"] = caption
        if entities := command_entities(caption):
            message["caption_entities"] = entities
    return {"update_id": update_id, "message": message}


def location_update(
    update_id: int,
    chat_id: int,
    latitude: float,
    longitude: float,
    *,
    horizontal_accuracy: float | None = None,
    user_id: int | None = None,
    language_code: str | None = "ko",
    first_name: str = "Minji",
    username: str | None = None,
    message_id: int | None = None,
    date: int | None = None,
) -> Json:
    message = _message(chat_id, message_id, update_id, user_id, first_name, language_code, username, date)
    location: Json = {"latitude": latitude, "longitude": longitude}
    if horizontal_accuracy is not None:
        location["horizontal_accuracy"] = horizontal_accuracy
    message["location"] = location
    return {"update_id": update_id, "message": message}


def callback_update(
    update_id: int,
    chat_id: int,
    data: str,
    message_id: int,
    *,
    message: Json | None = None,
    message_text: str = "",
    bot_user: Json | None = None,
    user_id: int | None = None,
    language_code: str | None = "ko",
    first_name: str = "Minji",
    username: str | None = None,
) -> Json:
    """A press on an inline button of the bot's message `message_id`. Pass `message` (e.g.
    `fake.message(chat_id, message_id)`) to carry the message exactly as the bot sent it."""
    if message is None:
        bot = bot_user or DEFAULT_BOT_USER
        message = {
            "message_id": message_id,
            "from": {k: bot[k] for k in ("id", "is_bot", "first_name", "username") if k in bot},
            "chat": _chat(chat_id, first_name, username),
            "date": int(time.time()) - 60,
            "text": message_text or "…",
        }
    return {
        "update_id": update_id,
        "callback_query": {
            "id": str(4_382_000_000_000_000_000 + update_id),
            "from": _user(chat_id if user_id is None else user_id, first_name, language_code, username),
            "message": message,
            "chat_instance": str(-(abs(chat_id) * 7919 % 10**18) or -1),
            "data": data,
        },
    }


def my_chat_member_update(update_id: int, chat_id: int, *, new_status: str = "kicked", **kwargs: Any) -> Json:
    """Telegram's notice that a private chat's user blocked ("kicked") or unblocked ("member") the bot."""
    first_name = kwargs.get("first_name", "Minji")
    user = _user(chat_id, first_name, kwargs.get("language_code", "ko"), kwargs.get("username"))
    bot = DEFAULT_BOT_USER
    old_status = "member" if new_status == "kicked" else "kicked"
    now = int(time.time())
    if new_status == "kicked":
        new_member: Json = {"status": "kicked", "user": bot, "until_date": 0}
    else:
        new_member = {"status": new_status, "user": bot}
    return {
        "update_id": update_id,
        "my_chat_member": {
            "chat": _chat(chat_id, first_name),
            "from": user,
            "date": now,
            "old_chat_member": {"status": old_status, "user": bot}
            | ({"until_date": 0} if old_status == "kicked" else {}),
            "new_chat_member": new_member,
        },
    }
