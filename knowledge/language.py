"""Guess a message's language from the scripts its letters are written in.

A first version: it cannot tell English from Vietnamese typed without diacritics, nor any two
languages sharing a script beyond the six the city serves. A statistical identifier comes later.
"""

from __future__ import annotations

import unicodedata

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
        return "vi" if vietnamese >= _VIETNAMESE_SHARE * weights["latin"] else "en"
    return best


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
