"""Find the FAQ entries a citizen's message is about, with a confidence that means something.

Retrieval is lexical and fused. Against every question variant: BM25 over words (Kiwi morphemes for
Korean, stems for English, character pairs for Chinese and Japanese) and TF-IDF cosine over character
n-grams, which survive spacing mistakes and typos. Against each entry as a whole: the cosine to all of
its variants taken together, the answer text (at a low weight) and its keywords. The best candidates'
signals become the probability that a candidate is the right answer through a small logistic model
(knowledge/calibration.py): fitted from a labelled file by `faq calibrate`, or a default.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from knowledge.calibration import FEATURES, Confidence
from knowledge.model import FaqEntry, KnowledgeBase
from knowledge.text import SPACELESS, Analyzer, char_ngrams, normalize, shared_analyzer

__all__ = ["FEATURES", "Candidate", "Match", "Matcher", "normalize"]

# BM25's usual constants: term frequency saturates quickly, length matters somewhat.
_K1 = 1.2
_B = 0.75
# How many entries are looked at closely, and how many nearest variants vote.
_CANDIDATES = 8
_VOTERS = 10
# How much of each answer (per language) is compared with the text.
_ANSWER_CHARS = 300
# A linear classifier over the variants joins in when entries have several variants each (on average
# at least this many) and there are not too many entries for its weights to stay small in memory.
_CLASSIFIER_MIN_VARIANTS = 3.0
_CLASSIFIER_MAX_ENTRIES = 1000
# Before the logistic model, entries are ranked by this blend of the raw signals (bm25, char, centroid,
# words, answer: the first five FEATURES), plus a little for a keyword.
_BLEND = (0.35, 0.35, 0.15, 0.1, 0.1)
_KEYWORD_BLEND = 0.1
# Scores are rounded so that ties are real ties and reruns give identical numbers.
_DIGITS = 6


@dataclass(frozen=True)
class Match:
    """An entry the text is probably about; `score` is the confidence that it is the right answer."""

    entry: FaqEntry
    score: float
    question: str


@dataclass(frozen=True)
class Candidate:
    """One entry considered for a text, with the signals the confidence is computed from."""

    entry_index: int
    features: tuple[float, ...]
    question: str
    preferred_language: bool


@dataclass(frozen=True)
class _Counts:
    """Term counts of a set of documents as parallel arrays (one item per document and distinct term)."""

    vocabulary: dict[str, int]
    documents: int
    doc: np.ndarray
    term: np.ndarray
    count: np.ndarray

    @classmethod
    def of(cls, documents: Sequence[Sequence[str]], vocabulary: dict[str, int] | None = None) -> _Counts:
        vocabulary = {} if vocabulary is None else vocabulary
        counted = [Counter(document) for document in documents]
        terms = [term for counts in counted for term in counts]
        # New terms in first-seen order, each looked up once; the rest runs in C (map, fromiter).
        for term in dict.fromkeys(terms):
            vocabulary.setdefault(term, len(vocabulary))
        return cls(
            vocabulary,
            len(documents),
            np.repeat(np.arange(len(documents)), [len(counts) for counts in counted]),
            np.fromiter(map(vocabulary.__getitem__, terms), dtype=np.int64, count=len(terms)),
            np.fromiter(
                itertools.chain.from_iterable(counts.values() for counts in counted),
                dtype=np.float64,
                count=len(terms),
            ),
        )

    def frequency(self) -> np.ndarray:
        return np.bincount(self.term, minlength=len(self.vocabulary)).astype(np.float64)

    def width(self) -> int:
        return max(len(self.vocabulary), 1)

    def matrix(self, values: np.ndarray) -> sparse.csr_matrix:
        shape = (self.documents, self.width())
        return sparse.csr_matrix((values, (self.doc, self.term)), shape=shape)


def _unit_rows(matrix: sparse.csr_matrix) -> sparse.csr_matrix:
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sparse.csr_matrix(sparse.diags(1.0 / norms) @ matrix)


class _Postings:
    """Documents by term (a transposed matrix), so a text touches only the documents that share a term
    with it: one gather and one bincount per text, no per-call sparse-matrix overhead."""

    def __init__(self, documents_by_term: sparse.csr_matrix) -> None:
        matrix = sparse.csr_matrix(documents_by_term.T)
        self._indptr, self._indices, self._data = matrix.indptr, matrix.indices, matrix.data
        self.size = matrix.shape[1]

    def score(self, terms: np.ndarray, weights: np.ndarray) -> np.ndarray:
        starts = self._indptr[terms]
        lengths = self._indptr[terms + 1] - starts
        total = int(lengths.sum())
        if total == 0:
            return np.zeros(self.size)
        first = np.cumsum(lengths) - lengths
        positions = np.arange(total) + np.repeat(starts - first, lengths)
        values = self._data[positions] * np.repeat(weights, lengths)
        return np.bincount(self._indices[positions], values, minlength=self.size)


@dataclass(frozen=True)
class _Query:
    """A text over one vocabulary: term indices, unit weights, and the share of its weight unseen."""

    terms: np.ndarray
    weights: np.ndarray
    unseen: float


class _TfIdf:
    """Sublinear TF-IDF with unit rows; a term no document has gets the highest weight, so the words of
    an unrelated text lengthen its vector and pull every similarity down."""

    def __init__(self, documents: Sequence[Sequence[str]], vocabulary: dict[str, int] | None = None) -> None:
        # A vocabulary shared with another index grows to the union; this index's own terms are those
        # its documents have (the others have a document frequency of 0 here and count as unseen).
        counts = _Counts.of(documents, {} if vocabulary is None else vocabulary)
        self.vocabulary = counts.vocabulary
        self._frequency = counts.frequency()
        self.idf = np.log((1 + counts.documents) / (1 + self._frequency)) + 1
        self.unseen_idf = math.log(1 + counts.documents) + 1
        self.matrix = _unit_rows(counts.matrix((1 + np.log(counts.count)) * self.idf[counts.term]))
        self.postings = _Postings(self.matrix)

    def query(self, counts: Mapping[str, int]) -> _Query:
        """A text's term counts as a unit vector over this vocabulary."""
        indexes = np.asarray([self.vocabulary.get(term, -1) for term in counts], dtype=np.int64)
        return self.query_indexed(indexes, np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))

    def query_indexed(self, indexes: np.ndarray, counts: np.ndarray) -> _Query:
        """The same, for terms already looked up in the (shared) vocabulary: -1 for an unknown term."""
        size = len(self._frequency)
        weights = 1 + np.log(counts)
        known = (indexes >= 0) & (indexes < size)
        known[known] = self._frequency[indexes[known]] > 0
        weights[known] *= self.idf[indexes[known]]
        weights[~known] *= self.unseen_idf
        norm = math.sqrt(float(weights @ weights))
        if norm == 0:
            return _Query(np.zeros(0, dtype=np.int64), np.zeros(0), 0.0)
        unseen = float(weights[~known] @ weights[~known]) / (norm * norm)
        return _Query(indexes[known], weights[known] / norm, unseen)

    def similarities(self, query: _Query) -> np.ndarray:
        return self.postings.score(query.terms, query.weights)


