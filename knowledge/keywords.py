"""Keywords an administrator wrote, found in a citizen's text: Latin keywords as whole words (so "bus"
is not found in "business"); Korean and other scripts anywhere, since particles attach to nouns."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable


def _normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


class KeywordRules:
    """(label, keyword) pairs; `find` gives the label and keyword of the longest keyword in a text."""

    def __init__(self, rules: Iterable[tuple[str, str]]) -> None:
        self._rules: list[tuple[re.Pattern[str], str, str]] = []
        for label, keyword in rules:
            word = _normalise(keyword).strip()
            if not word:
                continue
            pattern = rf"\b{re.escape(word)}\b" if word.isascii() else re.escape(word)
            self._rules.append((re.compile(pattern), label, keyword))
        # Longer keywords first: "공공자전거" should win over "자전거" when both are rules.
        self._rules.sort(key=lambda rule: -len(rule[2]))

    def find(self, text: str) -> tuple[str, str] | None:
        normalised = _normalise(text)
        for pattern, label, keyword in self._rules:
            if pattern.search(normalised):
                return label, keyword
        return None
