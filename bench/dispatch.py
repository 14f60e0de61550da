"""How fast the dispatcher sends through each provider channel, against the channel's configured limit.

    .venv/bin/python bench/dispatch.py [--only sms,telegram,x,whatsapp,kakao,email] [--sms 40]
                                       [--telegram 300] [--chats 100] [--x 12] [--whatsapp 200]
                                       [--kakao 200] [--email 60]

For each channel the real adapter (and the real SDK) talks to the stand-in for its provider that the
tests use (tests/fakes/), with the rate limits of the shipped config.yaml. A burst of outgoing
messages is queued in the store at once, as a busy morning would; then the bot runs until every one
is sent. From the times the stand-in received each send the script prints:

- achieved: units (messages; SMS segments) per second from the first send to the last, against the
  configured limit, overall and, where the channel has one, per recipient;
- peak: the most units sent in any window of `window` seconds (one message's burst allowed), which
  must stay within the limit;
- min gap: the shortest time between two sends (to one recipient, for the per-recipient limit),
  which may be a little under the limit's interval: the stand-in sees a send some milliseconds
  after the pacer let it go, and that delay varies.

Exit status 1 when a limit was exceeded or a message was not sent.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from bench/: the project's packages live one level up

import bot as bot_module  # noqa: E402
from channels.kakao_config import KakaoConfig  # noqa: E402
from channels.mail_config import EmailConfig  # noqa: E402
from channels.segments import sms_segments  # noqa: E402
from channels.settings import RateLimitConfig  # noqa: E402
from channels.sms_config import SmsConfig  # noqa: E402
from channels.telegram_config import TelegramConfig  # noqa: E402
from channels.whatsapp_config import ContentTemplate, WhatsappConfig  # noqa: E402
from channels.x_config import XConfig  # noqa: E402
from router.outgoing import send_to_citizen  # noqa: E402
from server.config import load_config  # noqa: E402
from store import OutboxStatus, StoreConfig, data, utcnow  # noqa: E402
from tests.fakes.kakao import FakeKakao  # noqa: E402
from tests.fakes.smtp import FakeSmtp  # noqa: E402
from tests.fakes.telegram import FakeTelegram  # noqa: E402
from tests.fakes.twilio import FakeTwilio  # noqa: E402
from tests.fakes.whatsapp import FakeWhatsapp  # noqa: E402
from tests.fakes.x import FakeX  # noqa: E402

# Seconds: the stand-in sees a send a little after the pacer released it, and that delay varies
# (the SDK's own work, a new connection), so one gap may look shorter than the pacer made it.
TIMING_SLACK = 0.050
# Texts of 1, 2 and 3 SMS segments (Korean is UCS-2: 70 characters, 67 each when split).
SMS_TEXTS = [
    "접수번호 2026-000123: 교통도로과에 전달했습니다.",
    "접수번호 2026-000123: 교통도로과에 전달했습니다. 처리 예정: 11월 25일 (수) 14:00. "
    "추가로 알려 주실 내용이 있으면 답장해 주세요.",
    "[2026-000123] 교통도로과: 말씀하신 가로등은 오늘 오후에 점검반이 확인했습니다. "
    "부품을 교체해야 해서 내일 오전 중 수리할 예정입니다. 불편을 드려 죄송합니다. "
    "추가 문의는 이 번호로 답장해 주시면 담당자가 확인 후 다시 연락드리겠습니다. 감사합니다.",
]


@dataclass
class Send:
    recipient: str
    at: float
    units: int


@dataclass
class Result:
    channel: str
    messages: int
    sent: int
    limit: RateLimitConfig
    sends: list[Send]

    def row(self) -> dict[str, str]:
        sends = sorted(self.sends, key=lambda s: s.at)
        units = sum(s.units for s in sends)
        span = sends[-1].at - sends[0].at if len(sends) > 1 else 0.0
        # The units of every send but the last, over the time from the first start to the last.
        achieved = (units - sends[-1].units) / span if span > 0 else math.inf
        limit = self.limit.per_second or math.inf
        window = max(1.0, 10 / limit) if limit != math.inf else 1.0
        peak = _peak(sends, window)
        per_recipient = defaultdict(list)
        for s in sends:
            per_recipient[s.recipient].append(s)
        recipient_gap = min(
            (b.at - a.at for group in per_recipient.values() for a, b in pairwise(group)),
            default=math.inf,
        )
        # The busiest recipient's rate, measured as `achieved` is.
        recipient_rate = max(
            (
                (sum(s.units for s in group) - group[-1].units) / (group[-1].at - group[0].at)
                for group in per_recipient.values()
                if len(group) > 1 and group[-1].at > group[0].at
            ),
            default=math.inf,
        )
        gaps = [(b.at - a.at, a.units) for a, b in pairwise(sends)]
        min_gap = min((gap for gap, _ in gaps), default=math.inf)
        return {
            "channel": self.channel,
            "msgs": f"{self.sent}/{self.messages}",
            "units": str(units),
            "limit/s": _num(limit),
            "achieved/s": _num(achieved),
            "of limit": f"{achieved / limit:.1%}" if limit != math.inf else "-",
            "window s": _num(window),
            "peak/s": _num(peak / window),
            "min gap ms": _num(min_gap * 1000),
            "per-rcpt limit/s": _num(self.limit.per_recipient_per_second or math.inf),
            "per-rcpt achieved/s": _num(recipient_rate),
            "per-rcpt min gap ms": _num(recipient_gap * 1000),
            "duration s": _num(span),
        }

    def problems(self) -> list[str]:
        found = []
        if self.sent != self.messages:
            found.append(f"{self.channel}: {self.messages - self.sent} message(s) not sent")
        sends = sorted(self.sends, key=lambda s: s.at)
        if self.limit.per_second and sends:
            window = max(1.0, 10 / self.limit.per_second)
            # Sends seen within `window` left the pacer within `window` + the slack.
            if _peak(sends, window) > self.limit.per_second * (window + TIMING_SLACK):
                found.append(f"{self.channel}: more than the limit in one {window:.0f}s window")
            interval = 1 / self.limit.per_second
            for a, b in pairwise(sends):
                if b.at - a.at < a.units * interval - TIMING_SLACK:
                    found.append(
                        f"{self.channel}: two sends {b.at - a.at:.3f}s apart (limit {interval:.3f}s/unit)"
                    )
                    break
        if self.limit.per_recipient_per_second:
            interval = 1 / self.limit.per_recipient_per_second
            groups = defaultdict(list)
            for s in sends:
                groups[s.recipient].append(s)
            for group in groups.values():
                for a, b in pairwise(group):
                    if b.at - a.at < a.units * interval - TIMING_SLACK:
                        found.append(f"{self.channel}: one recipient got two sends {b.at - a.at:.3f}s apart")
                        break
        return found


def _peak(sends: list[Send], window: float) -> float:
    """The most units started within any `window` seconds, less the last send's burst allowance."""
    best, start, total = 0.0, 0, 0
    for send in sends:
        total += send.units
        while send.at - sends[start].at >= window:
            total -= sends[start].units
            start += 1
        best = max(best, total - send.units)
    return best


