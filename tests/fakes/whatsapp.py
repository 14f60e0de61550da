"""A fake Twilio for WhatsApp: the fake Twilio of twilio.py (the same Messages API, OpenAPI checks,
media and signed webhooks) with WhatsApp's rules on a send:

- addresses are `whatsapp:+E.164` on To and From;
- free text (Body, MediaUrl) only within 24 hours of the recipient's last message, as `clock` tells
  it; outside, HTTP 400 with Twilio's error 63016. An inbound message sent with `message()` (or
  `webhook()`) sets that recipient's clock; a test may set `last_inbound` itself;
- a template goes as ContentSid (one the test `approve`d) with ContentVariables, a JSON object whose
  keys are "1".."n" and whose values WhatsApp would take (not empty, no line breaks or tabs, no run
  of more than four spaces); Body and MediaUrl must then be left out. The recorded message's body is
  the template's text filled in, as Twilio lists it.

    async with FakeWhatsapp(account_sid, auth_token, clock=clock) as fake:
        sid = fake.approve("Ticket {{1}} is resolved. {{2}}")
        await fake.message(f"{public}/webhooks/whatsapp", whatsapp_params(...), connect_to=server)
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiohttp import web

from tests.fakes.server import FAILURE
from tests.fakes.twilio import API_VERSION, ERR_OPTED_OUT, FakeTwilio, SentSms, new_sid
from tests.fakes.twilio import _error as twilio_error

WINDOW = timedelta(hours=24)
ADDRESS = re.compile(r"whatsapp:\+[1-9]\d{1,14}")
# Twilio's error codes (https://www.twilio.com/docs/api/errors/NNNNN) for what this fake refuses.
ERR_INVALID_TO, ERR_NO_SENDER, ERR_OUTSIDE_WINDOW = 21211, 63007, 63016
ERR_CONTENT_SID, ERR_CONTENT_VARIABLES, ERR_INVALID_PARAMETER = 21655, 21656, 21600
_PLACEHOLDER = re.compile(r"\{\{(\d+)\}\}")


@dataclass
class SentWhatsapp(SentSms):
    content_sid: str | None = None
    content_variables: dict[str, str] | None = None


@dataclass(frozen=True)
class Template:
    """An approved template: its Content SID and its text with {{1}}, {{2}}, ..."""

    sid: str
    text: str

    @property
    def placeholders(self) -> int:
        return len(set(_PLACEHOLDER.findall(self.text)))

    def render(self, variables: dict[str, str]) -> str:
        return _PLACEHOLDER.sub(lambda m: variables.get(m.group(1), m.group(0)), self.text)


def _variables_problem(raw: str, template: Template) -> str | dict[str, str]:
    """ContentVariables as WhatsApp takes them, or why not."""
    try:
        variables = json.loads(raw)
    except ValueError as exc:
        return f"ContentVariables is not JSON: {exc}"
    if not isinstance(variables, dict):
        return "ContentVariables must be a JSON object"
    expected = [str(n) for n in range(1, len(variables) + 1)]
    if sorted(variables, key=lambda k: int(k) if k.isdigit() else -1) != expected:
        return f"ContentVariables keys must be 1..n, got {sorted(variables)}"
    if len(variables) > template.placeholders:
        return f"ContentVariables has {len(variables)} values; the template has {template.placeholders}"
    for key, value in variables.items():
        if not isinstance(value, str) or not value.strip():
            return f"variable {key} is empty or not a string"
        if re.search(r"[\n\t]| {5,}", value):
            return f"variable {key} has a line break, a tab or more than four spaces in a row"
    return variables


class FakeWhatsapp(FakeTwilio):
    """`async with FakeWhatsapp(account_sid, auth_token, clock=...) as fake:`; see the module's text."""

    def __init__(
        self,
        account_sid: str | None = None,
        auth_token: str | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(account_sid, auth_token)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.last_inbound: dict[str, datetime] = {}  # by the citizen's whatsapp: address
        self.templates: dict[str, Template] = {}

    def approve(self, text: str) -> str:
        """A template approved by WhatsApp; returns its Content SID."""
        sid = new_sid("HX")
        self.templates[sid] = Template(sid, text)
        return sid

    def error(self, status: int, request: web.Request) -> web.StreamResponse:
        """As Twilio's, or with the error code given to `fail_next(error="63018")`."""
        code = request.get(FAILURE, "")
        if code.isdigit():
            retry = {"Retry-After": str(self.retry_after)} if status == 429 else None
            return twilio_error(status, int(code), f"Failure {code}", retry)
        return super().error(status, request)

    def in_window(self, address: str) -> bool:
        last = self.last_inbound.get(address)
        return last is not None and self.clock() - last < WINDOW

    def to(self, address: str) -> list[SentWhatsapp]:
        return [sent for sent in self.sent if sent.to == address and isinstance(sent, SentWhatsapp)]

    # --- what Twilio sends to the app

    async def webhook(
        self, url: str, params: dict[str, str], *, signature: str | None = None, connect_to: str = ""
    ) -> int:
        if params.get("SmsStatus") == "received" and ADDRESS.fullmatch(params.get("From", "")):
            self.last_inbound[params["From"]] = self.clock()  # WhatsApp has it before we are told
        return await super().webhook(url, params, signature=signature, connect_to=connect_to)

    async def message(self, url: str, params: dict[str, str], *, connect_to: str = "") -> int:
        """A citizen's message, posted to the app's `/webhooks/whatsapp` at `url`, signed."""
        return await self.webhook(url, params, connect_to=connect_to)

    # --- sending

    def _accept(self, fields: dict[str, str], media: list[str]) -> web.Response:
        to, sender = fields["To"], fields.get("From")
        if not ADDRESS.fullmatch(to):
            return twilio_error(400, ERR_INVALID_TO, f"The 'To' number {to} is not a valid WhatsApp address.")
        if sender is not None and not ADDRESS.fullmatch(sender):
            message = "Twilio could not find a Channel with the specified From address"
            return twilio_error(400, ERR_NO_SENDER, message)
        if to in self.opted_out:
            return twilio_error(400, ERR_OPTED_OUT, "Attempt to send to unsubscribed recipient")
        service, callback = fields.get("MessagingServiceSid"), fields.get("StatusCallback")
        content_sid = fields.get("ContentSid")
        if content_sid is None:
            if not self.in_window(to):
                text = "Failed to send freeform message because you are outside the allowed window."
                return twilio_error(400, ERR_OUTSIDE_WINDOW, f"{text} Please use a Template.")
            sent = SentWhatsapp(to, sender, service, fields.get("Body", ""), media, callback)
        else:
            if "Body" in fields or media:
                message = "Leave out Body and MediaUrl when sending a ContentSid"
                return twilio_error(400, ERR_INVALID_PARAMETER, message)
            template = self.templates.get(content_sid)
            if template is None:
                return twilio_error(400, ERR_CONTENT_SID, f"The Content SID {content_sid} is invalid")
            variables = _variables_problem(fields.get("ContentVariables", "{}"), template)
            if isinstance(variables, str):
                return twilio_error(400, ERR_CONTENT_VARIABLES, variables)
            body = template.render(variables)
            sent = SentWhatsapp(to, sender, service, body, [], callback, content_sid=content_sid)
            sent.content_variables = variables
        sent.num_segments = 1  # WhatsApp is billed by message (and Meta by conversation), not segment
        self.sent.append(sent)
        return web.json_response(self._resource(sent), status=201)


def whatsapp_params(
    account_sid: str,
    *,
    sid: str,
    from_: str,
    to: str,
    body: str,
    media: Iterable[tuple[str, str]] = (),
    profile_name: str = "",
    location: tuple[float, float, str] | None = None,
    messaging_service_sid: str | None = None,
) -> dict[str, str]:
    """The form Twilio POSTs to the messaging webhook for an incoming WhatsApp message (`from_` and
    `to` are whatsapp: addresses); `location` is (latitude, longitude, address) of a shared place."""
    media = list(media)
    kind = "location" if location else ("image" if media else "text")
    params = {
        "To": to,
        "From": from_,
        "Body": body,
        "ProfileName": profile_name,
        "WaId": from_.split("+")[-1],
    }
    params |= {"MessageSid": sid, "SmsMessageSid": sid, "SmsSid": sid, "SmsStatus": "received"}
    params |= {"AccountSid": account_sid, "ApiVersion": API_VERSION, "NumMedia": str(len(media))}
    params |= {"NumSegments": "1", "MessageType": kind, "ReferralNumMedia": "0"}
    if location:
        params |= {"Latitude": str(location[0]), "Longitude": str(location[1]), "Address": location[2]}
    if messaging_service_sid:
        params["MessagingServiceSid"] = messaging_service_sid
    for index, (url, content_type) in enumerate(media):
        params |= {f"MediaContentType{index}": content_type, f"MediaUrl{index}": url}
    return params
