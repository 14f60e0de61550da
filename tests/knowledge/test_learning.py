from __future__ import annotations

import pytest

from knowledge import FaqEntry, KnowledgeBase, Matcher, SourceRef
from knowledge.calibration import Confidence
from knowledge.decision import NO_SENSITIVE_RULE
from knowledge.learning import (
    ACCEPTED,
    NEGATIVE,
    OUT_OF_SCOPE,
    POSITIVE,
    Label,
    RefitSettings,
    is_near_duplicate,
    may_become_variant,
    merge,
    refit,
    without,
)

TOPICS = {
    "passport": (["apply for a passport", "passport renewal"], "At the district office's passport desk."),
    "parking": (["residential parking permit", "where can I park overnight"], "Apply online for a permit."),
    "bulky-waste": (
        ["throw away a sofa", "dispose of old furniture"],
        "Buy a sticker at the community centre.",
    ),
    "library": (["library opening hours", "renew a library book"], "Open 9 to 6, renew online."),
}


def base() -> KnowledgeBase:
    return KnowledgeBase(
        entries=tuple(
            FaqEntry(
                id=entry_id,
                questions={"en": questions},
                answer={"en": answer},
                department="civil",
                source=SourceRef("civil.yaml", 1),
            )
            for entry_id, (questions, answer) in TOPICS.items()
        )
    )


def label(
    n: int, kind: str, entry_id: str, text: str, *, variant: bool = False, language: str = "en"
) -> Label:
    return Label(id=n, kind=kind, entry_id=entry_id, text=text, language=language, variant=variant)


def test_a_learned_variant_joins_its_entry_in_its_language_once() -> None:
    merged = merge(
        base(),
        [
            label(1, POSITIVE, "passport", "new passport please", variant=True),
            label(2, POSITIVE, "passport", "여권 새로 만들기", variant=True, language="ko"),
            label(3, POSITIVE, "passport", "New passport, please!", variant=True),  # the same, normalised
            label(4, POSITIVE, "passport", "passport renewal", variant=True),  # the files have it
            label(5, POSITIVE, "gone-entry", "old question", variant=True),
        ],
    )
    passport = merged.get("passport")
    assert passport is not None
    assert passport.questions == {
        "en": ["apply for a passport", "passport renewal", "new passport please"],
        "ko": ["여권 새로 만들기"],
    }
    assert merged.get("gone-entry") is None and len(merged) == len(base())
    assert merge(base(), []) == base()


def test_without_leaves_every_entry_a_question() -> None:
    trimmed = without(base(), {"passport renewal", "apply for a passport", "throw away a sofa"})
    assert trimmed.get("passport") == base().get("passport")  # all of its questions: kept whole
    bulky = trimmed.get("bulky-waste")
    assert bulky is not None and bulky.questions == {"en": ["dispose of old furniture"]}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("   ", "no words"),
        ("x" * 201, "longer than 200 characters"),
        ("call me on 010-1234-5678 about my passport", "looks like personal data"),
        ("my mail is kim@example.com", "looks like personal data"),
        ("how do I renew my passport", None),
    ],
)
def test_what_may_become_a_question(text: str, reason: str | None) -> None:
    assert may_become_variant(text) == reason


def test_a_near_duplicate_adds_nothing() -> None:
    matcher = Matcher(base())
    assert is_near_duplicate(matcher, "passport renewal", "passport", "en")
    assert is_near_duplicate(matcher, "Passport  renewal?", "passport", "en")
    assert not is_near_duplicate(matcher, "my passport expired, what now", "passport", "en")
    assert not is_near_duplicate(matcher, "passport renewal", "library", "en")  # another entry's question


def test_labels_say_what_must_be_answered() -> None:
    assert label(1, POSITIVE, "passport", "x").expect == "passport"
    assert label(1, ACCEPTED, "passport", "x").expect == "passport"
    assert label(1, NEGATIVE, "passport", "x").expect is None
    assert label(1, OUT_OF_SCOPE, "passport", "x").expect is None


def staff_labels(repeat: int = 3) -> list[Label]:
    asked = {
        "passport": ["my passport expired", "need a new passport", "passport photo rules", "lost passport"],
        "parking": ["permit to park near home", "overnight parking", "parking sticker for residents"],
        "bulky-waste": ["get rid of a couch", "old wardrobe disposal", "mattress pickup"],
        "library": ["when does the library open", "library card", "return books late"],
    }
    labels: list[Label] = []
    for round_ in range(repeat):  # the same questions asked again: only the first time a variant
        for entry_id, texts in asked.items():
            for text in texts:
                labels.append(label(len(labels) + 1, POSITIVE, entry_id, text, variant=round_ == 0))
        for text in ["the streetlight is broken", "noise from next door", "who is the mayor", "a dead cat"]:
            labels.append(label(len(labels) + 1, OUT_OF_SCOPE, "parking", text))
        for text in ["passport office is rude", "library wifi is down", "parking fines are too high"]:
            labels.append(label(len(labels) + 1, NEGATIVE, "passport", text))
    return labels


def test_a_refit_moves_the_answer_threshold_and_keeps_the_review_threshold() -> None:
    shipped = Confidence.default()
    refitted = refit(
        base(),
        staff_labels(),
        shipped,
        settings=RefitSettings(min_labels=30),
        sensitive=NO_SENSITIVE_RULE,
        default_language="en",
    )
    report = refitted.report
    assert report is not None and report.queries == len(staff_labels()) and report.models == "thresholds"
    # Weighed as they come: above the review threshold, the labels are the traffic itself.
    assert report.queries_file == "staff decisions"
    assert report.out_of_scope_rate == round(21 / len(staff_labels()), 4)
    assert refitted.weights == shipped.weights  # labels staff chose are no sample to refit the models on
    assert 0 < refitted.answer_threshold <= 1
    assert refitted.review_threshold == min(shipped.review_threshold, refitted.answer_threshold)
    assert report.precision >= 0.95 or refitted.answer_threshold == 1.0


def test_a_refit_needs_enough_labels_of_both_kinds() -> None:
    with pytest.raises(ValueError, match="too few labels"):
        refit(base(), staff_labels()[:10], Confidence.default(), sensitive=NO_SENSITIVE_RULE)
    only_in_scope = [x for x in staff_labels() if x.kind == POSITIVE]
    with pytest.raises(ValueError, match=r"\(0 not to be answered\)"):
        refit(base(), only_in_scope, Confidence.default(), sensitive=NO_SENSITIVE_RULE)


def test_a_label_never_vouches_for_itself() -> None:
    """Each label is scored without the variant learned from it (nor the same text in the files):
    if it were not, every learned text would be an exact match, and the threshold would drop to it."""
    labels = staff_labels(repeat=1)
    settings = RefitSettings(min_labels=10, min_out_of_scope=3, folds=3)
    learned = refit(base(), labels, Confidence.default(), settings=settings, sensitive=NO_SENSITIVE_RULE)
    # The files already hold every learned text (as after `faq learn`): still scored without it.
    files = merge(base(), [x for x in labels if x.variant])
    folded = refit(files, labels, Confidence.default(), settings=settings, sensitive=NO_SENSITIVE_RULE)
    assert learned.report is not None and folded.report is not None
    assert learned.report.coverage < 1.0 and folded.report.coverage == learned.report.coverage
