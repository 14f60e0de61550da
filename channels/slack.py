"""The staff desk in the city's Slack, through slack-bolt's async app embedded in our aiohttp server.

Outbound, the router's desk items (channels/desk.py: card, thread line, delivery mark, review post,
alert) become Block Kit messages in the department channels. A ticket's card is posted once per
channel and then updated in place; the host remembers where (`thread:{reference}` -> "C..:ts" and the
reverse `ts:{channel}:{ts}` -> reference), so a restart or another instance finds it again. Every
message we post carries the outbox row's key as message metadata (event type `intake_outbox`), so
after a crash mid-send `find_sent` can tell from the channel's history whether it went out.

Inbound, Slack sends events, button clicks, modal submissions and the slash command to one URL,
`/webhooks/slack`. We check the signature ourselves first (403, as for every other webhook), then bolt
checks it again and dispatches. Every staff gesture becomes a neutral `StaffAction` for the router; a
refusal is shown only to the staff member (an ephemeral message). Slack retries an event it thinks
was not acknowledged; the `event_id` is remembered so a retry acts once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from channels.base import (
    ChannelHost,
    OutboundMessage,
    PermanentSendError,
    SendResult,
    StaffAction,
    StaffActionKind,
    TransientSendError,
    WebhookChannel,
    as_utc,
)
from channels.desk import Alert, Card, CardRequest, DeliveryMark, ReviewPost, ThreadLine
from channels.slack_config import SlackConfig

log = logging.getLogger("channels.slack")

WEBHOOK_PATH = "/webhooks/slack"
MEMORY = "slack"  # what this channel remembers, in the host
MODAL = "desk_modal"  # one callback_id for every modal; private_metadata says which
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")
# A human's message in a thread: a plain one, one with files, one also sent to the channel.
_HUMAN_SUBTYPES = (None, "file_share", "thread_broadcast")
_AUTH_ERRORS = {"invalid_auth", "account_inactive", "token_revoked", "not_authed", "token_expired"}
# Slack's own trouble, at HTTP 200: worth another try.
_TRANSIENT_ERRORS = {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
_MAX_SECTION = 3000  # characters of a section's text
_MAX_FIELD = 2000
_MAX_TEXT = 39_000  # chat.postMessage takes 40,000
_MAX_SUGGESTIONS = 5
_AUTHORS = {"citizen": "Citizen", "city": "City", "staff": "Staff", "system": "System"}
# Message metadata on every post: {"event_type": EVENT_TYPE, "event_payload": {"key": <outbox key>}}.
EVENT_TYPE = "intake_outbox"
# find_sent reads from the attempt's start less this (Slack's clock against ours). The key decides a
# match, so a wide margin costs only a longer read.
_CLOCK_SKEW_SECONDS = 60.0
# Messages a page of conversations.history / .replies: Slack's limit for apps outside its Marketplace
# since 2025 (with one request a minute); the window read is short, so one page nearly always does.
_HISTORY_PAGE = 15


class SlackChannel(WebhookChannel):
    name: ClassVar[str] = "slack"
    supports_buttons: ClassVar[bool] = True
    can_find_sent: ClassVar[bool] = True
    # An interaction payload carries the whole message (a card's blocks): more than a citizen's text.
    max_body_bytes: ClassVar[int] = 512 * 1024

    def __init__(self, config: SlackConfig, *, public_url: str) -> None:
        super().__init__(config.rate_limit.to_rate_limit())
        self.config = config
        self.public_url = public_url.rstrip("/")
        self._client: AsyncWebClient | None = None
        self._app: AsyncApp | None = None
        self._verifier = SignatureVerifier(config.signing_secret)
        self._names: dict[str, str] = {}  # Slack user id -> real name
        self._channel_ids: dict[str, str] = {}  # channel name -> id
        self._departments: list[list[str]] | None = None  # the reassign picker, as last seen on a card
        self._in_flight: set[str] = set()  # event ids being handled right now (a retry overtaking)

    # --- lifecycle -------------------------------------------------------------------------------

    @property
    def client(self) -> AsyncWebClient:
        if self._client is None:
            raise TransientSendError("the Slack channel is not started")
        return self._client

    def routes(self) -> list[web.AbstractRouteDef]:
        return [web.post(WEBHOOK_PATH, self.handle_webhook)]

    async def start(self, host: ChannelHost) -> None:
        await super().start(host)
        # No call to Slack here: bolt asks auth.test at the first request, so Slack being down at
        # start-up delays nothing but that request.
        self._client = AsyncWebClient(
            token=self.config.bot_token,
            base_url=self.config.api_base_url,
            timeout=self.config.request_timeout_seconds,
        )
        # process_before_response: a listener has finished when Slack gets its answer. Our
        # listeners only commit a staff action and make one or two calls, well within Slack's 3 s.
        app = AsyncApp(
            client=self._client,
            signing_secret=self.config.signing_secret,
            process_before_response=True,
        )
        self._register(app)
        self._app = app

    async def stop(self) -> None:
        self._app = None
        self._client = None  # each call opens and closes its own HTTP session: nothing to close

    # --- the webhook ---------------------------------------------------------------------------

    def verify(self, request: web.Request, body: bytes) -> bool:
        return bool(self._verifier.is_valid_request(body, dict(request.headers)))

    async def handle_verified(self, request: web.Request, body: bytes) -> web.StreamResponse:
        """Staff gestures, dispatched by bolt to the listeners below (bolt checks the signature again)."""
        if self._app is None:
            return _error(503, "the Slack channel is not started")
        bolt_request = AsyncBoltRequest(
            body=body.decode("utf-8", "replace"),
            query=request.query_string,
            headers=dict(request.headers),
        )
        return await to_aiohttp_response(await self._app.async_dispatch(bolt_request))

    def _register(self, app: AsyncApp) -> None:
        # Bolt passes arguments by parameter name, so the listeners are plain closures.
        async def on_message(body: dict[str, Any], context: AsyncBoltContext) -> None:
            await self._on_message(body, context.bot_user_id)

        async def on_button(ack: AsyncAck, body: dict[str, Any]) -> None:
            await ack()
            await self._on_button(body)

        async def on_modal(ack: AsyncAck, body: dict[str, Any]) -> None:
            await self._on_modal(ack, body)

        async def on_command(ack: AsyncAck, command: dict[str, Any]) -> None:
            await self._on_command(ack, command)

        app.event("message")(on_message)
        for action_id in ("claim", "resolve", "reassign", "review_send", "review_edit"):
            app.action(action_id)(on_button)
        app.view(MODAL)(on_modal)
        app.command(self.config.command)(on_command)

    # --- staff -> router -------------------------------------------------------------------------

    async def _on_message(self, body: dict[str, Any], own_user: str | None) -> None:
        event = body.get("event") or {}
        thread_ts, ts, channel = event.get("thread_ts"), event.get("ts"), event.get("channel")
        user = event.get("user")
        if (
            not thread_ts
            or thread_ts == ts
            or not channel
            or not user
            or event.get("bot_id")
            or event.get("subtype") not in _HUMAN_SUBTYPES
            or user == own_user
        ):
            return  # a top-level message, a bot's, an edit, a join: not a staff reply
        event_id = str(body.get("event_id") or f"{channel}:{ts}")
        if event_id in self._in_flight or await self.host.recall(MEMORY, f"event:{event_id}"):
            log.info("slack: event %s was handled already (a retry)", event_id)
            return
        reference = await self.host.recall(MEMORY, f"ts:{channel}:{thread_ts}")
        if reference is None and own_user and event.get("parent_user_id") == own_user:
            # A reply under one of our messages whose ticket is not on record yet: perhaps a card just
            # posted (its record is written right after Slack answered). Wait a little; still unknown,
            # it is under another of our messages (an alert, a review item), not a ticket's thread.
            for _ in range(10):
                await asyncio.sleep(0.2)
                reference = await self.host.recall(MEMORY, f"ts:{channel}:{thread_ts}")
                if reference is not None:
                    break
        if reference is None:
            return  # a thread under something that is not a ticket card: staff talking among themselves
        self._in_flight.add(event_id)
        try:
            text = str(event.get("text") or "")
            kind: StaffActionKind = "reply"
            prefixes: dict[str, StaffActionKind] = {
                self.config.note_prefix: "note",
                self.config.public_prefix: "public_note",
            }
            # The longer first: one prefix may begin with the other ("note:" and "note:public").
            for prefix in sorted(prefixes, key=len, reverse=True):
                if text.lower().startswith(prefix.lower()):
                    kind, text = prefixes[prefix], text[len(prefix) :].strip()
                    break
            action = StaffAction(
                kind=kind,
                staff_id=f"slack:{user}",
                staff_name=await self._staff_name(user),
                reference=reference,
                text=text,
                place=channel,
                source_id=ts,
            )
            result = await self.host.staff_action(action)
            # Remembered only once acted on: if the router failed, Slack's retry gets another go.
            await self.host.remember(MEMORY, f"event:{event_id}", "1")
        finally:
            self._in_flight.discard(event_id)
        if not result.ok:
            await self._tell(channel, user, result.message, thread_ts=thread_ts)

    async def _on_button(self, body: dict[str, Any]) -> None:
        action = (body.get("actions") or [{}])[0]
        action_id = str(action.get("action_id", ""))
        value = str(action.get("value") or "")
        user = str((body.get("user") or {}).get("id", ""))
        place = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
        reference = _reference(action_id, value, str(action.get("block_id") or ""))
        if not user or not reference:
            log.warning("slack: a %s click without a user or a ticket reference", action_id)
            return
        if action_id in ("claim", "review_send"):
            result = await self.host.staff_action(
                StaffAction(
                    kind="claim" if action_id == "claim" else "review_send",
                    staff_id=f"slack:{user}",
                    staff_name=await self._staff_name(user, body.get("user")),
                    reference=reference,
                    entry=value if action_id == "review_send" else None,
                    place=place,
                )
            )
            if not result.ok and place:
                await self._tell(place, user, result.message)
            return
        view = await self._modal(action_id, reference, place, body)
        try:
            await self.client.views_open(trigger_id=str(body.get("trigger_id", "")), view=view)
        except (SlackApiError, SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("slack: could not open the %s form: %s", action_id, _describe(exc))
            if place:
                await self._tell(place, user, "Could not open the form; please try again.")

    async def _modal(
        self, action_id: str, reference: str, place: str | None, body: dict[str, Any]
    ) -> dict[str, Any]:
        metadata = json.dumps({"kind": action_id, "reference": reference, "place": place})
        if action_id == "resolve":
            title, submit = f"Resolve {reference}", "Resolve"
            blocks = [
                _text_input("text", "What to tell the citizen (optional)", optional=True, multiline=True)
            ]
        elif action_id == "reassign":
            title, submit = f"Reassign {reference}", "Reassign"
            departments = await self._known_departments()
            if departments:
                options = [{"text": _plain(name[:75]), "value": key[:150]} for key, name in departments[:100]]
                picker: dict[str, Any] = {
                    "type": "input",
                    "block_id": "department",
                    "label": _plain("Department"),
                    "element": {"type": "static_select", "action_id": "value", "options": options},
                }
            else:  # no card seen since the start: ask for the department's key
                picker = _text_input("department", "Department (its key in config.yaml)")
            blocks = [picker, _text_input("reason", "Reason", multiline=True)]
        else:  # review_edit
            title, submit = "Edit the answer", "Send"
            blocks = [
                _text_input(
                    "text", "Answer to send", multiline=True, initial=_top_suggestion(body.get("message"))
                )
            ]
        return {
            "type": "modal",
            "callback_id": MODAL,
            "title": _plain(title[:24]),
            "submit": _plain(submit),
            "close": _plain("Cancel"),
            "private_metadata": metadata,
            "blocks": blocks,
        }

    async def _on_modal(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        view = body.get("view") or {}
        try:
            meta = json.loads(view.get("private_metadata") or "{}")
        except ValueError:
            meta = {}
        kind, reference, place = meta.get("kind"), meta.get("reference"), meta.get("place")
        values = (view.get("state") or {}).get("values") or {}
        user = str((body.get("user") or {}).get("id", ""))
        if kind not in ("resolve", "reassign", "review_edit") or not reference or not user:
            await ack()
            log.warning("slack: a form submission that is not ours: %r", meta)
            return
        text = _state_value(values, "text")
        reason = _state_value(values, "reason")
        department = _state_value(values, "department")
        if kind == "reassign" and (not department or not reason):
            await ack(response_action="errors", errors={"reason": "Give a department and a reason."})
            return
        if kind == "review_edit" and not text:
            await ack(response_action="errors", errors={"text": "The answer is empty."})
            return
        await ack()  # the modal closes; a refusal comes as a message
        result = await self.host.staff_action(
            StaffAction(
                kind=kind,
                staff_id=f"slack:{user}",
                staff_name=await self._staff_name(user, body.get("user")),
                reference=reference,
                text=text,
                department=department or None,
                reason=reason,
                place=place,
            )
        )
        if not result.ok and place:
            await self._tell(place, user, result.message)

    async def _on_command(self, ack: AsyncAck, command: dict[str, Any]) -> None:
        reference = str(command.get("text") or "").strip()
        if not reference:
            await ack(text=f"Usage: {self.config.command} 2026-000123")
            return
        user = str(command.get("user_id", ""))
        result = await self.host.staff_action(
            StaffAction(
                kind="lookup",
                staff_id=f"slack:{user}",
                staff_name=await self._staff_name(user, {"name": command.get("user_name")}),
                reference=reference.split()[0],
                place=command.get("channel_id"),
            )
        )
        await ack(text="\n".join([result.message, *result.lines]))  # ephemeral: only they see it

    async def _staff_name(self, user: str, given: dict[str, Any] | None = None) -> str:
        """The staff member's real name from users.info, kept in memory; their handle if Slack is down."""
        if user in self._names:
            return self._names[user]
        try:
            found = (await self.client.users_info(user=user)).get("user") or {}
        except (SlackApiError, SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("slack: could not look up user %s: %s", user, _describe(exc))
            return str((given or {}).get("name") or user)
        profile = found.get("profile") or {}
        name = str(found.get("real_name") or profile.get("real_name") or profile.get("display_name") or user)
        self._names[user] = name
        return name

    async def _tell(self, channel: str, user: str, text: str, *, thread_ts: str | None = None) -> None:
        """Something only this staff member sees (why an action was refused)."""
        try:
            await self.client.chat_postEphemeral(
                channel=channel, user=user, text=text or "Not done.", thread_ts=thread_ts
            )
        except (SlackApiError, SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("slack: could not tell %s: %s (%s)", user, text, _describe(exc))

    async def _known_departments(self) -> list[list[str]]:
        if self._departments is None:
            saved = await self.host.recall(MEMORY, "departments")
            self._departments = json.loads(saved) if saved else None
        return self._departments or []

    # --- router -> staff -------------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> SendResult:
        item = message.desk or Alert(message.text)
        key = message.idempotency_key
        try:
            channel = await self._channel_id(message.recipient)
            match item:
                case Card():
                    ts = await self._send_card(channel, item, message.text, key)
                case ThreadLine():
                    ts = await self._send_thread(channel, item, key)
                case DeliveryMark():
                    ts = await self._send_mark(channel, item, key)
                case ReviewPost():
                    ts = await self._post(channel, message.text, review_blocks(item), key=key)
                case Alert():
                    ts = await self._post(channel, item.text or message.text, key=key)
                case CardRequest():  # the router fills a card before it is sent: never empty here
                    raise PermanentSendError(f"card of {item.reference} was not filled before sending")
        except SlackApiError as exc:
            raise _send_error(exc) from exc
        except (SlackClientError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise TransientSendError(f"Slack unreachable: {_describe(exc)}") from exc
        return SendResult(provider_message_id=ts)

    async def find_sent(self, message: OutboundMessage, *, since: datetime) -> SendResult | None:
        """Look for our message carrying `message`'s key in its metadata where `send` posts it (the
        card's thread for a thread line or a mark's note, else the channel), from `since` (less
        `_CLOCK_SKEW_SECONDS`) on; a card found is recorded as `send` records it (the crash may have
        come between the post and that). What `send` does without posting is not looked for, because
        doing it again changes nothing: a card updated in place (chat.update, no new message), a mark's
        reaction (`already_reacted` counts as done). For those None, "send again", is the right answer."""
        item = message.desk or Alert(message.text)
        if isinstance(item, DeliveryMark) and item.delivered:
            return None  # a reaction alone
        oldest = as_utc(since).timestamp() - _CLOCK_SKEW_SECONDS
        try:
            channel = await self._channel_id(message.recipient)
            thread_ts = None
            if isinstance(item, ThreadLine | DeliveryMark):  # posted in the card's thread
                thread_ts = await self._card_ts(channel, item.reference)
            ts = await self._find_posted(channel, message.idempotency_key, oldest, thread_ts)
            if ts is not None and isinstance(item, Card):
                await self._record_card(channel, item.reference, ts)
        except SlackApiError as exc:
            raise _send_error(exc) from exc
        except (SlackClientError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise TransientSendError(f"Slack unreachable: {_describe(exc)}") from exc
        if ts is None:
            return None
        return SendResult(provider_message_id=item.source if isinstance(item, DeliveryMark) else ts)

    async def _find_posted(self, channel: str, key: str, oldest: float, thread_ts: str | None) -> str | None:
        """The ts of our message with `key` in its metadata, posted after `oldest` in the channel (or
        in the thread under `thread_ts`)."""
        arguments: dict[str, Any] = {
            "channel": channel,
            "oldest": f"{max(0.0, oldest):.6f}",
            "include_all_metadata": True,  # else Slack leaves the event_payload out
            "limit": _HISTORY_PAGE,
        }
        if thread_ts:
            pages = await self.client.conversations_replies(ts=thread_ts, **arguments)
        else:
            pages = await self.client.conversations_history(**arguments)
        async for page in pages:
            for item in page.get("messages") or []:
                metadata = item.get("metadata") or {}
                payload = metadata.get("event_payload") or {}
                if metadata.get("event_type") == EVENT_TYPE and payload.get("key") == key:
                    return str(item["ts"])
        return None

    async def _post(
        self,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
        *,
        key: str,
    ) -> str:
        """Post a message tagged with the outbox row's `key` (see `find_sent`)."""
        answer = await self.client.chat_postMessage(
            channel=channel,
            text=text[:_MAX_TEXT],
            blocks=blocks,
            thread_ts=thread_ts,
            metadata={"event_type": EVENT_TYPE, "event_payload": {"key": key}},
        )
        return str(answer["ts"])

    async def _record_card(self, channel: str, reference: str, ts: str) -> None:
        await self.host.remember(MEMORY, f"thread:{reference}", f"{channel}:{ts}")
        await self.host.remember(MEMORY, f"ts:{channel}:{ts}", reference)

    async def _send_card(self, channel: str, card: Card, fallback: str, key: str) -> str:
        reference = card.reference
        blocks = card_blocks(card, self.config.note_prefix, self.config.public_prefix)
        await self._remember_departments(card.departments)
        where = await self.host.recall(MEMORY, f"thread:{reference}")
        if where:
            card_channel, _, ts = where.partition(":")
            if card_channel == channel:
                try:
                    await self.client.chat_update(channel=channel, ts=ts, text=fallback, blocks=blocks)
                    return ts
                except SlackApiError as exc:
                    if _error_code(exc) != "message_not_found":
                        raise
                    log.warning("slack: the card of %s was deleted; posting a new one", reference)
        ts = await self._post(channel, fallback, blocks, key=key)
        await self._record_card(channel, reference, ts)
        return ts

    async def _remember_departments(self, departments: Sequence[tuple[str, str]]) -> None:
        if not departments:
            return
        listed = [[str(key), str(name)] for key, name in departments]
        if listed != await self._known_departments():
            self._departments = listed
            await self.host.remember(MEMORY, "departments", json.dumps(listed))

    async def _card_ts(self, channel: str, reference: str | None) -> str | None:
        """The ts of the ticket's card in this channel, to thread under."""
        where = await self.host.recall(MEMORY, f"thread:{reference}") if reference else None
        if not where:
            return None
        card_channel, _, ts = where.partition(":")
        return ts if card_channel == channel else None

    async def _send_thread(self, channel: str, line: ThreadLine, key: str) -> str:
        reference = line.reference
        thread_ts = await self._card_ts(channel, reference)
        text = thread_text(line)
        if thread_ts is None:  # no card here (it failed for good): still show the line, with its ticket
            text = f"*{reference}* {text}"
        return await self._post(channel, text, thread_ts=thread_ts, key=key)

    async def _send_mark(self, channel: str, mark: DeliveryMark, key: str) -> str:
        source, delivered = mark.source, mark.delivered
        try:
            await self.client.reactions_add(
                channel=channel, timestamp=source, name="white_check_mark" if delivered else "x"
            )
        except SlackApiError as exc:
            if _error_code(exc) != "already_reacted":  # a retry after the reaction went in
                raise
        if not delivered:
            thread_ts = await self._card_ts(channel, mark.reference)
            detail = _escape(mark.detail or "not delivered")
            await self._post(
                channel, f":x: Not delivered to the citizen: {detail}", thread_ts=thread_ts, key=key
            )
        return source

    async def _channel_id(self, recipient: str) -> str:
        """An inbox as Slack's channel id: "#dept-transport" is looked up (and kept), an id is used as is."""
        if _CHANNEL_ID.match(recipient):
            return recipient
        name = recipient.removeprefix("#")
        if name not in self._channel_ids:
            self._channel_ids = await self._list_channels()
        if name not in self._channel_ids:
            raise PermanentSendError(
                f"channel_not_found: no Slack channel {recipient!r} that the app can see (invite it there)"
            )
        return self._channel_ids[name]

    async def _list_channels(self) -> dict[str, str]:
        found: dict[str, str] = {}
        pages = await self.client.conversations_list(
            types="public_channel,private_channel", exclude_archived=True, limit=200
        )
        async for page in pages:
            for channel in page.get("channels") or []:
                found[str(channel["name"])] = str(channel["id"])
        return found


# --- rendering ---------------------------------------------------------------------------------------


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text or " ", "emoji": True}


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text or " "}


def _escape(text: str) -> str:
    """Citizens' words shown as written: Slack reads <, > and & as markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


_MAX_IMAGES = 5  # image blocks on a card; the rest are named in the photo line


def _photos(photos: Sequence[Any]) -> str | None:
    if not photos:
        return None
    commands = ", ".join(f"`python bot.py tickets media {media_id}`" for media_id in photos)
    return f":frame_with_picture: {len(photos)} photo(s): {commands}"


_BUTTONS = {"claim": ("Claim", "primary"), "resolve": ("Resolve", None), "reassign": ("Reassign", None)}


def card_blocks(
    card: Card, note_prefix: str = "note:", public_prefix: str = "public:"
) -> list[dict[str, Any]]:
    """A ticket's card: what it is, where it came from, who has it, and the buttons that fit its state."""
    reference = card.reference
    header = f"{reference} · {card.status_name or card.status}"
    if card.sensitive:
        header = f"🔒 {header}"
    facts = [
        ("Department", card.department_name or card.department),
        ("From", card.origin),
        ("Language", card.language),
        ("Category", card.category),
        ("Contact", card.contact),
        ("Due", card.due),
        ("Assignee", card.assignee or "nobody yet"),
    ]
    fields = [
        _mrkdwn(_cut(f"*{label}*\n{_escape(str(value))}", _MAX_FIELD)) for label, value in facts if value
    ]
    blocks: list[dict[str, Any]] = [{"type": "header", "text": _plain(_cut(header, 150))}]
    if card.sensitive:
        blocks.append(
            {
                "type": "context",
                "elements": [_mrkdwn(":lock: *Sensitive*: do not share outside this channel.")],
            }
        )
    blocks.append({"type": "section", "fields": fields})
    text = card.text.strip()
    if text:
        quoted = "\n".join(f"> {line}" for line in _escape(text).splitlines())
        blocks.append({"type": "section", "text": _mrkdwn(_cut(quoted, _MAX_SECTION))})
    # Slack fetches each image from our signed, expiring link (router/medialinks.py).
    for n, link in enumerate(card.photo_links[:_MAX_IMAGES], start=1):
        blocks.append({"type": "image", "image_url": link, "alt_text": f"the citizen's photo {n}"})
    photos = _photos(card.photos)
    if photos:
        blocks.append({"type": "context", "elements": [_mrkdwn(_cut(photos, _MAX_FIELD))]})
    buttons = []
    for action in card.actions:
        if action in _BUTTONS:
            label, style = _BUTTONS[action]
            button: dict[str, Any] = {
                "type": "button",
                "action_id": action,
                "text": _plain(label),
                "value": reference,
            }
            if style:
                button["style"] = style
            buttons.append(button)
    if buttons:
        blocks.append({"type": "actions", "block_id": f"card:{reference}", "elements": buttons})
    blocks.append(
        {
            "type": "context",
            "elements": [
                _mrkdwn(
                    "Reply in this thread to answer the citizen; start with "
                    f"`{note_prefix}` for an internal note the citizen never sees, "
                    f"`{public_prefix}` for a note shown on the ticket's public status page."
                )
            ],
        }
    )
    return blocks


def thread_text(line: ThreadLine) -> str:
    author = line.author or "system"
    label = line.author_name or _AUTHORS.get(author, author.title())
    if line.author_name and author in _AUTHORS:
        label = f"{label} ({_AUTHORS[author].lower()})"
    lines = [f"*{_escape(label)}:* {_escape(line.text)}"]
    photos = _photos(line.photos)
    if photos:
        lines.append(photos)
    if line.mention:
        lines[0] = f"<@{line.mention}> {lines[0]}"
    return _cut("\n".join(lines), _MAX_TEXT)


def review_blocks(post: ReviewPost) -> list[dict[str, Any]]:
    """A review item: the question, the likely answers each with Send, and Edit for writing one."""
    reference = post.reference
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _plain(_cut(f"Review {reference}", 150))},
        {
            "type": "section",
            "text": _mrkdwn(_cut(f"> {_escape(post.question)}", _MAX_SECTION)),
        },
    ]
    about = [
        f"Language: {post.language}" if post.language else "",
        f"Due: {post.due}" if post.due else "",
    ]
    if any(about):
        blocks.append({"type": "context", "elements": [_mrkdwn(" · ".join(a for a in about if a))]})
    for i, suggestion in enumerate(post.suggestions[:_MAX_SUGGESTIONS]):
        entry, score = suggestion.entry, suggestion.score
        blocks.append(
            {
                "type": "section",
                "block_id": f"suggestion:{i}",
                # plain text, so Edit can prefill it exactly as written
                "text": {
                    "type": "plain_text",
                    "text": _cut(suggestion.answer or " ", _MAX_SECTION),
                },
            }
        )
        shown = f"{entry} ({score:.2f})" if isinstance(score, int | float) else entry
        blocks.append(
            {
                "type": "actions",
                "block_id": f"review:{reference}:{i}",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "review_send",
                        "text": _plain(_cut(f"Send {shown}", 75)),
                        "value": entry,
                        "style": "primary",
                    }
                ],
            }
        )
    blocks.append(
        {
            "type": "actions",
            "block_id": f"review:{reference}:edit",
            "elements": [
                {
                    "type": "button",
                    "action_id": "review_edit",
                    "text": _plain("Edit and send"),
                    "value": reference,
                }
            ],
        }
    )
    return blocks


