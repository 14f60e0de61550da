"""How sure the matcher is, and when that is sure enough: a logistic model over a candidate's signals,
and the two thresholds (answer now, send to review) chosen from a labelled file so that automatic
answers reach a target precision at the real out-of-scope rate.

`python bot.py faq calibrate --queries FILE` fits both and writes `calibration.json` beside the FAQ
files; the knowledge holder reads it with them. Without that file a default model is used with the
thresholds from config.yaml.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from knowledge.model import FaqEntry, KnowledgeBase

CALIBRATION_FILE = "calibration.json"
VERSION = 1

# The signals of one candidate entry for one text (knowledge/matcher.py computes them):
FEATURES = (
    "bm25",  # BM25 of the best variant, as a share of what the text's words could score
    "char",  # character n-gram cosine to the best variant
    "centroid",  # character n-gram cosine to all of the entry's variants together
    "words",  # word cosine to all of the entry's variants together
    "answer",  # character n-gram cosine to the answer
    "keyword",  # 1 when one of the entry's keywords is in the text
    "margin",  # the entry's blended score minus the best other candidate's
    "votes",  # share of the ten nearest variants that belong to the entry, by similarity
    "unknown",  # share of the text's word weight that no question has (the same for every candidate)
    "length",  # log(1 + number of words)
    "classifier",  # a linear classifier's score for the entry (0 where the base is too thin for one)
    "classifier_margin",  # that score minus the best other entry's
    "agree",  # 1 when the entry is first both by the blended similarity and by the classifier
    "covered",  # share of the text's word weight found anywhere in the entry's questions
)

# The default model, used until `faq calibrate` has been run: set by hand so that every signal counts
# the way it should (more similarity, margin, coverage: more likely; words no question has: less).
# On the shipped FAQ's held-out paraphrases it answers as much as the calibrated model at the default
# threshold, but its probabilities are not calibrated for any base: run `faq calibrate`.
_DEFAULT_WEIGHTS = (3.0, 3.0, 1.0, 1.0, 3.0, 0.5, 4.0, 2.0, -3.0, 0.0, 1.0, 2.0, 1.0, 2.0)
_DEFAULT_INTERCEPT = -5.0


@dataclass(frozen=True)
class CalibrationReport:
    """Where the thresholds came from and what they gave on the labelled file (out of fold)."""

    calibrated_at: str
    queries_file: str
    queries: int
    in_scope: int
    target_precision: float
    review_precision: float
    out_of_scope_rate: float
    knowledge_entries: int
    knowledge_fingerprint: str
    precision: float
    coverage: float
    out_of_scope_answered: float
    review_share: float


@dataclass(frozen=True)
class Confidence:
    """A logistic model over FEATURES and the thresholds that act on its probability."""

    weights: tuple[float, ...]
    intercept: float
    answer_threshold: float
    review_threshold: float
    report: CalibrationReport | None = None

    @classmethod
    def default(cls, answer_threshold: float = 0.80, review_threshold: float = 0.45) -> Confidence:
        return cls(_DEFAULT_WEIGHTS, _DEFAULT_INTERCEPT, answer_threshold, review_threshold)

    def probability(self, features: Sequence[float]) -> float:
        z = self.intercept + sum(w * f for w, f in zip(self.weights, features, strict=True))
        return 1.0 / (1.0 + math.exp(-max(min(z, 60.0), -60.0)))

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """`probability` of each row of a candidates x FEATURES matrix."""
        z = np.clip(features @ np.asarray(self.weights) + self.intercept, -60.0, 60.0)
        result: np.ndarray = 1.0 / (1.0 + np.exp(-z))
        return result

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "version": VERSION,
            "features": list(FEATURES),
            "weights": [round(w, 6) for w in self.weights],
            "intercept": round(self.intercept, 6),
            "answer_threshold": self.answer_threshold,
            "review_threshold": self.review_threshold,
            "report": asdict(self.report) if self.report else None,
        }
        return json.dumps(data, ensure_ascii=False, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Confidence:
        """Read a calibration file; ValueError says what is wrong with it."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"not JSON: {exc}") from exc
        if not isinstance(data, dict) or data.get("version") != VERSION:
            raise ValueError(f"not a version {VERSION} calibration file: run `faq calibrate` again")
        if data.get("features") != list(FEATURES):
            raise ValueError("made for other matcher signals: run `faq calibrate` again")
        try:
            weights = tuple(float(w) for w in data["weights"])
            answer, review = float(data["answer_threshold"]), float(data["review_threshold"])
            report = CalibrationReport(**data["report"]) if data.get("report") else None
            confidence = cls(weights, float(data["intercept"]), answer, review, report)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed calibration: {exc}") from exc
        if len(weights) != len(FEATURES) or not 0 <= review <= answer <= 1:
            raise ValueError("malformed calibration: wrong number of weights or thresholds out of order")
        return confidence


