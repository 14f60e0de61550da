"""A stand-in for X's API v2 on the shared `RecordingServer`: what our adapter (channels/x.py) calls
through tweepy's `AsyncClient`, pointed at `base_url` with `channels.x.api_session`. Every request
needs a valid OAuth 1.0a user-context signature (over the api.twitter.com URL tweepy signed, a fresh
timestamp, an unused nonce), is counted in its endpoint's rate-limit window (`limits`, answered in the
`x-rate-limit-*` headers) and is checked as X checks it (parameter ranges, the 280 weighted-character
limit, duplicate Tweets, replies to unknown Tweets, the DM length, closed DMs); errors in X's JSON.
Endpoints, as `fail_next`, `of` and `limits` name them: "me", "mentions", "tweets", "dm_events",
"dm_send". Also the Account Activity builders a test uses to play X calling the bot's webhook.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
import secrets
import time
import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import quote, unquote

from aiohttp import hdrs, web

from tests.fakes.server import Recorded, RecordingServer

TWITTER_EPOCH_MS = 1288834974657  # the snowflake epoch
CLOCK_SKEW_SECONDS = 300  # X refuses an OAuth timestamp this far from its clock
# Per endpoint: (requests, window seconds), as X documents them for a user-context app.
LIMITS = dict(me=(75, 900), mentions=(450, 900), tweets=(100, 900), dm_events=(300, 900), dm_send=(200, 900))

Handler = Callable[[web.Request], Awaitable[web.Response]]


@dataclass
class Tweet:
    id: str  # a snowflake: it holds the time X made it
    text: str
    author_id: str
    lang: str = "und"
    in_reply_to: str | None = None
    at: float = field(default_factory=time.monotonic)  # when X took it


@dataclass
class DMEvent:
    id: str
    sender_id: str
    recipient_id: str
    text: str
    at: float = field(default_factory=time.monotonic)


class _Timed(list[Recorded]):
    """`requests`, noting when each arrived (the shared `Recorded` has no time)."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: dict[int, float] = {}

    def append(self, recorded: Recorded) -> None:
        self.arrivals[id(recorded)] = time.time()
        super().append(recorded)


