"""Telegram through python-telegram-bot 22, used as a plain client: a bare `Bot` makes the calls,
and this adapter does the rest itself (no `Application`, nothing subclassed).

Two ways in, one translation (`inbound_from_update`):
- webhook (`mode: webhook`): Telegram POSTs each update to `/webhooks/telegram` with the secret
  token we registered; it retries until it gets a 2xx, so we answer only after intake committed.
- long polling (`mode: polling`), for a city without a public URL: `getUpdates` in a loop; an update
  is confirmed (the offset moves past it) only after intake returned, so a crash re-reads it and
  the store's dedupe on `update_id` drops the repeat.

Only private chats are served: a reply in a group would show a citizen's case to everyone.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import mimetypes
import random
import re
import warnings
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from aiohttp import web
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    MessageEntity,
    ReplyParameters,
    Update,
)
from telegram.error import (
    BadRequest as TelegramBadRequest,
)
from telegram.error import (
    ChatMigrated,
    Forbidden,
    InvalidToken,
    RetryAfter,
    TelegramError,
)
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from channels.base import (
    Attachment,
    BadRequest,
    Button,
    ChannelHost,
    Command,
    FetchedMedia,
    InboundMessage,
    Location,
    OutboundMessage,
    PermanentSendError,
    Receipt,
    SendResult,
    TransientSendError,
    WebhookChannel,
    buttons_as_text,
)
from channels.splitting import split_text
from channels.telegram_config import TelegramConfig

log = logging.getLogger("channels.telegram")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
WEBHOOK_PATH = "/webhooks/telegram"
MAX_TEXT = 4096  # Telegram's limit for one message
MAX_CALLBACK_DATA = 64  # bytes of an inline button's callback_data
# What we ask Telegram for; anything else that still arrives is acknowledged and ignored.
ALLOWED_UPDATES = ("message", "callback_query", "my_chat_member")
_CHAT_ID = re.compile(r"-?[0-9]{1,20}")
_COMMANDS: dict[str, Command] = {"start": "start", "help": "help", "status": "status"}
_BUTTONS_PER_ROW = 5
_SHORT_LABEL = 8  # labels up to this long share a row (1-5); longer ones get a row each


class TelegramChannel(WebhookChannel):
    name: ClassVar[str] = "telegram"
    supports_buttons: ClassVar[bool] = True
    fetches_media: ClassVar[bool] = True
    # No `find_sent`: the Bot API cannot read a chat's history, nor list what a bot sent, so a reply
    # handed over just before a crash cannot be told from one never sent (it may arrive twice).
    can_find_sent: ClassVar[bool] = False

    def __init__(self, config: TelegramConfig, *, public_url: str) -> None:
        super().__init__(config.rate_limit.to_rate_limit())
        self.config = config
        self.public_url = public_url.rstrip("/")
        self._bot: Bot | None = None
        self._requests: tuple[HTTPXRequest, ...] = ()
        self._tasks: set[asyncio.Task[None]] = set()
        # Parts of a long text already delivered, by idempotency key, so a retry sends only the rest.
        self._parts_sent: dict[str, int] = {}

    # --- lifecycle -------------------------------------------------------------------------------

    @property
    def bot(self) -> Bot:
        if self._bot is None:
            raise TransientSendError("the Telegram channel is not started")
        return self._bot

    def routes(self) -> list[web.AbstractRouteDef]:
        # In polling mode nothing may post updates to us.
        return [web.post(WEBHOOK_PATH, self.handle_webhook)] if self.config.mode == "webhook" else []

    async def start(self, host: ChannelHost) -> None:
        await super().start(host)
        await self.stop()  # a second start begins afresh
        timeout = self.config.request_timeout_seconds
        calls = HTTPXRequest(
            connection_pool_size=self.config.connection_pool_size,
            connect_timeout=timeout,
            read_timeout=timeout,
            write_timeout=timeout,
            pool_timeout=timeout,
        )
        # getUpdates has its own connection so a long poll never waits behind sends (nor they behind it).
        polls = HTTPXRequest(
            connection_pool_size=1,
            connect_timeout=timeout,
            read_timeout=timeout,
            write_timeout=timeout,
            pool_timeout=timeout,
        )
        self._requests = (calls, polls)
        base = self.config.api_base_url.rstrip("/")
        self._bot = Bot(
            self.config.token,
            base_url=f"{base}/bot",
            base_file_url=f"{base}/file/bot",
            request=calls,
            get_updates_request=polls,
        )
        # Never raise here when Telegram is down: retry in the background instead.
        if self.config.mode == "polling":
            self._spawn(self._poll(), "telegram-poll")
        elif self.config.set_webhook:
            self._spawn(self._register_webhook(), "telegram-set-webhook")

    async def stop(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        for request in self._requests:
            await request.shutdown()
        self._requests = ()
        self._bot = None

    def _why(self, exc: BaseException) -> str:
        return _describe(exc, self.config.token)

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _register_webhook(self) -> None:
        url = self.public_url + WEBHOOK_PATH

        async def register() -> None:
            await self.bot.set_webhook(
                url, secret_token=self.config.webhook_secret, allowed_updates=list(ALLOWED_UPDATES)
            )

        await self._until_done(register, "registering the webhook")
        log.info("telegram: Telegram sends updates to %s", url)

    async def _until_done(self, call: Callable[[], Awaitable[None]], doing: str) -> None:
        backoff = _Backoff(self.config.backoff_seconds, self.config.backoff_max_seconds)
        while True:
            try:
                await call()
                return
            except TelegramError as exc:
                wait = backoff.next(_retry_after(exc))
                level = logging.ERROR if isinstance(exc, InvalidToken) else logging.WARNING
                log.log(
                    level,
                    "telegram: %s failed (%s); trying again in %.1fs",
                    doing,
                    self._why(exc),
                    wait,
                )
            await asyncio.sleep(wait)

    # --- long polling ------------------------------------------------------------------------

    async def _poll(self) -> None:
        async def delete() -> None:
            await self.bot.delete_webhook()  # getUpdates is refused while a webhook is set

        await self._until_done(delete, "removing the webhook for polling")
        backoff = _Backoff(self.config.backoff_seconds, self.config.backoff_max_seconds)
        offset = 0
        while True:
            try:
                if not await self.host.lead("telegram:updates"):
                    # Another instance polls: Telegram allows one getUpdates at a time (409).
                    await asyncio.sleep(max(5.0, self.config.poll_timeout_seconds))
                    continue
                updates = await self.bot.get_updates(
                    offset=offset,
                    timeout=self.config.poll_timeout_seconds,
                    allowed_updates=list(ALLOWED_UPDATES),
                )
            except Exception as exc:  # the loop must outlive anything Telegram or PTB may do
                wait = backoff.next(_retry_after(exc))
                log.warning(
                    "telegram: polling failed (%s); polling again in %.1fs",
                    self._why(exc),
                    wait,
                    exc_info=not isinstance(exc, TelegramError),
                )
                await asyncio.sleep(wait)
                continue
            if not updates and not self.config.poll_timeout_seconds:
                await asyncio.sleep(1.0)  # short polling: do not spin on an empty queue
            for update in updates:
                try:
                    message = inbound_from_update(update, update.to_dict())
                except Exception:
                    # A bug here must not stall every later citizen behind this one update.
                    log.exception("telegram: could not read update %s; skipping it", update.update_id)
                    message = None
                if message is not None:
                    try:
                        await self.host.intake(message)
                    except Exception:
                        # Not confirmed: the next getUpdates returns it again.
                        wait = backoff.next()
                        log.exception(
                            "telegram: could not store update %s; retrying in %.1fs", update.update_id, wait
                        )
                        await asyncio.sleep(wait)
                        break
                    self._after_intake(message)
                offset = update.update_id + 1  # confirmed by the next getUpdates
            else:
                backoff.reset()

    # --- webhook -----------------------------------------------------------------------------

    def verify(self, request: web.Request, body: bytes) -> bool:
        secret = self.config.webhook_secret
        given = request.headers.get(SECRET_HEADER, "")
        return bool(secret) and hmac.compare_digest(given.encode(), secret.encode())

    def parse(self, request: web.Request, body: bytes) -> list[InboundMessage]:
        try:
            raw = json.loads(body)
        except (UnicodeDecodeError, ValueError):
            raise BadRequest("the body is not JSON") from None
        if not isinstance(raw, dict) or not isinstance(raw.get("update_id"), int):
            raise BadRequest("not a Telegram update: no update_id")
        try:
            update = Update.de_json(raw, None)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise BadRequest(f"not a Telegram update: {exc}") from None
        message = inbound_from_update(update, raw)
        return [message] if message is not None else []

    async def acknowledge(
        self, messages: Sequence[InboundMessage], receipts: Sequence[Receipt]
    ) -> web.StreamResponse:
        for message in messages:
            self._after_intake(message)
        return web.Response(status=200)  # Telegram only needs a 2xx, and it needs it quickly

    def _after_intake(self, message: InboundMessage) -> None:
        """A button press is answered once intake has it: the spinner stops, the buttons go (so
        it cannot be pressed twice). In the background, as the webhook must answer quickly."""
        press = (message.raw or {}).get("callback_query")
        if isinstance(press, dict) and self._bot is not None:
            self._spawn(self._finish_press(press), "telegram-answer-press")

    async def _finish_press(self, press: dict[str, Any]) -> None:
        try:
            await self.bot.answer_callback_query(str(press["id"]))
        except TelegramError as exc:
            log.warning("telegram: could not answer a button press (%s)", self._why(exc))
        shown = press.get("message")
        if not isinstance(shown, dict) or not shown.get("reply_markup"):
            return
        try:
            await self.bot.edit_message_reply_markup(
                chat_id=shown["chat"]["id"], message_id=shown["message_id"], reply_markup=None
            )
        except TelegramError as exc:
            log.info("telegram: could not remove the pressed buttons (%s)", self._why(exc))

    # --- sending -----------------------------------------------------------------------------

    def send_cost(self, message: OutboundMessage) -> int:
        return len(parts_of(message.text))

    async def send(self, message: OutboundMessage) -> SendResult:
        if not _CHAT_ID.fullmatch(message.recipient):
            raise PermanentSendError(f"not a Telegram chat id: {message.recipient!r}")
        chat_id = int(message.recipient)
        text, markup = message.text, keyboard(message.buttons)
        if message.buttons and markup is None:
            text = buttons_as_text(text, message.buttons)  # a value too long for callback_data
        parts = parts_of(text)
        reply_to = int(message.reply_to) if message.reply_to and message.reply_to.isdigit() else None
        done = self._parts_sent.get(message.idempotency_key, 0)
        sent: Message | None = None
        for index in range(done, len(parts)):
            last = index == len(parts) - 1
            try:
                sent = await self.bot.send_message(
                    chat_id,
                    parts[index],
                    reply_markup=markup if last else None,
                    reply_parameters=(
                        ReplyParameters(reply_to, allow_sending_without_reply=True)
                        if reply_to and index == 0
                        else None
                    ),
                )
            except TelegramError as exc:
                error = _send_error(exc, self.config.token)
                if isinstance(error, PermanentSendError):
                    self._parts_sent.pop(message.idempotency_key, None)
                raise error from exc
            if not last:
                self._parts_sent[message.idempotency_key] = index + 1
        self._parts_sent.pop(message.idempotency_key, None)
        return SendResult(provider_message_id=str(sent.message_id) if sent else None)

    async def fetch_media(self, attachment: Attachment) -> FetchedMedia:
        file_id = attachment.url.removeprefix("telegram-file:")
        if file_id == attachment.url or not file_id:
            raise PermanentSendError(f"not a Telegram file: {attachment.url}")
        limit = self.config.max_media_bytes
        try:
            file = await self.bot.get_file(file_id)
            if file.file_size and file.file_size > limit:
                raise PermanentSendError(f"the file has {file.file_size} bytes, over the {limit} limit")
            data = bytes(await file.download_as_bytearray())
        except TelegramError as exc:
            raise _send_error(exc, self.config.token) from exc
        if len(data) > limit:
            raise PermanentSendError(f"the file has {len(data)} bytes, over the {limit} limit")
        guessed = mimetypes.guess_type(file.file_path or "")[0]
        return FetchedMedia(
            data=data, content_type=attachment.content_type or guessed or "application/octet-stream"
        )


# --- translation: pure functions ---------------------------------------------------------------


def inbound_from_update(update: Update, raw: dict[str, Any]) -> InboundMessage | None:
    """The citizen's message in a Telegram update (a block or unblock of the bot becomes a stop or
    unstop command), or None for what we ignore: edits, other update types, group chats, service
    messages and stickers."""
    if update.message is not None:
        return _from_message(update.update_id, update.message, raw)
    press = update.callback_query
    if press is not None and press.data is not None:
        chat = press.message.chat if press.message is not None else None
        if chat is not None and chat.type != "private":
            return None
        user = press.from_user
        return InboundMessage(
            channel="telegram",
            sender=str(chat.id if chat is not None else user.id),
            text=press.data,  # the button's value
            provider_message_id=str(update.update_id),
            received_at=datetime.now(UTC),
            language_hint=_language(user.language_code),
            sender_name=user.full_name,
            reply_to=str(press.message.message_id) if press.message is not None else None,
            raw=raw,
        )
    member = update.my_chat_member
    if member is not None and member.chat.type == "private":
        # The citizen blocked the bot ("kicked"), or unblocked it: nothing is sent meanwhile, as
        # after an SMS STOP, instead of failing at every send.
        status = member.new_chat_member.status
        command: Command | None = "stop" if status == "kicked" else "unstop" if status == "member" else None
        if command is not None:
            return InboundMessage(
                channel="telegram",
                sender=str(member.chat.id),
                text="",
                provider_message_id=str(update.update_id),
                received_at=datetime.now(UTC),
                language_hint=_language(member.from_user.language_code),
                sender_name=member.from_user.full_name,
                raw=raw,
                command=command,
            )
    return None


def _from_message(update_id: int, message: Message, raw: dict[str, Any]) -> InboundMessage | None:
    if message.chat.type != "private":
        return None
    text = message.text or message.caption or ""
    attachments = _attachments(message)
    location = None
    if message.location is not None:
        label = f"{message.venue.title}, {message.venue.address}" if message.venue is not None else None
        location = Location(message.location.latitude, message.location.longitude, label)
    if not text.strip() and not attachments and location is None:
        return None  # a sticker, a service message, ...
    command, text = _command(message, text)
    user = message.from_user
    received = message.date if message.date.tzinfo else message.date.replace(tzinfo=UTC)
    reply = message.reply_to_message
    return InboundMessage(
        channel="telegram",
        sender=str(message.chat.id),
        text=text,
        provider_message_id=str(update_id),
        received_at=received,
        attachments=attachments,
        location=location,
        language_hint=_language(user.language_code) if user else None,
        sender_name=user.full_name if user else None,
        reply_to=str(reply.message_id) if reply is not None else None,
        raw=raw,
        command=command,
    )


def _attachments(message: Message) -> tuple[Attachment, ...]:
    found: list[Attachment] = []
    if message.photo:
        largest = max(message.photo, key=lambda size: (size.width * size.height, size.file_size or 0))
        found.append(Attachment(url=f"telegram-file:{largest.file_id}", content_type="image/jpeg"))
    if message.document is not None:  # a photo sent "as a file", a PDF, ...
        document = message.document
        found.append(
            Attachment(
                url=f"telegram-file:{document.file_id}",
                content_type=document.mime_type,
                filename=document.file_name,
            )
        )
    kinds = (
        (message.voice, "audio/ogg"),
        (message.audio, "audio/mpeg"),
        (message.video, "video/mp4"),
        (message.video_note, "video/mp4"),
    )
    for media, usual in kinds:
        if media is not None:
            content_type = getattr(media, "mime_type", None) or usual
            found.append(Attachment(url=f"telegram-file:{media.file_id}", content_type=content_type))
    return tuple(found)


def _command(message: Message, text: str) -> tuple[Command | None, str]:
    """`/start`, `/help` and `/status [REF]` (also `/status@city_bot`) at the start of the text.
    A recognised command leaves the citizen's own words after it as the text ("/status 2026-000123"
    -> "2026-000123", where the router reads the reference): the command word itself is protocol,
    English whatever the user's language, and would make the router answer a Korean "/start" in
    English. Other "/words" stay as they were written."""
    entities = message.entities or message.caption_entities
    for entity in entities:
        if entity.type == MessageEntity.BOT_COMMAND and entity.offset == 0:
            name = message.parse_entity(entity) if message.text else message.parse_caption_entity(entity)
            command = _COMMANDS.get(name[1:].split("@", 1)[0].lower())
            return (command, text[len(name) :].strip()) if command else (None, text)
    return None, text


def _language(code: str | None) -> str | None:
    """Telegram's IETF tag ("en-US", "zh-hans") as the primary language ("en", "zh")."""
    return code.split("-", 1)[0].lower() if code else None


