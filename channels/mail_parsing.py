"""A received e-mail into what intake needs: who wrote, what they wrote (their reply only), which
ticket their mail client's thread names, the photos; and whether it is a person at all.

An automatic message (RFC 3834: Auto-Submitted other than "no", Precedence bulk/list/junk, a list's
or an auto-responder's headers, a mailer-daemon, our own address) is never answered and never becomes
a ticket. A bounce of one of our messages (a delivery status report, or a mailer-daemon's mail
quoting our Message-ID) names the message it failed to deliver: the reader reports it failed.
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.utils import getaddresses
from typing import Literal

from channels.mail_html import html_to_text
from channels.mail_quotes import reply_text

REFERENCE = re.compile(r"\[(\d{4}-\d{6})\]")
_OUR_ID = re.compile(r"^intake\.(?:(\d{4}-\d{6})\.)?([^@]+)@(.+)$")
_MESSAGE_ID = re.compile(r"<([^<>\s]+@[^<>\s]+)>")
_DAEMONS = ("mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon")
_PREFIXES = re.compile(r"^\s*((re|aw|sv|fw|fwd|답장|회신|전달)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)
_THREAD_IDS = 10  # of a long thread's References, the newest few are enough

Kind = Literal["citizen", "automatic", "bounce"]


@dataclass(frozen=True)
class Image:
    """A photo in the mail: `index` is its place among the message's MIME parts (walk order)."""

    index: int
    content_type: str
    filename: str | None
    data: bytes


@dataclass(frozen=True)
class ParsedMail:
    kind: Kind
    why: str  # why it is automatic, or what the bounce says
    sender: str  # the From address, lower-cased
    sender_name: str | None
    message_id: str | None  # without the angle brackets
    subject: str  # without "Re:" and our reference
    text: str  # the citizen's own words (quotes and signature cut)
    original_text: str  # the whole text part, uncut
    reference: str | None  # the ticket the mail names
    thread_ids: tuple[str, ...]  # this mail's References and its own id, oldest first
    images: tuple[Image, ...]
    bounced_key: str | None = None  # a bounce: the idempotency key of our message it returns


def message_from_bytes(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)  # the default policy's factory
    return message


def our_id(reference: str | None, key: str, domain: str) -> str:
    """The Message-ID we give a message (without brackets): the same for every try of one message,
    and naming the ticket, so a reply's In-Reply-To leads back to it."""
    return f"intake.{reference}.{key}@{domain}" if reference else f"intake.{key}@{domain}"


def read_our_id(message_id: str, domain: str) -> tuple[str | None, str] | None:
    """(reference, key) of one of our Message-IDs, None for anyone else's."""
    found = _OUR_ID.match(message_id)
    if found is None or found.group(3).lower() != domain.lower():
        return None
    return found.group(1), found.group(2)


def parse_mail(raw: bytes, *, own_addresses: tuple[str, ...], domain: str) -> ParsedMail:
    message = message_from_bytes(raw)
    sender, sender_name = _sender(message)
    subject = _header(message, "Subject")
    ids = _ids(_header(message, "References")) + _ids(_header(message, "In-Reply-To"))
    message_id = next(iter(_ids(_header(message, "Message-ID"))), None)
    thread = tuple(dict.fromkeys(ids + ([message_id] if message_id else [])))[-_THREAD_IDS:]
    original = _text_of(message)
    kind, why, key = _classify(message, sender, original, own_addresses, domain)
    reference = _reference(subject, ids, domain)
    return ParsedMail(
        kind=kind,
        why=why,
        sender=sender,
        sender_name=sender_name,
        message_id=message_id,
        subject=clean_subject(subject),
        text=reply_text(original) if kind == "citizen" else original,
        original_text=original,
        reference=reference,
        thread_ids=thread,
        images=_images(message) if kind == "citizen" else (),
        bounced_key=key,
    )


def clean_subject(subject: str) -> str:
    """A subject without "Re:"/"Fwd:" prefixes and our reference."""
    return " ".join(REFERENCE.sub(" ", _PREFIXES.sub("", subject)).split())


def _header(message: Message, name: str) -> str:
    try:
        value = message.get(name)
    except (ValueError, IndexError, TypeError):  # a header the parser cannot make sense of
        value = message.get_all(name, failobj=[""])[0] if message.get_all(name) else ""
    return " ".join(str(value or "").split())


