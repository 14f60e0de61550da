"""A burst of signed SMS webhooks while the server is killed (SIGKILL) and restarted, five times at
random moments: every acknowledged message is stored once, every unacknowledged one is taken on
the sender's retry (as Twilio retries), and Twilio's stand-in receives each reply exactly once
(counted at the stand-in, not in the outbox).

The bot runs in a child process on a SQLite file; the stand-in and the senders run here."""

from __future__ import annotations

import asyncio
import collections
import os
import random
import signal
import socket
import sys
import textwrap
import time
from pathlib import Path

import aiohttp
import pytest
from sqlmodel import col, func, select

from store import Direction, Message, StoreConfig
from store.db import open_database
from tests.conftest import ROOT
from tests.fakes.twilio import FakeTwilio, inbound_params, new_sid

ACCOUNT = new_sid("AC")
TOKEN = "c" * 32
CITY = "+15005550006"
PUBLIC = "https://city.example"
MESSAGES = 300
KILLS = 5
TEXTS = ["소파 버리는 방법", "가로등이 고장났어요 {n}", "How do I throw away a sofa?"]
TEXTS += ["The bus stop sign {n} is broken"]  # FAQ questions (answered), complaints (forwarded)

CHILD = textwrap.dedent(
    """
    import asyncio, sys
    sys.path.insert(0, {root!r})
    from pathlib import Path
    from aiohttp import web
    import bot
    from channels.settings import RateLimitConfig
    from channels.sms_config import SmsConfig
    from tests.conftest import config_for_tests, with_channels

    async def main():
        sms = SmsConfig(
            enabled=True, account_sid={account!r}, auth_token={token!r}, from_number={city!r},
            api_base_url={twilio!r}, rate_limit=RateLimitConfig(per_second=100.0),
        )
        config = with_channels(config_for_tests(Path({tmp!r})), sms=sms, public_url={public!r}, patient=True)
        server = config.server.model_copy(update={{"port": {port}}})
        config = config.model_copy(update={{"server": server}})
        b = await bot.build(config, base_dir=Path({root!r}), webchat=False)
        async with b.running(sweeps=False):
            runner = web.AppRunner(bot.make_app(b), access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", {port}).start()
            await asyncio.Event().wait()

    asyncio.run(main())
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def start_child(script: Path, port: int, log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as out:
        child = await asyncio.create_subprocess_exec(sys.executable, str(script), stdout=out, stderr=out)
    async with aiohttp.ClientSession() as http:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if child.returncode is not None:
                pytest.fail(f"the bot exited with {child.returncode}: {tail(log)}")
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                    if response.status == 200:
                        return child
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    child.kill()
    pytest.fail(f"the bot did not start: {tail(log)}")


def tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
async def test_killed_five_times_in_a_burst_nothing_is_lost_and_each_reply_goes_once(tmp_path: Path) -> None:
    seed = int(os.environ.get("INTAKE_CRASH_SEED", random.randrange(1 << 30)))
    chance = random.Random(seed)
    port = free_port()
    log = tmp_path / "bot.log"
    citizens = [f"+8210{5550000 + n:07d}" for n in range(MESSAGES)]
    sids = [new_sid("SM") for _ in range(MESSAGES)]
    acknowledged: set[int] = set()
    async with FakeTwilio(ACCOUNT, TOKEN) as fake:
        script = tmp_path / "child.py"
        script.write_text(
            CHILD.format(
                root=str(ROOT),
                tmp=str(tmp_path),
                account=ACCOUNT,
                token=TOKEN,
                city=CITY,
                twilio=fake.base_url,
                public=PUBLIC,
                port=port,
            )
        )

        async def send_all(stop: asyncio.Event) -> None:
            """Twilio's side: each message until it is acknowledged; a failed try is retried later."""
            todo = [n for n in range(MESSAGES) if n not in acknowledged]

            async def worker() -> None:
                while todo and not stop.is_set():
                    n = todo.pop(0)
                    params = inbound_params(
                        ACCOUNT, sid=sids[n], from_=citizens[n], to=CITY, body=TEXTS[n % 4].format(n=n)
                    )
                    try:
                        status = await fake.webhook(
                            f"{PUBLIC}/webhooks/sms", params, connect_to=f"http://127.0.0.1:{port}"
                        )
                    except (aiohttp.ClientError, TimeoutError):
                        continue  # the server died under it: not acknowledged, sent again next round
                    if 200 <= status < 300:
                        acknowledged.add(n)

            await asyncio.gather(*(worker() for _ in range(16)))

        for _ in range(KILLS):
            child = await start_child(script, port, log)
            stop = asyncio.Event()
            senders = asyncio.create_task(send_all(stop))
            await asyncio.sleep(chance.uniform(0.2, 2.5))
            os.kill(child.pid, signal.SIGKILL)
            await child.wait()
            stop.set()
            await senders

        child = await start_child(script, port, log)
        try:
            started = time.monotonic()
            await send_all(asyncio.Event())
            assert acknowledged == set(range(MESSAGES)), f"seed {seed}"
            # Every citizen gets a reply; then a moment more, in which a second one would show.
            await fake.wait_for(lambda f: len({sms.to for sms in f.sent}) >= MESSAGES, timeout=120)
            drained = time.monotonic() - started
            await asyncio.sleep(2)
        finally:
            os.kill(child.pid, signal.SIGKILL)
            await child.wait()

        # A long reply may go as several texts: what must not repeat is a text to a citizen.
        replies = collections.Counter((sms.to, sms.body) for sms in fake.sent)
        twice = {reply: count for reply, count in replies.items() if count > 1}
        assert not twice, f"seed {seed}: replies sent more than once: {twice}"
        assert {to for to, _ in replies} == set(citizens)
        assert fake.spec_violations == []

    db = open_database(StoreConfig(url=f"sqlite+aiosqlite:///{tmp_path / 'intake.db'}"))
    try:
        async with db.session() as s:
            inbound = select(func.count(), func.count(col(Message.provider_message_id).distinct())).where(
                col(Message.direction) == Direction.IN
            )
            stored, distinct = (await s.exec(inbound)).one()
    finally:
        await db.close()
    assert (stored, distinct) == (MESSAGES, MESSAGES), f"seed {seed}"
    unsure = log.read_text(errors="replace").count("may have been sent before a crash")
    print(
        f"seed {seed}: {KILLS} kills; {unsure} replies cut short by a kill were asked about "
        f"({len(fake.listings)} listings at Twilio); the last start drained the rest in {drained:.1f} s"
    )
