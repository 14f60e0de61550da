from __future__ import annotations

import pytest

from knowledge import FaqEntry, KnowledgeBase, Matcher, SourceRef
from knowledge.matcher import KEYWORD_BONUS, normalize

ANSWER_THRESHOLD = 0.40  # KnowledgeConfig's default


def faq(entry_id: str, questions: dict[str, list[str]], keywords: list[str] | None = None) -> FaqEntry:
    return FaqEntry(
        id=entry_id,
        questions=questions,
        answer={"en": "..."},
        keywords=keywords or [],
        department="civil",
        source=SourceRef("test.yaml", 1),
    )


ENTRIES = (
    faq(
        "bulky-waste",
        {
            "ko": ["대형 폐기물은 어떻게 버리나요?", "소파 버리는 방법"],
            "en": ["How do I throw away a sofa?"],
        },
        keywords=["대형폐기물", "가구", "bulky"],
    ),
    faq(
        "recycling-days",
        {"ko": ["재활용 쓰레기는 언제 수거하나요?", "분리수거 요일"], "en": ["When is recycling collected?"]},
        keywords=["재활용", "recycling"],
    ),
    faq(
        "food-waste",
        {"ko": ["음식물 쓰레기 봉투는 어디서 사나요?"], "en": ["Where can I buy food waste bags?"]},
    ),
    faq(
        "resident-registration",
        {
            "ko": ["주민등록등본 발급 방법", "등본 어디서 떼요?"],
            "en": ["How do I get a resident registration certificate?"],
        },
    ),
    faq(
        "parking-permit",
        {
            "ko": ["거주자 우선주차 신청", "주차 허가 신청은 어떻게 하나요"],
            "en": ["How do I apply for a residential parking permit?"],
        },
        keywords=["주차", "parking"],
    ),
    faq("passport", {"ko": ["여권 발급은 어디서 하나요?"], "en": ["Where can I apply for a passport?"]}),
)


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher(KnowledgeBase(entries=ENTRIES, files=("test.yaml",)))


def ranking(matcher: Matcher, text: str, language: str | None = None) -> list[tuple[str, float]]:
    return [(match.entry.id, match.score) for match in matcher.match(text, language)]


@pytest.mark.parametrize(
    "text", ["소파 버리는 방법", "How do I throw away a sofa?", "대형 폐기물은 어떻게 버리나요?"]
)
def test_a_question_variant_itself_scores_one(matcher: Matcher, text: str) -> None:
    top = matcher.match(text)[0]
    assert (top.entry.id, top.score, top.question) == ("bulky-waste", 1.0, text)


@pytest.mark.parametrize(
    ("text", "language", "question"),
    [
        ("소파 버리려면 어떻게 해야 하나요", "ko", "소파 버리는 방법"),
        ("소파버리는방법 알려주세요", "ko", "소파 버리는 방법"),  # spacing does not matter
        ("how can I get rid of an old sofa", "en", "How do I throw away a sofa?"),
    ],
)
def test_a_paraphrase_ranks_its_entry_clearly_first(
    matcher: Matcher, text: str, language: str, question: str
) -> None:
    first, second = matcher.match(text, language)[:2]
    assert (first.entry.id, first.question) == ("bulky-waste", question)
    assert first.score >= second.score + 0.05
    assert first.score >= 1.3 * second.score


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("등본 떼려면 어디로 가야 돼요", "resident-registration"),
        ("I need to apply for a passport", "passport"),
        ("재활용 언제 가져가요?", "recycling-days"),
        ("where to buy food waste bags", "food-waste"),
    ],
)
def test_other_paraphrases(matcher: Matcher, text: str, expected: str) -> None:
    assert matcher.match(text)[0].entry.id == expected


@pytest.mark.parametrize(
    "text",
    [
        "the streetlight in front of my house is broken",
        "우리 집 앞 가로등이 고장났어요",
        "my neighbour's dog barks all night",
        "I bought a new sofa yesterday and I love it",
    ],
)
def test_unrelated_text_stays_well_under_the_threshold(matcher: Matcher, text: str) -> None:
    assert all(score < ANSWER_THRESHOLD * 0.6 for _, score in ranking(matcher, text))


