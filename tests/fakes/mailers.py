"""Mail as citizens' mail clients and mail servers write it, for putting into the test mailbox."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

CITY = "help@city.example"
CITIZEN = "hong@mail.example"


def citizen_mail(
    subject: str,
    text: str | None,
    *,
    message_id: str | None = None,
    sender: str = CITIZEN,
    name: str = "홍길동",
    html: str | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
    headers: dict[str, str] | None = None,
    images: list[tuple[bytes, str, str]] = (),  # type: ignore[assignment]
    inline: list[tuple[bytes, str]] = (),  # type: ignore[assignment]
) -> bytes:
    """A citizen's mail: plain text (and/or HTML), photos attached (data, type, file name) or inline."""
    mail = EmailMessage()
    mail["From"] = f"{name} <{sender}>" if name else sender
    mail["To"] = f"Seoul City Hall <{CITY}>"
    mail["Subject"] = subject
    mail["Date"] = format_datetime(datetime(2026, 11, 23, 1, 0, tzinfo=UTC))
    mail["Message-ID"] = message_id or make_msgid(domain="mail.example")
    if in_reply_to:
        mail["In-Reply-To"] = in_reply_to
    if references:
        mail["References"] = references
    for key, value in (headers or {}).items():
        mail[key] = value
    if text is not None:
        mail.set_content(text)
        if html is not None:
            mail.add_alternative(html, subtype="html")
    elif html is not None:
        mail.set_content(html, subtype="html")
    for data, content_type in inline:
        maintype, subtype = content_type.split("/")
        if not mail.is_multipart() or mail.get_content_type() != "multipart/related":
            mail.make_related()
        mail.add_related(data, maintype=maintype, subtype=subtype, cid=make_msgid())
    for data, content_type, filename in images:
        maintype, subtype = content_type.split("/")
        mail.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return bytes(mail)


def bounce_of(our_message_id: str, recipient: str, diagnostic: str, *, action: str = "failed") -> bytes:
    """A delivery status notification (RFC 3464) for one of our messages, as Postfix writes it."""
    status = "4.4.7" if action == "delayed" else diagnostic.split()[1]
    text = f"""From: Mail Delivery System <MAILER-DAEMON@mail.example>
To: {CITY}
Subject: Undelivered Mail Returned to Sender
Auto-Submitted: auto-replied
Message-ID: <{make_msgid(domain="mail.example")[1:-1]}>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="BOUNDARY"

--BOUNDARY
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mail.example.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

--BOUNDARY
Content-Type: message/delivery-status

Reporting-MTA: dns; mail.example

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822;{recipient}
Action: {action}
Status: {status}
Diagnostic-Code: smtp; {diagnostic}

--BOUNDARY
Content-Type: text/rfc822-headers

From: Seoul City Hall <{CITY}>
To: {recipient}
Subject: Re: lamp
Message-ID: <{our_message_id}>

--BOUNDARY--
"""
    return text.replace("\n", "\r\n").encode()
