"""The Kakao i Open Builder skill protocol, without any I/O: read a skill request, write a v2.0
skill response within Kakao's limits.

A request (kakaobusiness.gitbook.io, "스킬 개발 가이드 > 응답 타입별 JSON 포맷") is JSON with
`intent` (the block matched), `userRequest` (`utterance`, `lang`, `timezone`, `block`, `params`,
`user` with `id` = botUserKey and `properties`, and `callbackUrl` when the block has callbacks on),
`bot` (`id`, `name`) and `action` (`id`, `name`, `params`, `detailParams`, `clientExtra`). It carries
no id of its own and no signature.

A response is `{"version": "2.0", "template": {"outputs": [...], "quickReplies": [...]}}`: one to
three outputs, a simpleText of at most 1,000 characters, at most ten quick replies. A block with
callbacks may be answered `{"version": "2.0", "useCallback": true, "data": {"text": ...}}` at once and
the final response POSTed to the callback URL (once, within a minute).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from channels.base import BadRequest, Button
from channels.splitting import split_text

VERSION = "2.0"
MAX_OUTPUTS = 3
MAX_TEXT = 1000  # characters in one simpleText
MAX_QUICK_REPLIES = 10
MAX_LABEL = 14  # characters Kakao shows on a quick reply before cutting it
# Kakao's `lang` is a language code, except the Korean that older payloads send as "kr".
_LANGUAGES = {"kr": "ko"}


@dataclass(frozen=True)
class SkillRequest:
    """What the adapter needs of a skill request."""

    bot_id: str
    user_id: str  # botUserKey: the citizen's address on this channel, and the Event API's key
    utterance: str
    block_id: str  # the block that matched (userRequest.block.id, else intent.id)
    language: str | None
    callback_url: str | None
    payload: dict[str, Any]


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest(f"{where} is missing or not an object")
    return value


def _text(value: Any, where: str, *, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise BadRequest(f"{where} is missing or not a string")
    return value


def parse_request(body: bytes) -> SkillRequest:
    """The skill request in `body`; `BadRequest` naming the field for anything that is not one."""
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(f"the body is not JSON: {exc}") from exc
    payload = _object(payload, "the body")
    request = _object(payload.get("userRequest"), "userRequest")
    user = _object(request.get("user"), "userRequest.user")
    bot = _object(payload.get("bot"), "bot")
    block: dict[str, Any] = request["block"] if isinstance(request.get("block"), dict) else {}
    intent: dict[str, Any] = payload["intent"] if isinstance(payload.get("intent"), dict) else {}
    callback = request.get("callbackUrl")
    if callback is not None and not (
        isinstance(callback, str) and callback.startswith(("https://", "http://"))
    ):
        raise BadRequest("userRequest.callbackUrl is not a URL")
    lang = request.get("lang")
    language = _LANGUAGES.get(lang, lang) if isinstance(lang, str) and lang else None
    return SkillRequest(
        bot_id=_text(bot.get("id"), "bot.id"),
        user_id=_text(user.get("id"), "userRequest.user.id"),
        utterance=_text(request.get("utterance"), "userRequest.utterance", required=False),
        block_id=str(block.get("id") or intent.get("id") or ""),
        language=language,
        callback_url=callback or None,
        payload=payload,
    )


# --- responses


def pack(
    texts: Sequence[str], *, limit: int = MAX_TEXT, outputs: int = MAX_OUTPUTS
) -> tuple[list[str], list[str]]:
    """`texts` as at most `outputs` bubbles of at most `limit` characters: one bubble a text when
    they fit, neighbours joined when they do not; what still does not fit is returned second (the
    caller keeps it for later: nothing is cut)."""
    pieces = [piece for text in texts for piece in split_text(text, limit)]
    bubbles: list[str] = []
    for index, piece in enumerate(pieces):
        if len(pieces) - index <= outputs - len(bubbles):  # one bubble each for the rest
            bubbles.append(piece)
        elif bubbles and len(joined := f"{bubbles[-1]}\n\n{piece}") <= limit:
            bubbles[-1] = joined
        elif len(bubbles) < outputs:
            bubbles.append(piece)
        else:
            return bubbles, pieces[index:]
    return bubbles, []


def label(text: str) -> str:
    """A quick reply's label within what Kakao shows."""
    text = " ".join(text.split())
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


def quick_replies(buttons: Sequence[Button]) -> list[dict[str, str]]:
    """Buttons as quick replies that send their value as the citizen's words (the first ten, once each)."""
    seen: dict[str, dict[str, str]] = {}
    for button in buttons:
        if button.value and button.value not in seen:
            seen[button.value] = {
                "action": "message",
                "label": label(button.label or button.value),
                "messageText": button.value,
            }
    return list(seen.values())[:MAX_QUICK_REPLIES]


def response(texts: Sequence[str], buttons: Sequence[Button] = ()) -> tuple[dict[str, Any], list[str]]:
    """A v2.0 response showing `texts` with `buttons` as quick replies, and what did not fit."""
    bubbles, rest = pack([t for t in texts if t.strip()])
    template: dict[str, Any] = {"outputs": [{"simpleText": {"text": b}} for b in bubbles]}
    if not bubbles:  # Kakao wants at least one output
        template["outputs"] = [{"simpleText": {"text": "…"}}]
    if replies := quick_replies(buttons):
        template["quickReplies"] = replies
    return {"version": VERSION, "template": template}, rest


def callback_ack(text: str) -> dict[str, Any]:
    """The immediate answer that keeps the callback URL open; `data.text` is what the block's
    callback message may show meanwhile ({{#webhook.text}})."""
    return {"version": VERSION, "useCallback": True, "data": {"text": text[:MAX_TEXT]}}