def _num(value: float) -> str:
    if value == math.inf:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


async def burst(
    channel: str,
    section: Any,
    recipients: list[str],
    texts: list[str],
    count: int,
    collect: Callable[[], list[Send]],
    folder: Path,
    notice: str | None = None,
) -> Result:
    """Run the bot, send one message to warm up, then queue `count` messages to `recipients` in turn
    at once; wait until all are sent and read the burst's sends at the stand-in."""
    config = load_config(ROOT / "config.yaml")
    store = StoreConfig(url=f"sqlite+aiosqlite:///{folder / f'{channel}.db'}")
    knowledge = config.knowledge.model_copy(update={"reload_seconds": 0})
    channels = config.channels.model_copy(update={channel: section})
    server = config.server.model_copy(update={"public_url": "https://city.example"})
    config = config.model_copy(
        update={"store": store, "knowledge": knowledge, "channels": channels, "server": server}
    )
    bot = await bot_module.build(config, base_dir=ROOT, webchat=False)
    async with bot.running(sweeps=False):
        # One message first, so the burst meets an open connection, as a running bot's would.
        await _queue(bot, channel, [recipients[0]], texts[:1], 1, notice)
        await _until(lambda: _all_sent(bot, channel, 1), timeout=90)
        warm = len(collect())
        await _queue(bot, channel, recipients, texts, count, notice)
        await _until(lambda: _all_sent(bot, channel, count + 1), timeout=count * 30 + 60)
    async with bot.db.session() as session:
        sent = await data.count_outbox(session, status=OutboxStatus.SENT, channel=channel) - 1
    await bot.db.close()
    return Result(channel, count, sent, section.rate_limit, collect()[warm:])


