"""A real IMAP server for tests: Debian's dovecot-imapd started on a throw-away configuration.

One server per test session (start-up takes a moment); each test gets its own mailbox by logging in
as a fresh user (any user name logs in with `password`, and gets an empty Maildir). Citizens' mail
is put there with IMAP APPEND, which is how a message arrives as far as the bot can tell.

Absent dovecot skips the tests with the reason, unless INTAKE_REQUIRE_IMAP=1 (CI), which fails them.
Use it from a test module: `from tests.fakes.dovecot import dovecot  # noqa: F401` (a fixture).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aioimaplib import aioimaplib

REQUIRE_IMAP = os.environ.get("INTAKE_REQUIRE_IMAP") == "1"
PASSWORD = "city-mail-secret"


def dovecot_binary() -> str | None:
    if Path("/usr/sbin/dovecot").exists():
        return "/usr/sbin/dovecot"
    return shutil.which("dovecot")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Dovecot:
    """A running dovecot: plain IMAP on `port` (STARTTLS offered), implicit TLS on `ssl_port`."""

    host: str
    port: int
    ssl_port: int
    ca_file: str  # the self-signed certificate the server presents
    key_file: str  # ... and its key (the SMTP stand-in presents the same one)
    password: str
    log_file: Path

    def new_user(self) -> str:
        """A fresh, empty mailbox."""
        return f"city{secrets.token_hex(4)}"

    @contextlib.asynccontextmanager
    async def session(self, user: str, folder: str = "INBOX") -> AsyncIterator[aioimaplib.IMAP4]:
        """A logged-in IMAP session with `folder` selected, as a person's mail client has."""
        imap = aioimaplib.IMAP4(host=self.host, port=self.port, timeout=5)
        await imap.wait_hello_from_server()
        assert (await imap.login(user, self.password)).result == "OK"
        if folder != "INBOX":
            await imap.create(folder)
        assert (await imap.select(folder)).result == "OK"
        try:
            yield imap
        finally:
            with contextlib.suppress(Exception):
                await imap.logout()

    async def append(
        self, user: str, message: bytes, *, folder: str = "INBOX", flags: str | None = None
    ) -> int:
        """Deliver `message` into the mailbox; returns its UID."""
        async with self.session(user, folder) as imap:
            response = await imap.append(message, mailbox=folder, flags=flags)
            assert response.result == "OK", response
            found = re.search(rb"APPENDUID \d+ (\d+)", b" ".join(response.lines))
            assert found, response.lines
            return int(found.group(1))

    async def flags(self, user: str, uid: int, folder: str = "INBOX") -> set[str]:
        async with self.session(user, folder) as imap:
            response = await imap.uid("fetch", str(uid), "(FLAGS)")
            line = b" ".join(response.lines).decode()
            found = re.search(r"FLAGS \(([^)]*)\)", line)
            return set(found.group(1).split()) if found else set()

    async def expunge_all(self, user: str, folder: str = "INBOX") -> None:
        async with self.session(user, folder) as imap:
            await imap.store("1:*", "+FLAGS.SILENT", r"(\Deleted)")
            await imap.expunge()

    def kick(self, user: str) -> None:
        """Drop the user's connections, as a server restart or a network failure would."""
        config = self.log_file.parent / "dovecot.conf"
        subprocess.run(["doveadm", "-c", str(config), "kick", user], check=True, capture_output=True)

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""


def _config(root: Path, port: int, ssl_port: int, cert: Path, key: Path) -> str:
    # As root, dovecot's login and mail processes must not be root: they run as nobody, and the
    # directories they use are made reachable for it. As anyone else, everything runs as that user.
    me = pwd.getpwuid(os.getuid())
    runner = pwd.getpwnam("nobody") if os.getuid() == 0 else me
    group = runner.pw_gid
    return f"""
base_dir = {root}/run
state_dir = {root}/state
instance_name = intake-test-{port}
listen = 127.0.0.1
protocols = imap
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
default_internal_user = {runner.pw_name}
default_internal_group = {_group_name(group)}
default_login_user = {runner.pw_name}
disable_plaintext_auth = no
auth_mechanisms = plain login
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
mail_location = maildir:~/Maildir
first_valid_uid = {min(runner.pw_uid, 500)}
passdb {{
  driver = static
  args = password={PASSWORD}
}}
userdb {{
  driver = static
  args = uid={runner.pw_uid} gid={group} home={root}/home/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {ssl_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
"""


def _group_name(gid: int) -> str:
    import grp

    return grp.getgrgid(gid).gr_name


def _self_signed(root: Path) -> tuple[Path, Path]:
    cert, key = root / "cert.pem", root / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"dovecot exited at start-up:\n{log.read_text(errors='replace') if log.exists() else ''}"
            )
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            if s.recv(64).startswith(b"* OK"):
                return
        time.sleep(0.05)
    raise RuntimeError(f"dovecot did not listen on {port} within {timeout:g} s")


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    """A dovecot for the whole session; skipped when dovecot is not installed (failed in CI)."""
    binary = dovecot_binary()
    if binary is None:
        reason = "dovecot is not installed (apt-get install dovecot-imapd)"
        if REQUIRE_IMAP:
            pytest.fail(f"INTAKE_REQUIRE_IMAP=1 but {reason}")
        pytest.skip(reason)
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make the test server's certificate")
    # Not under pytest's tmp_path: that is private to us, and dovecot's processes run as nobody.
    root = Path(tempfile.mkdtemp(prefix="intake-dovecot-"))
    root.chmod(0o755)
    for name in ("run", "state", "home"):
        (root / name).mkdir()
    (root / "home").chmod(0o777)
    cert, key = _self_signed(root)
    port, ssl_port = free_port(), free_port()
    (root / "dovecot.conf").write_text(_config(root, port, ssl_port, cert, key))
    process = subprocess.Popen([binary, "-F", "-c", str(root / "dovecot.conf")], stdin=subprocess.DEVNULL)
    try:
        _wait_listening(port, process, root / "dovecot.log")
        yield Dovecot("127.0.0.1", port, ssl_port, str(cert), str(key), PASSWORD, root / "dovecot.log")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(root, ignore_errors=True)


def client_context(ca_file: str) -> ssl.SSLContext:
    """What a client needs to trust the test server's certificate."""
    return ssl.create_default_context(cafile=ca_file)


async def wait_for_log(server: Dovecot, text: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in server.log():
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} not in dovecot's log")
        await asyncio.sleep(0.05)
