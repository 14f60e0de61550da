"""Learning from staff: what their decisions teach the FAQ, without touching its YAML files.

Staff decisions are labels (router/learning.py records them in the store):
- a review item sent with an entry's answer: the citizen's text is a way of asking that entry (a
  positive label, and a learned variant of the entry unless it is a near-duplicate of one it has);
- "0" after an automatic answer: the answer was wrong for that text (a negative label);
- a review item answered in staff's own words: the suggested entry did not answer it (out of scope);
- an automatic answer closed without a "0" in the reopen window: the citizen accepted it (accepted,
  never a variant). Without these, the labels would all come from below the answer threshold, where
  the bot was unsure, and a refit would see only the hard cases.

Learned variants are merged into the knowledge base the YAML files make (`merge`), so a FAQ kept in
version control or mounted read-only still learns. The thresholds are refitted from the labels
(`refit`): each label is scored by a matcher that does not have the variant learned from it, so a
text never vouches for itself.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from knowledge.calibration import (
    FEATURES,
    CalibrationReport,
    Confidence,
    Labelled,
    Thresholds,
    evidently_below,
    fit,
    measure,
    outcomes,
    traffic_weights,
)
from knowledge.decision import SensitiveRule
from knowledge.evaluate import labelled_text
from knowledge.matcher import Matcher
from knowledge.model import KnowledgeBase
from knowledge.text import Analyzer, normalize

POSITIVE = "positive"
ACCEPTED = "accepted"
NEGATIVE = "negative"
OUT_OF_SCOPE = "out_of_scope"
KINDS = (POSITIVE, ACCEPTED, NEGATIVE, OUT_OF_SCOPE)

# A text this similar to one of the entry's questions (character n-gram cosine) adds nothing new.
NEAR_DUPLICATE = 0.9
# Longer texts are stories, not ways of asking; they still count as labels.
MAX_VARIANT_CHARS = 200
# A text that looks like it carries personal data never becomes a question of the FAQ.
PERSONAL = re.compile(
    r"\d{2,4}[-. ]?\d{3,4}[-. ]?\d{4}"  # a phone number
    r"|[\w.+-]+@[\w-]+\.[\w.-]+"  # an e-mail address
    r"|\d{6}[- ]?[1-4]\d{6}"  # a resident registration number
)


@dataclass(frozen=True)
class Label:
    """One staff decision about a citizen's text. `variant`: the text is a learned variant of the entry."""

    id: int
    kind: str
    entry_id: str
    text: str
    language: str
    variant: bool = False

    @property
    def expect(self) -> str | None:
        """The entry the text must be answered with, or None: it must not be answered automatically."""
        return self.entry_id if self.kind in (POSITIVE, ACCEPTED) else None


def describe_counts(counts: Mapping[str, int]) -> str:
    """Labels by kind, every kind named: "12 positive, 40 accepted, 3 negative, 5 out_of_scope"."""
    return ", ".join(f"{counts.get(kind, 0)} {kind}" for kind in KINDS)


def may_become_variant(text: str) -> str | None:
    """Why a confirmed text may not become a question of the FAQ (None: it may)."""
    if not normalize(text):
        return "no words"
    if len(text) > MAX_VARIANT_CHARS:
        return f"longer than {MAX_VARIANT_CHARS} characters"
    if PERSONAL.search(text):
        return "looks like personal data"
    return None


def is_near_duplicate(matcher: Matcher, text: str, entry_id: str, language: str) -> bool:
    """True when the entry already has this question, or one that differs only in spacing or a letter."""
    for candidate in matcher.candidates(text, language):
        if matcher.entries[candidate.entry_index].id == entry_id:
            signals = dict(zip(FEATURES, candidate.features, strict=True))
            return signals["exact"] > 0 or signals["char"] >= NEAR_DUPLICATE
    return False


def merge(base: KnowledgeBase, variants: Sequence[Label]) -> KnowledgeBase:
    """The knowledge base with each learned variant added to its entry's questions in its language;
    variants of entries that are gone, and texts the base already has as a question, are left out."""
    if not variants:
        return base
    known = {normalize(q) for entry in base.entries for qs in entry.questions.values() for q in qs}
    added: dict[str, dict[str, list[str]]] = {}
    for variant in variants:
        key = normalize(variant.text)
        if base.get(variant.entry_id) is None or key in known:
            continue
        known.add(key)
        added.setdefault(variant.entry_id, {}).setdefault(variant.language, []).append(variant.text)
    if not added:
        return base
    entries = []
    for entry in base.entries:
        extra = added.get(entry.id)
        if extra:
            questions = {lang: list(qs) for lang, qs in entry.questions.items()}
            for language, texts in extra.items():
                questions.setdefault(language, []).extend(texts)
            entry = entry.model_copy(update={"questions": questions})
        entries.append(entry)
    return KnowledgeBase(entries=tuple(entries), files=base.files)


