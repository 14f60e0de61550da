"""Find the FAQ entries a citizen's message is about.

A lexical first version: TF-IDF over character 2-3-grams (taken with spaces removed, so Korean
spacing mistakes do not matter) and whole words, cosine similarity against every question variant.
The interface (Matcher.match -> list[Match]) is meant to outlive these internals.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

from knowledge.model import FaqEntry, KnowledgeBase

NGRAM_SIZES = (2, 3)
# Added once when one of an entry's keywords occurs in the text, scaled by what the similarity leaves
# (score = cos + bonus * (1 - cos)): it stays <= 1, and a keyword alone gives at most 0.1, far from the
# answer threshold, while it still lifts a real match above a near one.
KEYWORD_BONUS = 0.1
# Scores are rounded so that identical texts give exactly 1.0 and ties are real ties.
_DIGITS = 6

# Hangul jamo written on their own are laughter, crying or shorthand (ㅋㅋ, ㅠㅠ, ㅇㅇ), never content.
# They are removed before NFKC, which would otherwise compose "ㅋㅠ" into the syllable "큐".
_JAMO = re.compile("[\u1100-\u11ff\u3131-\u318e\ua960-\ua97f\ud7b0-\ud7ff\uffa0-\uffdc]+")
# Three or more of the same character ("soooo", "하하하") become one; digits are left alone
# because "1000" and "010-0000-0000" mean what they say.
_REPEATS = re.compile(r"([^\d\s])\1{2,}")
# Scripts written without spaces between words: their keywords match anywhere in the text.
_SPACELESS = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7a3\uf900-\ufaff]")


def normalize(text: str) -> str:
    """Lowercase words separated by single spaces: no punctuation, symbols, emoji or jamo noise."""
    text = unicodedata.normalize("NFKC", _JAMO.sub(" ", text)).casefold()
    kept = [char if unicodedata.category(char)[0] in "LMN" else " " for char in text]
    return " ".join(_REPEATS.sub(r"\1", "".join(kept)).split())


def features(normalized: str) -> Counter[str]:
    """Character n-grams of the text without spaces, plus its words (prefixed so they never collide)."""
    compact = normalized.replace(" ", "")
    counts: Counter[str] = Counter()
    for size in NGRAM_SIZES:
        counts.update(compact[i : i + size] for i in range(len(compact) - size + 1))
    counts.update("w:" + word for word in normalized.split())
    return counts


@dataclass(frozen=True)
class Match:
    """An entry the text is probably about; score 1.0 means identical to one of its questions."""

    entry: FaqEntry
    score: float
    question: str


@dataclass(frozen=True)
class _Variant:
    entry_index: int
    language: str
    question: str


class Matcher:
    """Ranks a knowledge base's entries against a text; build once per knowledge base."""

    def __init__(self, knowledge: KnowledgeBase) -> None:
        self._entries = knowledge.entries
        self._variants: list[_Variant] = []
        variant_counts: list[Counter[str]] = []
        for entry_index, entry in enumerate(knowledge.entries):
            for language, questions in entry.questions.items():
                for question in questions:
                    counts = features(normalize(question))
                    if counts:
                        self._variants.append(_Variant(entry_index, language, question))
                        variant_counts.append(counts)

        document_frequency: Counter[str] = Counter()
        for counts in variant_counts:
            document_frequency.update(counts.keys())
        total = len(variant_counts)
        # Smoothed IDF; a feature no variant has gets the highest weight, so words of an unrelated
        # text lengthen its vector and pull its similarity down.
        self._idf = {name: math.log((1 + total) / (1 + df)) + 1 for name, df in document_frequency.items()}
        self._unseen_idf = math.log(1 + total) + 1

        # Inverted index: feature -> [(variant, normalised weight)]; a query touches only the
        # variants that share at least one feature with it.
        self._postings: dict[str, list[tuple[int, float]]] = {}
        for variant_index, counts in enumerate(variant_counts):
            for name, weight in _unit(self._weigh(counts)).items():
                self._postings.setdefault(name, []).append((variant_index, weight))

        # Keywords, normalised once, each mapping to the entries that list it. Hangul, Han and kana
        # keywords are looked for anywhere in the text without spaces ("대형 폐기물" = "대형폐기물");
        # other keywords as whole words, so "bus" does not fire on "business".
        self._word_keywords: dict[str, list[int]] = {}
        self._phrase_keywords: dict[str, list[int]] = {}
        self._spaceless_keywords: dict[str, list[int]] = {}
        for entry_index, entry in enumerate(knowledge.entries):
            for keyword in dict.fromkeys(normalize(k) for k in entry.keywords):
                if not keyword:
                    continue
                if _SPACELESS.search(keyword):
                    table = self._spaceless_keywords
                    keyword = keyword.replace(" ", "")
                else:
                    table = self._phrase_keywords if " " in keyword else self._word_keywords
                table.setdefault(keyword, []).append(entry_index)

    def match(self, text: str, language: str | None = None, *, limit: int = 5) -> list[Match]:
        """The best entries for `text`, best first, only those scoring above 0, at most `limit`.

        `language` only breaks ties in favour of question variants written in it.
        """
        if limit <= 0:
            return []
        normalized = normalize(text)
        query = _unit(self._weigh(features(normalized)))

        similarity: dict[int, float] = {}
        for name, weight in query.items():
            for variant_index, variant_weight in self._postings.get(name, ()):
                similarity[variant_index] = similarity.get(variant_index, 0.0) + weight * variant_weight

        # Best variant per entry: highest similarity, then the asked language, then written order.
        best: dict[int, tuple[float, bool, int]] = {}
        for variant_index, value in similarity.items():
            variant = self._variants[variant_index]
            key = (min(round(value, _DIGITS), 1.0), variant.language == language, -variant_index)
            if key > best.get(variant.entry_index, (-1.0, False, 0)):
                best[variant.entry_index] = key

        ranked: list[tuple[float, bool, int, str]] = []
        keyword_hits = self._keyword_hits(normalized)
        for entry_index in best.keys() | keyword_hits:
            if entry_index in best:
                score, preferred, negative_variant = best[entry_index]
                question = self._variants[-negative_variant].question
            else:  # found by a keyword only: show its first question in the asked language
                score, preferred = 0.0, False
                question = _first_question(self._entries[entry_index], language)
            if entry_index in keyword_hits:
                score = round(score + KEYWORD_BONUS * (1.0 - score), _DIGITS)
            if score > 0:
                ranked.append((score, preferred, -entry_index, question))
        # Best first; equal scores: the asked language first, then the order of the files.
        ranked.sort(key=lambda item: item[:3], reverse=True)
        return [
            Match(entry=self._entries[-negative_entry], score=score, question=question)
            for score, _, negative_entry, question in ranked[:limit]
        ]

    def _weigh(self, counts: Counter[str]) -> dict[str, float]:
        # Sublinear term frequency: a repeated n-gram counts, but not linearly.
        return {
            name: (1.0 + math.log(count)) * self._idf.get(name, self._unseen_idf)
            for name, count in counts.items()
        }

    def _keyword_hits(self, normalized: str) -> set[int]:
        if not normalized:
            return set()
        hits: set[int] = set()
        for word in normalized.split():
            # a plural finds its singular keyword: "sofas" -> "sofa", "buses" -> "bus"
            for form in {word, word.removesuffix("s"), word.removesuffix("es")}:
                hits.update(self._word_keywords.get(form, ()))
        spaced = f" {normalized} "
        for phrase, entry_indexes in self._phrase_keywords.items():
            if f" {phrase} " in spaced:
                hits.update(entry_indexes)
        compact = normalized.replace(" ", "")
        for keyword, entry_indexes in self._spaceless_keywords.items():
            if keyword in compact:
                hits.update(entry_indexes)
        return hits


def _first_question(entry: FaqEntry, language: str | None) -> str:
    questions = entry.questions.get(language or "") or next(iter(entry.questions.values()))
    return questions[0]


def _unit(vector: dict[str, float]) -> dict[str, float]:
    norm = math.sqrt(sum(value * value for value in vector.values()))
    if norm == 0:
        return {}
    return {name: value / norm for name, value in vector.items()}
