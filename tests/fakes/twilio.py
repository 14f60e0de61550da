"""A fake Twilio: a real local HTTP server that the real `twilio` SDK talks to.

Point a client at it with `client.api.base_url = fake.base_url` (the Api domain builds every URL,
the Messages resource included, as `{base_url}/2010-04-01/...`). Every send, and every listing of
the messages sent (GET Messages.json: To, From, DateSent filters, pages), is checked against
Twilio's own OpenAPI description, so a request the real API would refuse fails here too and is
listed in `spec_violations`. Media lives on a second server, as Twilio's media redirect to storage
on another host: an HTTP client that keeps the Basic auth across that redirect is refused, as S3 does.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import secrets
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import aiohttp
from aiohttp import web
from twilio.request_validator import RequestValidator

# A trimmed copy of Twilio's OpenAPI description (see specs/TWILIO-LICENSE.txt).
SPEC_PATH = Path(__file__).resolve().parent / "specs" / "twilio_api_v2010.json"
API_VERSION = "2010-04-01"
MESSAGES_PATH = "/2010-04-01/Accounts/{AccountSid}/Messages.json"
MAX_BODY = 1600  # characters, Twilio's documented limit for one Message's Body
MAX_MEDIA = 10  # MediaUrl parameters per message

# Twilio's error codes for what the fake answers (https://www.twilio.com/docs/errors/NNNNN).
ERR_INVALID_DATE = 20001
ERR_AUTH = 20003
ERR_NOT_FOUND = 20404
ERR_TOO_MANY = 20429
ERR_INTERNAL = 20500
ERR_UNAVAILABLE = 20503
ERR_INVALID_TO = 21211
ERR_BODY_REQUIRED = 21602
ERR_FROM_REQUIRED = 21603
ERR_TO_REQUIRED = 21604
ERR_OPTED_OUT = 21610
ERR_NOT_MOBILE = 21614
ERR_BODY_TOO_LONG = 21617

_INSPECTED = web.RequestKey("inspected", tuple[list[tuple[str, str]], list[str]])
_E164 = re.compile(r"^\+[1-9]\d{1,14}$")
_COUNTRY_BY_PREFIX = {"+82": "KR", "+1": "US", "+44": "GB", "+81": "JP", "+86": "CN", "+84": "VN"}


def new_sid(prefix: str) -> str:
    """A Twilio sid: two letters and 32 hex digits (SM message, MM media message, ME media, AC account)."""
    return prefix + secrets.token_hex(16)


def sign(auth_token: str, url: str, params: dict[str, str]) -> str:
    """X-Twilio-Signature for a POST of `params` to `url`, computed as Twilio computes it."""
    signature: str = RequestValidator(auth_token).compute_signature(url, params)
    return signature


def rfc2822(at: datetime | None = None) -> str:
    """Twilio's date format: 'Thu, 24 Aug 2023 05:01:45 +0000'."""
    return format_datetime((at or datetime.now(UTC)).astimezone(UTC))


# --- SMS segments, written apart from channels/segments.py on purpose: the fake must not share a bug.

_GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_ESCAPED = set("^{}\\[~]|€\f")  # sent as ESC + char: two septets


