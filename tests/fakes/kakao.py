"""A fake Kakao on the shared `RecordingServer` (server.py): it plays Open Builder calling our skill
(realistic skill payloads, with or without the secret header and a callback URL), checks every skill
answer against the v2.0 rules, serves one-time callback URLs, and plays the chatbot Event API
(`POST /v2/bots/{botId}/talk`), recording each call and refusing what Kakao would refuse.

Every breach of Kakao's rules (an answer, a callback body, an Event API request) is listed in
`violations`; a test ends with `assert fake.violations == []`. The rules are written here apart from
channels/kakao_skill.py on purpose: the fake must not share a bug with the adapter.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from tests.fakes.server import FAILURE, RecordingServer

SKILL_VERSION = "2.0"
MAX_OUTPUTS, MAX_SIMPLE_TEXT = 3, 1000  # template.outputs; characters of a simpleText
MAX_QUICK_REPLIES, MAX_LABEL = 10, 14
MAX_EVENT_USERS = 100  # users in one Event API call
USER_TYPES = ("botUserKey", "appUserId", "plusfriendUserKey")


def new_user_key() -> str:
    """A botUserKey (they are long opaque strings)."""
    return secrets.token_hex(33)


def skill_problems(body: Any, *, callback: bool = False) -> list[str]:
    """Why `body` is not a skill answer Kakao takes ([] if it is). `callback`: a body POSTed to a
    callback URL, which must be a full answer."""
    if not isinstance(body, dict):
        return ["the answer is not a JSON object"]
    found = [] if body.get("version") == SKILL_VERSION else [f"version {body.get('version')!r} is not 2.0"]
    if body.get("useCallback") is not None:
        if callback:
            return [*found, "a callback body must be a full answer, not useCallback"]
        if body["useCallback"] is not True or "template" in body:
            found.append("a useCallback answer is {version, useCallback: true, data}")
        data = body.get("data", {})
        if not isinstance(data, dict) or not isinstance(data.get("text", ""), str):
            found.append("useCallback data must be an object whose text is a string")
        return found
    template = body.get("template")
    if not isinstance(template, dict):
        return [*found, "no template"]
    outputs = template.get("outputs")
    if not isinstance(outputs, list) or not 1 <= len(outputs) <= MAX_OUTPUTS:
        found.append(f"outputs must hold 1 to {MAX_OUTPUTS} components, not {outputs!r:.80}")
    for n, output in enumerate(outputs if isinstance(outputs, list) else []):
        simple = output.get("simpleText") if isinstance(output, dict) else None
        text = simple.get("text") if isinstance(simple, dict) else None
        if not isinstance(text, str) or not text.strip():
            found.append(f"output {n} is not a simpleText with a text")
        elif len(text) > MAX_SIMPLE_TEXT:
            found.append(f"output {n}: a simpleText of {len(text)} characters (at most {MAX_SIMPLE_TEXT})")
    replies = template.get("quickReplies", [])
    if not isinstance(replies, list) or len(replies) > MAX_QUICK_REPLIES:
        found.append(f"quickReplies must be a list of at most {MAX_QUICK_REPLIES}")
        replies = []
    for n, reply in enumerate(replies):
        if not isinstance(reply, dict) or reply.get("action") not in ("message", "block"):
            found.append(f"quick reply {n} has no action message or block")
            continue
        if reply["action"] == "message" and not reply.get("messageText"):
            found.append(f"quick reply {n}: a message action needs messageText")
        name = reply.get("label")
        if not isinstance(name, str) or not name or len(name) > MAX_LABEL:
            found.append(f"quick reply {n}: label {name!r} is not 1 to {MAX_LABEL} characters")
    return found


def texts_of(answer: dict[str, Any]) -> list[str]:
    """The simpleTexts of an answer, in order."""
    outputs = answer.get("template", {}).get("outputs", [])
    return [o["simpleText"]["text"] for o in outputs if "simpleText" in o]


def labels_of(answer: dict[str, Any]) -> list[tuple[str, str]]:
    return [(q["label"], q["messageText"]) for q in answer.get("template", {}).get("quickReplies", [])]


@dataclass
class Answer:
    """What the bot answered a skill call."""

    status: int
    body: Any
    seconds: float = 0.0

    @property
    def texts(self) -> list[str]:
        return texts_of(self.body) if isinstance(self.body, dict) else []

    @property
    def use_callback(self) -> bool:
        return isinstance(self.body, dict) and self.body.get("useCallback") is True


@dataclass
class Callback:
    """A one-time callback URL and what was POSTed to it."""

    token: str
    posts: list[Any] = field(default_factory=list)


@dataclass
class Event:
    """One Event API call Kakao took."""

    bot_id: str
    name: str
    data: dict[str, Any]
    users: list[dict[str, str]]
    task_id: str
    at: float = field(default_factory=time.monotonic)  # when it arrived (bench/dispatch.py paces by it)

    @property
    def text(self) -> str:
        return str(self.data.get("text", ""))


class FakeKakao(RecordingServer):
    def __init__(
        self, *, bot_id: str, rest_api_key: str, secret_header: str, skill_secret: str, event: str
    ) -> None:
        super().__init__()
        self.bot_id, self.rest_api_key, self.event = bot_id, rest_api_key, event
        self.secret_header, self.skill_secret = secret_header, skill_secret
        self.events: list[Event] = []
        self.callbacks: dict[str, Callback] = {}
        self.answers: list[Answer] = []
        self.blocked: set[str] = set()  # users who blocked the channel: Kakao refuses events to them
        self.violations: list[str] = []

    # --- Open Builder calling the skill

    def payload(
        self,
        utterance: str,
        *,
        user: str,
        block_id: str = "fallback-block",
        callback: bool = False,
        bot_id: str | None = None,
        lang: str = "ko",
    ) -> dict[str, Any]:
        """A skill request as Open Builder sends it (the fallback block, a channel user)."""
        request: dict[str, Any] = {
            "timezone": "Asia/Seoul",
            "params": {"ignoreMe": "true", "surface": "Kakaotalk.plusfriend"},
            "block": {"id": block_id, "name": "폴백 블록"},
            "utterance": utterance,
            "lang": lang,
            "user": {
                "id": user,
                "type": "botUserKey",
                "properties": {"botUserKey": user, "plusfriendUserKey": "pf" + user[:10], "isFriend": True},
            },
        }
        if callback:
            token = secrets.token_urlsafe(16)
            self.callbacks[token] = Callback(token)
            request["callbackUrl"] = f"{self.base_url}/v1/callbacks/{token}"
        return {
            "intent": {
                "id": block_id,
                "name": "폴백 블록",
                "extra": {"reason": {"code": 1, "message": "OK"}},
            },
            "userRequest": request,
            "bot": {"id": bot_id or self.bot_id, "name": "시청 민원"},
            "action": {
                "name": "city-skill",
                "clientExtra": None,
                "params": {},
                "id": "skill-1",
                "detailParams": {},
            },
        }

    async def call_skill(
        self, url: str, payload: dict[str, Any] | bytes, *, secret: str | None = None, timeout: float = 5.0
    ) -> Answer:
        """POST a skill request to `url` as Open Builder does (with the secret header unless `secret`
        is "" ; another value is sent as given), waiting at most Kakao's 5 seconds. A 200 answer is
        checked against the v2.0 rules."""
        headers = {"Content-Type": "application/json;charset=UTF-8", "Accept": "application/json"}
        value = self.skill_secret if secret is None else secret
        if value:
            headers[self.secret_header] = value
        data = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode()
        started = time.monotonic()
        async with self.http.post(url, data=data, headers=headers, timeout=timeout) as response:
            raw = await response.read()
            seconds = time.monotonic() - started
            try:
                body: Any = json.loads(raw)
            except ValueError:
                body = raw.decode(errors="replace")
        answer = Answer(response.status, body, seconds)
        if response.status == 200:
            self.answers.append(answer)
            self.violations += [f"skill answer: {p}" for p in skill_problems(body)]
            if seconds > 5.0:
                self.violations.append(f"skill answer after {seconds:.1f} s (Kakao waits 5)")
        return answer

    def callback_posts(self, payload: dict[str, Any]) -> list[Any]:
        """What the bot POSTed to the callback URL of `payload`."""
        url = payload["userRequest"]["callbackUrl"]
        return self.callbacks[urlsplit(url).path.rsplit("/", 1)[-1]].posts

    # --- Kakao's side

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v2/bots/{bot_id}/talk", self._talk),
            web.post("/v1/callbacks/{token}", self._callback),
        ]

    def endpoint(self, request: web.Request) -> str:
        return "talk" if request.path.endswith("/talk") else "callback"

    def error(self, status: int, request: web.Request) -> web.StreamResponse:
        headers = {"Retry-After": "1"} if status in (429, 503) else None
        message = request.get(FAILURE) or {401: "invalid api key", 429: "too many requests"}.get(
            status, "error"
        )
        return web.json_response({"code": -status, "message": message}, status=status, headers=headers)

    async def _callback(self, request: web.Request) -> web.Response:
        callback = self.callbacks.get(request.match_info["token"])
        try:
            body = await request.json()
        except ValueError:
            body = None
        if callback is None:
            return web.json_response({"status": "FAIL", "message": "unknown callback"}, status=404)
        if callback.posts:  # one use only
            self.violations.append(f"callback {callback.token} used twice")
            return web.json_response({"status": "FAIL", "message": "callback already used"}, status=400)
        callback.posts.append(body)
        self.violations += [f"callback body: {p}" for p in skill_problems(body, callback=True)]
        await self.changed()
        return web.json_response({"status": "SUCCESS", "taskId": secrets.token_hex(8)})

    async def _talk(self, request: web.Request) -> web.Response:
        problems = []
        if request.headers.get("Authorization") != f"KakaoAK {self.rest_api_key}":
            return web.json_response({"code": -401, "message": "invalid api key"}, status=401)
        bot_id = request.match_info["bot_id"]
        if bot_id.rstrip("!") != self.bot_id:
            return web.json_response({"code": -404, "message": f"unknown bot {bot_id}"}, status=404)
        try:
            body = await request.json()
        except ValueError:
            body = None
        event = body.get("event") if isinstance(body, dict) else None
        users = body.get("user") if isinstance(body, dict) else None
        if not isinstance(event, dict) or event.get("name") != self.event:
            problems.append(f"event.name must be the event made in Open Builder ({self.event!r})")
        data = event.get("data", {}) if isinstance(event, dict) else {}
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            problems.append("event.data must be an object of strings")
            data = {}
        if not isinstance(users, list) or not 1 <= len(users) <= MAX_EVENT_USERS:
            problems.append(f"user must be a list of 1 to {MAX_EVENT_USERS}")
            users = []
        for user in users:
            if not isinstance(user, dict) or user.get("type") not in USER_TYPES or not user.get("id"):
                problems.append(f"a user must be {{type: one of {USER_TYPES}, id}}: {user!r:.80}")
        if len(str(data.get("text", ""))) > MAX_SIMPLE_TEXT:
            problems.append(f"event.data.text over {MAX_SIMPLE_TEXT} characters cannot be shown")
        if problems:
            self.violations += [f"Event API: {p}" for p in problems]
            return web.json_response({"code": -400, "message": "; ".join(problems)}, status=400)
        task_id = secrets.token_hex(12)
        if any(u["id"] in self.blocked for u in users):
            return web.json_response(
                {
                    "taskId": task_id,
                    "status": "FAIL",
                    "message": "the user blocked the channel (차단)",
                    "timestamp": 0,
                }
            )
        self.events.append(Event(bot_id, event["name"], data, users, task_id))  # type: ignore[index]
        return web.json_response({"taskId": task_id, "status": "SUCCESS", "message": "", "timestamp": 0})

    def events_to(self, user: str) -> list[Event]:
        return [e for e in self.events if any(u["id"] == user for u in e.users)]
