from __future__ import annotations

import pytest

from knowledge import FaqEntry, KnowledgeBase, Match, Matcher, SourceRef
from knowledge.decision import NO_SENSITIVE_RULE, Outcome, SensitiveRule, decide
from knowledge.evaluate import LabelledQuery, evaluate


def entry(entry_id: str, *, department: str = "civil", handoff: str = "auto") -> FaqEntry:
    return FaqEntry(
        id=entry_id,
        questions={"en": [f"question about {entry_id}"]},
        answer={} if handoff == "always" else {"en": f"About {entry_id}."},
        handoff=handoff,  # type: ignore[arg-type]
        department=department,
        source=SourceRef("civil.yaml", 1),
    )


def match(score: float, **kwargs: str) -> Match:
    found = entry(kwargs.pop("entry_id", "passport"), **kwargs)
    return Match(entry=found, score=score, question=found.questions["en"][0])


RULE = SensitiveRule.of(["bribe", "뇌물"], department="integrity")


@pytest.mark.parametrize(
    ("score", "outcome"),
    [
        (0.99, Outcome.ANSWER),
        (0.9, Outcome.ANSWER),
        (0.89, Outcome.REVIEW),
        (0.3, Outcome.REVIEW),
        (0.29, Outcome.FORWARD),
    ],
)
def test_the_thresholds_decide_at_or_above(score: float, outcome: Outcome) -> None:
    decision = decide("passport", [match(score)], answer_threshold=0.9, review_threshold=0.3)
    assert decision.outcome is outcome
    assert decision.answer is (decision.top if outcome is Outcome.ANSWER else None)
    assert decision.review is (decision.top if outcome is Outcome.REVIEW else None)


def test_nothing_found_or_a_person_only_entry_is_forwarded() -> None:
    assert decide("hello", [], answer_threshold=0.9, review_threshold=0.3).outcome is Outcome.FORWARD
    always = match(0.999, entry_id="pothole", handoff="always")
    assert decide("pothole", [always], answer_threshold=0.9, review_threshold=0.3).outcome is Outcome.FORWARD


def test_a_sensitive_report_is_never_answered_however_sure_the_match() -> None:
    sure = match(0.999)
    assert decide(
        "I was asked for a bribe", [sure], answer_threshold=0.9, review_threshold=0.3, sensitive=RULE
    ).sensitive
    assert decide(
        "공무원이 뇌물을 요구했어요", [sure], answer_threshold=0.9, review_threshold=0.3, sensitive=RULE
    ).sensitive
    # "bribe" is a whole word in Latin script: "bribery" is another keyword's business.
    assert not decide(
        "passport", [sure], answer_threshold=0.9, review_threshold=0.3, sensitive=RULE
    ).sensitive
    # A likely match of an entry of the restricted department marks the topic sensitive ...
    restricted = match(0.4, entry_id="corruption-report", department="integrity")
    assert decide("x", [restricted], answer_threshold=0.9, review_threshold=0.3, sensitive=RULE).sensitive
    # ... an unlikely one does not, and without a rule nothing is.
    weak = match(0.2, entry_id="corruption-report", department="integrity")
    assert (
        decide("x", [weak], answer_threshold=0.9, review_threshold=0.3, sensitive=RULE).outcome
        is Outcome.FORWARD
    )
    assert not decide(
        "bribe", [sure], answer_threshold=0.9, review_threshold=0.3, sensitive=NO_SENSITIVE_RULE
    ).sensitive


def test_faq_eval_decides_as_the_router_does() -> None:
    base = KnowledgeBase(
        entries=(
            FaqEntry(
                id="passport",
                questions={"en": ["How do I get a passport?"]},
                answer={"en": "At the district office."},
                department="civil",
                source=SourceRef("civil.yaml", 1),
            ),
        )
    )
    matcher = Matcher(base)
    text = "How do I get a passport?"  # the question itself: answered, unless a keyword makes it sensitive
    queries = [LabelledQuery(text, "passport", 1)]
    assert evaluate(matcher, queries, default_language="en").auto_answered == 1
    rule = SensitiveRule.of(["passport"])
    assert evaluate(matcher, queries, default_language="en", sensitive=rule).auto_answered == 0
