"""The e-mail we send: threaded so the citizen's mail client shows it under their own mail, marked
as automatic (RFC 3834) so auto-responders do not answer it, in plain text and simple HTML.

The Message-ID comes from the outbox row's idempotency key, so a resend after a crash carries the
same id (clients that saw the first copy show one), and it names the ticket, so a reply's
In-Reply-To leads back to it even when the subject lost the reference.
"""

from __future__ import annotations

import hashlib
import html
import json
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses

from channels.base import OutboundMessage, buttons_as_text
from channels.mail_parsing import our_id

_KEPT_IDS = 5  # the citizen's latest Message-IDs kept per thread


@dataclass(frozen=True)
class Thread:
    """What the reader keeps of a citizen's mail thread (host.remember): its subject and their
    latest Message-IDs, oldest first."""

    subject: str
    ids: tuple[str, ...]

    def to_json(self) -> str:
        return json.dumps({"subject": self.subject, "ids": list(self.ids)}, ensure_ascii=False)

    @classmethod
    def from_json(cls, value: str | None) -> Thread | None:
        if not value:
            return None
        try:
            data = json.loads(value)
            return cls(str(data.get("subject") or ""), tuple(str(i) for i in data.get("ids") or ()))
        except (ValueError, AttributeError, TypeError):
            return None

    def joined(self, subject: str, ids: tuple[str, ...]) -> Thread:
        """This thread after another mail in it (its subject, if it has one, becomes the thread's)."""
        merged = tuple(dict.fromkeys(self.ids + ids))[-_KEPT_IDS:]
        return Thread(subject or self.subject, merged)


def thread_key(reference: str | None, address: str) -> str:
    """The memory's name for a thread: "citizen:" so that the retention purge forgets it (it holds
    a subject), and short enough for the store (255) even for the longest address."""
    if reference:
        return f"citizen:thread:{reference}"
    address = address.lower()
    if len(address) > 200:
        address = "sha256:" + hashlib.sha256(address.encode()).hexdigest()
    return f"citizen:thread:{address}"


def sender_address(from_address: str) -> Address:
    """`from_address` as configured ("City Hall <help@city.example>" or just the address)."""
    name, address = getaddresses([from_address])[0]
    local, _, domain = address.partition("@")
    return Address(display_name=name, username=local, domain=domain)


def build_mail(
    message: OutboundMessage,
    *,
    from_address: str,
    thread: Thread | None,
    default_subject: str,
    now: datetime,
) -> EmailMessage:
    sender = sender_address(from_address)
    reference = (message.variables or {}).get("reference") or None
    text = buttons_as_text(message.text, message.buttons)
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = message.recipient
    mail["Subject"] = subject_for(thread.subject if thread else "", reference, default_subject)
    mail["Date"] = format_datetime(now)
    mail["Message-ID"] = f"<{our_id(reference, message.idempotency_key, sender.domain)}>"
    if thread and thread.ids:
        mail["In-Reply-To"] = f"<{thread.ids[-1]}>"
        mail["References"] = " ".join(f"<{i}>" for i in thread.ids)
    mail["Auto-Submitted"] = "auto-replied"
    # Asks Exchange and Outlook not to send their out-of-office answers back to us.
    mail["X-Auto-Response-Suppress"] = "All"
    mail.set_content(text, cte="8bit" if text.isascii() else "base64")
    mail.add_alternative(as_html(text), subtype="html")
    return mail


def subject_for(their_subject: str, reference: str | None, default_subject: str) -> str:
    tag = f" [{reference}]" if reference else ""
    if their_subject:
        return f"Re: {their_subject}{tag}"
    return f"{default_subject}{tag}"


def as_html(text: str) -> str:
    """The text as simple HTML: escaped, paragraphs at blank lines, line breaks kept; nothing remote."""
    paragraphs = [p.strip("\n") for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]
    body = "\n".join(
        "<p>" + "<br>\n".join(html.escape(line) for line in p.split("\n")) + "</p>" for p in paragraphs
    )
    return f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head><body>\n{body}\n</body></html>\n'