class _Bm25:
    """BM25 of each document for a text's words, divided by the most the text's words can score (the sum
    of their IDFs), so 1.0 means every word of the text is found; unknown words count against it."""

    def __init__(self, documents: Sequence[Sequence[str]]) -> None:
        counts = _Counts.of(documents)
        self.vocabulary = counts.vocabulary
        frequency = counts.frequency()
        self.idf = np.log(1 + (counts.documents - frequency + 0.5) / (frequency + 0.5))
        self.unseen_idf = math.log(1 + (counts.documents + 0.5) / 0.5)
        lengths = np.bincount(counts.doc, counts.count, minlength=counts.documents)
        average = float(lengths.mean()) if counts.documents else 1.0
        norm = _K1 * (1 - _B + _B * lengths[counts.doc] / (average or 1.0))
        weights = self.idf[counts.term] * counts.count * (_K1 + 1) / (counts.count + norm)
        self.postings = _Postings(counts.matrix(weights))
        self._present = counts.matrix(np.ones(len(counts.term)))

    def entry_words(self, membership: sparse.csr_matrix) -> _Postings:
        """Which words each entry has in any of its variants (membership: entries x documents)."""
        present = sparse.csr_matrix(membership @ self._present)
        present.data[:] = 1.0
        return _Postings(present)

    def scores(self, words: Sequence[str]) -> _Bm25Result:
        distinct = dict.fromkeys(words)
        present = np.asarray([self.vocabulary[w] for w in distinct if w in self.vocabulary], dtype=np.int64)
        missing = len(distinct) - len(present)
        possible = float(self.idf[present].sum()) + missing * self.unseen_idf
        if possible == 0:
            return _Bm25Result(np.zeros(self.postings.size), 0.0, present, self.idf[present], 1.0)
        scores = self.postings.score(present, np.ones(len(present)))
        unknown = missing * self.unseen_idf / possible
        return _Bm25Result(scores / possible, unknown, present, self.idf[present], possible)


