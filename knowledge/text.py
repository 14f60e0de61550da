"""Turn a citizen's text into what the matcher and the department model compare: a normalised string,
its words (Korean morphemes from Kiwi, English stems, Chinese and Japanese character pairs) and its
character n-grams, which survive the spacing mistakes and typos that words do not.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections import OrderedDict
from functools import cache
from typing import TYPE_CHECKING

import snowballstemmer

if TYPE_CHECKING:
    from kiwipiepy import Kiwi

# Hangul jamo written on their own are laughter, crying or shorthand (ㅋㅋ, ㅠㅠ, ㅇㅇ), never content.
# They are removed before NFKC, which would otherwise compose "ㅋㅠ" into the syllable "큐".
_JAMO = re.compile("[\u1100-\u11ff\u3131-\u318e\ua960-\ua97f\ud7b0-\ud7ff\uffa0-\uffdc]+")
# Three or more of the same character ("soooo", "하하하") become one; digits are left alone
# because "1000" and "010-0000-0000" mean what they say.
_REPEATS = re.compile(r"([^\d\s])\1{2,}")
_HANGUL = re.compile("[\uac00-\ud7a3]")
# Scripts written without spaces between words (Korean is spaced, but unreliably).
SPACELESS = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7a3\uf900-\ufaff]")
_HAN_KANA_RUN = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"\w+")

# Kiwi's tags that carry content: nouns, numbers, foreign words and hanja, verb and adjective stems,
# roots, and adverbs (못, 안, 언제 change what is asked). Particles and endings are left out.
_KIWI_CONTENT = ("NNG", "NNP", "NR", "SL", "SH", "SN", "VV", "VA", "XR", "MAG", "NP", "MM")
# Korean words so common in questions that they say nothing about the topic.
_KOREAN_FILLER = frozenset({"하", "있", "되", "좀", "것", "수", "어떻", "어떻게", "알리", "주", "싶", "거"})

# Character n-gram sizes: pairs and triples of the text without spaces for the spaceless scripts;
# triples and quadruples inside each word (with its boundaries) for the others.
_SPACELESS_NGRAMS = (2, 3)
_WORD_NGRAMS = (3, 4)


def normalize(text: str) -> str:
    """Lowercase words separated by single spaces: no punctuation, symbols, emoji or jamo noise."""
    text = unicodedata.normalize("NFKC", _JAMO.sub(" ", text)).casefold()
    return " ".join(_REPEATS.sub(r"\1", text.translate(_LETTERS_ONLY)).split())


class _LettersOnly(dict[int, str]):
    """A str.translate table that turns every character that is not a letter, mark or number (Unicode
    categories L, M, N) into a space, filled as characters are met: translate then runs in C for
    every character seen before, instead of a category check per character in Python."""

    def __missing__(self, code: int) -> str:
        char = chr(code)
        value = char if unicodedata.category(char)[0] in "LMN" else " "
        self[code] = value
        return value


_LETTERS_ONLY = _LettersOnly()


def char_ngrams(normalized: str) -> list[str]:
    """Character n-grams of a normalised text: spacing-independent for Korean, Chinese and Japanese."""
    grams: list[str] = []
    spaceless = "".join(word for word in normalized.split() if SPACELESS.search(word))
    for size in _SPACELESS_NGRAMS:
        grams.extend(spaceless[i : i + size] for i in range(len(spaceless) - size + 1))
    for word in normalized.split():
        if SPACELESS.search(word):
            continue
        padded = f" {word} "
        for size in _WORD_NGRAMS:
            grams.extend(padded[i : i + size] for i in range(max(len(padded) - size + 1, 1)))
    return grams


class Analyzer:
    """Words of a text for retrieval. Builds Kiwi, Korean's morphological analyser, on first use (about
    a second) and remembers recent analyses, so a reload of the FAQ analyses only what changed."""

    def __init__(self, *, cache_size: int = 200_000) -> None:
        self._kiwi: Kiwi | None = None
        self._lock = threading.Lock()
        self._analysis_lock = threading.Lock()
        self._cache: OrderedDict[str, tuple[str, ...]] = OrderedDict()
        self._cache_size = cache_size
        self._stemmer = snowballstemmer.stemmer("english")
        self._stems: dict[str, str] = {}

    def words(self, normalized: str) -> tuple[str, ...]:
        """The content words of a normalised text, in order (repeats kept)."""
        cached = self._cache.get(normalized)
        if cached is not None:
            return cached
        # A reload analyses in a worker thread while the server matches: the stemmer keeps state
        # between calls, so one analysis at a time.
        with self._analysis_lock:
            words = tuple(self._analyse(normalized))
        with self._lock:
            self._cache[normalized] = words
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return words

    def forget(self) -> None:
        """Empty the memory of analysed texts (benchmarks measure the analysis itself)."""
        with self._lock:
            self._cache.clear()

    def _analyse(self, normalized: str) -> list[str]:
        if _HANGUL.search(normalized):
            return self._korean(normalized)
        words: list[str] = []
        for word in normalized.split():
            runs = _HAN_KANA_RUN.findall(word)
            if runs:
                # Chinese and Japanese without a segmenter: each character and each pair of them.
                for run in runs:
                    words.extend(run)
                    words.extend(run[i : i + 2] for i in range(len(run) - 1))
                rest = _HAN_KANA_RUN.sub(" ", word).split()
                words.extend(self._stem(part) for part in rest)
            else:
                words.append(self._stem(word))
        return words

    def _korean(self, normalized: str) -> list[str]:
        kiwi = self._kiwi or self._load_kiwi()
        words = []
        # The text is normalised: no URLs, e-mails or hashtags for Kiwi's patterns to find (match_options
        # 0), and no codas stuck to endings ("먹었어욥") left worth splitting (z_coda); both cost time.
        for token in kiwi.tokenize(normalized, match_options=0, z_coda=False):
            tag = token.tag.split("-", 1)[0]  # "VA-I": an irregular adjective
            if tag not in _KIWI_CONTENT:
                continue
            form = token.form.casefold()
            if tag == "SL":
                form = self._stem(form)
            if form not in _KOREAN_FILLER:
                words.append(form)
        return words

    def _stem(self, word: str) -> str:
        stem = self._stems.get(word)
        if stem is None:
            stem = self._stemmer.stemWord(word) if word.isascii() and word.isalpha() else word
            if len(self._stems) < 500_000:
                self._stems[word] = stem
        return stem

    def _load_kiwi(self) -> Kiwi:
        with self._lock:
            if self._kiwi is None:
                from kiwipiepy import Kiwi

                # num_workers=-1: analyse in the calling thread; a pool only adds latency to one text.
                # The typo and multi-word dictionaries are left out: typo correction is not asked for,
                # and the two halve the load time and save about 190 MB.
                self._kiwi = Kiwi(
                    num_workers=-1, model_type="cong", load_typo_dict=False, load_multi_dict=False
                )
            return self._kiwi


@cache
def shared_analyzer() -> Analyzer:
    """One analyser per process: Kiwi's model takes a second and about 100 MB to load."""
    return Analyzer()