def _text_input(
    block_id: str, label: str, *, optional: bool = False, multiline: bool = False, initial: str | None = None
) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "plain_text_input", "action_id": "value", "multiline": multiline}
    if initial:
        element["initial_value"] = initial[:3000]
    return {
        "type": "input",
        "block_id": block_id,
        "optional": optional,
        "label": _plain(label),
        "element": element,
    }


def _top_suggestion(message: Any) -> str | None:
    """The first suggested answer on the review item that was clicked (its message comes along)."""
    for block in (message or {}).get("blocks") or []:
        if block.get("block_id") == "suggestion:0":
            return str((block.get("text") or {}).get("text") or "") or None
    return None


def _state_value(values: dict[str, Any], block_id: str) -> str:
    entry = (values.get(block_id) or {}).get("value") or {}
    selected = entry.get("selected_option")
    if isinstance(selected, dict):
        return str(selected.get("value") or "")
    return str(entry.get("value") or "").strip()


def _reference(action_id: str, value: str, block_id: str) -> str | None:
    """The ticket a click is about: the button's value on a card, the block id on a review item."""
    if action_id == "review_send":
        parts = block_id.split(":")
        return parts[1] if len(parts) >= 2 and parts[0] == "review" else None
    return value or None


# --- errors ------------------------------------------------------------------------------------------


