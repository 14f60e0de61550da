"""What a citizen's new question gets, decided from the text alone (no store, no clock): an answer
now, a likely answer for a person to review, or neither; and which department takes it when a
person must. Intake, the staff desk and the FAQ tools all decide through here."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from knowledge import Match, Matcher
from knowledge.decision import FaqDecision, Outcome, SensitiveRule, decide
from knowledge.keywords import KeywordRules
from router.departments import Route, choose_department

# A text no FAQ entry answers goes to the department of its best match only when that match is more
# likely right than not (the review threshold lets in much weaker suggestions for a person to check).
FAQ_ROUTE_PROBABILITY = 0.5


@dataclass(frozen=True)
class Decision:
    """What a new question would get (an answer now, a likely answer for review, or neither) and the
    department that takes it when a person must."""

    faq: FaqDecision
    route: Route

    @property
    def matches(self) -> Sequence[Match]:
        return self.faq.matches

    @property
    def answer(self) -> Match | None:
        return self.faq.answer

    @property
    def review(self) -> Match | None:
        return self.faq.review

    @property
    def sensitive(self) -> bool:
        return self.faq.sensitive


@dataclass(frozen=True)
class Rules:
    """What a decision needs besides the FAQ: the city's rules for departments."""

    sensitive: SensitiveRule
    departments: KeywordRules
    triage: str  # the department that takes what nothing else claims
    restricted: str  # the inbox of sensitive reports


def decide_message(
    text: str,
    language: str,
    matcher: Matcher,
    rules: Rules,
    *,
    model: Callable[[str], tuple[str, float] | None] | None = None,
    chosen: str | None = None,
) -> Decision:
    """`model`: the learned department model's verdict, when there is one. `chosen`: the department
    the citizen's form already chose (an Open311 service's): a report for it, never answered from the
    FAQ; a sensitive report still goes to the restricted inbox."""
    # The thresholds travel with the matcher: a recalibration is picked up with the next reload.
    faq = decide(
        text,
        matcher.match(text, language),
        answer_threshold=matcher.confidence.answer_threshold,
        review_threshold=matcher.confidence.review_threshold,
        sensitive=rules.sensitive,
    )
    if faq.sensitive:
        return Decision(faq, Route(rules.restricted, "sensitive"))
    if chosen is not None:
        return Decision(FaqDecision(Outcome.FORWARD, faq.matches), Route(chosen, f"chosen:{chosen}"))
    top = faq.answer or faq.review
    if top is not None and top.entry.department:
        return Decision(faq, Route(top.entry.department, f"faq:{top.entry.id}"))
    route = choose_department(
        text,
        faq.matches,
        rules=rules.departments,
        faq_threshold=max(matcher.confidence.review_threshold, FAQ_ROUTE_PROBABILITY),
        triage=rules.triage,
        model=model,
    )
    return Decision(faq, route)
