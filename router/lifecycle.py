"""Which status may follow which (DESIGN.md, "Ticket lifecycle")."""

from __future__ import annotations

from store import TicketStatus as S

TRANSITIONS: dict[S, frozenset[S]] = {
    S.NEW: frozenset({S.ANSWERED, S.REVIEW, S.FORWARDED}),
    S.ANSWERED: frozenset({S.CLOSED, S.REOPENED, S.FORWARDED}),
    S.REVIEW: frozenset({S.ANSWERED, S.FORWARDED}),
    S.FORWARDED: frozenset({S.IN_PROGRESS, S.RESOLVED, S.FORWARDED}),
    S.IN_PROGRESS: frozenset({S.RESOLVED, S.FORWARDED}),
    S.RESOLVED: frozenset({S.CLOSED, S.REOPENED}),
    S.REOPENED: frozenset({S.IN_PROGRESS, S.RESOLVED, S.FORWARDED}),
    S.CLOSED: frozenset(),
}


class InvalidTransition(ValueError):
    def __init__(self, reference: str, current: str, wanted: str) -> None:
        allowed = ", ".join(sorted(TRANSITIONS[S(current)])) or "none: the ticket is closed"
        super().__init__(f"ticket {reference} is {current}; it cannot become {wanted} (allowed: {allowed})")


def check_transition(reference: str, current: str, wanted: str) -> None:
    if S(wanted) not in TRANSITIONS[S(current)]:
        raise InvalidTransition(reference, current, wanted)
