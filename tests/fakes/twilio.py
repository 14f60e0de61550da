"""A fake Twilio on the shared `RecordingServer` (server.py) with only what `channels/sms.py` and the
twilio SDK calls it makes use: sending, listing what was sent (by To and From, in pages) and media,
whose URL redirects to storage on a second server that refuses a client still carrying the Basic auth,
as S3 does. Every request is checked against Twilio's OpenAPI description (trimmed in specs/, see
specs/TWILIO-LICENSE.txt): what the real API would refuse is refused and listed in `spec_violations`.
Point the SDK at it with `client.api.base_url = fake.base_url`.
"""

from __future__ import annotations

import json
import math
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import aiohttp
from aiohttp import web
from twilio.request_validator import RequestValidator

from tests.fakes.server import Recorded, RecordingServer

SPEC_PATH = Path(__file__).resolve().parent / "specs" / "twilio_api_v2010.json"
API_VERSION = "2010-04-01"
MESSAGES_PATH = "/2010-04-01/Accounts/{AccountSid}/Messages.json"
MEDIA_PATH = "/2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media/{Sid}"
MAX_BODY, MAX_MEDIA = 1600, 10  # characters in one Body; MediaUrl parameters in one message
# Twilio's error codes (https://www.twilio.com/docs/errors/NNNNN) for what the fake answers.
ERR_AUTH, ERR_NOT_FOUND, ERR_TOO_MANY, ERR_INTERNAL, ERR_UNAVAILABLE = 20003, 20404, 20429, 20500, 20503
ERR_INVALID_PARAMETER, ERR_INVALID_TO, ERR_OPTED_OUT, ERR_NOT_MOBILE = 21600, 21211, 21610, 21614
_CODE_BY_PROBLEM = {"'To' is missing": 21604, "From and MessagingServiceSid": 21603, "Body, MediaUrl": 21602}
_CODE_BY_PROBLEM["characters, more than"] = 21617

_HELD = web.RequestKey("held", bool)
_OPERATIONS = {("POST", MESSAGES_PATH): "CreateMessage", ("GET", MESSAGES_PATH): "ListMessage"}
_OPERATIONS[("GET", MEDIA_PATH)] = "FetchMedia"  # the authenticated first hop of a media URL
_COUNTRY = {"+82": "KR", "+1": "US", "+44": "GB", "+81": "JP", "+86": "CN", "+84": "VN"}


def new_sid(prefix: str) -> str:
    """A Twilio sid: two letters and 32 hex digits (SM message, MM media message, ME media, AC account)."""
    return prefix + secrets.token_hex(16)


def sign(auth_token: str, url: str, params: dict[str, str]) -> str:
    """X-Twilio-Signature for a POST of `params` to `url`, computed as Twilio computes it."""
    signature: str = RequestValidator(auth_token).compute_signature(url, params)
    return signature


# --- SMS segments, written apart from channels/segments.py on purpose: the fake must not share a bug.

_GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_ESCAPED = set("^{}\\[~]|€\f")  # sent as ESC + char: two septets


