"""Reading the city's mailbox over IMAP (aioimaplib): every new message handed over exactly once.

Where we are is kept through the host (`remember("email", "uid", ...)`): the folder's UIDVALIDITY and
the last UID handled. A round asks for `UID SEARCH UID last+1:*` (which also answers the newest
message when there is nothing newer, so the answer is filtered), fetches each with `BODY.PEEK[]`
(fetching marks nothing read), hands it over, and only once that returned sets `\\Seen` and moves
the position on. A handler that raises leaves the message unseen and the position where it was:
the round ends and is tried again. A changed UIDVALIDITY (the folder was rebuilt) starts over from
the folder's unseen messages; intake's Message-ID check keeps that from making a second ticket.

Between rounds the reader waits in IDLE when the server has it (renewed every 25 minutes, inside the
29 that RFC 2177 allows), else polls every `poll_seconds`. Errors reconnect with a growing backoff;
of several instances only the one `host.lead("email")` picks reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aioimaplib import aioimaplib  # type: ignore[import-untyped]

from channels.base import ChannelHost
from channels.mail_config import EmailConfig

log = logging.getLogger("channels.email")

IDLE_RENEW_SECONDS = 25 * 60
_BACKOFF_MAX = 300.0
_POSITION = "uid"
_EXISTS = re.compile(rb"^\* \d+ EXISTS")


class MailboxError(Exception):
    """The server refused something (a login, a folder, a command)."""


@dataclass(frozen=True)
class Fetched:
    """One message from the folder. `raw` is the whole message, or only its header when it is
    over `max_message_bytes` (`complete` is then False)."""

    uidvalidity: int
    uid: int
    raw: bytes
    size: int
    complete: bool


# Takes one message; returns whether to mark it seen (False: a person should look at it), raises
# when it could not be stored (it is offered again).
Handler = Callable[[Fetched], Awaitable[bool]]


@dataclass
class Mailbox:
    imap: aioimaplib.IMAP4
    uidvalidity: int
    uidnext: int | None
    lost: asyncio.Event  # the server closed the connection
    news: asyncio.Event  # the server reported messages (EXISTS) since the last round began


class _Protocol(aioimaplib.IMAP4ClientProtocol):  # type: ignore[misc]
    """aioimaplib's protocol, noticing every EXISTS: one the server sends between two commands (a
    mail that arrived just before IDLE began) would otherwise be dropped, and the mail read only
    at the next renewal."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.news = asyncio.Event()

    def _untagged_response(self, line: bytes) -> Any:
        if _EXISTS.match(line):
            self.news.set()
        return super()._untagged_response(line)


class _Client(aioimaplib.IMAP4):  # type: ignore[misc]
    def create_client(
        self,
        host: str,
        port: int,
        loop: asyncio.AbstractEventLoop | None,
        conn_lost_cb: Callable[[Exception | None], None] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        running = loop or asyncio.get_running_loop()
        self.protocol = _Protocol(running, conn_lost_cb)
        self._client_task = running.create_task(
            running.create_connection(lambda: self.protocol, host, port, ssl=ssl_context)
        )

    @property
    def news(self) -> asyncio.Event:
        news: asyncio.Event = self.protocol.news
        return news


def tls_context(config: EmailConfig) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=config.ca_file or None)


def _ok(response: aioimaplib.Response, what: str) -> aioimaplib.Response:
    if response.result != "OK":
        text = b" ".join(line for line in response.lines if isinstance(line, bytes)).decode(
            "utf-8", "replace"
        )
        raise MailboxError(f"{what}: {response.result} {text}"[:300])
    return response


