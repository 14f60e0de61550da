"""A fake X (Twitter) API v2, the part the X channel uses, played by a real local aiohttp server.

The real tweepy `AsyncClient` talks to it through `channels.x.api_session` (tweepy hard-codes
https://api.twitter.com). Requests are checked as X checks them: OAuth 1.0a user context (HMAC-SHA1
signature, timestamp, nonce), parameter ranges, the 280 weighted-character limit, duplicate Tweets,
closed DMs, per-endpoint rate-limit windows with the `x-rate-limit-*` headers. Faults on demand:
`fail_next`, `down` (connections dropped), `hang` (no answer until cleared).

Also here: the Account Activity API helpers (CRC answer, body signature, v1.1 event payloads) that a
test uses to play X calling the bot's webhook.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import re
import time
import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any
from urllib.parse import quote, unquote

from aiohttp import hdrs, web
from yarl import URL

TWEEPY_ORIGIN = URL("https://api.twitter.com")  # what tweepy signs, whatever host it is sent to
TWITTER_EPOCH_MS = 1288834974657  # the snowflake epoch
TWEET_MAX_WEIGHT = 280
DM_MAX_CHARS = 10_000
CLOCK_SKEW_SECONDS = 300  # X refuses an OAuth timestamp this far from its clock

# Per-endpoint (limit, window seconds) as X documents them for a user-context app.
DEFAULT_LIMITS: dict[str, tuple[int, float]] = {
    "me": (75, 900),
    "mentions": (450, 900),
    "tweets": (100, 900),
    "dm_events": (300, 900),
    "dm_send": (200, 900),
}

# ---------------------------------------------------------------------------------------------
# What the fake records


@dataclass
class SeenRequest:
    method: str
    path: str
    query: dict[str, str]
    status: int | None = None  # None while the answer is pending (a hang); 0: the connection was dropped
    at: float = field(default_factory=time.time)  # wall clock, comparable with x-rate-limit-reset


@dataclass(frozen=True)
class PostedTweet:
    id: str
    text: str
    in_reply_to: str | None
    at: float  # time.monotonic() when X accepted it


@dataclass(frozen=True)
class SentDM:
    event_id: str
    recipient_id: str
    text: str
    at: float


@dataclass
class _Tweet:
    id: str
    text: str
    author_id: str
    lang: str
    created_at: datetime
    in_reply_to: str | None = None


@dataclass
class _DMEvent:
    id: str
    sender_id: str
    recipient_id: str
    text: str
    created_at: datetime


@dataclass
class _Window:
    started: float  # wall clock, as x-rate-limit-reset is epoch seconds
    used: int = 0


@dataclass
class _Route:
    method: str
    path: str
    limit_key: str
    app_auth_ok: bool  # also open to an app-only Bearer token (else user context only)
    handler: Callable[[web.Request], Awaitable[web.Response]]
    seen: list[SeenRequest] = field(default_factory=list)


class FakeX:
    """`async with FakeX(consumer_secret=..., me_id="100", me_username="city") as fake:` then point
    tweepy at `fake.base_url` with `api_session`; `fake.client_kwargs` are the credentials it accepts."""

    def __init__(
        self,
        *,
        consumer_secret: str,
        me_id: str = "100",
        me_username: str = "city",
        me_name: str = "City Hall",
        consumer_key: str = "fake-consumer-key",
        access_token: str | None = None,
        access_token_secret: str = "fake-access-token-secret",
        bearer_token: str | None = None,
    ) -> None:
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        # X's access tokens start with the user id; tweepy relies on that for some endpoints.
        self.access_token = access_token or f"{me_id}-fakeaccesstoken"
        self.access_token_secret = access_token_secret
        self.bearer_token = bearer_token
        self.me_id = me_id
        self.me_username = me_username
        self.limits: dict[str, tuple[int, float]] = dict(DEFAULT_LIMITS)
        self.dm_closed: set[str] = set()
        self.down = False  # every connection is dropped before an answer
        self.tweets: list[PostedTweet] = []
        self.dms: list[SentDM] = []
        self.requests: list[SeenRequest] = []
        self._users: dict[str, tuple[str, str]] = {me_id: (me_username, me_name)}  # id -> (username, name)
        self._timeline: list[_Tweet] = []
        self._dm_events: list[_DMEvent] = []
        self._windows: dict[str, _Window] = {}
        self._failures: list[tuple[str | None, int]] = []  # (endpoint or None for any, status)
        self._nonces: set[tuple[str, str]] = set()
        self._page_tokens: dict[str, str] = {}  # opaque next_token -> the id the next page is below
        self._last_id = 0
        self._released = asyncio.Event()
        self._released.set()
        self._route_table = self._routes()
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # -- lifecycle ------------------------------------------------------------------------------

    async def __aenter__(self) -> FakeX:
        app = web.Application(middlewares=[_json_errors])
        for route in self._route_table:
            app.router.add_route(route.method, route.path, self._guarded(route))
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.hang = False
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def client_kwargs(self) -> dict[str, str]:
        """The OAuth 1.0a user-context credentials this fake accepts, as AsyncClient takes them."""
        return {
            "consumer_key": self.consumer_key,
            "consumer_secret": self.consumer_secret,
            "access_token": self.access_token,
            "access_token_secret": self.access_token_secret,
        }

    # -- faults ---------------------------------------------------------------------------------

    def fail_next(self, n: int, status: int = 503, *, endpoint: str | None = None) -> None:
        """The next `n` requests get `status` with X's JSON error body: to any endpoint, or only to
        `endpoint` ("me", "mentions", "tweets", "dm_events", "dm_send")."""
        self._failures.extend([(endpoint, status)] * n)

    @property
    def hang(self) -> bool:
        return not self._released.is_set()

    @hang.setter
    def hang(self, value: bool) -> None:
        """While set, requests are held without an answer; clearing it lets them through."""
        if value:
            self._released.clear()
        else:
            self._released.set()

    # -- builders -------------------------------------------------------------------------------

    def next_id(self) -> str:
        """A snowflake id: time-ordered like X's, strictly increasing within this fake."""
        candidate = (int(time.time() * 1000) - TWITTER_EPOCH_MS) << 22
        self._last_id = max(candidate, self._last_id + 1)
        return str(self._last_id)

    def add_user(self, user_id: str, username: str, name: str | None = None) -> None:
        self._users[user_id] = (username, name or username)

    def add_mention(
        self,
        author_id: str,
        username: str,
        text: str,
        *,
        lang: str = "ko",
        in_reply_to: str | None = None,
    ) -> str:
        """A Tweet by `author_id` that mentions the city; its text must contain @me_username."""
        if not _mentions(text, self.me_username):
            raise ValueError(f"a mention's text must contain @{self.me_username}: {text!r}")
        self.add_user(author_id, username)
        tweet = _Tweet(self.next_id(), text, author_id, lang, datetime.now(UTC), in_reply_to)
        self._timeline.append(tweet)
        return tweet.id

    def add_dm(self, sender_id: str, text: str, *, username: str | None = None) -> str:
        """A direct message from `sender_id` to the city."""
        if username is not None or sender_id not in self._users:
            self.add_user(sender_id, username or f"user{sender_id}")
        event = _DMEvent(self.next_id(), sender_id, self.me_id, text, datetime.now(UTC))
        self._dm_events.append(event)
        return event.id

    def seen(self, limit_key: str) -> list[SeenRequest]:
        """The requests one endpoint received ("me", "mentions", "tweets", "dm_events", "dm_send")."""
        return next(r.seen for r in self._route_table if r.limit_key == limit_key)

    # -- the server -----------------------------------------------------------------------------

    def _routes(self) -> list[_Route]:
        return [
            _Route("GET", "/2/users/me", "me", False, self._get_me),
            _Route("GET", "/2/users/{id}/mentions", "mentions", True, self._get_mentions),
            _Route("POST", "/2/tweets", "tweets", False, self._post_tweet),
            _Route("GET", "/2/dm_events", "dm_events", False, self._get_dm_events),
            _Route(
                "POST", "/2/dm_conversations/with/{participant_id}/messages", "dm_send", False, self._post_dm
            ),
        ]

    def _guarded(self, route: _Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """Faults, authentication and rate limits in X's order, then the endpoint itself."""

        async def handle(request: web.Request) -> web.StreamResponse:
            seen = SeenRequest(request.method, request.path, dict(request.query))
            self.requests.append(seen)
            route.seen.append(seen)
            response = await self._answer(route, request)
            seen.status = (
                0 if request.transport is None or request.transport.is_closing() else response.status
            )
            return response

        return handle

    async def _answer(self, route: _Route, request: web.Request) -> web.StreamResponse:
        await self._released.wait()
        if self.down:
            if request.transport is not None:
                request.transport.abort()  # the client sees the connection drop, not an HTTP answer
            return web.Response(status=503)
        failure = next((f for f in self._failures if f[0] in (None, route.limit_key)), None)
        if failure is not None:
            self._failures.remove(failure)
            return _problem(failure[1], _REASONS.get(failure[1], "Error"))
        problem = self._authenticate(request, allow_app=route.app_auth_ok)
        if problem is not None:
            return problem
        headers, allowed = self._count(route.limit_key)
        if not allowed:
            response = _problem(429, "Too Many Requests")
        else:
            try:
                response = await route.handler(request)
            except _Invalid as exc:
                response = exc.response
        response.headers.update(headers)
        return response

    def _count(self, key: str) -> tuple[dict[str, str], bool]:
        limit, window = self.limits[key]
        now = time.time()
        current = self._windows.get(key)
        if current is None or now >= current.started + window:
            current = self._windows[key] = _Window(started=now)
        allowed = current.used < limit
        if allowed:
            current.used += 1
        reset = int(-(-(current.started + window) // 1))  # epoch seconds, rounded up as X does
        headers = {
            "x-rate-limit-limit": str(limit),
            "x-rate-limit-remaining": str(max(0, limit - current.used)),
            "x-rate-limit-reset": str(reset),
        }
        return headers, allowed

    # -- OAuth 1.0a (RFC 5849, HMAC-SHA1), checked independently of the oauthlib that signs ------

    def _authenticate(self, request: web.Request, *, allow_app: bool) -> web.Response | None:
        header = request.headers.get(hdrs.AUTHORIZATION, "")
        if header.startswith("Bearer "):
            if self.bearer_token is None or not hmac.compare_digest(header[7:], self.bearer_token):
                return _problem(401, "Unauthorized")
            if not allow_app:
                return _unsupported_authentication()
            return None
        if not header.startswith("OAuth "):
            return _problem(401, "Unauthorized")
        params = {k: unquote(v) for k, v in re.findall(r'(\w+)="([^"]*)"', header[6:])}
        required = (
            "oauth_consumer_key",
            "oauth_nonce",
            "oauth_signature",
            "oauth_signature_method",
            "oauth_timestamp",
            "oauth_token",
        )
        if any(name not in params for name in required) or params["oauth_signature_method"] != "HMAC-SHA1":
            return _problem(401, "Unauthorized")
        if params.get("oauth_version", "1.0") != "1.0":
            return _problem(401, "Unauthorized")
        if params["oauth_consumer_key"] != self.consumer_key or params["oauth_token"] != self.access_token:
            return _problem(401, "Unauthorized")
        try:
            timestamp = int(params["oauth_timestamp"])
        except ValueError:
            return _problem(401, "Unauthorized")
        if abs(time.time() - timestamp) > CLOCK_SKEW_SECONDS:
            return _problem(401, "Unauthorized")
        expected = oauth1_signature(
            request.method,
            str(TWEEPY_ORIGIN) + request.rel_url.raw_path,  # the URL tweepy signed, before api_session
            [*request.query.items(), *((k, v) for k, v in params.items() if k != "oauth_signature")],
            self.consumer_secret,
            self.access_token_secret,
        )
        if not hmac.compare_digest(expected, params["oauth_signature"]):
            return _problem(401, "Unauthorized")
        nonce = (params["oauth_timestamp"], params["oauth_nonce"])
        if nonce in self._nonces:  # a replayed request
            return _problem(401, "Unauthorized")
        self._nonces.add(nonce)
        return None

    # -- endpoints ------------------------------------------------------------------------------

    async def _get_me(self, request: web.Request) -> web.Response:
        return web.json_response({"data": self._user(self.me_id, _fields(request, "user.fields"))})

    async def _get_mentions(self, request: web.Request) -> web.Response:
        user_id = request.match_info["id"]
        if user_id not in self._users:
            raise _Invalid.param("id", user_id, f"The `id` query parameter value [{user_id}] is not valid")
        max_results = _int_param(request, "max_results", default=10, low=5, high=100)
        since_id = _int_param(request, "since_id", default=0, low=1)
        until_id = _int_param(request, "until_id", default=0, low=1)
        username = self._users[user_id][0]
        tweets = [
            t
            for t in self._timeline
            if _mentions(t.text, username) and int(t.id) > since_id and (not until_id or int(t.id) < until_id)
        ]
        page, next_token = self._page(
            request, sorted(tweets, key=lambda t: int(t.id), reverse=True), max_results
        )
        if not page:
            return web.json_response({"meta": {"result_count": 0}})
        tweet_fields = _fields(request, "tweet.fields")
        expansions = _fields(request, "expansions")
        data = [self._tweet(t, tweet_fields, expansions) for t in page]
        body: dict[str, Any] = {"data": data}
        if "author_id" in expansions:
            user_fields = _fields(request, "user.fields")
            authors = dict.fromkeys(t.author_id for t in page)
            body["includes"] = {"users": [self._user(a, user_fields) for a in authors]}
        meta: dict[str, Any] = {"result_count": len(page), "newest_id": page[0].id, "oldest_id": page[-1].id}
        if next_token:
            meta["next_token"] = next_token
        body["meta"] = meta
        return web.json_response(body)

    async def _post_tweet(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        text = body.get("text")
        if not isinstance(text, str) or not text:
            raise _Invalid.param("text", text, "You must specify a `text` (or media) for the Tweet.")
        if tweet_weighted_length(text) > TWEET_MAX_WEIGHT:
            raise _Invalid.param("text", text, "Your Tweet text is too long.")
        reply = body.get("reply") or {}
        in_reply_to = reply.get("in_reply_to_tweet_id") if isinstance(reply, dict) else None
        if in_reply_to is not None and not any(t.id == in_reply_to for t in self._timeline):
            return _problem(403, "You attempted to reply to a Tweet that is deleted or not visible to you.")
        if any(t.author_id == self.me_id and t.text == text for t in self._timeline):
            return _problem(403, "You are not allowed to create a Tweet with duplicate content.")
        tweet = _Tweet(self.next_id(), text, self.me_id, "und", datetime.now(UTC), in_reply_to)
        self._timeline.append(tweet)
        self.tweets.append(PostedTweet(tweet.id, text, in_reply_to, time.monotonic()))
        data = {"id": tweet.id, "text": text, "edit_history_tweet_ids": [tweet.id]}
        return web.json_response({"data": data}, status=201)

    async def _get_dm_events(self, request: web.Request) -> web.Response:
        max_results = _int_param(request, "max_results", default=100, low=1, high=100)
        types = _fields(request, "event_types") or ["MessageCreate"]
        unknown = set(types) - {"MessageCreate", "ParticipantsJoin", "ParticipantsLeave"}
        if unknown:
            raise _Invalid.param("event_types", ",".join(types), "The `event_types` value is not valid")
        events = [e for e in self._dm_events if "MessageCreate" in types]
        page, next_token = self._page(
            request, sorted(events, key=lambda e: int(e.id), reverse=True), max_results
        )
        if not page:
            return web.json_response({"meta": {"result_count": 0}})
        wanted = _fields(request, "dm_event.fields")
        data = [self._dm_event(e, wanted) for e in page]
        body: dict[str, Any] = {"data": data}
        if "sender_id" in _fields(request, "expansions"):
            user_fields = _fields(request, "user.fields")
            senders = dict.fromkeys(e.sender_id for e in page)
            body["includes"] = {"users": [self._user(s, user_fields) for s in senders]}
        meta: dict[str, Any] = {"result_count": len(page)}
        if next_token:
            meta["next_token"] = next_token
        body["meta"] = meta
        return web.json_response(body)

    async def _post_dm(self, request: web.Request) -> web.Response:
        participant = request.match_info["participant_id"]
        body = await _json_body(request)
        text = body.get("text")
        if not isinstance(text, str) or not text:
            raise _Invalid.param("text", text, "You must specify `text` or `attachments`.")
        if len(text) > DM_MAX_CHARS:
            raise _Invalid.param("text", text, f"Text must be at most {DM_MAX_CHARS} characters.")
        if participant in self.dm_closed:
            return _problem(403, "You cannot send messages to this user.")
        event = _DMEvent(self.next_id(), self.me_id, participant, text, datetime.now(UTC))
        self._dm_events.append(event)
        self.dms.append(SentDM(event.id, participant, text, time.monotonic()))
        data = {"dm_conversation_id": _conversation_id(self.me_id, participant), "dm_event_id": event.id}
        return web.json_response({"data": data}, status=201)

    # -- shapes ---------------------------------------------------------------------------------

    def _page(self, request: web.Request, items: Sequence[Any], size: int) -> tuple[list[Any], str | None]:
        """Newest first; a `pagination_token` continues below the last id of the previous page."""
        token = request.query.get("pagination_token")
        if token is not None:
            if token not in self._page_tokens:
                raise _Invalid.param("pagination_token", token, "The `pagination_token` is not valid")
            below = int(self._page_tokens[token])
            items = [i for i in items if int(i.id) < below]
        page = list(items[:size])
        if len(items) <= size:
            return page, None
        next_token = base64.b32encode(hashlib.sha1(page[-1].id.encode()).digest()).decode().lower()[:20]
        self._page_tokens[next_token] = page[-1].id
        return page, next_token

    def _user(self, user_id: str, fields: list[str]) -> dict[str, Any]:
        username, name = self._users.get(user_id, (f"user{user_id}", f"user{user_id}"))
        user: dict[str, Any] = {"id": user_id, "name": name, "username": username}
        if "protected" in fields:
            user["protected"] = False
        return user

    def _tweet(self, tweet: _Tweet, fields: list[str], expansions: list[str]) -> dict[str, Any]:
        data: dict[str, Any] = {"id": tweet.id, "text": tweet.text, "edit_history_tweet_ids": [tweet.id]}
        if "author_id" in fields or "author_id" in expansions:
            data["author_id"] = tweet.author_id
        if "lang" in fields:
            data["lang"] = tweet.lang
        if "created_at" in fields:
            data["created_at"] = _iso(tweet.created_at)
        if "conversation_id" in fields:
            data["conversation_id"] = self._conversation_root(tweet)
        if "in_reply_to_user_id" in fields and tweet.in_reply_to:
            parent = next((t for t in self._timeline if t.id == tweet.in_reply_to), None)
            if parent is not None:
                data["in_reply_to_user_id"] = parent.author_id
        if "referenced_tweets" in fields and tweet.in_reply_to:
            data["referenced_tweets"] = [{"type": "replied_to", "id": tweet.in_reply_to}]
        if "entities" in fields:
            mentions = [
                {"start": m.start(), "end": m.end(), "username": m.group(1), "id": uid}
                for m in re.finditer(r"@(\w{1,15})", tweet.text)
                for uid, (name, _) in self._users.items()
                if name.lower() == m.group(1).lower()
            ]
            if mentions:
                data["entities"] = {"mentions": mentions}
        return data

    def _conversation_root(self, tweet: _Tweet) -> str:
        by_id = {t.id: t for t in self._timeline}
        while tweet.in_reply_to and tweet.in_reply_to in by_id:
            tweet = by_id[tweet.in_reply_to]
        return tweet.in_reply_to or tweet.id

    def _dm_event(self, event: _DMEvent, fields: list[str]) -> dict[str, Any]:
        data: dict[str, Any] = {"id": event.id, "event_type": "MessageCreate", "text": event.text}
        if "sender_id" in fields:
            data["sender_id"] = event.sender_id
        if "created_at" in fields:
            data["created_at"] = _iso(event.created_at)
        if "dm_conversation_id" in fields:
            data["dm_conversation_id"] = _conversation_id(event.sender_id, event.recipient_id)
        if "participant_ids" in fields:
            data["participant_ids"] = sorted({event.sender_id, event.recipient_id}, key=int)
        return data


# ---------------------------------------------------------------------------------------------
# Helpers shared by the fake and tests


def oauth1_signature(
    method: str,
    base_uri: str,
    params: Sequence[tuple[str, str]],
    consumer_secret: str,
    token_secret: str,
) -> str:
    """RFC 5849 section 3.4: HMAC-SHA1 over METHOD&URI&sorted encoded parameters."""
    encoded = sorted((_pct(k), _pct(v)) for k, v in params)
    normalized = "&".join(f"{k}={v}" for k, v in encoded)
    base_string = "&".join((method.upper(), _pct(base_uri), _pct(normalized)))
    key = f"{_pct(consumer_secret)}&{_pct(token_secret)}"
    digest = hmac.new(key.encode(), base_string.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _pct(value: str) -> str:
    return quote(value, safe="~")  # RFC 3986 unreserved characters stay as they are


# twitter-text v3: these code points weigh 1, every other one 2; a URL weighs 23; the limit is 280.
_LIGHT_RANGES = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))
_URL = re.compile(r"https?://\S+", re.IGNORECASE)
URL_WEIGHT = 23


def tweet_weighted_length(text: str) -> int:
    """How long X counts a Tweet: NFC code points, CJK (Korean) counting 2, URLs 23. Emoji
    sequences are counted per code point, which can only overcount."""
    pieces = _URL.split(unicodedata.normalize("NFC", text))
    weight = URL_WEIGHT * (len(pieces) - 1)
    for piece in pieces:
        weight += sum(1 if any(lo <= ord(c) <= hi for lo, hi in _LIGHT_RANGES) else 2 for c in piece)
    return weight


def _mentions(text: str, username: str) -> bool:
    return re.search(rf"(?<!\w)@{re.escape(username)}(?!\w)", text, re.IGNORECASE) is not None


def _conversation_id(a: str, b: str) -> str:
    low, high = sorted((a, b), key=int)
    return f"{low}-{high}"


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def _fields(request: web.Request, name: str) -> list[str]:
    return [f for f in request.query.get(name, "").split(",") if f]


def _int_param(request: web.Request, name: str, *, default: int, low: int, high: int | None = None) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < low or (high is not None and int(raw) > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise _Invalid.param(name, raw, f"The `{name}` query parameter value [{raw}] is not {bounds}")
    return int(raw)


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        raise _Invalid(_problem(400, "The request body is not valid JSON."))
    return body


_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def _problem(status: int, detail: str) -> web.Response:
    """X's v2 error body ("problem" JSON)."""
    body = {"title": _REASONS.get(status, "Error"), "detail": detail, "type": "about:blank", "status": status}
    return web.json_response(body, status=status)


def _unsupported_authentication() -> web.Response:
    detail = (
        "Authenticating with OAuth 2.0 Application-Only is forbidden for this endpoint.  Supported "
        "authentication types are [OAuth 1.0a User Context, OAuth 2.0 User Context]."
    )
    body = {
        "title": "Unsupported Authentication",
        "detail": detail,
        "type": "https://api.twitter.com/2/problems/unsupported-authentication",
        "status": 403,
    }
    return web.json_response(body, status=403)


class _Invalid(Exception):
    """An invalid request, answered with X's 400 body."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response

    @classmethod
    def param(cls, name: str, value: object, message: str) -> _Invalid:
        body = {
            "errors": [{"parameters": {name: [str(value)]}, "message": message}],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": "https://api.twitter.com/2/problems/invalid-request",
        }
        return cls(web.json_response(body, status=400))


@web.middleware
async def _json_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Unknown paths answer in JSON as X does (tweepy reads every error body as JSON)."""
    try:
        return await handler(request)
    except web.HTTPNotFound:
        return web.json_response(
            {"errors": [{"message": "Sorry, that page does not exist", "code": 34}]}, status=404
        )
    except web.HTTPMethodNotAllowed:
        return _problem(405, "Method Not Allowed")


# ---------------------------------------------------------------------------------------------
# Account Activity API: X calling the bot


def crc_response(consumer_secret: str, crc_token: str) -> dict[str, str]:
    """What X expects back from `GET <webhook>?crc_token=...`."""
    return {"response_token": sign_body(consumer_secret, crc_token.encode())}


def sign_body(consumer_secret: str, body: bytes) -> str:
    """The `x-twitter-webhooks-signature` header X puts on every event POST."""
    digest = hmac.new(consumer_secret.encode(), body, hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(digest).decode()


_ids = itertools.count(1)


def _legacy_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%a %b %d %H:%M:%S +0000 %Y")


def aaa_tweet_create(
    for_user_id: str,
    *,
    tweet_id: str,
    text: str,
    user_id: str,
    screen_name: str,
    name: str | None = None,
    mentions: Sequence[tuple[str, str]] = (),
    in_reply_to_status_id: str | None = None,
    in_reply_to_user_id: str | None = None,
    lang: str = "ko",
    at: datetime | None = None,
) -> dict[str, Any]:
    """An Account Activity `tweet_create_events` payload (v1.1 Tweet shape). `mentions` are
    (user id, screen name) pairs found in `text`. A text over 140 characters arrives as X sends it
    in compatibility mode: `truncated` with the whole text in `extended_tweet.full_text`."""
    at = at or datetime.now(UTC)
    user_mentions: list[dict[str, Any]] = []
    for mentioned_id, mentioned_name in mentions:
        start = text.lower().find("@" + mentioned_name.lower())
        if start < 0:
            raise ValueError(f"@{mentioned_name} is not in the text")
        user_mentions.append(
            {
                "screen_name": mentioned_name,
                "name": mentioned_name,
                "id": int(mentioned_id),
                "id_str": mentioned_id,
                "indices": [start, start + 1 + len(mentioned_name)],
            }
        )
    entities = {"hashtags": [], "urls": [], "user_mentions": user_mentions, "symbols": []}
    tweet: dict[str, Any] = {
        "created_at": _legacy_time(at),
        "id": int(tweet_id),
        "id_str": tweet_id,
        "text": text,
        "source": '<a href="https://mobile.twitter.com" rel="nofollow">Twitter Web App</a>',
        "truncated": False,
        "in_reply_to_status_id": int(in_reply_to_status_id) if in_reply_to_status_id else None,
        "in_reply_to_status_id_str": in_reply_to_status_id,
        "in_reply_to_user_id": int(in_reply_to_user_id) if in_reply_to_user_id else None,
        "in_reply_to_user_id_str": in_reply_to_user_id,
        "user": {
            "id": int(user_id),
            "id_str": user_id,
            "name": name or screen_name,
            "screen_name": screen_name,
            "protected": False,
        },
        "is_quote_status": False,
        "entities": entities,
        "lang": lang,
        "timestamp_ms": str(int(at.timestamp() * 1000)),
    }
    if len(text) > 140:
        link = f"https://t.co/{next(_ids):010d}"
        cut = 140 - len(link) - 2
        tweet["text"] = text[:cut] + "… " + link
        tweet["truncated"] = True
        tweet["display_text_range"] = [0, cut + 1]
        tweet["entities"] = {
            **entities,
            "user_mentions": [m for m in user_mentions if m["indices"][1] <= cut],
        }
        tweet["extended_tweet"] = {
            "full_text": text,
            "display_text_range": [0, len(text)],
            "entities": entities,
        }
    return {"for_user_id": for_user_id, "tweet_create_events": [tweet]}


def aaa_dm(
    for_user_id: str,
    *,
    event_id: str,
    sender_id: str,
    recipient_id: str,
    text: str,
    sender_screen_name: str,
    recipient_screen_name: str = "city",
    at: datetime | None = None,
) -> dict[str, Any]:
    """An Account Activity `direct_message_events` payload (v1.1 DM event shape)."""
    at = at or datetime.now(UTC)
    millis = str(int(at.timestamp() * 1000))
    event = {
        "type": "message_create",
        "id": event_id,
        "created_timestamp": millis,
        "message_create": {
            "target": {"recipient_id": recipient_id},
            "sender_id": sender_id,
            "message_data": {
                "text": text,
                "entities": {"hashtags": [], "symbols": [], "user_mentions": [], "urls": []},
            },
        },
    }

    def user(user_id: str, screen_name: str) -> dict[str, Any]:
        return {
            "id": user_id,
            "created_timestamp": millis,
            "name": screen_name,
            "screen_name": screen_name,
            "protected": False,
            "verified": False,
            "followers_count": 0,
            "friends_count": 0,
            "statuses_count": 0,
        }

    return {
        "for_user_id": for_user_id,
        "direct_message_events": [event],
        "users": {
            sender_id: user(sender_id, sender_screen_name),
            recipient_id: user(recipient_id, recipient_screen_name),
        },
    }