def knowledge_fingerprint(base: KnowledgeBase) -> str:
    """Changes when an entry's questions, keywords or answers change (a calibration may be stale)."""
    digest = hashlib.sha256()
    for entry in base.entries:
        content = [entry.id, entry.questions, entry.answer, entry.keywords, entry.synonyms, entry.handoff]
        digest.update(json.dumps(content, ensure_ascii=False, sort_keys=True).encode())
    return digest.hexdigest()[:16]


class _Candidate(Protocol):
    @property
    def entry_index(self) -> int: ...
    @property
    def features(self) -> tuple[float, ...]: ...


@dataclass(frozen=True)
class Labelled:
    """A text of the labelled file and the candidates the matcher found for it."""

    expect: str | None
    candidates: Sequence[_Candidate]


@dataclass(frozen=True)
class _Outcome:
    probability: float
    answerable: bool  # the top candidate may be answered automatically (handoff: auto)
    correct: bool
    in_scope: bool
    weight: float


def fit(
    labelled: Sequence[Labelled],
    entries: Sequence[FaqEntry],
    *,
    target_precision: float = 0.95,
    review_precision: float = 0.5,
    out_of_scope_rate: float | None = None,
    folds: int = 5,
    describe: Callable[[float, float, float, float], CalibrationReport] | None = None,
) -> Confidence:
    """Fit the model and choose the thresholds.

    The thresholds are chosen on out-of-fold probabilities (each text scored by a model that did not
    see it), with out-of-scope texts weighted so that they make up `out_of_scope_rate` of the traffic
    (default: their share in the file). The answer threshold is the lowest at which the automatic
    answers reach `target_precision`; the review threshold the lowest at which the suggestions below
    the answer threshold are still right at least `review_precision` of the time.
    """
    in_scope = sum(item.expect is not None for item in labelled)
    if in_scope == 0:
        raise ValueError("the labelled file has no in-scope texts (every expect is null)")
    out_of_scope = len(labelled) - in_scope
    rate = out_of_scope / len(labelled) if out_of_scope_rate is None else out_of_scope_rate
    if out_of_scope == 0 and rate > 0:
        raise ValueError("an out-of-scope rate needs out-of-scope texts (expect: null) in the file")
    weights = [
        (
            rate * len(labelled) / out_of_scope
            if item.expect is None
            else (1 - rate) * len(labelled) / in_scope
        )
        for item in labelled
    ]

    order = list(range(len(labelled)))
    random.Random(120).shuffle(order)
    fold_of = {index: position % max(folds, 2) for position, index in enumerate(order)}
    outcomes: list[_Outcome] = []
    for fold in range(max(folds, 2)):
        train = [i for i in range(len(labelled)) if fold_of[i] != fold]
        model = _fit_model([labelled[i] for i in train], entries, [weights[i] for i in train])
        for i in (i for i in range(len(labelled)) if fold_of[i] == fold):
            outcomes.append(_outcome(model, labelled[i], entries, weights[i]))
    final = _fit_model(labelled, entries, weights)

    answer = _answer_threshold(outcomes, target_precision)
    review = _review_threshold(outcomes, answer, review_precision)
    precision, coverage, out_answered, review_share = _measure(outcomes, answer, review)
    report = describe(precision, coverage, out_answered, review_share) if describe else None
    return Confidence(final.weights, final.intercept, answer, review, report)


