"""The composition root and the command line: read config, build the parts, serve.

    python bot.py [serve]                 the web server: web chat, webhooks, /healthz
    python bot.py chat                    talk to the bot as a citizen, in the terminal
    python bot.py tickets list|show|reply|resolve ...
    python bot.py faq check [DIR] | faq ask "TEXT"
    python bot.py faq import FILE.csv --out DIR | faq learn | faq add-variant ID "TEXT" | faq gaps
    python bot.py routing import FILE.csv ... | routing eval [--csv FILE ...] | routing ask "TEXT"
    python bot.py db upgrade

`--config PATH` (or INTAKE_CONFIG) picks the config file; config.yaml beside this file by default.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import json
import logging
import os
import re
import secrets
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import text

import faq_commands
import progress
import routing_commands
from channels import Channel, ChannelsConfig
from channels.slack import SlackChannel
from channels.sms import SmsChannel
from channels.telegram import TelegramChannel
from channels.terminal import TerminalChannel
from channels.webchat import WebchatChannel
from channels.x import XChannel
from knowledge import (
    KnowledgeBase,
    KnowledgeConfig,
    KnowledgeError,
    KnowledgeHolder,
    Matcher,
    detect_language,
    load_knowledge,
)
from knowledge.calibration import CALIBRATION_FILE, Confidence, knowledge_fingerprint
from knowledge.calibration import save as save_calibration
from knowledge.decision import Outcome, SensitiveRule, decide
from knowledge.evaluate import calibrate_queries, evaluate_by_language, read_queries
from knowledge.learning import describe_counts
from knowledge.reloader import newest
from router import DepartmentConfig, Desk, Dispatcher, Notices, Router, RouterConfig, Staff, logs
from router.calendar import WorkingCalendar
from router.deskfeed import DeskFeed
from router.host import RouterHost
from router.learning import FaqLearning
from router.media import MediaFetcher
from router.medialinks import MediaLinks
from router.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from router.metrics import Metrics
from router.sweep import Sweeper
from store import Database, Outbox, OutboxStatus, StoreConfig, data, open_database, utcnow

HERE = Path(__file__).resolve().parent
log = logging.getLogger("bot")


# --- configuration ----------------------------------------------------------------------------


class ServerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "0.0.0.0"
    port: int = Field(default=8080, ge=0, le=65535)
    public_url: str = "http://localhost:8080"
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Signs the links to citizens' photos that the staff desk shows (/media/ID); unset, a random one
    # is made at start-up, and links die with the process.
    media_secret: str = ""
    media_link_hours: float = Field(default=72.0, gt=0)
    # GET /metrics asks for `Authorization: Bearer <this>` when set (a ${VAR}); unset, it is open, for a
    # scraper on the same private network.
    metrics_token: str = ""
    # How old the store's gauges (outbox, open and overdue tickets) may be when scraped.
    metrics_cache_seconds: float = Field(default=5.0, ge=0)
    # Names this instance among those on one database: a restarted instance takes back at once the
    # messages it was sending when it stopped. Unset: this host's name and the port (set it where
    # the host name changes at each start, as in a container).
    instance: str = ""

    def instance_name(self) -> str:
        return self.instance or f"{socket.gethostname()}:{self.port}"


class BotConfig(BaseModel):
    """The whole config.yaml: each package owns its section's model."""

    model_config = ConfigDict(extra="forbid")

    server: ServerConfig = Field(default_factory=ServerConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    knowledge: KnowledgeConfig = Field(default_factory=KnowledgeConfig)
    channels: ChannelsConfig = Field(default_factory=ChannelsConfig)
    router: RouterConfig = Field(default_factory=RouterConfig)
    departments: dict[str, DepartmentConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _triage_exists(self) -> BotConfig:
        if self.router.triage_department not in self.departments:
            raise ValueError(
                f"router.triage_department {self.router.triage_department!r} is not one of the departments "
                f"({', '.join(self.departments)})"
            )
        restricted = self.router.sensitive.department
        if restricted is not None and restricted not in self.departments:
            raise ValueError(
                f"router.sensitive.department {restricted!r} is not one of the departments "
                f"({', '.join(self.departments)}): sensitive reports need a restricted inbox"
            )
        return self


class ConfigError(Exception):
    """A config that cannot run; the message names the file, the key path and the reason."""


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _substitute(value: Any, path: tuple[str, ...], missing: list[tuple[tuple[str, ...], str]]) -> Any:
    """Replace ${VAR} and ${VAR:-default} in every string, noting variables that are not set."""
    if isinstance(value, dict):
        return {k: _substitute(v, (*path, str(k)), missing) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, (*path, str(i)), missing) for i, v in enumerate(value)]
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            missing.append((path, name))
            return ""

        return _ENV.sub(replace, value)
    return value


def load_config(path: Path) -> BotConfig:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the config must be a mapping of sections")
    missing: list[tuple[tuple[str, ...], str]] = []
    try:
        config = BotConfig.model_validate(_substitute(raw, (), missing))
    except ValidationError as exc:
        lines = [
            f"{path}: {'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}" for e in exc.errors()
        ]
        # An unset variable is the likely cause of an error in its section: name it too.
        failing = {tuple(str(p) for p in e["loc"]) for e in exc.errors()}
        lines += [
            f"{path}: {'.'.join(key_path)}: environment variable {variable} is not set"
            for key_path, variable in missing
            if any(key_path[: len(loc)] == loc for loc in failing)
        ]
        raise ConfigError("\n".join(lines)) from None
    problems = []
    for key_path, variable in missing:
        # A secret of a disabled channel may stay unset; anything else in use may not.
        if key_path[:1] == ("channels",) and len(key_path) > 1:
            section = getattr(config.channels, key_path[1], None)
            if section is not None and not getattr(section, "enabled", True):
                continue
        problems.append(f"{path}: {'.'.join(key_path)}: environment variable {variable} is not set")
    if problems:
        raise ConfigError("\n".join(problems))
    return config


def config_path(argument: str | None) -> Path:
    return Path(argument or os.environ.get("INTAKE_CONFIG") or HERE / "config.yaml").resolve()


# --- composition --------------------------------------------------------------------------------


@dataclass
class Bot:
    config: BotConfig
    db: Database
    knowledge: KnowledgeHolder
    router: Router
    desk: Desk
    dispatcher: Dispatcher
    media: MediaFetcher
    sweeper: Sweeper
    host: RouterHost
    channels: dict[str, Channel]
    media_links: MediaLinks
    metrics: Metrics
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def report_knowledge_error(self, error: KnowledgeError) -> None:
        """A broken FAQ edit: the knowledge logger printed each problem; administrators hear of it in
        the desk's alerts inbox too."""
        log.error(
            "the FAQ edit was not taken (%d problem(s)); still answering from the last good version",
            len(error.problems),
        )
        feed = self.router.desk_feed
        if feed is None:
            return
        text = "The FAQ edit was not taken; still answering from the last good version:\n" + str(error)
        async with self.db.transaction() as session:
            await feed.alert(session, text[:2900], now=self.router.clock())
        self.router.outbox_written()

    @contextlib.asynccontextmanager
    async def running(self, *, sweeps: bool = True) -> AsyncIterator[Bot]:
        """Channels accept messages, the dispatcher delivers and the FAQ is watched, until exit.
        `sweeps=False` leaves the lifecycle sweep to the caller (tests on a fake clock)."""
        for channel in self.channels.values():
            await channel.start(self.host)
        self._tasks.append(asyncio.create_task(self.dispatcher.run(), name="dispatcher"))
        self._tasks.append(asyncio.create_task(self.media.run(), name="media"))
        if self.config.router.routing.enabled:  # learns in a worker thread; no model until it has one
            self._tasks.append(asyncio.create_task(self.router.learner.run(), name="routing"))
        if self.router.learning is not None:
            self._tasks.append(asyncio.create_task(self.router.learning.run(), name="faq-learning"))
        if sweeps:
            self.sweeper.start()
        if self.config.knowledge.reload_seconds > 0:
            watch = self.knowledge.watch(
                self.config.knowledge.reload_seconds, on_error=self.report_knowledge_error
            )
            self._tasks.append(asyncio.create_task(watch, name="knowledge-watch"))
        try:
            yield self
        finally:
            await self.sweeper.stop()
            for channel in self.channels.values():
                await channel.stop()
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._tasks.clear()
            await self.db.close()


def resolve(base: Path, path: Path) -> Path:
    return path if path.is_absolute() else base / path


async def build(
    config: BotConfig,
    *,
    base_dir: Path,
    channels: Sequence[Channel] = (),
    webchat: bool = True,
    providers: bool = True,
    migrate: bool | None = None,
    db: Database | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> Bot:
    """Build every part from config. Relative paths are taken from `base_dir` (the config's folder);
    `channels` are added to the enabled ones (`webchat` and `providers` False leave those out);
    `db` and `clock` let tests bring their own database and time."""
    db = db or open_database(config.store, base_dir=base_dir)
    if config.store.migrate_on_start if migrate is None else migrate:
        await db.upgrade()
    knowledge = KnowledgeHolder(
        resolve(base_dir, config.knowledge.path),
        known_departments=set(config.departments),
        default_confidence=config.knowledge.default_confidence(),
    )
    await asyncio.to_thread(knowledge.load)
    notices = Notices.load(resolve(base_dir, config.router.notices), config.router.zone)
    router = Router(
        db=db,
        knowledge=knowledge,
        config=config.router,
        departments=config.departments,
        notices=notices,
        calendar=WorkingCalendar(config.router.calendar, config.router.zone),
        clock=clock,
    )
    if config.knowledge.learning.enabled:
        router.learning = FaqLearning(
            db,
            knowledge,
            config.knowledge.learning,
            sensitive=router.sensitive_rule,
            default_language=config.router.default_language,
            zone=config.router.zone,
            settle_hours=config.router.lifecycle.reopen_window_hours,
            clock=clock,
        )
    adapters: dict[str, Channel] = {}
    if webchat and config.channels.webchat.enabled:
        adapters["webchat"] = WebchatChannel(config.channels.webchat, router.conversation)
    for channel in provider_channels(config) if providers else []:
        adapters[channel.name] = channel
    for channel in channels:
        adapters[channel.name] = channel
    secret = config.server.media_secret or secrets.token_hex(32)
    media_links = MediaLinks(
        public_url=config.server.public_url, secret=secret, valid_hours=config.server.media_link_hours
    )
    # The staff desk: cards, threads and alerts go to it. Also from a process that does not run the
    # Slack adapter itself (`bot.py tickets ...`): the server's dispatcher delivers those rows.
    if "slack" in adapters or config.channels.slack.enabled:
        router.desk_feed = DeskFeed(
            channel="slack",
            config=config.router.desk,
            departments=config.departments,
            notices=notices,
            default_language=config.router.default_language,
            media_links=media_links,
        )

    async def failed_for_good(row: Outbox, error: str) -> None:
        await router.after_delivery(row, delivered=False, error=error)

    async def sent(row: Outbox) -> None:
        await router.after_delivery(row, delivered=True)

    dispatcher = Dispatcher(
        db=db,
        channels=adapters,
        config=config.router.dispatcher,
        clock=clock,
        on_final_failure=failed_for_good,
        on_sent=sent,
        prepare=router.prepare_outgoing,
        instance=config.server.instance_name(),
    )
    router.on_outbox(dispatcher.wake)
    media = MediaFetcher(db=db, channels=adapters, config=config.router.media, clock=clock)
    router.on_media(media.wake)
    desk = Desk(router)
    host = RouterHost(router, desk, clock=clock)
    metrics = Metrics(
        db, channels=sorted(adapters), cache_seconds=config.server.metrics_cache_seconds, clock=clock
    )
    router.on_intake(metrics.intake)
    dispatcher.observers.append(metrics.send)
    knowledge.observers.append(metrics.faq_reload)
    return Bot(
        config,
        db,
        knowledge,
        router,
        desk,
        dispatcher,
        media,
        Sweeper(router),
        host,
        adapters,
        media_links,
        metrics,
    )


def provider_channels(config: BotConfig) -> list[Channel]:
    """The provider channels enabled in config (SMS, Telegram, X, and Slack for the staff)."""
    public_url = config.server.public_url
    section = config.channels
    enabled: list[Channel] = []
    if section.sms.enabled:
        enabled.append(SmsChannel(section.sms, public_url=public_url))
    if section.telegram.enabled:
        enabled.append(TelegramChannel(section.telegram, public_url=public_url))
    if section.x.enabled:
        enabled.append(XChannel(section.x, public_url=public_url))
    if section.slack.enabled:
        enabled.append(SlackChannel(section.slack, public_url=public_url))
    return enabled


def make_app(bot: Bot) -> web.Application:
    app = web.Application(client_max_size=bot.config.server.max_body_bytes)

    async def healthz(request: web.Request) -> web.Response:
        checks: dict[str, Any] = {}
        status = 200
        try:
            async with bot.db.session() as session:
                await (await session.connection()).execute(text("SELECT 1"))
                checks["outbox_pending"] = await data.count_outbox(session, status=OutboxStatus.PENDING)
                checks["outbox_failed"] = await data.count_outbox(session, status=OutboxStatus.FAILED)
            checks["store"] = "ok"
        except Exception as exc:
            checks["store"] = f"error: {type(exc).__name__}"
            status = 503
        base, _ = bot.knowledge.current
        checks["faq_entries"] = len(base)
        checks["channels"] = sorted(bot.channels)
        return web.json_response(
            {"status": "ok" if status == 200 else "unavailable", **checks}, status=status
        )

    async def readyz(request: web.Request) -> web.Response:
        """Ready for traffic: the database answers, its migrations are at this code's head, a FAQ is
        loaded. 503 with what is not, for a load balancer to hold traffic back."""
        problems: dict[str, str] = {}
        try:
            current = await asyncio.wait_for(bot.db.current_revision(), timeout=5)
            head = bot.db.head_revision()
            if current != head:
                problems["migrations"] = (
                    f"at {current or 'none'}, this code needs {head}: run `bot.py db upgrade`"
                )
        except Exception as exc:  # unreachable, refused, timed out: the name says enough
            problems["database"] = f"not answering ({type(exc).__name__})"
        try:
            base, _ = bot.knowledge.current
            faq = f"{len(base)} entries"
        except RuntimeError:
            problems["faq"] = "not loaded"
            faq = "not loaded"
        if problems:
            return web.json_response({"status": "not ready", "problems": problems}, status=503)
        return web.json_response({"status": "ready", "faq": faq})

    async def metrics(request: web.Request) -> web.Response:
        token = bot.config.server.metrics_token
        if token and not hmac.compare_digest(request.headers.get("Authorization", ""), f"Bearer {token}"):
            return web.json_response({"error": "forbidden"}, status=403)
        body = await bot.metrics.render()
        return web.Response(body=body, headers={"Content-Type": METRICS_CONTENT_TYPE})

    async def home(request: web.Request) -> web.Response:
        raise web.HTTPFound("/chat")

    async def media(request: web.Request) -> web.Response:
        """A citizen's photo, for a signed link that has not expired (the staff desk shows them)."""
        raw_id = request.match_info["media_id"]
        query = request.query
        if not raw_id.isdigit() or not bot.media_links.valid(
            int(raw_id), query.get("expires", ""), query.get("sig", "")
        ):
            return web.json_response({"error": "forbidden"}, status=403)
        async with bot.db.session() as session:
            found = await data.get_media(session, media_id=int(raw_id))
        if found is None or found.data is None:
            return web.json_response({"error": "no such photo (yet)"}, status=404)
        return web.Response(
            body=found.data,
            content_type=found.content_type or "application/octet-stream",
            headers={"Cache-Control": "private, max-age=3600"},
        )

    async def stop_channels(app: web.Application) -> None:
        for channel in bot.channels.values():
            await channel.stop()

    app.on_shutdown.append(stop_channels)  # before aiohttp waits for open requests (long-polls)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/media/{media_id}", media)
    if "webchat" in bot.channels:
        app.router.add_get("/", home)
    for channel in bot.channels.values():
        app.add_routes(channel.routes())
    return app


# --- commands -------------------------------------------------------------------------------------


async def cmd_serve(config: BotConfig, base_dir: Path) -> int:
    bot = await build(config, base_dir=base_dir)
    async with bot.running():
        runner = web.AppRunner(make_app(bot), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, config.server.host, config.server.port)
        await site.start()
        local = "localhost" if config.server.host in ("0.0.0.0", "::", "") else config.server.host
        log.info(
            "serving on %s:%s: open http://%s:%s/chat (providers call %s)",
            config.server.host,
            config.server.port,
            local,
            config.server.port,
            config.server.public_url,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        log.info("stopping")
        await runner.cleanup()
    return 0


async def cmd_chat(config: BotConfig, base_dir: Path, user: str | None) -> int:
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


async def cmd_tickets(config: BotConfig, base_dir: Path, args: argparse.Namespace) -> int:
    bot = await build(config, base_dir=base_dir, webchat=False, providers=False)
    zone = config.router.zone
    staff = Staff(id=f"cli:{args.staff}", name=args.staff)
    try:
        if args.action == "list":
            statuses = args.status.split(",") if args.status else None
            tickets = await bot.desk.list_tickets(
                statuses=statuses, department=args.department, limit=args.limit
            )
            print(f"{'REFERENCE':<12} {'STATUS':<12} {'DEPARTMENT':<12} {'DUE':<17} CREATED")
            for t in tickets:
                due = t.due_at.astimezone(zone).strftime("%Y-%m-%d %H:%M") if t.due_at else "-"
                created = t.created_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
                print(f"{t.reference:<12} {t.status:<12} {t.department or '-':<12} {due:<17} {created}")
            if not tickets:
                print("(no tickets)")
        elif args.action == "show":
            view = await bot.desk.show(args.reference)
            t = view.ticket
            print(
                f"Ticket {t.reference}  status {t.status}  department {t.department}  language {t.language}"
            )
            print(f"  from {view.contact.channel}:{view.contact.address}")
            if t.purged_at:
                print(
                    f"  texts and address purged {t.purged_at.astimezone(zone):%Y-%m-%d} (router.retention)"
                )
            print(
                f"  created {t.created_at.astimezone(zone):%Y-%m-%d %H:%M}"
                + (f"  due {t.due_at.astimezone(zone):%Y-%m-%d %H:%M}" if t.due_at else "")
            )
            print("Messages:")
            for m in view.messages:
                who = "citizen" if m.direction == "in" else (m.author_name or m.author)
                print(f"  {m.created_at.astimezone(zone):%m-%d %H:%M} {who}: {m.text}")
                for attachment in m.attachments:
                    print(
                        f"      attachment: {attachment.get('content_type') or 'file'}, "
                        f"`tickets media {attachment.get('media_id')}` saves it"
                    )
            print("Events:")
            for e in view.events:
                change = f" {e.from_status or ''}->{e.to_status}" if e.to_status else ""
                # Why it went where it did: a keyword, an FAQ entry, the department model, triage.
                reason = e.detail.get("reason") if e.to_status == "forwarded" else None
                who = (e.actor_name or e.actor) + (f" ({reason})" if reason else "")
                print(f"  {e.at.astimezone(zone):%m-%d %H:%M} {e.kind}{change} by {who}")
        elif args.action == "reply":
            ticket = await bot.desk.reply(args.reference, " ".join(args.text), staff=staff)
            print(f"Reply queued for {ticket.reference} ({ticket.channel}); status {ticket.status}.")
        elif args.action == "resolve":
            ticket = await bot.desk.resolve(args.reference, " ".join(args.text), staff=staff)
            print(f"Ticket {ticket.reference} resolved; the citizen is told on {ticket.channel}.")
        elif args.action == "claim":
            ticket = await bot.desk.claim(args.reference, staff=staff)
            print(f"Ticket {ticket.reference} is yours ({staff.name}); status {ticket.status}.")
        elif args.action == "reassign":
            ticket = await bot.desk.reassign(
                args.reference, args.department, reason=" ".join(args.reason), staff=staff
            )
            due = ticket.due_at.astimezone(zone).strftime("%Y-%m-%d %H:%M") if ticket.due_at else "-"
            print(f"Ticket {ticket.reference} now with {ticket.department}, due {due}; the citizen is told.")
        elif args.action == "reopen":
            ticket = await bot.desk.reopen(args.reference, reason=" ".join(args.reason), staff=staff)
            print(f"Ticket {ticket.reference} reopened with {ticket.department}; the citizen is told.")
        elif args.action == "review":
            await _review(bot, args, staff)
        elif args.action == "media":
            await _save_media(bot, args.media_id, Path(args.out) if args.out else None)
        # Deliver what this command queued when its channel lives here; otherwise the server does.
        await bot.dispatcher.run_once()
    except (LookupError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        await bot.db.close()
    return 0


async def _save_media(bot: Bot, media_id: int, out: Path | None) -> None:
    """A citizen's photo, as kept in the store, to a file (or stdout)."""
    async with bot.db.session() as session:
        media = await data.get_media(session, media_id=media_id)
    if media is None:
        raise LookupError(f"no attachment {media_id}")
    if media.data is None:
        raise LookupError(f"attachment {media_id} is {media.status}: {media.error or 'not fetched yet'}")
    if out is None:
        sys.stdout.buffer.write(media.data)
        sys.stdout.flush()
    else:
        await asyncio.to_thread(out.write_bytes, media.data)
        print(f"attachment {media_id} ({media.content_type}, {media.size} bytes) saved to {out}")


async def _review(bot: Bot, args: argparse.Namespace, staff: Staff) -> None:
    zone = bot.config.router.zone
    if args.review_action == "list":
        items = await bot.desk.review_queue()
        for item in items:
            due = item.ticket.due_at.astimezone(zone).strftime("%m-%d %H:%M") if item.ticket.due_at else "-"
            print(f"{item.ticket.reference}  due {due}  [{item.ticket.language}] {item.question}")
            for number, (entry, score) in enumerate(item.suggestions, start=1):
                answer = entry.answer_in(item.ticket.language)
                preview = (answer[1] if answer else "").replace("\n", " ")
                print(f"   {number}. {entry.id} ({score:.2f}): {preview[:90]}")
        if not items:
            print("(nothing waits for review)")
        return
    if args.review_action == "send":
        ticket = await bot.desk.send_review(args.reference, staff=staff, entry_id=args.entry)
    else:
        ticket = await bot.desk.send_review(args.reference, staff=staff, text=" ".join(args.text))
    print(f"Ticket {ticket.reference} answered ({ticket.faq_entry or 'edited answer'}); the citizen is told.")


def cmd_faq(config: BotConfig, base_dir: Path, args: argparse.Namespace) -> int:
    path = (
        Path(args.dir).resolve() if getattr(args, "dir", None) else resolve(base_dir, config.knowledge.path)
    )
    if args.action == "calibrate" and args.from_store:
        return asyncio.run(_faq_calibrate_from_store(config, base_dir, path, args))
    if args.action == "calibrate":  # an old or broken calibration.json is what it replaces: not read
        return _faq_calibrate(config, path, args)
    holder = KnowledgeHolder(
        path,
        known_departments=set(config.departments),
        default_confidence=config.knowledge.default_confidence(),
    )
    try:
        holder.load()
    except KnowledgeError as exc:
        return _knowledge_problems(path, exc)
    base, matcher = holder.current
    if args.action == "eval":
        return _faq_eval(config, matcher, base, args)
    if args.action == "check":
        print(f"OK: {len(base)} entries in {len(base.files)} files under {path}")
        print(_describe_confidence(matcher.confidence, base))
        if matcher.confidence.report is None and (path / CALIBRATION_FILE).is_file():
            print(
                f"  {CALIBRATION_FILE} was written for an older matcher and is not used: run `faq calibrate`"
            )
        if config.knowledge.learning.enabled:
            print(asyncio.run(_describe_learning(config, base_dir, matcher.confidence, base)))
        return 0
    question = " ".join(args.text)
    language = detect_language(question, default=config.router.default_language)
    matches = matcher.match(question, language, limit=args.limit)
    confidence = matcher.confidence
    decision = decide(
        question,
        matches,
        answer_threshold=confidence.answer_threshold,
        review_threshold=confidence.review_threshold,
        sensitive=sensitive_rule(config),
    )
    top = decision.top
    verdicts = {
        Outcome.ANSWER: f"answer with {top.entry.id}" if top else "",
        Outcome.REVIEW: f"send to today's review, suggesting {top.entry.id}" if top else "",
        Outcome.FORWARD: "forward to a department",
        Outcome.SENSITIVE: "a sensitive report: never answered, sent to the restricted inbox",
    }
    print(
        f"language {language}; answer at {confidence.answer_threshold:.2f}, "
        f"review at {confidence.review_threshold:.2f}: {verdicts[decision.outcome]}"
    )
    for m in matches:
        flag = " (handoff: always)" if m.entry.handoff == "always" else ""
        print(f'  {m.score:.3f}  {m.entry.id:<28} {m.entry.department or "-":<12} "{m.question}"{flag}')
    if not matches:
        print("  (no entry shares any words with this text)")
    return 0


def sensitive_rule(config: BotConfig) -> SensitiveRule:
    """The router's rule for sensitive reports, for the FAQ tools to decide as the router does."""
    return config.router.sensitive.rule()


def _describe_confidence(confidence: Confidence, base: KnowledgeBase) -> str:
    """What `faq check` says about the thresholds: calibrated (when, on what, with what result) or not."""
    thresholds = f"answer at {confidence.answer_threshold:.3f}, review at {confidence.review_threshold:.3f}"
    report = confidence.report
    if report is None:
        return (
            f"not calibrated: the default confidence model with config.yaml's thresholds ({thresholds}); "
            "run `python bot.py faq calibrate --queries FILE`"
        )
    lines = [
        f"calibrated {report.calibrated_at} on {report.queries_file} ({report.queries} texts, "
        f"{report.in_scope} in scope): {thresholds}",
        f"  target precision {report.target_precision:.2f} at an out-of-scope rate of "
        f"{report.out_of_scope_rate:.1%}; on that file (out of fold): precision {report.precision:.3f}, "
        f"coverage {report.coverage:.1%}, out of scope answered {report.out_of_scope_answered:.1%}, "
        f"to review {report.review_share:.1%}",
    ]
    if report.knowledge_fingerprint != knowledge_fingerprint(base):
        lines.append(
            f"  the FAQ changed since ({report.knowledge_entries} entries then, {len(base)} now): "
            "run `faq calibrate` again"
        )
    return "\n".join(lines)


def _knowledge_problems(path: Path, error: KnowledgeError) -> int:
    print(f"{path}: the knowledge base has {len(error.problems)} problem(s):", file=sys.stderr)
    for problem in error.problems:
        print(f"  {problem}", file=sys.stderr)
    return 1


async def _describe_learning(
    config: BotConfig, base_dir: Path, files: Confidence, base: KnowledgeBase
) -> str:
    """What `faq check` says about learning from staff: the labels, and the thresholds refitted from them."""
    db = open_database(config.store, base_dir=base_dir)
    try:
        async with db.session() as session:
            counts = await data.count_faq_labels(session)
            fit = await data.latest_faq_fit(session)
    except Exception as exc:  # a store not created yet, or not reachable: the files are checked anyway
        return (
            f"learning from staff: the store could not be read ({type(exc).__name__}); a new one is set up "
            "by the server's start or `bot.py db upgrade`"
        )
    finally:
        await db.close()
    lines = [f"learning from staff: labels {describe_counts(counts)}"]
    fitted = Confidence.from_json(fit.confidence) if fit is not None and fit.confidence else None
    if fitted is None or fitted.report is None:
        lines.append(
            f"  thresholds not refitted from them yet (each night at {config.knowledge.learning.refit_at}, "
            f"once there are {config.knowledge.learning.min_labels} labels, "
            f"{config.knowledge.learning.min_out_of_scope} of texts not to answer)"
        )
        return "\n".join(lines)
    in_use = newest(files, fitted) is fitted
    lines.append(
        ("in use: " if in_use else "not in use (calibration.json is newer): ")
        + _describe_confidence(fitted, base).replace("calibrated", "refitted", 1)
    )
    return "\n".join(lines)


def _faq_calibrate(config: BotConfig, folder: Path, args: argparse.Namespace) -> int:
    try:
        base = load_knowledge(folder, known_departments=set(config.departments))
    except KnowledgeError as exc:
        return _knowledge_problems(folder, exc)
    matcher = Matcher(base, confidence=config.knowledge.default_confidence())
    queries_path = Path(args.queries) if args.queries else folder / DEFAULT_CALIBRATION_QUERIES
    try:
        queries = read_queries(queries_path, {entry.id for entry in base.entries})
        confidence = calibrate_queries(
            matcher,
            queries,
            target_precision=args.target_precision or 0.95,
            review_precision=args.review_precision,
            out_of_scope_rate=args.out_of_scope_rate,
            queries_file=queries_path.name,
            default_language=config.router.default_language,
            sensitive=sensitive_rule(config),
            progress=progress.terminal("scoring the labelled texts", unit="text"),
        )
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.dry_run:
        print(_describe_confidence(confidence, base))
        return 0
    written = save_calibration(confidence, folder)
    print(f"wrote {written}")
    print(_describe_confidence(confidence, base))
    print("A running bot picks the new thresholds up with its next FAQ reload.")
    return 0


async def _faq_calibrate_from_store(
    config: BotConfig, base_dir: Path, folder: Path, args: argparse.Namespace
) -> int:
    """The nightly refit now: thresholds from staff's labels in the store, stored there for every instance."""
    holder = KnowledgeHolder(
        folder,
        known_departments=set(config.departments),
        default_confidence=config.knowledge.default_confidence(),
    )
    try:
        await asyncio.to_thread(holder.load)
    except KnowledgeError as exc:
        return _knowledge_problems(folder, exc)
    settings = config.knowledge.learning.model_copy(
        update={
            "target_precision": args.target_precision or config.knowledge.learning.target_precision,
            "review_precision": args.review_precision,
            "out_of_scope_rate": (
                config.knowledge.learning.out_of_scope_rate
                if args.out_of_scope_rate is None
                else args.out_of_scope_rate
            ),
        }
    )
    db = open_database(config.store, base_dir=base_dir)
    try:
        await db.upgrade()
        learning = FaqLearning(
            db,
            holder,
            settings,
            sensitive=sensitive_rule(config),
            default_language=config.router.default_language,
            zone=config.router.zone,
            settle_hours=config.router.lifecycle.reopen_window_hours,
        )
        await learning.refresh(force=True)
        try:
            confidence = await learning.refit(store=not args.dry_run)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    finally:
        await db.close()
    print(_describe_confidence(confidence, holder.files_base))
    if args.dry_run:
        print("Dry run: nothing was stored.")
    else:
        print("Stored; running bots use the new thresholds within knowledge.learning.refresh_seconds.")
    return 0


def _faq_eval(config: BotConfig, matcher: Matcher, base: KnowledgeBase, args: argparse.Namespace) -> int:
    try:
        queries = read_queries(Path(args.queries), {entry.id for entry in base.entries})
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    result, by_language = evaluate_by_language(
        matcher, queries, default_language=config.router.default_language, sensitive=sensitive_rule(config)
    )
    if args.json:
        found: dict[str, Any] = result.as_dict()
        found["by_language"] = {language: e.as_dict() for language, e in by_language.items()}
        print(json.dumps(found))
        return 0
    confidence = matcher.confidence
    state = "calibrated" if confidence.report else "not calibrated"
    print(
        f"{result.queries} queries, {result.in_scope} in scope; answer at {confidence.answer_threshold:.3f}, "
        f"review at {confidence.review_threshold:.3f} ({state})"
    )
    print(f"  answered automatically  {result.auto_answered} ({result.auto_correct} correct)")
    print(f"  precision               {result.precision:.3f}")
    print(f"  coverage                {result.coverage:.3f}")
    print(f"  out of scope answered   {result.out_of_scope_answered:.3f}")
    print(f"  for review              {result.review}")
    print(f"  entry first / in top 3  {result.top1:.3f} / {result.top3:.3f}")
    for language, e in by_language.items():
        print(
            f"  [{language}] {e.queries} texts, {e.in_scope} in scope: precision {e.precision:.3f}, "
            f"coverage {e.coverage:.3f}, first {e.top1:.3f}, top 3 {e.top3:.3f}"
        )
    return 0


async def cmd_db(config: BotConfig, base_dir: Path, action: str) -> int:
    if action == "purge":
        return await _purge(config, base_dir)
    db = open_database(config.store, base_dir=base_dir)
    try:
        await db.upgrade()
        print(f"database at revision {await db.current_revision()}")
    finally:
        await db.close()
    return 0


async def _purge(config: BotConfig, base_dir: Path) -> int:
    """The retention purge now, instead of at the server's next hourly pass."""
    days = config.router.retention.days
    if days is None:
        print("router.retention.days is not set: nothing is ever purged")
        return 0
    bot = await build(config, base_dir=base_dir, webchat=False, providers=False)
    try:
        purged = await bot.sweeper.purge_once(progress=progress.terminal("purging", unit="ticket"))
    finally:
        await bot.db.close()
    print(
        f"purged what is older than {days:g} days: tickets {purged.tickets}, "
        f"messages {purged.messages}, contacts {purged.contacts}"
    )
    return 0


# The labelled texts `faq calibrate` reads unless told otherwise, kept in the FAQ folder.
DEFAULT_CALIBRATION_QUERIES = "calibration-queries.jsonl"


def _share(value: str) -> float:
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return number


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
    chat = sub.add_parser("chat", help="talk to the bot as a citizen in the terminal")
    chat.add_argument("--as", dest="user", help="the citizen's name (default: your login)")

    tickets = sub.add_parser("tickets", help="act on tickets as staff, without Slack")
    tickets.add_argument(
        "--staff", default=os.environ.get("USER", "staff"), help="your name in the audit trail"
    )
    actions = tickets.add_subparsers(dest="action", required=True)
    ls = actions.add_parser("list", help="the newest tickets")
    ls.add_argument("--status", help="comma-separated statuses, e.g. forwarded,in_progress")
    ls.add_argument("--department")
    ls.add_argument("--limit", type=int, default=50)
    actions.add_parser("show", help="one ticket with its messages and history").add_argument("reference")
    reply = actions.add_parser("reply", help="answer the citizen on the ticket's channel")
    reply.add_argument("reference")
    reply.add_argument("text", nargs="+")
    resolve_cmd = actions.add_parser("resolve", help="mark resolved and tell the citizen")
    resolve_cmd.add_argument("reference")
    resolve_cmd.add_argument("text", nargs="*", default=[])
    actions.add_parser("claim", help="take a forwarded ticket: in progress, assigned to you").add_argument(
        "reference"
    )
    reassign = actions.add_parser("reassign", help="send to another department, with a reason")
    reassign.add_argument("reference")
    reassign.add_argument("department")
    reassign.add_argument("reason", nargs="+")
    reopen_cmd = actions.add_parser("reopen", help="put a resolved or answered ticket back, with a reason")
    reopen_cmd.add_argument("reference")
    reopen_cmd.add_argument("reason", nargs="+")
    media = actions.add_parser("media", help="save a citizen's photo (an attachment id from `show`)")
    media.add_argument("media_id", type=int)
    media.add_argument("--out", help="the file to write (default: standard output)")
    review = actions.add_parser("review", help="the same-day queue of likely FAQ answers")
    review_actions = review.add_subparsers(dest="review_action", required=True)
    review_actions.add_parser("list", help="questions waiting, with the suggested entries")
    send = review_actions.add_parser("send", help="send an entry's answer (the top suggestion by default)")
    send.add_argument("reference")
    send.add_argument("--entry", help="the FAQ entry id to send")
    edit = review_actions.add_parser("edit", help="send your own (edited) answer")
    edit.add_argument("reference")
    edit.add_argument("text", nargs="+")

    faq = sub.add_parser("faq", help="the FAQ knowledge base")
    faq_actions = faq.add_subparsers(dest="action", required=True)
    faq_actions.add_parser("check", help="validate the YAML files").add_argument("dir", nargs="?")
    ask = faq_actions.add_parser("ask", help="show the entries a text would match, with scores")
    ask.add_argument("text", nargs="+")
    ask.add_argument("--limit", type=int, default=5)
    calibrate = faq_actions.add_parser(
        "calibrate", help="choose the answer and review thresholds from a labelled JSON-lines file"
    )
    calibrate.add_argument("--faq", dest="dir", help="FAQ folder (default: knowledge.path)")
    calibrate.add_argument(
        "--queries", help=f"labelled texts (default: {DEFAULT_CALIBRATION_QUERIES} in the FAQ folder)"
    )
    calibrate.add_argument(
        "--target-precision",
        type=_share,
        help="of automatic answers (default 0.95; with --from-store knowledge.learning.target_precision)",
    )
    calibrate.add_argument(
        "--review-precision", type=_share, default=0.5, help="of the suggestions sent to review"
    )
    calibrate.add_argument(
        "--out-of-scope-rate",
        type=_share,
        help="share of real traffic the FAQ cannot answer (default: the share of null texts in the file)",
    )
    calibrate.add_argument("--dry-run", action="store_true", help="report, do not write calibration.json")
    calibrate.add_argument(
        "--from-store",
        action="store_true",
        help="refit from staff's decisions in the store (as every night), not from a file; stored there",
    )
    ev = faq_actions.add_parser("eval", help="measure automatic answers on a labelled JSON-lines file")
    ev.add_argument("--faq", dest="dir", help="FAQ folder (default: knowledge.path)")
    ev.add_argument("--queries", required=True, help='one {"text": ..., "expect": id or null} a line')
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    faq_commands.add_parsers(faq_actions)  # import, learn, add-variant, gaps

    routing_commands.add_parsers(sub)  # routing import, eval, ask

    db = sub.add_parser("db", help="the database")
    db_actions = db.add_subparsers(dest="action", required=True)
    db_actions.add_parser("upgrade", help="apply pending migrations")
    db_actions.add_parser(
        "purge",
        help="purge citizens' texts and addresses past router.retention.days now (the server does it hourly)",
    )
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
            return asyncio.run(cmd_serve(config, base_dir))
        if command == "chat":
            return asyncio.run(cmd_chat(config, base_dir, args.user))
        if command == "tickets":
            return asyncio.run(cmd_tickets(config, base_dir, args))
        if command == "faq" and args.action in faq_commands.ACTIONS:
            return faq_commands.run(config, base_dir, args)
        if command == "faq":
            return cmd_faq(config, base_dir, args)
        if command == "routing":
            return routing_commands.run(config, base_dir, args)
        return asyncio.run(cmd_db(config, base_dir, args.action))
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


if __name__ == "__main__":
    sys.exit(main())
