"""The e-mail adapter over TLS and with logins: IMAP with implicit TLS and with STARTTLS against
dovecot (its self-signed certificate trusted through `ca_file`), SMTP with AUTH over STARTTLS and
over implicit TLS against the stand-in."""

from __future__ import annotations

from typing import Any

import pytest

from channels.base import OutboundMessage, TransientSendError
from channels.mail import EmailChannel
from channels.mail_config import EmailConfig
from tests.channels.test_mail import MemoryHost, email_config
from tests.fakes.dovecot import Dovecot, dovecot  # noqa: F401  (the session's IMAP server)
from tests.fakes.mailers import CITIZEN, citizen_mail
from tests.fakes.smtp import FakeSmtp, server_context
from tests.waiting import until

HI = OutboundMessage(channel="email", recipient=CITIZEN, text="hi", idempotency_key="msg-1")


async def send(config: EmailConfig) -> None:
    channel = EmailChannel(config)
    await channel.start(MemoryHost())  # type: ignore[arg-type]
    try:
        await channel.send(HI)
    finally:
        await channel.stop()


async def read_one(server: Dovecot, smtp: FakeSmtp, **changes: Any) -> MemoryHost:
    user = server.new_user()
    await server.append(user, citizen_mail("tls", "over tls", message_id="<t@x>"))
    host = MemoryHost()
    channel = EmailChannel(email_config(server, user, smtp, **changes))
    await channel.start(host)  # type: ignore[arg-type]
    try:
        await until(lambda: host.messages)
    finally:
        await channel.stop()
    return host


async def test_imap_with_implicit_tls(dovecot: Dovecot) -> None:  # noqa: F811
    async with FakeSmtp() as smtp:
        host = await read_one(
            dovecot, smtp, imap_security="ssl", imap_port=dovecot.ssl_port, ca_file=dovecot.ca_file
        )
    assert [m.text for m in host.messages] == ["over tls"]


async def test_imap_with_starttls(dovecot: Dovecot) -> None:  # noqa: F811
    async with FakeSmtp() as smtp:
        host = await read_one(dovecot, smtp, imap_security="starttls", ca_file=dovecot.ca_file)
    assert [m.text for m in host.messages] == ["over tls"]
    assert "TLS" in dovecot.log() or "secured" in dovecot.log()


async def test_an_untrusted_certificate_is_refused_and_nothing_is_read(
    dovecot: Dovecot,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    user = dovecot.new_user()
    await dovecot.append(user, citizen_mail("tls", "over tls", message_id="<u@x>"))
    async with FakeSmtp() as smtp:
        host = MemoryHost()
        config = email_config(dovecot, user, smtp, imap_security="ssl", imap_port=dovecot.ssl_port)
        channel = EmailChannel(config)  # no ca_file: the self-signed certificate is not trusted
        await channel.start(host)  # type: ignore[arg-type]
        try:
            await until(lambda: "CERTIFICATE_VERIFY_FAILED" in caplog.text, 5)
        finally:
            await channel.stop()
    assert host.intakes == 0


async def test_smtp_login_over_starttls(dovecot: Dovecot) -> None:  # noqa: F811
    context = server_context(dovecot.ca_file, dovecot.key_file)
    async with FakeSmtp(user="city", password="app-password", tls=context) as smtp:
        config = email_config(
            dovecot,
            "x",
            smtp,
            smtp_security="starttls",
            smtp_user="city",
            smtp_password="app-password",
            ca_file=dovecot.ca_file,
        )
        await send(config)
        [sent] = await smtp.wait_for(1)
    assert smtp.logins == ["city"] and sent.rcpt_tos == [CITIZEN]


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # the stand-in's TLS is implicit
async def test_smtp_over_implicit_tls(dovecot: Dovecot) -> None:  # noqa: F811
    context = server_context(dovecot.ca_file, dovecot.key_file)
    async with FakeSmtp(user="city", password="app-password", implicit_tls=context) as smtp:
        config = email_config(
            dovecot,
            "x",
            smtp,
            smtp_security="ssl",
            smtp_user="city",
            smtp_password="app-password",
            ca_file=dovecot.ca_file,
        )
        await send(config)
        assert len(await smtp.wait_for(1)) == 1


async def test_a_wrong_smtp_password_keeps_the_message_for_later(dovecot: Dovecot) -> None:  # noqa: F811
    context = server_context(dovecot.ca_file, dovecot.key_file)
    async with FakeSmtp(user="city", password="app-password", tls=context) as smtp:
        config = email_config(
            dovecot,
            "x",
            smtp,
            smtp_security="starttls",
            smtp_user="city",
            smtp_password="wrong",
            ca_file=dovecot.ca_file,
        )
        with pytest.raises(TransientSendError, match="login refused"):
            await send(config)
    assert smtp.sent == []