def _fit_model(
    labelled: Sequence[Labelled], entries: Sequence[FaqEntry], weights: Sequence[float]
) -> Confidence:
    from sklearn.linear_model import LogisticRegression

    rows: list[tuple[float, ...]] = []
    labels: list[int] = []
    row_weights: list[float] = []
    for item, weight in zip(labelled, weights, strict=True):
        for candidate in item.candidates:
            rows.append(candidate.features)
            labels.append(int(item.expect is not None and entries[candidate.entry_index].id == item.expect))
            row_weights.append(weight)
    if len(set(labels)) < 2:
        raise ValueError("the labelled file must have texts the matcher gets right and texts it does not")
    model = LogisticRegression(C=10.0, max_iter=2000)
    model.fit(np.asarray(rows), np.asarray(labels), sample_weight=np.asarray(row_weights))
    coefficients = tuple(float(c) for c in model.coef_[0])
    return Confidence(coefficients, float(model.intercept_[0]), 1.0, 0.0)


def _outcome(model: Confidence, item: Labelled, entries: Sequence[FaqEntry], weight: float) -> _Outcome:
    if not item.candidates:
        return _Outcome(0.0, False, False, item.expect is not None, weight)
    scored = sorted(item.candidates, key=lambda c: (-model.probability(c.features), c.entry_index))
    top = scored[0]
    entry = entries[top.entry_index]
    return _Outcome(
        model.probability(top.features),
        entry.handoff == "auto",
        entry.id == item.expect,
        item.expect is not None,
        weight,
    )


def _answer_threshold(outcomes: Sequence[_Outcome], target: float) -> float:
    return _lowest_threshold([o for o in outcomes if o.answerable], target, above=1.0)


def _review_threshold(outcomes: Sequence[_Outcome], answer: float, target: float) -> float:
    return _lowest_threshold([o for o in outcomes if o.answerable and o.probability < answer], target, answer)


def _lowest_threshold(outcomes: Sequence[_Outcome], target: float, above: float) -> float:
    """The lowest probability at which the outcomes at or above it (and below `above`) are right at
    least `target` of the time, by weight; `above` when there is none."""
    ranked = sorted(outcomes, key=lambda o: -o.probability)
    threshold = above
    taken = correct = 0.0
    for index, outcome in enumerate(ranked):
        taken += outcome.weight
        correct += outcome.weight * outcome.correct
        following = ranked[index + 1].probability if index + 1 < len(ranked) else -1.0
        # Only between two different probabilities can a threshold separate them.
        if following < outcome.probability and correct / taken >= target:
            threshold = outcome.probability
    # Rounded down, so that the text the threshold was taken from still reaches it.
    return math.floor(threshold * 1e6) / 1e6


def _measure(outcomes: Sequence[_Outcome], answer: float, review: float) -> tuple[float, float, float, float]:
    """(precision, coverage, share of out-of-scope texts answered, share sent to review), weighted."""
    answered = [o for o in outcomes if o.answerable and o.probability >= answer]
    reviewed = [o for o in outcomes if o.answerable and review <= o.probability < answer]
    in_scope = sum(o.weight for o in outcomes if o.in_scope)
    out_of_scope = sum(o.weight for o in outcomes if not o.in_scope)
    answered_weight = sum(o.weight for o in answered)
    correct = sum(o.weight for o in answered if o.correct)
    answered_in_scope = sum(o.weight for o in answered if o.in_scope)
    answered_out_of_scope = answered_weight - answered_in_scope
    return (
        round(correct / answered_weight, 4) if answered_weight else 1.0,
        round(answered_in_scope / in_scope, 4) if in_scope else 0.0,
        round(answered_out_of_scope / out_of_scope, 4) if out_of_scope else 0.0,
        round(sum(o.weight for o in reviewed) / (in_scope + out_of_scope), 4),
    )


def save(confidence: Confidence, folder: Path) -> Path:
    path = folder / CALIBRATION_FILE
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(confidence.to_json(), encoding="utf-8")
    temporary.replace(path)
    return path


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()