class FakeX(RecordingServer):
    def __init__(self, *, consumer_secret: str, me_id: str = "100", me_username: str = "city") -> None:
        super().__init__()
        self.requests: _Timed = _Timed()
        self.consumer_secret = consumer_secret
        self.client_kwargs = {  # the credentials it takes, as AsyncClient takes them
            "consumer_key": "fake-consumer-key",
            "consumer_secret": consumer_secret,
            "access_token": f"{me_id}-fakeaccesstoken",  # X's access tokens start with the user id
            "access_token_secret": "fake-access-token-secret",
        }
        self.me_id = me_id
        self.limits: dict[str, tuple[int, float]] = dict(LIMITS)
        self.dm_closed: set[str] = set()  # users who take no DMs from the city
        self.tweets: list[Tweet] = []  # what the city posted
        self.dms: list[DMEvent] = []  # what the city sent
        self._usernames = {me_id: me_username}
        self._timeline: list[Tweet] = []
        self._dm_events: list[DMEvent] = []
        self._windows: dict[str, tuple[float, int]] = {}  # endpoint -> (started, used)
        self._nonces: set[tuple[str, str]] = set()
        self._page_tokens: dict[str, int] = {}  # next_token -> the id the next page starts below
        self._last_id = 0

    def arrival(self, recorded: Recorded) -> float:
        """When a request arrived: time.time(), comparable with x-rate-limit-reset."""
        return self.requests.arrivals[id(recorded)]

    def next_id(self) -> str:
        """A snowflake id: time-ordered like X's, strictly increasing within this fake."""
        self._last_id = max((int(time.time() * 1000) - TWITTER_EPOCH_MS) << 22, self._last_id + 1)
        return str(self._last_id)

    def add_mention(self, author_id: str, username: str, text: str, *, lang: str = "ko") -> str:
        """A Tweet by `author_id` mentioning the city (its text must say @<the city>); its id."""
        if not _mentioned(self._usernames[self.me_id], text):
            raise ValueError(f"a mention's text must contain @{self._usernames[self.me_id]}: {text!r}")
        self._usernames[author_id] = username
        self._timeline.append(Tweet(self.next_id(), text, author_id, lang))
        return self._timeline[-1].id

    def add_dm(self, sender_id: str, text: str, *, username: str | None = None) -> str:
        """A direct message from `sender_id` to the city; its event id."""
        self._usernames[sender_id] = username or self._usernames.get(sender_id, f"user{sender_id}")
        self._dm_events.append(DMEvent(self.next_id(), sender_id, self.me_id, text))
        return self._dm_events[-1].id

    # -- what RecordingServer asks of a provider

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/2/users/me", self._api(self._me), name="me"),
            web.get("/2/users/{id}/mentions", self._api(self._mentions), name="mentions"),
            web.post("/2/tweets", self._api(self._post_tweet), name="tweets"),
            web.get("/2/dm_events", self._api(self._dm_events_page), name="dm_events"),
            web.post(
                "/2/dm_conversations/with/{participant_id}/messages", self._api(self._post_dm), name="dm_send"
            ),
        ]

    def error(self, status: int, request: web.Request) -> web.StreamResponse:
        return _Refused(status, HTTPStatus(status).phrase).response

    def endpoint(self, request: web.Request) -> str:
        return request.match_info.route.name or super().endpoint(request)

    # -- what every request goes through, in X's order

    def _api(self, handler: Handler) -> Handler:
        async def checked(request: web.Request) -> web.Response:
            if not self._authentic(request):
                return _Refused(401, "Unauthorized").response
            endpoint, now = self.endpoint(request), time.time()
            limit, window = self.limits[endpoint]
            started, used = self._windows.get(endpoint, (-math.inf, 0))
            if now >= started + window:
                started, used = now, 0
            allowed = used < limit
            self._windows[endpoint] = (started, used + allowed)
            try:
                if not allowed:
                    raise _Refused(429, "Too Many Requests")
                response = await handler(request)
            except _Refused as refused:
                response = refused.response
            response.headers["x-rate-limit-limit"] = str(limit)
            response.headers["x-rate-limit-remaining"] = str(limit - used - allowed)
            response.headers["x-rate-limit-reset"] = str(math.ceil(started + window))  # epoch seconds
            return response

        return checked

    def _authentic(self, request: web.Request) -> bool:
        """OAuth 1.0a user context (RFC 5849, HMAC-SHA1), checked apart from the oauthlib that signs:
        our app and account, a fresh timestamp, a nonce not seen before, the signature."""
        header = request.headers.get(hdrs.AUTHORIZATION, "")
        params = {k: unquote(v) for k, v in re.findall(r'(\w+)="([^"]*)"', header.removeprefix("OAuth "))}
        stamp, nonce = params.get("oauth_timestamp", ""), params.get("oauth_nonce", "")
        signed = [*request.query.items(), *((k, v) for k, v in params.items() if k != "oauth_signature")]
        normalized = "&".join(f"{k}={v}" for k, v in sorted((_pct(k), _pct(v)) for k, v in signed))
        url = "https://api.twitter.com" + request.rel_url.raw_path  # as tweepy signed it, before api_session
        base_string = "&".join((request.method, _pct(url), _pct(normalized)))
        creds = self.client_kwargs
        key = f"{_pct(creds['consumer_secret'])}&{_pct(creds['access_token_secret'])}"
        expected = base64.b64encode(hmac.new(key.encode(), base_string.encode(), hashlib.sha1).digest())
        authentic = (
            header.startswith("OAuth ")
            and params.get("oauth_signature_method") == "HMAC-SHA1"
            and params.get("oauth_version", "1.0") == "1.0"
            and params.get("oauth_consumer_key") == creds["consumer_key"]
            and params.get("oauth_token") == creds["access_token"]
            and stamp.isdigit()
            and abs(time.time() - int(stamp)) <= CLOCK_SKEW_SECONDS
            and bool(nonce)
            and (stamp, nonce) not in self._nonces  # else a replayed request
            and hmac.compare_digest(expected, params.get("oauth_signature", "").encode())
        )
        if authentic:
            self._nonces.add((stamp, nonce))
        return authentic

    # -- endpoints

    async def _me(self, request: web.Request) -> web.Response:
        return web.json_response({"data": self._user(self.me_id)})

    async def _mentions(self, request: web.Request) -> web.Response:
        username = self._usernames.get(request.match_info["id"])
        if username is None:
            raise _invalid("id", request.match_info["id"], "The `id` query parameter value is not valid")
        size, since = _int(request, "max_results", 10, 5, 100), _int(request, "since_id", 0, 0)
        found = [t for t in self._timeline if _mentioned(username, t.text) and int(t.id) > since]

        def shape(t: Tweet) -> dict[str, Any]:
            asked = _asked(request, "tweet.fields", author_id=t.author_id, lang=t.lang, created_at=_iso(t.id))
            return {"id": t.id, "text": t.text, "edit_history_tweet_ids": [t.id], **asked}

        return self._listing(request, found, size, shape, "author_id")

    async def _dm_events_page(self, request: web.Request) -> web.Response:
        def shape(e: DMEvent) -> dict[str, Any]:
            conversation = _conversation_id(e.sender_id, e.recipient_id)
            fields = {"sender_id": e.sender_id, "created_at": _iso(e.id), "dm_conversation_id": conversation}
            asked = _asked(request, "dm_event.fields", **fields)
            return {"id": e.id, "event_type": "MessageCreate", "text": e.text, **asked}

        size = _int(request, "max_results", 100, 1, 100)
        return self._listing(request, self._dm_events, size, shape, "sender_id")  # all are MessageCreate

    async def _post_tweet(self, request: web.Request) -> web.Response:
        body = await request.json()
        text, reply = body.get("text"), body.get("reply")
        if not isinstance(text, str) or not text:
            raise _invalid("text", text, "You must specify a `text` (or media) for the Tweet.")
        if tweet_weighted_length(text) > 280:
            raise _invalid("text", text, "Your Tweet text is too long.")
        in_reply_to = reply.get("in_reply_to_tweet_id") if isinstance(reply, dict) else None
        if in_reply_to is not None and all(t.id != in_reply_to for t in self._timeline):
            raise _Refused(403, "You attempted to reply to a Tweet that is deleted or not visible to you.")
        if any(t.author_id == self.me_id and t.text == text for t in self._timeline):
            raise _Refused(403, "You are not allowed to create a Tweet with duplicate content.")
        tweet = Tweet(self.next_id(), text, self.me_id, in_reply_to=in_reply_to)
        self._timeline.append(tweet)
        self.tweets.append(tweet)
        data = {"id": tweet.id, "text": text, "edit_history_tweet_ids": [tweet.id]}
        return web.json_response({"data": data}, status=201)

    async def _post_dm(self, request: web.Request) -> web.Response:
        participant = request.match_info["participant_id"]
        text = (await request.json()).get("text")
        if not isinstance(text, str) or not text:
            raise _invalid("text", text, "You must specify `text` or `attachments`.")
        if len(text) > 10_000:
            raise _invalid("text", text, "Text must be at most 10000 characters.")
        if participant in self.dm_closed:
            raise _Refused(403, "You cannot send messages to this user.")
        event = DMEvent(self.next_id(), self.me_id, participant, text)
        self._dm_events.append(event)
        self.dms.append(event)
        data = {"dm_conversation_id": _conversation_id(self.me_id, participant), "dm_event_id": event.id}
        return web.json_response({"data": data}, status=201)

    def _listing(
        self, request: web.Request, items: list[Any], size: int, shape: Callable[[Any], Any], user_field: str
    ) -> web.Response:
        """A page of `items`, newest first, each as `shape` makes it, with the users `user_field`
        names when it is expanded; a `pagination_token` continues below the previous page."""
        items = sorted(items, key=lambda i: int(i.id), reverse=True)
        token = request.query.get("pagination_token")
        if token is not None:
            if token not in self._page_tokens:
                raise _invalid("pagination_token", token, "The `pagination_token` is not valid")
            items = [i for i in items if int(i.id) < self._page_tokens[token]]
        page = items[:size]
        if not page:
            return web.json_response({"meta": {"result_count": 0}})
        body: dict[str, Any] = {"data": [shape(i) for i in page], "meta": {"result_count": len(page)}}
        if user_field in _fields(request, "expansions"):
            user_ids = dict.fromkeys(getattr(i, user_field) for i in page)
            body["includes"] = {"users": [self._user(u) for u in user_ids]}
        if len(items) > size:
            body["meta"]["next_token"] = token = secrets.token_hex(8)
            self._page_tokens[token] = int(page[-1].id)
        return web.json_response(body)

    def _user(self, user_id: str) -> dict[str, str]:
        username = self._usernames.get(user_id, f"user{user_id}")
        return {"id": user_id, "name": username, "username": username}


