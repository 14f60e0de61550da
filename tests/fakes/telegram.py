"""A stand-in for the Telegram Bot API on the shared `RecordingServer`, for the real python-telegram-bot
(PTB): `Bot(TOKEN, base_url=fake.base_url, base_file_url=fake.base_file_url)`; our adapter's config
takes the root, `api_base_url=fake.url`. It serves only METHODS (what the adapter and PTB call) and the
file download; `of`, `calls` and `fail_next` name a call by its method ("sendMessage"). Requests are
checked as Telegram checks them (text length in UTF-16 units, callback_data size, the inline keyboard's
shape) and refused in its format, `{"ok": false, "error_code", "description", "parameters":
{"retry_after"}}`, so PTB raises what it would. The builders (`text_update`, ...) make updates as
Telegram sends them, for `queue_update` (getUpdates) or `push` (the webhook call with the secret token).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import time
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Self
from urllib.parse import parse_qsl

from aiohttp import web

from tests.fakes.server import RecordingServer

Json = dict[str, Any]
MAX_TEXT_UTF16 = 4096
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024  # bots may download files up to 20 MB
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
METHODS = ("getMe", "setWebhook", "deleteWebhook", "getUpdates", "sendMessage", "answerCallbackQuery")
METHODS += ("editMessageReplyMarkup", "getFile")
_STRINGS = {"text", "url", "secret_token", "callback_query_id", "file_id"}  # the parameters PTB sends
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
_COMMAND = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")
_BUTTON_ACTIONS = {"url", "callback_data", "web_app", "login_url", "copy_text", "callback_game", "pay"}
_BUTTON_ACTIONS |= {"switch_inline_query" + suffix for suffix in ("", "_current_chat", "_chosen_chat")}
# The bot in the builders' updates (FakeTelegram takes its id from the token).
BOT_USER: Json = {"id": 1_000_001, "is_bot": True, "first_name": "City Intake", "username": "city_intake_bot"}


@dataclass
class SentMessage:
    chat_id: int
    text: str
    reply_markup: Json | None
    at: float  # time.monotonic()
    message_id: int

    @property
    def buttons(self) -> list[list[Json]]:
        """The inline keyboard's rows (empty without one)."""
        return list((self.reply_markup or {}).get("inline_keyboard", []))


@dataclass
class CallbackAnswer:
    callback_query_id: str
    text: str | None
    at: float


@dataclass
class MarkupEdit:
    chat_id: int
    message_id: int
    reply_markup: Json | None


@dataclass
class Webhook:
    url: str
    secret_token: str | None
    allowed_updates: list[str] | None


class _Refused(Exception):
    """Telegram's error answer; a 429 says when to retry."""

    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        body: Json = {"ok": False, "error_code": status, "description": description}
        if retry_after is not None:
            body["parameters"] = {"retry_after": retry_after}
        self.response = web.json_response(body, status=status)


def _bad(description: str) -> _Refused:
    return _Refused(400, f"Bad Request: {description}")


def _flood(retry_after: int) -> _Refused:
    return _Refused(429, f"Too Many Requests: retry after {retry_after}", retry_after)


def _params(body: bytes) -> Json:
    """The form PTB posts: strings as they are, every other value JSON-encoded."""
    form = parse_qsl(body.decode(), keep_blank_values=True)
    return {k: v if k in _STRINGS else json.loads(v) for k, v in form}


