"""The chatbot Event API: the bot speaks first (a staff reply, a resolution, a late notice).

`POST {api_base_url}/v2/bots/{bot_id}/talk` with `Authorization: KakaoAK {REST API key}` and
`{"event": {"name": ..., "data": {"text": ...}}, "user": [{"type": "botUserKey", "id": ...}]}`
(at most 100 users a call; we send one). Kakao answers `{"taskId", "status": "SUCCESS" | "FAIL",
"message", "timestamp"}`; the event's block in Open Builder shows `{{#current.event.data.text}}`.
Each message is charged (15 KRW + VAT at the time of writing), so every call is counted.

Not verified against Kakao (its reference could not be read in full here): the error bodies and
how a citizen who blocked the channel is reported. A FAIL, or a 4xx whose message says the user is
blocked, unknown or not a friend, is taken as permanent; see README, "KakaoTalk".
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

import aiohttp

from channels.base import PermanentSendError, SendError, TransientSendError
from channels.kakao_config import KakaoConfig
from channels.responses import retry_after

log = logging.getLogger("channels.kakao")

USER_TYPE = "botUserKey"  # what userRequest.user.id is
# Words of Kakao's answer that mean this citizen cannot get the channel's messages (Korean and English).
_BLOCKED = (
    "block",
    "차단",
    "not a friend",
    "not friend",
    "unknown user",
    "user not found",
    "invalid user",
    "존재하지 않는",
)


def _message(body: Any) -> str:
    if isinstance(body, dict):
        for key in ("message", "msg", "error", "status"):
            if isinstance(body.get(key), str) and body[key]:
                return str(body[key])
    return str(body)[:300]


def _blocked(message: str) -> bool:
    lowered = message.lower()
    return any(word in lowered for word in _BLOCKED)


class EventApi:
    """One Event API call per `push`; `calls` counts the calls made (each may be charged)."""

    def __init__(self, config: KakaoConfig) -> None:
        self.config = config
        self.calls = 0
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"{self.config.api_base_url.rstrip('/')}/v2/bots/{quote(self.config.bot_id, safe='!')}/talk"

    async def start(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.config.timeout_seconds)
            )

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def push(self, user_id: str, text: str) -> str:
        """Show `text` to the citizen through the configured event; Kakao's task id, or a SendError."""
        session = self._session
        if session is None:
            raise TransientSendError("the Kakao channel is not running")
        body = {
            "event": {"name": self.config.event_name, "data": {"text": text}},
            "user": [{"type": USER_TYPE, "id": user_id}],
        }
        headers = {"Authorization": f"KakaoAK {self.config.rest_api_key}"}
        self.calls += 1
        try:
            async with session.post(self.url, json=body, headers=headers) as response:
                try:
                    answer: Any = await response.json(content_type=None)
                except ValueError:
                    answer = (await response.text())[:300]
                status, wait = response.status, retry_after(response.headers)
        except TimeoutError as exc:
            raise TransientSendError(
                f"the Event API did not answer within {self.config.timeout_seconds}s"
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise TransientSendError(
                f"the Event API could not be reached: {type(exc).__name__}: {exc}"
            ) from exc
        if status >= 300:
            raise _error(status, _message(answer), wait)
        if not isinstance(answer, dict) or answer.get("status") != "SUCCESS" or not answer.get("taskId"):
            message = _message(answer)
            if _blocked(message):
                raise PermanentSendError(f"the citizen blocked the channel or left it: {message}")
            raise PermanentSendError(f"the Event API refused the message: {message}")
        return str(answer["taskId"])


def _error(status: int, message: str, retry_after: float | None) -> SendError:
    text = f"Event API {status}: {message}"
    if status == 429 or status >= 500:
        return TransientSendError(text, retry_after=retry_after)
    if status != 401 and _blocked(message):
        return PermanentSendError(f"the citizen blocked the channel or left it: {text}")
    if status in (401, 403):
        # A wrong or revoked REST API key (or the event not allowed for this app): every push fails
        # until an operator fixes it, so keep the messages rather than drop each at once.
        log.error(
            "kakao: the Event API refused the REST API key; check KAKAO_REST_API_KEY and bot_id (%s)", message
        )
        return TransientSendError(text, retry_after=retry_after)
    return PermanentSendError(text)