@contextlib.asynccontextmanager
async def open_mailbox(config: EmailConfig) -> AsyncIterator[Mailbox]:
    """A logged-in connection with the folder selected."""
    lost = asyncio.Event()
    implicit = tls_context(config) if config.imap_security == "ssl" else None
    imap = _Client(
        host=config.imap_host,
        port=config.imap_port,
        timeout=config.timeout_seconds,
        conn_lost_cb=lambda _exc: lost.set(),
        ssl_context=implicit,
    )
    try:
        await imap.wait_hello_from_server()
        if config.imap_security == "starttls":
            await _start_tls(imap, config)
        _ok(await imap.login(config.imap_user, config.imap_password), "login")
        selected = _ok(await imap.select(config.folder), f"select {config.folder}")
        text = b"\n".join(line for line in selected.lines if isinstance(line, bytes))
        validity = re.search(rb"UIDVALIDITY (\d+)", text)
        if validity is None:
            raise MailboxError(f"the server gave no UIDVALIDITY for {config.folder}")
        uidnext = re.search(rb"UIDNEXT (\d+)", text)
        yield Mailbox(
            imap, int(validity.group(1)), int(uidnext.group(1)) if uidnext else None, lost, imap.news
        )
    finally:
        await _close(imap)


async def _start_tls(imap: aioimaplib.IMAP4, config: EmailConfig) -> None:
    """STARTTLS (RFC 3501 6.2.1), which aioimaplib lacks: upgrade the connection, then ask the
    server's capabilities again, as the ones before TLS must be forgotten."""
    protocol = imap.protocol
    if "STARTTLS" not in protocol.capabilities:
        raise MailboxError("the server does not offer STARTTLS; set imap_security to ssl or none")
    command = aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)
    _ok(await asyncio.wait_for(protocol.execute(command), config.timeout_seconds), "starttls")
    transport = await protocol.loop.start_tls(
        protocol.transport, protocol, tls_context(config), server_hostname=config.imap_host
    )
    protocol.transport = transport
    await asyncio.wait_for(protocol.capability(), config.timeout_seconds)


async def _close(imap: aioimaplib.IMAP4) -> None:
    with contextlib.suppress(Exception):
        if imap.protocol is not None and imap.get_state() in ("AUTH", "SELECTED"):
            await asyncio.wait_for(imap.logout(), 2)
    transport = getattr(imap.protocol, "transport", None)
    if transport is not None:
        transport.close()


def uids_in(response: aioimaplib.Response) -> list[int]:
    """The UIDs of a SEARCH answer."""
    lines = [line for line in response.lines[:-1] if isinstance(line, bytes)]
    return sorted({int(word) for line in lines for word in line.split() if word.isdigit()})


async def fetch(mailbox: Mailbox, uid: int, max_bytes: int) -> Fetched | None:
    """One message by UID without marking it read; None when it is gone."""
    imap = mailbox.imap
    sized = _ok(await imap.uid("fetch", str(uid), "(RFC822.SIZE)"), f"fetch {uid}")
    found = re.search(rb"RFC822\.SIZE (\d+)", b" ".join(bytes(line) for line in sized.lines))
    if found is None:
        return None
    size = int(found.group(1))
    part = "BODY.PEEK[]" if size <= max_bytes else "BODY.PEEK[HEADER]"
    response = _ok(await imap.uid("fetch", str(uid), f"({part})"), f"fetch {uid}")
    literal = next((bytes(line) for line in response.lines if isinstance(line, bytearray)), None)
    if literal is None:
        return None
    return Fetched(mailbox.uidvalidity, uid, literal, size, complete=size <= max_bytes)


