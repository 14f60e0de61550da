"""`faq eval`: how well the matcher answers a labelled set of texts (DESIGN.md, "Evaluation files").

Each line of the queries file is {"text": ..., "expect": entry id or null}; null means the text must
not be answered automatically (out of scope, or it needs a person).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from knowledge.calibration import CalibrationReport, Confidence, Labelled, fit, knowledge_fingerprint, now_iso
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

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


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
) -> Evaluation:
    """Score every text as the router would; the thresholds default to the matcher's own."""
    answer_at = matcher.confidence.answer_threshold if answer_threshold is None else answer_threshold
    review_at = matcher.confidence.review_threshold if suggest_threshold is None else suggest_threshold
    in_scope = answered = correct = answered_out_of_scope = review = 0
    for query in queries:
        matches = matcher.match(query.text, detect_language(query.text, default=default_language), limit=1)
        top = matches[0] if matches else None
        automatic = top is not None and top.score >= answer_at and top.entry.handoff == "auto"
        if query.expect is not None:
            in_scope += 1
        if automatic and top is not None:
            answered += 1
            if query.expect is None:
                answered_out_of_scope += 1
            elif top.entry.id == query.expect:
                correct += 1
        elif top is not None and top.score >= review_at and top.entry.handoff == "auto":
            review += 1
    out_of_scope = len(queries) - in_scope
    answered_in_scope = answered - answered_out_of_scope
    return Evaluation(
        queries=len(queries),
        in_scope=in_scope,
        auto_answered=answered,
        auto_correct=correct,
        precision=round(correct / answered, 4) if answered else 1.0,
        coverage=round(answered_in_scope / in_scope, 4) if in_scope else 0.0,
        out_of_scope_answered=round(answered_out_of_scope / out_of_scope, 4) if out_of_scope else 0.0,
        review=review,
    )


def calibrate_queries(
    matcher: Matcher,
    queries: list[LabelledQuery],
    *,
    target_precision: float = 0.95,
    review_precision: float = 0.5,
    out_of_scope_rate: float | None = None,
    queries_file: str = "",
    default_language: str = "ko",
) -> Confidence:
    """`faq calibrate`: fit the confidence model and thresholds for this matcher's knowledge base."""
    labelled = [
        Labelled(
            expect=query.expect,
            candidates=matcher.candidates(query.text, detect_language(query.text, default=default_language)),
        )
        for query in queries
    ]
    in_scope = sum(query.expect is not None for query in queries)
    rate = (len(queries) - in_scope) / len(queries) if out_of_scope_rate is None else out_of_scope_rate

    def describe(precision: float, coverage: float, out_answered: float, review: float) -> CalibrationReport:
        return CalibrationReport(
            calibrated_at=now_iso(),
            queries_file=queries_file,
            queries=len(queries),
            in_scope=in_scope,
            target_precision=target_precision,
            review_precision=review_precision,
            out_of_scope_rate=round(rate, 4),
            knowledge_entries=len(matcher.entries),
            knowledge_fingerprint=knowledge_fingerprint(KnowledgeBase(entries=matcher.entries)),
            precision=precision,
            coverage=coverage,
            out_of_scope_answered=out_answered,
            review_share=review,
        )

    return fit(
        labelled,
        matcher.entries,
        target_precision=target_precision,
        review_precision=review_precision,
        out_of_scope_rate=rate,
        describe=describe,
    )
