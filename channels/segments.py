"""How many SMS segments a text takes, so notices can be kept to what every phone receives cheaply.

A segment holds 160 GSM-7 septets (153 once a text is split, the rest carries the joining header) or
70 UCS-2 code units (67 when split). One character outside GSM 03.38 turns the whole text into UCS-2.
"""

from __future__ import annotations

from typing import Literal

# GSM 03.38 basic character set, in table order (0x1B, the escape to the extension table, is left out:
# it is not a character a text can contain).
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: each is sent as escape + character, so it costs two septets.
_GSM_EXTENSION = frozenset("\f^{}\\[~]|€")

_GSM_SINGLE, _GSM_SPLIT = 160, 153
_UCS2_SINGLE, _UCS2_SPLIT = 70, 67


def sms_encoding(text: str) -> Literal["GSM-7", "UCS-2"]:
    """GSM-7 when every character is in the basic set or the extension table, else UCS-2."""
    if all(char in _GSM_BASIC or char in _GSM_EXTENSION for char in text):
        return "GSM-7"
    return "UCS-2"


def _units(text: str) -> list[int]:
    """What each character costs in the text's encoding: septets for GSM-7, UTF-16 units for UCS-2."""
    if sms_encoding(text) == "GSM-7":
        return [2 if char in _GSM_EXTENSION else 1 for char in text]
    # Characters beyond the Basic Multilingual Plane (most emoji) need a surrogate pair.
    return [2 if ord(char) > 0xFFFF else 1 for char in text]


def sms_length(text: str) -> int:
    """The length in septets (GSM-7) or UTF-16 code units (UCS-2)."""
    return sum(_units(text))


def sms_segments(text: str) -> int:
    """How many segments the text is sent as; 0 for an empty text."""
    units = _units(text)
    if not units:
        return 0
    gsm = sms_encoding(text) == "GSM-7"
    if sum(units) <= (_GSM_SINGLE if gsm else _UCS2_SINGLE):
        return 1
    limit = _GSM_SPLIT if gsm else _UCS2_SPLIT
    # Fill segments in order: an escape pair or a surrogate pair is never cut in two, so a two-unit
    # character that does not fit starts the next segment and leaves a unit unused.
    segments, used = 1, 0
    for cost in units:
        if used + cost > limit:
            segments, used = segments + 1, 0
        used += cost
    return segments
