"""Which product files and functions one SMS reply crosses, from the signed webhook to the send at
the Twilio stand-in: a newcomer's map of the path, and a figure for how far it wanders.

    .venv/bin/python bench/reply_path.py [--list]

The real bot (shipped config.yaml, SMS on, a fresh SQLite file) answers one warm-up text, then a
complaint is traced with `sys.setprofile` from the webhook until the stand-in has the reply. Counted:
product modules only (not tests/, bench/ or the virtualenv). Background loops that happen to run
meanwhile (the FAQ learning loop) are counted too; `--list` shows each file's functions.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from bench/: the project's packages live one level up

from aiohttp import web  # noqa: E402

import bot as bot_module  # noqa: E402
from server.config import load_config  # noqa: E402
from tests.fakes.twilio import FakeTwilio, inbound_params, new_sid  # noqa: E402

SERVICE_NUMBER = "+15005550006"
PUBLIC_URL = "http://127.0.0.1:1"  # what the webhook is signed over; requests go to the real port
OUTSIDE = (f"{os.sep}tests{os.sep}", f"{os.sep}bench{os.sep}", f"{os.sep}.venv")


class Trace:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        if event != "call":
            return
        path = frame.f_code.co_filename
        if path.startswith(str(ROOT)) and not any(part in path for part in OUTSIDE):
            self.calls.append((os.path.relpath(path, ROOT), frame.f_code.co_qualname))


async def trace_one_reply() -> Trace:
    with tempfile.TemporaryDirectory(prefix="reply-path-") as tmp:
        async with FakeTwilio() as fake:
            config = load_config(ROOT / "config.yaml")
            sms = config.channels.sms.model_copy(
                update={
                    "enabled": True,
                    "account_sid": fake.account_sid,
                    "auth_token": fake.auth_token,
                    "from_number": SERVICE_NUMBER,
                    "api_base_url": fake.base_url,
                    "status_callbacks": False,
                }
            )
            config = config.model_copy(
                update={
                    "store": config.store.model_copy(update={"url": f"sqlite+aiosqlite:///{tmp}/bot.db"}),
                    "knowledge": config.knowledge.model_copy(update={"reload_seconds": 0}),
                    "channels": config.channels.model_copy(update={"sms": sms}),
                    "server": config.server.model_copy(update={"public_url": PUBLIC_URL}),
                }
            )
            bot = await bot_module.build(config, base_dir=ROOT)
            async with bot.running(sweeps=False):
                runner = web.AppRunner(bot_module.make_app(bot))
                await runner.setup()
                await web.TCPSite(runner, "127.0.0.1", 0).start()
                port = runner.addresses[0][1]

                async def text(n: int, body: str) -> None:
                    params = inbound_params(
                        fake.account_sid,
                        sid=new_sid("SM"),
                        from_=f"+82105550{n:04d}",
                        to=SERVICE_NUMBER,
                        body=body,
                    )
                    await fake.webhook(
                        f"{PUBLIC_URL}/webhooks/sms", params, connect_to=f"http://127.0.0.1:{port}"
                    )
                    await fake.wait_for(lambda: len(fake.sent) >= n, timeout=30)

                await text(1, "소파 버리는 방법")  # loads the Korean analyser and the SDK's first send
                trace = Trace()
                sys.setprofile(trace)
                try:
                    await text(2, "가로등이 고장났어요 어두워요")
                finally:
                    sys.setprofile(None)
                await runner.cleanup()
    return trace


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--list", action="store_true", help="each file's functions too")
    args = parser.parse_args()
    trace = asyncio.run(trace_one_reply())
    files = list(dict.fromkeys(path for path, _ in trace.calls))
    functions = set(trace.calls)
    print(f"{len(files)} product files, {len(functions)} distinct functions, {len(trace.calls)} calls")
    for path in files:
        names = sorted(name for where, name in functions if where == path)
        print(f"  {path}" + (f": {', '.join(names)}" if args.list else f" ({len(names)})"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