class FakeTelegram(RecordingServer):
    """Controls besides RecordingServer's `fail_next`, `down` (Telegram's 502 page) and `hang`: `blocked`,
    `deactivated`, `missing_chats` (sets of chat ids), `flood`, `rate_limit_per_chat`, `require_https`."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token
        bot_id = token.split(":", 1)[0]
        self.bot_user = BOT_USER | ({"id": int(bot_id)} if bot_id.isdigit() else {})
        self.url = self.base_file_url = ""  # the root; PTB's `base_url` is {url}/bot
        self.sent: list[SentMessage] = []
        self.callback_answers: list[CallbackAnswer] = []
        self.edits: list[MarkupEdit] = []
        self.downloads: list[str] = []  # file_ids
        self.webhook: Webhook | None = None
        self.pending: list[Json] = []  # updates not yet confirmed by a getUpdates offset
        self.blocked: set[int] = set()
        self.deactivated: set[int] = set()
        self.missing_chats: set[int] = set()
        self.rate_limit_per_chat: float | None = None  # seconds between two sends to a chat; Telegram's ~1
        self.require_https = False  # Telegram refuses http:// webhooks; tests serve plain http
        self.retry_after = 3  # in a 429 of `fail_next`
        self._allowed_updates: list[str] = []
        self._polls = 0  # getUpdates calls so far: a newer one ends an older one still waiting
        self._queued = asyncio.Event()  # set, and replaced, when an update is queued
        self._closing = False
        self._files: dict[str, tuple[str, bytes, int]] = {}  # file_id: (file_path, data, file_size)
        self._messages: dict[tuple[int, int], Json] = {}

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.url = self.base_url
        self.base_url, self.base_file_url = f"{self.url}/bot", f"{self.url}/file/bot"  # PTB adds the token
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closing = True  # long polls return at once
        self._wake()
        await super().__aexit__(*exc)

    # --- controls and what tests read

    def flood(self, retry_after: int = 3, *, times: int = 1, endpoint: str = "sendMessage") -> None:
        """The next `times` calls of `endpoint` answer 429 with `retry_after`, as flood control does."""
        self.retry_after = retry_after
        self.fail_next(times, 429, endpoint=endpoint)

    def queue_update(self, update: Json) -> None:
        """An update for getUpdates."""
        self.pending.append(update)
        self._wake()

    def add_file(self, file_id: str, data: bytes, *, file_size: int | None = None) -> None:
        """A file for getFile and the download; `file_size` may claim a size (over 20 MB) without data."""
        size = len(data) if file_size is None else file_size
        self._files[file_id] = (f"photos/file_{len(self._files)}.jpg", data, size)

    def calls(self, method: str) -> list[Json]:
        """The parameters of each call of `method`, decoded."""
        return [_params(r.body) for r in self.of(method)]

    def message(self, chat_id: int, message_id: int) -> Json | None:
        """A message the bot sent, as Telegram keeps it (edits applied)."""
        return self._messages.get((chat_id, message_id))

    async def push(self, update: Json, *, secret: str | None = None, omit_secret: bool = False) -> int:
        """Deliver an update to the webhook as Telegram does (JSON, the secret token in SECRET_HEADER);
        the bot's HTTP status. `secret` forges another token; `omit_secret` sends none."""
        if self.webhook is None:
            raise RuntimeError("no webhook is set")
        token = self.webhook.secret_token if secret is None else secret
        headers = {"Content-Type": "application/json"}
        if token is not None and not omit_secret:
            headers[SECRET_HEADER] = token
        async with self.http.post(self.webhook.url, data=json.dumps(update), headers=headers) as response:
            await response.read()
            return response.status

    # --- serving

    def routes(self) -> list[web.RouteDef]:
        files = web.get("/file/bot{token}/{path:.+}", self._download)
        return [web.post("/bot{token}/{method}", self._api), files]

    def error(self, status: int, request: web.Request) -> web.StreamResponse:
        if self.down:  # Telegram's front end, while the Bot API behind it is down: HTML, not JSON
            return web.Response(status=502, text="<html>502 Bad Gateway</html>", content_type="text/html")
        refused = _flood(self.retry_after) if status == 429 else _Refused(status, HTTPStatus(status).phrase)
        return refused.response

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        try:
            if request.match_info["token"] != self.token:
                raise _Refused(401, "Unauthorized")
            if method not in METHODS:
                raise _Refused(404, "Not Found")
            handler = getattr(self, "_" + re.sub("([A-Z])", r"_\1", method).lower())  # _send_message
            result = await handler(**_params(await request.read()))
        except _Refused as refused:
            return refused.response
        return web.json_response({"ok": True, "result": result})

    async def _download(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _Refused(401, "Unauthorized").response
        found = [i for i, (path, _, _) in self._files.items() if path == request.match_info["path"]]
        if not found:
            return _Refused(404, "Not Found").response
        self.downloads.append(found[0])
        return web.Response(body=self._files[found[0]][1], content_type="application/octet-stream")

    def _wake(self) -> None:
        self._queued.set()
        self._queued = asyncio.Event()

    def _check_chat(self, chat_id: int) -> None:
        if chat_id in self.missing_chats:
            raise _bad("chat not found")
        if chat_id in self.blocked:
            raise _Refused(403, "Forbidden: bot was blocked by the user")
        if chat_id in self.deactivated:
            raise _Refused(403, "Forbidden: user is deactivated")

    # --- the methods, with the parameters our adapter and PTB send

    async def _get_me(self, **_: Any) -> Json:
        return self.bot_user

    async def _set_webhook(
        self, url: str, secret_token: str | None = None, allowed_updates: list[str] | None = None, **_: Any
    ) -> bool:
        if self.require_https and not url.startswith("https://"):
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        if secret_token is not None and not _SECRET_TOKEN.fullmatch(secret_token):
            raise _bad("secret token contains unallowed characters")
        self.webhook = Webhook(url, secret_token, allowed_updates)
        return True

    async def _delete_webhook(self, **_: Any) -> bool:
        self.webhook = None
        return True

    async def _get_updates(
        self, offset: int = 0, timeout: float = 0, allowed_updates: list[str] | None = None, **_: Any
    ) -> list[Json]:
        if self.webhook is not None:
            raise _Refused(409, "Conflict: can't use getUpdates method while webhook is active")
        self.pending = [u for u in self.pending if u["update_id"] >= offset]  # those below: confirmed
        self._allowed_updates = self._allowed_updates if allowed_updates is None else allowed_updates
        self._polls += 1
        poll, deadline = self._polls, time.monotonic() + timeout
        self._wake()
        await self.changed()  # the poll, and what it confirmed, are seen while it waits
        while poll == self._polls:
            if self._allowed_updates:  # as Telegram, drops the kinds not asked for
                self.pending = [u for u in self.pending if set(u) - {"update_id"} <= {*self._allowed_updates}]
            if self.pending or deadline <= time.monotonic() or self._closing:
                return self.pending[:100]
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(deadline - time.monotonic()):
                    await self._queued.wait()
        raise _Refused(409, "Conflict: terminated by other getUpdates request")

    async def _send_message(
        self, chat_id: int, text: str, reply_markup: Json | None = None, **_: Any
    ) -> Json:
        self._check_chat(chat_id)
        if not text.strip():
            raise _bad("message text is empty")
        if _utf16_len(text) > MAX_TEXT_UTF16:
            raise _bad("message is too long")
        _check_markup(reply_markup)
        now, last = time.monotonic(), max((s.at for s in self.sent if s.chat_id == chat_id), default=None)
        if self.rate_limit_per_chat and last is not None and now - last < self.rate_limit_per_chat:
            raise _flood(max(1, math.ceil(self.rate_limit_per_chat - (now - last))))
        message_id = len(self._messages) + 1
        message = {"message_id": message_id, "from": self.bot_user, "chat": _chat(chat_id, "Citizen")}
        message |= {"date": int(time.time()), "text": text}
        if reply_markup is not None and "inline_keyboard" in reply_markup:
            message["reply_markup"] = reply_markup  # Telegram returns only inline keyboards
        self._messages[(chat_id, message_id)] = message
        self.sent.append(SentMessage(chat_id, text, reply_markup, now, message_id))
        return message

    async def _answer_callback_query(self, callback_query_id: str, text: str | None = None, **_: Any) -> bool:
        if callback_query_id in {a.callback_query_id for a in self.callback_answers}:  # answered once
            raise _bad("query is too old and response timeout expired or query ID is invalid")
        self.callback_answers.append(CallbackAnswer(callback_query_id, text, time.monotonic()))
        return True

    async def _edit_message_reply_markup(
        self, chat_id: int, message_id: int, reply_markup: Json | None = None, **_: Any
    ) -> Json:
        self._check_chat(chat_id)
        message = self._messages.get((chat_id, message_id))
        if message is None:
            raise _bad("message to edit not found")
        _check_markup(reply_markup)
        if reply_markup == message.get("reply_markup"):
            raise _bad("message is not modified: specified new message content and reply markup are the same")
        message.pop("reply_markup", None)
        message |= {"edit_date": int(time.time())} | ({"reply_markup": reply_markup} if reply_markup else {})
        self.edits.append(MarkupEdit(chat_id, message_id, reply_markup))
        return message

    async def _get_file(self, file_id: str, **_: Any) -> Json:
        if file_id not in self._files:
            raise _bad("invalid file_id")
        path, _data, size = self._files[file_id]
        if size > MAX_DOWNLOAD_BYTES:
            raise _bad("file is too big")
        file = {"file_id": file_id, "file_unique_id": f"AQAD-{file_id}"}
        return file | {"file_size": size, "file_path": path}


def _check_markup(markup: Any) -> None:
    """Refuse an inline keyboard as Telegram does; other keyboards (reply, remove, force reply) pass."""
    if markup is None or (isinstance(markup, dict) and "inline_keyboard" not in markup):
        return
    rows = markup.get("inline_keyboard") if isinstance(markup, dict) else None
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise _bad('can\'t parse inline keyboard button: field "inline_keyboard" must be an Array of Array')
    for button in (button for row in rows for button in row):
        if not isinstance(button, dict) or not isinstance(button.get("text"), str):
            raise _bad("can't parse inline keyboard button: Text must be a String")
        if len(_BUTTON_ACTIONS & button.keys()) != 1:
            raise _bad("text buttons are unallowed in the inline keyboard")
        data = button.get("callback_data")  # when the button has it: 1-64 bytes
        if "callback_data" in button and not (isinstance(data, str) and 0 < len(data.encode()) <= 64):
            raise _bad("BUTTON_DATA_INVALID")


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


# --- update builders: JSON as Telegram sends it ---------------------------------------------------


def _chat(chat_id: int, first_name: str) -> Json:
    if chat_id < 0:
        return {"id": chat_id, "title": "Neighbourhood group", "type": "group"}
    return {"id": chat_id, "first_name": first_name, "type": "private"}


def _message(update_id: int, chat_id: int, who: Json, text: str | None = None, field: str = "text") -> Json:
    """A citizen's message with its text (or caption: `field`) and the `bot_command` entities Telegram
    marks in it, in UTF-16 code units. `who`, the builders' keywords: user_id (in a private chat, the
    chat id), first_name ("Minji"), language_code ("ko"; None: none), message_id (the update's id)."""
    who = {"user_id": chat_id, "first_name": "Minji", "language_code": "ko", "message_id": update_id} | who
    user = {"id": who.pop("user_id"), "is_bot": False, "first_name": who["first_name"]}
    if language_code := who.pop("language_code"):
        user["language_code"] = language_code
    chat = _chat(chat_id, who.pop("first_name"))
    message = {"message_id": who.pop("message_id"), "from": user, "chat": chat, "date": int(time.time())}
    if who:
        raise TypeError(f"unknown keywords: {', '.join(who)}")
    if text is not None:
        message[field] = text
        commands = [(_utf16_len(text[: m.start()]), _utf16_len(m.group())) for m in _COMMAND.finditer(text)]
        if commands:
            key = "entities" if field == "text" else "caption_entities"
            message[key] = [{"offset": at, "length": n, "type": "bot_command"} for at, n in commands]
    return message


def text_update(update_id: int, chat_id: int, text: str, **who: Any) -> Json:
    return {"update_id": update_id, "message": _message(update_id, chat_id, who, text)}


def command_update(update_id: int, chat_id: int, text: str = "/start", **who: Any) -> Json:
    """A command such as "/start" or "/status 2026-000123", with its `bot_command` entity."""
    if not text.startswith("/"):
        raise ValueError("a command starts with /")
    return text_update(update_id, chat_id, text, **who)


def edited_text_update(update_id: int, chat_id: int, text: str, message_id: int, **who: Any) -> Json:
    """The citizen edited an earlier message: Telegram sends `edited_message` with `edit_date`."""
    message = _message(update_id, chat_id, who | {"message_id": message_id}, text)
    return {"update_id": update_id, "edited_message": message | {"edit_date": message["date"] + 5}}


def photo_update(update_id: int, chat_id: int, file_id: str, caption: str | None = None, **who: Any) -> Json:
    """A 1280x960 photo: Telegram sends several PhotoSizes, smallest first; `file_id` is the largest."""
    sizes = [(f"{file_id}-{w}", w, w * 3 // 4, 180_000 * w * w // 1280**2) for w in (90, 320, 800)]
    photo = [
        {"file_id": i, "file_unique_id": f"AQAD-{i}", "file_size": size, "width": w, "height": h}
        for i, w, h, size in [*sizes, (file_id, 1280, 960, 180_000)]
    ]
    message = _message(update_id, chat_id, who, caption, "caption") | {"photo": photo}
    return {"update_id": update_id, "message": message}


def location_update(update_id: int, chat_id: int, latitude: float, longitude: float, **who: Any) -> Json:
    location = {"latitude": latitude, "longitude": longitude}
    return {"update_id": update_id, "message": _message(update_id, chat_id, who) | {"location": location}}


def callback_update(
    update_id: int, chat_id: int, data: str, message_id: int, *, message: Json | None = None, **who: Any
) -> Json:
    """A press on an inline button of the bot's message `message_id`; `message` (from `fake.message`)
    carries that message exactly as the bot sent it."""
    press = _message(update_id, chat_id, who)
    shown = {"message_id": message_id, "from": BOT_USER, "chat": press["chat"], "date": press["date"] - 60}
    query = {"id": str(4_382_000_000_000_000_000 + update_id), "from": press["from"], "data": data}
    query |= {"message": message or shown | {"text": "…"}, "chat_instance": str(-abs(chat_id) * 7919 or -1)}
    return {"update_id": update_id, "callback_query": query}


def my_chat_member_update(update_id: int, chat_id: int, *, new_status: str = "kicked", **who: Any) -> Json:
    """Telegram's notice that a private chat's user blocked ("kicked") or unblocked ("member") the bot."""
    change = _message(update_id, chat_id, who)
    del change["message_id"]
    old_status = "member" if new_status == "kicked" else "kicked"
    change |= {"old_chat_member": _member(old_status), "new_chat_member": _member(new_status)}
    return {"update_id": update_id, "my_chat_member": change}


def _member(status: str) -> Json:
    """The bot as a member of the chat; "kicked": blocked by the user."""
    return {"status": status, "user": BOT_USER} | ({"until_date": 0} if status == "kicked" else {})
