"""One simulated day of the city's intake, followed until every ticket is finished: automatic
answers, the same-day review queue, departments' due times, the sweep's reminders and escalations,
and staff who work in office hours only.

    .venv/bin/python bench/lifecycle.py [--contacts 3000] [--seed 120] [--review-per-hour 120]
        [--resolve-per-hour 30] [--database-url URL] [--json PATH]
        [--days 1] [--db PATH] [--comment-share 0]

`--days 30 --db month.db --comment-share 0.5` simulates a month (each day `--contacts`, weekends and
holidays a third of that) into a SQLite file that is kept, e.g. for `bot.py report monthly`.

The real bot (shipped config.yaml and FAQ, a fresh SQLite file or PostgreSQL schema, the in-memory
channel) runs on a fake clock that only this script moves. After each contact the outbox is
delivered at that simulated instant; every 10 simulated minutes staff act (in working hours) and
the sweep runs. Exit status 1 if a citizen's message got no reply or the simulation raised.
"""

from __future__ import annotations

import argparse
import asyncio
import enum
import itertools
import json
import math
import os
import platform
import random
import sys
import tempfile
import time as wallclock
from collections import Counter, defaultdict
from collections.abc import Awaitable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from bench/: the project's packages live one level up

from sqlalchemy import func  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlmodel import col, select  # noqa: E402

import bot as bot_module  # noqa: E402
from bench.fresh import fresh_store  # noqa: E402
from channels.base import InboundMessage  # noqa: E402
from channels.memory import MemoryChannel  # noqa: E402
from router import Staff  # noqa: E402
from router.calendar import WorkingCalendar  # noqa: E402
from server.config import load_config  # noqa: E402
from store import (  # noqa: E402
    OPEN_STATUSES,
    Direction,
    Message,
    Outbox,
    OutboxStatus,
    Ticket,
    TicketEvent,
    TicketStatus,
)

TICK = timedelta(minutes=10)  # staff rounds and sweeps
MAX_DAYS = 10  # give up on tickets still open this long after the (last) day began
QUIET_DAY_SHARE = 1 / 3  # of a working day's contacts, on a weekend or holiday (with --days)
DEFAULT_DAY = "2026-11-23"  # a Monday without holidays around it
REVIEW_MIN_AGE = timedelta(0)  # staff send a review item as soon as it is in the queue
FOLLOW_UP_WINDOWS = {"person": timedelta(hours=2), "rating": timedelta(hours=24)}

# The day's shape: most contacts in office hours; of the rest, more in the evening than at night.
OFFICE_SHARE, EARLY_SHARE, KOREAN_SHARE = 0.80, 0.35, 0.70
SENSITIVE_SHARE = 0.03  # of complaints: bribery and abuse reports for the restricted inbox

