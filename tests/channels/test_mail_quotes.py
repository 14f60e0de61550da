"""The quote and signature cutter on sample replies from several mail clients, in Korean and
English (tests/channels/mail_samples/, measured by bench/mail_replies.py). What it cannot do is
listed in KNOWN_MISSES and checked to still miss, so a fix shows up and a new miss fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from channels.mail_parsing import clean_subject, parse_mail, read_our_id
from channels.mail_quotes import reply_text

SAMPLES = Path(__file__).parent / "mail_samples"
NAMES = sorted(p.stem for p in SAMPLES.glob("*.eml"))
KNOWN_MISSES = {
    # A signature with no delimiter and no sign-off (a name and a phone number under the text)
    # cannot be told from the citizen's own last lines; it is kept.
    "generic-ko-bare-signature",
}


def kept(name: str) -> str:
    raw = (SAMPLES / f"{name}.eml").read_bytes()
    return parse_mail(raw, own_addresses=("help@city.example",), domain="city.example").text


def test_there_are_samples_of_every_client_in_both_languages() -> None:
    clients = {name.split("-")[0] for name in NAMES}
    assert {"gmail", "outlook", "apple", "thunderbird", "naver", "daum", "samsung"} <= clients
    assert {name.split("-")[1] for name in NAMES} == {"ko", "en"}
    assert all((SAMPLES / f"{name}.expected.txt").exists() for name in NAMES)


@pytest.mark.parametrize("name", [n for n in NAMES if n not in KNOWN_MISSES])
def test_the_reply_is_cut_right(name: str) -> None:
    expected = (SAMPLES / f"{name}.expected.txt").read_text(encoding="utf-8")
    assert " ".join(kept(name).split()) == " ".join(expected.split())


@pytest.mark.parametrize("name", sorted(KNOWN_MISSES))
def test_a_known_miss_still_misses_and_loses_nothing(name: str) -> None:
    expected = (SAMPLES / f"{name}.expected.txt").read_text(encoding="utf-8").strip()
    text = kept(name)
    assert " ".join(text.split()) != " ".join(expected.split()), (
        f"{name} is cut right now: move it out of KNOWN_MISSES"
    )
    assert text.startswith(expected)  # more is kept than should be, never less


def test_a_mail_that_is_all_quote_keeps_nothing() -> None:
    assert reply_text("On Mon, Nov 23, 2026 at 10:00 AM City <help@city.example> wrote:\n> hello\n") == ""


def test_subjects_lose_prefixes_and_our_reference() -> None:
    assert clean_subject("RE: Fwd: 답장: 가로등 고장 [2026-000123]") == "가로등 고장"
    assert clean_subject("Re[2]: lamp") == "lamp"


def test_only_our_own_message_ids_are_read() -> None:
    assert read_our_id("intake.2026-000123.msg-4@city.example", "city.example") == ("2026-000123", "msg-4")
    assert read_our_id("intake.msg-4@City.Example", "city.example") == (None, "msg-4")
    assert read_our_id("intake.2026-000123.msg-4@evil.example", "city.example") is None
    assert read_our_id("CAF=abc@mail.gmail.com", "city.example") is None


def test_a_read_receipt_is_automatic_not_a_bounce() -> None:
    raw = (
        b"From: Hong <hong@mail.example>\r\nTo: help@city.example\r\nSubject: Read: lamp\r\n"
        b"Message-ID: <mdn@mail.example>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=disposition-notification; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/plain\r\n\r\nYour message was read.\r\n"
        b"--B\r\nContent-Type: message/disposition-notification\r\n\r\n"
        b"Final-Recipient: rfc822;hong@mail.example\r\n"
        b"Original-Message-ID: <intake.2026-000123.msg-4@city.example>\r\n"
        b"Disposition: manual-action/MDN-sent-manually; displayed\r\n\r\n--B--\r\n"
    )
    mail = parse_mail(raw, own_addresses=("help@city.example",), domain="city.example")
    assert (mail.kind, mail.bounced_key) == ("automatic", None)