# -- X's rules and formats

# twitter-text v3: these code points weigh 1, every other one 2; a URL weighs 23.
_LIGHT_RANGES = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))
_URL = re.compile(r"https?://\S+", re.IGNORECASE)


def tweet_weighted_length(text: str) -> int:
    """How long X counts a Tweet: NFC code points, CJK (Korean) counting 2, a URL 23."""
    pieces = _URL.split(unicodedata.normalize("NFC", text))
    light = sum(any(lo <= ord(c) <= hi for lo, hi in _LIGHT_RANGES) for piece in pieces for c in piece)
    return 23 * (len(pieces) - 1) + 2 * sum(map(len, pieces)) - light


def _mentioned(username: str, text: str) -> bool:
    return re.search(rf"(?<!\w)@{re.escape(username)}(?!\w)", text, re.IGNORECASE) is not None


def _pct(value: str) -> str:
    return quote(value, safe="~")  # RFC 3986: unreserved characters stay as they are


def _conversation_id(a: str, b: str) -> str:
    return "-".join(sorted((a, b), key=int))


def _iso(snowflake: str) -> str:
    """When X made an id, as v2 writes `created_at`."""
    ms = (int(snowflake) >> 22) + TWITTER_EPOCH_MS
    return datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _fields(request: web.Request, name: str) -> list[str]:
    return [f for f in request.query.get(name, "").split(",") if f]


