"""How fast the web chat API takes a citizen's message, next to a bare aiohttp handler (the floor).

    .venv/bin/python bench/intake.py [--levels 1,4,16,64] [--requests 400] [--database-url URL] [--json PATH]

The real bot (shipped config.yaml on a fresh SQLite file or a fresh PostgreSQL schema) and a bare
aiohttp app are served on 127.0.0.1; a client in a separate process (so client and server do not
share one event loop or core) sends both the same requests at each concurrency. Afterwards the
store and the chat API are checked: every accepted message stored once and replied to. Exit status
1 on any failed request, lost message or missing reply.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import platform
import signal
import sys
import tempfile
import time
from asyncio.subprocess import PIPE
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from bench/: the project's packages live one level up

from sqlalchemy import distinct, func  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402
from sqlmodel import col, select  # noqa: E402

import bot as bot_module  # noqa: E402
from bench.fresh import fresh_database, fresh_store  # noqa: E402
from knowledge import detect_language  # noqa: E402
from server.config import BotConfig, load_config  # noqa: E402
from store import Database, Direction, Message, OutboxStatus, Ticket, data  # noqa: E402

RATE_LIMIT = 1_000_000  # web chat messages_per_minute per session: measure intake, not the limiter
COMPLAINTS = ["가로등이 고장났어요 {n}", "The bus stop sign on road {n} is broken"]
SAMPLE_TIMEOUT = 30.0  # a sampled reply later than this is counted late and left out of "vis"
FINAL_TIMEOUT = 120.0  # after the last request, a reply not visible by then counts as lost
HISTORY = 200  # the store shows a conversation's last 200 messages: keep each citizen well below
# The table: column header -> key in Row.summary() (and in the JSON).
COLUMNS = {"target": "target", "conc": "concurrency", "reqs": "requests", "errors": "errors"}
COLUMNS |= {"req/s": "req_per_s", "p50 ms": "p50_ms", "p99 ms": "p99_ms"}
COLUMNS |= {"vis n": "visible_n", "vis p50": "visible_p50_ms", "vis p99": "visible_p99_ms", "late": "late"}


def nearest_rank(values: list[float], p: float) -> float:
    """The p-th percentile by nearest rank: the ceil(p/100 * n)-th smallest value."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1] if ordered else float("nan")


@dataclass
class Plan:
    """What the client process does (picklable: it crosses the process boundary)."""

    urls: dict[str, str]  # target -> base URL
    levels: list[int]
    requests: int
    warmup: int
    citizens: int
    samples: int
    faq: list[str]
    instances: list[str] = field(default_factory=list)  # the bot's instances; citizen n talks to n % len

    def bot_url(self, citizen: int) -> str:
        return self.instances[citizen % len(self.instances)] if self.instances else self.urls["bot"]


@dataclass
class Row:
    target: str
    concurrency: int
    requests: int
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # ms, requests answered 200
    visible: list[float] = field(default_factory=list)  # ms, sampled bot messages
    late: int = 0  # sampled messages whose reply took longer than SAMPLE_TIMEOUT

    def summary(self) -> dict[str, Any]:
        out = {"target": self.target, "concurrency": self.concurrency, "requests": self.requests}
        out |= {"errors": self.errors, "req_per_s": round(self.requests / self.seconds, 1)}
        out |= {"p50_ms": round(nearest_rank(self.latencies, 50), 2)}
        out |= {"p99_ms": round(nearest_rank(self.latencies, 99), 2)}
        if self.target == "bot":  # the reply-visible columns
            out |= {"visible_n": len(self.visible), "late": self.late}
            out |= {"visible_p50_ms": round(nearest_rank(self.visible, 50), 1)}
            out |= {"visible_p99_ms": round(nearest_rank(self.visible, 99), 1)}
        return out


@dataclass
class ClientResult:
    rows: list[Row] = field(default_factory=list)
    warmup_errors: int = 0
    accepted: int = 0  # bot messages answered 200, warm-ups included
    unreplied: int = 0  # citizens whose conversation lacks a message or a reply at the end


