"""What a Prometheus scrape of `GET /metrics` costs with a city's backlog in the store.

    .venv/bin/python bench/metrics.py [--tickets 10000] [--scrapes 300] [--database-url URL] [--json FILE]

The store (a fresh SQLite file, or with --database-url an empty PostgreSQL database) is filled in bulk
with `--tickets` tickets over six departments: a third open (some past due), the rest closed, two
outbox rows each (most sent, some pending). The real bot's HTTP app then serves on 127.0.0.1, and
the script scrapes it `--scrapes` times, one after another, three ways:

- `cached`: as configured (`server.metrics_cache_seconds`, 5 s): most scrapes reuse the store's gauges;
- `uncached`: the cache at 0, so every scrape runs the store's two queries;
- `reference`: a bare aiohttp handler in the same process answering a fixed text of the same size,
  what serving alone costs on this machine now.

Mean, p50 and p99 in milliseconds, and each mean as a multiple of the reference's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import insert

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import bot as bot_module  # noqa: E402
from server.config import load_config  # noqa: E402
from store import Contact, Database, Outbox, StoreConfig, Ticket, open_database  # noqa: E402

DEPARTMENTS = ("transport", "environment", "welfare", "housing", "safety", "triage")
NOW = datetime.now(UTC)


async def fill(db: Database, tickets: int) -> None:
    async with db.transaction() as session:
        await session.exec(
            insert(Contact),
            params=[
                {"channel": "sms", "address": f"+8210{n:08d}", "created_at": NOW, "language": "ko"}
                for n in range(tickets)
            ],
        )
        statuses = ("forwarded", "in_progress", "review", "closed", "closed", "closed")
        await session.exec(
            insert(Ticket),
            params=[
                {
                    "reference": f"2026-{n + 1:06d}",
                    "contact_id": n + 1,
                    "channel": "sms",
                    "language": "ko",
                    "department": DEPARTMENTS[n % len(DEPARTMENTS)],
                    "status": statuses[n % len(statuses)],
                    "created_at": NOW - timedelta(hours=n % 200),
                    "updated_at": NOW,
                    "due_at": NOW + timedelta(hours=(n % 48) - 12),
                }
                for n in range(tickets)
            ],
        )
        await session.exec(
            insert(Outbox),
            params=[
                {
                    "idempotency_key": f"bench-{n}",
                    "ticket_id": n // 2 + 1,
                    "channel": "sms" if n % 3 else "slack",
                    "recipient": "x",
                    "payload": {},
                    "status": "pending" if n % 97 == 0 else "sent",
                    "created_at": NOW - timedelta(seconds=n % 600),
                    "next_attempt_at": NOW,
                }
                for n in range(tickets * 2)
            ],
        )


async def timed(url: str, scrapes: int, headers: dict[str, str]) -> dict[str, float]:
    times = []
    async with aiohttp.ClientSession() as http:
        for _ in range(20):  # warm-up
            async with http.get(url, headers=headers) as response:
                await response.read()
        for _ in range(scrapes):
            started = time.perf_counter()
            async with http.get(url, headers=headers) as response:
                await response.read()
                assert response.status == 200, response.status
            times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {
        "mean_ms": round(statistics.fmean(times), 3),
        "p50_ms": round(times[len(times) // 2], 3),
        "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))], 3),
    }


async def serve(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, port


async def measure(args: argparse.Namespace, url: str) -> dict[str, Any]:
    db = open_database(StoreConfig(url=url))
    await db.upgrade()
    started = time.perf_counter()
    await fill(db, args.tickets)
    filled = time.perf_counter() - started
    results: dict[str, Any] = {"tickets": args.tickets, "fill_seconds": round(filled, 1)}
    config = load_config(ROOT / "config.yaml")
    for name, cache in (("cached", 5.0), ("uncached", 0.0)):
        server = config.server.model_copy(update={"metrics_cache_seconds": cache})
        bot = await bot_module.build(
            config.model_copy(update={"server": server, "store": StoreConfig(url=url)}),
            base_dir=ROOT,
            webchat=False,
            providers=False,
            db=db,
        )
        runner, port = await serve(bot_module.make_app(bot))
        results[name] = await timed(f"http://127.0.0.1:{port}/metrics", args.scrapes, {})
        if name == "cached":
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"http://127.0.0.1:{port}/metrics") as response,
            ):
                body = await response.read()
        await runner.cleanup()

    async def fixed(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="text/plain")

    bare = web.Application()
    bare.router.add_get("/metrics", fixed)
    runner, port = await serve(bare)
    results["reference"] = await timed(f"http://127.0.0.1:{port}/metrics", args.scrapes, {})
    await runner.cleanup()
    reference = results["reference"]["mean_ms"]
    for name in ("cached", "uncached"):
        results[name]["times_reference"] = round(results[name]["mean_ms"] / reference, 2)
    results["body_bytes"] = len(body)
    await db.close()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=10_000)
    parser.add_argument("--scrapes", type=int, default=300)
    parser.add_argument("--database-url")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite+aiosqlite:///{folder}/metrics.db"
        results = asyncio.run(measure(args, url))
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0 if results["cached"]["mean_ms"] < 5 else 1


if __name__ == "__main__":
    sys.exit(main())
