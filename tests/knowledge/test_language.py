from __future__ import annotations

import pytest

from knowledge import detect_language


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("소파는 어떻게 버리나요?", "ko"),
        ("ㅠㅠ", "ko"),
        ("粗大ゴミはどうやって捨てますか？", "ja"),
        ("ソファ", "ja"),
        ("沙发怎么扔？", "zh"),
        ("護照在哪裡辦理", "zh"),
        ("Буйдан хэрхэн хаях вэ?", "mn"),
        ("Làm thế nào để vứt ghế sofa?", "vi"),
        ("xin chào", "vi"),
        ("Đăng ký", "vi"),
        ("How do I throw away a sofa?", "en"),
        ("Is there a café near city hall?", "en"),  # one accented letter does not make it Vietnamese
        ("My name is Nguyễn and my bin was not emptied", "en"),
    ],
)
def test_each_script(text: str, expected: str) -> None:
    assert detect_language(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("WiFi 비밀번호가 뭐예요?", "ko"),
        ("sofa 버리는 방법", "ko"),
        ("ok 네", "ko"),  # a tie between Hangul and Latin goes to Korean
        ("My name is 김민수, how do I get a parking permit?", "en"),
        ("東京の区役所", "ja"),  # kanji next to kana is Japanese
        ("大韓民國 헌법", "ko"),  # hanja next to Hangul is Korean
    ],
)
def test_mixed_scripts(text: str, expected: str) -> None:
    assert detect_language(text) == expected


@pytest.mark.parametrize("text", ["", "   ", "010-1234-5678", "12345", "👍🙏", "?!..."])
def test_nothing_letter_like_gives_the_default(text: str) -> None:
    assert detect_language(text) == "ko"
    assert detect_language(text, default="en") == "en"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Bonjour, où se trouve la mairie s'il vous plaît", "fr"),  # answered in English, but known
        ("Где находится мэрия, подскажите пожалуйста", "ru"),
        ("Сайн байна уу, иргэний үнэмлэх хаана авах вэ", "mn"),
        ("Where is the nearest community service centre", "en"),
    ],
)
def test_the_identifier_tells_languages_that_share_a_script(text: str, expected: str) -> None:
    assert detect_language(text) == expected


@pytest.mark.parametrize("text", ["ok", "hello", "thanks!", "Main St 12"])
def test_a_few_latin_letters_stay_english(text: str) -> None:
    # too short for a statistical guess: the script's default stands
    assert detect_language(text) == "en"
