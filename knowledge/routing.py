"""Which department a text belongs to, learned from examples: texts with the department that handled
them (historic complaints imported from a spreadsheet, and resolved tickets, where a staff
reassignment made the final department the label).

The model is linear: TF-IDF over the text's words (Kiwi morphemes for Korean, English stems) and its
character n-grams, and a linear support vector machine per department (one against the rest). The
examples are split in five folds; a machine is trained on each four and scores the fifth, so every
example is scored by a model that never saw it. Those held-out scores fit each department's sigmoid
(Platt scaling: scores become probabilities). The final model is the average of the five fold
models.

The confidence threshold is the lowest confidence at which held-out predictions that confident were
right at least `target_precision` of the time (by a lower confidence bound). Which held-out
predictions: by default (validation "forward"), when the examples carry times, those of the later
half of the examples, in five blocks in time order, each scored by a machine trained only on the
examples before it: the model is judged as it is used, on texts newer than all it learned from.
Shuffled folds mix in texts from the same weeks (a campaign of near-identical complaints, a
department's old name) and promise more than the future keeps: replaying Incheon's complaints in
time order, tickets routed at a shuffled threshold for 0.90 were right 63 % of the time, at the
forward threshold 91 % (bench/routing.py --replay-days). Without times (or all at one moment)
the shuffled folds choose it. Below the threshold the caller sends the text to a person (triage).

Departments are reorganised and renamed. Optionally (`time_scale_days`) the model also learns when
each department took its examples and weighs a prediction for a given moment by how active each
department was around then (P(department | text, time) ~ P(department | text) * P(time | department)).

Knows nothing about tickets: it is given texts and department names and answers with names.
"""

from __future__ import annotations

import csv
import io
import math
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from knowledge.text import Analyzer, char_ngrams, normalize, shared_analyzer

DEFAULT_TARGET_PRECISION = 0.90
DEFAULT_MIN_EXAMPLES = 5
VALIDATIONS = ("forward", "shuffled")  # how the threshold is chosen: see the module's docstring
# Character n-grams and words live in one vocabulary; the prefix keeps "가로" the gram apart from
# "가로" the word.
_GRAM = "\x01"
_FOLDS = 5
# The SVM's C weighs the sum of the examples' hinge losses against the weights' size, so with few
# examples the same C regularises far more. C is 0.1 from about 700 examples on (the Incheon
# benchmark's choice) and grows to 1 for small sets, such as a city's first weeks of tickets.
_SVM_C = 0.1
_SVM_C_SMALL = 1.0
_SVM_C_EXAMPLES = 70.0
_SVM_TOLERANCE = 1e-3  # liblinear's default is 1e-4: ten times the work for the same ranking
# The most frequent words and n-grams kept: bounds the weights' memory (departments x features x 4
# bytes) and the time to learn, whatever the number and length of the examples.
_MAX_FEATURES = 50_000
# A department's activity at a moment far from all its examples: small, never zero, so that a text
# that plainly belongs to it still can.
_ACTIVITY_FLOOR = 1e-3
_SECONDS_PER_DAY = 86_400.0
_PLATT_ITERATIONS = 100
# The threshold is where the precision's lower bound (Wilson's, one standard error below) reaches the
# target, not its estimate: a held-out estimate from a few hundred examples is off by a few points.
_Z = 1.0

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class NotEnoughExamples(ValueError):
    """Too few departments with enough examples to learn anything."""


@dataclass(frozen=True)
class Estimate:
    """How the model did on held-out training examples (forward in time, or in shuffled folds)."""

    examples: int
    routed: int  # predicted at or above the threshold
    routed_correct: int
    top1: float
    top3: float

    @property
    def coverage(self) -> float:
        return self.routed / self.examples if self.examples else 0.0

    @property
    def precision(self) -> float:
        return self.routed_correct / self.routed if self.routed else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "examples": self.examples,
            "routed": self.routed,
            "routed_correct": self.routed_correct,
            "precision": round(self.precision, 4),
            "coverage": round(self.coverage, 4),
            "top1": round(self.top1, 4),
            "top3": round(self.top3, 4),
        }