def _sender(message: Message) -> tuple[str, str | None]:
    try:
        header = message.get("From")
        addresses: tuple[Address, ...] = tuple(getattr(header, "addresses", ()) or ())
    except (ValueError, IndexError, TypeError):
        addresses = ()
    if addresses and addresses[0].addr_spec and "@" in addresses[0].addr_spec:
        return addresses[0].addr_spec.lower(), addresses[0].display_name or None
    # An unusual header: the plain parser still finds the address.
    name, address = next(iter(getaddresses([str(message.get_all("From", [""])[0])])), ("", ""))
    return address.lower(), name or None


def _ids(value: str) -> list[str]:
    return _MESSAGE_ID.findall(value)


def _reference(subject: str, ids: list[str], domain: str) -> str | None:
    """`[2026-000123]` in the subject first (a helpdesk's way), then our Message-ID it replies to."""
    found = REFERENCE.search(subject)
    if found:
        return found.group(1)
    for message_id in reversed(ids):
        ours = read_our_id(message_id, domain)
        if ours is not None and ours[0] is not None:
            return ours[0]
    return None


def _text_of(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain", "html"))
    if body is None:
        return ""
    try:
        content = body.get_content()
    except (LookupError, ValueError, AssertionError):  # an unknown charset or a broken encoding
        payload = body.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    if not isinstance(content, str):
        return ""
    return html_to_text(content) if body.get_content_type() == "text/html" else content


def _images(message: EmailMessage) -> tuple[Image, ...]:
    images = []
    for index, part in enumerate(message.walk()):
        if part.get_content_maintype() != "image" or part.is_multipart():
            continue
        data = part.get_payload(decode=True)
        if isinstance(data, bytes) and data:
            images.append(Image(index, part.get_content_type(), part.get_filename(), data))
    return tuple(images)


def image_part(raw: bytes, index: int) -> Image | None:
    """The photo at `index` of a message fetched again (for `fetch_media`)."""
    return next((image for image in _images(message_from_bytes(raw)) if image.index == index), None)


def _classify(
    message: EmailMessage, sender: str, text: str, own: tuple[str, ...], domain: str
) -> tuple[Kind, str, str | None]:
    local = sender.split("@")[0]
    daemon = local in _DAEMONS
    report_type = str(message.get_param("report-type") or "").lower()
    report = message.get_content_type() == "multipart/report" and report_type == "delivery-status"
    if report or daemon:
        key, error, delayed = _bounce(message, text, domain)
        if key is not None and not delayed:
            return "bounce", error, key
        return "automatic", f"a {'delay notice' if delayed else 'report'} from {sender or 'nobody'}", None
    if message.get_content_type() == "multipart/report":  # a read receipt (MDN) and the like
        return "automatic", f"a {report_type or 'machine'} report", None
    auto = _header(message, "Auto-Submitted").lower()
    if auto and auto != "no":
        return "automatic", f"Auto-Submitted: {auto}", None
    precedence = _header(message, "Precedence").lower()
    if precedence in ("bulk", "list", "junk"):
        return "automatic", f"Precedence: {precedence}", None
    for name in ("X-Auto-Response-Suppress", "X-Autoreply", "X-Autorespond", "List-Id", "List-Unsubscribe"):
        if message.get(name) is not None:
            return "automatic", f"{name} header", None
    if not sender or "@" not in sender:
        return "automatic", "no sender address", None
    if sender in own:
        return "automatic", "sent from our own address", None
    return "citizen", "", None


def _bounce(message: EmailMessage, text: str, domain: str) -> tuple[str | None, str, bool]:
    """The key of our message a bounce returns, the diagnostic, and whether it is only a delay."""
    fields: list[tuple[str, str]] = []
    quoted = ""
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/delivery-status":
            for block in part.get_payload() or []:
                if isinstance(block, Message):
                    fields += [(name.lower(), " ".join(str(value).split())) for name, value in block.items()]
        elif kind in ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers"):
            quoted += part.as_string() if kind == "message/rfc822" else str(part.get_payload())
    actions = [value.lower() for name, value in fields if name == "action"]
    delayed = bool(actions) and all(action == "delayed" for action in actions)
    key = None
    for message_id in _ids(quoted + "\n" + text + "\n" + _header(message, "In-Reply-To")):
        ours = read_our_id(message_id, domain)
        if ours is not None:
            key = ours[1]
            break
    wanted = ("status", "diagnostic-code", "final-recipient")
    detail = "; ".join(f"{name}: {value}" for name, value in fields if name in wanted)
    first_lines = " ".join(line.strip() for line in text.strip().splitlines()[:3])
    return key, (detail or first_lines or "the mail could not be delivered")[:500], delayed
