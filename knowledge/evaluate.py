"""`faq eval`: how well the matcher answers a labelled set of texts (DESIGN.md, "Evaluation files").

Each line of the queries file is {"text": ..., "expect": entry id or null}; null means the text must
not be answered automatically (out of scope, or it needs a person).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from knowledge.calibration import (
    CalibrationReport,
    Confidence,
    Labelled,
    Thresholds,
    fit,
    traffic_weights,
)
from knowledge.decision import NO_SENSITIVE_RULE, FaqDecision, SensitiveRule, decide
from knowledge.language import detect_language
from knowledge.matcher import Matcher
from knowledge.model import KnowledgeBase


@dataclass(frozen=True)
class LabelledQuery:
    text: str
    expect: str | None
    line: int


@dataclass(frozen=True)
class Evaluation:
    queries: int
    in_scope: int
    auto_answered: int
    auto_correct: int
    precision: float  # correct automatic answers / automatic answers
    coverage: float  # automatic answers to in-scope texts / in-scope texts
    out_of_scope_answered: float  # share of null texts answered automatically
    review: int  # texts whose best match falls between the review and answer thresholds
    top1: float  # share of in-scope texts whose entry is the best match
    top3: float  # share of in-scope texts whose entry is among the three best matches

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


@dataclass
class _Tally:
    queries: int = 0
    in_scope: int = 0
    answered: int = 0
    correct: int = 0
    answered_out_of_scope: int = 0
    review: int = 0
    first: int = 0
    among_three: int = 0

    def add(self, expect: str | None, decision: FaqDecision) -> None:
        self.queries += 1
        found = [match.entry.id for match in decision.matches[:3]]
        if expect is not None:
            self.in_scope += 1
            self.first += bool(found) and found[0] == expect
            self.among_three += expect in found
        if decision.answer is not None:
            self.answered += 1
            if expect is None:
                self.answered_out_of_scope += 1
            elif decision.answer.entry.id == expect:
                self.correct += 1
        elif decision.review is not None:
            self.review += 1

    def result(self) -> Evaluation:
        out_of_scope = self.queries - self.in_scope
        return Evaluation(
            queries=self.queries,
            in_scope=self.in_scope,
            auto_answered=self.answered,
            auto_correct=self.correct,
            precision=_share(self.correct, self.answered, empty=1.0),
            coverage=_share(self.answered - self.answered_out_of_scope, self.in_scope),
            out_of_scope_answered=_share(self.answered_out_of_scope, out_of_scope),
            review=self.review,
            top1=_share(self.first, self.in_scope),
            top3=_share(self.among_three, self.in_scope),
        )


def _share(part: int, whole: int, *, empty: float = 0.0) -> float:
    return round(part / whole, 4) if whole else empty


def read_queries(path: Path, known_ids: set[str] | None = None) -> list[LabelledQuery]:
    """Read the JSON-lines file; a bad line raises ValueError naming the file and line."""
    queries = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            item = json.loads(raw)
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: not JSON: {exc}") from exc
        if not isinstance(item, dict) or not isinstance(item.get("text"), str) or "expect" not in item:
            raise ValueError(f'{path}:{number}: expected {{"text": "...", "expect": "<entry id>" or null}}')
        expect = item["expect"]
        if expect is not None and not isinstance(expect, str):
            raise ValueError(f"{path}:{number}: expect must be an entry id or null")
        if expect is not None and known_ids is not None and expect not in known_ids:
            raise ValueError(f"{path}:{number}: expect names {expect!r}, which is not an entry of the FAQ")
        queries.append(LabelledQuery(text=item["text"], expect=expect, line=number))
    return queries


def evaluate(
    matcher: Matcher,
    queries: list[LabelledQuery],
    *,
    answer_threshold: float | None = None,
    suggest_threshold: float | None = None,
    default_language: str = "ko",
    sensitive: SensitiveRule = NO_SENSITIVE_RULE,
) -> Evaluation:
    """Score every text as the router would; the thresholds default to the matcher's own."""
    return evaluate_by_language(
        matcher,
        queries,
        answer_threshold=answer_threshold,
        suggest_threshold=suggest_threshold,
        default_language=default_language,
        sensitive=sensitive,
    )[0]


def evaluate_by_language(
    matcher: Matcher,
    queries: list[LabelledQuery],
    *,
    answer_threshold: float | None = None,
    suggest_threshold: float | None = None,
    default_language: str = "ko",
    sensitive: SensitiveRule = NO_SENSITIVE_RULE,
) -> tuple[Evaluation, dict[str, Evaluation]]:
    """The evaluation of all texts, and of the texts of each language (as detected) on their own."""
    answer_at = matcher.confidence.answer_threshold if answer_threshold is None else answer_threshold
    review_at = matcher.confidence.review_threshold if suggest_threshold is None else suggest_threshold
    total = _Tally()
    languages: dict[str, _Tally] = {}
    for query in queries:
        language = detect_language(query.text, default=default_language)
        decision = decide(
            query.text,
            matcher.match(query.text, language, limit=3),
            answer_threshold=answer_at,
            review_threshold=review_at,
            sensitive=sensitive,
        )
        total.add(query.expect, decision)
        languages.setdefault(language, _Tally()).add(query.expect, decision)
    return total.result(), {language: tally.result() for language, tally in sorted(languages.items())}


def calibrate_queries(
    matcher: Matcher,
    queries: list[LabelledQuery],
    *,
    target_precision: float = 0.95,
    review_precision: float = 0.5,
    out_of_scope_rate: float | None = None,
    queries_file: str = "",
    default_language: str = "ko",
    sensitive: SensitiveRule = NO_SENSITIVE_RULE,
    base: Confidence | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Confidence:
    """`faq calibrate`: the thresholds (and, with enough texts, the models) for this matcher's
    knowledge base, starting from `base` (default: the shipped models)."""
    base = base or Confidence.default()
    labelled = []
    for done, query in enumerate(queries, start=1):
        labelled.append(labelled_text(matcher, query.text, query.expect, default_language, sensitive))
        if progress is not None and (done % 50 == 0 or done == len(queries)):
            progress(done, len(queries))
    in_scope = sum(query.expect is not None for query in queries)
    _, rate = traffic_weights(labelled, out_of_scope_rate)

    def describe(chosen: Thresholds, models: str) -> CalibrationReport:
        return CalibrationReport.of(
            chosen,
            models,
            source=queries_file,
            texts=len(queries),
            in_scope=in_scope,
            target_precision=target_precision,
            review_precision=review_precision,
            out_of_scope_rate=rate,
            base=KnowledgeBase(entries=matcher.entries),
        )

    return fit(
        labelled,
        base=base,
        target_precision=target_precision,
        review_precision=review_precision,
        out_of_scope_rate=rate,
        describe=describe,
    )


def labelled_text(
    matcher: Matcher, text: str, expect: str | None, default_language: str, sensitive: SensitiveRule
) -> Labelled:
    """A labelled text with its candidates; a text the sensitive rule takes is never answerable (the
    rule's entry-department part is left to the decision: it depends on the thresholds chosen here)."""
    language = detect_language(text, default=default_language)
    return Labelled.of(
        expect,
        matcher.candidates(text, language),
        matcher.entries,
        answerable=sensitive.keywords.find(text) is None,
    )
