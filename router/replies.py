"""What a citizen's short reply means: a rating, a request for a person, or a status question."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence

_REFERENCE = re.compile(r"(?<![\d-])(\d{4}-\d{6})(?![\d-])")
# Besides the reference, a status question has at most this many letters ("status", "처리 상황
# 알려주세요"); a longer text that mentions a reference is a message about the ticket instead.
_STATUS_QUESTION_LETTERS = 20


def _letters(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKC", text).casefold() if c.isalnum())


def rating_in(text: str) -> int | None:
    """A lone digit 1-5 (full-width digits too, and "4점"/"4 stars" style suffixes are not ratings)."""
    stripped = unicodedata.normalize("NFKC", text).strip().rstrip(".!")
    return int(stripped) if len(stripped) == 1 and stripped in "12345" else None


def asks_for_person(text: str, words: Mapping[str, Sequence[str]]) -> bool:
    """ "0", or one of the configured words for a person in any language, alone."""
    said = _letters(text)
    if said == "0":
        return True
    return any(said == _letters(word) for options in words.values() for word in options)


def status_question(text: str) -> str | None:
    """The reference a short "what is the status of 2026-000123" message asks about."""
    normalised = unicodedata.normalize("NFKC", text)
    found = _REFERENCE.search(normalised)
    if found is None:
        return None
    rest = _letters(normalised.replace(found.group(1), " "))
    return found.group(1) if len(rest) <= _STATUS_QUESTION_LETTERS else None