class MailboxReader:
    """Follows one folder and hands each new message to `handle`."""

    def __init__(self, config: EmailConfig, host: ChannelHost, handle: Handler, *, channel: str) -> None:
        self.config = config
        self.host = host
        self.handle = handle
        self.channel = channel
        self.rounds = 0  # finished rounds, for tests and logs
        self.idling = False  # waiting in IDLE now

    async def run(self) -> None:
        failures = 0
        while True:
            if not await self._lead():
                await asyncio.sleep(self.config.poll_seconds)
                continue
            try:
                async with open_mailbox(self.config) as mailbox:
                    failures = 0
                    await self._follow(mailbox)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                delay = min(_BACKOFF_MAX, 2.0 ** (failures - 1)) * random.uniform(0.5, 1.0)
                log.warning(
                    "email: reading %s on %s failed (%s: %s); again in %.1f s",
                    self.config.folder,
                    self.config.imap_host,
                    type(exc).__name__,
                    exc,
                    delay,
                    exc_info=not isinstance(
                        exc, MailboxError | OSError | TimeoutError | aioimaplib.AioImapException
                    ),
                )
                await asyncio.sleep(delay)

    async def _lead(self) -> bool:
        try:
            return await self.host.lead(self.channel)
        except Exception:
            log.exception("email: could not ask whether this instance reads the mailbox")
            return False

    async def _follow(self, mailbox: Mailbox) -> None:
        while True:
            await self._round(mailbox)
            self.rounds += 1
            if not await self._lead():
                return  # another instance reads now; this one asks again later
            await self._wait_for_news(mailbox)
            if mailbox.lost.is_set():
                raise MailboxError("the server closed the connection")

    async def _round(self, mailbox: Mailbox) -> None:
        imap, validity = mailbox.imap, mailbox.uidvalidity
        mailbox.news.clear()  # what arrives from now on is news for the next round
        position = await self._position()
        fresh = position is None or position[:2] != (self.config.folder, validity)
        if fresh:
            if position is not None:
                log.warning(
                    "email: %s has a new UIDVALIDITY; reading its unseen mail again", self.config.folder
                )
            uids = uids_in(_ok(await imap.uid_search("UNSEEN", charset=None), "search"))
            last = 0
        else:
            assert position is not None
            last = position[2]
            found = uids_in(_ok(await imap.uid_search(f"UID {last + 1}:*", charset=None), "search"))
            uids = [uid for uid in found if uid > last]
        for uid in uids:
            fetched = await fetch(mailbox, uid, self.config.max_message_bytes)
            if fetched is not None and await self.handle(fetched):  # raises: unseen, the position stays
                _ok(await imap.uid("store", str(uid), "+FLAGS.SILENT", r"(\Seen)"), f"store {uid}")
            last = max(last, uid)
            await self._remember(validity, last)
        if fresh and mailbox.uidnext is not None and mailbox.uidnext - 1 > last:
            # What was already read when we started is the city's business, not new mail.
            await self._remember(validity, mailbox.uidnext - 1)

    async def _position(self) -> tuple[str, int, int] | None:
        value = await self.host.recall(self.channel, _POSITION)
        try:
            data = json.loads(value) if value else None
            return (str(data["folder"]), int(data["uidvalidity"]), int(data["uid"])) if data else None
        except (ValueError, KeyError, TypeError):
            return None

    async def _remember(self, validity: int, uid: int) -> None:
        value = {"folder": self.config.folder, "uidvalidity": validity, "uid": uid}
        await self.host.remember(self.channel, _POSITION, json.dumps(value))

    async def _wait_for_news(self, mailbox: Mailbox) -> None:
        """Until the folder may have new mail: the server says so in IDLE (or said so between
        commands, which aioimaplib would drop), the connection is lost, or it is time to look."""
        imap = mailbox.imap
        idling = self.config.idle and imap.has_capability("IDLE")
        idle = await imap.idle_start(timeout=IDLE_RENEW_SECONDS) if idling else None
        self.idling = idling
        waits = [asyncio.ensure_future(mailbox.lost.wait()), asyncio.ensure_future(mailbox.news.wait())]
        try:
            await asyncio.wait(
                waits,
                timeout=IDLE_RENEW_SECONDS if idling else self.config.poll_seconds,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            self.idling = False
            for wait in waits:
                wait.cancel()
            if idle is not None and not mailbox.lost.is_set():
                imap.idle_done()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(idle, self.config.timeout_seconds)
            while not imap.protocol.idle_queue.empty():  # pushes were noticed through `news`
                imap.protocol.idle_queue.get_nowait()