def segment_count(text: str) -> int:
    """How many segments Twilio bills `text` as: GSM-7 160 (153 per part when split), else UCS-2
    70 UTF-16 units (67 per part); a two-unit character (escape or surrogate pair) is never split."""
    if not text:
        return 0
    if all(c in _GSM7 or c in _GSM7_ESCAPED for c in text):
        costs, single, part = [2 if c in _GSM7_ESCAPED else 1 for c in text], 160, 153
    else:
        costs, single, part = [len(c.encode("utf-16-le")) // 2 for c in text], 70, 67
    if sum(costs) <= single:
        return 1
    count, used = 1, 0
    for cost in costs:
        if used + cost > part:
            count, used = count + 1, 0
        used += cost
    return count


# --- The OpenAPI description: loaded once, checked by a small validator for form-encoded values.


@functools.cache
def spec() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    return loaded


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        schema = spec()["components"]["schemas"][name]
    return schema


def _value_problem(name: str, value: str, schema: dict[str, Any]) -> str | None:
    """Why a form value does not fit its (scalar) schema, or None. Form values are strings on the
    wire, so a boolean is 'true'/'false' and a number must parse."""
    schema = _resolve(schema)
    kind = schema.get("type", "string")
    if kind == "boolean" and value not in ("true", "false"):
        return f"{name}={value!r} is not a boolean"
    if kind == "integer" and not re.fullmatch(r"-?\d+", value):
        return f"{name}={value!r} is not an integer"
    if kind == "integer":
        low, high = schema.get("minimum"), schema.get("maximum")
        if (low is not None and int(value) < low) or (high is not None and int(value) > high):
            return f"{name}={value!r} is outside {low}..{high}"
    if kind == "number":
        try:
            float(value)
        except ValueError:
            return f"{name}={value!r} is not a number"
    if "enum" in schema and value not in schema["enum"]:
        return f"{name}={value!r} is not one of {schema['enum']}"
    if "pattern" in schema and not re.search(schema["pattern"], value):
        return f"{name}={value!r} does not match {schema['pattern']}"
    if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", len(value)):
        return f"{name}={value!r} has a length outside {schema.get('minLength')}..{schema.get('maxLength')}"
    ignore_format = schema.get("x-twilio", {}).get("ignoreFormat", False)
    if schema.get("format") == "uri" and not ignore_format:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return f"{name}={value!r} is not an absolute http(s) URL"
    if schema.get("format") == "date-time":
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return f"{name}={value!r} is not an ISO 8601 date-time"
    return None


def _json_problem(name: str, value: Any, schema: dict[str, Any]) -> str | None:
    """Why a JSON value of a response does not fit its schema (types, nullability, enums, patterns)."""
    schema = _resolve(schema)
    if value is None:
        return None if schema.get("nullable") else f"{name} is null"
    kind = schema.get("type", "string")
    python_types: dict[str, tuple[type, ...]] = {
        "string": (str,),
        "integer": (int,),
        "number": (int, float),
        "boolean": (bool,),
        "object": (dict,),
        "array": (list,),
    }
    if not isinstance(value, python_types[kind]) or (kind != "boolean" and isinstance(value, bool)):
        return f"{name}={value!r} is not of type {kind}"
    if isinstance(value, str):
        return _value_problem(name, value, schema)
    return None


def message_resource_problems(resource: dict[str, Any]) -> list[str]:
    """Differences between a JSON Message and the spec's `api.v2010.account.message` schema."""
    schema = spec()["components"]["schemas"]["api.v2010.account.message"]
    properties: dict[str, Any] = schema["properties"]
    problems = [f"unknown property {key}" for key in resource if key not in properties]
    problems += [f"missing property {key}" for key in properties if key not in resource]
    for key, value in resource.items():
        if key in properties and (problem := _json_problem(key, value, properties[key])):
            problems.append(problem)
    for key in ("date_created", "date_updated", "date_sent"):
        if isinstance(resource.get(key), str) and not re.fullmatch(
            r"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000", resource[key]
        ):
            problems.append(f"{key}={resource[key]!r} is not RFC 2822")
    return problems


class SpecOperation:
    """One operation of the spec (path template + method), checking a form-encoded request to it."""

    def __init__(self, path: str, method: str) -> None:
        self.path = path
        self.path_item: dict[str, Any] = spec()["paths"][path]
        self.operation: dict[str, Any] | None = self.path_item.get(method.lower())
        self.method = method.upper()

    def problems(
        self,
        method: str,
        path_params: dict[str, str],
        content_type: str,
        form: list[tuple[str, str]],
        query: Sequence[tuple[str, str]] = (),
    ) -> list[str]:
        operation = self.path_item.get(method.lower())
        if operation is None:
            return [f"{method} is not an operation of {self.path}"]
        found: list[str] = []
        in_query: dict[str, Any] = {}
        for parameter in operation.get("parameters", ()):
            if parameter["in"] == "query":
                in_query[parameter["name"]] = parameter["schema"]
            if parameter["in"] != "path":
                continue
            value = path_params.get(parameter["name"], "")
            if problem := _value_problem(parameter["name"], value, parameter["schema"]):
                found.append(f"path parameter {problem}")
        for name, value in query:
            if name not in in_query:
                found.append(f"unknown query parameter {name!r}")
            elif problem := _value_problem(name, value, in_query[name]):
                found.append(f"query parameter {problem}")
        if "requestBody" not in operation:
            return found
        bodies: dict[str, Any] = operation["requestBody"].get("content", {})
        if content_type not in bodies:
            return [*found, f"content type {content_type!r} is not one of {sorted(bodies)}"]
        schema = _resolve(bodies[content_type]["schema"])
        properties: dict[str, Any] = schema.get("properties", {})
        names = [name for name, _ in form]
        for name in dict.fromkeys(names):
            if name not in properties:
                found.append(f"unknown form field {name!r}")
                continue
            prop = _resolve(properties[name])
            values = [value for key, value in form if key == name]
            if prop.get("type") == "array":
                item_schema = prop.get("items", {})
            elif len(values) > 1:
                found.append(f"form field {name!r} given {len(values)} times")
                item_schema = prop
            else:
                item_schema = prop
            found += [p for v in values if (p := _value_problem(name, v, item_schema))]
        found += [
            f"required form field {name!r} is missing"
            for name in schema.get("required", ())
            if name not in names
        ]
        return found


@functools.cache
def _create_message_operation() -> SpecOperation:
    return SpecOperation(MESSAGES_PATH, "POST")


@functools.cache
def _list_operation() -> SpecOperation:
    return SpecOperation(MESSAGES_PATH, "GET")


# The list's date filters by query parameter: on the day, on or after it (`DateSent>=` on the wire,
# which a form decoder reads as `DateSent>`), on or before it.
_DATE_FILTERS = (("=", "DateSent"), (">=", "DateSent>"), ("<=", "DateSent<"))


def _compare(op: str, day: date, bound: date) -> bool:
    return day == bound if op == "=" else day >= bound if op == ">=" else day <= bound


# --- What the fake records.


@dataclass
class SentSms:
    to: str
    from_: str | None
    messaging_service_sid: str | None
    body: str
    media_urls: list[str]
    status_callback: str | None
    sid: str
    at: float = field(default_factory=time.monotonic)
    num_segments: int = 0
    status: str = "queued"  # moved on by deliver()
    params: list[tuple[str, str]] = field(default_factory=list)  # the form exactly as it arrived
    created: datetime = field(default_factory=lambda: datetime.now(UTC))  # date_created; a test may move it
    sent_at: datetime | None = None  # date_sent: set once deliver() moves it past queued


@dataclass
class _Media:
    message_sid: str
    sid: str
    data: bytes
    content_type: str
    token: str  # the storage key the media URL redirects to
    expired: bool = False


def _error(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    """Twilio's JSON error body (what TwilioRestException parses: code and message)."""
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return web.json_response(body, status=status, headers=headers)


class FakeTwilio:
    """`async with FakeTwilio(account_sid, auth_token) as fake:` then talk to `fake.base_url`."""

    def __init__(
        self,
        account_sid: str | None = None,
        auth_token: str | None = None,
        *,
        service_number: str = "+15005550006",
        retry_after: int = 1,
    ) -> None:
        self.account_sid = account_sid or new_sid("AC")
        self.auth_token = auth_token or secrets.token_hex(16)
        self.service_number = service_number  # the pool number Twilio picks for a Messaging Service send
        self.retry_after = retry_after  # seconds, in the Retry-After header of a 429
        self.base_url = ""
        self.storage_url = ""
        self.sent: list[SentSms] = []
        self.spec_violations: list[str] = []
        self.opted_out: set[str] = set()
        self.landlines: set[str] = set()  # numbers Twilio refuses with 21614 (not a mobile number)
        self.attempts = 0  # every POST to Messages.json
        self.listings: list[list[tuple[str, str]]] = []  # the query of every GET of Messages.json
        self.failed_attempts = 0  # those not answered 201
        self.media_requests = 0  # GETs of a media URL (the authenticated first hop)
        self.callbacks: list[tuple[str, dict[str, str], int]] = []  # (url, params, status) of webhooks sent
        self.down = False
        self._fail: list[int | None] = []  # None: let this one through
        self._not_hanging = asyncio.Event()
        self._not_hanging.set()
        self._changed = asyncio.Condition()
        self._media: dict[str, _Media] = {}  # by media sid
        self._media_by_token: dict[str, _Media] = {}
        self._runners: list[web.AppRunner] = []
        self._session: aiohttp.ClientSession | None = None

    # --- controls

    @property
    def hang(self) -> bool:
        return not self._not_hanging.is_set()

    @hang.setter
    def hang(self, value: bool) -> None:
        if value:
            self._not_hanging.clear()
        else:
            self._not_hanging.set()

    def fail_next(self, n: int, status: int = 500, *, after: int = 0) -> None:
        """The next `n` sends (once `after` more went through) are answered `status`; a 429
        carries Retry-After."""
        self._fail += [None] * after + [status] * n

    def add_media(self, message_sid: str, data: bytes, content_type: str) -> str:
        """Store media of an inbound MMS; returns its URL, which needs the account's Basic auth."""
        media = _Media(message_sid, new_sid("ME"), data, content_type, secrets.token_urlsafe(24))
        self._media[media.sid] = media
        self._media_by_token[media.token] = media
        account = f"{self.base_url}/{API_VERSION}/Accounts/{self.account_sid}"
        return f"{account}/Messages/{message_sid}/Media/{media.sid}"

    def expire_media(self, url: str) -> None:
        """From now on the media URL (and its storage copy) answers 404, as after Twilio deleted it."""
        self._media[url.rstrip("/").rsplit("/", 1)[-1]].expired = True

    def message(self, sid: str) -> SentSms:
        return next(sms for sms in self.sent if sms.sid == sid)

    async def wait_for(self, predicate: Callable[[FakeTwilio], bool], timeout: float = 5.0) -> None:
        """Wait until `predicate(fake)` holds, re-checked at each send attempt; TimeoutError otherwise."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: predicate(self))

    # --- webhooks into the app, as Twilio sends them

    async def webhook(
        self, url: str, params: dict[str, str], *, signature: str | None = None, connect_to: str | None = None
    ) -> int:
        """POST `params` to `url` form-encoded, signed over `url` with the auth token (unless
        `signature` is given). `connect_to` ("http://127.0.0.1:PORT") is where the request really
        goes, as through a reverse proxy in front of the public URL."""
        assert self._session is not None, "use FakeTwilio as an async context manager"
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": sign(self.auth_token, url, params) if signature is None else signature,
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
            "User-Agent": "TwilioProxy/1.1",
        }
        target = url
        if connect_to:
            parts = urlsplit(url)
            target = connect_to.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")
        async with self._session.post(target, data=urlencode(params), headers=headers) as response:
            await response.read()
            self.callbacks.append((url, params, response.status))
            return response.status

    async def deliver(
        self,
        sid: str,
        status: str = "delivered",
        error_code: int | None = None,
        extra: dict[str, str] | None = None,
        connect_to: str | None = None,
    ) -> int:
        """Send the message's status callback as Twilio does; returns the HTTP status the app answered
        (`connect_to`: see `webhook`)."""
        sms = self.message(sid)
        if not sms.status_callback:
            raise ValueError(f"message {sid} was sent without a StatusCallback")
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "From": sms.from_ or self.service_number,
            "MessageSid": sid,
            "MessageStatus": status,
            "SmsSid": sid,
            "SmsStatus": status,
            "To": sms.to,
        }
        if sms.messaging_service_sid:
            params["MessagingServiceSid"] = sms.messaging_service_sid
        if status in ("failed", "undelivered"):
            params["ErrorCode"] = str(error_code or 30003)
        if status == "delivered":
            params["RawDlrDoneDate"] = datetime.now(UTC).strftime("%y%m%d%H%M")
        params.update(extra or {})
        sms.status = status
        if status not in ("queued", "accepted", "sending") and sms.sent_at is None:
            sms.sent_at = datetime.now(UTC)
        return await self.webhook(sms.status_callback, params, connect_to=connect_to)

    # --- server

    async def __aenter__(self) -> FakeTwilio:
        api = web.Application(middlewares=[self._outage], client_max_size=64 * 1024 * 1024)
        api.router.add_route("*", "/2010-04-01/Accounts/{AccountSid}/Messages.json", self._messages)
        media_path = "/2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media/{Sid}"
        api.router.add_get(media_path, self._media_first_hop)
        api.router.add_route("*", "/{tail:.*}", self._unknown)
        storage = web.Application()
        storage.router.add_get("/media/{token}", self._media_storage)
        self.base_url = await self._serve(api)
        self.storage_url = await self._serve(storage)
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.hang = False  # let hung handlers finish so the runners can stop
        if self._session:
            await self._session.close()
        for runner in reversed(self._runners):
            await runner.cleanup()

    async def _serve(self, app: web.Application) -> str:
        runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        self._runners.append(runner)
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}"

    async def _touch(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    @web.middleware
    async def _outage(self, request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        if self.hang or self.down:
            if request.path.endswith("/Messages.json") and request.method == "POST":
                await self._inspect_send(request)  # checked against the spec even during an outage
                self.attempts += 1
                self.failed_attempts += 1
                await self._touch()
            # Hanging: the connection is open and nothing comes back; the client has to time out.
            await self._not_hanging.wait()
            return _error(503, ERR_UNAVAILABLE, "Service Unavailable")
        response: web.StreamResponse = await handler(request)
        return response

    def _authorised(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        try:
            auth = aiohttp.BasicAuth.decode(header)
        except ValueError:
            return False
        return auth.login == self.account_sid and secrets.compare_digest(auth.password, self.auth_token)

    def _refuse_auth(self) -> web.Response:
        return _error(
            401,
            ERR_AUTH,
            "Authentication Error - invalid username",
            headers={"WWW-Authenticate": 'Basic realm="Twilio API"'},
        )

    async def _unknown(self, request: web.Request) -> web.Response:
        self.spec_violations.append(f"{request.method} {request.path}: not a path the fake serves")
        return _error(404, ERR_NOT_FOUND, f"The requested resource {request.path} was not found")

    async def _messages(self, request: web.Request) -> web.Response:
        if request.method == "GET":
            return self._list_messages(request)
        self.attempts += 1
        response = await self._create_message(request)
        if response.status != 201:
            self.failed_attempts += 1
        await self._touch()
        return response

    async def _inspect_send(self, request: web.Request) -> tuple[list[tuple[str, str]], list[str]]:
        """Parse a send and check it against the spec and Twilio's rules, once per request; every
        problem is recorded in `spec_violations`."""
        if _INSPECTED in request:
            return request[_INSPECTED]
        raw = await request.read()
        problems: list[str] = []
        try:
            form = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(raw))
        except (UnicodeDecodeError, ValueError) as exc:
            form, problems = [], [f"the body is not a form: {exc}"]
        operation = _create_message_operation()
        problems += operation.problems(request.method, dict(request.match_info), request.content_type, form)
        problems += self._twilio_rules(form)
        self.spec_violations += [f"{request.method} {request.path}: {problem}" for problem in problems]
        request[_INSPECTED] = (form, problems)
        return form, problems

    async def _create_message(self, request: web.Request) -> web.Response:
        if request.method != "POST":
            if request.method.lower() not in _create_message_operation().path_item:
                self.spec_violations.append(f"{request.method} {request.path}: method not in the spec")
                return _error(405, 20004, "Method not allowed")
            return _error(501, ERR_INTERNAL, f"{request.method} is not implemented by the fake")
        form, problems = await self._inspect_send(request)
        if not self._authorised(request):
            return self._refuse_auth()
        if problems:
            return _error(400, _code_for(problems), "; ".join(problems))
        if request.match_info["AccountSid"] != self.account_sid:
            return self._refuse_auth()  # good credentials, someone else's account
        if self._fail and (status := self._fail.pop(0)) is not None:
            retry = {"Retry-After": str(self.retry_after)} if status == 429 else None
            code = {429: ERR_TOO_MANY, 503: ERR_UNAVAILABLE}.get(status, ERR_INTERNAL)
            return _error(status, code, f"Injected failure {status}", headers=retry)
        return self._accept(form)

    def _list_messages(self, request: web.Request) -> web.Response:
        """The messages sent, as Twilio lists them: filtered by To, From and the GMT date of date_sent
        (`DateSent`, `DateSent>` for on-or-after, `DateSent<` for on-or-before; a message not sent yet
        has no date_sent and is left out by any of them), newest date_sent first with those not sent
        yet first of all (as we take Twilio to order them), in pages of `PageSize` (50)."""
        query = list(request.query.items())
        self.listings.append(query)
        problems = _list_operation().problems("GET", dict(request.match_info), "", [], query)
        self.spec_violations += [f"GET {request.path}: {problem}" for problem in problems]
        if not self._authorised(request):
            return self._refuse_auth()
        if problems:
            return _error(400, 21600, "; ".join(problems))
        if request.match_info["AccountSid"] != self.account_sid:
            return self._refuse_auth()
        fields = dict(query)
        try:
            days = {op: date.fromisoformat(fields[name][:10]) for op, name in _DATE_FILTERS if name in fields}
        except ValueError:
            return _error(400, ERR_INVALID_DATE, "Invalid date value")
        found = [
            sms
            for sms in self.sent
            if fields.get("To", sms.to) == sms.to
            and fields.get("From", sms.from_) == sms.from_
            and all(
                sms.sent_at is not None and _compare(op, sms.sent_at.date(), day) for op, day in days.items()
            )
        ]
        never = datetime.max.replace(tzinfo=UTC)  # not sent yet: listed first
        found.sort(key=lambda sms: (sms.sent_at or never, sms.created), reverse=True)
        size = int(fields.get("PageSize", "50"))
        page = int(fields.get("Page", "0"))
        start = page * size
        shown = found[start : start + size]
        filters = [(k, v) for k, v in query if k not in ("PageSize", "Page", "PageToken")]
        base = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages.json"

        def uri(number: int) -> str:
            token = [("PageToken", f"PA{secrets.token_hex(16)}")] if number else []
            return f"{base}?{urlencode([*filters, ('PageSize', size), ('Page', number), *token])}"

        body = {
            "end": start + len(shown) - 1 if shown else 0,
            "first_page_uri": uri(0),
            "next_page_uri": uri(page + 1) if start + size < len(found) else None,
            "page": page,
            "page_size": size,
            "previous_page_uri": uri(page - 1) if page else None,
            "start": start,
            "uri": uri(page),
            "messages": [self._resource(sms) for sms in shown],
        }
        return web.json_response(body)

    def _twilio_rules(self, form: list[tuple[str, str]]) -> list[str]:
        """What the API enforces beyond the schema."""
        fields = dict(form)
        media = [value for key, value in form if key == "MediaUrl"]
        problems = []
        # Stricter than Twilio, which allows From together with a Messaging Service: our adapter
        # picks one sender, so both at once is a bug here.
        if ("From" in fields) == ("MessagingServiceSid" in fields):
            problems.append("exactly one of From and MessagingServiceSid must be given")
        if not fields.get("Body") and not media and "ContentSid" not in fields:
            problems.append("one of Body, MediaUrl (or ContentSid) is required")
        if len(fields.get("Body", "")) > MAX_BODY:
            problems.append(f"Body has {len(fields['Body'])} characters, more than {MAX_BODY}")
        if len(media) > MAX_MEDIA:
            problems.append(f"{len(media)} MediaUrl given, at most {MAX_MEDIA}")
        return problems

    def _accept(self, form: list[tuple[str, str]]) -> web.Response:
        fields = dict(form)
        to = fields["To"]
        if not _E164.match(to):
            return _error(400, ERR_INVALID_TO, f"The 'To' number {to} is not a valid phone number.")
        if to in self.landlines:
            return _error(400, ERR_NOT_MOBILE, f"To number: {to}, is not a mobile number")
        if to in self.opted_out:
            return _error(400, ERR_OPTED_OUT, "Attempt to send to unsubscribed recipient")
        media = [value for key, value in form if key == "MediaUrl"]
        body = fields.get("Body", "")
        sms = SentSms(
            to=to,
            from_=fields.get("From"),
            messaging_service_sid=fields.get("MessagingServiceSid"),
            body=body,
            media_urls=media,
            status_callback=fields.get("StatusCallback"),
            sid=new_sid("SM"),
            num_segments=1 if media else segment_count(body),  # an MMS is one message
            params=form,
        )
        self.sent.append(sms)
        return web.json_response(self._resource(sms), status=201)

    def _resource(self, sms: SentSms) -> dict[str, Any]:
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sms.sid}"
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": sms.body,
            "date_created": rfc2822(sms.created),
            "date_sent": rfc2822(sms.sent_at) if sms.sent_at else None,
            "date_updated": rfc2822(),
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": sms.from_,
            "messaging_service_sid": sms.messaging_service_sid,
            "num_media": str(len(sms.media_urls)),
            "num_segments": str(sms.num_segments),
            "price": None,
            "price_unit": "USD",
            "sid": sms.sid,
            "status": sms.status,
            "subresource_uris": {"media": f"{uri}/Media.json", "feedback": f"{uri}/Feedback.json"},
            "to": sms.to,
            "uri": f"{uri}.json",
        }

    async def _media_first_hop(self, request: web.Request) -> web.Response:
        self.media_requests += 1
        if not self._authorised(request):
            return self._refuse_auth()
        media = self._media.get(request.match_info["Sid"])
        if (
            media is None
            or media.expired
            or media.message_sid != request.match_info["MessageSid"]
            or request.match_info["AccountSid"] != self.account_sid
        ):
            return _error(404, ERR_NOT_FOUND, f"The requested resource {request.path} was not found")
        # Twilio answers with a temporary redirect to a signed storage URL on another host.
        raise web.HTTPTemporaryRedirect(f"{self.storage_url}/media/{media.token}")

    async def _media_storage(self, request: web.Request) -> web.Response:
        if "Authorization" in request.headers:
            # S3 refuses a pre-signed URL that also carries an Authorization header.
            return web.Response(status=400, text="InvalidArgument: Only one auth mechanism allowed")
        media = self._media_by_token.get(request.match_info["token"])
        if media is None or media.expired:
            return web.Response(status=404, text="NoSuchKey")
        return web.Response(body=media.data, content_type=media.content_type)


def _code_for(problems: Sequence[str]) -> int:
    text = " ".join(problems)
    if "'To' is missing" in text:
        return ERR_TO_REQUIRED
    if "From and MessagingServiceSid" in text:
        return ERR_FROM_REQUIRED
    if "Body, MediaUrl" in text:
        return ERR_BODY_REQUIRED
    if "characters, more than" in text:
        return ERR_BODY_TOO_LONG
    return 21600  # a generic invalid-parameter code


def inbound_params(
    account_sid: str,
    *,
    sid: str,
    from_: str,
    to: str,
    body: str,
    media: Iterable[tuple[str, str]] = (),
    messaging_service_sid: str | None = None,
) -> dict[str, str]:
    """The form Twilio POSTs to the messaging webhook for an incoming SMS or MMS."""
    media = list(media)
    params = {
        "ToCountry": _country(to),
        "ToState": "",
        "SmsMessageSid": sid,
        "NumMedia": str(len(media)),
        "ToCity": "",
        "FromZip": "",
        "SmsSid": sid,
        "FromState": "",
        "SmsStatus": "received",
        "FromCity": "",
        "Body": body,
        "FromCountry": _country(from_),
        "To": to,
        "ToZip": "",
        "NumSegments": str(max(1, segment_count(body))),
        "MessageSid": sid,
        "AccountSid": account_sid,
        "From": from_,
        "ApiVersion": API_VERSION,
    }
    if messaging_service_sid:
        params["MessagingServiceSid"] = messaging_service_sid
    for index, (url, content_type) in enumerate(media):
        params[f"MediaContentType{index}"] = content_type
        params[f"MediaUrl{index}"] = url
    return params


def _country(number: str) -> str:
    for prefix in sorted(_COUNTRY_BY_PREFIX, key=len, reverse=True):
        if number.startswith(prefix):
            return _COUNTRY_BY_PREFIX[prefix]
    return ""
