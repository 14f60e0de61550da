"""What a new question gets from the FAQ: an answer now, a likely answer for today's review, or
nothing (a department takes it). One pure function, called by the router for every citizen and by
`faq ask`, `faq eval` and `faq calibrate`, so what the tools report is what citizens get.

The rules, in order:
- a sensitive report (one of the configured keywords, or a likely match of an entry of the restricted
  department) is never answered and never suggested: it goes to the restricted inbox;
- the best match of an entry that may be answered automatically (handoff: auto) is answered at or
  above the answer threshold, and suggested for review at or above the review threshold;
- everything else is forwarded.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from knowledge.keywords import KeywordRules
from knowledge.matcher import Match


class Outcome(enum.StrEnum):
    ANSWER = "answer"
    REVIEW = "review"
    FORWARD = "forward"
    SENSITIVE = "sensitive"


@dataclass(frozen=True)
class SensitiveRule:
    """Reports that are never answered automatically: texts with one of `keywords`, and likely matches
    of an FAQ entry of `department` (the restricted inbox, where a city has one)."""

    keywords: KeywordRules
    department: str | None = None

    @classmethod
    def of(cls, keywords: Iterable[str], department: str | None = None) -> SensitiveRule:
        return cls(KeywordRules(("sensitive", keyword) for keyword in keywords), department)

    def marks(self, text: str, top: Match | None, review_threshold: float) -> bool:
        if self.keywords.find(text) is not None:
            return True
        return bool(
            self.department
            and top
            and top.score >= review_threshold
            and top.entry.department == self.department
        )


NO_SENSITIVE_RULE = SensitiveRule(KeywordRules(()))


@dataclass(frozen=True)
class FaqDecision:
    """The outcome and the matches it was taken from (best first)."""

    outcome: Outcome
    matches: Sequence[Match]

    @property
    def top(self) -> Match | None:
        return self.matches[0] if self.matches else None

    @property
    def answer(self) -> Match | None:
        return self.top if self.outcome is Outcome.ANSWER else None

    @property
    def review(self) -> Match | None:
        return self.top if self.outcome is Outcome.REVIEW else None

    @property
    def sensitive(self) -> bool:
        return self.outcome is Outcome.SENSITIVE


def decide(
    text: str,
    matches: Sequence[Match],
    *,
    answer_threshold: float,
    review_threshold: float,
    sensitive: SensitiveRule = NO_SENSITIVE_RULE,
) -> FaqDecision:
    top = matches[0] if matches else None
    if sensitive.marks(text, top, review_threshold):
        return FaqDecision(Outcome.SENSITIVE, matches)
    if top is None or top.entry.handoff != "auto":
        return FaqDecision(Outcome.FORWARD, matches)
    if top.score >= answer_threshold:
        return FaqDecision(Outcome.ANSWER, matches)
    if top.score >= review_threshold:
        return FaqDecision(Outcome.REVIEW, matches)
    return FaqDecision(Outcome.FORWARD, matches)