@dataclass(frozen=True)
class _Bm25Result:
    """Normalised BM25 per document; the share of the text's IDF mass that no document has; the text's
    known words with their IDFs, and the most they could score."""

    scores: np.ndarray
    unknown: float
    words: np.ndarray
    idf: np.ndarray
    possible: float


@dataclass(frozen=True)
class _Variant:
    entry_index: int
    language: str
    question: str


class Matcher:
    """Ranks a knowledge base's entries against a text; build once per knowledge base."""

    def __init__(
        self,
        knowledge: KnowledgeBase,
        *,
        confidence: Confidence | None = None,
        analyzer: Analyzer | None = None,
    ) -> None:
        self._entries = knowledge.entries
        self.confidence = confidence or Confidence.default()
        self._analyzer = analyzer or shared_analyzer()
        self._variants: list[_Variant] = []
        variant_words: list[list[str]] = []
        variant_grams: list[list[str]] = []
        starts: list[int] = []
        for entry_index, entry in enumerate(self._entries):
            starts.append(len(self._variants))
            synonyms = _synonym_table(entry, self._analyzer)
            for language, questions in entry.questions.items():
                for question in questions:
                    normalized = normalize(question)
                    words = list(self._analyzer.words(normalized))
                    words += [alt for word in words for alt in synonyms.get(word, ())]
                    self._variants.append(_Variant(entry_index, language, question))
                    variant_words.append(words)
                    variant_grams.append(char_ngrams(normalized))
        self._starts = np.asarray(starts, dtype=np.int64)
        self._ends = np.append(self._starts[1:], len(self._variants)).astype(np.int64)
        self._variant_entry = np.asarray([v.entry_index for v in self._variants], dtype=np.int64)
        self._one_variant_each = len(self._variants) == len(self._entries)

        # Answers are long: character n-grams of their opening only, where the topic is stated (Kiwi on
        # every whole answer would make a reload of a large base take many seconds). They share the
        # questions' n-gram vocabulary, so a text's n-grams are looked up once for both.
        answer_grams = [
            char_ngrams(normalize(" ".join(a[:_ANSWER_CHARS] for a in entry.answer.values())))
            for entry in self._entries
        ]
        char_vocabulary: dict[str, int] = {}
        self._bm25 = _Bm25(variant_words)
        self._chars = _TfIdf(variant_grams, char_vocabulary)
        self._answers = _TfIdf(answer_grams, char_vocabulary)
        self._char_vocabulary = char_vocabulary
        self._words = _TfIdf([_with_pairs(words) for words in variant_words])
        # Each entry as one document: its variants' unit rows summed, again of unit length.
        membership = sparse.csr_matrix(
            (np.ones(len(self._variants)), (self._variant_entry, np.arange(len(self._variants)))),
            shape=(len(self._entries), len(self._variants)),
        )
        self._entry_words = self._bm25.entry_words(membership)
        self._centroid_chars = _Postings(_unit_rows(membership @ self._chars.matrix))
        self._centroid_words = _Postings(_unit_rows(membership @ self._words.matrix))
        self._keywords = _KeywordIndex(self._entries)
        self._classifier = _Classifier.train(
            self._chars.matrix, self._words.matrix, self._variant_entry, len(self._entries)
        )

    @property
    def entries(self) -> tuple[FaqEntry, ...]:
        return self._entries

    def match(self, text: str, language: str | None = None, *, limit: int = 5) -> list[Match]:
        """The best entries for `text`, most likely first, at most `limit`.

        `language` only breaks ties in favour of question variants written in it.
        """
        if limit <= 0:
            return []
        candidates = self.candidates(text, language)
        if not candidates:
            return []
        probabilities = self.confidence.probabilities(np.asarray([c.features for c in candidates]))
        scored = [
            (round(p, _DIGITS), c.preferred_language, -c.entry_index, c)
            for p, c in zip(probabilities.tolist(), candidates, strict=True)
        ]
        scored.sort(key=lambda item: item[:3], reverse=True)
        return [
            Match(entry=self._entries[candidate.entry_index], score=score, question=candidate.question)
            for score, _, _, candidate in scored[:limit]
        ]

    def candidates(self, text: str, language: str | None = None) -> list[Candidate]:
        """The entries worth a closer look, each with its signals (see calibration.FEATURES)."""
        if not self._entries:
            return []
        normalized = normalize(text)
        words = self._analyzer.words(normalized)
        grams = Counter(char_ngrams(normalized))
        if not words and not grams:
            return []
        found = self._bm25.scores(words)
        bm25, unknown = found.scores, found.unknown
        # How much of the text's word weight the entry has anywhere in its questions: what the text
        # asks beyond the entry ("... 채용 공고") shows here even when one rare word matches strongly.
        covered = self._entry_words.score(found.words, found.idf) / found.possible
        # The questions' and the answers' n-grams share one vocabulary: look each up once.
        gram_indexes = np.asarray([self._char_vocabulary.get(gram, -1) for gram in grams], dtype=np.int64)
        gram_counts = np.fromiter(grams.values(), dtype=np.float64, count=len(grams))
        char_query = self._chars.query_indexed(gram_indexes, gram_counts)
        chars = self._chars.similarities(char_query)
        word_query = self._words.query(Counter(_with_pairs(words)))
        variant_blend = 0.5 * bm25 + 0.5 * chars

        if self._one_variant_each:  # an entry is its question: the entry-level signals are the same
            bm25_e, chars_e, centroid = bm25, chars, chars
        else:
            bm25_e = np.maximum.reduceat(bm25, self._starts)
            chars_e = np.maximum.reduceat(chars, self._starts)
            centroid = self._centroid_chars.score(char_query.terms, char_query.weights)
        per_entry = (
            bm25_e,
            chars_e,
            centroid,
            self._centroid_words.score(word_query.terms, word_query.weights),
            self._answers.similarities(self._answers.query_indexed(gram_indexes, gram_counts)),
        )
        keyword = np.zeros(len(self._entries))
        keyword[list(self._keywords.hits(normalized))] = 1.0
        blend = _KEYWORD_BLEND * keyword
        for weight, signal in zip(_BLEND, per_entry, strict=True):
            blend += weight * signal

        count = min(_CANDIDATES, len(self._entries))
        top = np.argpartition(-blend, count - 1)[:count]
        chosen = set(top[blend[top] > 0].tolist())
        if not chosen:
            return []
        decisions = classifier_margin = np.zeros(len(self._entries))
        if self._classifier is not None:
            decisions = self._classifier.decisions(char_query, word_query)
            chosen.update(np.argpartition(-decisions, 2)[:3].tolist())  # the classifier's favourites too
            classifier_margin = decisions - _best_other(decisions)
        indexes = np.asarray(sorted(chosen), dtype=np.int64)
        margin = blend[indexes] - _best_other(blend[indexes])

        voters = np.argpartition(-variant_blend, min(_VOTERS, len(variant_blend)) - 1)[:_VOTERS]
        # Weak neighbours vote weakly: below a mean similarity of 0.1 the shares shrink.
        voter_weight = max(float(variant_blend[voters].sum()), 0.1 * _VOTERS)
        votes = np.bincount(self._variant_entry[voters], variant_blend[voters], minlength=len(self._entries))
        columns = [
            *(signal[indexes] for signal in per_entry),
            keyword[indexes],
            margin,
            votes[indexes] / voter_weight,
            np.full(len(indexes), unknown),
            np.full(len(indexes), math.log1p(len(words))),
            decisions[indexes],
            classifier_margin[indexes],
            ((margin > 0) & (classifier_margin[indexes] > 0)).astype(np.float64),
            covered[indexes],
        ]
        rows = np.column_stack(columns).tolist()
        candidates = []
        for entry_index, features in zip(indexes.tolist(), rows, strict=True):
            variant = self._variants[self._best_variant(entry_index, variant_blend)]
            candidates.append(
                Candidate(
                    entry_index=entry_index,
                    features=tuple(features),
                    question=variant.question,
                    preferred_language=language is not None and variant.language == language,
                )
            )
        return candidates

    def _best_variant(self, entry_index: int, variant_scores: np.ndarray) -> int:
        """The entry's best-scoring variant; among equal scores the first written."""
        start = int(self._starts[entry_index])
        end = int(self._ends[entry_index])
        return start if end - start == 1 else start + int(np.argmax(variant_scores[start:end]))


