"""Find the FAQ entries a citizen's message is about, with a confidence that means something.

Retrieval is lexical and fused. Against every question variant: BM25 over words (Kiwi morphemes for
Korean, stems for English, character pairs for Chinese and Japanese) and TF-IDF cosine over character
n-grams, which survive spacing mistakes and typos. Against each entry as a whole: the cosine to all of
its variants taken together, its whole answer and its keywords. The best candidates' signals (shares,
margins and agreements that mean the same on any FAQ) become the probability that a candidate is the
right answer through the two small models of knowledge/calibration.py: shipped (fitted offline on FAQs
of many shapes), or fitted to a city's labelled texts by `faq calibrate`.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
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
    def streamed(cls, documents: Iterable[Sequence[str]], vocabulary: dict[str, int]) -> _Counts:
        """The same for documents made one at a time (long answers): only one document's terms are
        held as Python strings at once, the rest as arrays."""
        parts = [cls.of([document], vocabulary) for document in documents]
        if not parts:
            return cls.of([], vocabulary)
        return cls(
            vocabulary,
            len(parts),
            np.repeat(np.arange(len(parts)), [len(part.term) for part in parts]),
            np.concatenate([part.term for part in parts]),
            np.concatenate([part.count for part in parts]),
        )

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


class _StackedPostings:
    """Several indexes' postings in one: each index (documents x its own terms) is a diagonal block, so
    a text's queries against all of them cost one gather and one bincount, not one each."""

    def __init__(self, blocks: Sequence[sparse.csr_matrix]) -> None:
        self._term_offsets = np.cumsum([0, *(block.shape[1] for block in blocks)])[:-1]
        self._output_offsets = np.cumsum([0, *(block.shape[0] for block in blocks)])
        self._postings = _Postings(sparse.block_diag(blocks, format="csr"))

    def score(self, queries: Sequence[_Query]) -> list[np.ndarray]:
        """Each block's scores for its query (a query per block, in the blocks' order)."""
        offsets = zip(queries, self._term_offsets, strict=True)
        terms = np.concatenate([query.terms + offset for query, offset in offsets])
        scores = self._postings.score(terms, np.concatenate([q.weights for q in queries]))
        return [scores[a:b] for a, b in itertools.pairwise(self._output_offsets.tolist())]


@dataclass(frozen=True)
class _Query:
    """A text over one index: the indices of its terms that the index has, and their weights."""

    terms: np.ndarray
    weights: np.ndarray


class _TfIdf:
    """Sublinear TF-IDF with unit rows; a term no document has gets the highest weight, so the words of
    an unrelated text lengthen its vector and pull every similarity down."""

    def __init__(self, counts: _Counts) -> None:
        # The vocabulary may be shared with another index: this index's own terms are those its
        # documents have (the others have a document frequency of 0 here and count as unseen).
        self.vocabulary = counts.vocabulary
        frequency = counts.frequency()
        idf = np.log((1 + counts.documents) / (1 + frequency)) + 1
        self.matrix = _unit_rows(counts.matrix((1 + np.log(counts.count)) * idf[counts.term]))
        # Per term (and a last slot for index -1, a term of no index): its weight in a text, and
        # whether any document here has it.
        self._known = np.append(frequency > 0, False)
        self._query_idf = np.where(self._known, np.append(idf, 0.0), math.log(1 + counts.documents) + 1)

    def query(self, counts: Mapping[str, int]) -> _Query:
        """A text's term counts as a unit vector over this vocabulary."""
        indexes = np.fromiter(
            map(self.vocabulary.get, counts, itertools.repeat(-1)), dtype=np.int64, count=len(counts)
        )
        counts_array = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
        return self.query_indexed(indexes, 1 + np.log(counts_array))

    def query_indexed(self, indexes: np.ndarray, tf: np.ndarray) -> _Query:
        """The same, for terms already looked up in the vocabulary (-1: unknown) with their sublinear
        term frequencies (1 + log count)."""
        weights = tf * self._query_idf[indexes]
        known = self._known[indexes]
        total = float(weights @ weights)
        if total == 0:
            return _Query(np.zeros(0, dtype=np.int64), np.zeros(0))
        # Unit length over all of the text's terms: unknown ones shorten the known ones' weights.
        return _Query(indexes[known], weights[known] / math.sqrt(total))


