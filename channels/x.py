"""X (Twitter): mentions and direct messages in, public replies and DMs out, through tweepy's
asynchronous API v2 client (`AsyncClient`, OAuth 1.0a user context).

Two ways in:
- polling (default): one task reads new mentions (`since_id` kept with the host), another new DMs
  (the DM lookup has no `since_id`: it pages newest first down to the last event seen). A first run
  with no cursor takes the newest page only: the bot does not replay the account's history.
- webhook (`mode: webhook`): X's Account Activity API pushes both to /webhooks/x (a CRC challenge on
  GET, an HMAC-SHA256 signature on every POST).

A mention is public: the router answers it with one public reply (an `OutboundMessage` whose
`reply_to` is the Tweet id) and says everything else by DM (no `reply_to`; the recipient is the
user id). Inbound ids are "tweet-<id>" and "dm-<id>" in both modes, so switching modes repeats nothing.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import re
import time
import unicodedata
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any, ClassVar

import aiohttp
import tweepy
from aiohttp import hdrs, web
from tweepy.asynchronous import AsyncClient
from yarl import URL

from channels.base import (
    BadRequest,
    ChannelHost,
    InboundMessage,
    OutboundMessage,
    PermanentSendError,
    SendResult,
    TransientSendError,
    WebhookChannel,
    buttons_as_text,
)
from channels.splitting import split_text
from channels.x_config import X_API, XConfig

log = logging.getLogger("channels.x")

TWEET_MAX_WEIGHT = 280
DM_MAX_CHARS = 10_000
SIGNATURE_HEADER = "x-twitter-webhooks-signature"
RESET_FALLBACK_SECONDS = 60.0  # a 429 without x-rate-limit-reset (X always sends it)
_CREDENTIALS = (
    "check X_CONSUMER_KEY, X_CONSUMER_SECRET, X_ACCESS_TOKEN and X_ACCESS_TOKEN_SECRET, "
    "and that the app has Read and write and Direct message permissions"
)


def api_session(api_base_url: str, *, timeout: float) -> aiohttp.ClientSession:
    """A session for `AsyncClient.session` that sends tweepy's requests to `api_base_url`.

    tweepy hard-codes https://api.twitter.com; an aiohttp client middleware swaps the origin and
    keeps path and query byte for byte, so the OAuth 1.0a signature (made over the api.twitter.com
    URL) is untouched. No SDK class is subclassed."""
    base = URL(api_base_url)
    middlewares: tuple[aiohttp.ClientMiddlewareType, ...] = ()
    if str(base).rstrip("/") != X_API:
        prefix = str(base).rstrip("/")

        async def to_base(
            request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
        ) -> aiohttp.ClientResponse:
            if str(request.url.origin()) == X_API:
                request.url = URL(prefix + request.url.raw_path_qs, encoded=True)
                host = request.url.host_port_subcomponent
                if host is not None:
                    request.headers[hdrs.HOST] = host
            return await handler(request)

        middlewares = (to_base,)
    return aiohttp.ClientSession(middlewares=middlewares, timeout=aiohttp.ClientTimeout(total=timeout))


# -- text rules ------------------------------------------------------------------------------------

_LEADING_HANDLES = re.compile(r"^(?:\s*@[A-Za-z0-9_]{1,15}(?![A-Za-z0-9_]))+\s*")
# twitter-text v3: these code points weigh 1, all others (Korean, CJK, emoji) 2; a URL weighs 23.
_LIGHT = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))
_URL = re.compile(r"https?://\S+", re.IGNORECASE)
_URL_WEIGHT = 23
# X's crc_tokens are short and URL-safe. Refusing anything else (braces, quotes) means the CRC
# answer can never be used to obtain our signature over a forged JSON event body.
_CRC_TOKEN = re.compile(r"[A-Za-z0-9+/=_.:~-]{1,256}")


def without_leading_handles(text: str) -> str:
    """A mention's words: "@city @kim 가로등이 꺼졌어요" -> "가로등이 꺼졌어요"."""
    return _LEADING_HANDLES.sub("", text, count=1).strip()


