"""A recording SMTP server (aiosmtpd) standing in for the city's mail provider.

It runs in the test's own event loop on a free port, records every message it accepts (envelope and
parsed message), can refuse the next N messages with a chosen reply (a 4xx "try later", a 5xx
"no such user"), and can require AUTH (optionally over STARTTLS, with a self-signed certificate).

    async with FakeSmtp() as smtp:
        config = EmailConfig(smtp_host=smtp.host, smtp_port=smtp.port, smtp_security="none", ...)
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from types import TracebackType
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.waiting import until


@dataclass
class SentMail:
    """One message the server accepted."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    message: EmailMessage
    at: float = field(default_factory=time.monotonic)  # when it was accepted (bench/dispatch.py)

    def header(self, name: str) -> str:
        return str(self.message.get(name, ""))

    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        return str(part.get_content()) if part is not None else ""

    def html(self) -> str:
        part = self.message.get_body(preferencelist=("html",))
        return str(part.get_content()) if part is not None else ""


@dataclass
class _Refusal:
    count: int
    reply: str


@dataclass
class FakeSmtp:
    """The stand-in. `user`/`password`: AUTH required; `tls`: STARTTLS offered and required;
    `implicit_tls`: TLS from the first byte (port 465's way)."""

    user: str | None = None
    password: str | None = None
    tls: ssl.SSLContext | None = None
    implicit_tls: ssl.SSLContext | None = None
    host: str = "127.0.0.1"
    sent: list[SentMail] = field(default_factory=list)
    attempts: int = 0  # DATA commands received, accepted or refused
    logins: list[str] = field(default_factory=list)
    _refusals: list[_Refusal] = field(default_factory=list)
    _server: asyncio.AbstractServer | None = None
    port: int = 0

    def refuse(self, reply: str, count: int = 1) -> None:
        """Answer the next `count` messages with `reply`, e.g. "451 4.3.0 try again later"."""
        self._refusals.append(_Refusal(count, reply))

    def to(self, address: str) -> list[SentMail]:
        return [mail for mail in self.sent if address in mail.rcpt_tos]

    async def wait_for(self, count: int, *, to: str | None = None, timeout: float = 10.0) -> list[SentMail]:
        """Wait until `count` messages (to `to`, if given) were accepted; returns them."""
        found: list[SentMail] = []

        def enough() -> bool:
            found[:] = self.to(to) if to else self.sent
            return len(found) >= count

        await until(enough, timeout)
        return found

    # --- aiosmtpd's handler hooks

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.attempts += 1
        if self._refusals:
            refusal = self._refusals[0]
            refusal.count -= 1
            if refusal.count <= 0:
                self._refusals.pop(0)
            return refusal.reply
        data = bytes(envelope.original_content or envelope.content or b"")
        message = email.message_from_bytes(data, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.sent.append(SentMail(str(envelope.mail_from), list(envelope.rcpt_tos), data, message))
        return "250 2.0.0 OK: queued"

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user, password = auth_data.login.decode(), auth_data.password.decode()
        ok = (user, password) == (self.user, self.password)
        if ok:
            self.logins.append(user)
        return AuthResult(success=ok, handled=False)

    # --- lifecycle

    async def __aenter__(self) -> FakeSmtp:
        kwargs: dict[str, Any] = {"enable_SMTPUTF8": True, "hostname": "smtp.city.example"}
        if self.user is not None:
            kwargs.update(authenticator=self._authenticate, auth_required=True)
            # Over implicit TLS aiosmtpd does not see the TLS, so it must not insist on it.
            kwargs["auth_require_tls"] = self.tls is not None
        if self.tls is not None:
            kwargs.update(tls_context=self.tls, require_starttls=True)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(self, loop=loop, **kwargs), self.host, 0, ssl=self.implicit_tls
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None


def server_context(cert: str, key: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context
