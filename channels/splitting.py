"""One splitter for every channel that must send a long text as several messages (SMS, Telegram, X
direct messages): each channel brings its own measure (SMS segments, UTF-16 units, characters)."""

from __future__ import annotations

import re
from collections.abc import Callable

# The coarsest boundary that does it wins: paragraphs, then lines, then sentences (also after a CJK
# full stop with no space), then words; characters last, for a word longer than a message (a URL).
_BOUNDARIES = (
    re.compile(r"(\n\s*\n)"),
    re.compile(r"(\n)"),
    re.compile(r"((?<=[.!?。！？])\s+|(?<=[。！？]))"),
    re.compile(r"(\s+)"),
)


def split_text(text: str, limit: int, measure: Callable[[str], int] = len) -> list[str]:
    """`text` as messages that each measure at most `limit`, each holding as much as fits, cut at
    the coarsest boundary that makes the pieces fit. Nothing is lost but the whitespace at a cut;
    a blank text is no message at all. `measure` must grow with the text (all of ours do)."""

    def fits(piece: str) -> bool:
        return measure(piece.strip()) <= limit

    atoms = _atoms(text.strip(), fits)
    messages: list[str] = []
    start = 0
    while start < len(atoms):
        # The most atoms that fit: gallop, then bisect (a long text costs a few measures per
        # message, not one per word).
        good, step = start + 1, 1
        while good + step <= len(atoms) and fits("".join(atoms[start : good + step])):
            good, step = good + step, step * 2
        bad = min(good + step, len(atoms) + 1)
        while bad - good > 1:
            middle = (good + bad) // 2
            good, bad = (middle, bad) if fits("".join(atoms[start:middle])) else (good, middle)
        if part := "".join(atoms[start:good]).strip():
            messages.append(part)
        start = good
    return messages


def _atoms(text: str, fits: Callable[[str], bool], level: int = 0) -> list[str]:
    """`text` in pieces that each fit, cut at the coarsest boundary that does it; joined, they are
    `text`."""
    if fits(text):
        return [text]
    if level == len(_BOUNDARIES):
        return list(text)
    return [atom for piece in _pieces(text, _BOUNDARIES[level]) for atom in _atoms(piece, fits, level + 1)]


def _pieces(text: str, separator: re.Pattern[str]) -> list[str]:
    """`text` cut after each separator, every piece keeping the separator that follows it."""
    parts = separator.split(text)
    return [parts[i] + (parts[i + 1] or "" if i + 1 < len(parts) else "") for i in range(0, len(parts), 2)]