@dataclass(frozen=True)
class RefitSettings:
    target_precision: float = 0.96
    review_precision: float = 0.5
    out_of_scope_rate: float | None = None
    folds: int = 5
    min_labels: int = 30
    min_out_of_scope: int = 10


def refit(
    base: KnowledgeBase,
    labels: Sequence[Label],
    confidence: Confidence,
    *,
    settings: RefitSettings = RefitSettings(),
    sensitive: SensitiveRule,
    analyzer: Analyzer | None = None,
    default_language: str = "ko",
    describe_source: str = "staff decisions",
) -> Confidence:
    """The answer threshold for `confidence`'s models fitted on staff's labels (the review threshold
    stays: the labels come from what reached review, too few from below it). Each label is scored
    out of fold: by a matcher of the YAML base plus the variants learned from the other folds.
    ValueError when there are too few labels to refit from (see RefitSettings)."""
    out_of_scope = sum(label.expect is None for label in labels)
    if len(labels) < settings.min_labels or out_of_scope < settings.min_out_of_scope:
        raise ValueError(
            f"too few labels to refit from: {len(labels)} ({out_of_scope} not to be answered); "
            f"at least {settings.min_labels} ({settings.min_out_of_scope} not to be answered) are needed"
        )
    if all(label.expect is None for label in labels):
        raise ValueError("no label says which entry answers a text: nothing to refit from")
    order = list(range(len(labels)))
    random.Random(120).shuffle(order)
    folds = max(settings.folds, 2)
    fold_of = {index: position % folds for position, index in enumerate(order)}
    labelled: list[Labelled | None] = [None] * len(labels)
    for fold in range(folds):
        learned = [label for i, label in enumerate(labels) if label.variant and fold_of[i] != fold]
        # The fold's own texts are not questions here, even where `faq learn` wrote them into YAML.
        own = {
            normalize(label.text) for i, label in enumerate(labels) if label.variant and fold_of[i] == fold
        }
        matcher = Matcher(merge(without(base, own), learned), confidence=confidence, analyzer=analyzer)
        for i, label in enumerate(labels):
            if fold_of[i] == fold:
                labelled[i] = labelled_text(matcher, label.text, label.expect, default_language, sensitive)
    found = [item for item in labelled if item is not None]
    weights, rate = traffic_weights(found, settings.out_of_scope_rate)
    in_scope = sum(item.in_scope for item in found)

    def describe(chosen: Thresholds, models: str) -> CalibrationReport:
        return CalibrationReport.of(
            chosen,
            models,
            source=describe_source,
            texts=len(found),
            in_scope=in_scope,
            target_precision=settings.target_precision,
            review_precision=settings.review_precision,
            out_of_scope_rate=rate,
            base=base,
        )

    fitted = fit(
        found,
        base=confidence,
        target_precision=settings.target_precision,
        review_precision=settings.review_precision,
        out_of_scope_rate=rate,
        folds=folds,
        describe=describe,
        # Staff see what reached review, not what was answered or forwarded: labels that chosen are
        # fit to pick thresholds on, not to teach the shipped models what out of scope looks like.
        refit_models=False,
    )
    answer, review = fitted.answer_threshold, min(confidence.review_threshold, fitted.answer_threshold)
    report = fitted.report
    scored = outcomes(confidence, found, weights)
    if answer >= 1.0 and not evidently_below(scored, confidence.answer_threshold, settings.target_precision):
        # No threshold has the evidence to reach the target, and the one in use has none that it
        # misses it either: too few labels to move it, so it stays.
        answer, review = confidence.answer_threshold, confidence.review_threshold
        if report is not None:
            precision, coverage, out_answered, review_share = measure(scored, answer, review)
            report = replace(
                report,
                precision=precision,
                coverage=coverage,
                out_of_scope_answered=out_answered,
                review_share=review_share,
                models="kept",
            )
    return fitted.with_thresholds(answer, review, report)


def without(base: KnowledgeBase, texts: set[str]) -> KnowledgeBase:
    """The base without the questions whose normalised text is in `texts` (learned ones that `faq
    learn` has written into the YAML files), keeping at least one question of every entry."""
    if not texts:
        return base
    entries = []
    for entry in base.entries:
        questions = {
            language: [q for q in qs if normalize(q) not in texts] for language, qs in entry.questions.items()
        }
        questions = {language: qs for language, qs in questions.items() if qs}
        entries.append(entry.model_copy(update={"questions": questions}) if questions else entry)
    return KnowledgeBase(entries=tuple(entries), files=base.files)
