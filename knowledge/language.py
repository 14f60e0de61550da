"""Guess a message's language: by the scripts its letters are written in first (Hangul, kana, Han and
Cyrillic decide most texts outright), then, for Latin and Cyrillic letters, by py3langid, a packaged
statistical identifier, when it is sure: English and Vietnamese without diacritics, French, Spanish,
Russian and others that the city does not serve but should recognise (their answers fall back to
English).
"""

from __future__ import annotations

import threading
import unicodedata
from functools import cache
from typing import Any

# Tie order: a script earlier here wins a tie with a later one. Latin comes last because citizens mix
# English words into Korean (and the other languages), rarely the other way round.
_ORDER = ("ko", "ja", "zh", "mn", "latin")

# A Hangul syllable or a Han/kana character carries about as much as two Latin letters ("소파" vs
# "sofa"), so they weigh double; otherwise a couple of English words would outvote a Korean sentence.
_SYLLABIC_WEIGHT = 2

# Combining marks that, on a Latin vowel, are Vietnamese tones or vowel qualities: grave, acute,
# circumflex, tilde, breve, hook above, horn, dot below. Diaeresis (ü) and cedilla (ç) are not.
_VIETNAMESE_MARKS = frozenset("\u0300\u0301\u0302\u0303\u0306\u0309\u031b\u0323")
_VOWELS = frozenset("aeiouy")
# Below this share of Vietnamese-looking letters a Latin text stays English ("café", "Nguyễn").
_VIETNAMESE_SHARE = 0.1


def detect_language(text: str, default: str = "ko") -> str:
    """The language code of `text` by majority script; `default` when it has no letters we know."""
    weights = dict.fromkeys(_ORDER, 0)
    han = 0
    vietnamese = 0
    for char in text:
        script = _script(char)
        if script is None:
            continue
        if script == "han":
            han += 1
        elif script == "hangul-syllable":
            weights["ko"] += _SYLLABIC_WEIGHT
        elif script == "hangul-jamo":
            weights["ko"] += 1  # ㅋㅋ, ㅠㅠ: a Korean habit, but only a letter each
        elif script == "kana":
            weights["ja"] += _SYLLABIC_WEIGHT
        elif script == "latin":
            weights["latin"] += 1
            vietnamese += _is_vietnamese_letter(char)
        else:
            weights[script] += 1
    # Han characters are Japanese kanji next to kana, Korean hanja next to Hangul, else Chinese.
    if weights["ja"]:
        weights["ja"] += han * _SYLLABIC_WEIGHT
    elif weights["ko"]:
        weights["ko"] += han * _SYLLABIC_WEIGHT
    else:
        weights["zh"] += han * _SYLLABIC_WEIGHT

    best = max(_ORDER, key=lambda name: (weights[name], -_ORDER.index(name)))
    if weights[best] == 0:
        return default
    if best == "latin":
        if vietnamese >= _VIETNAMESE_SHARE * weights["latin"]:
            return "vi"
        return _identify(text, _LATIN, fallback="en")
    if best == "mn":
        return _identify(text, _CYRILLIC, fallback="mn")
    return best


# The languages the identifier may choose among, by script; the first is what a doubtful text gets.
_LATIN = ("en", "vi", "fr", "de", "es", "pt", "it", "id", "ms", "tl", "tr", "nl")
_CYRILLIC = ("mn", "ru", "kk", "uk")
# Below this probability (or for texts of fewer letters) the script's default language stands:
# two words of English are too short for a statistical guess ("ok", "hello" look like anything).
_SURE = 0.9
_MIN_LETTERS = 12
_identifier_lock = threading.Lock()


def _identify(text: str, candidates: tuple[str, ...], *, fallback: str) -> str:
    if sum(char.isalpha() for char in text) < _MIN_LETTERS:
        return fallback
    identifier = _identifier(candidates)
    with _identifier_lock:  # the identifier keeps scratch state between calls
        language, probability = identifier.classify(text)
    return str(language) if probability >= _SURE else fallback


@cache
def _identifier(candidates: tuple[str, ...]) -> Any:
    """py3langid's model limited to `candidates`; loaded on first use (about half a second)."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(candidates))
    return identifier


def _script(char: str) -> str | None:
    code = ord(char)
    if 0xAC00 <= code <= 0xD7A3:
        return "hangul-syllable"
    if 0x1100 <= code <= 0x11FF or 0x3130 <= code <= 0x318F or 0xA960 <= code <= 0xA97F:
        return "hangul-jamo"
    if 0xD7B0 <= code <= 0xD7FF or 0xFFA0 <= code <= 0xFFDC:
        return "hangul-jamo"
    if 0x3040 <= code <= 0x30FF or 0x31F0 <= code <= 0x31FF or 0xFF66 <= code <= 0xFF9D:
        return "kana" if char != "\u30fb" else None  # the katakana middle dot is punctuation
    if 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0xF900 <= code <= 0xFAFF:
        return "han"
    if 0x20000 <= code <= 0x3134F:
        return "han"
    if 0x0400 <= code <= 0x052F:
        return "mn" if char.isalpha() else None
    if char.isalpha() and (code <= 0x024F or 0x1E00 <= code <= 0x1EFF or 0xFF21 <= code <= 0xFF5A):
        return "latin"
    return None


def _is_vietnamese_letter(char: str) -> bool:
    lower = char.lower()
    if lower == "đ":
        return True
    decomposed = unicodedata.normalize("NFD", lower)
    return decomposed[0] in _VOWELS and any(mark in _VIETNAMESE_MARKS for mark in decomposed[1:])
