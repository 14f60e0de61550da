"""Themes of citizens' texts without their words: groups of similar texts (knowledge/gaps.py, as
`faq gaps` groups them), each shown only as its size and a few terms that several people used.

What keeps personal data out:
- no text is ever shown, only single terms;
- before analysis, e-mail addresses, links and every token with a digit (phone numbers, house
  numbers, dates, reference numbers) are cut from the text;
- a term must have been written by at least `min_people` different citizens of the group, so a
  name, a street address or any other word of one person's never qualifies;
- only groups of `min_people` or more citizens are shown at all.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from store.data import Said

MIN_PEOPLE = 3
TERMS = 5
_EMAIL = re.compile(r"\S+@\S+")
_LINK = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_WITH_DIGIT = re.compile(r"\S*\d\S*")
_HANGUL = re.compile("[\uac00-\ud7a3]")


@dataclass(frozen=True)
class Theme:
    """A group of similar texts: how many, from how many people, its shared terms, where they went."""

    size: int
    people: int
    terms: tuple[str, ...]
    departments: tuple[tuple[str, int], ...]  # most first


def scrub(text: str) -> str:
    """The text without e-mail addresses, links and tokens with digits."""
    for pattern in (_EMAIL, _LINK, _WITH_DIGIT):
        text = pattern.sub(" ", text)
    return text


def themes(
    texts: Sequence[Said],
    *,
    threshold: float | None = None,
    min_people: int = MIN_PEOPLE,
    limit: int = 10,
    terms: int = TERMS,
) -> list[Theme]:
    """The largest groups of similar texts with at least `min_people` distinct citizens, largest first."""
    # scikit-learn and Kiwi take seconds to load: only a report needs them.
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    from knowledge.gaps import DEFAULT_THRESHOLD, group_texts
    from knowledge.text import normalize, shared_analyzer

    if min_people < 2:
        raise ValueError("a theme needs at least two people, or one person's words could show")
    analyzer = shared_analyzer()
    cleaned = [normalize(scrub(said.text)) for said in texts]
    groups = group_texts(cleaned, threshold=DEFAULT_THRESHOLD if threshold is None else threshold)
    words: list[list[str]] = []
    surface: dict[str, Counter[str]] = defaultdict(Counter)
    for text in cleaned:
        found = list(analyzer.words(text))
        tokens = text.split()
        if _HANGUL.search(text):
            # Kiwi's morphemes: a noun is written as such ("포트홀" in "포트홀이"), a verb's stem
            # seldom is ("깨지" of "깨져서"), and a stem alone reads badly: only what is written shows.
            found = [w for w in found if any(w in token for token in tokens)]
        elif len(found) == len(tokens):  # one stem per word: show the word as written
            for stem, token in zip(found, tokens, strict=True):
                surface[stem][token] += 1
        words.append([w for w in found if _showable(w) and w not in ENGLISH_STOP_WORDS])
    # How many texts of the whole range use each term: a term every group has says little.
    everywhere = Counter(term for found in words for term in set(found))
    total = max(len(texts), 1)

    found_themes = []
    for group in groups:
        members = group.members
        people = {texts[i].contact_id for i in members}
        if len(people) < min_people:
            continue
        users: dict[str, set[int]] = defaultdict(set)
        for i in members:
            for term in set(words[i]):
                users[term].add(texts[i].contact_id)
        scored = [
            (len(who) * math.log(1 + total / everywhere[term]), term)
            for term, who in users.items()
            if len(who) >= min_people
        ]
        best = [term for _, term in sorted(scored, key=lambda p: (-p[0], p[1]))[:terms]]
        shown = tuple(_display(term, surface) for term in best)
        departments = Counter(texts[i].department or "-" for i in members)
        found_themes.append(Theme(len(members), len(people), shown, tuple(departments.most_common())))
        if len(found_themes) >= limit:
            break
    return found_themes


def _showable(term: str) -> bool:
    return len(term) >= 2 and not any(char.isdigit() for char in term)


def _display(term: str, surface: dict[str, Counter[str]]) -> str:
    """An English stem ("streetlight" from "streetlights", "outsid") as the word most written for it."""
    forms = surface.get(term)
    return forms.most_common(1)[0][0] if forms else term


__all__ = ["MIN_PEOPLE", "Theme", "scrub", "themes"]