def _error_code(exc: SlackApiError) -> str:
    data = exc.response.data if exc.response is not None else None
    return str(data.get("error") or "") if isinstance(data, dict) else ""


def _header(exc: SlackApiError, name: str) -> str | None:
    headers = exc.response.headers if exc.response is not None else {}
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            return str(value[0] if isinstance(value, list) else value)
    return None


def _send_error(exc: SlackApiError) -> TransientSendError | PermanentSendError:
    """Slack's answer as ours: will a retry help?"""
    status = exc.response.status_code if exc.response is not None else 0
    code = _error_code(exc)
    if status == 429 or code == "ratelimited":
        wait = _header(exc, "Retry-After")
        retry_after = float(wait) if wait and wait.replace(".", "", 1).isdigit() else None
        return TransientSendError(f"Slack rate limit ({code or status})", retry_after=retry_after)
    if status >= 500 or code in _TRANSIENT_ERRORS:
        return TransientSendError(f"Slack failed: {code or status}")
    if code in _AUTH_ERRORS:
        log.error("slack: the bot token was rejected (%s): fix SLACK_BOT_TOKEN", code)
    # channel_not_found, not_in_channel, invalid_blocks, msg_too_long, is_archived, ...
    return PermanentSendError(f"Slack refused: {code or status}")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SlackApiError):
        return _error_code(exc) or f"HTTP {exc.response.status_code if exc.response is not None else '?'}"
    return f"{type(exc).__name__}: {exc}"


def _error(status: int, reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=status)


__all__ = ["SlackChannel", "SlackConfig", "card_blocks", "review_blocks", "thread_text"]
