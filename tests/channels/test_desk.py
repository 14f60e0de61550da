"""The staff desk's items survive the outbox: each kind to JSON and back, and rows written before
the items had types still read."""

from __future__ import annotations

import json

import pytest

from channels.base import OutboundMessage
from channels.desk import (
    Alert,
    Card,
    CardRequest,
    DeliveryMark,
    DeskItem,
    ReviewPost,
    Suggestion,
    ThreadLine,
    from_json,
    to_json,
)

ITEMS: list[DeskItem] = [
    CardRequest("2026-000123"),
    Card(
        reference="2026-000123",
        status="forwarded",
        status_name="이관",
        department="transport",
        department_name="교통도로과",
        origin="sms",
        language="ko",
        category=None,
        text="가로등이 꺼졌어요",
        photos=(17,),
        photo_links=("https://city.example/media/17?sig=x",),
        contact="+82******1234",
        due="12월 5일 18:00",
        actions=("claim", "resolve", "reassign"),
        departments=(("transport", "교통도로과"), ("parks", "공원녹지과")),
    ),
    ThreadLine(reference="2026-000123", author="system", text="Due in 1 hour", mention="U0LEAD"),
    DeliveryMark(reference="2026-000123", source="1700.01", delivered=False, detail="opted out"),
    ReviewPost(
        reference="2026-000124",
        question="소파는 어떻게 버리나요?",
        language="ko",
        suggestions=(Suggestion("bulky-waste", 0.71, "구청에 신고하세요."),),
    ),
    Alert("the FAQ edit was not taken"),
]


@pytest.mark.parametrize("item", ITEMS, ids=lambda item: type(item).__name__)
def test_each_item_goes_through_the_outbox_unchanged(item: DeskItem) -> None:
    message = OutboundMessage(channel="slack", recipient="#x", text="t", idempotency_key="k", desk=item)
    stored = json.loads(json.dumps(message.to_payload()))  # as the outbox row's JSON column keeps it
    assert OutboundMessage.from_payload(stored).desk == item


def test_rows_written_before_the_types_still_read() -> None:
    assert from_json({"kind": "card", "reference": "2026-000001"}) == CardRequest("2026-000001")
    line = {"kind": "thread", "reference": "R", "author": "citizen", "author_name": None, "text": "hi"}
    assert from_json({**line, "photos": [3], "mention": None}) == ThreadLine(
        "R", "citizen", "hi", photos=(3,)
    )
    review = {"kind": "review", "reference": "R", "question": "?", "language": "en", "due": None}
    suggestion = {"entry": "e", "score": 0.5, "answer": "a"}
    assert from_json({**review, "suggestions": [suggestion]}).suggestions == (Suggestion("e", 0.5, "a"),)  # type: ignore[union-attr]
    assert to_json(Alert("x")) == {"kind": "alert", "text": "x"}


def test_an_unknown_or_incomplete_item_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown desk item kind 'poster'"):
        from_json({"kind": "poster", "text": "x"})
    with pytest.raises(ValueError, match="a desk mark item is incomplete"):
        from_json({"kind": "mark", "reference": "R"})