def segment_count(text: str) -> int:
    """How many segments Twilio bills `text` as: GSM-7 160 (153 per part when split), else UCS-2
    70 UTF-16 units (67 per part); a two-unit character (escape or surrogate pair) is never split."""
    if all(c in _GSM7 or c in _GSM7_ESCAPED for c in text):
        costs, single, part = [2 if c in _GSM7_ESCAPED else 1 for c in text], 160, 153
    else:
        costs, single, part = [len(c.encode("utf-16-le")) // 2 for c in text], 70, 67
    if sum(costs) <= single:
        return min(1, len(text))
    count, used = 1, 0
    for cost in costs:
        count, used = (count + 1, cost) if used + cost > part else (count, used + cost)
    return count


# --- Requests against the OpenAPI description (form and query values are strings on the wire).


SPEC: dict[str, Any] = json.loads(SPEC_PATH.read_text(encoding="utf-8"))


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = SPEC["components"]["schemas"][schema["$ref"].removeprefix("#/components/schemas/")]
    return schema


def _value_problem(name: str, value: str, schema: dict[str, Any]) -> str | None:
    """Why `value` does not fit its scalar schema (type, range, enum, pattern, URL format), or None."""
    low, high = schema.get("minimum", -math.inf), schema.get("maximum", math.inf)
    if schema.get("type") == "boolean" and value not in ("true", "false"):
        return f"{name}={value!r} is not a boolean"
    if schema.get("type") == "integer" and not (re.fullmatch(r"-?\d+", value) and low <= int(value) <= high):
        return f"{name}={value!r} is not an integer in {low}..{high}"
    if "enum" in schema and value not in schema["enum"]:
        return f"{name}={value!r} is not one of {schema['enum']}"
    if "pattern" in schema and not re.search(schema["pattern"], value):
        return f"{name}={value!r} does not match {schema['pattern']}"
    url = urlsplit(value)
    if schema.get("format") == "uri" and not schema.get("x-twilio", {}).get("ignoreFormat"):
        return None if url.scheme in ("http", "https") and url.hostname else f"{name}={value!r} is not a URL"
    return None


def request_problems(request: Recorded) -> list[str]:
    """Why a request is not one Twilio's API takes ([] if it is): the spec's operation (its path, query
    and form parameters) and what the API enforces beyond it."""
    if request.endpoint not in ("CreateMessage", "ListMessage"):
        return [] if request.endpoint == "FetchMedia" else ["not an operation the fake serves"]
    operation: dict[str, Any] = SPEC["paths"][MESSAGES_PATH][request.method.lower()]
    schemas = {p["name"]: p["schema"] for p in operation["parameters"]}
    given, required = [("AccountSid", request.path.split("/")[3]), *request.query.items()], []
    if "requestBody" in operation:
        content_type = {k.lower(): v for k, v in request.headers.items()}.get("content-type", "")
        if content_type.split(";")[0] != "application/x-www-form-urlencoded":
            return [f"content type {content_type!r} is not application/x-www-form-urlencoded"]
        try:
            given += parse_qsl(raw := request.body.decode(), keep_blank_values=True, strict_parsing=bool(raw))
        except (UnicodeDecodeError, ValueError) as exc:
            return [f"the body is not a form: {exc}"]
        form = _resolve(operation["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"])
        schemas, required = schemas | form["properties"], form["required"]
    found = []
    for name in dict.fromkeys(name for name, _ in given):
        values, schema = [v for key, v in given if key == name], _resolve(schemas.get(name, {}))
        if not schema:
            found.append(f"unknown parameter {name!r}")
        elif schema.get("type") != "array" and len(values) > 1:
            found.append(f"parameter {name!r} given {len(values)} times")
        item = _resolve(schema.get("items", schema))
        found += [p for v in values if schema and (p := _value_problem(name, v, item))]
    fields, media = dict(given), [value for key, value in given if key == "MediaUrl"]
    found += [f"required parameter {name!r} is missing" for name in required if name not in fields]
    if request.endpoint == "ListMessage":
        return found
    # Beyond the schema: a sender (stricter than Twilio, which takes both), something to send, limits.
    body = fields.get("Body", "")
    if ("From" in fields) == ("MessagingServiceSid" in fields):
        found.append("exactly one of From and MessagingServiceSid must be given")
    if not body and not media and "ContentSid" not in fields:
        found.append("one of Body, MediaUrl (or ContentSid) is required")
    if len(body) > MAX_BODY:
        found.append(f"Body has {len(body)} characters, more than {MAX_BODY}")
    return found + ([f"{len(media)} MediaUrl given, at most {MAX_MEDIA}"] if len(media) > MAX_MEDIA else [])


@dataclass
class SentSms:
    to: str
    from_: str | None
    messaging_service_sid: str | None
    body: str
    media_urls: list[str]
    status_callback: str | None
    sid: str = field(default_factory=lambda: new_sid("SM"))
    at: float = field(default_factory=time.monotonic)
    num_segments: int = 0
    status: str = "queued"  # moved on by deliver()
    created: datetime = field(default_factory=lambda: datetime.now(UTC))  # date_created; a test may move it
    sent_at: datetime | None = None  # date_sent: set once deliver() moves it past queued


@dataclass
class _Media:
    message_sid: str
    data: bytes
    content_type: str
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))  # its key in storage
    expired: bool = False


