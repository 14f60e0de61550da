from __future__ import annotations

import pytest
from pydantic import ValidationError

from knowledge import FaqEntry, KnowledgeBase, SourceRef

SOURCE = SourceRef("waste.yaml", 3)


def entry(answer: dict[str, str], **more: object) -> FaqEntry:
    return FaqEntry.model_validate(
        {
            "id": "bulky-waste",
            "questions": {"ko": ["소파 버리는 방법"]},
            "answer": answer,
            "source": SOURCE,
            **more,
        }
    )


def test_answer_in_the_asked_language() -> None:
    faq = entry({"ko": "구청에 신고", "en": "Call the office", "vi": "Gọi văn phòng"})
    assert faq.answer_in("vi") == ("vi", "Gọi văn phòng")
    assert faq.answer_in("ko") == ("ko", "구청에 신고")


def test_answer_in_falls_back_in_order() -> None:
    faq = entry({"ko": "구청에 신고", "en": "Call the office"})
    assert faq.answer_in("mn") == ("en", "Call the office")
    assert faq.answer_in("mn", fallbacks=("ko", "en")) == ("ko", "구청에 신고")
    assert entry({"ko": "구청에 신고"}).answer_in("ja") == ("ko", "구청에 신고")


def test_answer_in_a_regional_language_uses_its_base_language() -> None:
    faq = entry({"zh": "请联系区政府", "en": "Call the office"})
    assert faq.answer_in("zh-tw") == ("zh", "请联系区政府")


def test_answer_in_any_language_when_no_fallback_is_present() -> None:
    assert entry({"ja": "区役所へ", "vi": "Gọi"}).answer_in("zh") == ("ja", "区役所へ")
    assert entry({"ja": "区役所へ"}).answer_in("zh", fallbacks=()) == ("ja", "区役所へ")


def test_no_answer_only_for_a_handoff_entry() -> None:
    assert entry({}, handoff="always").answer_in("ko") is None
    with pytest.raises(ValidationError, match=r"is required .* unless handoff is 'always'"):
        entry({})


@pytest.mark.parametrize("code", ["ko", "en", "zh-tw", "fil"])
def test_language_codes_accepted(code: str) -> None:
    assert entry({code: "text"}).answer == {code: "text"}


@pytest.mark.parametrize("code", ["EN", "korean", "k", "zh_TW", ""])
def test_language_codes_refused(code: str) -> None:
    with pytest.raises(ValidationError, match="must be a lowercase language code"):
        entry({code: "text"})


def test_entries_are_frozen() -> None:
    faq = entry({"ko": "구청에 신고"})
    with pytest.raises(ValidationError):
        faq.id = "other"  # type: ignore[misc]


def test_knowledge_base_lookup() -> None:
    first = entry({"ko": "a"})
    second = FaqEntry(id="passport", questions={"en": ["Passport"]}, answer={"en": "b"}, source=SOURCE)
    base = KnowledgeBase(entries=(first, second), files=("waste.yaml",))
    assert (len(base), base.get("passport"), base.get("bulky-waste")) == (2, second, first)
    assert base.get("missing") is None
    assert len(KnowledgeBase()) == 0
