"""Group similar questions, to find what the FAQ is missing: the texts citizens send again and again
that the FAQ did not answer.

Each distinct text (after `normalize`) is a TF-IDF vector of its words (Korean morphemes, English
stems) and, separately, of its character n-grams, which survive spacing mistakes and typos; the two
halves are weighted and the cosine of two vectors is their similarity. Grouping is greedy and
deterministic (the Taylor-Butina way): the text with the most similar texts around it, counting
repeats, starts the first group and takes every ungrouped text at least `threshold` similar to it;
then the next most central ungrouped text, and so on. Every member is similar to its group's
representative, so a group never drifts from one topic to another through a chain of neighbours.
Ten thousand texts take seconds: the similarities are computed in blocks of sparse rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

from knowledge.text import Analyzer, char_ngrams, normalize, shared_analyzer

# Chosen on tests/data/faq_paraphrases.jsonl: paraphrases of one FAQ entry should share a group and
# texts about different entries should not (see tests/knowledge/test_gaps.py).
DEFAULT_THRESHOLD = 0.4
WORD_WEIGHT = 0.7
_BLOCK_ROWS = 1024
# A feature in more than this share of the distinct texts (and more than _COMMON_MIN of them) is left
# out of the similarities: see _informative.
_COMMON_SHARE = 0.1
_COMMON_MIN = 100
# Words that say how something is asked, not what about: greetings, question words, "please".
# (The analyser already drops particles, endings and the commonest Korean verbs.)
_KOREAN_STOP_WORDS = frozenset(
    {
        "안녕",
        "감사",
        "수고",
        "문의",
        "질문",
        "궁금",
        "부탁",
        "드리",
        "어디",
        "언제",
        "어느",
        "무엇",
        "뭐",
        "왜",
        "방법",
        "우리",
        "저",
        "제",
        "나",
        "요",
    }
)
_STOP_WORDS = ENGLISH_STOP_WORDS | _KOREAN_STOP_WORDS


@dataclass(frozen=True)
class Group:
    """Indexes into the texts given: the representative first, then the others, most similar first
    (texts equal after normalisation follow each other)."""

    members: tuple[int, ...]
    similarities: tuple[float, ...]  # of each member to the representative

    @property
    def representative(self) -> int:
        return self.members[0]

    def __len__(self) -> int:
        return len(self.members)


def group_texts(
    texts: Sequence[str],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    word_weight: float = WORD_WEIGHT,
    analyzer: Analyzer | None = None,
) -> list[Group]:
    """Groups of similar texts, the largest first (ties: the one seen first). Texts without any
    letters or digits are left out."""
    if not 0 < threshold <= 1:
        raise ValueError(f"the similarity threshold must be in (0, 1], got {threshold}")
    distinct: dict[str, int] = {}
    owners: list[list[int]] = []
    for index, text in enumerate(texts):
        key = normalize(text)
        if not key:
            continue
        position = distinct.setdefault(key, len(distinct))
        if position == len(owners):
            owners.append([])
        owners[position].append(index)
    if not distinct:
        return []
    analyzer = analyzer or shared_analyzer()
    keys = list(distinct)
    vectors = _vectors(keys, analyzer, word_weight)
    counts = np.array([len(found) for found in owners], dtype=np.int64)

    neighbours: list[np.ndarray[Any, Any]] = []
    similarity: list[np.ndarray[Any, Any]] = []
    shared = _informative(vectors)
    transposed = shared.T.tocsr()
    for start in range(0, len(keys), _BLOCK_ROWS):
        block = (shared[start : start + _BLOCK_ROWS] @ transposed).tocsr()
        for offset in range(block.shape[0]):
            row = slice(block.indptr[offset], block.indptr[offset + 1])
            columns, values = block.indices[row], block.data[row]
            close = values >= threshold - 1e-6
            found, sims = columns[close], values[close]
            if start + offset not in found:  # a text without features is still like itself
                found, sims = np.append(found, start + offset), np.append(sims, 1.0)
            neighbours.append(found)
            similarity.append(sims)
    weight = np.array([counts[found].sum() for found in neighbours], dtype=np.int64)
    order = np.lexsort((np.arange(len(keys)), -weight))

    grouped = np.zeros(len(keys), dtype=bool)
    built: list[tuple[int, Group]] = []
    for center in order.tolist():
        if grouped[center]:
            continue
        found, sims = neighbours[center], similarity[center]
        free = ~grouped[found]
        found, sims = found[free], sims[free]
        grouped[found] = True
        ranked = sorted(
            zip(found.tolist(), sims.tolist(), strict=True), key=lambda p: (p[0] != center, -p[1], p[0])
        )
        members = [(index, sim) for position, sim in ranked for index in owners[position]]
        size = sum(len(owners[position]) for position, _ in ranked)
        built.append((size, Group(tuple(m for m, _ in members), tuple(round(s, 4) for _, s in members))))
    built.sort(key=lambda pair: (-pair[0], pair[1].representative))
    return [group for _, group in built]


def _vectors(keys: list[str], analyzer: Analyzer, word_weight: float) -> sparse.csr_matrix:
    """Unit rows: the word half and the n-gram half, each TF-IDF and unit length, weighted."""
    halves = []
    contents = [
        " ".join(word for word in key.split() if word not in ENGLISH_STOP_WORDS) or key for key in keys
    ]
    for features, weight in (
        ([[w for w in analyzer.words(key) if w not in _STOP_WORDS] for key in keys], word_weight),
        ([char_ngrams(content) for content in contents], 1 - word_weight),
    ):
        if weight <= 0 or not any(features):
            continue
        tfidf = TfidfVectorizer(analyzer=_given, sublinear_tf=True, norm="l2", dtype=np.float32)
        halves.append(tfidf.fit_transform(features) * math.sqrt(weight))
    if not halves:
        return sparse.csr_matrix((len(keys), 1), dtype=np.float32)
    joined = sparse.hstack(halves, format="csr")
    norms = np.sqrt(np.asarray(joined.multiply(joined).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sparse.csr_matrix(sparse.diags(1.0 / norms).dot(joined), dtype=np.float32)


def _informative(vectors: sparse.csr_matrix) -> sparse.csr_matrix:
    """The columns that can tell texts apart: a feature of one text only adds nothing to any pair,
    and one in more than a tenth of many texts (a polite ending, "how do I") adds little but costs
    most of the time, since the work grows with the square of a feature's frequency. The rows keep
    their full length, so the similarities stay cosines of the whole vectors, minus those parts."""
    frequency = np.diff(vectors.tocsc().indptr)
    ceiling = max(_COMMON_SHARE * vectors.shape[0], _COMMON_MIN)
    keep = np.flatnonzero((frequency > 1) & (frequency <= ceiling))
    return sparse.csr_matrix(vectors[:, keep])


def _given(features: list[str]) -> list[str]:
    return features


__all__ = ["DEFAULT_THRESHOLD", "Group", "group_texts"]