def _error(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    """Twilio's JSON error body (what TwilioRestException reads: code and message)."""
    body = {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}"}
    return web.json_response(body | {"status": status}, status=status, headers=headers)


class FakeTwilio(RecordingServer):
    """`async with FakeTwilio(account_sid, auth_token) as fake:`. Endpoints (for `fail_next`, `of`) are
    the spec's operation ids: CreateMessage, ListMessage, and FetchMedia (a media URL's first hop)."""

    def __init__(self, account_sid: str | None = None, auth_token: str | None = None) -> None:
        super().__init__()
        self.account_sid = account_sid or new_sid("AC")
        self.auth_token = auth_token or secrets.token_hex(16)
        self.retry_after = 1  # seconds, in the Retry-After header of a 429
        self.storage_url = ""
        self.sent: list[SentSms] = []
        self.opted_out: set[str] = set()  # numbers Twilio refuses with 21610 (they texted STOP)
        self.landlines: set[str] = set()  # numbers Twilio refuses with 21614 (not a mobile number)
        self._media: dict[str, _Media] = {}  # by media sid

    @property
    def spec_violations(self) -> list[str]:
        return [f"{r.method} {r.path}: {problem}" for r in self.requests for problem in request_problems(r)]

    @property
    def attempts(self) -> int:  # sends, whatever their answer
        return len(self.of("CreateMessage"))

    @property
    def failed_attempts(self) -> int:  # sends not answered 201, one still held by `hang` included
        return sum(r.status != 201 for r in self.of("CreateMessage"))

    @property
    def listings(self) -> list[dict[str, str]]:  # the query of each listing
        return [r.query for r in self.of("ListMessage")]

    @property
    def media_requests(self) -> int:
        return len(self.of("FetchMedia"))

    def add_media(self, message_sid: str, data: bytes, content_type: str) -> str:
        """Store media of an inbound MMS; returns its URL, which needs the account's Basic auth."""
        sid = new_sid("ME")
        self._media[sid] = _Media(message_sid, data, content_type)
        return f"{self.base_url}/{API_VERSION}/Accounts/{self.account_sid}/Messages/{message_sid}/Media/{sid}"

    def expire_media(self, url: str) -> None:
        """From now on the media URL (and its storage copy) answers 404, as after Twilio deleted it."""
        self._media[url.rstrip("/").rsplit("/", 1)[-1]].expired = True

    # --- what Twilio sends to the app

    async def webhook(
        self, url: str, params: dict[str, str], *, signature: str | None = None, connect_to: str = ""
    ) -> int:
        """POST `params` to `url`, signed over `url` (unless `signature` is given); the app's HTTP status.
        `connect_to` ("http://127.0.0.1:PORT") is where it really goes, as through a proxy to `url`."""
        signature = sign(self.auth_token, url, params) if signature is None else signature
        headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature}
        path = urlsplit(url)._replace(scheme="", netloc="").geturl()
        target = f"{connect_to.rstrip('/')}{path}" if connect_to else url
        async with self.http.post(target, data=urlencode(params), headers=headers) as response:
            await response.read()
            return response.status

    async def deliver(
        self, sid: str, status: str = "delivered", error_code: int | None = None, connect_to: str = ""
    ) -> int:
        """Send the message's status callback as Twilio does; the app's HTTP status (`connect_to`: see
        `webhook`). A status past queued gives the message its date_sent."""
        sms = next(sms for sms in self.sent if sms.sid == sid)
        if not sms.status_callback:
            raise ValueError(f"message {sid} was sent without a StatusCallback")
        params = {"AccountSid": self.account_sid, "ApiVersion": API_VERSION, "To": sms.to}
        params |= {"From": sms.from_ or "+15005550006", "MessageSid": sid, "SmsSid": sid}
        params |= {"MessageStatus": status, "SmsStatus": status}
        if sms.messaging_service_sid:
            params["MessagingServiceSid"] = sms.messaging_service_sid
        if status in ("failed", "undelivered"):
            params["ErrorCode"] = str(error_code or 30003)
        sms.status = status
        if status not in ("queued", "accepted", "sending") and sms.sent_at is None:
            sms.sent_at = datetime.now(UTC)
        await self.changed()
        return await self.webhook(sms.status_callback, params, connect_to=connect_to)

    # --- serving

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(MESSAGES_PATH, self._create),
            web.get(MESSAGES_PATH, self._list),
            web.get(MEDIA_PATH, self._media_first_hop),
            web.route("*", "/{tail:.*}", self._unknown),
        ]

    def endpoint(self, request: web.Request) -> str:
        # Called as a request arrives: a send that `hang` holds is answered 503 once let go, not taken
        # by a Twilio whose client timed out long ago (RecordingServer would hand it to `_create`).
        if self.hang:
            request[_HELD] = True
        resource = request.match_info.route.resource
        return _OPERATIONS.get((request.method, resource.canonical if resource else ""), "unknown")

    def error(self, status: int, request: web.Request) -> web.StreamResponse:
        code = {429: ERR_TOO_MANY, 503: ERR_UNAVAILABLE}.get(status, ERR_INTERNAL)
        retry = {"Retry-After": str(self.retry_after)} if status == 429 else None
        return _error(status, code, "Service Unavailable" if status == 503 else f"Failure {status}", retry)

    async def __aenter__(self) -> FakeTwilio:
        await super().__aenter__()
        storage = web.Application()  # not recorded, and never down: only the API has outages
        storage.router.add_get("/media/{token}", self._media_storage)
        self.storage_url = await self.serve(storage)
        return self

    def _refusal(self, request: web.Request, problems: list[str], code: int) -> web.Response | None:
        """Twilio's answer to a request it refuses: wrong credentials (or account), or outside its API."""
        expected = aiohttp.encode_basic_auth(self.account_sid, self.auth_token)
        authorised = request.headers.get("Authorization") == expected
        if authorised and problems:
            return _error(400, code, "; ".join(problems))
        if authorised and request.match_info["AccountSid"] == self.account_sid:
            return None
        challenge = {"WWW-Authenticate": 'Basic realm="Twilio API"'}
        return _error(401, ERR_AUTH, "Authentication Error - invalid username", challenge)

    @staticmethod
    async def _recorded(request: web.Request, endpoint: str) -> Recorded:
        body, headers = await request.read(), dict(request.headers)
        return Recorded(request.method, request.path, endpoint, dict(request.query), body, headers)

    async def _unknown(self, request: web.Request) -> web.Response:
        return _error(404, ERR_NOT_FOUND, f"The requested resource {request.path} was not found")

    async def _create(self, request: web.Request) -> web.StreamResponse:
        if _HELD in request:
            return self.error(503, request)
        problems = request_problems(await self._recorded(request, "CreateMessage"))
        joined = " ".join(problems)  # Twilio's code for a problem it has one for, else 21600
        code = next((c for text, c in _CODE_BY_PROBLEM.items() if text in joined), ERR_INVALID_PARAMETER)
        if refused := self._refusal(request, problems, code):
            return refused
        form = parse_qsl((await request.read()).decode(), keep_blank_values=True)
        return self._accept(dict(form), [value for key, value in form if key == "MediaUrl"])

    def _accept(self, fields: dict[str, str], media: list[str]) -> web.Response:
        """A send that passed the API's checks: refused for its recipient, or recorded (201)."""
        to, body = fields["To"], fields.get("Body", "")
        if not re.fullmatch(r"\+[1-9]\d{1,14}", to):
            return _error(400, ERR_INVALID_TO, f"The 'To' number {to} is not a valid phone number.")
        if to in self.landlines:
            return _error(400, ERR_NOT_MOBILE, f"To number: {to}, is not a mobile number")
        if to in self.opted_out:
            return _error(400, ERR_OPTED_OUT, "Attempt to send to unsubscribed recipient")
        sender, service, callback = (fields.get(n) for n in ("From", "MessagingServiceSid", "StatusCallback"))
        sms = SentSms(to, sender, service, body, media, callback)
        sms.num_segments = 1 if media else segment_count(body)  # an MMS is one message
        self.sent.append(sms)
        return web.json_response(self._resource(sms), status=201)

    async def _list(self, request: web.Request) -> web.Response:
        """The messages sent to To from From, as Twilio lists them: those not sent yet first, then the
        newest date_sent first, in pages of PageSize (50) that link on to the next."""
        problems = request_problems(await self._recorded(request, "ListMessage"))
        if refused := self._refusal(request, problems, ERR_INVALID_PARAMETER):
            return refused
        query = request.query
        if unsupported := sorted(set(query) - {"To", "From", "PageSize", "Page", "PageToken"}):
            return _error(501, ERR_INTERNAL, f"the fake does not filter by {unsupported}")
        to, sender = query.get("To"), query.get("From")
        found = [sms for sms in self.sent if to in (None, sms.to) and sender in (None, sms.from_)]
        never = datetime.max.replace(tzinfo=UTC)
        found.sort(key=lambda sms: (sms.sent_at or never, sms.created), reverse=True)
        size, page = int(query.get("PageSize", "50")), int(query.get("Page", "0"))
        start, shown = page * size, found[page * size : (page + 1) * size]
        links = [(k, v) for k, v in query.items() if k in ("To", "From")] + [("PageSize", str(size))]
        links += [("Page", str(page + 1)), ("PageToken", f"PA{secrets.token_hex(16)}")]
        more = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages.json?{urlencode(links)}"
        body: dict[str, Any] = {"page": page, "page_size": size, "uri": request.path_qs}
        body |= {"start": start, "end": start + len(shown) - 1 if shown else 0}
        body |= {"next_page_uri": more if start + size < len(found) else None}
        return web.json_response(body | {"messages": [self._resource(sms) for sms in shown]})

    def _resource(self, sms: SentSms) -> dict[str, Any]:
        """A Message as Twilio's JSON has it (the spec's api.v2010.account.message)."""
        uri, date = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sms.sid}", format_datetime
        resource: dict[str, Any] = {"account_sid": self.account_sid, "api_version": API_VERSION}
        resource |= {"sid": sms.sid, "from": sms.from_, "to": sms.to, "body": sms.body, "status": sms.status}
        resource |= {"messaging_service_sid": sms.messaging_service_sid, "direction": "outbound-api"}
        resource |= {"num_media": str(len(sms.media_urls)), "num_segments": str(sms.num_segments)}
        resource |= {"date_created": date(sms.created), "date_updated": date(datetime.now(UTC))}
        resource |= {"date_sent": date(sms.sent_at) if sms.sent_at else None, "price_unit": "USD"}
        resource |= dict.fromkeys(("error_code", "error_message", "price"))
        subresources = {"media": f"{uri}/Media.json", "feedback": f"{uri}/Feedback.json"}
        return resource | {"subresource_uris": subresources, "uri": f"{uri}.json"}

    async def _media_first_hop(self, request: web.Request) -> web.Response:
        if refused := self._refusal(request, [], ERR_INVALID_PARAMETER):
            return refused
        media = self._media.get(request.match_info["Sid"])
        if media is None or media.expired or media.message_sid != request.match_info["MessageSid"]:
            return await self._unknown(request)
        # Twilio answers with a temporary redirect to a signed storage URL on another host.
        raise web.HTTPTemporaryRedirect(f"{self.storage_url}/media/{media.token}")

    async def _media_storage(self, request: web.Request) -> web.Response:
        if "Authorization" in request.headers:  # S3 refuses a pre-signed URL with a second credential
            return web.Response(status=400, text="InvalidArgument: Only one auth mechanism allowed")
        token = request.match_info["token"]
        media = next((m for m in self._media.values() if m.token == token and not m.expired), None)
        if media is None:
            return web.Response(status=404, text="NoSuchKey")
        return web.Response(body=media.data, content_type=media.content_type)


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
    media, country = list(media), {n: _COUNTRY.get(n[:3]) or _COUNTRY.get(n[:2], "") for n in (to, from_)}
    params = {"To": to, "ToCountry": country[to], "ToState": "", "ToCity": "", "ToZip": "", "Body": body}
    params |= {"From": from_, "FromCountry": country[from_], "FromState": "", "FromCity": "", "FromZip": ""}
    params |= {"MessageSid": sid, "SmsMessageSid": sid, "SmsSid": sid, "SmsStatus": "received"}
    params |= {"AccountSid": account_sid, "ApiVersion": API_VERSION, "NumMedia": str(len(media))}
    params["NumSegments"] = str(max(1, segment_count(body)))
    if messaging_service_sid:
        params["MessagingServiceSid"] = messaging_service_sid
    for index, (url, content_type) in enumerate(media):
        params |= {f"MediaContentType{index}": content_type, f"MediaUrl{index}": url}
    return params