def _best_other(values: np.ndarray) -> np.ndarray:
    """For each item, the largest of the other items (0 when there is no other)."""
    if len(values) < 2:
        return np.zeros(len(values))
    second, first = np.partition(values, len(values) - 2)[-2:]
    others: np.ndarray = np.where(values >= first, second, first)
    return others


class _Classifier:
    """A linear SVM (one entry against the rest) over the variants' character and word vectors."""

    def __init__(self, weights: np.ndarray, bias: np.ndarray, word_offset: int) -> None:
        self._weights = weights  # entries x features, float32 to halve the memory
        self._bias = bias
        self._word_offset = word_offset  # the word columns follow the character n-gram columns

    @classmethod
    def train(
        cls, chars: sparse.csr_matrix, words: sparse.csr_matrix, labels: np.ndarray, entries: int
    ) -> _Classifier | None:
        if (
            entries < 2
            or entries > _CLASSIFIER_MAX_ENTRIES
            or len(labels) < _CLASSIFIER_MIN_VARIANTS * entries
        ):
            return None
        from sklearn.svm import LinearSVC

        rows = sparse.hstack([chars, words], format="csr")
        model = LinearSVC(C=2.0)
        model.fit(rows, labels)
        weights = np.zeros((entries, rows.shape[1]), dtype=np.float32)
        bias = np.full(entries, -1.0)
        if len(model.classes_) == 2:  # liblinear returns one row for two classes
            weights[model.classes_[1]], bias[model.classes_[1]] = model.coef_[0], model.intercept_[0]
            weights[model.classes_[0]], bias[model.classes_[0]] = -model.coef_[0], -model.intercept_[0]
        else:
            weights[model.classes_] = model.coef_
            bias[model.classes_] = model.intercept_
        return cls(weights, bias, chars.shape[1])

    def decisions(self, chars: _Query, words: _Query) -> np.ndarray:
        """The classifier's score of each entry for a text (higher: more likely)."""
        columns = np.concatenate([chars.terms, words.terms + self._word_offset])
        values = np.concatenate([chars.weights, words.weights])
        decisions: np.ndarray = np.asarray(self._weights[:, columns] @ values, dtype=np.float64) + self._bias
        return decisions