def tweet_weight(text: str) -> int:
    """The length X counts against 280 (NFC code points; Korean counts 2, a URL 23)."""
    pieces = _URL.split(unicodedata.normalize("NFC", text))
    weight = _URL_WEIGHT * (len(pieces) - 1)
    for piece in pieces:
        weight += sum(1 if any(lo <= ord(c) <= hi for lo, hi in _LIGHT) else 2 for c in piece)
    return weight


def fit_tweet(text: str, limit: int = TWEET_MAX_WEIGHT) -> str:
    """`text`, cut with an ellipsis when X would refuse it as too long."""
    text = unicodedata.normalize("NFC", text.strip())
    if tweet_weight(text) <= limit:
        return text
    low, high = 0, len(text)  # the longest prefix that fits with "…" (weight only grows with length)
    while low < high:
        middle = (low + high + 1) // 2
        if tweet_weight(text[:middle].rstrip() + "…") <= limit:
            low = middle
        else:
            high = middle - 1
    return text[:low].rstrip() + "…"


def crc_response_token(consumer_secret: str, crc_token: str) -> str:
    return signature_of(consumer_secret, crc_token.encode())


def signature_of(consumer_secret: str, body: bytes) -> str:
    """Account Activity: "sha256=" + base64(HMAC-SHA256(consumer secret, data))."""
    digest = hmac.new(consumer_secret.encode(), body, hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(digest).decode()


def _language(code: object) -> str | None:
    # X says "und", "qme", "zxx"... when it cannot tell; only a two-letter code is a hint.
    base = code.split("-")[0] if isinstance(code, str) else ""
    return base if re.fullmatch(r"[a-z]{2}", base) else None


def _v2_time(value: object) -> datetime:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return datetime.now(UTC)


def _millis_time(value: object) -> datetime:
    if isinstance(value, str | int) and str(value).isdigit():
        return datetime.fromtimestamp(int(value) / 1000, UTC)
    return datetime.now(UTC)


# -- the channel -------------------------------------------------------------------------------------


class XChannel(WebhookChannel):
    name: ClassVar[str] = "x"
    # No `find_sent`: nothing we send carries a key X keeps, and reading back our tweets and DM events
    # to match texts is billed per call and tightly limited; a reply handed over just before a crash
    # may arrive twice.
    can_find_sent: ClassVar[bool] = False
    max_body_bytes: ClassVar[int] = 256 * 1024  # Account Activity batches events with whole user objects

    def __init__(self, config: XConfig, *, public_url: str) -> None:
        super().__init__(config.rate_limit.to_rate_limit())
        self.config = config
        self.public_url = public_url.rstrip("/")
        self._client: Any = None  # tweepy's AsyncClient, made inside the event loop
        self._me_id: str | None = None
        self._pollers: list[asyncio.Task[None]] = []
        self._handing_over: set[asyncio.Task[Any]] = set()
        self._stopping = asyncio.Event()
        self._closed = False  # after stop(): no new connections (a late send must not leak one)
        # Keys whose last attempt ended without an answer: X may have posted the Tweet anyway.
        self._uncertain: set[str] = set()

    # -- lifecycle --------------------------------------------------------------------------------

    def routes(self) -> list[web.AbstractRouteDef]:
        if self.config.mode != "webhook":
            return []
        return [web.get("/webhooks/x", self.handle_crc), web.post("/webhooks/x", self.handle_webhook)]

    async def start(self, host: ChannelHost) -> None:
        await super().start(host)
        self._stopping.clear()
        self._closed = False
        if self.config.mode == "polling":
            # Never raises when X is down: the loops log and retry on their own.
            self._pollers = [
                asyncio.create_task(
                    self._poll("mentions", self._poll_mentions, self.config.mentions_poll_seconds),
                    name="x-mentions",
                )
            ]
            if self.config.poll_direct_messages:
                self._pollers.append(
                    asyncio.create_task(
                        self._poll("direct messages", self._poll_dms, self.config.dm_poll_seconds),
                        name="x-dms",
                    )
                )

    async def stop(self) -> None:
        self._stopping.set()
        self._closed = True
        for task in self._pollers:
            # A poller handing messages to the host finishes the one in hand and stops by itself
            # (no transaction is cut); one waiting on X or asleep is simply cancelled.
            if task not in self._handing_over:
                task.cancel()
        await asyncio.gather(*self._pollers, return_exceptions=True)
        self._pollers = []
        if self._client is not None:
            await self._client.session.close()
            self._client = None

    def _api(self) -> Any:
        if self._closed:
            raise TransientSendError("the X channel is stopped")
        if self._client is None:
            self._client = AsyncClient(
                consumer_key=self.config.consumer_key,
                consumer_secret=self.config.consumer_secret,
                access_token=self.config.access_token,
                access_token_secret=self.config.access_token_secret,
                return_type=dict,  # plain JSON: ids stay strings, as X sends them
            )
            self._client.session = api_session(
                self.config.api_base_url, timeout=self.config.request_timeout_seconds
            )
        return self._client

    # -- polling ----------------------------------------------------------------------------------

    async def _poll(self, what: str, once: Callable[[], Awaitable[None]], every: float) -> None:
        """Run `once` every `every` seconds until stopped; a failure never ends the loop."""
        failures = 0
        while not self._stopping.is_set():
            try:
                # Of several instances only one polls: each call is paid for.
                if await self.host.lead(f"x:{what}"):
                    await once()
            except tweepy.errors.TooManyRequests as exc:
                delay = max(every, self._until_reset(exc.reset_time))
                log.warning("x: %s rate-limited by X; next poll in %.0f s", what, delay)
            except Exception as exc:
                failures += 1
                backoff = self.config.error_backoff_seconds * 2 ** min(failures - 1, 30)
                delay = min(self.config.max_backoff_seconds, backoff)
                if isinstance(exc, tweepy.errors.Unauthorized):
                    log.error("x: X refused our credentials reading %s: %s", what, _CREDENTIALS)
                else:
                    log.warning(
                        "x: reading %s failed (%s: %s); next try in %.1f s",
                        what,
                        type(exc).__name__,
                        exc,
                        delay,
                    )
            else:
                failures = 0
                delay = every
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)

    def _until_reset(self, reset_time: int | None) -> float:
        if reset_time is None:
            return RESET_FALLBACK_SECONDS
        return max(0.0, reset_time - time.time()) + self.config.rate_limit_margin_seconds

    @contextlib.contextmanager
    def _handing(self) -> Iterator[None]:
        task = asyncio.current_task()
        assert task is not None
        self._handing_over.add(task)
        try:
            yield
        finally:
            self._handing_over.discard(task)

    async def _me(self) -> str:
        if self._me_id is None:
            answer = await self._api().get_me(user_auth=True)
            self._me_id = str(answer["data"]["id"])
        return self._me_id

    async def _poll_mentions(self) -> None:
        me = await self._me()
        since = await self.host.recall(self.name, "mentions")
        tweets: list[dict[str, Any]] = []
        users: dict[str, dict[str, Any]] = {}
        token: str | None = None
        while True:
            page = await self._api().get_users_mentions(
                me,
                since_id=since,
                pagination_token=token,
                max_results=self.config.page_size,
                expansions="author_id",
                tweet_fields="author_id,created_at,lang",
                user_fields="username",
                user_auth=True,
            )
            tweets.extend(page.get("data", []))
            users.update({u["id"]: u for u in page.get("includes", {}).get("users", [])})
            token = page.get("meta", {}).get("next_token")
            if since is None or token is None:  # no cursor yet: the newest page only
                break
        with self._handing():
            for tweet in sorted(tweets, key=lambda t: int(t["id"])):
                if self._stopping.is_set():
                    return
                author = str(tweet.get("author_id", ""))
                if author and author != me:  # the city's own Tweets mentioning itself are not contacts
                    await self.host.intake(self._mention(tweet, users.get(author)))
                await self.host.remember(self.name, "mentions", tweet["id"])

    def _mention(self, tweet: dict[str, Any], user: dict[str, Any] | None) -> InboundMessage:
        text = str(tweet["text"])
        return InboundMessage(
            channel=self.name,
            sender=str(tweet["author_id"]),
            text=without_leading_handles(text) or text,
            provider_message_id=f"tweet-{tweet['id']}",
            received_at=_v2_time(tweet.get("created_at")),
            language_hint=_language(tweet.get("lang")),
            sender_name=f"@{user['username']}" if user else None,
            reply_to=str(tweet["id"]),
            raw=tweet,
            public=True,
        )

    async def _poll_dms(self) -> None:
        me = await self._me()
        last = await self.host.recall(self.name, "dms")
        events: list[dict[str, Any]] = []
        users: dict[str, dict[str, Any]] = {}
        token: str | None = None
        while True:
            page = await self._api().get_direct_message_events(
                event_types="MessageCreate",
                dm_event_fields="id,text,event_type,sender_id,created_at,dm_conversation_id",
                expansions="sender_id",
                user_fields="username",
                max_results=self.config.page_size,
                pagination_token=token,
                user_auth=True,
            )
            batch = page.get("data", [])
            fresh = [e for e in batch if last is None or int(e["id"]) > int(last)]
            events.extend(fresh)
            users.update({u["id"]: u for u in page.get("includes", {}).get("users", [])})
            token = page.get("meta", {}).get("next_token")
            # Newest first: stop at the last event seen, or after one page on a first run.
            if last is None or token is None or len(fresh) < len(batch):
                break
        with self._handing():
            for event in sorted(events, key=lambda e: int(e["id"])):
                if self._stopping.is_set():
                    return
                sender = str(event.get("sender_id", ""))
                if sender and sender != me and event.get("event_type", "MessageCreate") == "MessageCreate":
                    await self.host.intake(
                        self._dm(
                            event_id=str(event["id"]),
                            sender=sender,
                            text=str(event.get("text", "")),
                            username=(users.get(sender) or {}).get("username"),
                            at=_v2_time(event.get("created_at")),
                            raw=event,
                        )
                    )
                await self.host.remember(self.name, "dms", event["id"])

    def _dm(
        self, *, event_id: str, sender: str, text: str, username: object, at: datetime, raw: dict[str, Any]
    ) -> InboundMessage:
        return InboundMessage(
            channel=self.name,
            sender=sender,
            text=text,
            provider_message_id=f"dm-{event_id}",
            received_at=at,
            sender_name=f"@{username}" if isinstance(username, str) and username else None,
            raw=raw,
        )

    # -- sending ----------------------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> SendResult:
        if not message.recipient.isdigit():
            raise PermanentSendError(f"an X recipient is a numeric user id, not {message.recipient!r}")
        key = message.idempotency_key
        try:
            if message.reply_to:
                answer = await self._api().create_tweet(
                    text=fit_tweet(message.text), in_reply_to_tweet_id=message.reply_to, user_auth=True
                )
                result = SendResult(provider_message_id=f"tweet-{answer['data']['id']}")
            else:
                event_id = ""
                text = buttons_as_text(message.text, message.buttons)
                for part in split_text(text, DM_MAX_CHARS) or [text]:
                    answer = await self._api().create_direct_message(
                        participant_id=message.recipient, text=part, user_auth=True
                    )
                    event_id = str(answer["data"]["dm_event_id"])
                result = SendResult(provider_message_id=f"dm-{event_id}")
        except tweepy.errors.TooManyRequests as exc:
            wait = self._until_reset(exc.reset_time)
            raise TransientSendError(f"X rate limit: {exc}", retry_after=wait) from exc
        except tweepy.errors.Unauthorized as exc:
            log.error("x: X refused our credentials sending %s: %s", key, _CREDENTIALS)
            raise PermanentSendError(f"X refused the credentials: {exc}") from exc
        except tweepy.errors.Forbidden as exc:
            if message.reply_to and key in self._uncertain and _duplicate(exc):
                # The attempt that timed out had posted it: this is the same reply, now on X.
                self._uncertain.discard(key)
                return SendResult()
            self._uncertain.discard(key)
            raise PermanentSendError(f"X refused it: {exc}") from exc
        except tweepy.errors.TwitterServerError as exc:
            self._uncertain.add(key)
            raise TransientSendError(f"X failed: {exc}") from exc
        except tweepy.errors.HTTPException as exc:  # 400, 404 and other refusals
            self._uncertain.discard(key)
            raise PermanentSendError(f"X refused it: {exc}") from exc
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            # No (readable) answer: X may or may not have taken it.
            self._uncertain.add(key)
            raise TransientSendError(f"X unreachable: {type(exc).__name__}: {exc}") from exc
        self._uncertain.discard(key)
        return result

    # -- webhook (Account Activity API) -----------------------------------------------------------

    async def handle_crc(self, request: web.Request) -> web.Response:
        """X's challenge when the webhook is registered and then hourly."""
        token = request.query.get("crc_token", "")
        if not _CRC_TOKEN.fullmatch(token):
            return web.json_response({"error": "crc_token missing or malformed"}, status=400)
        return web.json_response({"response_token": crc_response_token(self.config.consumer_secret, token)})

    def verify(self, request: web.Request, body: bytes) -> bool:
        given = request.headers.get(SIGNATURE_HEADER, "")
        expected = signature_of(self.config.consumer_secret, body)
        return hmac.compare_digest(given.encode(), expected.encode())

    def parse(self, request: web.Request, body: bytes) -> list[InboundMessage]:
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest("the body is not JSON") from exc
        if not isinstance(payload, dict) or not payload.get("for_user_id"):
            raise BadRequest("not an Account Activity event (no for_user_id)")
        me = str(payload["for_user_id"])
        messages: list[InboundMessage] = []
        try:
            for tweet in payload.get("tweet_create_events", []):
                mention = self._activity_mention(tweet, me)
                if mention is not None:
                    messages.append(mention)
            users = payload.get("users", {})
            for event in payload.get("direct_message_events", []):
                dm = self._activity_dm(event, me, users)
                if dm is not None:
                    messages.append(dm)
        except (KeyError, TypeError, AttributeError) as exc:
            raise BadRequest(f"an event without the expected fields ({exc})") from exc
        return messages

    def _activity_mention(self, tweet: dict[str, Any], me: str) -> InboundMessage | None:
        user = tweet["user"]
        author = str(user["id_str"])
        if author == me or "retweeted_status" in tweet:  # our own Tweet, or a retweet of one we had
            return None
        # A text over 140 characters arrives cut, the whole of it in extended_tweet.
        full = tweet.get("extended_tweet") if tweet.get("truncated") else None
        text = str(full["full_text"] if full else tweet["text"])
        entities = (full or tweet).get("entities") or {}
        mentioned = any(str(m.get("id_str")) == me for m in entities.get("user_mentions", []))
        if not mentioned and str(tweet.get("in_reply_to_user_id_str")) != me:
            return None  # the city follows the author, or another event not addressed to it
        return InboundMessage(
            channel=self.name,
            sender=author,
            text=without_leading_handles(text) or text,
            provider_message_id=f"tweet-{tweet['id_str']}",
            received_at=_millis_time(tweet.get("timestamp_ms")),
            language_hint=_language(tweet.get("lang")),
            sender_name=f"@{user['screen_name']}" if user.get("screen_name") else None,
            reply_to=str(tweet["id_str"]),
            raw=tweet,
            public=True,
        )

    def _activity_dm(self, event: dict[str, Any], me: str, users: dict[str, Any]) -> InboundMessage | None:
        if event.get("type") != "message_create":
            return None
        create = event["message_create"]
        sender = str(create["sender_id"])
        if sender == me:  # what the city sent (the bot's own DMs come back as events too)
            return None
        return self._dm(
            event_id=str(event["id"]),
            sender=sender,
            text=str(create["message_data"]["text"]),
            username=(users.get(sender) or {}).get("screen_name"),
            at=_millis_time(event.get("created_timestamp")),
            raw=event,
        )


def _duplicate(exc: tweepy.errors.HTTPException) -> bool:
    return any("duplicate" in str(m).lower() for m in exc.api_messages)