KO_PLACES = [
    "망원동 375번지",
    "연남로 12길",
    "성수역 3번 출구",
    "신림동 고시촌 입구",
    "불광천 산책로",
    "잠실새내역 4번 출구",
    "방배동 카페골목",
    "수유시장 뒤편",
    "목동 9단지",
    "합정동 주민센터 앞",
]
EN_PLACES = [
    "Mangwon-ro 12-gil",
    "Itaewon-ro 27",
    "exit 3 of Seongsu Station",
    "Yeonnam-dong 239",
    "Sinchon-ro 85",
    "Haebangchon 14-gil",
    "Huam-dong 406",
    "Hannam-daero 40",
]
KO_COMPLAINTS = [
    "{place} 앞 가로등이 사흘째 꺼져 있어요. 밤에 너무 어두워서 무서워요.",
    "{place} 골목에 불법주차 차량이 매일 세워져 있어서 차가 못 지나가요. 단속 좀 해 주세요.",
    "{place} 도로에 포트홀이 크게 패여서 오토바이가 넘어질 뻔했어요.",
    "밤 11시가 넘었는데 {place} 공사장에서 아직도 소음이 심합니다.",
    "{place} 보도 밑에서 수도관이 새는지 물이 계속 흘러나와요.",
    "{place} 인도 보도블록이 깨져서 유모차 바퀴가 걸려요. 보수 부탁드립니다.",
    "{place} 버스정류장 도착 안내 전광판이 며칠째 꺼져 있어요.",
    "{place} 공원 쓰레기통이 넘쳐서 악취가 진동해요.",
    "{place} 사거리 신호등이 계속 빨간불로 멈춰 있어요.",
    "{place} 빌라 옹벽에 금이 가고 돌이 떨어져요. 무너질까 걱정입니다.",
    "{place} 맨홀 뚜껑이 덜컹거려서 차가 지날 때마다 쾅쾅 소리가 나요.",
    "{place} 하천 산책로에 누가 폐가구를 무단투기하고 갔어요.",
    "윗집에서 물이 새서 우리 집 천장에 곰팡이가 폈는데 관리사무소가 해결을 안 해 줍니다. ({place})",
    "{place}에 혼자 사시는 어머니가 기초연금을 받으시는데 요양병원에 입원하면 연금이 끊기나요?",
    "{place}에 사는 발달장애 아이의 활동지원 시간을 늘리고 싶은데 재판정은 어떻게 받나요?",
    "{place} 옆집 할머니가 며칠째 안 보이시고 우편물이 쌓여 있어요. 확인 부탁드려요.",
]
EN_COMPLAINTS = [
    "The streetlight outside {place} has been out for three nights, the street is pitch dark.",
    "A van is illegally parked across the bike lane on {place} every morning.",
    "Deep pothole on {place}, my tyre burst on it this morning.",
    "Construction noise near {place} again after 10 pm, please do something.",
    "Water has been leaking from a pipe under the pavement at {place} since yesterday.",
    "The traffic light at the {place} junction is stuck on red.",
    "Trash bins at the {place} playground are overflowing and it smells terrible.",
    "My landlord on {place} won't fix the broken boiler in my studio and it's freezing. Who can help?",
    "My elderly neighbour on {place} hasn't been seen for days and her mail is piling up.",
    "Someone dumped a mattress and broken chairs by the wall at {place}.",
    "There's a crack in the retaining wall at {place} and pieces are falling onto the sidewalk.",
    "The bus stop sign at {place} was knocked over by a car.",
]
KO_SENSITIVE = [
    "구청 직원이 {place} 가게 간판 허가를 내주는 대가로 뇌물을 요구했습니다.",
    "{place} 주민센터 직원에게 갑질을 당했습니다. 공익신고하고 싶어요.",
]
EN_SENSITIVE = ["A district inspector asked me for a bribe to approve the shop sign at {place}."]
KO_CHATTER = [
    "안녕하세요",
    "ㅋㅋㅋㅋㅋ",
    "오늘 날씨 진짜 좋네요",
    "심심해요 말 걸어 주세요",
    "너 사람이야 로봇이야?",
    "로또 번호 좀 알려줘",
    "배고파요",
    "테스트",
    "잘못 보냈어요 죄송합니다",
]
EN_CHATTER = ["hi", "hello?", "lol", "are you a bot", "tell me a joke", "test test", "sorry wrong number"]
# Paraphrases of FAQ questions: a new ending, a word dropped, or only the two key words left.
KO_ENDINGS = ["", "?", " 알려주세요", " 궁금해요", " 문의드립니다", " 좀 알려 주실래요"]
EN_PREFIXES = ["", "hi, ", "hello ", "quick question: ", "excuse me, "]
EN_SUFFIXES = ["", "?", " please", " thanks"]
KO_VAGUE = ["관련해서 문의드려요", "이거 어떻게 하는 거예요", "좀 알려 주실래요", "궁금한 게 있어요"]
EN_VAGUE = ["question about", "need some info on", "what about", "can you help with"]
# Comments after a rating: themes many people share, and some with the writer's own name or number
# (which the monthly report must never show).
KO_COMMENTS = [
    "답변이 빨라서 좋았어요",
    "빠른 처리 감사합니다",
    "담당자분이 친절하게 설명해 주셨어요",
    "처리가 너무 늦었어요. 일주일이나 걸렸어요",
    "아직도 해결이 안 됐어요",
    "저는 {name}입니다. 결과를 {phone}로 전화 주세요",
]
EN_COMMENTS = [
    "quick answer, thank you",
    "very fast and friendly service",
    "took far too long to fix",
    "still not fixed, the problem is back",
    "this is {name}, please call me back on {phone}",
]
SURNAMES = ["김", "이", "박", "최", "정", "강", "조", "윤", "장", "임"]
SYLLABLES = "민서지현우준하윤도연수아예진태희성영재은혜동호경석"
EN_NAMES = ["Avery", "Blake", "Casey", "Devon", "Emery", "Finley", "Harper", "Jordan", "Kendall", "Morgan"]
EN_SURNAMES = ["Adler", "Brandt", "Castell", "Dunmore", "Ellery", "Fairbank", "Gilchrist", "Holloway"]
PERSON_WORDS = {"ko": ["0", "0", "0", "상담원"], "en": ["0", "0", "0", "person"]}
STAFF_REPLY = {
    "ko": "현장을 확인하고 조치했습니다. 불편을 드려 죄송합니다.",
    "en": "We checked on site and took care of it. Sorry for the trouble.",
}
STAFF = [Staff(id=f"bench:{name.lower()}", name=name) for name in ("Kim", "Lee", "Park", "Choi", "Jung")]
_TO_DO = [TicketStatus.FORWARDED, TicketStatus.IN_PROGRESS, TicketStatus.REOPENED]


class Kind(enum.StrEnum):
    ROUTINE = "routine"  # a shipped FAQ question or a paraphrase of one
    COMPLAINT = "complaint"  # needs a department
    PERSON = "person"  # "0" (or a word for a person) after an automatic answer
    RATING = "rating"  # a 1-5 digit after a resolution
    CHATTER = "chatter"  # out of scope


MIX = {Kind.ROUTINE: 0.60, Kind.COMPLAINT: 0.30, Kind.PERSON: 0.025, Kind.RATING: 0.025, Kind.CHATTER: 0.05}