class _Bm25:
    """BM25 of each document for a text's words, divided by the most the text's words can score (the sum
    of their IDFs), so 1.0 means every word of the text is found; unknown words count against it."""

    def __init__(self, counts: _Counts) -> None:
        self.vocabulary = counts.vocabulary
        frequency = counts.frequency()
        self.idf = np.log(1 + (counts.documents - frequency + 0.5) / (frequency + 0.5))
        self.unseen_idf = math.log(1 + (counts.documents + 0.5) / 0.5)
        lengths = np.bincount(counts.doc, counts.count, minlength=counts.documents)
        average = float(lengths.mean()) if counts.documents else 1.0
        norm = _K1 * (1 - _B + _B * lengths[counts.doc] / (average or 1.0))
        self.matrix = counts.matrix(self.idf[counts.term] * counts.count * (_K1 + 1) / (counts.count + norm))
        self._present = counts.matrix(np.ones(len(counts.term)))

    def present_idf(self) -> sparse.csr_matrix:
        """Which words each document has, weighted by their IDF (documents x words)."""
        return sparse.csr_matrix(self._present.multiply(self.idf[np.newaxis, :]))

    def entry_words(self, membership: sparse.csr_matrix) -> sparse.csr_matrix:
        """Which words each entry has in any of its variants (membership: entries x documents)."""
        present = sparse.csr_matrix(membership @ self._present)
        present.data[:] = 1.0
        return present

    def query(self, words: Sequence[str]) -> _Bm25Query:
        distinct = dict.fromkeys(words)
        present = np.asarray([self.vocabulary[w] for w in distinct if w in self.vocabulary], dtype=np.int64)
        idf = self.idf[present]
        missing = len(distinct) - len(present)
        possible = float(idf.sum()) + missing * self.unseen_idf
        counted, weighted = _Query(present, np.ones(len(present))), _Query(present, idf)
        if possible == 0:
            return _Bm25Query(counted, weighted, 0.0, 1.0)
        return _Bm25Query(counted, weighted, missing * self.unseen_idf / possible, possible)


