"""How sure the matcher is, and when that is sure enough.

Two small logistic models in a row. The first scores each candidate entry from its signals (FEATURES)
and so ranks them; the second turns the best candidate's score and its lead over the next one into
the probability that it is the right answer. Both use signals that mean the same on any FAQ (shares,
margins, agreement between signals), and the default pair is fitted offline on FAQs of different
shapes (`bench/fit_confidence.py`) and shipped as `confidence.json` beside this file, with the answer
and review thresholds that kept automatic answers at 0.95 precision on every one of them.

`python bot.py faq calibrate` chooses the thresholds for one city's FAQ from its labelled texts (and
refits the models too when there are enough of them and that answers more), and writes
`calibration.json` beside the FAQ files; the knowledge holder reads it with them.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from knowledge.model import FaqEntry, KnowledgeBase

CALIBRATION_FILE = "calibration.json"
DEFAULT_MODEL = Path(__file__).with_name("confidence.json")
VERSION = 2

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
    "said",  # share of the best variant's own word weight that the text has
    "firsts",  # share of five signals (bm25, char, centroid, words, classifier) that rank the entry first
    "variants",  # log(1 + the entry's number of question variants)
    "classifier_on",  # 1 when the base has the linear classifier (enough variants per entry)
    "crowding",  # character n-gram cosine of the entry's questions to the nearest other entry's
    "exact",  # 1 when the text is one of the entry's questions as written, and no other entry's
    "entries",  # log(1 + the number of entries): a lead over two others says less than over a hundred
)
EXACT = FEATURES.index("exact")
# A text that is exactly one entry's question is that entry: at least this sure, whatever the models say.
EXACT_PROBABILITY = 0.99

# The second model's inputs: the best candidate's first-model score and its lead over the next one.
TOP_FEATURES = ("score", "lead")


class OutdatedCalibration(ValueError):
    """A calibration file written for another version of the matcher: well formed, but its numbers
    mean nothing to this one."""


@dataclass(frozen=True)
class CalibrationReport:
    """Where the thresholds came from and what they gave on the labelled texts (out of fold)."""

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
    # "thresholds": the shipped models, only the thresholds chosen; "refitted": the models too;
    # "kept": a refit from staff's labels that found too little evidence to move the thresholds.
    models: str = "refitted"

    @classmethod
    def of(
        cls,
        chosen: Thresholds,
        models: str,
        *,
        source: str,
        texts: int,
        in_scope: int,
        target_precision: float,
        review_precision: float,
        out_of_scope_rate: float,
        base: KnowledgeBase,
    ) -> CalibrationReport:
        """The report of thresholds chosen now on `texts` labelled texts from `source`."""
        return cls(
            calibrated_at=now_iso(),
            queries_file=source,
            queries=texts,
            in_scope=in_scope,
            target_precision=target_precision,
            review_precision=review_precision,
            out_of_scope_rate=round(out_of_scope_rate, 4),
            knowledge_entries=len(base),
            knowledge_fingerprint=knowledge_fingerprint(base),
            precision=chosen.precision,
            coverage=chosen.coverage,
            out_of_scope_answered=chosen.out_of_scope_answered,
            review_share=chosen.review_share,
            models=models,
        )


@dataclass(frozen=True)
class Confidence:
    """The two models and the thresholds that act on the probability of the best candidate."""

    weights: tuple[float, ...]  # over FEATURES: a candidate's score
    intercept: float
    top_weights: tuple[float, ...]  # over TOP_FEATURES: the best candidate's probability
    top_intercept: float
    answer_threshold: float
    review_threshold: float
    report: CalibrationReport | None = None

    @classmethod
    def default(
        cls, answer_threshold: float | None = None, review_threshold: float | None = None
    ) -> Confidence:
        """The shipped models with their thresholds, or with the ones given (config.yaml's)."""
        shipped = _shipped()
        return replace(
            shipped,
            answer_threshold=shipped.answer_threshold if answer_threshold is None else answer_threshold,
            review_threshold=shipped.review_threshold if review_threshold is None else review_threshold,
        )

    def scores(self, features: np.ndarray) -> np.ndarray:
        """The first model's score (a log-odds) of each row of a candidates x FEATURES matrix."""
        result: np.ndarray = features @ np.asarray(self.weights) + self.intercept
        return result

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """For each candidate (a row of FEATURES), the probability that it is the right answer.

        The best candidate's comes from its score and its lead over the next one. The others share
        what is left (1 - the best one's) by their scores, and none gets more than the same formula
        gives it with its (negative) lead, so the probabilities rank as the scores do and add up to
        at most 1."""
        scores = self.scores(features)
        lead = scores - _best_other(scores)
        a, b = self.top_weights
        z = np.clip(a * scores + b * lead + self.top_intercept, -60.0, 60.0)
        result: np.ndarray = 1.0 / (1.0 + np.exp(-z))
        exact = features[:, EXACT] > 0
        if exact.any():
            result[exact] = np.maximum(result[exact], EXACT_PROBABILITY)
        if len(result) > 1:
            best = int(np.argmax(scores))
            others = scores < scores[best]  # equal scores are equals (the language breaks ties)
            if not others.any():
                return result
            shares = np.exp(scores[others] - scores[others].max())
            left = (1.0 - result[best]) * shares / shares.sum()
            result[others] = np.minimum(result[others], left)
        return result

    def with_thresholds(self, answer: float, review: float, report: CalibrationReport | None) -> Confidence:
        return replace(self, answer_threshold=answer, review_threshold=review, report=report)

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "version": VERSION,
            "features": list(FEATURES),
            "weights": [round(w, 6) for w in self.weights],
            "intercept": round(self.intercept, 6),
            "top_features": list(TOP_FEATURES),
            "top_weights": [round(w, 6) for w in self.top_weights],
            "top_intercept": round(self.top_intercept, 6),
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
            raise OutdatedCalibration(f"not a version {VERSION} calibration file: run `faq calibrate` again")
        if data.get("features") != list(FEATURES) or data.get("top_features") != list(TOP_FEATURES):
            raise OutdatedCalibration("made for other matcher signals: run `faq calibrate` again")
        try:
            weights = tuple(float(w) for w in data["weights"])
            top_weights = tuple(float(w) for w in data["top_weights"])
            answer, review = float(data["answer_threshold"]), float(data["review_threshold"])
            report = CalibrationReport(**data["report"]) if data.get("report") else None
            confidence = cls(
                weights,
                float(data["intercept"]),
                top_weights,
                float(data["top_intercept"]),
                answer,
                review,
                report,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed calibration: {exc}") from exc
        if len(weights) != len(FEATURES) or len(top_weights) != len(TOP_FEATURES):
            raise ValueError("malformed calibration: wrong number of weights")
        if not 0 <= review <= answer <= 1:
            raise ValueError("malformed calibration: thresholds out of order (0 <= review <= answer <= 1)")
        return confidence


@cache
def _shipped() -> Confidence:
    return Confidence.from_json(DEFAULT_MODEL.read_text(encoding="utf-8"))


def _best_other(values: np.ndarray) -> np.ndarray:
    """For each item, the largest of the other items (the item itself less 10 when there is no other:
    a lone candidate leads by a wide margin)."""
    if len(values) < 2:
        return values - 10.0
    second, first = np.partition(values, len(values) - 2)[-2:]
    others: np.ndarray = np.where(values >= first, second, first)
    return others


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


# The models are refitted on a city's own texts only when there are this many in scope; below that the
# shipped ones rank and judge better than a fit on a few dozen texts (thresholds are still chosen).
MIN_TEXTS_TO_REFIT = 300


@dataclass(frozen=True)
class Labelled:
    """A labelled text and the candidates the matcher found for it: their signals (a row each), which
    of them is the right entry, and which may be answered automatically (handoff: auto)."""

    in_scope: bool
    features: np.ndarray
    correct: np.ndarray
    automatic: np.ndarray
    # False when the decision never answers this text whatever the matcher says (a sensitive report).
    answerable: bool = True

    @classmethod
    def of(
        cls,
        expect: str | None,
        candidates: Sequence[_Candidate],
        entries: Sequence[FaqEntry],
        *,
        answerable: bool = True,
    ) -> Labelled:
        found = [entries[c.entry_index] for c in candidates]
        return cls(
            in_scope=expect is not None,
            features=np.asarray([c.features for c in candidates], dtype=np.float64).reshape(
                -1, len(FEATURES)
            ),
            correct=np.asarray([expect is not None and e.id == expect for e in found], dtype=bool),
            automatic=np.asarray([e.handoff == "auto" for e in found], dtype=bool),
            answerable=answerable,
        )


@dataclass(frozen=True)
class Outcome:
    """What the best candidate of one labelled text would get: its probability, whether it may be
    answered automatically, whether it is right, and the text's weight in the traffic."""

    probability: float
    answerable: bool
    correct: bool
    in_scope: bool
    weight: float


@dataclass(frozen=True)
class Thresholds:
    answer: float
    review: float
    precision: float
    coverage: float
    out_of_scope_answered: float
    review_share: float


def traffic_weights(
    labelled: Sequence[Labelled], out_of_scope_rate: float | None
) -> tuple[list[float], float]:
    """Each text's weight, so that out-of-scope texts make up `out_of_scope_rate` of the traffic (by
    default their share among the texts), and that rate."""
    in_scope = sum(item.in_scope for item in labelled)
    if in_scope == 0:
        raise ValueError("the labelled file has no in-scope texts (every expect is null)")
    out_of_scope = len(labelled) - in_scope
    rate = out_of_scope / len(labelled) if out_of_scope_rate is None else out_of_scope_rate
    if out_of_scope == 0 and rate > 0:
        raise ValueError("an out-of-scope rate needs out-of-scope texts (expect: null) in the file")
    weights = [
        rate * len(labelled) / out_of_scope if not item.in_scope else (1 - rate) * len(labelled) / in_scope
        for item in labelled
    ]
    return weights, rate


def fit(
    labelled: Sequence[Labelled],
    *,
    base: Confidence,
    target_precision: float = 0.95,
    review_precision: float = 0.5,
    out_of_scope_rate: float | None = None,
    folds: int = 5,
    describe: Callable[[Thresholds, str], CalibrationReport] | None = None,
    refit_models: bool = True,
) -> Confidence:
    """Choose the thresholds for `base`'s models on the labelled texts; with enough texts in scope
    (and `refit_models`), also refit the models (each text scored by models fitted without it) and
    keep whichever answers more at the target precision.

    The answer threshold is the lowest at which the automatic answers reach `target_precision` at
    `out_of_scope_rate`; the review threshold the lowest at which the suggestions below the answer
    threshold are still right at least `review_precision` of the time.
    """
    weights, _ = traffic_weights(labelled, out_of_scope_rate)
    options = [("thresholds", base, outcomes(base, labelled, weights))]
    if refit_models and sum(item.in_scope for item in labelled) >= MIN_TEXTS_TO_REFIT:
        options.append(("refitted", fit_models(labelled, weights), _out_of_fold(labelled, weights, folds)))
    best: tuple[str, Confidence, Thresholds] | None = None
    for kind, model, found in options:
        chosen = choose_thresholds(found, target_precision, review_precision)
        if best is None or chosen.coverage > best[2].coverage:
            best = (kind, model, chosen)
    assert best is not None
    kind, model, chosen = best
    report = describe(chosen, kind) if describe else None
    return model.with_thresholds(chosen.answer, chosen.review, report)


def fit_models(
    labelled: Sequence[Labelled], weights: Sequence[float], *, strength: float = 1.0
) -> Confidence:
    """Both models, fitted on the labelled texts (weighted): the candidate model on every candidate,
    the second on each text's best candidate. `strength`: the inverse of the L2 penalty."""
    from sklearn.linear_model import LogisticRegression

    rows = np.vstack([item.features for item in labelled])
    labels = np.concatenate([item.correct for item in labelled])
    if len(set(labels.tolist())) < 2:
        raise ValueError("the labelled texts must have some the matcher gets right and some it does not")
    row_weights = np.concatenate(
        [np.full(len(item.correct), w) for item, w in zip(labelled, weights, strict=True)]
    )
    first = LogisticRegression(C=strength, max_iter=5000)
    first.fit(rows, labels, sample_weight=row_weights)
    ranking = Confidence(
        tuple(float(c) for c in first.coef_[0]), float(first.intercept_[0]), (1.0, 0.0), 0.0, 1.0, 0.0
    )

    tops, top_labels, top_weights = [], [], []
    for item, weight in zip(labelled, weights, strict=True):
        if len(item.correct) == 0:
            continue
        scores = ranking.scores(item.features)
        best = int(np.argmax(scores))
        tops.append((scores[best], scores[best] - _best_other(scores)[best]))
        top_labels.append(bool(item.correct[best]))
        top_weights.append(weight)
    second = LogisticRegression(C=1.0, max_iter=5000)
    second.fit(np.asarray(tops), np.asarray(top_labels), sample_weight=np.asarray(top_weights))
    return replace(
        ranking,
        top_weights=tuple(float(c) for c in second.coef_[0]),
        top_intercept=float(second.intercept_[0]),
    )


def _out_of_fold(labelled: Sequence[Labelled], weights: Sequence[float], folds: int) -> list[Outcome]:
    """Each text's outcome under models fitted on the other folds."""
    order = list(range(len(labelled)))
    random.Random(120).shuffle(order)
    folds = max(folds, 2)
    fold_of = {index: position % folds for position, index in enumerate(order)}
    found: list[Outcome] = []
    for fold in range(folds):
        train = [i for i in range(len(labelled)) if fold_of[i] != fold]
        test = [i for i in range(len(labelled)) if fold_of[i] == fold]
        model = fit_models([labelled[i] for i in train], [weights[i] for i in train])
        found += outcomes(model, [labelled[i] for i in test], [weights[i] for i in test])
    return found


def outcomes(model: Confidence, labelled: Sequence[Labelled], weights: Sequence[float]) -> list[Outcome]:
    """What each text's best candidate gets under `model`."""
    found = []
    for item, weight in zip(labelled, weights, strict=True):
        if len(item.correct) == 0:
            found.append(Outcome(0.0, False, False, item.in_scope, weight))
            continue
        probabilities = model.probabilities(item.features)
        best = int(np.argmax(probabilities))  # the first of equals: the matcher's order breaks ties
        found.append(
            Outcome(
                float(probabilities[best]),
                item.answerable and bool(item.automatic[best]),
                bool(item.correct[best]),
                item.in_scope,
                weight,
            )
        )
    return found


def choose_thresholds(found: Sequence[Outcome], target: float, review_target: float) -> Thresholds:
    answer = lowest_threshold([o for o in found if o.answerable], target, above=1.0)
    review = review_threshold(
        [o for o in found if o.answerable and o.probability < answer], review_target, answer
    )
    return Thresholds(answer, review, *measure(found, answer, review))


# The suggestions nearest the review threshold that must be right `review_target` of the time: this
# share of those below the answer threshold, and at least this many.
_REVIEW_WINDOW_SHARE = 0.1
_REVIEW_WINDOW_MIN = 20


def review_threshold(found: Sequence[Outcome], target: float, above: float) -> float:
    """The lowest probability down to which the suggestions *near* it are still right at least
    `target` of the time: going down from `above`, the precision of the last window of suggestions
    (see _REVIEW_WINDOW_SHARE) must hold. A band's overall precision would let weak suggestions in
    behind strong ones."""
    ranked = sorted(found, key=lambda o: -o.probability)
    window = max(_REVIEW_WINDOW_MIN, int(len(ranked) * _REVIEW_WINDOW_SHARE))
    threshold = above
    for index, outcome in enumerate(ranked):
        near = ranked[max(0, index - window + 1) : index + 1]
        taken = sum(o.weight for o in near)
        correct = sum(o.weight for o in near if o.correct)
        if taken and correct / taken < target:
            if index + 1 >= window:
                break
            continue  # too few seen yet to judge the suggestions near here
        following = ranked[index + 1].probability if index + 1 < len(ranked) else -1.0
        if following < outcome.probability:
            threshold = outcome.probability
    return math.floor(threshold * 1e6) / 1e6


def lowest_threshold(found: Sequence[Outcome], target: float, above: float) -> float:
    """The lowest probability at which the outcomes at or above it (and below `above`) are right at
    least `target` of the time, by weight, and by the lower bound of one standard error; `above` when
    there is none."""
    ranked = sorted(found, key=lambda o: -o.probability)
    total = sum(o.weight for o in ranked)
    scale = len(ranked) / total if total else 1.0  # weights as counts of texts, for the evidence
    threshold = above
    taken = correct = 0.0
    for index, outcome in enumerate(ranked):
        taken += outcome.weight
        correct += outcome.weight * outcome.correct
        following = ranked[index + 1].probability if index + 1 < len(ranked) else -1.0
        # Only between two different probabilities can a threshold separate them.
        # The lower bound of the share right, not the share itself: a few lucky texts cannot lower it.
        evident = _wilson_lower(correct * scale, taken * scale) >= target
        if following < outcome.probability and evident:
            threshold = outcome.probability
    # Rounded down, so that the text the threshold was taken from still reaches it.
    return math.floor(threshold * 1e6) / 1e6


def evidently_below(found: Sequence[Outcome], threshold: float, target: float) -> bool:
    """True when the answers at or above `threshold` are right less than `target` of the time even by
    the upper bound of one standard error: the evidence says the threshold breaks the promise."""
    answered = [o for o in found if o.answerable and o.probability >= threshold]
    total = sum(o.weight for o in answered)
    if not answered or total == 0:
        return False
    scale = len(answered) / total
    correct = sum(o.weight for o in answered if o.correct)
    return 1.0 - _wilson_lower((total - correct) * scale, total * scale) < target


def _wilson_lower(successes: float, trials: float, z: float = 1.0) -> float:
    if trials <= 0:
        return 0.0
    share = successes / trials
    centre = share + z * z / (2 * trials)
    spread = z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials))
    return (centre - spread) / (1 + z * z / trials)


def measure(found: Sequence[Outcome], answer: float, review: float) -> tuple[float, float, float, float]:
    """(precision, coverage, share of out-of-scope texts answered, share sent to review), weighted."""
    answered = [o for o in found if o.answerable and o.probability >= answer]
    reviewed = [o for o in found if o.answerable and review <= o.probability < answer]
    in_scope = sum(o.weight for o in found if o.in_scope)
    out_of_scope = sum(o.weight for o in found if not o.in_scope)
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