@dataclass
class Contact:
    """One citizen message: planned before the run, filled in as it is sent."""

    index: int
    at: datetime  # UTC
    planned: Kind
    sender: str
    language: str
    text: str  # a follow-up's fallback: a routine question, used when nobody can follow up
    kind: Kind = Kind.ROUTINE  # what was sent
    reference: str | None = None
    new_ticket: bool = False
    outcome: str = "-"
    replied_at_once: bool = False

    def __post_init__(self) -> None:
        self.kind = self.planned


@dataclass
class Day:
    contacts: int = 0
    reviewed: int = 0
    resolved: int = 0
    reminded: int = 0
    escalated: int = 0
    closed: int = 0
    open_at_end: int = 0


class SimClock:
    """The bot's clock; only the simulation moves it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def nearest_rank(values: Sequence[float], p: float) -> float:
    """The p-th percentile by nearest rank: the ceil(p/100 * n)-th smallest value."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1] if ordered else float("nan")


def share(part: int, whole: int) -> float:
    return part / whole if whole else float("nan")


# --- the workload ------------------------------------------------------------------------------


def paraphrase(rng: random.Random, question: str, language: str) -> str:
    """The question as written (35 %), lightly reworded (30 %), or cut to its key words (35 %): the
    last sort is what lands in review or goes to a department."""
    style = rng.random()
    if style < 0.35:
        return question
    words = question.rstrip("?？.! ").split()
    if style < 0.65:
        if len(words) > 3 and rng.random() < 0.5:
            del words[rng.randrange(len(words))]
        if language == "ko":
            return " ".join(words) + rng.choice(KO_ENDINGS)
        return rng.choice(EN_PREFIXES) + " ".join(words).lower() + rng.choice(EN_SUFFIXES)
    keep = 1 if rng.random() < 0.2 else 2
    longest = sorted(sorted(range(len(words)), key=lambda i: -len(words[i]))[:keep])
    core = " ".join(words[i] for i in longest)
    return f"{core} {rng.choice(KO_VAGUE)}" if language == "ko" else f"{rng.choice(EN_VAGUE)} {core.lower()}"


def complaint(rng: random.Random, language: str) -> str:
    sensitive = rng.random() < SENSITIVE_SHARE
    if language == "ko":
        template = rng.choice(KO_SENSITIVE if sensitive else KO_COMPLAINTS)
        return template.format(place=rng.choice(KO_PLACES))
    return rng.choice(EN_SENSITIVE if sensitive else EN_COMPLAINTS).format(place=rng.choice(EN_PLACES))


def plan_contacts(
    rng: random.Random, *, count: int, citizens: int, day: date, zone: ZoneInfo, faq: dict[str, list[str]]
) -> list[Contact]:
    """`count` contacts over one day from `citizens` people (each at least once), in time order."""
    midnight = datetime.combine(day, time(), zone)

    def arrival() -> datetime:
        r = rng.random()
        if r < OFFICE_SHARE:
            hours = (9, 18)
        elif r < OFFICE_SHARE + (1 - OFFICE_SHARE) * EARLY_SHARE:
            hours = (0, 9)
        else:
            hours = (18, 24)  # after the same-day cutoff: due the next working day
        return (midnight + timedelta(seconds=rng.randrange(hours[0] * 3600, hours[1] * 3600))).astimezone(UTC)

    times = sorted(arrival() for _ in range(count))
    kinds = rng.choices(list(MIX), list(MIX.values()), k=count)
    # Everyone writes at least once outside follow-ups; a follow-up slot's own sender only writes
    # its fallback question (run time picks who really follows up).
    follow_ups = [i for i, kind in enumerate(kinds) if kind in (Kind.PERSON, Kind.RATING)]
    citizens = min(citizens, count - len(follow_ups))
    people = list(range(citizens)) + [
        rng.randrange(citizens) for _ in range(count - len(follow_ups) - citizens)
    ]
    rng.shuffle(people)
    for i in follow_ups:
        people.insert(i, rng.randrange(citizens))
    languages = ["ko" if rng.random() < KOREAN_SHARE else "en" for _ in range(citizens)]
    plan = []
    for index, (at, kind, person) in enumerate(zip(times, kinds, people, strict=True)):
        language = languages[person]
        if kind is Kind.COMPLAINT:
            said = complaint(rng, language)
        elif kind is Kind.CHATTER:
            said = rng.choice(KO_CHATTER if language == "ko" else EN_CHATTER)
        else:
            said = paraphrase(rng, rng.choice(faq[language]), language)
        plan.append(Contact(index, at, kind, f"citizen-{person:05d}", language, said))
    return plan


# --- the simulation ----------------------------------------------------------------------------


