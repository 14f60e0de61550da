"""The e-mail adapter against a real IMAP server (dovecot, started for the session) and a recording
SMTP server (aiosmtpd): mail is put into the mailbox with IMAP APPEND, as it arrives; answers go out
through aiosmtplib. The router's side is a small host that keeps `remember` in a dict, so a
restarted channel finds where it was. The whole bot is in tests/bot/test_email_bot.py."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from channels.base import Attachment, DeliveryReport, InboundMessage, OutboundMessage, Receipt
from channels.mail import EmailChannel
from channels.mail_config import EmailConfig
from tests.fakes.dovecot import Dovecot, dovecot  # noqa: F401  (the session's IMAP server)
from tests.fakes.mailers import CITIZEN, CITY, bounce_of, citizen_mail
from tests.fakes.smtp import FakeSmtp
from tests.waiting import until


@dataclass
class MemoryHost:
    """The router's side: intake dedupes on the provider's id and hands out references, as the
    store does; remember/recall in a dict that outlives a channel."""

    messages: list[InboundMessage] = field(default_factory=list)
    reports: list[DeliveryReport] = field(default_factory=list)
    memory: dict[tuple[str, str], str] = field(default_factory=dict)
    known_keys: set[str] = field(default_factory=set)
    failing: int = 0  # the next N intakes raise (the database is down)
    intakes: int = 0
    leading: bool = True

    async def intake(self, message: InboundMessage) -> Receipt:
        self.intakes += 1
        if self.failing:
            self.failing -= 1
            raise RuntimeError("the database is down")
        for index, known in enumerate(self.messages):
            if known.provider_message_id == message.provider_message_id:
                return Receipt(duplicate=True, reference=f"2026-{index + 1:06d}")
        self.messages.append(message)
        return Receipt(duplicate=False, reference=message.reference or f"2026-{len(self.messages):06d}")

    async def delivery_report(self, report: DeliveryReport) -> bool:
        self.reports.append(report)
        return report.idempotency_key in self.known_keys

    async def recall(self, channel: str, name: str) -> str | None:
        return self.memory.get((channel, name))

    async def remember(self, channel: str, name: str, value: str) -> None:
        self.memory[(channel, name)] = value

    async def lead(self, job: str) -> bool:
        return self.leading


@dataclass
class Setup:
    server: Dovecot
    user: str
    smtp: FakeSmtp
    host: MemoryHost
    config: EmailConfig
    channel: EmailChannel

    async def arrive(self, raw: bytes, **kwargs: Any) -> int:
        return await self.server.append(self.user, raw, **kwargs)

    async def taken(self, count: int, timeout: float = 10.0) -> list[InboundMessage]:
        await until(lambda: len(self.host.messages) >= count, timeout)
        return self.host.messages

    async def restart(self, **changes: Any) -> None:
        await self.channel.stop()
        self.config = self.config.model_copy(update=changes)
        self.channel = EmailChannel(self.config)
        await self.channel.start(self.host)  # type: ignore[arg-type]

    async def idling(self) -> None:
        """Until the reader waits in IDLE."""
        await until(lambda: self.channel.reader is not None and self.channel.reader.idling)

    async def quiet(self) -> None:
        """Until the reader finished its rounds (nothing more is coming): it waits in IDLE again, or
        polled twice more."""
        reader = self.channel.reader
        assert reader is not None
        if self.config.idle:
            await asyncio.sleep(0.2)
            await until(lambda: reader.idling)
        else:
            rounds = reader.rounds
            await until(lambda: reader.rounds > rounds + 1)


def email_config(server: Dovecot, user: str, smtp: FakeSmtp, **changes: Any) -> EmailConfig:
    values: dict[str, Any] = {
        "enabled": True,
        "imap_host": server.host,
        "imap_port": server.port,
        "imap_security": "none",
        "imap_user": user,
        "imap_password": server.password,
        "smtp_host": smtp.host,
        "smtp_port": smtp.port,
        "smtp_security": "none",
        "from_address": f"Seoul City Hall <{CITY}>",
        "poll_seconds": 0.1,
        "timeout_seconds": 3,
    }
    return EmailConfig(**(values | changes))


@pytest.fixture
async def mail(dovecot: Dovecot) -> AsyncIterator[Setup]:  # noqa: F811
    user = dovecot.new_user()
    async with FakeSmtp() as smtp:
        config = email_config(dovecot, user, smtp)
        host = MemoryHost()
        channel = EmailChannel(config)
        await channel.start(host)  # type: ignore[arg-type]
        setup = Setup(dovecot, user, smtp, host, config, channel)
        try:
            yield setup
        finally:
            await setup.channel.stop()
            await setup.channel.stop()  # twice is allowed


# --- inbound ---------------------------------------------------------------------------------------


async def test_a_new_mail_is_taken_in_once_and_then_marked_seen(mail: Setup) -> None:
    uid = await mail.arrive(
        citizen_mail("가로등 고장", "집 앞 가로등이 고장났어요.", message_id="<a1@mail.example>")
    )
    [message] = await mail.taken(1)
    assert (message.channel, message.sender, message.sender_name) == ("email", CITIZEN, "홍길동")
    assert message.text == "집 앞 가로등이 고장났어요."
    assert (message.provider_message_id, message.reference) == ("a1@mail.example", None)
    assert message.raw is not None and message.raw["subject"] == "가로등 고장"
    await until(lambda: mail.server.flags(mail.user, uid), 5)
    assert "\\Seen" in await mail.server.flags(mail.user, uid)
    await mail.quiet()
    assert mail.host.intakes == 1


async def test_after_a_restart_the_same_mail_is_not_taken_again(mail: Setup) -> None:
    await mail.arrive(citizen_mail("first", "the first mail", message_id="<r1@mail.example>"))
    await mail.taken(1)
    await mail.restart()
    await mail.arrive(citizen_mail("second", "the second mail", message_id="<r2@mail.example>"))
    messages = await mail.taken(2)
    await mail.quiet()
    assert [m.text for m in messages] == ["the first mail", "the second mail"]
    assert mail.host.intakes == 2  # the first was not even offered again


async def test_a_mail_that_was_already_read_when_the_bot_first_starts_is_left_alone(dovecot: Dovecot) -> None:  # noqa: F811
    user = dovecot.new_user()
    await dovecot.append(user, citizen_mail("old", "read by a person", message_id="<o1@x>"), flags="\\Seen")
    await dovecot.append(user, citizen_mail("new", "not read yet", message_id="<o2@x>"))
    async with FakeSmtp() as smtp:
        host = MemoryHost()
        channel = EmailChannel(email_config(dovecot, user, smtp))
        await channel.start(host)  # type: ignore[arg-type]
        try:
            await until(lambda: host.messages)
            assert [m.text for m in host.messages] == ["not read yet"]
        finally:
            await channel.stop()


async def test_an_intake_that_fails_leaves_the_mail_unseen_and_it_is_taken_again(mail: Setup) -> None:
    mail.host.failing = 1
    uid = await mail.arrive(citizen_mail("s", "please fix the lamp", message_id="<f1@mail.example>"))
    await until(lambda: mail.host.intakes >= 1)
    assert "\\Seen" not in await mail.server.flags(mail.user, uid)
    [message] = await mail.taken(1, timeout=15)  # after the reader's backoff
    assert message.text == "please fix the lamp"
    await until(lambda: mail.server.flags(mail.user, uid))
    assert "\\Seen" in await mail.server.flags(mail.user, uid)


async def test_the_same_message_id_delivered_twice_is_one_message(mail: Setup) -> None:
    raw = citizen_mail("twice", "sent twice by a relay", message_id="<dup@mail.example>")
    await mail.arrive(raw)
    await mail.arrive(raw)
    await until(lambda: mail.host.intakes >= 2)
    assert [m.provider_message_id for m in mail.host.messages] == ["dup@mail.example"]


async def test_a_new_uidvalidity_starts_over_from_the_unseen_mail(mail: Setup) -> None:
    await mail.arrive(citizen_mail("a", "one", message_id="<v1@x>"))
    await mail.taken(1)
    await mail.channel.stop()
    # As if the folder had been rebuilt: the remembered UIDVALIDITY is no longer the folder's.
    mail.host.memory[("email", "uid")] = '{"folder": "INBOX", "uidvalidity": 1, "uid": 99}'
    await mail.arrive(citizen_mail("b", "two", message_id="<v2@x>"))
    await mail.restart()
    await mail.taken(2)
    await mail.quiet()
    assert [m.text for m in mail.host.messages] == ["one", "two"]


async def test_idle_picks_a_new_mail_up_at_once(mail: Setup) -> None:
    await mail.restart(poll_seconds=60.0)  # only IDLE can be this quick
    await mail.idling()
    started = time.monotonic()
    await mail.arrive(citizen_mail("idle", "pushed", message_id="<i1@x>"))
    await mail.taken(1, timeout=5)
    assert time.monotonic() - started < 5


async def test_a_dropped_connection_is_made_again(mail: Setup, caplog: pytest.LogCaptureFixture) -> None:
    await mail.idling()
    await asyncio.to_thread(mail.server.kick, mail.user)
    await until(lambda: not mail.channel.reader or not mail.channel.reader.idling)
    await mail.arrive(citizen_mail("again", "after the drop", message_id="<k1@x>"))
    [message] = await mail.taken(1, timeout=10)  # after the reader's first backoff (under 1 s)
    assert message.text == "after the drop"
    assert "(MailboxError: the server closed the connection); again in" in caplog.text


async def test_without_idle_the_folder_is_polled(mail: Setup) -> None:
    await mail.restart(idle=False, poll_seconds=0.2)
    await mail.arrive(citizen_mail("poll", "polled", message_id="<p1@x>"))
    [message] = await mail.taken(1, timeout=5)
    assert message.text == "polled"


async def test_another_instance_reading_means_this_one_does_not(mail: Setup) -> None:
    mail.host.leading = False
    await mail.restart(poll_seconds=0.1)
    await mail.arrive(citizen_mail("x", "for the leader", message_id="<l1@x>"))
    await asyncio.sleep(0.5)
    assert mail.host.intakes == 0
    mail.host.leading = True
    await mail.taken(1)


async def test_the_reference_is_read_from_the_subject(mail: Setup) -> None:
    await mail.arrive(
        citizen_mail("Re: 가로등 고장 [2026-000123]", "아직 안 고쳐졌어요", message_id="<s1@x>")
    )
    [message] = await mail.taken(1)
    assert message.reference == "2026-000123"
    assert message.raw is not None and message.raw["subject"] == "가로등 고장"


async def test_the_reference_is_read_from_in_reply_to_when_the_subject_lost_it(mail: Setup) -> None:
    ours = f"<intake.2026-000777.msg-12@{CITY.split('@')[1]}>"
    await mail.arrive(
        citizen_mail("Re: 가로등", "감사합니다", message_id="<s2@x>", in_reply_to=ours, references=ours)
    )
    [message] = await mail.taken(1)
    assert message.reference == "2026-000777"


async def test_someone_elses_message_id_names_no_ticket(mail: Setup) -> None:
    other = "<intake.2026-000777.msg-12@elsewhere.example>"
    await mail.arrive(citizen_mail("Re: hi", "hello", message_id="<s3@x>", in_reply_to=other))
    [message] = await mail.taken(1)
    assert message.reference is None


async def test_quoted_text_and_signature_are_cut(mail: Setup) -> None:
    body = (
        "The lamp is still broken.\n\n--\nHong Gildong\n010-1234-5678\n\n"
        "On Mon, 23 Nov 2026 at 10:00, Seoul City Hall <help@city.example> wrote:\n"
        "> Your request 2026-000123 went to the transport department.\n"
    )
    await mail.arrive(citizen_mail("Re: lamp [2026-000123]", body, message_id="<q1@x>"))
    [message] = await mail.taken(1)
    assert message.text == "The lamp is still broken."
    assert message.raw is not None and "wrote:" in message.raw["original_text"]


async def test_an_html_only_mail_is_read_as_text_without_its_quote(mail: Setup) -> None:
    html = (
        "<div dir='ltr'><p>Pothole on <b>Sejong-daero</b> &amp; 3rd street.</p><p>Please fix.</p></div>"
        "<div class='gmail_quote'><blockquote>old text</blockquote></div>"
    )
    await mail.arrive(citizen_mail("pothole", None, html=html, message_id="<h1@x>"))
    [message] = await mail.taken(1)
    assert message.text == "Pothole on Sejong-daero & 3rd street.\n\nPlease fix."


async def test_a_mail_over_the_size_limit_is_taken_in_without_its_body(mail: Setup) -> None:
    await mail.restart(max_message_bytes=2000)
    photo = bytes(range(256)) * 40  # 10 KB
    uid = await mail.arrive(
        citizen_mail("큰 사진", "사진입니다", message_id="<big@x>", images=[(photo, "image/jpeg", "big.jpg")])
    )
    [message] = await mail.taken(1)
    assert message.text.startswith("큰 사진\n\n(This e-mail has ") and "see the mailbox" in message.text
    assert message.attachments == () and message.sender == CITIZEN
    await until(lambda: mail.server.flags(mail.user, uid))


async def test_an_empty_body_gives_the_subject(mail: Setup) -> None:
    await mail.arrive(citizen_mail("소파 버리는 방법", "", message_id="<e1@x>"))
    [message] = await mail.taken(1)
    assert message.text == "소파 버리는 방법"


async def test_photos_are_attachments_fetched_from_memory_and_after_a_restart_from_the_mailbox(
    mail: Setup,
) -> None:
    photo, inline = b"\xff\xd8\xff\xe0 broken lamp", b"\x89PNG\r\n\x1a\n inline map"
    raw = citizen_mail(
        "lamp",
        "see the photo",
        message_id="<m1@x>",
        images=[(photo, "image/jpeg", "lamp.jpg")],
        inline=[(inline, "image/png")],
    )
    await mail.arrive(raw)
    [message] = await mail.taken(1)
    assert [(a.content_type, a.filename) for a in message.attachments] == [
        ("image/png", None),
        ("image/jpeg", "lamp.jpg"),
    ] or [(a.content_type, a.filename) for a in message.attachments] == [
        ("image/jpeg", "lamp.jpg"),
        ("image/png", None),
    ]
    by_type = {a.content_type: a for a in message.attachments}
    fetched = await mail.channel.fetch_media(by_type["image/jpeg"])
    assert (fetched.data, fetched.content_type) == (photo, "image/jpeg")
    await mail.restart()  # the copy in memory is gone: the photo comes from the mailbox again
    fetched = await mail.channel.fetch_media(Attachment(url=by_type["image/png"].url))
    assert (fetched.data, fetched.content_type) == (inline, "image/png")


async def test_a_photo_of_a_deleted_mail_is_permanently_gone(mail: Setup) -> None:
    from channels.base import PermanentSendError

    await mail.arrive(
        citizen_mail("lamp", "photo", message_id="<m2@x>", images=[(b"jpeg", "image/jpeg", "a.jpg")])
    )
    [message] = await mail.taken(1)
    await mail.server.expunge_all(mail.user)
    await mail.restart()
    with pytest.raises(PermanentSendError, match="deleted"):
        await mail.channel.fetch_media(message.attachments[0])


@pytest.mark.parametrize(
    ("headers", "sender"),
    [
        ({"Auto-Submitted": "auto-replied"}, CITIZEN),
        ({"Precedence": "bulk"}, CITIZEN),
        ({"X-Auto-Response-Suppress": "All"}, CITIZEN),
        ({"List-Id": "<news.city.example>"}, CITIZEN),
        ({}, "MAILER-DAEMON@mail.example"),
        ({}, CITY),
    ],
)
async def test_automatic_mail_is_not_taken_in_but_marked_seen(
    mail: Setup, headers: dict[str, str], sender: str
) -> None:
    uid = await mail.arrive(
        citizen_mail("Out of office", "I am away.", message_id="<auto@x>", sender=sender, headers=headers)
    )
    await until(lambda: mail.server.flags(mail.user, uid))
    assert "\\Seen" in await mail.server.flags(mail.user, uid)
    assert mail.host.intakes == 0


async def test_auto_submitted_no_is_a_person(mail: Setup) -> None:
    await mail.arrive(
        citizen_mail("hi", "a person", message_id="<person@x>", headers={"Auto-Submitted": "no"})
    )
    assert [m.text for m in await mail.taken(1)] == ["a person"]


async def test_a_bounce_reports_the_delivery_failed_with_our_key(mail: Setup) -> None:
    mail.host.known_keys.add("msg-41")
    ours = f"intake.2026-000123.msg-41@{CITY.split('@')[1]}"
    await mail.arrive(bounce_of(ours, "nobody@mail.example", "550 5.1.1 <nobody@mail.example>: user unknown"))
    await until(lambda: mail.host.reports)
    [report] = mail.host.reports
    assert (report.status, report.idempotency_key, report.failed) == ("failed", "msg-41", True)
    assert "5.1.1" in (report.error or "") and "user unknown" in (report.error or "")
    assert mail.host.intakes == 0


async def test_a_delay_notice_is_not_a_failure(mail: Setup) -> None:
    ours = f"intake.2026-000123.msg-42@{CITY.split('@')[1]}"
    uid = await mail.arrive(bounce_of(ours, "slow@mail.example", "4.4.7 still trying", action="delayed"))
    await until(lambda: mail.server.flags(mail.user, uid))
    assert mail.host.reports == [] and mail.host.intakes == 0


# --- outbound --------------------------------------------------------------------------------------


def outbound(text: str, *, key: str = "msg-7", reference: str | None = "2026-000123") -> OutboundMessage:
    variables = {"reference": reference} if reference else None
    return OutboundMessage(
        channel="email", recipient=CITIZEN, text=text, idempotency_key=key, variables=variables
    )


async def test_an_answer_is_threaded_under_the_citizens_mail(mail: Setup) -> None:
    await mail.arrive(
        citizen_mail(
            "가로등 고장", "고장났어요", message_id="<c1@mail.example>", references="<c0@mail.example>"
        )
    )
    await mail.taken(1)  # the host gave it 2026-000001
    result = await mail.channel.send(outbound("접수했습니다.\n\n담당: 교통과 <b>", reference="2026-000001"))
    [sent] = await mail.smtp.wait_for(1)
    domain = CITY.split("@")[1]
    assert sent.rcpt_tos == [CITIZEN] and sent.mail_from == CITY
    assert sent.header("Message-ID") == f"<intake.2026-000001.msg-7@{domain}>"
    assert result.provider_message_id == f"intake.2026-000001.msg-7@{domain}"
    assert sent.header("In-Reply-To") == "<c1@mail.example>"
    assert sent.header("References") == "<c0@mail.example> <c1@mail.example>"
    assert sent.header("Subject") == "Re: 가로등 고장 [2026-000001]"
    assert sent.header("Auto-Submitted") == "auto-replied"
    assert sent.message.get_content_type() == "multipart/alternative"
    assert sent.text().strip() == "접수했습니다.\n\n담당: 교통과 <b>"
    assert "<p>담당: 교통과 &lt;b&gt;</p>" in sent.html() and "<p>접수했습니다.</p>" in sent.html()


async def test_a_resend_carries_the_same_message_id(mail: Setup) -> None:
    await mail.channel.send(outbound("hello"))
    await mail.channel.send(outbound("hello"))
    first, second = await mail.smtp.wait_for(2)
    assert first.header("Message-ID") == second.header("Message-ID")
    assert first.header("Subject") == f"{mail.config.subject} [2026-000123]"  # no mail of theirs to answer


async def test_smtp_4xx_is_transient_and_5xx_permanent(mail: Setup) -> None:
    from channels.base import PermanentSendError, TransientSendError

    mail.smtp.refuse("451 4.3.0 try again later")
    with pytest.raises(TransientSendError, match="451"):
        await mail.channel.send(outbound("hi"))
    mail.smtp.refuse("550 5.1.1 no such user")
    with pytest.raises(PermanentSendError, match="550"):
        await mail.channel.send(outbound("hi"))
    await mail.channel.send(outbound("hi"))
    assert len(await mail.smtp.wait_for(1)) == 1


async def test_an_smtp_server_that_is_down_is_transient(mail: Setup) -> None:
    from channels.base import TransientSendError
    from tests.fakes.dovecot import free_port

    await mail.restart(smtp_port=free_port())
    with pytest.raises(TransientSendError, match="could not be reached"):
        await mail.channel.send(outbound("hi"))


async def test_a_recipient_that_is_no_address_is_permanent(mail: Setup) -> None:
    from channels.base import PermanentSendError

    message = OutboundMessage(channel="email", recipient="not an address\n", text="hi", idempotency_key="k")
    with pytest.raises(PermanentSendError):
        await mail.channel.send(message)
