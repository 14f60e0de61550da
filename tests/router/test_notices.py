"""The shipped notices in every language, rendered with realistic values, and what they cost as SMS."""

from __future__ import annotations

import re
import string
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from channels.segments import sms_encoding, sms_length, sms_segments
from router.notices import NOTICES, STATUSES, Notices

NOTICES_FILE = Path(__file__).resolve().parents[2] / "router" / "notices.yaml"
LANGUAGES = ("ko", "en", "zh", "ja", "vi", "mn")
REFERENCE = "2026-000123"
# Each language's longest department name: ko and en from config.yaml, the others realistic 8-15 characters.
DEPARTMENTS = {
    "ko": max(["교통도로과", "환경청소과", "복지정책과", "주택건축과", "안전총괄과", "민원총괄팀"], key=len),
    "en": max(
        [
            "Transport and Roads",
            "Environment and Waste",
            "Welfare",
            "Housing and Building",
            "Public Safety",
            "Citizen Service Desk",
        ],
        key=len,
    ),
    "zh": "城市交通与道路管理局",
    "ja": "市民サービス総合窓口",
    "vi": "Phòng Phúc lợi",
    "mn": "Тээврийн хэлтэс",
}
# A staff member's closing words, exactly 40 characters in each language.
STAFF_TEXTS = {
    "ko": "가로등을 오늘 오전에 새 제품으로 교체했습니다. 불편을 드려 죄송합니다.",
    "en": "The streetlight on Elm Street was fixed.",
    "zh": "您反映的路灯已于今天上午十点更换完毕。给您带来不便，我们深表歉意，感谢您的理解。",
    "ja": "ご連絡いただいた街灯は本日午前に交換しました。ご不便をおかけし申し訳ありません。",
    "vi": "Đèn đường ở ngõ 2 đã được thay sáng nay.",
    "mn": "Гудамжны гэрлийг өнөөдөр шинээр сольсон.",
}
WITH_TEXT = ("staff_reply", "resolved")
# A ticket's public status page on a realistic city domain (server.public_url + /status/ + reference).
LINK = f"https://eungdapso.seoul.go.kr/status/{REFERENCE}"
# The placeholders each notice may use (the comments on NOTICES in router/notices.py).
ALLOWED = {
    "received": {"reference", "due"},
    "answered_footer": set(),
    "forwarded": {"reference", "department", "due"},
    "sensitive_received": {"reference", "due"},
    "joined": {"reference"},
    "staff_reply": {"reference", "department", "text"},
    "claimed": {"reference", "department", "due"},
    "resolved": {"reference", "text"},
    "rated": set(),
    "comment_thanks": set(),
    "late": {"reference", "due"},
    "reopened": {"reference", "department", "due"},
    "status": {"reference", "status", "department", "due", "link"},
    "status_done": {"reference", "status", "department", "link"},
    "status_unknown": {"reference"},
    "welcome": set(),
    "help": set(),
    "help_sms": set(),
    "opted_in": set(),
    "public_reply": {"reference"},
}


# --- SMS segments ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "encoding", "length", "segments"),
    [
        ("", "GSM-7", 0, 0),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 153 * 2, "GSM-7", 306, 2),
        ("a" * (153 * 2 + 1), "GSM-7", 307, 3),
        ("가" * 70, "UCS-2", 70, 1),
        ("가" * 71, "UCS-2", 71, 2),
        ("가" * 67 * 2, "UCS-2", 134, 2),
        ("가" * (67 * 2 + 1), "UCS-2", 135, 3),
    ],
)
def test_segments_at_the_boundaries(text: str, encoding: str, length: int, segments: int) -> None:
    assert sms_encoding(text) == encoding
    assert sms_length(text) == length
    assert sms_segments(text) == segments


def test_extension_characters_count_two_septets() -> None:
    for char in "^{}\\[~]|€\f":
        assert sms_encoding(char) == "GSM-7"
        assert sms_length(char) == 2
    assert sms_length("{x}") == 5
    assert sms_segments("€" * 80) == 1  # 160 septets
    assert sms_segments("€" * 81) == 2  # 162 septets: 76 per split segment


def test_an_extension_character_is_never_split_across_segments() -> None:
    text = "a" * 152 + "[" + "a" * 152  # 306 septets, but the escape pair cannot straddle the boundary
    assert sms_length(text) == 306
    assert sms_segments(text) == 3
    assert sms_segments("a" * 151 + "[" + "a" * 153) == 2  # the pair ends the first segment exactly


def test_an_emoji_counts_two_units_and_is_never_split() -> None:
    assert sms_encoding("Thanks 😀") == "UCS-2"
    assert sms_length("😀") == 2
    assert sms_segments("😀" * 35) == 1  # 70 units
    assert sms_segments("😀" * 36) == 2  # 72 units: 33 emoji per split segment
    text = "가" * 66 + "😀" + "가" * 66  # 134 units, but the surrogate pair cannot straddle the boundary
    assert sms_length(text) == 134
    assert sms_segments(text) == 3


def test_which_texts_are_gsm_7() -> None:
    assert sms_encoding("Hello, world! Ticket 2026-000123: sent @ 14:00 (5 = very good).") == "GSM-7"
    assert sms_encoding("Ça coûte 5 £, Δ, ¿, ß") == "UCS-2"  # û is not in GSM 03.38
    assert sms_encoding("Ça fait 5 £, Δ, ¿, ß, é") == "GSM-7"
    assert sms_encoding("접수번호 2026-000123") == "UCS-2"  # any Korean text
    assert sms_encoding("It's") == "GSM-7"
    assert sms_encoding("It’s") == "UCS-2"  # a curly apostrophe
    assert sms_encoding("Cảm ơn") == "UCS-2"  # Vietnamese diacritics
    assert sms_encoding("Баярлалаа") == "UCS-2"  # Mongolian Cyrillic
    assert sms_encoding("\x1b") == "UCS-2"  # the bare escape is not a character a text can carry