class Simulation:
    def __init__(
        self,
        bot: bot_module.Bot,
        memory: MemoryChannel,
        clock: SimClock,
        plan: list[Contact],
        args: argparse.Namespace,
    ) -> None:
        self.bot, self.memory, self.clock, self.plan, self.args = bot, memory, clock, plan, args
        self.calendar: WorkingCalendar = bot.lifecycle.calendar
        self.zone = bot.config.router.zone
        self.rng = random.Random(args.seed + 1)  # run-time choices, apart from the plan's stream
        self.language = {c.sender: c.language for c in plan}
        self.owner: dict[str, str] = {}  # reference -> the citizen who opened it
        self.latest: dict[str, str] = {}  # citizen -> newest reference (what a rating applies to)
        # Who could follow up now: citizen -> (when, reference); dropped once they write again.
        self.answered: dict[str, tuple[datetime, str]] = {}
        self.resolved: dict[str, tuple[datetime, str]] = {}
        self.days: dict[date, Day] = defaultdict(Day)
        self.errors: list[str] = []
        self.staff = itertools.cycle(STAFF)
        self.credit = {"review": 0.0, "resolve": 0.0}
        self.ended = clock.now

    def day(self, at: datetime) -> Day:
        return self.days[at.astimezone(self.zone).date()]

    def working(self, at: datetime) -> bool:
        local = at.astimezone(self.zone)
        minute = local.hour * 60 + local.minute
        return self.calendar.is_working_day(local.date()) and any(
            start <= minute < end for start, end in self.calendar.day_ranges(local.date())
        )

    async def run(self) -> None:
        tick = datetime.combine(self.args.day, time(), self.zone).astimezone(UTC)
        end, pending = tick + timedelta(days=MAX_DAYS + self.args.days - 1), iter(self.plan)
        upcoming = next(pending, None)
        while tick < end:
            tick += TICK
            while upcoming is not None and upcoming.at < tick:
                await self.contact(upcoming)
                upcoming = next(pending, None)
            self.clock.now = tick
            if self.working(tick):
                await self.staff_round()
            await self.sweep()
            still_open = await self.open_tickets()
            # The day a round closes is the day of its last minutes (at 00:00, yesterday's).
            self.day(tick - TICK).open_at_end = still_open
            if upcoming is None and not still_open:
                break
        self.ended = tick

    async def drain(self) -> None:
        """Deliver everything queued, at the current simulated time (the real loop would race it)."""
        while await self.bot.dispatcher.run_once():
            pass

    async def contact(self, c: Contact) -> None:
        self.clock.now = c.at
        if c.planned in (Kind.PERSON, Kind.RATING):
            self.choose_follow_up(c)
        self.answered.pop(c.sender, None)
        self.resolved.pop(c.sender, None)
        sent_before = len(self.memory.sent)
        # Not memory.push(): it stamps received_at with the wall clock, and the store keeps that as
        # the message's time; this is push() with the simulated time.
        message = InboundMessage(
            channel=self.memory.name,
            sender=c.sender,
            text=c.text,
            provider_message_id=f"bench-{c.index}",
            received_at=c.at,
        )
        try:
            receipt = await self.memory.inbound(message)
            await self.drain()
        except Exception as exc:  # keep going: the report lists it and the exit status says so
            self.errors.append(f"contact {c.index} {c.text!r}: {type(exc).__name__}: {exc}")
            return
        self.day(c.at).contacts += 1
        c.replied_at_once = any(m.recipient == c.sender for m in self.memory.sent[sent_before:])
        if receipt.reference is None:
            c.outcome = "no ticket"
            return
        reference = c.reference = receipt.reference
        c.new_ticket = reference not in self.owner
        self.owner.setdefault(reference, c.sender)
        self.latest[c.sender] = max(reference, self.latest.get(c.sender, ""))
        async with self.bot.db.session() as session:
            ticket = (await session.exec(select(Ticket).where(Ticket.reference == reference))).one()
        if c.new_ticket:
            c.outcome = f"new {ticket.status}"
        elif ticket.rated_at == c.at:
            c.outcome = "rated"
        elif c.kind is Kind.PERSON and ticket.status == TicketStatus.FORWARDED:
            c.outcome = "to a person"
        elif ticket.status == TicketStatus.REOPENED:
            c.outcome = "reopened a resolved ticket"
        else:
            c.outcome = f"joined a {ticket.status} ticket"
        if c.new_ticket and ticket.status == TicketStatus.ANSWERED:
            self.answered[c.sender] = (c.at, reference)
        if (
            c.kind is Kind.RATING
            and ticket.rated_at == c.at
            and self.args.comment_share > 0  # the run-time choices stay as they were without comments
            and self.rng.random() < self.args.comment_share
        ):
            await self.comment(c)

    async def comment(self, c: Contact) -> None:
        """A comment right after a rating (the intake takes the next message as the rating's comment)."""
        if c.language == "ko":
            name = self.rng.choice(SURNAMES) + "".join(self.rng.choices(SYLLABLES, k=2))
            text = self.rng.choice(KO_COMMENTS)
        else:
            name = f"{self.rng.choice(EN_NAMES)} {self.rng.choice(EN_SURNAMES)}"
            text = self.rng.choice(EN_COMMENTS)
        phone = f"010-{self.rng.randrange(10000):04d}-{self.rng.randrange(10000):04d}"
        message = InboundMessage(
            channel=self.memory.name,
            sender=c.sender,
            text=text.format(name=name, phone=phone),
            provider_message_id=f"bench-{c.index}-comment",
            received_at=c.at,
        )
        try:
            await self.memory.inbound(message)
            await self.drain()
        except Exception as exc:
            self.errors.append(f"comment after contact {c.index}: {type(exc).__name__}: {exc}")

    def choose_follow_up(self, c: Contact) -> None:
        """A follow-up comes from someone who can send it now; else it stays a routine question."""
        pools = [("person", Kind.PERSON, self.answered), ("rating", Kind.RATING, self.resolved)]
        if c.planned is Kind.RATING:
            pools.reverse()
        for name, kind, pool in pools:
            recent = [who for who, (at, _) in pool.items() if c.at - at <= FOLLOW_UP_WINDOWS[name]]
            if recent:
                c.kind, c.sender = kind, self.rng.choice(recent)
                c.language = self.language[c.sender]
                if kind is Kind.PERSON:
                    c.text = self.rng.choice(PERSON_WORDS[c.language])
                else:
                    c.text = self.rng.choices("54321", weights=(40, 30, 15, 8, 7))[0]
                return
        c.kind = Kind.ROUTINE

    async def waiting(
        self, statuses: Collection[str], limit: int, *, before: datetime | None = None
    ) -> list[tuple[str, str]]:
        """(reference, language) of tickets in these states, earliest due first."""
        if limit <= 0:
            return []
        query = select(Ticket).where(col(Ticket.status).in_(list(statuses)))
        if before is not None:
            query = query.where(col(Ticket.created_at) < before)
        query = query.order_by(col(Ticket.due_at), col(Ticket.id)).limit(limit)
        async with self.bot.db.session() as session:
            return [(t.reference, t.language) for t in (await session.exec(query)).all()]

    def budget(self, what: str, per_hour: float) -> int:
        """This round's share of an hourly capacity; fractions carry over, idle time does not."""
        available = self.credit[what] + per_hour * TICK / timedelta(hours=1)
        self.credit[what] = available - int(available)
        return int(available)

    async def act(self, what: str, action: Awaitable[object]) -> bool:
        try:
            await action
        except (LookupError, ValueError) as exc:  # DeskError, TicketNotFound, InvalidTransition
            self.errors.append(f"{self.clock.now.astimezone(self.zone):%m-%d %H:%M} {what}: {exc}")
            return False
        return True

    async def staff_round(self) -> None:
        """The review queue first (same-day answers), then department work, earliest due first. Every
        action of a round happens at the round's instant."""
        now, desk = self.clock.now, self.bot.desk
        review = await self.waiting(
            [TicketStatus.REVIEW],
            self.budget("review", self.args.review_per_hour),
            before=now - REVIEW_MIN_AGE,
        )
        for reference, _ in review:
            if await self.act(f"review {reference}", desk.send_review(reference, staff=next(self.staff))):
                self.day(now).reviewed += 1
        for reference, language in await self.waiting(
            _TO_DO, self.budget("resolve", self.args.resolve_per_hour)
        ):
            staff = next(self.staff)
            words = STAFF_REPLY.get(language, STAFF_REPLY["en"])
            done = (
                await self.act(f"claim {reference}", desk.claim(reference, staff=staff))
                and await self.act(f"reply {reference}", desk.reply(reference, words, staff=staff))
                and await self.act(f"resolve {reference}", desk.resolve(reference, staff=staff))
            )
            if done:
                self.day(now).resolved += 1
                owner = self.owner.get(reference)
                if owner is not None and self.latest.get(owner) == reference:
                    self.resolved[owner] = (now, reference)
        await self.drain()

    async def sweep(self) -> None:
        result = await self.bot.sweeper.sweep_once()
        today = self.day(self.clock.now)
        today.reminded += result.reminded
        today.escalated += result.escalated
        today.closed += result.closed
        await self.drain()

    async def open_tickets(self) -> int:
        query = select(func.count()).select_from(Ticket).where(col(Ticket.status).in_(list(OPEN_STATUSES)))
        async with self.bot.db.session() as session:
            return (await session.exec(query)).one()


