"""The store's queries for `faq learn` and `faq gaps`, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from store import Database, Direction, Message, Ticket, data

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


async def ticket(
    db: Database,
    number: int,
    text: str,
    *,
    events: list[tuple[str, str | None, str | None, dict[str, Any]]],
    sensitive: bool = False,
    later: str | None = None,
) -> int:
    """A ticket with the citizen's first message (and a `later` one), and events at T0 + number hours."""
    at = T0 + timedelta(hours=number)
    async with db.transaction() as session:
        contact = await data.get_or_create_contact(session, channel="webchat", address=f"c{number}")
        row = await data.add_ticket(
            session,
            ticket=Ticket(
                reference=f"2026-{number:06d}",
                contact_id=contact.id or 0,
                channel="webchat",
                language="ko",
                department="triage",
                sensitive=sensitive,
                created_at=at,
            ),
        )
        for body in (text, later):
            if body is not None:
                await data.add_message(
                    session,
                    message=Message(
                        ticket_id=row.id,
                        contact_id=contact.id or 0,
                        direction=Direction.IN,
                        channel="webchat",
                        author="citizen",
                        text=body,
                        created_at=at,
                    ),
                )
        for kind, before, after, detail in events:
            await data.add_event(
                session,
                ticket_id=row.id or 0,
                actor="bot",
                kind=kind,
                from_status=before,
                to_status=after,
                detail=detail,
                at=at,
            )
        return row.id or 0


def reviewed(
    entry: str | None, *, edited: bool = False
) -> list[tuple[str, str | None, str | None, dict[str, Any]]]:
    return [
        ("status", "new", "review", {"entry": "bulky-waste", "score": 0.35}),
        ("status", "review", "answered", {"entry": entry, "edited": edited}),
        ("review_sent", None, None, {"entry": entry, "text": "the answer"}),
    ]


async def test_review_answers_are_the_questions_staff_answered_from_the_queue(database: Database) -> None:
    await ticket(database, 1, "소파 버리고 싶어요", events=reviewed("bulky-waste"), later="감사합니다")
    await ticket(database, 2, "장롱은요?", events=reviewed("bulky-waste", edited=True))
    await ticket(database, 3, "이건 뭐죠", events=reviewed(None, edited=True))
    learned = await ticket(database, 4, "침대 버리기", events=reviewed("bulky-waste"))
    await ticket(database, 5, "뇌물 신고", events=reviewed("bulky-waste"), sensitive=True)
    await ticket(database, 6, "forwarded", events=[("status", "new", "forwarded", {"reason": "triage"})])
    async with database.transaction() as session:
        await data.add_event(session, ticket_id=learned, actor="staff:cli:kim", kind="faq_learned")

    async with database.session() as session:
        answers = await data.review_answers(session)
        recent = await data.review_answers(session, since=T0 + timedelta(hours=2))
    assert [(a.reference, a.question, a.entry, a.edited, a.learned) for a in answers] == [
        ("2026-000001", "소파 버리고 싶어요", "bulky-waste", False, False),  # the first message only
        ("2026-000002", "장롱은요?", "bulky-waste", True, False),
        ("2026-000003", "이건 뭐죠", None, True, False),
        ("2026-000004", "침대 버리기", "bulky-waste", False, True),
    ]  # the sensitive ticket is never listed
    assert answers[0].language == "ko" and answers[0].answered_at == T0 + timedelta(hours=1)
    assert [a.reference for a in recent] == ["2026-000002", "2026-000003", "2026-000004"]


async def test_first_decisions_are_what_the_bot_did_with_new_tickets(database: Database) -> None:
    await ticket(
        database,
        1,
        "가로등 고장",
        events=[("status", "new", "forwarded", {"reason": "keyword:가로등", "department": "transport"})],
    )
    await ticket(database, 2, "소파", events=reviewed("bulky-waste"))
    await ticket(
        database, 3, "뇌물", events=[("status", "new", "forwarded", {"reason": "sensitive"})], sensitive=True
    )
    await ticket(database, 4, "여권", events=[("status", "new", "answered", {"entry": "passport"})])
    await ticket(
        database,
        5,
        "포트홀",
        events=[
            ("status", "new", "forwarded", {"reason": "faq:pothole", "department": "transport"}),
            ("status", "forwarded", "in_progress", {}),
        ],
    )
    async with database.session() as session:
        found = await data.first_decisions(session, statuses=("forwarded", "review"))
        later = await data.first_decisions(session, statuses=("forwarded",), since=T0 + timedelta(hours=2))
    assert [(d.reference, d.status, d.reason, d.department, d.entry, d.question) for d in found] == [
        ("2026-000001", "forwarded", "keyword:가로등", "transport", None, "가로등 고장"),
        ("2026-000002", "review", None, "triage", "bulky-waste", "소파"),
        ("2026-000005", "forwarded", "faq:pothole", "transport", None, "포트홀"),
    ]
    assert [d.reference for d in later] == ["2026-000005"]