def choose_threshold(
    confidences: Sequence[float], correct: Sequence[bool], target: float, *, z: float = _Z
) -> float:
    """The lowest confidence at which the predictions at least that confident are right at least
    `target` of the time, judged by the lower bound of a Wilson interval `z` standard errors wide (0:
    by the plain share); infinity when no confidence level gets there (nothing is routed)."""
    order = sorted(range(len(confidences)), key=lambda i: -confidences[i])
    right = 0
    threshold = math.inf
    for rank, index in enumerate(order, start=1):
        right += bool(correct[index])
        # Only where the confidence changes: tied predictions are routed together or not at all.
        last_of_tie = rank == len(order) or confidences[order[rank]] < confidences[index]
        if last_of_tie and wilson_lower(right, rank, z) >= target:
            threshold = confidences[index]
    return threshold


def wilson_lower(successes: int, trials: int, z: float) -> float:
    """The lower end of the Wilson score interval of a proportion (the plain share when z is 0)."""
    if trials == 0:
        return 0.0
    share = successes / trials
    if z == 0:
        return share
    spread = z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials))
    return (share + z * z / (2 * trials) - spread) / (1 + z * z / trials)


class DepartmentModel:
    """A learned router: `fit` on examples, then `predict` ranked departments with probabilities, or
    `route` the top one when it is at least as confident as `threshold`."""

    def __init__(
        self,
        *,
        target_precision: float = DEFAULT_TARGET_PRECISION,
        min_examples: int = DEFAULT_MIN_EXAMPLES,
        time_scale_days: float | None = None,
        validation: str = "forward",
        seed: int = 0,
        analyzer: Analyzer | None = None,
    ) -> None:
        if not 0.0 < target_precision <= 1.0:
            raise ValueError(f"target_precision must be in (0, 1], not {target_precision}")
        self.target_precision = target_precision
        self.min_examples = max(min_examples, _FOLDS)
        self.time_scale_days = time_scale_days
        if validation not in VALIDATIONS:
            raise ValueError(f"validation must be one of {', '.join(VALIDATIONS)}, not {validation!r}")
        self.validation = validation
        self.seed = seed
        self._analyzer = analyzer or shared_analyzer()
        self._vectorizer: Any = None
        self._weights = np.zeros((0, 0), dtype=np.float32)  # departments x features
        self._bias = np.zeros(0)
        self._platt = (np.zeros(0), np.zeros(0))  # per department: scores -> probabilities
        self._classes: tuple[str, ...] = ()
        self._times: dict[str, FloatArray] = {}
        self.threshold = math.inf
        self.estimate: Estimate | None = None  # at `threshold`, on the predictions that chose it
        self.validated_by = ""  # "forward" or "shuffled": which held-out predictions chose it
        # What the shuffled folds alone would have chosen, for comparison (the same when validated_by
        # is "shuffled").
        self.shuffled_threshold = math.inf
        self.shuffled_estimate: Estimate | None = None
        self.skipped: dict[str, int] = {}  # departments with too few examples, and how many they had

    # --- learning ---------------------------------------------------------------------------

    def fit(
        self,
        texts: Sequence[str],
        departments: Sequence[str],
        *,
        times: Sequence[datetime] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> DepartmentModel:
        """Learn from `texts` and the department of each; choose the threshold on held-out examples.
        `times` (when each example arrived) orders the forward validation and, with
        `time_scale_days`, weighs departments by their activity. Raises
        NotEnoughExamples when fewer than two departments have `min_examples` examples."""
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.model_selection import StratifiedKFold

        if len(texts) != len(departments) or (times is not None and len(times) != len(texts)):
            raise ValueError("texts, departments and times must have the same length")
        counts = Counter(departments)
        kept = [i for i, d in enumerate(departments) if counts[d] >= self.min_examples]
        self.skipped = {d: n for d, n in counts.items() if n < self.min_examples}
        labels = np.asarray([departments[i] for i in kept], dtype=object)
        classes = np.unique(labels) if len(labels) else labels
        if len(classes) < 2:
            raise NotEnoughExamples(
                f"need at least two departments with {self.min_examples} examples each (have {len(classes)})"
            )
        truth = np.searchsorted(classes, labels)
        moments = None if times is None else _days([times[i] for i in kept])
        days = moments if self.time_scale_days else None

        vectorizer = TfidfVectorizer(
            analyzer=_identity, sublinear_tf=True, min_df=2, max_features=_MAX_FEATURES, dtype=np.float32
        )
        matrix = vectorizer.fit_transform([self._tokens(texts[i]) for i in kept])

        # Each example's scores from the model of the fold that did not see it; the final model is
        # the fold models' average, so it is the kind of model the threshold was chosen for.
        scores = np.zeros((len(labels), len(classes)))
        weights = np.zeros((len(classes), matrix.shape[1]))
        bias = np.zeros(len(classes))
        folds = StratifiedKFold(n_splits=_FOLDS, shuffle=True, random_state=self.seed)
        splits = list(folds.split(np.zeros(len(labels)), truth))
        for done, (train, held_out) in enumerate(splits, start=1):
            fold_weights, fold_bias = self._svm(matrix[train], truth[train], len(classes))
            if progress is not None:
                progress(done, len(splits))
            scores[held_out] = matrix[held_out] @ fold_weights.T + fold_bias
            weights += fold_weights / len(splits)
            bias += fold_bias / len(splits)
        slope, intercept = _platt(scores, truth)
        probabilities = _probabilities(scores, slope, intercept)
        if days is not None:
            for train, held_out in splits:
                activity = self._activity_matrix(days[train], truth[train], len(classes), days[held_out])
                probabilities[held_out] = _normalised(probabilities[held_out] * activity)

        self.shuffled_threshold, self.shuffled_estimate = self._judge(probabilities, truth)
        self.threshold, self.estimate, self.validated_by = (
            self.shuffled_threshold,
            self.shuffled_estimate,
            "shuffled",
        )
        if self.validation == "forward" and moments is not None:
            forward = self._forward(matrix, truth, len(classes), moments, (slope, intercept))
            if forward is not None:
                self.threshold, self.estimate = self._judge(*forward)
                self.validated_by = "forward"

        self._vectorizer = vectorizer
        self._weights, self._bias = weights.astype(np.float32), bias
        self._platt = (slope, intercept)
        self._classes = tuple(str(c) for c in classes)
        self._times = {} if days is None else {c: np.sort(days[labels == c]) for c in self._classes}
        return self

    def _judge(self, probabilities: FloatArray, truth: IntArray) -> tuple[float, Estimate]:
        """The threshold that held-out `probabilities` support, and how the model did at it."""
        ranked = np.argsort(-probabilities, axis=1)
        top = ranked[:, 0]
        confidences = probabilities[np.arange(len(truth)), top]
        correct = top == truth
        threshold = choose_threshold(confidences.tolist(), correct.tolist(), self.target_precision)
        routed = confidences >= threshold
        return threshold, Estimate(
            examples=len(truth),
            routed=int(routed.sum()),
            routed_correct=int((routed & correct).sum()),
            top1=float(correct.mean()),
            top3=float((ranked[:, :3] == truth[:, None]).any(axis=1).mean()),
        )

    def _forward(
        self,
        matrix: Any,
        truth: IntArray,
        n_classes: int,
        moments: FloatArray,
        platt: tuple[FloatArray, FloatArray],
    ) -> tuple[FloatArray, IntArray] | None:
        """Probabilities for the later half of the examples, each of its five blocks (in time order)
        scored by a machine trained on the examples before the block, and their departments; None
        when the times do not order the examples (the later half starts at the first moment). The
        vocabulary and the sigmoids are those learned from all examples: the block's own department
        is learned only by the machine, which never sees the block."""
        order = np.argsort(moments, kind="stable")
        later = order[len(order) // 2 :]
        if not len(later) or moments[later[0]] <= moments[order[0]]:
            return None
        rows, held = [], []
        for block in np.array_split(later, _FOLDS):
            if not len(block):  # fewer than five later examples
                continue
            earlier = np.flatnonzero(moments < moments[block].min())
            present = np.unique(truth[earlier])
            if len(present) < 2:
                continue
            weights, bias = self._svm(matrix[earlier], truth[earlier], n_classes)
            raw = _sigmoid((np.asarray(matrix[block] @ weights.T) + bias) * platt[0] + platt[1])
            # A department without earlier examples cannot be predicted yet: its texts count as wrong.
            unseen = np.ones(n_classes, dtype=bool)
            unseen[present] = False
            raw[:, unseen] = 0.0
            if self.time_scale_days:
                raw = raw * self._activity_matrix(moments[earlier], truth[earlier], n_classes, moments[block])
            rows.append(_normalised(raw))
            held.append(block)
        if not held:
            return None
        return np.vstack(rows), truth[np.concatenate(held)]

    def _svm(self, matrix: Any, truth: IntArray, n_classes: int) -> tuple[FloatArray, FloatArray]:
        """One linear SVM per department (one against the rest): weights and biases."""
        from sklearn.svm import LinearSVC

        strength = min(_SVM_C_SMALL, max(_SVM_C, _SVM_C_EXAMPLES / max(1, matrix.shape[0])))
        svm = LinearSVC(C=strength, tol=_SVM_TOLERANCE, random_state=self.seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # liblinear's convergence chatter on tiny sets
            svm.fit(matrix, truth)
        weights = np.zeros((n_classes, matrix.shape[1]))
        bias = np.zeros(n_classes)
        if len(svm.classes_) == 2:  # liblinear learns one separator for two classes
            weights[svm.classes_] = np.vstack([-svm.coef_[0], svm.coef_[0]])
            bias[svm.classes_] = [-svm.intercept_[0], svm.intercept_[0]]
        else:
            weights[svm.classes_] = svm.coef_
            bias[svm.classes_] = svm.intercept_
        return weights, bias

    def _tokens(self, text: str) -> list[str]:
        normalized = normalize(text)
        return [*self._analyzer.words(normalized), *(_GRAM + g for g in char_ngrams(normalized))]

    # --- predicting -------------------------------------------------------------------------

    @property
    def departments(self) -> tuple[str, ...]:
        """The departments this model can predict."""
        return self._classes

    @property
    def examples(self) -> int:
        """How many examples it learned from (the skipped departments' left out): the shuffled folds
        scored them all."""
        return self.shuffled_estimate.examples if self.shuffled_estimate is not None else 0

    @property
    def fitted(self) -> bool:
        return self._vectorizer is not None

    def predict(
        self, text: str, *, at: datetime | None = None, limit: int | None = None
    ) -> list[tuple[str, float]]:
        """Departments for `text`, most probable first, with their probabilities (which sum to 1).
        `at`: the moment the text arrived, when the model learned departments' activity over time."""
        if self._vectorizer is None:
            raise RuntimeError("the department model has not been fitted")
        row = self._vectorizer.transform([self._tokens(text)])
        scores = np.asarray(row @ self._weights.T, dtype=float) + self._bias
        probabilities = _probabilities(scores, *self._platt)
        if at is not None and self._times:
            when = _days([at])
            activity = np.asarray([[self._activity(self._times[c], when)[0] for c in self._classes]])
            probabilities = _normalised(probabilities * activity)
        ranked = sorted(zip(self._classes, probabilities[0].tolist(), strict=True), key=lambda p: -p[1])
        return ranked[:limit] if limit is not None else ranked

    def route(self, text: str, *, at: datetime | None = None) -> tuple[str, float] | None:
        """The top department and its probability when that is at least the threshold, else None."""
        if not self.fitted:
            return None
        department, confidence = self.predict(text, at=at, limit=1)[0]
        return (department, confidence) if confidence >= self.threshold else None

    # --- time ---------------------------------------------------------------------------------

    def _activity(self, times: FloatArray, at: FloatArray) -> FloatArray:
        """How much a department took examples around each moment of `at`: the mean of a Gaussian
        kernel over its examples' times (1 when all were at that moment), with a floor."""
        if not len(times) or not self.time_scale_days:
            return np.ones(len(at))
        scaled = (at[:, None] - times[None, :]) / self.time_scale_days
        activity: FloatArray = np.exp(-0.5 * scaled**2).mean(axis=1) + _ACTIVITY_FLOOR
        return activity

    def _activity_matrix(
        self, days: FloatArray, truth: IntArray, n_classes: int, at: FloatArray
    ) -> FloatArray:
        return np.stack([self._activity(days[truth == c], at) for c in range(n_classes)], axis=1)


# --- spreadsheets of historic complaints ------------------------------------------------------------


class ExamplesFileError(ValueError):
    """A spreadsheet of examples that cannot be read; the message names the file and the line."""


@dataclass(frozen=True)
class FileExample:
    text: str
    department: str
    at: datetime | None
    line: int  # where the row starts in the file (1: the header)


_DATE_FORMATS = ("%Y-%m-%d", "%Y.%m.%d", "%Y/%m/%d", "%Y%m%d", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S")


def read_examples_csv(
    path: Path,
    *,
    text_column: str,
    department_column: str,
    title_column: str | None = None,
    date_column: str | None = None,
    encoding: str = "utf-8-sig",
) -> tuple[list[FileExample], list[int]]:
    """The rows of a CSV file with a header as examples: the title and the text joined, and the
    department as written. Returns them and the lines of rows without any text (left out). Raises
    ExamplesFileError naming the file and line of anything malformed."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ExamplesFileError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        content = raw.decode(encoding)
    except LookupError as exc:
        raise ExamplesFileError(f"unknown encoding {encoding!r}") from exc
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ExamplesFileError(
            f"{path}:{line}: not {encoding} text (save the sheet as CSV UTF-8, or give --encoding cp949)"
        ) from exc
    reader = csv.reader(io.StringIO(content, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise ExamplesFileError(f"{path}: the file is empty; it needs a header row")
        header = [name.strip() for name in header]
        wanted = [c for c in (text_column, department_column, title_column, date_column) if c]
        missing = [c for c in wanted if c not in header]
        if missing:
            raise ExamplesFileError(
                f"{path}:1: no column {', '.join(repr(c) for c in missing)} "
                f"(the header has {', '.join(repr(c) for c in header)})"
            )
        index = {name: header.index(name) for name in wanted}
        examples: list[FileExample] = []
        empty: list[int] = []
        line = reader.line_num + 1
        for row in reader:
            if not any(field.strip() for field in row):
                line = reader.line_num + 1
                continue
            if len(row) != len(header):
                raise ExamplesFileError(
                    f"{path}:{line}: {len(row)} fields where the header has {len(header)} "
                    "(a stray comma or quote?)"
                )
            title = row[index[title_column]].strip() if title_column else ""
            body = row[index[text_column]].strip()
            department = row[index[department_column]].strip()
            text = f"{title}\n{body}".strip()
            if not text:
                empty.append(line)
            elif not department:
                raise ExamplesFileError(f"{path}:{line}: no department in column {department_column!r}")
            else:
                at = _parse_date(row[index[date_column]], path, line) if date_column else None
                examples.append(FileExample(text=text, department=department, at=at, line=line))
            line = reader.line_num + 1
    except csv.Error as exc:
        raise ExamplesFileError(f"{path}:{reader.line_num}: not valid CSV: {exc}") from exc
    return examples, empty


def _parse_date(value: str, path: Path, line: int) -> datetime | None:
    value = value.strip()
    if not value:
        return None
    for pattern in _DATE_FORMATS:
        try:
            parsed = datetime.strptime(value, pattern)
        except ValueError:
            continue
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed
    raise ExamplesFileError(f"{path}:{line}: {value!r} is not a date (write 2020-11-30)")


def _identity(tokens: list[str]) -> list[str]:
    return tokens


def _days(times: Sequence[datetime]) -> FloatArray:
    return np.asarray([t.timestamp() / _SECONDS_PER_DAY for t in times], dtype=float)


def _normalised(rows: FloatArray) -> FloatArray:
    totals = rows.sum(axis=1, keepdims=True)
    out: FloatArray = np.divide(rows, totals, out=np.zeros_like(rows), where=totals > 0)
    return out


def _probabilities(scores: FloatArray, slope: FloatArray, intercept: FloatArray) -> FloatArray:
    """Each department's score through its sigmoid, then normalised over the departments."""
    return _normalised(_sigmoid(scores * slope + intercept))


def _sigmoid(values: FloatArray) -> FloatArray:
    out: FloatArray = 0.5 * (1.0 + np.tanh(0.5 * values))
    return out


def _platt(scores: FloatArray, truth: IntArray) -> tuple[FloatArray, FloatArray]:
    """Platt scaling for every department at once: the slope and intercept that turn its held-out
    scores into the probability that a text is its own (Newton's method on the log loss, with
    Platt's smoothed targets, so that a department the scores separate perfectly stays finite)."""
    n, k = scores.shape
    own = truth[:, None] == np.arange(k)[None, :]
    positives = own.sum(axis=0)
    targets = np.where(own, (positives + 1.0) / (positives + 2.0), 1.0 / (n - positives + 2.0))
    slope, intercept = np.ones(k), np.zeros(k)

    def loss(a: FloatArray, b: FloatArray) -> FloatArray:
        z = scores * a + b
        # log(1 + e^z) - t z, computed without overflow
        total: FloatArray = (np.logaddexp(0.0, z) - targets * z).sum(axis=0)
        return total

    current = loss(slope, intercept)
    for _ in range(_PLATT_ITERATIONS):
        p = _sigmoid(scores * slope + intercept)
        residual = p - targets
        g_a, g_b = (residual * scores).sum(axis=0), residual.sum(axis=0)
        w = p * (1.0 - p) + 1e-12
        h_aa, h_ab, h_bb = (w * scores**2).sum(axis=0) + 1e-9, (w * scores).sum(axis=0), w.sum(axis=0) + 1e-9
        det = h_aa * h_bb - h_ab**2
        step_a, step_b = (h_bb * g_a - h_ab * g_b) / det, (h_aa * g_b - h_ab * g_a) / det
        size = np.ones(k)
        for _ in range(30):  # halve the step of a department whose loss would grow
            trial = loss(slope - size * step_a, intercept - size * step_b)
            worse = trial > current + 1e-12
            if not worse.any():
                break
            size = np.where(worse, size / 2, size)
        slope, intercept = slope - size * step_a, intercept - size * step_b
        previous, current = current, loss(slope, intercept)
        if np.all(previous - current < 1e-10 * (1.0 + np.abs(previous))):
            break
    return slope, intercept


__all__ = [
    "DEFAULT_MIN_EXAMPLES",
    "DEFAULT_TARGET_PRECISION",
    "DepartmentModel",
    "Estimate",
    "ExamplesFileError",
    "FileExample",
    "NotEnoughExamples",
    "choose_threshold",
    "read_examples_csv",
    "wilson_lower",
]