# --- what happened, from the store -------------------------------------------------------------


def is_answer(event: TicketEvent) -> bool:
    """An answer to the citizen: automatic or reviewed (answered), a staff reply, or a resolution."""
    if event.kind == "status":
        return event.to_status in (TicketStatus.ANSWERED, TicketStatus.RESOLVED)
    return event.kind in ("reply", "review_sent") and event.actor.startswith("staff:")


async def measure(sim: Simulation) -> dict[str, Any]:
    bot, zone, calendar = sim.bot, sim.zone, sim.calendar
    async with bot.db.session() as session:
        tickets = list((await session.exec(select(Ticket).order_by(col(Ticket.id)))).all())
        events = list((await session.exec(select(TicketEvent).order_by(col(TicketEvent.id)))).all())
        messages = list((await session.exec(select(Message).order_by(col(Message.id)))).all())
        outbox = list((await session.exec(select(Outbox))).all())
    trail: dict[int, list[TicketEvent]] = defaultdict(list)
    for event in events:
        trail[event.ticket_id].append(event)
    by_reference = {t.reference: t for t in tickets}
    by_id = {t.id: t for t in tickets}

    def local(at: datetime) -> str:
        return f"{at.astimezone(zone):%m-%d %H:%M}"

    # Every citizen message needs a delivered message to that citizen after it (ids are in commit order).
    delivered = {row.message_id for row in outbox if row.status == OutboxStatus.SENT}
    last_delivered: dict[int, int] = {}
    for m in messages:
        if m.direction == Direction.OUT and m.id in delivered:
            last_delivered[m.contact_id] = m.id or 0
    inbound = [m for m in messages if m.direction == Direction.IN]
    unreplied = [m for m in inbound if last_delivered.get(m.contact_id, -1) < (m.id or 0)]

    def status_events(ticket: Ticket, status: TicketStatus) -> list[TicketEvent]:
        return [e for e in trail[ticket.id or 0] if e.kind == "status" and e.to_status == status]

    auto = [t for t in tickets if any(e.actor == "bot" for e in status_events(t, TicketStatus.ANSWERED))]
    review = [t for t in tickets if status_events(t, TicketStatus.REVIEW)]
    forwarded = [t for t in tickets if status_events(t, TicketStatus.FORWARDED)]

    # Answered by the due time: the first staff answer against the due time as first set.
    with_due = on_time = never = 0
    for t in tickets:
        evs = trail[t.id or 0]
        first_due = next((e for e in evs if e.kind == "status" and "due_at" in e.detail), None)
        if first_due is None:
            continue
        with_due += 1
        due = datetime.fromisoformat(str(first_due.detail["due_at"]))
        answer = next(
            (e for e in evs if e.at >= first_due.at and e.actor.startswith("staff:") and is_answer(e)), None
        )
        never += answer is None
        on_time += answer is not None and answer.at <= due

    # Handling time of forwarded tickets: forwarded until resolved, in working hours.
    handling = []
    for t in forwarded:
        start = status_events(t, TicketStatus.FORWARDED)[0].at
        done = next((e.at for e in status_events(t, TicketStatus.RESOLVED) if e.at >= start), None)
        if done is not None:
            handling.append(calendar.working_seconds_between(start, done) / 3600)

    # Routine questions answered the same day: strictly (same date in the city) and by Seoul's rule.
    routine = [c for c in sim.plan if c.kind is Kind.ROUTINE and c.reference is not None]
    strict = by_rule = unanswered = 0
    for c in routine:
        ticket = by_reference[c.reference or ""]
        answer_at = next((e.at for e in trail[ticket.id or 0] if is_answer(e) and e.at >= c.at), None)
        if answer_at is None:
            unanswered += 1
            continue
        strict += answer_at.astimezone(zone).date() == c.at.astimezone(zone).date()
        by_rule += answer_at <= calendar.same_day_due(c.at)

    # A late notice counts once the citizen has it: the exact text, delivered to the ticket's owner.
    got = {(m.recipient, m.text) for m in sim.memory.sent}
    escalations = [e for e in events if e.kind == "escalated"]
    # What a late ticket was waiting for: the status it had when the sweep escalated it.
    late_in = Counter(
        next(x.to_status for x in reversed(trail[e.ticket_id]) if x.kind == "status" and x.at <= e.at)
        for e in escalations
    )
    notices = bot.lifecycle.notices
    late_sent = 0
    for e in escalations:
        t = by_id[e.ticket_id]
        new_due = datetime.fromisoformat(str(e.detail["new_due"]))
        said = notices.render("late", t.language, reference=t.reference, due=notices.due(new_due, t.language))
        late_sent += (sim.owner.get(t.reference, ""), said) in got

    ratings = [t.rating for t in tickets if t.rating is not None]
    return {
        "contacts": len(sim.plan),
        "contacts_sent": sum(d.contacts for d in sim.days.values()),
        "tickets": len(tickets),
        "citizen_messages": len(inbound),
        "no_reply": len(unreplied),
        "no_reply_at_once": sum(not c.replied_at_once for c in sim.plan),
        "routine": len(routine),
        "routine_same_day_strict": share(strict, len(routine)),
        "routine_same_day_rule": share(by_rule, len(routine)),
        "routine_unanswered": unanswered,
        "tickets_with_due": with_due,
        "answered_by_due": share(on_time, with_due),
        "never_answered_by_staff": never,
        "automatic": len(auto),
        "automatic_share": share(len(auto), len(tickets)),
        "review": len(review),
        "forwarded": len(forwarded),
        "escalations": len(escalations),
        "escalated_while": dict(late_in),
        "escalated_examples": [
            f"{by_id[e.ticket_id].reference} created {local(by_id[e.ticket_id].created_at)}"
            f" was due {local(datetime.fromisoformat(str(e.detail['was_due'])))}"
            for e in escalations[:5]
        ],
        "reminders": sum(e.kind == "reminder" for e in events),
        "late_notices_sent": late_sent,
        "handling_hours_mean": sum(handling) / len(handling) if handling else float("nan"),
        "handling_hours_p90": nearest_rank(handling, 90),
        "handling_resolved": len(handling),
        "ratings": len(ratings),
        "rating_mean": sum(ratings) / len(ratings) if ratings else float("nan"),
        "status_at_end": dict(Counter(t.status for t in tickets)),
        "outbox_at_end": dict(Counter(row.status for row in outbox)),
        "unreplied": [f"message {m.id} of contact {m.contact_id}: {m.text!r}" for m in unreplied[:5]],
    }


