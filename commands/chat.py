"""`bot.py chat`: talk to the bot as a citizen, in the terminal."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from bot import Bot, build
from channels.terminal import TerminalChannel
from server.config import BotConfig
from store import OutboxStatus, data


async def run(config: BotConfig, base_dir: Path, user: str | None) -> int:
    terminal = TerminalChannel(user=user)
    bot = await build(config, base_dir=base_dir, channels=[terminal], webchat=False, providers=False)
    async with bot.running():
        print(f"Talking to the city as {terminal.address}. Type a question; Ctrl-D to leave.")
        await terminal.read_lines()
        await _until_delivered(bot, terminal.name, terminal.address, timeout=10)
    return 0


async def _until_delivered(bot: Bot, channel: str, recipient: str, *, timeout: float) -> None:
    """Wait until nothing is queued for this recipient any more (the replies to the last lines)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        async with bot.db.session() as session:
            waiting = sum(
                [
                    await data.count_outbox(session, status=status, channel=channel, recipient=recipient)
                    for status in (OutboxStatus.PENDING, OutboxStatus.SENDING)
                ]
            )
        if not waiting:
            return
        bot.dispatcher.wake()
        await asyncio.sleep(0.05)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    chat = sub.add_parser("chat", help="talk to the bot as a citizen in the terminal")
    chat.add_argument("--as", dest="user", help="the citizen's name (default: your login)")