def keyboard(buttons: Sequence[Button]) -> InlineKeyboardMarkup | None:
    """Inline buttons carrying their values; short labels (ratings 1-5) share a row of up to five.
    None when there are none, or when a value does not fit Telegram's 64 bytes of callback_data."""
    if not buttons or any(len(b.value.encode()) > MAX_CALLBACK_DATA or not b.value for b in buttons):
        return None
    per_row = _BUTTONS_PER_ROW if all(len(b.label) <= _SHORT_LABEL for b in buttons) else 1
    keys = [InlineKeyboardButton(b.label, callback_data=b.value) for b in buttons]
    return InlineKeyboardMarkup([keys[i : i + per_row] for i in range(0, len(keys), per_row)])


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


# Where a long text may be cut, best first: a paragraph, a line, a sentence, a word.
def parts_of(text: str) -> list[str]:
    """The messages a text goes as, each within Telegram's limit in UTF-16 units (how it counts)."""
    return split_text(text, MAX_TEXT, _utf16) or [text]


# --- errors ------------------------------------------------------------------------------------


def _retry_after(exc: BaseException) -> float | None:
    if not isinstance(exc, RetryAfter):
        return None
    with warnings.catch_warnings():  # PTB 22 deprecates the int form; either form is read here
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _describe(exc: BaseException, token: str) -> str:
    """The error for logs and the outbox row; an HTTP library's message may quote the URL, and
    the URL holds the token."""
    text = f"{type(exc).__name__}: {exc}"
    return text.replace(token, "<token>") if token else text