@dataclass(frozen=True)
class _Bm25Query:
    """A text's known words for BM25 (weight 1) and for word coverage (weight: IDF); the share of the
    text's IDF mass that no document has, and the most its words could score (to normalise by)."""

    words: _Query
    idf_weighted: _Query
    unknown: float
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
        # Each question as written (normalised) -> the entry it belongs to, when only one has it.
        owners: dict[str, set[int]] = {}
        for variant in self._variants:
            owners.setdefault(normalize(variant.question), set()).add(variant.entry_index)
        self._exact = {text: next(iter(found)) for text, found in owners.items() if len(found) == 1}
        self._starts = np.asarray(starts, dtype=np.int64)
        self._ends = np.append(self._starts[1:], len(self._variants)).astype(np.int64)
        self._variant_entry = np.asarray([v.entry_index for v in self._variants], dtype=np.int64)
        self._one_variant_each = len(self._variants) == len(self._entries)

        # Whole answers by their character n-grams (Kiwi on every answer would make a reload of a large
        # base take many seconds), counted one answer at a time (a long one has tens of thousands).
        # They share the questions' n-gram vocabulary, so a text's n-grams are looked up once for both.
        answer_grams = (char_ngrams(normalize(" ".join(entry.answer.values()))) for entry in self._entries)
        char_vocabulary: dict[str, int] = {}
        question_gram_counts = _Counts.of(variant_grams, char_vocabulary)
        # The questions' n-grams come first in the shared vocabulary; the answers add theirs after.
        question_grams = len(char_vocabulary)
        answer_gram_counts = _Counts.streamed(answer_grams, char_vocabulary)
        self._char_vocabulary = char_vocabulary
        self._bm25 = _Bm25(_Counts.of(variant_words))
        # How much of each variant's own word weight a text can cover (the other way round from bm25:
        # a text that says all of a variant's words and more is about the variant's topic).
        variant_idf = self._bm25.present_idf()
        self._variant_idf_total = np.asarray(variant_idf.sum(axis=1)).ravel()
        self._variant_idf_total[self._variant_idf_total == 0] = 1.0
        self._entry_variants = np.log1p(self._ends - self._starts)
        self._chars = _TfIdf(question_gram_counts)
        self._answers = _TfIdf(answer_gram_counts)
        self._words = _TfIdf(_Counts.of([_with_pairs(words) for words in variant_words]))
        # Each entry as one document: its variants' unit rows summed, again of unit length.
        membership = sparse.csr_matrix(
            (np.ones(len(self._variants)), (self._variant_entry, np.arange(len(self._variants)))),
            shape=(len(self._entries), len(self._variants)),
        )
        blocks = [
            self._bm25.matrix,
            variant_idf,
            self._bm25.entry_words(membership),
            self._chars.matrix,
            self._answers.matrix,
            _unit_rows(membership @ self._words.matrix),
        ]
        centroids = _unit_rows(membership @ self._chars.matrix)
        if not self._one_variant_each:  # else an entry's centroid is its one question
            blocks.append(centroids)
        self._postings = _StackedPostings(blocks)
        self._crowding = _nearest_other(centroids)
        self._keywords = _KeywordIndex(self._entries)
        # Over the questions' n-grams only: an answer's n-grams are never in a variant, and would
        # only add columns of zeros to the weights (entries x columns).
        question_chars = self._chars.matrix[:, :question_grams]
        self._classifier = _Classifier.train(
            question_chars, self._words.matrix, self._variant_entry, len(self._entries)
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
        candidates, features = self._candidates(text, language)
        if not candidates:
            return []
        probabilities = self.confidence.probabilities(features)
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
        return self._candidates(text, language)[0]

    def _candidates(self, text: str, language: str | None) -> tuple[list[Candidate], np.ndarray]:
        """The candidates, and their signals as a matrix (a row each) for the confidence model."""
        nothing: tuple[list[Candidate], np.ndarray] = ([], np.zeros((0, len(FEATURES))))
        if not self._entries:
            return nothing
        normalized = normalize(text)
        words = self._analyzer.words(normalized)
        grams = Counter(char_ngrams(normalized))
        if not words and not grams:
            return nothing
        found = self._bm25.query(words)
        # The questions' and the answers' n-grams share one vocabulary: look each up once.
        gram_indexes = np.fromiter(
            map(self._char_vocabulary.get, grams, itertools.repeat(-1)), dtype=np.int64, count=len(grams)
        )
        gram_tf = 1 + np.log(np.fromiter(grams.values(), dtype=np.float64, count=len(grams)))
        char_query = self._chars.query_indexed(gram_indexes, gram_tf)
        word_query = self._words.query(Counter(_with_pairs(words)))
        queries = [
            found.words,
            found.words,
            found.idf_weighted,
            char_query,
            self._answers.query_indexed(gram_indexes, gram_tf),
            word_query,
        ]
        if not self._one_variant_each:
            queries.append(char_query)
        bm25, said, covered, chars, answers, centroid_words, *centroid_chars = self._postings.score(queries)
        said /= self._variant_idf_total
        bm25 /= found.possible
        # How much of the text's word weight the entry has anywhere in its questions: what the text
        # asks beyond the entry ("... 채용 공고") shows here even when one rare word matches strongly.
        covered /= found.possible
        unknown = found.unknown
        variant_blend = 0.5 * bm25 + 0.5 * chars

        if self._one_variant_each:  # an entry is its question: the entry-level signals are the same
            bm25_e, chars_e, centroid, said_e = bm25, chars, chars, said
        else:
            said_e = np.maximum.reduceat(said, self._starts)
            bm25_e = np.maximum.reduceat(bm25, self._starts)
            chars_e = np.maximum.reduceat(chars, self._starts)
            centroid = centroid_chars[0]
        per_entry = (bm25_e, chars_e, centroid, centroid_words, answers)
        keyword = np.zeros(len(self._entries))
        keyword[list(self._keywords.hits(normalized))] = 1.0
        blend = _KEYWORD_BLEND * keyword
        for weight, signal in zip(_BLEND, per_entry, strict=True):
            blend += weight * signal

        chosen = set(_largest(blend, _CANDIDATES).tolist())
        if not chosen:
            return nothing
        decisions = classifier_margin = np.zeros(len(self._entries))
        if self._classifier is not None:
            decisions = self._classifier.decisions(char_query, word_query)
            # The classifier's three favourites are looked at too.
            chosen.update(np.argpartition(-decisions, min(2, len(decisions) - 1))[:3].tolist())
            classifier_margin = decisions - _best_other(decisions)
        indexes = np.asarray(sorted(chosen), dtype=np.int64)
        margin = blend[indexes] - _best_other(blend[indexes])

        voters = _largest(variant_blend, _VOTERS)
        # Weak neighbours vote weakly: below a mean similarity of 0.1 the shares shrink.
        voter_weight = max(float(variant_blend[voters].sum()), 0.1 * _VOTERS)
        votes = np.bincount(self._variant_entry[voters], variant_blend[voters], minlength=len(self._entries))
        # Filled column by column (an assignment broadcasts a constant; no temporary arrays).
        matrix = np.empty((len(indexes), len(FEATURES)))
        for column, signal in enumerate(per_entry):
            matrix[:, column] = signal[indexes]
        candidate_margin = classifier_margin[indexes]
        column = len(per_entry)
        matrix[:, column] = keyword[indexes]
        matrix[:, column + 1] = margin
        matrix[:, column + 2] = votes[indexes] / voter_weight
        matrix[:, column + 3] = unknown
        matrix[:, column + 4] = math.log1p(len(words))
        matrix[:, column + 5] = decisions[indexes]
        matrix[:, column + 6] = candidate_margin
        matrix[:, column + 7] = (margin > 0) & (candidate_margin > 0)
        matrix[:, column + 8] = covered[indexes]
        matrix[:, column + 9] = said_e[indexes]
        # Ties count for each of the tied entries (the same question in two languages is first twice).
        firsts = sum((s[indexes] >= s.max()) & (s[indexes] > 0) for s in (*per_entry[:4], decisions))
        matrix[:, column + 10] = firsts / 5
        matrix[:, column + 11] = self._entry_variants[indexes]
        matrix[:, column + 12] = self._classifier is not None
        matrix[:, column + 13] = self._crowding[indexes]
        matrix[:, column + 14] = indexes == self._exact.get(normalized, -1)
        matrix[:, column + 15] = math.log1p(len(self._entries))
        candidates = []
        for entry_index, features in zip(indexes.tolist(), matrix.tolist(), strict=True):
            variant = self._variants[self._best_variant(entry_index, variant_blend)]
            candidates.append(
                Candidate(
                    entry_index=entry_index,
                    features=tuple(features),
                    question=variant.question,
                    preferred_language=language is not None and variant.language == language,
                )
            )
        return candidates, matrix

    def _best_variant(self, entry_index: int, variant_scores: np.ndarray) -> int:
        """The entry's best-scoring variant; among equal scores the first written."""
        start = int(self._starts[entry_index])
        end = int(self._ends[entry_index])
        return start if end - start == 1 else start + int(np.argmax(variant_scores[start:end]))


def _largest(values: np.ndarray, count: int) -> np.ndarray:
    """Indices of the `count` largest positive values (all of them if fewer are positive), unordered.
    Only values of at least a third of the largest are sorted out when there are enough of them (the
    result is the same, the partition shorter); zeros are never: argpartition slows down tenfold on
    many equal values."""
    largest_value = float(values.max()) if len(values) else 0.0
    if largest_value <= 0:
        return np.zeros(0, dtype=np.int64)
    positive = np.flatnonzero(values >= largest_value / 3)
    if len(positive) < count:
        positive = np.flatnonzero(values > 0)
    if len(positive) <= count:
        return positive
    largest: np.ndarray = positive[np.argpartition(-values[positive], count - 1)[:count]]
    return largest


def _nearest_other(rows: sparse.csr_matrix, chunk: int = 512) -> np.ndarray:
    """For each row (a unit vector), its largest cosine to any other row: how easily the entry is
    taken for another one. In chunks, so a large base never holds entries x entries at once."""
    nearest = np.zeros(rows.shape[0])
    columns = sparse.csr_matrix(rows.T)
    for start in range(0, rows.shape[0], chunk):
        block = (rows[start : start + chunk] @ columns).toarray()
        block[np.arange(len(block)), np.arange(start, start + len(block))] = 0.0
        nearest[start : start + len(block)] = block.max(axis=1) if block.shape[1] else 0.0
    return nearest


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
        model = LinearSVC(C=2.0, random_state=0)  # liblinear shuffles: fixed, reruns score alike
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
        # A character query holds only n-grams some question has: all within the character columns.
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
        if not normalized or not (self._words or self._phrases or self._spaceless):
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
