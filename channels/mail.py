"""E-mail: the city's mailbox read over IMAP, answers sent over SMTP.

Inbound (channels/mail_reading.py) follows the folder and hands each new message here: a citizen's
mail becomes an `InboundMessage` (channels/mail_parsing.py: their reply without the quote, the ticket
its subject or thread names, the photos); a bounce of one of our messages becomes a failed
`DeliveryReport`; any other automatic mail (an out-of-office, a list) is only logged. The mail is
marked seen after that returned.

Outbound (channels/mail_writing.py): threaded under the citizen's own mail, plain text and HTML,
`Auto-Submitted: auto-replied`, sent with aiosmtplib. A 4xx or a connection failure is worth another
try, a 5xx (no such mailbox) is not.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any, ClassVar

import aiosmtplib

from channels.base import (
    Attachment,
    Channel,
    ChannelHost,
    DeliveryReport,
    FetchedMedia,
    InboundMessage,
    OutboundMessage,
    PermanentSendError,
    SendResult,
    TransientSendError,
)
from channels.mail_config import EmailConfig
from channels.mail_parsing import ParsedMail, image_part, our_id, parse_mail
from channels.mail_reading import Fetched, MailboxReader, fetch, open_mailbox, tls_context
from channels.mail_writing import Thread, build_mail, sender_address, thread_key

log = logging.getLogger("channels.email")

_RAW_TEXT_LIMIT = 8 * 1024  # the uncut text is kept with the message only when it is small
_CACHE_BYTES = 32 * 1024 * 1024  # photos of mail just read, so fetching them needs no new connection


class EmailChannel(Channel):
    name: ClassVar[str] = "email"
    fetches_media: ClassVar[bool] = True

    def __init__(self, config: EmailConfig, *, public_url: str = "") -> None:
        super().__init__(config.rate_limit.to_rate_limit())
        self.config = config
        sender = sender_address(config.from_address)
        self.domain = sender.domain.lower()
        self.own_addresses = tuple(
            {sender.addr_spec.lower(), config.imap_user.lower(), *(a.lower() for a in config.own_addresses)}
        )
        self.reader: MailboxReader | None = None
        self._task: asyncio.Task[None] | None = None
        self._photos: OrderedDict[str, FetchedMedia] = OrderedDict()

    # --- lifecycle

    async def start(self, host: ChannelHost) -> None:
        await super().start(host)
        if self._task is None:
            self.reader = MailboxReader(self.config, host, self.take, channel=self.name)
            self._task = asyncio.create_task(self.reader.run(), name="email-reader")

    async def stop(self) -> None:
        task, self._task = self._task, None
        # Cancelled again until it ends: on Python 3.11, asyncio.wait_for (which aioimaplib uses for
        # every command) loses a cancellation that arrives as the server answers.
        while task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=0.5)
        if task is not None and not task.cancelled() and task.exception() is not None:
            log.error("email: the reader had stopped on an error", exc_info=task.exception())

    # --- inbound

    async def take(self, fetched: Fetched) -> bool:
        """One mail from the folder; returns once whatever it means is stored (else raises), and
        whether it may be marked seen."""
        fallback_id = f"uid:{fetched.uidvalidity}:{fetched.uid}"
        try:
            mail = parse_mail(fetched.raw, own_addresses=self.own_addresses, domain=self.domain)
        except Exception:
            # Never seen in tests (the parser is lenient), but one unreadable mail must not stop
            # the mailbox: it stays unread there for a person, and the reader goes on.
            log.exception("email: could not read mail UID %s; left unread in the mailbox", fetched.uid)
            return False
        if mail.kind == "bounce":
            report = DeliveryReport(
                channel=self.name,
                status="failed",
                at=datetime.now(UTC),
                idempotency_key=mail.bounced_key,
                provider_message_id=None,
                error=mail.why,
            )
            if not await self.host.delivery_report(report):
                log.info("email: a bounce (%s) matches no message we sent", mail.why)
            return True
        if mail.kind == "automatic":
            log.info("email: not taken in, an automatic mail from %s (%s)", mail.sender, mail.why)
            return True
        message = self._inbound(mail, fetched, fallback_id)
        # Before intake: the answer it queues may go out before intake returns here.
        await self._remember_thread(mail.reference, mail)
        receipt = await self.host.intake(message)
        if receipt.reference and receipt.reference != mail.reference:
            await self._remember_thread(receipt.reference, mail)
        return True

    def _inbound(self, mail: ParsedMail, fetched: Fetched, fallback_id: str) -> InboundMessage:
        text = mail.text
        if not fetched.complete:
            note = f"(This e-mail has {fetched.size} bytes, more than the bot takes: see the mailbox.)"
            text = f"{mail.subject}\n\n{note}".strip()  # only the header was fetched: the subject
        attachments = []
        for image in mail.images:
            url = f"imap:{fetched.uidvalidity}:{fetched.uid}:{image.index}"
            self._keep_photo(url, FetchedMedia(image.data, image.content_type))
            attachments.append(Attachment(url=url, content_type=image.content_type, filename=image.filename))
        raw: dict[str, Any] = {
            "uid": fetched.uid,
            "uidvalidity": fetched.uidvalidity,
            "message_id": mail.message_id,
            "subject": mail.subject,
        }
        if len(mail.original_text) <= _RAW_TEXT_LIMIT and mail.original_text.strip() != text.strip():
            raw["original_text"] = mail.original_text
        return InboundMessage(
            channel=self.name,
            sender=mail.sender,
            sender_name=mail.sender_name,
            text=text.strip() or mail.subject,  # a mail with everything in its subject line
            provider_message_id=mail.message_id or fallback_id,
            received_at=datetime.now(UTC),
            attachments=tuple(attachments),
            reply_to=mail.message_id,
            raw=raw,
            reference=mail.reference,
        )

    async def _remember_thread(self, reference: str | None, mail: ParsedMail) -> None:
        """The citizen's subject and Message-IDs, so our answers thread under their mail: by the
        ticket's reference, and by their address for answers that name no ticket (or whose ticket
        intake has not told us yet): the latest mail of theirs."""
        if not mail.thread_ids:
            return
        latest = Thread("", ()).joined(mail.subject, mail.thread_ids)
        await self.host.remember(self.name, thread_key(None, mail.sender), latest.to_json())
        if reference is not None:
            key = thread_key(reference, mail.sender)
            known = Thread.from_json(await self.host.recall(self.name, key)) or Thread("", ())
            await self.host.remember(self.name, key, known.joined(mail.subject, mail.thread_ids).to_json())

    def _keep_photo(self, url: str, photo: FetchedMedia) -> None:
        self._photos[url] = photo
        while sum(len(p.data) for p in self._photos.values()) > _CACHE_BYTES and len(self._photos) > 1:
            self._photos.popitem(last=False)

    async def fetch_media(self, attachment: Attachment) -> FetchedMedia:
        """A photo of a mail: from memory when it was just read, else fetched again from the folder."""
        kept = self._photos.pop(attachment.url, None)
        if kept is not None:
            return kept
        try:
            _, validity, uid, index = attachment.url.split(":")
            wanted = (int(validity), int(uid), int(index))
        except ValueError as exc:
            raise PermanentSendError(f"not an e-mail attachment: {attachment.url[:200]}") from exc
        try:
            async with open_mailbox(self.config) as mailbox:
                if mailbox.uidvalidity != wanted[0]:
                    raise PermanentSendError(f"the folder {self.config.folder} was rebuilt; the mail is gone")
                fetched = await fetch(mailbox, wanted[1], self.config.max_message_bytes)
        except PermanentSendError:
            raise
        except Exception as exc:
            raise TransientSendError(f"the mailbox could not be read: {type(exc).__name__}: {exc}") from exc
        if fetched is None:
            raise PermanentSendError("the mail was deleted from the mailbox before its photo was kept")
        image = image_part(fetched.raw, wanted[2]) if fetched.complete else None
        if image is None:
            raise PermanentSendError("the photo is not in the mail any more")
        return FetchedMedia(image.data, image.content_type)

    # --- outbound

    async def send(self, message: OutboundMessage) -> SendResult:
        if self._host is None:
            raise TransientSendError("the e-mail channel is not running")
        reference = (message.variables or {}).get("reference") or None
        thread = Thread.from_json(await self.host.recall(self.name, thread_key(reference, message.recipient)))
        if thread is None and reference:
            thread = Thread.from_json(await self.host.recall(self.name, thread_key(None, message.recipient)))
        try:
            mail = build_mail(
                message,
                from_address=self.config.from_address,
                thread=thread,
                default_subject=self.config.subject,
                now=datetime.now(UTC),
            )
        except (ValueError, TypeError, IndexError) as exc:
            raise PermanentSendError(f"not an address mail can go to: {message.recipient!r} ({exc})") from exc
        await self._submit(mail)
        return SendResult(provider_message_id=our_id(reference, message.idempotency_key, self.domain))

    async def _submit(self, mail: Any) -> None:
        config = self.config
        security = config.smtp_security
        try:
            await aiosmtplib.send(
                mail,
                hostname=config.smtp_host,
                port=config.smtp_port,
                username=config.smtp_user or None,
                password=config.smtp_password or None,
                use_tls=security == "ssl",
                start_tls=security == "starttls",
                tls_context=tls_context(config) if security != "none" else None,
                timeout=config.timeout_seconds,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refusals = exc.recipients
            raise _refused(min(r.code for r in refusals), "; ".join(r.message for r in refusals)) from exc
        except aiosmtplib.SMTPAuthenticationError as exc:
            # Wrong or revoked credentials: every mail fails until someone fixes them; keep them all.
            log.error("email: the SMTP server refused our login; check smtp_user / smtp_password")
            raise TransientSendError(f"SMTP login refused: {exc.code} {exc.message}") from exc
        except aiosmtplib.SMTPSenderRefused as exc:
            log.error("email: the SMTP server refused our sender %s: %s", exc.sender, exc.message)
            raise TransientSendError(f"SMTP refused the sender: {exc.code} {exc.message}") from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise _refused(exc.code, exc.message) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise TransientSendError(
                f"the SMTP server could not be reached: {type(exc).__name__}: {exc}"
            ) from exc


def _refused(code: int, text: str) -> Exception:
    if 500 <= code < 600:
        return PermanentSendError(f"the mail server refused the message ({code} {text})")
    return TransientSendError(f"the mail server asked to try again later ({code} {text})")