def _with_pairs(words: Sequence[str]) -> list[str]:
    """Words and each pair of neighbouring words ("lost card" says more than "lost" and "card")."""
    return [*words, *(f"{a} {b}" for a, b in itertools.pairwise(words))]


def _synonym_table(entry: FaqEntry, analyzer: Analyzer) -> dict[str, list[str]]:
    """word -> the other words of its synonym group, in the analyser's forms (stems, morphemes)."""
    table: dict[str, list[str]] = {}
    for group in entry.synonyms:
        forms = [" ".join(analyzer.words(normalize(word))) or normalize(word) for word in group]
        for form in forms:
            table.setdefault(form, []).extend(other for other in forms if other != form)
    return table


class _KeywordIndex:
    """An entry's keywords found in a text. Hangul, Han and kana keywords are looked for anywhere in the
    text without spaces ("대형 폐기물" = "대형폐기물"); other keywords as whole words, so "bus" does not
    fire on "business" (a plural finds its singular: "buses" -> "bus")."""

    def __init__(self, entries: Sequence[FaqEntry]) -> None:
        self._words: dict[str, list[int]] = {}
        self._phrases: dict[str, list[int]] = {}
        self._spaceless: dict[str, list[int]] = {}
        for entry_index, entry in enumerate(entries):
            for keyword in dict.fromkeys(normalize(k) for k in entry.keywords):
                if not keyword:
                    continue
                if SPACELESS.search(keyword):
                    table, keyword = self._spaceless, keyword.replace(" ", "")
                else:
                    table = self._phrases if " " in keyword else self._words
                table.setdefault(keyword, []).append(entry_index)

    def hits(self, normalized: str) -> set[int]:
        if not normalized:
            return set()
        hits: set[int] = set()
        for word in normalized.split():
            for form in {word, word.removesuffix("s"), word.removesuffix("es")}:
                hits.update(self._words.get(form, ()))
        spaced = f" {normalized} "
        for phrase, entry_indexes in self._phrases.items():
            if f" {phrase} " in spaced:
                hits.update(entry_indexes)
        compact = normalized.replace(" ", "")
        for keyword, entry_indexes in self._spaceless.items():
            if keyword in compact:
                hits.update(entry_indexes)
        return hits