def test_noise_does_not_change_the_top_match(matcher: Matcher) -> None:
    plain = ranking(matcher, "소파 버리려면 어떻게 해야 하나요")
    assert ranking(matcher, "소파 버리려면 어떻게 해야 하나요ㅋㅋㅋㅋ!!!!") == plain
    assert ranking(matcher, "ㅠㅠㅠ 소파 버리려면 어떻게 해야 하나요??? 😭😭") == plain
    assert ranking(matcher, "How do I throw away a sofaaaaa?!!!!")[0] == ("bulky-waste", 1.0)


def test_normalize() -> None:
    assert normalize("Soooo   HAPPY!!! ㅋㅋㅋ 감사합니다ㅠㅠ") == "so happy 감사합니다"
    assert normalize("ｆｕｌｌ－ｗｉｄｔｈ ＡＢＣ") == "full width abc"  # NFKC
    assert normalize("010-1111-2222, 100000원") == "010 1111 2222 100000원"  # digits keep their runs
    assert normalize("ㅋㅠ") == ""  # removed before NFKC could compose them into 큐
    assert normalize("") == ""


def test_a_keyword_alone_gives_a_small_bonus(matcher: Matcher) -> None:
    # "bulky" is a keyword but in no question variant: only the bonus scores
    assert ranking(matcher, "bulky")[0] == ("bulky-waste", KEYWORD_BONUS)


def test_keywords_match_whole_words_in_latin_and_anywhere_in_hangul() -> None:
    bus = faq("night-bus", {"ko": ["심야 버스 시간표"]}, keywords=["bus", "심야버스"])
    matcher = Matcher(KnowledgeBase(entries=(bus,)))
    assert ranking(matcher, "business") == []
    assert ranking(matcher, "buses at night?") == [("night-bus", KEYWORD_BONUS)]
    assert ranking(matcher, "bus") == [("night-bus", KEYWORD_BONUS)]
    plain = Matcher(KnowledgeBase(entries=(bus.model_copy(update={"keywords": []}),)))
    for text in ("심야 버스", "심야버스"):  # the keyword "심야버스" is found whatever the spacing
        cosine = plain.match(text)[0].score
        assert matcher.match(text)[0].score == pytest.approx(cosine + KEYWORD_BONUS * (1 - cosine))


def test_the_keyword_bonus_lifts_but_stays_within_bounds(matcher: Matcher) -> None:
    with_keyword = dict(ranking(matcher, "recycling schedule"))["recycling-days"]
    plain = Matcher(
        KnowledgeBase(entries=tuple(entry.model_copy(update={"keywords": []}) for entry in ENTRIES))
    )
    without = dict(ranking(plain, "recycling schedule"))["recycling-days"]
    assert without < with_keyword <= without + KEYWORD_BONUS
    assert ranking(matcher, "When is recycling collected?")[0] == ("recycling-days", 1.0)


def test_language_breaks_ties_only() -> None:
    same = [
        faq("wifi-en", {"en": ["WiFi password"]}),
        faq("wifi-ko", {"ko": ["WiFi password"]}),
    ]
    matcher = Matcher(KnowledgeBase(entries=tuple(same)))
    assert ranking(matcher, "wifi password", "ko") == [("wifi-ko", 1.0), ("wifi-en", 1.0)]
    assert ranking(matcher, "wifi password", "en") == [("wifi-en", 1.0), ("wifi-ko", 1.0)]
    assert ranking(matcher, "wifi password") == [("wifi-en", 1.0), ("wifi-ko", 1.0)]  # file order


def test_limit_order_and_determinism(matcher: Matcher) -> None:
    text = "어디서 신청하나요 how do I apply"
    results = [(m.entry.id, m.score) for m in matcher.match(text, limit=10)]
    assert len(results) > 3
    assert [score for _, score in results] == sorted((score for _, score in results), reverse=True)
    assert all(0 < score <= 1 for _, score in results)
    assert [(m.entry.id, m.score) for m in matcher.match(text, limit=2)] == results[:2]
    rebuilt = Matcher(KnowledgeBase(entries=ENTRIES))
    assert [(m.entry.id, m.score) for m in rebuilt.match(text, limit=10)] == results
    assert matcher.match(text, limit=0) == []


@pytest.mark.parametrize("text", ["", "   ", "!!!", "ㅋㅋㅋ", "🙏"])
def test_nothing_to_match(matcher: Matcher, text: str) -> None:
    assert matcher.match(text) == []


def test_an_empty_knowledge_base_matches_nothing() -> None:
    assert Matcher(KnowledgeBase()).match("소파 버리는 방법") == []