def _send_error(exc: TelegramError, token: str) -> PermanentSendError | TransientSendError:
    """Telegram's answer as ours: will a retry help?"""
    if isinstance(exc, RetryAfter):
        return TransientSendError(f"Telegram flood control: {exc}", retry_after=_retry_after(exc))
    # Blocked, kicked, deactivated; chat not found, a bad request, a chat become a supergroup.
    if isinstance(exc, Forbidden | TelegramBadRequest | ChatMigrated):
        return PermanentSendError(_describe(exc, token))
    if isinstance(exc, InvalidToken) and "Not Found" not in str(exc):  # a 404 is an expired file link
        # A revoked or mistyped token is the operator's to fix; keep the messages until then.
        log.error("telegram: the bot token was rejected")
    # TimedOut, NetworkError (5xx, 502 from the front end, connection refused), Conflict, ...
    return TransientSendError(_describe(exc, token))


class _Backoff:
    """Doubling waits with jitter; a Retry-After from Telegram wins when it is longer."""

    def __init__(self, first: float, most: float) -> None:
        self.first, self.most, self.attempt = first, most, 0

    def next(self, at_least: float | None = None) -> float:
        wait = min(self.most, self.first * 2.0 ** min(self.attempt, 30)) * random.uniform(0.5, 1.0)
        self.attempt += 1
        return max(wait, at_least or 0.0)

    def reset(self) -> None:
        self.attempt = 0