def _asked(request: web.Request, name: str, **optional: str) -> dict[str, str]:
    """The optional fields asked for (an expanded one is in the data too); X leaves out the rest."""
    asked = _fields(request, name) + _fields(request, "expansions")
    return {k: v for k, v in optional.items() if k in asked}


def _int(request: web.Request, name: str, default: int, low: int, high: float = math.inf) -> int:
    raw = request.query.get(name, str(default))
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise _invalid(name, raw, f"The `{name}` query parameter value [{raw}] is not valid")
    return int(raw)


class _Refused(Exception):
    """X refuses a request: its v2 error body (a "problem"), `more` added."""

    def __init__(self, status: int, detail: str, **more: Any) -> None:
        super().__init__(detail)
        body = {"title": HTTPStatus(status).phrase, "detail": detail, "type": "about:blank", "status": status}
        self.response = web.json_response(body | more, status=status)


def _invalid(name: str, value: object, message: str) -> _Refused:
    return _Refused(
        400,
        "One or more parameters to your request was invalid.",
        title="Invalid Request",
        type="https://api.twitter.com/2/problems/invalid-request",
        errors=[{"parameters": {name: [str(value)]}, "message": message}],
    )


# -- Account Activity API: X calling the bot


def crc_response(consumer_secret: str, crc_token: str) -> dict[str, str]:
    """What X expects back from `GET <webhook>?crc_token=...`."""
    return {"response_token": sign_body(consumer_secret, crc_token.encode())}


def sign_body(consumer_secret: str, body: bytes) -> str:
    """The `x-twitter-webhooks-signature` header X puts on every event POST."""
    digest = hmac.new(consumer_secret.encode(), body, hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(digest).decode()


Mentions = Sequence[tuple[str, str]]  # (user id, screen name)


def aaa_tweet_create(
    for_user_id: str, *, tweet_id: str, text: str, user_id: str, screen_name: str, mentions: Mentions = ()
) -> dict[str, Any]:
    """An Account Activity `tweet_create_events` payload (v1.1 Tweet); `mentions` are found in `text`. A
    text over 140 characters comes `truncated`, the whole of it in `extended_tweet.full_text`."""
    starts = {name: text.lower().find("@" + name.lower()) for _, name in mentions}
    if -1 in starts.values():
        raise ValueError(f"a mentioned name is not in the text: {mentions}")
    user_mentions: list[dict[str, Any]] = [
        {"screen_name": name, "id_str": uid, "indices": [starts[name], starts[name] + 1 + len(name)]}
        for uid, name in mentions
    ]
    entities = {"hashtags": [], "urls": [], "user_mentions": user_mentions}
    at = datetime.now(UTC)
    tweet: dict[str, Any] = {
        "created_at": at.strftime("%a %b %d %H:%M:%S +0000 %Y"),
        "id": int(tweet_id),
        "id_str": tweet_id,
        "text": text,
        "truncated": False,
        "in_reply_to_user_id_str": None,
        "user": {"id": int(user_id), "id_str": user_id, "name": screen_name, "screen_name": screen_name},
        "entities": entities,
        "lang": "ko",
        "timestamp_ms": str(int(at.timestamp() * 1000)),
    }
    if len(text) > 140:
        link = f"https://t.co/{tweet_id[-10:]:0>10}"
        cut = 140 - len(link) - 2
        tweet |= {
            "text": text[:cut] + "… " + link,
            "truncated": True,
            "entities": entities | {"user_mentions": [m for m in user_mentions if m["indices"][1] <= cut]},
            "extended_tweet": {"full_text": text, "entities": entities},
        }
    return {"for_user_id": for_user_id, "tweet_create_events": [tweet]}


def aaa_dm(
    for_user_id: str, *, event_id: str, sender_id: str, recipient_id: str, text: str, sender_screen_name: str
) -> dict[str, Any]:
    """An Account Activity `direct_message_events` payload (v1.1 DM event shape)."""
    target = {"recipient_id": recipient_id}
    create = {"target": target, "sender_id": sender_id, "message_data": {"text": text}}
    millis = str(int(time.time() * 1000))
    event = {"type": "message_create", "id": event_id, "created_timestamp": millis, "message_create": create}
    names = {sender_id: sender_screen_name, recipient_id: "city" if recipient_id == for_user_id else "user"}
    users = {uid: {"id": uid, "name": name, "screen_name": name} for uid, name in names.items()}
    return {"for_user_id": for_user_id, "direct_message_events": [event], "users": users}
