"""Which department a text belongs to: an administrator's keyword rule, else the department of a
plausible FAQ entry, else the learned department model when it is sure enough, else the triage desk."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from knowledge import Match
from router.config import DepartmentConfig


@dataclass(frozen=True)
class Route:
    department: str
    reason: str  # "keyword:<word>", "faq:<entry id>", "model:<department>:<confidence>" or "triage"


def _normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


class KeywordRules:
    """Keyword rules from config. Latin keywords match whole words (so "bus" is not found in
    "business"); Korean and other scripts match anywhere, since particles attach to nouns."""

    def __init__(self, rules: Iterable[tuple[str, str]]) -> None:
        self._rules: list[tuple[re.Pattern[str], str, str]] = []
        for department, keyword in rules:
            word = _normalise(keyword).strip()
            if not word:
                continue
            pattern = rf"\b{re.escape(word)}\b" if word.isascii() else re.escape(word)
            self._rules.append((re.compile(pattern), department, keyword))
        # Longer keywords first: "공공자전거" should win over "자전거" when both are rules.
        self._rules.sort(key=lambda rule: -len(rule[2]))

    @classmethod
    def for_departments(cls, departments: Mapping[str, DepartmentConfig]) -> KeywordRules:
        return cls((name, keyword) for name, config in departments.items() for keyword in config.keywords)

    def find(self, text: str) -> tuple[str, str] | None:
        normalised = _normalise(text)
        for pattern, department, keyword in self._rules:
            if pattern.search(normalised):
                return department, keyword
        return None


def choose_department(
    text: str,
    matches: Sequence[Match],
    *,
    rules: KeywordRules,
    suggest_threshold: float,
    triage: str,
    model: Callable[[str], tuple[str, float] | None] | None = None,
) -> Route:
    """`model`: the learned department model's verdict on a text, the department and its confidence
    when that is at or above the model's threshold (else None)."""
    keyword = rules.find(text)
    if keyword is not None:
        return Route(keyword[0], f"keyword:{keyword[1]}")
    if matches and matches[0].score >= suggest_threshold and matches[0].entry.department:
        return Route(matches[0].entry.department, f"faq:{matches[0].entry.id}")
    learned = model(text) if model is not None else None
    if learned is not None:
        return Route(learned[0], f"model:{learned[0]}:{learned[1]:.2f}")
    return Route(triage, "triage")