# --- running -----------------------------------------------------------------------------------


async def simulate(args: argparse.Namespace, url: str) -> tuple[Simulation, dict[str, Any], float]:
    config = load_config(ROOT / "config.yaml")
    config = config.model_copy(
        update={
            "store": config.store.model_copy(update={"url": url}),
            "knowledge": config.knowledge.model_copy(update={"reload_seconds": 0}),
        }
    )
    zone = config.router.zone
    clock = SimClock(datetime.combine(args.day, time(), zone).astimezone(UTC))
    memory = MemoryChannel()
    async with fresh_store(url, config.store) as db:
        bot = await bot_module.build(
            config, base_dir=ROOT, channels=[memory], webchat=False, db=db, clock=clock
        )
        try:
            if not bot.lifecycle.calendar.is_working_day(args.day):
                raise SystemExit(f"{args.day} is not a working day in {config.router.calendar.country}")
            base, _ = bot.knowledge.current
            faq: dict[str, list[str]] = {"ko": [], "en": []}
            for entry in base.entries:
                if entry.handoff == "auto":  # "always" entries are reports for a department
                    for language, questions in faq.items():
                        questions += entry.questions.get(language, [])
            rng = random.Random(args.seed)
            calendar = bot.lifecycle.calendar
            plan = []
            for offset in range(args.days):
                day = args.day + timedelta(days=offset)
                quiet = offset > 0 and not calendar.is_working_day(day)
                count = max(1, round(args.contacts * QUIET_DAY_SHARE)) if quiet else args.contacts
                citizens = min(args.citizens, count)
                plan += plan_contacts(rng, count=count, citizens=citizens, day=day, zone=zone, faq=faq)
            for index, planned in enumerate(plan):  # unique across days: the provider's message id
                planned.index = index
            await memory.start(bot.host)  # what bot.running() would do, without its loops
            sim = Simulation(bot, memory, clock, plan, args)
            started = wallclock.perf_counter()
            await sim.run()
            elapsed = wallclock.perf_counter() - started
            return sim, await measure(sim), elapsed
        finally:
            await memory.stop()
            await bot.db.close()


