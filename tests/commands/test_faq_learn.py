"""Which reviewed questions `faq learn` adds to which entry, and why it leaves the others."""

from __future__ import annotations

from datetime import UTC, datetime

from commands.faq_learn import plan_learning
from knowledge import load_knowledge
from store.data import ReviewAnswer
from tests.conftest import FAQ_MIN


def answer(number: int, question: str, entry: str | None, **changes: object) -> ReviewAnswer:
    values: dict[str, object] = {
        "ticket_id": number,
        "reference": f"2026-{number:06d}",
        "language": "ko",
        "question": question,
        "entry": entry,
        "edited": False,
        "answered_at": datetime(2026, 11, 2, tzinfo=UTC),
        "learned": False,
    }
    return ReviewAnswer(**{**values, **changes})  # type: ignore[arg-type]


def test_each_reviewed_question_is_added_once_or_skipped_for_a_reason() -> None:
    base = load_knowledge(FAQ_MIN)
    plan = plan_learning(
        [
            answer(1, "소파  버리고 싶어요", "bulky-waste"),
            answer(2, "Sofa, please take it away", "bulky-waste"),
            answer(3, "소파 버리고 싶어요!", "bulky-waste"),  # the first again
            answer(4, "소파 버리는 방법", "bulky-waste"),  # already one of its questions
            answer(5, "여권 만들려면", "bulky-waste"),  # a question of the passport entry
            answer(6, "뭐라고요", None, edited=True),
            answer(7, "장롱은요", "bulky-waste", edited=True),
            answer(8, "침대는요", "mattress"),  # an entry deleted since
            answer(9, "ㅋㅋ", "bulky-waste"),
            answer(10, "소파 " * 80, "bulky-waste"),
            answer(11, "sofa pickup, mail me at kim@example.com", "bulky-waste"),
            answer(12, "소파 버리고 싶어요", "bulky-waste", learned=True),
        ],
        base,
        default_language="ko",
    )
    assert [
        (a.question.entry_id, a.question.language, a.question.text, a.tickets) for a in plan.additions
    ] == [
        ("bulky-waste", "ko", "소파 버리고 싶어요", [(1, "2026-000001"), (3, "2026-000003")]),
        ("bulky-waste", "en", "Sofa, please take it away", [(2, "2026-000002")]),
    ]
    assert plan.known == [(4, "2026-000004", "bulky-waste")] and plan.learned_before == 1
    assert plan.skipped == {
        "already a question of passport": ["2026-000005"],
        "answered in staff's own words, with no entry": ["2026-000006"],
        "an edited answer (--include-edited learns these too)": ["2026-000007"],
        "entry mattress is no longer in the FAQ": ["2026-000008"],
        "no text (a photo or location only)": ["2026-000009"],
        "longer than 200 characters (--max-chars)": ["2026-000010"],
        "looks like personal data (a phone number, e-mail or ID number)": ["2026-000011"],
    }
    edited = plan_learning(
        [answer(7, "장롱은요", "bulky-waste", edited=True)], base, default_language="ko", include_edited=True
    )
    assert [a.question.text for a in edited.additions] == ["장롱은요"]