def replied(messages: list[dict[str, Any]]) -> list[bool]:
    """Per citizen message, oldest first: whether a city message follows it. Each reply is queued in
    the intake's transaction, so it sorts after its message and before the citizen's next one."""
    out: list[bool] = []
    for message in messages:
        if message["from"] == "citizen":
            out.append(False)
        elif out:
            out[-1] = True
    return out


def reply_to(n: int, *, all_of: bool = False) -> Callable[[list[bool]], bool]:
    """Whether the citizen's n-th message shows a reply (all_of: exactly n messages, each replied)."""
    if all_of:
        return lambda shown: len(shown) == n and all(shown)
    return lambda shown: len(shown) >= n and shown[n - 1]


# --- the client (runs in its own process) ------------------------------------------------------


class Client:
    def __init__(self, plan: Plan) -> None:
        self.plan, self.result = plan, ClientResult()
        self.sessions: list[str] = []
        self.sent = [0] * plan.citizens  # bot messages sent per citizen
        self.index = dict.fromkeys(plan.urls, 0)  # per target: the next message number

    def message(self, target: str) -> tuple[int, dict[str, str]]:
        """The next message of `target`'s run: (the citizen sending it, the body)."""
        k = self.index[target]
        self.index[target] += 1
        citizen = k % self.plan.citizens
        faq = (k + k // self.plan.citizens) % 2 == 0  # alternate, and each citizen alternates too
        said = self.plan.faq[k // 2 % len(self.plan.faq)] if faq else COMPLAINTS[k // 2 % 2].format(n=k)
        return citizen, {"session": self.sessions[citizen], "id": f"bench-{k:08d}", "text": said}

    async def run(self) -> ClientResult:
        timeout = aiohttp.ClientTimeout(total=60)  # a long-poll is held up to 25 s
        async with aiohttp.ClientSession(timeout=timeout) as polls:
            for citizen in range(self.plan.citizens):
                async with polls.post(self.plan.bot_url(citizen) + "/chat/api/session") as response:
                    self.sessions.append((await response.json())["session"])
            for level in self.plan.levels:
                for target in self.plan.urls:
                    warm = await self.level(polls, target, level, self.plan.warmup, sample_every=0)
                    self.result.warmup_errors += warm.errors
                    every = max(1, self.plan.requests // self.plan.samples) if target == "bot" else 0
                    self.result.rows.append(await self.level(polls, target, level, self.plan.requests, every))
            # The citizen's view at the end: every message there, each followed by a reply.
            start = time.perf_counter()
            finals = [
                self.watch(polls, c, reply_to(n, all_of=True), start, FINAL_TIMEOUT)
                for c, n in enumerate(self.sent)
            ]
            self.result.unreplied = sum(seen is None for seen in await asyncio.gather(*finals))
        return self.result

    async def level(
        self, polls: aiohttp.ClientSession, target: str, concurrency: int, count: int, sample_every: int
    ) -> Row:
        row, url, todo = Row(target, concurrency, count), self.plan.urls[target], iter(range(count))
        watchers: list[asyncio.Task[float | None]] = []
        # `concurrency` connections for the POSTs; the watchers' long-polls go through `polls`
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(60)) as http:

            async def worker() -> None:
                for i in todo:
                    citizen, body = self.message(target)
                    base = self.plan.bot_url(citizen) if target == "bot" else url
                    start = time.perf_counter()
                    try:
                        async with http.post(base + "/chat/api/messages", json=body) as response:
                            await response.read()
                            ok = response.status == 200
                    except (aiohttp.ClientError, TimeoutError):
                        ok = False
                    if not ok:
                        row.errors += 1
                        continue
                    row.latencies.append((time.perf_counter() - start) * 1000)
                    if target == "bot":
                        self.result.accepted += 1
                        self.sent[citizen] += 1
                        if sample_every and i % sample_every == 0:
                            done = reply_to(self.sent[citizen])
                            watch = self.watch(polls, citizen, done, start)
                            watchers.append(asyncio.create_task(watch))

            began = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            row.seconds = time.perf_counter() - began
        for seen in await asyncio.gather(*watchers):
            if seen is None:
                row.late += 1
            else:
                row.visible.append(seen)
        return row

    async def watch(
        self,
        polls: aiohttp.ClientSession,
        citizen: int,
        done: Callable[[list[bool]], bool],
        start: float,
        limit: float = SAMPLE_TIMEOUT,
    ) -> float | None:
        """Long-poll the citizen's conversation until `done`: ms since `start`, or None after `limit` s."""
        version, session = "", self.sessions[citizen]
        while time.perf_counter() - start < limit:
            query = {"session": session, "version": version}
            async with polls.get(self.plan.bot_url(citizen) + "/chat/api/messages", params=query) as response:
                if response.status != 200:
                    return None
                body = await response.json()
            if done(replied(body["messages"])):
                return (time.perf_counter() - start) * 1000
            version = body["version"]
        return None


def run_client(plan: Plan) -> ClientResult:
    return asyncio.run(Client(plan).run())


# --- the servers and the store check (this process) ----------------------------------------------


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()  # port 0: the OS picks a free one
    host, port = runner.addresses[0][:2]  # read back from the site's listening socket
    return runner, f"http://{host}:{port}"


def bare_app() -> web.Application:
    async def accept(request: web.Request) -> web.Response:
        await request.json()
        return web.json_response({"accepted": True})

    app = web.Application()
    app.router.add_post("/chat/api/messages", accept)
    return app


def faq_questions(bot: bot_module.Bot) -> list[str]:
    """A few shipped FAQ questions that the router really answers; complaints must not be answered."""
    found: list[str] = []
    for path in sorted((ROOT / "knowledge" / "faq").glob("*.yaml")):
        for entry in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("entries", [])[:2]:
            found += [asked[0] for asked in entry.get("questions", {}).values() if asked]

    def answered(said: str) -> bool:
        language = detect_language(said, default=bot.config.router.default_language)
        return bot.router.decide(said, language).answer is not None

    if any(answered(c.format(n=123)) for c in COMPLAINTS):
        raise SystemExit("a complaint text is answered from the FAQ: pick other complaint texts")
    return [q for q in found if answered(q)][:8]


async def settle_and_count(db: Database, timeout: float = FINAL_TIMEOUT) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while True:  # the dispatcher may still be sending the last replies
        async with db.session() as session:
            counts = {s.value: await data.count_outbox(session, status=s) for s in OutboxStatus}
            count = select(func.count()).select_from(Message)
            for direction in Direction:
                query = count.where(col(Message.direction) == direction)
                counts[f"messages_{direction.value}"] = (await session.exec(query)).one()
            inbound = count.where(col(Message.direction) == Direction.IN)
            query = inbound.where(col(Message.ticket_id).is_(None))
            counts["in_without_ticket"] = (await session.exec(query)).one()
            counts["tickets"] = (await session.exec(select(func.count()).select_from(Ticket))).one()
            tickets = select(func.count(distinct(col(Message.ticket_id))))
            query = tickets.where(col(Message.direction) == Direction.IN)
            counts["tickets_of_messages"] = (await session.exec(query)).one()
        if counts["pending"] + counts["sending"] == 0 or time.monotonic() > deadline:
            return counts
        await asyncio.sleep(0.2)


def bot_config(url: str, instance: str = "", pool_size: int = 0) -> BotConfig:
    config = load_config(ROOT / "config.yaml")
    webchat = config.channels.webchat.model_copy(update={"messages_per_minute": RATE_LIMIT})
    return config.model_copy(
        update={
            "store": config.store.model_copy(
                update={"url": url, "pool_size": pool_size or config.store.pool_size}
            ),
            "knowledge": config.knowledge.model_copy(update={"reload_seconds": 0}),
            "channels": config.channels.model_copy(update={"webchat": webchat}),
            "server": config.server.model_copy(update={"instance": instance}),
        }
    )


def plan_for(
    args: argparse.Namespace, urls: dict[str, str], faq: list[str], instances: list[str] | None = None
) -> Plan:
    # One citizen per concurrent request at least (no session has two messages in flight), and
    # few enough messages each (two with the reply) that the conversation shows all of them.
    total = len(args.levels) * (args.requests + args.warmup)
    citizens = int(max(args.citizens, *args.levels, math.ceil(2 * total / (HISTORY - 20))))
    return Plan(urls, args.levels, args.requests, args.warmup, citizens, args.samples, faq, instances or [])


async def run_plan(plan: Plan, same_process: bool) -> ClientResult:
    if same_process:
        return await Client(plan).run()
    # spawn, not fork: a forked child would inherit this running event loop
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return await asyncio.get_running_loop().run_in_executor(pool, run_client, plan)


async def bench(args: argparse.Namespace, url: str) -> tuple[Plan, ClientResult, dict[str, int]]:
    if args.instances:
        return await bench_instances(args, url)
    config = bot_config(url, pool_size=args.pool_size)
    async with fresh_store(url, config.store) as db:
        bot = await bot_module.build(config, base_dir=ROOT, db=db)
        async with bot.running():
            runners = {"bot": await serve(bot_module.make_app(bot)), "bare": await serve(bare_app())}
            urls = {target: base for target, (_, base) in runners.items()}
            plan = plan_for(args, urls, faq_questions(bot))
            try:
                result = await run_plan(plan, args.same_process)
            finally:
                for runner, _ in runners.values():
                    await runner.cleanup()
            return plan, result, await settle_and_count(bot.db)


async def bench_instances(args: argparse.Namespace, url: str) -> tuple[Plan, ClientResult, dict[str, int]]:
    """The bot as `args.instances` processes on one fresh PostgreSQL database; each citizen talks
    to one of them (as behind a load balancer with sticky sessions)."""
    async with fresh_database(url) as database:
        servers = [
            await asyncio.create_subprocess_exec(
                *(sys.executable, __file__, "--serve", database, "--instance", f"bench-{n}"),
                *("--pool-size", str(args.pool_size)),
                stdout=PIPE,
            )
            for n in range(args.instances)
        ]
        try:
            ready = [json.loads(await server.stdout.readline()) for server in servers if server.stdout]
            bare, bare_url = await serve(bare_app())
            urls = {"bot": ready[0]["url"], "bare": bare_url}
            plan = plan_for(args, urls, ready[0]["faq"], instances=[r["url"] for r in ready])
            try:
                result = await run_plan(plan, args.same_process)
            finally:
                await bare.cleanup()
            db = Database(create_async_engine(database))
            try:
                counts = await settle_and_count(db)
            finally:
                await db.close()
        finally:
            for server in servers:
                if server.returncode is None:
                    server.terminate()
                await server.wait()
    return plan, result, counts


async def serve_instance(url: str, instance: str, pool_size: int) -> None:
    """`--serve URL`: one instance of the bot for `bench_instances`, in a process of its own. It
    prints its URL and the FAQ questions it answers as one JSON line, then serves until SIGTERM."""
    bot = await bot_module.build(bot_config(url, instance, pool_size), base_dir=ROOT)
    async with bot.running():
        runner, base = await serve(bot_module.make_app(bot))
        print(json.dumps({"url": base, "faq": faq_questions(bot)}), flush=True)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await runner.cleanup()


def main() -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--levels", default="1,4,16,64", help="comma-separated concurrency levels")
    p.add_argument("--requests", type=int, default=400, help="measured requests per level and target")
    p.add_argument("--warmup", type=int, default=20, help="unmeasured requests before each level")
    p.add_argument("--citizens", type=int, default=100, help="web chat sessions, used round-robin")
    p.add_argument("--samples", type=int, default=50, help="messages per level timed until reply visible")
    p.add_argument("--database-url", help="default: a fresh SQLite file in a temp dir")
    p.add_argument("--same-process", action="store_true", help="run the client in the server's process")
    p.add_argument("--json", type=Path, help="also write the results here")
    several = "PostgreSQL: run the bot as this many processes on one database"
    p.add_argument("--instances", type=int, default=0, help=several)
    p.add_argument("--pool-size", type=int, default=0, help="store.pool_size (default: config.yaml's)")
    p.add_argument("--serve", metavar="URL", help=argparse.SUPPRESS)  # one of those processes
    p.add_argument("--instance", default="", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve:
        asyncio.run(serve_instance(args.serve, args.instance, args.pool_size))
        return 0
    if args.instances and not (args.database_url or "").startswith("postgresql"):
        p.error("--instances needs --database-url postgresql+asyncpg://...")
    args.levels = [int(n) for n in args.levels.split(",")]
    if min(*args.levels, args.requests, args.samples) < 1 or args.warmup < 0 or args.citizens < 100:
        p.error("levels, --requests and --samples must be positive, --citizens at least 100")

    with tempfile.TemporaryDirectory(prefix="intake-bench-") as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{tmp}/intake.db"
        kind = make_url(url).get_backend_name() + ("" if args.database_url else " (fresh temp file)")
        if args.instances:
            kind += f", {args.instances} bot processes on one fresh database"
        facts = {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),  # other work on the box skews figures
            "platform": platform.platform(),
            "aiohttp": aiohttp.__version__,
            "database": kind,
            "client": "same process" if args.same_process else "separate process (multiprocessing spawn)",
        }
        for key, value in facts.items():
            print(f"{key:<9} {value}")
        print(f"note      web chat messages_per_minute raised from 20 to {RATE_LIMIT} for the bench")
        plan, result, counts = asyncio.run(bench(args, url))
    print(f"workload  {plan.citizens} citizens round-robin; {len(plan.faq)} FAQ questions (answered)")
    print(f"          alternating with {len(COMPLAINTS)} complaint texts (forwarded); warm-up {args.warmup}")

    rows = [row.summary() for row in result.rows]
    print("\n" + " ".join(f"{header:>8}" for header in COLUMNS))
    for row in rows:
        cells = [row.get(key, "-") for key in COLUMNS.values()]
        print(" ".join(f"{c:>8.1f}" if isinstance(c, float) else f"{c:>8}" for c in cells))
    print(
        "\nlatency  POST /chat/api/messages until its 200 (bot: parse, intake transaction, commit)"
        "\nvis      sampled bot messages, POST start until a long-poll GET shows the reply: intake"
        "\n         commit + dispatcher claim/send/commit + long-poll wake + conversation read"
        f"\n         late: sampled replies slower than {SAMPLE_TIMEOUT:.0f} s, left out of vis p50/p99"
        "\n         percentiles by nearest rank over the sorted values; req/s = requests / level wall time"
    )

    expected = {"messages_in": result.accepted, "pending": 0, "sending": 0, "failed": 0}
    expected |= {"messages_out": counts["sent"], "in_without_ticket": 0}  # each reply queued and sent
    expected |= {"tickets": counts["tickets_of_messages"]}  # no ticket without a citizen message
    problems = [
        f"{key}: {counts[key]}, expected {want}" for key, want in expected.items() if counts[key] != want
    ]
    errors = sum(r.errors for r in result.rows) + result.warmup_errors
    if errors:
        problems.append(f"{errors} requests answered other than 200 (warm-ups included)")
    if result.unreplied:
        problems.append(
            f"{result.unreplied} citizens' conversations lack a message or a reply {FINAL_TIMEOUT:.0f} s"
            " after the last request"
        )
    print(f"\nstore check ({result.accepted} accepted bot messages, warm-ups included):")
    print("  " + ", ".join(f"{key} {value}" for key, value in counts.items()))
    if not result.unreplied:
        print("  conversations: every citizen's messages shown, each followed by a reply")
    print("OK: every accepted message stored once and replied to" if not problems else "FAILED:")
    for problem in problems:
        print(f"  {problem}")
    if args.json:
        report = {"machine": facts, "plan": asdict(plan), "rows": rows, "store": counts, "problems": problems}
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