def workload(sim: Simulation) -> dict[str, Any]:
    def window(c: Contact) -> str:
        hour = c.at.astimezone(sim.zone).hour
        return "office hours" if 9 <= hour < 18 else "before 09:00" if hour < 9 else "after 18:00"

    plan = sim.plan
    return {
        "citizens": len({c.sender for c in plan}),
        "planned": {k.value: sum(c.planned is k for c in plan) for k in Kind},
        "sent": {k.value: sum(c.kind is k for c in plan) for k in Kind},
        "languages": dict(Counter(c.language for c in plan)),
        "arrivals": dict(Counter(window(c) for c in plan)),
        "outcomes": {
            kind.value: dict(Counter(c.outcome for c in plan if c.kind is kind).most_common())
            for kind in Kind
        },
    }


def report(sim: Simulation, work: dict[str, Any], r: dict[str, Any], elapsed: float) -> list[str]:
    """Print the results; return the problems (each one fails the run)."""
    args, zone = sim.args, sim.zone
    print(
        f"workload   {r['contacts']} contacts from {work['citizens']} citizens on {args.day:%a %Y-%m-%d} "
        f"({zone.key}), seed {args.seed}\n"
        f"           planned {work['planned']}\n"
        f"           sent    {work['sent']} (a follow-up nobody could send is another kind)\n"
        f"           {work['languages']}; {work['arrivals']}"
    )
    print(f"\n{'day':<14}" + "".join(f"{name.replace('_', ' '):>12}" for name in vars(Day())))
    for day, counts in sorted(sim.days.items()):
        print(f"{day:%a %Y-%m-%d}" + "".join(f"{n:>12}" for n in vars(counts).values()))
    print(
        f"stopped at {sim.ended.astimezone(zone):%a %Y-%m-%d %H:%M}; staff rounds and sweeps every 10 minutes"
    )

    print("\nwhat each contact did (its ticket's status right after intake)")
    for kind, outcomes in work["outcomes"].items():
        if outcomes:
            print(f"  {kind:<10} " + ", ".join(f"{name} {n}" for name, n in outcomes.items()))

    def pct(x: float) -> str:
        return f"{x:.1%}"

    lines = {
        "contacts": f"{r['contacts']} ({r['citizen_messages']} citizen messages stored)",
        "tickets": r["tickets"],
        "contacts with no reply": f"{r['no_reply']} ({r['no_reply_at_once']} not answered at once)",
        "routine same day": f"{pct(r['routine_same_day_strict'])} on the same calendar day, "
        f"{pct(r['routine_same_day_rule'])} by the cutoff rule ({r['routine']} routine questions, "
        f"{r['routine_unanswered']} never answered)",
        "answered by due time": f"{pct(r['answered_by_due'])} of {r['tickets_with_due']} tickets with a due "
        f"time ({r['never_answered_by_staff']} never answered)",
        "automatic answers": f"{r['automatic']} ({pct(r['automatic_share'])} of tickets)",
        "review": r["review"],
        "forwarded": r["forwarded"],
        "escalations": f"{r['escalations']} (ticket was {r['escalated_while'] or '-'})",
        "reminders": r["reminders"],
        "late notices sent": r["late_notices_sent"],
        "handling (working hours)": f"mean {r['handling_hours_mean']:.1f} h, "
        f"p90 {r['handling_hours_p90']:.1f} h (forwarded until resolved, {r['handling_resolved']} tickets)",
        "ratings": f"{r['ratings']}, mean {r['rating_mean']:.2f}",
        "tickets at the end": r["status_at_end"],
        "outbox at the end": r["outbox_at_end"],
        "simulation wall time": f"{elapsed:.1f} s",
    }
    print()
    for label, value in lines.items():
        print(f"{label:<25} {value}")
    for example in r["escalated_examples"]:
        print(f"  late: {example}")

    problems = []
    if r["no_reply"]:
        problems.append(f"{r['no_reply']} citizen messages without a reply: " + "; ".join(r["unreplied"]))
    if sim.errors:
        problems.append(f"{len(sim.errors)} errors: " + "; ".join(sim.errors[:5]))
    print("OK: every citizen message got a reply" if not problems else "FAILED:")
    for problem in problems:
        print(f"  {problem}")
    return problems


