"""The one text splitter (channels/splitting.py), with each channel's measure: SMS segments, Telegram's
UTF-16 units, X's characters."""

from __future__ import annotations

import math
import random

import pytest

from channels.segments import sms_segments
from channels.splitting import split_text


def sms(text: str, max_segments: int) -> list[str]:
    return split_text(text, max_segments, sms_segments)


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def test_split_falls_back_to_sentences_then_words_then_characters() -> None:
    sentences = "One two three. Four five six. Seven eight nine."
    assert sms(sentences, 1) == [sentences]
    long = " ".join(["Word"] * 100)  # 499 septets, no sentence end: cut between words
    parts = sms(long, 1)
    assert all(sms_segments(p) == 1 for p in parts) and " ".join(parts) == long
    assert [len(p) for p in parts] == [159, 159, 159, 19]
    url = "https://city.example/" + "x" * 400  # one word longer than a message
    assert "".join(sms(url, 1)) == url and len(sms(url, 1)) == 3
    assert sms("   ", 1) == [] and sms("hi", 1) == ["hi"]


@pytest.mark.parametrize("max_segments", [1, 2, 10])
def test_split_keeps_every_word_and_the_limit_on_random_texts(max_segments: int) -> None:
    rng = random.Random(max_segments)
    words = ["가로등", "고장", "Main", "Street", "{braces}", "😀", "https://city.example/" + "y" * 200, "."]
    for _ in range(50):
        text = "".join(
            rng.choice(words) + rng.choice([" ", " ", "\n\n", ". ", ""]) for _ in range(rng.randint(1, 150))
        )
        parts = split_text(text, max_segments, sms_segments)
        assert all(1 <= sms_segments(p) <= max_segments for p in parts)
        assert "".join("".join(parts).split()) == "".join(text.split())  # nothing lost, nothing added
        if sms_segments(text.strip()) <= max_segments:
            assert parts == ([text.strip()] if text.strip() else [])


def test_telegram_parts_end_at_sentences_and_count_utf16_units() -> None:
    assert split_text("short", 1000, utf16) == ["short"]
    sentences = "이것은 문장입니다. " * 600
    parts = split_text(sentences, 1000, utf16)
    assert all(len(p) <= 1000 and p.endswith("다.") for p in parts)
    assert " ".join(parts) == sentences.strip()
    no_spaces = "가" * 2500
    assert split_text(no_spaces, 1000, utf16) == ["가" * 1000, "가" * 1000, "가" * 500]
    emoji = "😀" * 600  # two UTF-16 units each, as Telegram counts
    assert [len(p) for p in split_text(emoji, 1000, utf16)] == [500, 100]


def test_x_direct_messages_keep_every_word_within_the_limit() -> None:
    text = " ".join(f"word{i}" for i in range(5000))  # 43,889 characters
    parts = split_text(text, 10_000)
    assert len(parts) == math.ceil(len(text) / 10_000) and all(len(p) <= 10_000 for p in parts)
    assert " ".join(parts).split() == text.split()
    assert split_text("short", 10_000) == ["short"]


def test_a_cjk_full_stop_is_a_boundary_without_a_space() -> None:
    assert split_text("가나다。라마바。", 4) == ["가나다。", "라마바。"]


def test_lines_come_before_sentences() -> None:
    text = "Line one. Still one\nLine two"
    assert split_text(text, 20) == ["Line one. Still one", "Line two"]
