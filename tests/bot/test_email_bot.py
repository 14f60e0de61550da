"""The whole bot with citizens on e-mail and the staff desk in Slack: mail arrives in a real IMAP
mailbox (dovecot, IMAP APPEND), answers leave through a recording SMTP server, staff act in the
Slack stand-in; SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import func, select

import bot as bot_module
from channels.mail_config import EmailConfig
from channels.settings import RateLimitConfig
from channels.slack_config import SlackConfig
from store import Database, Message, Ticket
from tests.conftest import ROOT, config_for_tests, with_channels
from tests.fakes.dovecot import Dovecot, dovecot  # noqa: F401  (the session's IMAP server)
from tests.fakes.mailers import CITIZEN, CITY, bounce_of, citizen_mail
from tests.fakes.slack import FakeSlack, event_request, thread_reply_event
from tests.fakes.smtp import FakeSmtp, SentMail
from tests.waiting import until

TOKEN = "xoxb-city-desk"
SECRET = "city-signing-secret-0123456789ab"
KIM = "U0KIM"
BOT = "U0BOT"
REFERENCE = re.compile(r"\d{4}-\d{6}")


@dataclass
class MailCity:
    bot: bot_module.Bot
    imap: Dovecot
    user: str
    smtp: FakeSmtp
    slack: FakeSlack
    client: TestClient[Any, Any]

    async def write(self, subject: str, text: str, *, message_id: str, **kwargs: Any) -> bytes:
        """The citizen's mail arrives in the city's mailbox; returns it as it arrived."""
        raw = citizen_mail(subject, text, message_id=message_id, **kwargs)
        await self.imap.append(self.user, raw)
        return raw

    async def mails(self, count: int, timeout: float = 15.0) -> list[SentMail]:
        return await self.smtp.wait_for(count, to=CITIZEN, timeout=timeout)

    async def count(self, table: Any) -> int:
        async with self.bot.db.session() as session:
            return int((await session.exec(select(func.count()).select_from(table))).one())

    def cards(self, name: str) -> list[Any]:
        return self.slack.messages(self.slack.channel_id(name), top_level=True)


@pytest.fixture
async def city(database: Database, tmp_path: Path, dovecot: Dovecot) -> AsyncIterator[MailCity]:  # noqa: F811
    user = dovecot.new_user()
    async with FakeSmtp() as smtp, FakeSlack(bot_token=TOKEN) as slack:
        for name in ("dept-transport", "dept-housing", "dept-environment", "dept-triage", "faq-review"):
            slack.add_channel(name)
        slack.add_channel("intake-alerts")
        slack.add_user(KIM, "Kim Minji")
        email = EmailConfig(
            enabled=True,
            imap_host=dovecot.host,
            imap_port=dovecot.port,
            imap_security="none",
            imap_user=user,
            imap_password=dovecot.password,
            smtp_host=smtp.host,
            smtp_port=smtp.port,
            smtp_security="none",
            from_address=f"Seoul City Hall <{CITY}>",
            poll_seconds=0.2,
            timeout_seconds=3,
            rate_limit=RateLimitConfig(per_second=100.0),
        )
        desk_section = SlackConfig(
            enabled=True, bot_token=TOKEN, signing_secret=SECRET, api_base_url=slack.api_url
        )
        config = with_channels(config_for_tests(tmp_path), email=email, slack=desk_section, patient=True)
        desk = config.router.desk.model_copy(
            update={"review_inbox": "#faq-review", "alerts_inbox": "#intake-alerts"}
        )
        config = config.model_copy(update={"router": config.router.model_copy(update={"desk": desk})})
        bot = await bot_module.build(config, base_dir=ROOT, webchat=False, db=database)
        async with bot.running(sweeps=False), TestClient(TestServer(bot_module.make_app(bot))) as client:
            yield MailCity(bot, dovecot, user, smtp, slack, client)


async def complaint(city: MailCity) -> tuple[str, SentMail]:
    """A forwarded complaint by mail; its reference and the mail that told the citizen."""
    await city.write("가로등 고장", "가로등이 고장났어요 어두워요", message_id="<lamp@mail.example>")
    [notice] = await city.mails(1)
    found = REFERENCE.search(notice.text())
    assert found, notice.text()
    return found.group(), notice


async def test_an_faq_question_is_answered_by_mail(city: MailCity) -> None:
    await city.write("질문", "소파 버리는 방법", message_id="<sofa@mail.example>")
    [answer] = await city.mails(1)
    assert "대형 폐기물은 구청 누리집이나 주민센터에서 배출 신고" in answer.text()
    assert "대형 폐기물은 구청 누리집이나 주민센터에서 배출 신고" in answer.html()
    assert answer.header("In-Reply-To") == "<sofa@mail.example>"
    assert answer.header("Subject").startswith("Re: 질문")
    assert answer.header("Auto-Submitted") == "auto-replied"


async def test_a_complaint_gets_its_reference_department_and_due_time(city: MailCity) -> None:
    reference, notice = await complaint(city)
    view = await city.bot.desk.show(reference)
    assert view.ticket.status == "forwarded" and view.ticket.department == "transport"
    assert view.ticket.due_at is not None
    assert f"접수번호 {reference}: 교통도로과에 전달했습니다. 처리 예정:" in notice.text()
    assert notice.header("Subject") == f"Re: 가로등 고장 [{reference}]"
    assert notice.header("Message-ID").startswith(f"<intake.{reference}.")


async def test_a_staff_reply_in_the_slack_thread_reaches_the_citizen_threaded(city: MailCity) -> None:
    reference, _ = await complaint(city)
    await until(lambda: city.cards("dept-transport"))
    [card] = city.cards("dept-transport")
    channel = city.slack.channel_id("dept-transport")
    written = city.slack.add_message(channel, "내일 오전에 수리하겠습니다", user=KIM, thread_ts=card.ts)
    reply = thread_reply_event(channel, card.ts, KIM, written.text, ts=written.ts, parent_user_id=BOT)
    response = await city.slack.post_to_app(
        str(city.client.make_url("/webhooks/slack")), *event_request(SECRET, reply)
    )
    assert response.status == 200
    staff_reply = (await city.mails(2))[1]
    assert staff_reply.text().strip() == f"[{reference}] 교통도로과: 내일 오전에 수리하겠습니다"
    assert staff_reply.header("In-Reply-To") == "<lamp@mail.example>"
    assert "<lamp@mail.example>" in staff_reply.header("References")
    assert staff_reply.header("Subject") == f"Re: 가로등 고장 [{reference}]"


async def test_the_citizens_reply_joins_its_ticket_by_the_subject_reference(city: MailCity) -> None:
    reference, notice = await complaint(city)
    body = (
        "사진도 보냅니다. 아직 어두워요.\n\n"
        f"2026년 11월 23일 (월) 오전 10:00, Seoul City Hall <{CITY}>님이 작성:\n"
        + "".join(f"> {line}\n" for line in notice.text().splitlines())
    )
    await city.write(
        f"Re: 가로등 고장 [{reference}]",
        body,
        message_id="<lamp-2@mail.example>",
        in_reply_to=notice.header("Message-ID"),
        images=[(b"\xff\xd8\xff\xe0 dark street", "image/jpeg", "street.jpg")],
    )

    async def joined() -> bool:
        view = await city.bot.desk.show(reference)
        return any(m.text == "사진도 보냅니다. 아직 어두워요." for m in view.messages)

    await until(joined)
    assert await city.count(Ticket) == 1
    channel = city.slack.channel_id("dept-transport")
    await until(lambda: any("아직 어두워요" in m.text for m in city.slack.messages(channel)))
    assert not any("님이 작성" in m.text for m in city.slack.messages(channel))  # the quote stayed out


async def test_the_same_mail_twice_and_again_after_a_restart_makes_one_ticket(city: MailCity) -> None:
    raw = await city.write("질문", "소파 버리는 방법", message_id="<again@mail.example>")
    await city.mails(1)
    await city.imap.append(city.user, raw)  # a relay delivers it twice
    channel = city.bot.channels["email"]
    await channel.stop()
    # As after a crash between the commit and remembering the position: the reader has forgotten
    # where it was and the mails are unread again.
    await city.bot.host.remember("email", "uid", "{}")
    async with city.imap.session(city.user) as imap:
        await imap.store("1:*", "-FLAGS.SILENT", r"(\Seen)")
    await channel.start(city.bot.host)

    async def all_seen() -> bool:  # set again only once intake has taken each of them once more
        return all(["\\Seen" in await city.imap.flags(city.user, uid) for uid in (1, 2)])

    await until(all_seen)
    assert (await city.count(Ticket), await city.count(Message)) == (1, 2)  # the question, one answer
    assert len(city.smtp.to(CITIZEN)) == 1


async def test_an_out_of_office_reply_makes_no_ticket_and_gets_no_answer(city: MailCity) -> None:
    await city.write(
        "자동 회신: 부재중",
        "11월 30일까지 휴가입니다.",
        message_id="<ooo@mail.example>",
        headers={"Auto-Submitted": "auto-replied"},
    )
    await city.write("질문", "소파 버리는 방법", message_id="<after-ooo@mail.example>")
    await city.mails(1)  # the later question was answered, so the out-of-office was read before it
    assert await city.count(Ticket) == 1 and len(city.smtp.to(CITIZEN)) == 1


async def test_a_bounced_answer_is_marked_failed_on_its_ticket(city: MailCity) -> None:
    reference, notice = await complaint(city)
    ours = notice.header("Message-ID").strip("<>")
    await city.imap.append(city.user, bounce_of(ours, CITIZEN, "550 5.1.1 <hong@mail.example>: user unknown"))

    async def failure_recorded() -> bool:
        view = await city.bot.desk.show(reference)
        return any(e.kind == "delivery_failed" for e in view.events)

    await until(failure_recorded)
    view = await city.bot.desk.show(reference)
    [event] = [e for e in view.events if e.kind == "delivery_failed"]
    assert "5.1.1" in event.detail["error"]
    assert await city.count(Ticket) == 1
