"""The composition root: build every part from config, and serve them.

python bot.py [serve]     the web server: web chat, webhooks, /healthz
python bot.py --help      every command (they live in commands/)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from aiohttp import web

from channels import Channel
from channels.webchat import WebchatChannel
from knowledge import KnowledgeHolder
from router import Desk, Dispatcher, Notices, Router
from router.calendar import WorkingCalendar
from router.conversation import Conversations
from router.delivery import DeliveryHooks
from router.deskfeed import DeskFeed
from router.host import RouterHost
from router.learning import FaqLearning
from router.lifecycle import Lifecycle
from router.media import MediaFetcher
from router.medialinks import MediaLinks
from router.metrics import Metrics
from router.report import monthly_poster
from router.sweep import Sweeper
from server.config import BotConfig
from server.listen import listen_until_stopped
from server.operations import Operations
from server.status import StatusPages
from store import Database, open_database, utcnow

log = logging.getLogger("bot")


@dataclass
class Bot:
    config: BotConfig
    db: Database
    knowledge: KnowledgeHolder
    lifecycle: Lifecycle
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
                self.config.knowledge.reload_seconds, on_error=self.desk.report_knowledge_error
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
    secret = config.server.media_secret or secrets.token_hex(32)
    media_links = MediaLinks(
        public_url=config.server.public_url, secret=secret, valid_hours=config.server.media_link_hours
    )
    adapters: dict[str, Channel] = {}
    if webchat and config.channels.webchat.enabled:
        conversations = Conversations(db, config.router.zone)
        adapters["webchat"] = WebchatChannel(config.channels.webchat, conversations.of)
    for channel in [*(provider_channels(config) if providers else []), *channels]:
        adapters[channel.name] = channel
    # The staff desk: cards, threads and alerts go to it. Also from a process that does not run the
    # Slack adapter itself (`bot.py tickets ...`): the server's dispatcher delivers those rows.
    desk_feed = None
    if "slack" in adapters or config.channels.slack.enabled:
        desk_feed = DeskFeed(
            channel="slack",
            config=config.router.desk,
            departments=config.departments,
            notices=notices,
            default_language=config.router.default_language,
            media_links=media_links,
        )
    learning = None
    if config.knowledge.learning.enabled:
        learning = FaqLearning(
            db,
            knowledge,
            config.knowledge.learning,
            sensitive=config.router.sensitive.rule(),
            default_language=config.router.default_language,
            zone=config.router.zone,
            settle_hours=config.router.lifecycle.reopen_window_hours,
            clock=clock,
        )
    calendar = WorkingCalendar(config.router.calendar, config.router.zone)
    lifecycle = Lifecycle(
        config=config.router,
        departments=config.departments,
        notices=notices,
        calendar=calendar,
        clock=clock,
        desk_feed=desk_feed,
        public_url=config.server.public_url,
    )
    router = Router(db=db, knowledge=knowledge, lifecycle=lifecycle, learning=learning)
    hooks = DeliveryHooks(db, lifecycle)
    dispatcher = Dispatcher(
        db=db,
        channels=adapters,
        config=config.router.dispatcher,
        clock=clock,
        on_final_failure=hooks.failed_for_good,
        on_sent=hooks.sent,
        prepare=hooks.prepare,
        instance=config.server.instance_name(),
    )
    lifecycle.on_outbox(dispatcher.wake)
    media = MediaFetcher(db=db, channels=adapters, config=config.router.media, clock=clock)
    router.on_media(media.wake)
    desk = Desk(db, lifecycle, knowledge, learning=learning)
    host = RouterHost(router, desk, clock=clock)
    metrics = Metrics(
        db, channels=sorted(adapters), cache_seconds=config.server.metrics_cache_seconds, clock=clock
    )
    router.on_intake(metrics.intake)
    dispatcher.observers.append(metrics.send)
    dispatcher.route_observers.append(metrics.sent_by_route)
    host.sent_observers.append(metrics.answered)
    knowledge.observers.append(metrics.faq_reload)
    folder = resolve(base_dir, config.router.report.folder)
    report = monthly_poster(config.router, db, lifecycle, knowledge, folder)
    sweeper = Sweeper(db, lifecycle, learning=learning, report=report)
    parts = (desk, dispatcher, media, sweeper, host, adapters, media_links, metrics)
    return Bot(config, db, knowledge, lifecycle, router, *parts)


def provider_channels(config: BotConfig) -> list[Channel]:
    """The provider channels enabled in config (SMS, Telegram, X, WhatsApp, KakaoTalk, e-mail, and
    Slack for the staff). Each adapter, and its provider's SDK, is imported only when it is enabled."""
    public_url, section = config.server.public_url, config.channels
    enabled: list[Channel] = []
    if section.sms.enabled:
        from channels.sms import SmsChannel

        enabled.append(SmsChannel(section.sms, public_url=public_url))
    if section.telegram.enabled:
        from channels.telegram import TelegramChannel

        enabled.append(TelegramChannel(section.telegram, public_url=public_url))
    if section.x.enabled:
        from channels.x import XChannel

        enabled.append(XChannel(section.x, public_url=public_url))
    if section.whatsapp.enabled:
        from channels.whatsapp import WhatsappChannel

        enabled.append(WhatsappChannel(section.whatsapp, public_url=public_url))
    if section.kakao.enabled:
        from channels.kakao import KakaoChannel

        enabled.append(KakaoChannel(section.kakao, public_url=public_url))
    if section.email.enabled:
        from channels.mail import EmailChannel

        enabled.append(EmailChannel(section.email, public_url=public_url))
    if section.slack.enabled:
        from channels.slack import SlackChannel

        enabled.append(SlackChannel(section.slack, public_url=public_url))
    if config.open311.enabled:
        from channels.open311 import Open311Channel

        enabled.append(Open311Channel(config.open311, departments=set(config.departments)))
    return enabled


def make_app(bot: Bot) -> web.Application:
    app = web.Application(client_max_size=bot.config.server.max_body_bytes)

    async def stop_channels(app: web.Application) -> None:
        for channel in bot.channels.values():
            await channel.stop()

    app.on_shutdown.append(stop_channels)  # before aiohttp waits for open requests (long-polls)
    operations = Operations(
        bot.db,
        bot.knowledge,
        bot.metrics,
        bot.media_links,
        channels=sorted(bot.channels),
        metrics_token=bot.config.server.metrics_token,
    )
    app.add_routes(operations.routes())
    app.add_routes(StatusPages(bot.db, bot.lifecycle).routes())
    for channel in bot.channels.values():
        app.add_routes(channel.routes())
    if "open311" in bot.channels:  # the channel takes reports in; this reads them back (GET)
        from server.open311 import Open311Api

        api = Open311Api.serving(bot.channels["open311"], bot.db, bot.config, clock=bot.lifecycle.clock)
        app.add_routes(api.routes())
    return app


async def serve(config: BotConfig, base_dir: Path) -> int:
    """Serve until SIGINT or SIGTERM."""
    bot = await build(config, base_dir=base_dir)
    async with bot.running():
        await listen_until_stopped(make_app(bot), config.server)
    return 0


if __name__ == "__main__":
    from commands import main

    sys.exit(main())