def main() -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--contacts", type=int, default=3000, help="citizen messages over the day")
    p.add_argument("--citizens", type=int, help="distinct citizens (default: 5/6 of the contacts)")
    p.add_argument("--seed", type=int, default=120)
    p.add_argument("--day", type=date.fromisoformat, default=date.fromisoformat(DEFAULT_DAY))
    p.add_argument("--review-per-hour", type=float, default=120.0, help="review items sent per hour")
    # 30/h: department work takes days and some of it runs late, as in a real city (at 60/h, 3000
    # contacts are cleared within two working days and only review items from just before 18:00 run late).
    p.add_argument("--resolve-per-hour", type=float, default=30.0, help="forwarded tickets resolved per hour")
    p.add_argument("--database-url", help="default: a fresh SQLite file in a temp dir")
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--days", type=int, default=1, help="consecutive days of contacts (default: 1)")
    p.add_argument("--db", type=Path, help="a new SQLite file to simulate into, kept afterwards")
    p.add_argument(
        "--comment-share", type=float, default=0.0, help="share of ratings followed by a comment (default: 0)"
    )
    args = p.parse_args()
    args.citizens = args.citizens or max(1, args.contacts * 5 // 6)
    if args.contacts < 1 or not 1 <= args.citizens <= args.contacts:
        p.error("--contacts must be positive and --citizens between 1 and --contacts")
    if min(args.review_per_hour, args.resolve_per_hour) <= 0:
        p.error("capacities must be positive")
    if args.days < 1 or not 0 <= args.comment_share <= 1:
        p.error("--days must be positive and --comment-share between 0 and 1")
    if args.db is not None and (args.database_url or args.db.exists()):
        p.error("--db takes a new SQLite file (not with --database-url, and not an existing file)")

    hours = load_config(ROOT / "config.yaml").router.calendar.hours
    per_round = TICK / timedelta(hours=1)
    with tempfile.TemporaryDirectory(prefix="lifecycle-bench-") as tmp:
        kept = f"sqlite+aiosqlite:///{args.db.resolve()}" if args.db else None
        url = args.database_url or kept or f"sqlite+aiosqlite:///{tmp}/intake.db"
        facts = {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),  # other work on the box skews wall time
            "database": make_url(url).get_backend_name()
            + ("" if args.database_url else f" ({args.db})" if args.db else " (fresh temp file)"),
        }
        for key, value in facts.items():
            print(f"{key:<10} {value}")
        review, resolve = args.review_per_hour, args.resolve_per_hour
        print(
            f"staff      review {review:g}/h ({review * per_round:g} a round), then resolve {resolve:g}/h "
            f"({resolve * per_round:g} a round: claim, reply, resolve), earliest due first;\n"
            "           rounds every 10 minutes in working hours only: "
            + ", ".join(f"{day} {span}" for day, span in hours.items())
            + ", not on public holidays"
        )
        sim, results, elapsed = asyncio.run(simulate(args, url))
    work = workload(sim)
    problems = report(sim, work, results, elapsed)
    if args.json:
        document = {
            "machine": facts,
            "args": {k: str(v) if isinstance(v, date | Path) else v for k, v in vars(args).items()},
            "workload": work,
            "days": {day.isoformat(): vars(counts) for day, counts in sorted(sim.days.items())},
            "results": results,
            "wall_seconds": round(elapsed, 2),
            "errors": sim.errors,
            "problems": problems,
        }
        args.json.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