# --- The shipped notices ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def notices() -> Notices:
    return Notices.load(NOTICES_FILE, ZoneInfo("Asia/Seoul"))


@pytest.fixture(scope="module")
def templates() -> dict[str, dict[str, str]]:
    data = yaml.safe_load(NOTICES_FILE.read_text(encoding="utf-8"))
    data.pop("status_names")
    return data  # type: ignore[no-any-return]


def test_the_shipped_file_loads_and_covers_six_languages(notices: Notices) -> None:
    assert Notices.load(Path("router/notices.yaml"), ZoneInfo("Asia/Seoul")).languages == set(LANGUAGES)
    assert notices.languages == set(LANGUAGES)
    for language in LANGUAGES:
        for status in STATUSES:
            assert notices.status_name(status, language) != status or language == "en"


def test_the_test_values_are_realistic() -> None:
    for language in ("zh", "ja", "vi", "mn"):
        assert 8 <= len(DEPARTMENTS[language]) <= 15
    assert all(len(text) == 40 for text in STAFF_TEXTS.values())


@pytest.mark.parametrize("name", NOTICES)
def test_each_notice_uses_only_its_placeholders(name: str, templates: dict[str, dict[str, str]]) -> None:
    for language in LANGUAGES:
        fields = {field for _, field, _, _ in string.Formatter().parse(templates[name][language]) if field}
        assert fields <= ALLOWED[name], (name, language, fields)


def renders(notices: Notices, name: str, language: str) -> list[tuple[str, str]]:
    """Every text a notice can become with realistic values: (staff text used, rendered text)."""
    due = notices.due(datetime(2026, 11, 25, 5, 0, tzinfo=UTC), language)
    statuses = [notices.status_name(status, language) for status in STATUSES] if name == "status" else [""]
    texts = ["", STAFF_TEXTS[language]] if name in WITH_TEXT else [""]
    return [
        (
            text,
            notices.render(
                name,
                language,
                reference=REFERENCE,
                department=DEPARTMENTS[language],
                due=due,
                text=text,
                status=status,
                link=LINK,
            ),
        )
        for status in statuses
        for text in texts
    ]


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("name", NOTICES)
def test_every_notice_fits_in_its_sms_segments(notices: Notices, name: str, language: str) -> None:
    for text, rendered in renders(notices, name, language):
        assert sms_segments(rendered) <= 2, (rendered, sms_length(rendered))
        if sms_encoding(rendered) == "GSM-7" and not (name in WITH_TEXT and text):
            assert sms_segments(rendered) == 1, (rendered, sms_length(rendered))
        if language == "en":
            assert sms_encoding(rendered) == "GSM-7", rendered


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("name", NOTICES)
def test_every_notice_renders_completely(
    notices: Notices, templates: dict[str, dict[str, str]], name: str, language: str
) -> None:
    for text, rendered in renders(notices, name, language):
        assert "{" not in rendered and "}" not in rendered, rendered
        if "{reference}" in templates[name][language]:
            assert REFERENCE in rendered
        if "{department}" in templates[name][language]:
            assert DEPARTMENTS[language] in rendered
        if "{due}" in templates[name][language]:
            assert "14:00" in rendered  # 05:00 UTC is 14:00 in Seoul
        if "{link}" in templates[name][language]:
            assert rendered.endswith(LINK)
        assert text in rendered


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("name", ["status", "status_done"])
def test_without_a_public_page_the_link_line_is_left_out(notices: Notices, name: str, language: str) -> None:
    values = {"reference": REFERENCE, "status": "x", "department": DEPARTMENTS[language], "due": "d"}
    with_link = notices.render(name, language, **values, link=LINK)
    without = notices.render(name, language, **values)
    assert with_link.startswith(without + "\n") and with_link.count("\n") == 1
    assert "\n" not in without and not without.endswith(":")


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_rating_request_and_the_way_to_a_person(notices: Notices, language: str) -> None:
    resolved = notices.render("resolved", language, reference=REFERENCE, text=STAFF_TEXTS[language])
    rating = re.search(r"1\s*[-~〜]\s*5", resolved)
    assert rating, resolved
    assert resolved.index(STAFF_TEXTS[language]) < rating.start()  # asked after the staff member's words
    assert "0" in notices.render("answered_footer", language)


@pytest.mark.parametrize(
    ("name", "language", "expected"),
    [
        (
            "forwarded",
            "ko",
            "접수번호 2026-000123: 교통도로과에 전달했습니다. 처리 예정: 11월 24일 (화) 10:00.",
        ),
        ("joined", "ko", "접수번호 2026-000123에 추가했습니다. 담당 부서에 전달됩니다."),
        ("staff_reply", "ko", "[2026-000123] 교통도로과: 안내"),
        (
            "forwarded",
            "en",
            "Ticket 2026-000123: sent to Transport and Roads. Expected by Thu, Nov 26 10:00.",
        ),
        ("joined", "en", "Added to your ticket 2026-000123; the department will see it."),
        ("staff_reply", "en", "[2026-000123] Transport and Roads: Hi"),
    ],
)
def test_the_korean_and_english_texts_other_tests_rely_on(
    notices: Notices, name: str, language: str, expected: str
) -> None:
    values = {
        "ko": {"department": "교통도로과", "due": "11월 24일 (화) 10:00", "text": "안내"},
        "en": {"department": "Transport and Roads", "due": "Thu, Nov 26 10:00", "text": "Hi"},
    }[language]
    assert notices.render(name, language, reference=REFERENCE, **values) == expected
