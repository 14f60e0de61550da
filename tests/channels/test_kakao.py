"""The KakaoTalk adapter against the fake Kakao: skill calls sent as Open Builder sends them (the
secret header, realistic payloads, one-time callback URLs), every answer checked against the v2.0
rules, status updates through the fake Event API. The router's side is a small scripted host that
sends its replies through the channel, as the dispatcher does; the whole bot is in
tests/bot/test_kakao_bot.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pydantic
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from channels.base import (
    Button,
    DeliveryReport,
    InboundMessage,
    OutboundMessage,
    PermanentSendError,
    Receipt,
    TransientSendError,
)
from channels.kakao import KakaoChannel, command_of
from channels.kakao_config import KakaoConfig
from tests.fakes.kakao import FakeKakao, labels_of, new_user_key

BOT = "5f1e2d3c4b5a697887766554"
KEY = "r" * 32
SECRET = "s3cret-skill-header-value"
HEADER = "X-City-Skill-Secret"
EVENT = "city_status_update"
CITIZEN = new_user_key()

Reply = Callable[[InboundMessage], list[OutboundMessage]]


def reply(message: InboundMessage, text: str, n: int = 1, **extra: Any) -> OutboundMessage:
    return OutboundMessage(
        channel="kakao",
        recipient=message.sender,
        text=text,
        idempotency_key=f"{message.provider_message_id}:{n}",
        **extra,
    )


@dataclass
class ScriptedHost:
    """The router's side: intake dedupes on the provider's id, takes `delay` (its own time) and hands
    back the replies it queued; `answered` records those the channel gave in its answer, and
    `dispatch_unanswered` sends the rest through the channel, as the dispatcher does after the window."""

    channel: KakaoChannel | None = None
    answer: Reply = lambda m: [reply(m, f"echo: {m.text}")]
    delay: float = 0.05
    messages: list[InboundMessage] = field(default_factory=list)
    memory: dict[str, str] = field(default_factory=dict)
    queued: list[OutboundMessage] = field(default_factory=list)
    given: list[tuple[str, str]] = field(default_factory=list)  # (key, route) the channel answered with

    async def intake(self, message: InboundMessage) -> Receipt:
        known = next((m for m in self.messages if m.provider_message_id == message.provider_message_id), None)
        if known is not None:
            return Receipt(duplicate=True, reference="2026-000042")
        self.messages.append(message)
        await asyncio.sleep(self.delay)
        replies = tuple(self.answer(message))
        self.queued.extend(replies)
        return Receipt(duplicate=False, reference="2026-000042", replies=replies)

    async def answered(self, channel: str, keys: Sequence[str], *, route: str = "answer") -> None:
        assert channel == "kakao"
        self.given.extend((key, route) for key in keys)

    async def dispatch_unanswered(self) -> None:
        assert self.channel is not None
        given = {key for key, _ in self.given}
        for message in self.queued:
            if message.idempotency_key not in given:
                await self.channel.send(message)

    async def delivery_report(self, report: DeliveryReport) -> bool:
        return False

    async def recall(self, channel: str, name: str) -> str | None:
        assert len(name) <= 255, name  # the store's limit
        return self.memory.get(f"{channel}/{name}")

    async def remember(self, channel: str, name: str, value: str) -> None:
        assert len(name) <= 255 and name.startswith("citizen:"), name  # about one citizen: purged
        self.memory[f"{channel}/{name}"] = value

    async def lead(self, job: str) -> bool:
        return True


@dataclass
class Setup:
    channel: KakaoChannel
    client: TestClient[Any, Any]
    fake: FakeKakao
    host: ScriptedHost

    @property
    def url(self) -> str:
        return str(self.client.make_url("/webhooks/kakao"))

    async def say(self, text: str, *, user: str = CITIZEN, **kwargs: Any) -> Any:
        return await self.fake.call_skill(self.url, self.fake.payload(text, user=user, **kwargs))


def kakao_config(fake: FakeKakao, **changes: Any) -> KakaoConfig:
    values: dict[str, Any] = {
        "enabled": True,
        "secret_header": HEADER,
        "skill_secret": SECRET,
        "bot_id": BOT,
        "rest_api_key": KEY,
        "event_name": EVENT,
        "api_base_url": fake.base_url,
        "answer_within_seconds": 1.0,
        "timeout_seconds": 2.0,
    }
    return KakaoConfig(**(values | changes))


async def _setup(**changes: Any) -> AsyncIterator[Setup]:
    async with FakeKakao(
        bot_id=BOT, rest_api_key=KEY, secret_header=HEADER, skill_secret=SECRET, event=EVENT
    ) as fake:
        channel = KakaoChannel(kakao_config(fake, **changes), public_url="https://city.example")
        app = web.Application()
        app.add_routes(channel.routes())
        host = ScriptedHost(channel)
        async with TestClient(TestServer(app)) as client:
            await channel.start(host)
            try:
                yield Setup(channel, client, fake, host)
            finally:
                await channel.stop()
                await channel.stop()  # twice is allowed
        assert fake.violations == []


@pytest.fixture
async def kakao(request: pytest.FixtureRequest) -> AsyncIterator[Setup]:
    async for setup in _setup(**getattr(request, "param", {})):  # parametrize indirect: config changes
        yield setup


def outbound(text: str, key: str = "out-1", **extra: Any) -> OutboundMessage:
    return OutboundMessage(channel="kakao", recipient=CITIZEN, text=text, idempotency_key=key, **extra)


# --- authentication and bad input -------------------------------------------------------------------


@pytest.mark.parametrize("secret", ["", "not-the-secret-value", SECRET + "x"])
async def test_a_request_without_the_secret_is_refused(kakao: Setup, secret: str) -> None:
    answer = await kakao.fake.call_skill(
        kakao.url, kakao.fake.payload("소파 버리는 방법", user=CITIZEN), secret=secret
    )
    assert answer.status == 403
    assert kakao.host.messages == []


async def test_another_bots_request_is_refused(kakao: Setup) -> None:
    payload = kakao.fake.payload("소파 버리는 방법", user=CITIZEN, bot_id="another-bot-id")
    assert (await kakao.fake.call_skill(kakao.url, payload)).status == 403
    assert kakao.host.messages == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "not JSON"),
        (b"[]", "the body is missing or not an object"),
        (json.dumps({"bot": {"id": BOT}, "userRequest": {"utterance": "hi"}}).encode(), "userRequest.user"),
        (
            json.dumps({"bot": {"id": BOT}, "userRequest": {"user": {"id": ""}}}).encode(),
            "userRequest.user.id",
        ),
        (json.dumps({"userRequest": {"user": {"id": "u"}, "utterance": "hi"}}).encode(), "bot"),
    ],
)
async def test_a_body_that_is_no_skill_request_gets_400_with_the_reason(
    kakao: Setup, body: bytes, reason: str
) -> None:
    answer = await kakao.fake.call_skill(kakao.url, body)
    assert answer.status == 400 and reason in answer.body["error"]
    assert kakao.host.messages == []


def test_the_config_fails_fast() -> None:
    with pytest.raises(pydantic.ValidationError, match="skill_secret"):
        KakaoConfig(enabled=True, bot_id=BOT, skill_secret="short", event_notices=[])
    with pytest.raises(pydantic.ValidationError, match="rest_api_key and event_name"):
        KakaoConfig(enabled=True, bot_id=BOT, skill_secret=SECRET)
    with pytest.raises(pydantic.ValidationError, match="header name"):
        KakaoConfig(
            enabled=True, bot_id=BOT, skill_secret=SECRET, event_notices=[], secret_header="Authorization"
        )


# --- answering in the skill response -----------------------------------------------------------------


async def test_an_utterance_is_answered_in_the_response_within_the_deadline(kakao: Setup) -> None:
    kakao.host.answer = lambda m: [reply(m, "첫 답변", 1), reply(m, "두 번째 답변", 2)]
    answer = await kakao.say("가로등이 고장났어요", lang="kr")
    assert answer.status == 200 and answer.texts == ["첫 답변", "두 번째 답변"]
    assert answer.seconds < kakao.channel.config.answer_within_seconds + 0.5
    [message] = kakao.host.messages
    assert (message.channel, message.sender, message.text, message.language_hint) == (
        "kakao",
        CITIZEN,
        "가로등이 고장났어요",
        "ko",
    )
    assert message.raw is not None and message.raw["bot"]["id"] == BOT
    assert message.answer_window_seconds == 5.0  # Kakao waits five seconds for this answer
    assert kakao.fake.events == []  # nothing paid for
    # Recorded as given, so the dispatcher does not send them again.
    assert kakao.host.given == [(f"{message.provider_message_id}:{n}", "answer") for n in (1, 2)]


async def test_a_long_text_is_split_within_kakaos_limits_and_nothing_is_lost(kakao: Setup) -> None:
    long = " ".join(f"문장{n}입니다." for n in range(500))  # about 4,000 characters
    kakao.host.answer = lambda m: [reply(m, long, 1), reply(m, "끝", 2)]
    answer = await kakao.say("긴 답변")
    assert len(answer.texts) == 3 and all(len(t) <= 1000 for t in answer.texts)  # the fake checked the rest
    shown = " ".join(answer.texts).split()
    # What did not fit in three bubbles is shown first at the next answer.
    kakao.host.answer = lambda m: [reply(m, "다음", 1)]
    later = await kakao.say("또")
    shown += " ".join(later.texts[:-1]).split()
    assert shown == [*long.split(), "끝"] and later.texts[-1] == "다음"


async def test_buttons_become_quick_replies(kakao: Setup) -> None:
    rating = tuple(Button(str(n), str(n)) for n in range(1, 6))
    kakao.host.answer = lambda m: [reply(m, "처리했습니다. 만족도를 1-5로 알려 주세요.", buttons=rating)]
    answer = await kakao.say("어떻게 됐나요")
    assert labels_of(answer.body) == [(str(n), str(n)) for n in range(1, 6)]


async def test_an_faq_answer_offers_a_person(kakao: Setup) -> None:
    kakao.host.answer = lambda m: [reply(m, "대형 폐기물은 ...", notice="answer")]
    answer = await kakao.say("소파 버리는 방법")
    assert labels_of(answer.body) == [("상담원 연결", "0")]


async def test_a_stop_word_is_a_stop_command(kakao: Setup) -> None:
    await kakao.say(" 수신거부 ")
    assert [m.command for m in kakao.host.messages] == ["stop"]
    assert command_of("가로등", kakao.channel.config) is None
    assert command_of("수신 동의", kakao.channel.config) == "unstop"


# --- too slow for the response -----------------------------------------------------------------------


@pytest.mark.parametrize("kakao", [{"answer_within_seconds": 0.3}], indirect=True)
async def test_a_late_answer_goes_to_the_callback_url_once(kakao: Setup) -> None:
    kakao.host.delay = 0.6
    kakao.host.answer = lambda m: [reply(m, "늦은 답변", 1), reply(m, "접수번호 안내", 2)]
    payload = kakao.fake.payload("가로등이 고장났어요", user=CITIZEN, callback=True)
    answer = await kakao.fake.call_skill(kakao.url, payload)
    assert answer.use_callback and answer.body["data"]["text"] == kakao.channel.config.pending_text
    await kakao.fake.wait_for(lambda: kakao.fake.callback_posts(payload))
    [posted] = kakao.fake.callback_posts(payload)
    assert [o["simpleText"]["text"] for o in posted["template"]["outputs"]] == ["늦은 답변", "접수번호 안내"]
    # A later message has no callback any more: it is pushed (a staff reply) as usual.
    result = await kakao.channel.send(outbound("담당자 답변입니다.", notice="staff_reply"))
    assert [e.text for e in kakao.fake.events] == ["담당자 답변입니다."] and result.route == "event"
    assert len(kakao.fake.callback_posts(payload)) == 1
    [message] = kakao.host.messages
    assert message.answer_window_seconds == 60.0  # the callback URL's minute, and a margin
    assert [route for _, route in kakao.host.given] == ["callback", "callback"]


@pytest.mark.parametrize("kakao", [{"answer_within_seconds": 0.3}], indirect=True)
async def test_a_callback_that_fails_leaves_the_replies_to_the_dispatcher(kakao: Setup) -> None:
    kakao.host.delay = 0.6
    kakao.host.answer = lambda m: [reply(m, "접수번호 안내", 1, notice="received")]
    kakao.fake.fail_next(1, status=500, endpoint="callback")
    payload = kakao.fake.payload("가로등이 고장났어요", user=CITIZEN, callback=True)
    assert (await kakao.fake.call_skill(kakao.url, payload)).use_callback
    await kakao.fake.wait_for(lambda: kakao.fake.of("callback"))
    await asyncio.sleep(0.1)
    assert kakao.host.given == []
    await kakao.host.dispatch_unanswered()  # "received" is not pushed: held for the next answer
    assert kakao.fake.events == []
    kakao.host.answer = lambda m: [reply(m, f"echo: {m.text}")]
    assert (await kakao.say("안녕하세요")).texts == ["접수번호 안내", "echo: 안녕하세요"]


@pytest.mark.parametrize("kakao", [{"answer_within_seconds": 0.3}], indirect=True)
async def test_without_a_callback_a_slow_intake_is_still_answered_and_updates_go_by_the_event_api(
    kakao: Setup,
) -> None:
    kakao.host.delay = 0.6  # slower than answer_within_seconds, within Kakao's five seconds
    kakao.host.answer = lambda m: [reply(m, "접수했습니다.", notice="received")]
    answer = await kakao.say("가로등이 고장났어요")
    assert answer.texts == ["접수했습니다."] and len(kakao.host.given) == 1
    result = await kakao.channel.send(outbound("담당자가 답했습니다.", notice="staff_reply"))
    [event] = kakao.fake.events
    assert (event.name, event.text, event.users) == (
        EVENT,
        "담당자가 답했습니다.",
        [{"type": "botUserKey", "id": CITIZEN}],
    )
    assert result.route == "event" and kakao.channel.send_cost(outbound("x", notice="staff_reply")) == 1


async def test_a_notice_that_is_not_pushed_is_shown_at_the_next_utterance(kakao: Setup) -> None:
    result = await kakao.channel.send(
        outbound("접수번호 2026-000042: 담당자가 확인 중입니다.", notice="claimed")
    )
    assert result.route == "held" and kakao.fake.events == []  # not paid for
    assert kakao.channel.send_cost(outbound("x", notice="claimed")) == 0  # nor counted against the limit
    kakao.host.answer = lambda m: [reply(m, "답변")]
    answer = await kakao.say("안녕하세요")
    assert answer.texts == ["접수번호 2026-000042: 담당자가 확인 중입니다.", "답변"]
    again = await kakao.say("또 안녕하세요")
    assert again.texts == ["답변"]  # shown once


# --- exactly once ------------------------------------------------------------------------------------


async def test_kakaos_retry_within_the_window_is_taken_in_once(kakao: Setup) -> None:
    first = await kakao.say("가로등이 고장났어요")
    retry = await kakao.say("가로등이 고장났어요")
    assert len(kakao.host.messages) == 1
    assert first.texts == ["echo: 가로등이 고장났어요"]
    assert retry.texts == [kakao.channel.config.duplicate_text.format(reference="2026-000042")]


async def test_the_retry_is_known_to_another_instance(kakao: Setup) -> None:
    await kakao.say("가로등이 고장났어요")
    other = KakaoChannel(kakao.channel.config, public_url="https://city.example")  # behind the same balancer
    await other.start(kakao.host)
    try:
        app = web.Application()
        app.add_routes(other.routes())
        async with TestClient(TestServer(app)) as client:
            payload = kakao.fake.payload("가로등이 고장났어요", user=CITIZEN)
            answer = await kakao.fake.call_skill(str(client.make_url("/webhooks/kakao")), payload)
    finally:
        await other.stop()
    assert answer.status == 200 and len(kakao.host.messages) == 1


@pytest.mark.parametrize("kakao", [{"retry_window_seconds": 0.2}], indirect=True)
async def test_the_same_words_after_the_window_or_in_another_block_are_new_messages(kakao: Setup) -> None:
    await kakao.say("네")
    await kakao.say("네", block_id="another-block")
    await asyncio.sleep(0.3)
    await kakao.say("네")
    assert len({m.provider_message_id for m in kakao.host.messages}) == 3


# --- the Event API -----------------------------------------------------------------------------------


async def test_a_long_update_is_pushed_in_parts_and_a_retry_sends_only_the_rest(kakao: Setup) -> None:
    long = "\n\n".join("가" * 900 for _ in range(3))
    kakao.fake.fail_next(1, status=503, endpoint="talk", after=1)
    message = outbound(long, notice="staff_reply")
    with pytest.raises(TransientSendError):
        await kakao.channel.send(message)
    await kakao.channel.send(message)
    assert [len(e.text) for e in kakao.fake.events] == [900, 900, 900]
    assert kakao.channel.events.calls == 4  # each call counted, the failed one too


@pytest.mark.parametrize(
    ("status", "error", "kind", "words"),
    [
        (401, "", TransientSendError, "401"),
        (403, "app not allowed", TransientSendError, "403"),
        (429, "", TransientSendError, "429"),
        (503, "", TransientSendError, "503"),
        (400, "invalid event data", PermanentSendError, "invalid event data"),
    ],
)
async def test_event_api_errors_are_mapped(
    kakao: Setup, status: int, error: str, kind: type, words: str
) -> None:
    kakao.fake.fail_next(1, status=status, endpoint="talk", error=error)
    with pytest.raises(kind, match=words) as raised:
        await kakao.channel.send(outbound("업데이트", notice="resolved"))
    if status in (429, 503):
        assert raised.value.retry_after == 1.0


async def test_a_citizen_who_blocked_the_channel_is_a_permanent_failure(kakao: Setup) -> None:
    kakao.fake.blocked.add(CITIZEN)
    with pytest.raises(PermanentSendError, match="blocked the channel"):
        await kakao.channel.send(outbound("처리되었습니다.", notice="resolved"))


async def test_a_wrong_rest_api_key_keeps_the_message_for_later(kakao: Setup) -> None:
    kakao.channel.events.config = kakao.channel.config.model_copy(update={"rest_api_key": "wrong"})
    with pytest.raises(TransientSendError, match="401"):
        await kakao.channel.send(outbound("처리되었습니다.", notice="resolved"))


async def test_an_unreachable_event_api_is_transient(kakao: Setup) -> None:
    kakao.fake.dropping = True
    with pytest.raises(TransientSendError, match="could not be reached"):
        await kakao.channel.send(outbound("처리되었습니다.", notice="resolved"))
