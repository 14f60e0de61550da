"""A city's worst day on SMS: a burst of signed Twilio webhooks, as fast as 64 clients can send them.

    .venv/bin/python bench/burst.py [--messages 10000] [--concurrency 64] [--rate 100] [--database-url URL]

The real bot (shipped config.yaml, the SMS channel on, a fresh SQLite file or PostgreSQL schema)
serves on 127.0.0.1. A second process plays Twilio: it signs each webhook as Twilio does and POSTs
it (each citizen texts once), and it is the stand-in the real twilio SDK sends the replies to, at a
short code's rate (`--rate` segments a second). A bare aiohttp handler that parses the same form is
measured in the same run, as the floor.

Reported: every webhook's answer (2xx within Twilio's 15 s?), the intake rate, the time to drain
the outbox, the server's memory over idle during the burst, and the check that each citizen got
each reply exactly once (counted at the stand-in, not in the outbox). Exit status 1 on a failure.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from bench/: the project's packages live one level up

from sqlalchemy import func  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlmodel import col, select  # noqa: E402

import bot as bot_module  # noqa: E402
from bench.fresh import fresh_store  # noqa: E402
from bench.intake import bot_config, nearest_rank, serve  # noqa: E402
from channels.settings import RateLimitConfig  # noqa: E402
from channels.sms_config import SmsConfig  # noqa: E402
from store import Direction, Message, OutboxStatus, data  # noqa: E402
from tests.fakes.twilio import FakeTwilio, inbound_params, new_sid, segment_count, sign  # noqa: E402

ACCOUNT = "AC" + "5" * 32  # fixed: the Twilio process imports this module afresh
TOKEN = "b" * 32
CITY = "+15005550006"
PUBLIC = "https://city.example"  # what Twilio signs over; the requests really go to 127.0.0.1
TWILIO_PATIENCE = 15.0  # seconds Twilio waits for a webhook's answer
WARM_UP, WARM_UP_NUMBERS = 8, 90_000_000  # messages before the burst, from numbers of their own
TEXTS = [
    "소파 버리는 방법",
    "가로등이 고장났어요 {n}",
    "How do I throw away a sofa?",
    "The bus stop sign {n} is broken",
]


@dataclass
class Burst:
    target: str
    requests: int
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # seconds, answered 2xx
    errors: int = 0

    def summary(self) -> dict[str, Any]:
        slow = sum(latency > TWILIO_PATIENCE for latency in self.latencies)
        return {
            "target": self.target,
            "requests": self.requests,
            "answered_2xx": len(self.latencies),
            "errors": self.errors,
            "over_15s": slow,
            "req_per_s": round(self.requests / self.seconds, 1),
            "p50_ms": round(nearest_rank(self.latencies, 50) * 1000, 1),
            "p99_ms": round(nearest_rank(self.latencies, 99) * 1000, 1),
            "max_ms": round(max(self.latencies, default=float("nan")) * 1000, 1),
        }


@dataclass
class TwilioSide:
    """What the Twilio process saw."""

    bursts: list[Burst] = field(default_factory=list)
    drain_seconds: float | None = None  # first webhook until the last citizen's reply arrived
    texts: int = 0  # messages the stand-in accepted
    segments: int = 0  # what the short code's rate counts
    repeated: dict[str, int] = field(default_factory=dict)  # "to: body" -> times, when more than once
    unanswered: int = 0  # citizens with no reply at the end
    spec_violations: list[str] = field(default_factory=list)


# --- the Twilio process ---------------------------------------------------------------------------


async def burst(url: str, target: str, messages: int, concurrency: int, offset: int) -> Burst:
    result, todo = Burst(target, messages), iter(range(messages))
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency), timeout=timeout
    ) as http:

        async def worker() -> None:
            for n in todo:
                number = f"+8210{offset + n:08d}"
                params = inbound_params(
                    ACCOUNT, sid=new_sid("SM"), from_=number, to=CITY, body=TEXTS[n % 4].format(n=n)
                )
                headers = {
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Twilio-Signature": sign(TOKEN, f"{PUBLIC}/webhooks/sms", params),
                }
                started = time.perf_counter()
                try:
                    async with http.post(f"{url}/webhooks/sms", data=urlencode(params), headers=headers) as r:
                        await r.read()
                        ok = 200 <= r.status < 300
                        if not ok and os.environ.get("BURST_DEBUG"):
                            print(target, r.status, await r.text(), flush=True)
                except (aiohttp.ClientError, TimeoutError):
                    ok = False
                if ok:
                    result.latencies.append(time.perf_counter() - started)
                else:
                    result.errors += 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        result.seconds = time.perf_counter() - began
    return result


async def twilio_side(pipe: Connection, messages: int, concurrency: int, drain_timeout: float) -> TwilioSide:
    side = TwilioSide()
    async with FakeTwilio(ACCOUNT, TOKEN) as fake:
        pipe.send(fake.base_url)
        urls: dict[str, str] = await asyncio.to_thread(pipe.recv)
        side.bursts.append(await burst(urls["bare"], "bare", messages, concurrency, offset=0))
        # Warm the bot up first (its Korean analyser, the SDK's first send), as a server that has
        # run a while is: then its idle memory is read, and the burst begins.
        await burst(urls["bot"], "warm-up", WARM_UP, 4, offset=WARM_UP_NUMBERS)
        warm = {f"+8210{WARM_UP_NUMBERS + n:08d}" for n in range(WARM_UP)}
        await fake.wait_for(lambda f: warm <= {sms.to for sms in f.sent}, timeout=60)
        pipe.send("measure")
        await asyncio.to_thread(pipe.recv)
        started = time.perf_counter()
        side.bursts.append(await burst(urls["bot"], "bot", messages, concurrency, offset=0))
        citizens = {f"+8210{n:08d}" for n in range(messages)}
        try:
            await fake.wait_for(lambda f: citizens <= {sms.to for sms in f.sent}, timeout=drain_timeout)
            side.drain_seconds = time.perf_counter() - started
        except TimeoutError:
            pass
        await asyncio.sleep(2.0)  # a second copy of a reply would show by now
        counts = collections.Counter((sms.to, sms.body) for sms in fake.sent)
        side.texts = len(fake.sent)
        side.segments = sum(segment_count(sms.body) for sms in fake.sent)
        side.repeated = {f"{to}: {body[:40]}": n for (to, body), n in counts.items() if n > 1}
        side.unanswered = len(citizens - {sms.to for sms in fake.sent})
        side.spec_violations = fake.spec_violations[:5]
    return side


def run_twilio_side(pipe: Connection, messages: int, concurrency: int, drain_timeout: float) -> None:
    pipe.send(asyncio.run(twilio_side(pipe, messages, concurrency, drain_timeout)))


# --- the server (this process) ---------------------------------------------------------------


def bare_app() -> web.Application:
    """The floor: parse the form Twilio posts and answer with empty TwiML."""

    async def accept(request: web.Request) -> web.Response:
        await request.post()
        return web.Response(text="<Response/>", content_type="text/xml")

    app = web.Application()
    app.router.add_post("/webhooks/sms", accept)
    return app


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


async def watch_memory(samples: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        samples.append(rss_mb())
        await asyncio.sleep(0.1)


async def bench(args: argparse.Namespace, url: str) -> tuple[TwilioSide, dict[str, Any]]:
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    twilio = context.Process(
        target=run_twilio_side, args=(theirs, args.messages, args.concurrency, args.drain_timeout)
    )
    twilio.start()
    try:
        twilio_url = await asyncio.to_thread(ours.recv)
        config = bot_config(url)  # as bench/intake.py runs the bot, with the SMS channel on
        sms = SmsConfig(
            enabled=True,
            account_sid=ACCOUNT,
            auth_token=TOKEN,
            from_number=CITY,
            api_base_url=twilio_url,
            rate_limit=RateLimitConfig(per_second=args.rate),
            status_callbacks=False,
        )
        config = config.model_copy(
            update={
                "channels": config.channels.model_copy(update={"sms": sms}),
                "server": config.server.model_copy(update={"public_url": PUBLIC}),
            }
        )
        memory: dict[str, Any] = {}
        async with fresh_store(url, config.store) as db:
            bot = await bot_module.build(config, base_dir=ROOT, db=db)
            async with bot.running():
                runners = {"bot": await serve(bot_module.make_app(bot)), "bare": await serve(bare_app())}
                ours.send({target: base for target, (_, base) in runners.items()})
                await asyncio.to_thread(ours.recv)  # the floor was measured
                memory["idle_mb"] = round(rss_mb(), 1)
                samples: list[float] = []
                stop = asyncio.Event()
                watcher = asyncio.create_task(watch_memory(samples, stop))
                ours.send("go")
                side: TwilioSide = await asyncio.to_thread(ours.recv)
                stop.set()
                await watcher
                memory["peak_mb"] = round(max(samples), 1)
                memory["peak_over_idle_mb"] = round(max(samples) - memory["idle_mb"], 1)
                for runner, _ in runners.values():
                    await runner.cleanup()
                async with bot.db.session() as session:
                    inbound = select(func.count(), func.count(col(Message.provider_message_id).distinct()))
                    stored, distinct = (
                        await session.exec(inbound.where(col(Message.direction) == Direction.IN))
                    ).one()
                    store = {"messages_in": stored, "distinct_provider_ids": distinct}
                    for status in OutboxStatus:
                        store[f"outbox_{status.value}"] = await data.count_outbox(session, status=status)
                group = bot.router.writer
                store["intake_batches"], store["intake_units"] = group.batches, group.units
    finally:
        twilio.join(timeout=10)
        if twilio.is_alive():
            twilio.kill()
    return side, {"memory": memory, "store": store}


def main() -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--messages", type=int, default=10_000, help="webhooks, one per citizen")
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--rate", type=float, default=100.0, help="SMS segments a second (a short code: 100)")
    p.add_argument("--drain-timeout", type=float, default=1800.0, help="seconds to wait for every reply")
    p.add_argument("--database-url", help="default: a fresh SQLite file in a temp dir")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args()

    with tempfile.TemporaryDirectory(prefix="burst-bench-") as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{tmp}/burst.db"
        facts = {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
            "database": make_url(url).get_backend_name(),
            "messages": args.messages,
            "concurrency": args.concurrency,
            "rate": f"{args.rate:g} segments/s",
        }
        for key, value in facts.items():
            print(f"{key:<12} {value}")
        side, server = asyncio.run(bench(args, url))

    rows = [b.summary() for b in side.bursts]
    print("\n" + " ".join(f"{k:>12}" for k in rows[0]))
    for row in rows:
        print(" ".join(f"{v:>12}" for v in row.values()))
    bot_row = next(r for r in rows if r["target"] == "bot")
    bare_row = next(r for r in rows if r["target"] == "bare")
    ratio = bot_row["req_per_s"] / bare_row["req_per_s"]
    drain = f"{side.drain_seconds:.1f} s" if side.drain_seconds is not None else "not drained"
    print(f"\nbot / bare   {ratio:.1%} (the bare handler parses the same form, in the same run)")
    print(f"drain        first webhook to the last citizen's reply: {drain} ({side.texts} texts)")
    floor = side.segments / args.rate
    print(f"             {side.segments} segments at {args.rate:g} a second take {floor:.1f} s at the least")
    print(f"memory       {server['memory']}")
    print(f"store        {server['store']}")

    problems = []
    if bot_row["answered_2xx"] != args.messages:
        problems.append(f"{args.messages - bot_row['answered_2xx']} webhooks not answered 2xx")
    if bot_row["over_15s"]:
        problems.append(f"{bot_row['over_15s']} webhooks answered after Twilio's 15 s")
    if side.repeated:
        problems.append(f"replies sent more than once: {dict(list(side.repeated.items())[:5])}")
    if side.unanswered:
        problems.append(f"{side.unanswered} citizens got no reply")
    stored, expected = server["store"], args.messages + WARM_UP
    if stored["messages_in"] != expected or stored["distinct_provider_ids"] != expected:
        problems.append(f"stored inbound messages: {stored}, expected {expected} once each (warm-up too)")
    if side.spec_violations:
        problems.append(f"requests the Twilio spec refuses: {side.spec_violations}")
    print("OK: every webhook answered 2xx in time, each reply sent once" if not problems else "FAILED:")
    for problem in problems:
        print(f"  {problem}")
    if args.json:
        report = {"machine": facts, "rows": rows, "ratio": ratio, "drain_seconds": side.drain_seconds}
        report |= {"drain_floor_seconds": floor}
        report |= {"server": server, "problems": problems, "twilio": asdict(side) | {"bursts": rows}}
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