async def _queue(
    bot: bot_module.Bot,
    channel: str,
    recipients: list[str],
    texts: list[str],
    count: int,
    notice: str | None = None,
) -> None:
    """Queue `count` messages to `recipients` in turn in one transaction, as a busy morning would;
    `notice`: as that notice (a staff reply), for doors that send notices their own way."""
    async with bot.db.transaction() as session:
        for n in range(count):
            contact = await data.get_or_create_contact(
                session, channel=channel, address=recipients[n % len(recipients)]
            )
            text = texts[n % len(texts)]
            variables = {"reference": f"2026-{n:06d}", "text": text} if notice else None
            await send_to_citizen(
                session,
                contact,
                text,
                ticket=None,
                author="bot",
                now=utcnow(),
                notice=notice,
                variables=variables,
            )
    bot.lifecycle.outbox_written()  # after the commit: wake the dispatcher


async def _all_sent(bot: bot_module.Bot, channel: str, count: int) -> bool:
    async with bot.db.session() as session:
        done = [
            await data.count_outbox(session, status=s, channel=channel)
            for s in (OutboxStatus.SENT, OutboxStatus.FAILED)
        ]
    return sum(done) >= count


async def _until(check: Callable[[], Awaitable[bool]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.2)


async def bench_sms(count: int, folder: Path) -> Result:
    async with FakeTwilio() as fake:
        section = SmsConfig(
            enabled=True,
            account_sid=fake.account_sid,
            auth_token=fake.auth_token,
            from_number="+15005550006",
            api_base_url=fake.base_url,
        )
        recipients = [f"+8210{5550000 + n:08d}" for n in range(max(1, count // 2))]
        return await burst(
            "sms",
            section,
            recipients,
            SMS_TEXTS,
            count,
            lambda: [Send(s.to, s.at, s.num_segments or sms_segments(s.body)) for s in fake.sent],
            folder,
        )


async def bench_telegram(count: int, chats: int, folder: Path) -> Result:
    token = "123456:bench-token"
    async with FakeTelegram(token) as fake:
        fake.rate_limit_per_chat = 1.0  # the stand-in answers 429 if one chat gets two a second
        section = TelegramConfig(
            enabled=True,
            token=token,
            webhook_secret="bench-secret",
            set_webhook=False,
            api_base_url=fake.url,
        )
        recipients = [str(100_000 + n) for n in range(chats)]
        texts = ["접수번호 2026-000123: 교통도로과에 전달했습니다. 처리 예정: 11월 25일 (수) 14:00."]
        return await burst(
            "telegram",
            section,
            recipients,
            texts,
            count,
            lambda: [Send(str(s.chat_id), s.at, 1) for s in fake.sent],
            folder,
        )


async def bench_x(count: int, folder: Path) -> Result:
    async with FakeX(consumer_secret="bench-consumer-secret") as fake:
        credentials = fake.client_kwargs
        section = XConfig(enabled=True, api_base_url=fake.base_url, **credentials)
        recipients = [str(5_000 + n) for n in range(count)]
        texts = [f"접수번호 2026-000{n:03d}: 교통도로과에 전달했습니다." for n in range(count)]
        return await burst(
            "x",
            section,
            recipients,
            texts,
            count,
            lambda: [Send(d.recipient_id, d.at, 1) for d in fake.dms],
            folder,
        )


async def bench_whatsapp(count: int, folder: Path) -> Result:
    """Status updates to citizens who wrote more than a day ago: each goes as its approved template."""
    async with FakeWhatsapp() as fake:
        sid = fake.approve("Ticket {{1}}: {{2}}")
        section = WhatsappConfig(
            enabled=True,
            account_sid=fake.account_sid,
            auth_token=fake.auth_token,
            from_number="whatsapp:+15005550006",
            api_base_url=fake.base_url,
            content_templates={"staff_reply": ContentTemplate(sid=sid, variables=["reference", "text"])},
        )
        recipients = [f"whatsapp:+8210{5550000 + n:08d}" for n in range(max(1, count // 2))]
        texts = ["교통도로과: 내일 오전에 수리할 예정입니다."]
        return await burst(
            "whatsapp",
            section,
            recipients,
            texts,
            count,
            lambda: [Send(s.to, s.at, 1) for s in fake.sent],
            folder,
            notice="staff_reply",
        )


async def bench_kakao(count: int, folder: Path) -> Result:
    """Staff replies pushed through the Event API (the paid, rate-limited way)."""
    key, secret, event = "k" * 32, "bench-skill-secret-value", "city_status_update"
    async with FakeKakao(
        bot_id="bench-bot", rest_api_key=key, secret_header="X-Skill-Secret", skill_secret=secret, event=event
    ) as fake:
        section = KakaoConfig(
            enabled=True,
            skill_secret=secret,
            bot_id="bench-bot",
            rest_api_key=key,
            event_name=event,
            api_base_url=fake.base_url,
        )
        recipients = [f"bench-user-{n:04d}" for n in range(max(1, count // 2))]
        texts = ["[2026-000123] 교통도로과: 내일 오전에 수리할 예정입니다."]
        return await burst(
            "kakao",
            section,
            recipients,
            texts,
            count,
            lambda: [Send(e.users[0]["id"], e.at, 1) for e in fake.events],
            folder,
            notice="staff_reply",
        )


async def bench_email(count: int, folder: Path) -> Result:
    """Answers by mail through SMTP. The mailbox is not read here (no IMAP server: its reader
    retries quietly in the background)."""
    logging.getLogger("channels.email").setLevel(logging.ERROR)
    async with FakeSmtp() as fake:
        section = EmailConfig(
            enabled=True,
            imap_host="127.0.0.1",
            imap_port=9,  # discard: nothing listens, and nothing is read
            imap_security="none",
            imap_user="minwon@city.example",
            imap_password="-",
            smtp_host=fake.host,
            smtp_port=fake.port,
            smtp_security="none",
            from_address="City <minwon@city.example>",
        )
        recipients = [f"citizen{n:04d}@mail.example" for n in range(max(1, count // 2))]
        texts = ["[2026-000123] 교통도로과: 내일 오전에 수리할 예정입니다."]
        return await burst(
            "email",
            section,
            recipients,
            texts,
            count,
            lambda: [Send(m.rcpt_tos[0], m.at, 1) for m in fake.sent],
            folder,
            notice="staff_reply",
        )


async def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default="sms,telegram,x,whatsapp,kakao,email")
    parser.add_argument("--sms", type=int, default=40, help="messages of 1-3 segments, two per number")
    parser.add_argument("--telegram", type=int, default=300)
    parser.add_argument("--chats", type=int, default=100, help="Telegram chats the messages go to")
    parser.add_argument(
        "--x", type=int, default=12, help="direct messages (X allows 100 posts in 15 minutes)"
    )
    parser.add_argument("--whatsapp", type=int, default=200, help="template notices, two per citizen")
    parser.add_argument("--kakao", type=int, default=200, help="Event API pushes, two per citizen")
    parser.add_argument("--email", type=int, default=60, help="answers by mail, two per citizen")
    args = parser.parse_args()
    wanted = args.only.split(",")
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if "sms" in wanted:
            results.append(await bench_sms(args.sms, folder))
        if "telegram" in wanted:
            results.append(await bench_telegram(args.telegram, args.chats, folder))
        if "x" in wanted:
            results.append(await bench_x(args.x, folder))
        if "whatsapp" in wanted:
            results.append(await bench_whatsapp(args.whatsapp, folder))
        if "kakao" in wanted:
            results.append(await bench_kakao(args.kakao, folder))
        if "email" in wanted:
            results.append(await bench_email(args.email, folder))
    rows = [r.row() for r in results]
    headers = list(rows[0])
    widths = {h: max(len(h), *(len(row[h]) for row in rows)) for h in headers}
    print("  ".join(h.rjust(widths[h]) for h in headers))
    for row in rows:
        print("  ".join(row[h].rjust(widths[h]) for h in headers))
    problems = [p for r in results for p in r.problems()]
    for problem in problems:
        print("PROBLEM:", problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
