"""The command line: `python bot.py COMMAND ...`, one module per command family.

    python bot.py [serve]                 the web server: web chat, webhooks, /healthz
    python bot.py chat                    talk to the bot as a citizen, in the terminal
    python bot.py tickets list|show|reply|resolve ...
    python bot.py faq check [DIR] | faq ask "TEXT"
    python bot.py faq import FILE.csv --out DIR | faq learn | faq add-variant ID "TEXT" | faq gaps
    python bot.py routing import FILE.csv ... | routing eval [--csv FILE ...] | routing ask "TEXT"
    python bot.py db upgrade | db purge
    python bot.py report monthly [--month YYYY-MM] [--out DIR]

`--config PATH` (or INTAKE_CONFIG) picks the config file; config.yaml beside bot.py by default.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

import bot
from commands import chat, db, faq, faq_gaps, faq_import, faq_learn, report, routing, tickets
from knowledge import KnowledgeError
from router import logs
from server.config import ConfigError, config_path, load_config


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bot.py", description="The city's intake bot.")
    p.add_argument("--config", help="config file (default: $INTAKE_CONFIG or config.yaml beside bot.py)")
    p.add_argument("--log-level", default=os.environ.get("INTAKE_LOG_LEVEL", "INFO"))
    p.add_argument(
        "--log-format",
        choices=("text", "json"),
        default=os.environ.get("INTAKE_LOG_FORMAT", "text"),
        help="text lines for people, or one JSON object a line for machines (INTAKE_LOG_FORMAT)",
    )
    sub = p.add_subparsers(dest="command")
    sub.add_parser("serve", help="serve the web chat, webhooks and /healthz (the default)")
    chat.add_parser(sub)
    tickets.add_parser(sub)
    faq.add_parser(sub)
    routing.add_parser(sub)
    db.add_parser(sub)
    report.add_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logs.configure(args.log_level, args.log_format)
    # python-telegram-bot logs a traceback for every failed call; the adapter reports each failure
    # in one line and the dispatcher retries, so an outage does not flood the log.
    logging.getLogger("telegram.request").setLevel(logging.CRITICAL)
    path = config_path(args.config)
    try:
        config = load_config(path)
        base_dir = path.parent
        command = args.command or "serve"
        if command == "serve":
            return asyncio.run(bot.serve(config, base_dir))
        if command == "chat":
            return asyncio.run(chat.run(config, base_dir, args.user))
        if command == "tickets":
            return asyncio.run(tickets.run(config, base_dir, args))
        if command == "faq" and args.action in faq_import.ACTIONS:
            return faq_import.run(config, base_dir, args)
        if command == "faq" and args.action in faq_learn.ACTIONS:
            return faq_learn.run(config, base_dir, args)
        if command == "faq" and args.action in faq_gaps.ACTIONS:
            return faq_gaps.run(config, base_dir, args)
        if command == "faq":
            return faq.run(config, base_dir, args)
        if command == "report":
            return report.run(config, base_dir, args)
        if command == "routing":
            return routing.run(config, base_dir, args)
        return asyncio.run(db.run(config, base_dir, args.action))
    except ConfigError as exc:
        print(f"configuration error:\n{exc}", file=sys.stderr)
        return 2
    except KnowledgeError as exc:
        print(f"the FAQ knowledge base cannot be loaded:\n{exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
