"""The fake Kakao itself: its v2.0 checker refuses what Kakao refuses, a callback URL takes one POST,
and the Event API checks the key and the body."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.kakao import FakeKakao, skill_problems

GOOD: dict[str, Any] = {"version": "2.0", "template": {"outputs": [{"simpleText": {"text": "안녕하세요"}}]}}


def with_template(**template: Any) -> dict[str, Any]:
    return {"version": "2.0", "template": {**GOOD["template"], **template}}


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({**GOOD, "version": "1.0"}, "version"),
        (with_template(outputs=[]), "outputs"),
        (with_template(outputs=[{"simpleText": {"text": "a"}}] * 4), "outputs"),
        (with_template(outputs=[{"simpleText": {"text": "가" * 1001}}]), "1001 characters"),
        (
            with_template(quickReplies=[{"action": "message", "label": "1", "messageText": "1"}] * 11),
            "at most 10",
        ),
        (
            with_template(quickReplies=[{"action": "message", "label": "가" * 15, "messageText": "x"}]),
            "label",
        ),
        (with_template(quickReplies=[{"action": "message", "label": "x"}]), "messageText"),
        ({"version": "2.0", "useCallback": True, "template": GOOD["template"]}, "useCallback"),
    ],
)
def test_the_checker_refuses_what_kakao_refuses(body: dict[str, Any], problem: str) -> None:
    found = skill_problems(body)
    assert found and any(problem in p for p in found), found


def test_the_checker_takes_good_answers() -> None:
    assert skill_problems(GOOD) == []
    assert skill_problems({"version": "2.0", "useCallback": True, "data": {"text": "잠시만요"}}) == []
    assert skill_problems(
        {"version": "2.0", "useCallback": True}, callback=True
    )  # a callback needs a full answer


async def test_a_callback_url_takes_one_post_and_the_event_api_checks_key_and_body() -> None:
    async with FakeKakao(
        bot_id="b1", rest_api_key="k", secret_header="X-S", skill_secret="s", event="e"
    ) as fake:
        payload = fake.payload("hi", user="u1", callback=True)
        url = payload["userRequest"]["callbackUrl"]
        async with fake.http.post(url, json=GOOD) as first, fake.http.post(url, json=GOOD) as second:
            assert (first.status, second.status) == (200, 400)
        assert fake.callback_posts(payload) == [GOOD] and fake.violations == [
            "callback " + url.rsplit("/", 1)[1] + " used twice"
        ]
        fake.violations.clear()
        talk = f"{fake.base_url}/v2/bots/b1/talk"
        body = {"event": {"name": "e", "data": {"text": "x"}}, "user": [{"type": "botUserKey", "id": "u1"}]}
        async with fake.http.post(talk, json=body, headers={"Authorization": "KakaoAK wrong"}) as refused:
            assert refused.status == 401
        async with fake.http.post(
            talk, json={**body, "user": []}, headers={"Authorization": "KakaoAK k"}
        ) as bad:
            assert bad.status == 400 and fake.violations
        async with fake.http.post(talk, json=body, headers={"Authorization": "KakaoAK k"}) as ok:
            answer = await ok.json()
        assert answer["status"] == "SUCCESS" and [e.text for e in fake.events] == ["x"]
