"""The `channels.kakao` section: a KakaoTalk channel's chatbot (a Kakao i Open Builder skill)."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, model_validator

from channels.settings import RateLimitConfig

_HEADER = re.compile(r"^[A-Za-z0-9-]{1,64}$")
# Headers Open Builder or a proxy sets itself: a secret in one of them would be overwritten or logged.
_RESERVED_HEADERS = {"host", "content-type", "content-length", "authorization", "user-agent", "accept"}


class QuickReplyConfig(BaseModel):
    """A quick reply shown under an answer: `label` on the button, `value` sent as the citizen's words."""

    model_config = ConfigDict(extra="forbid")

    label: str = Field(min_length=1)
    value: str = Field(min_length=1)


class KakaoConfig(BaseModel):
    """The `channels.kakao` section."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    # Kakao signs nothing: the skill is set up in Open Builder to send this header with this value.
    secret_header: str = "X-Skill-Secret"
    skill_secret: str = ""
    bot_id: str = ""  # the Open Builder bot's id: a skill request for another bot is refused
    rest_api_key: str = ""  # the app's REST API key, for the Event API (status updates)
    event_name: str = ""  # the event, made in Open Builder, whose block shows a status update
    api_base_url: str = "https://bot-api.kakao.com"
    # The Event API is charged per message: only these notices (router/notices.yaml, "answer" for an
    # FAQ answer staff sent later, "reply" for a plain reply) are pushed; the rest are held and shown
    # at the top of the citizen's next answer.
    event_notices: list[str] = Field(
        default_factory=lambda: ["staff_reply", "answer", "resolved", "late", "reopened"]
    )
    rate_limit: RateLimitConfig = Field(default_factory=lambda: RateLimitConfig(per_second=10.0))
    # The skill must answer within 5 seconds. When the message is not taken in by this time and Kakao
    # gave a callback URL, the skill answers `useCallback` and POSTs the answer there once it is.
    answer_within_seconds: float = Field(default=3.5, gt=0, lt=5)
    # A callback URL is good for one minute: what is ready within this many seconds goes there.
    callback_within_seconds: float = Field(default=55.0, gt=0, lt=60)
    # Kakao retries a skill call that timed out: the same utterance from the same user in the same
    # block within this many seconds is that retry.
    retry_window_seconds: float = Field(default=10.0, gt=0, le=300)
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # Said at once when the answer is not ready in time (Kakao shows nothing else meanwhile).
    pending_text: str = "접수 중입니다. 곧 답변드리겠습니다. / Received; we will reply shortly."
    # Said through the callback when the message could not be stored after all (the citizen resends).
    failed_text: str = (
        "죄송합니다. 메시지를 받지 못했습니다. 다시 보내 주세요. / Sorry, your message did not reach us; "
        "please send it again."
    )
    # The answer to Kakao's retry of a message already taken in; {reference} is its ticket.
    duplicate_text: str = (
        "이미 접수되었습니다 (접수번호 {reference}). / Already received (ticket {reference})."
    )
    # Under an automatic FAQ answer: the way to a person (the router takes "0" in every language).
    answer_quick_replies: list[QuickReplyConfig] = Field(
        default_factory=lambda: [QuickReplyConfig(label="상담원 연결", value="0")]
    )
    # Whole messages that mean "stop sending me status updates" (command "stop"; "unstop" words undo it).
    stop_words: list[str] = Field(default_factory=lambda: ["수신거부", "수신 거부", "STOP"])
    unstop_words: list[str] = Field(default_factory=lambda: ["수신동의", "수신 동의", "START"])

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> KakaoConfig:
        if self.enabled:
            if not _HEADER.match(self.secret_header) or self.secret_header.lower() in _RESERVED_HEADERS:
                raise ValueError("secret_header must be a header name of its own: letters, digits and -")
            if len(self.skill_secret) < 16:
                raise ValueError("an enabled Kakao channel needs skill_secret, at least 16 characters")
            if not self.bot_id:
                raise ValueError("an enabled Kakao channel needs bot_id (Open Builder, the bot's settings)")
            if self.event_notices and not (self.rest_api_key and self.event_name):
                raise ValueError("event_notices need rest_api_key and event_name (or set event_notices: [])")
            if "{reference}" not in self.duplicate_text:
                raise ValueError("duplicate_text must name the ticket with {reference}")
        return self
