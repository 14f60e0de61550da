from __future__ import annotations

import pytest

from knowledge import FaqEntry, KnowledgeBase, Matcher, SourceRef
from knowledge.calibration import FEATURES, Confidence
from knowledge.text import char_ngrams, normalize, shared_analyzer

DEFAULT = Confidence.default()


def faq(
    entry_id: str,
    questions: dict[str, list[str]],
    keywords: list[str] | None = None,
    answer: str = "...",
    synonyms: list[list[str]] | None = None,
) -> FaqEntry:
    return FaqEntry(
        id=entry_id,
        questions=questions,
        answer={"en": answer},
        keywords=keywords or [],
        synonyms=synonyms or [],
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
def test_a_question_variant_itself_is_answered(matcher: Matcher, text: str) -> None:
    top, *others = matcher.match(text)
    assert (top.entry.id, top.question) == ("bulky-waste", text)
    assert top.score >= DEFAULT.answer_threshold
    assert all(other.score < DEFAULT.review_threshold for other in others)


@pytest.mark.parametrize(
    ("text", "language", "question"),
    [
        ("소파 버리려면 어떻게 해야 하나요", "ko", "소파 버리는 방법"),
        ("소파버리는방법 알려주세요", "ko", "소파 버리는 방법"),  # spacing does not matter
        ("쇼파 버리는 방볍", "ko", "소파 버리는 방법"),  # nor do two typos
        ("how can I get rid of an old sofa", "en", "How do I throw away a sofa?"),
    ],
)
def test_a_paraphrase_ranks_its_entry_clearly_first(
    matcher: Matcher, text: str, language: str, question: str
) -> None:
    first, *others = matcher.match(text, language)
    assert (first.entry.id, first.question) == ("bulky-waste", question)
    # Clearly: at least twice as likely as any other entry, and the probabilities add up to at most 1.
    assert all(first.score >= 2 * other.score for other in others)
    assert first.score + sum(other.score for other in others) <= 1.0


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
        "고양이가 아파요 동물병원 어디예요",
    ],
)
def test_unrelated_text_is_not_even_sent_to_review(matcher: Matcher, text: str) -> None:
    assert all(score < DEFAULT.review_threshold for _, score in ranking(matcher, text))


def test_noise_does_not_change_the_ranking(matcher: Matcher) -> None:
    plain = ranking(matcher, "소파 버리려면 어떻게 해야 하나요")
    assert ranking(matcher, "소파 버리려면 어떻게 해야 하나요ㅋㅋㅋㅋ!!!!") == plain
    assert ranking(matcher, "ㅠㅠㅠ 소파 버리려면 어떻게 해야 하나요??? 😭😭 ^^") == plain
    assert ranking(matcher, "How do I throw away a sofaaaaa?!!!!") == ranking(
        matcher, "How do I throw away a sofa?"
    )


def test_normalize() -> None:
    assert normalize("Soooo   HAPPY!!! ㅋㅋㅋ 감사합니다ㅠㅠ") == "so happy 감사합니다"
    assert normalize("ｆｕｌｌ－ｗｉｄｔｈ ＡＢＣ") == "full width abc"  # NFKC
    assert normalize("010-1111-2222, 100000원") == "010 1111 2222 100000원"  # digits keep their runs
    assert normalize("ㅋㅠ") == ""  # removed before NFKC could compose them into 큐
    assert normalize("") == ""


def test_words_are_morphemes_stems_and_character_pairs() -> None:
    analyzer = shared_analyzer()
    assert analyzer.words(normalize("소파버리는방법좀 알려주세요")) == ("소파", "버리", "방법")
    assert analyzer.words(normalize("Throwing away sofas")) == ("throw", "away", "sofa")
    assert analyzer.words(normalize("护照")) == ("护", "照", "护照")
    # Korean n-grams ignore spacing; Latin ones stay inside words
    assert "파버" in char_ngrams(normalize("소파 버리기")) and " so" in char_ngrams("sofa bed")


def test_a_keyword_alone_finds_its_entry_but_does_not_answer(matcher: Matcher) -> None:
    # "bulky" is a keyword but in no question variant
    top = matcher.match("bulky")[0]
    assert top.entry.id == "bulky-waste" and top.score < DEFAULT.answer_threshold


def features_of(matcher: Matcher, text: str, entry_id: str) -> dict[str, float]:
    for candidate in matcher.candidates(text):
        if matcher.entries[candidate.entry_index].id == entry_id:
            return dict(zip(FEATURES, candidate.features, strict=True))
    raise AssertionError(f"{entry_id} is not a candidate for {text!r}")


def test_keywords_match_whole_words_in_latin_and_anywhere_in_hangul() -> None:
    bus = faq("night-bus", {"ko": ["심야 버스 시간표"]}, keywords=["bus", "심야버스"])
    other = faq("passport", {"en": ["passport office"]})
    matcher = Matcher(KnowledgeBase(entries=(bus, other)))
    assert features_of(matcher, "buses at night?", "night-bus")["keyword"] == 1.0  # plural finds singular
    assert features_of(matcher, "bus", "night-bus")["keyword"] == 1.0
    assert all(matcher.entries[c.entry_index].id != "night-bus" for c in matcher.candidates("business"))
    for text in ("심야 버스", "심야버스"):  # "심야버스" is found whatever the spacing
        assert features_of(matcher, text, "night-bus")["keyword"] == 1.0


def test_a_keyword_lifts_the_confidence(matcher: Matcher) -> None:
    plain = Matcher(
        KnowledgeBase(entries=tuple(entry.model_copy(update={"keywords": []}) for entry in ENTRIES))
    )
    without = dict(ranking(plain, "recycling schedule"))["recycling-days"]
    with_keyword = dict(ranking(matcher, "recycling schedule"))["recycling-days"]
    assert with_keyword > without


def test_synonyms_let_a_question_match_the_other_words_of_a_group() -> None:
    plain = faq("bulky-waste", {"ko": ["소파 버리는 방법"], "en": ["dispose of a sofa"]})
    other = faq("food-waste", {"ko": ["음식물 쓰레기 봉투"]})
    with_synonyms = plain.model_copy(update={"synonyms": [["소파", "카우치", "장의자"], ["sofa", "couch"]]})
    before = Matcher(KnowledgeBase(entries=(plain, other)))
    after = Matcher(KnowledgeBase(entries=(with_synonyms, other)))
    for text in ("카우치 버리는 방법", "dispose of a couch"):
        assert (
            features_of(after, text, "bulky-waste")["bm25"] > features_of(before, text, "bulky-waste")["bm25"]
        )
        assert after.match(text)[0].score > before.match(text)[0].score


def test_answers_count_a_little() -> None:
    passport = faq("passport", {"en": ["passport office"]}, answer="Bring your photo and ID card to room 3")
    other = faq("parking", {"en": ["car park"]}, answer="Apply online")
    matcher = Matcher(KnowledgeBase(entries=(passport, other)))
    assert features_of(matcher, "which photo do I bring", "passport")["answer"] > 0
    # Only the answer has the text's words: the entry is found, but far from sure.
    top = matcher.match("which photo do I bring")[0]
    assert top.entry.id == "passport" and top.score < DEFAULT.review_threshold


def test_language_breaks_ties_only() -> None:
    same = [
        faq("wifi-en", {"en": ["WiFi password"]}),
        faq("wifi-ko", {"ko": ["WiFi password"]}),
    ]
    matcher = Matcher(KnowledgeBase(entries=tuple(same)))
    assert [entry for entry, _ in ranking(matcher, "wifi password", "ko")] == ["wifi-ko", "wifi-en"]
    assert [entry for entry, _ in ranking(matcher, "wifi password", "en")] == ["wifi-en", "wifi-ko"]
    assert [entry for entry, _ in ranking(matcher, "wifi password")] == ["wifi-en", "wifi-ko"]  # file order
    scores = {score for _, score in ranking(matcher, "wifi password")}
    assert len(scores) == 1


def test_limit_order_and_determinism(matcher: Matcher) -> None:
    text = "어디서 신청하나요 how do I apply"
    results = [(m.entry.id, m.score) for m in matcher.match(text, limit=10)]
    assert len(results) > 3
    assert [score for _, score in results] == sorted((score for _, score in results), reverse=True)
    assert all(0 < score < 1 for _, score in results)
    assert [(m.entry.id, m.score) for m in matcher.match(text, limit=2)] == results[:2]
    rebuilt = Matcher(KnowledgeBase(entries=ENTRIES))
    assert [(m.entry.id, m.score) for m in rebuilt.match(text, limit=10)] == results
    assert matcher.match(text, limit=0) == []


def test_a_base_with_several_variants_per_entry_trains_a_classifier() -> None:
    rich = (
        faq("bulky-waste", {"en": ["throw away a sofa", "dispose of furniture", "old wardrobe pickup"]}),
        faq("passport", {"en": ["apply for a passport", "passport renewal", "lost my passport"]}),
        faq("parking", {"en": ["parking permit", "where can I park", "resident parking sticker"]}),
    )
    matcher = Matcher(KnowledgeBase(entries=rich))
    found = features_of(matcher, "I want to renew my passport", "passport")
    assert found["classifier"] > features_of(matcher, "I want to renew my passport", "parking")["classifier"]
    assert found["classifier_margin"] > 0
    # one question each is too thin to learn from: no classifier, its signals are 0
    thin = Matcher(KnowledgeBase(entries=ENTRIES))
    assert all(c.features[FEATURES.index("classifier")] == 0.0 for c in thin.candidates("passport"))


def test_the_classifier_has_no_columns_for_the_answers_words() -> None:
    # Its weights are entries x columns in memory: n-grams that only answers have would be zeros.
    questions = {"en": ["throw away a sofa", "dispose of furniture", "old wardrobe pickup"]}
    other = faq("b", {"en": ["x y", "y z", "z x"]})
    short = Matcher(KnowledgeBase(entries=(faq("a", questions), other)))
    long_answer = " ".join(f"word{i}" for i in range(200))
    wordy = Matcher(KnowledgeBase(entries=(faq("a", questions, answer=long_answer), other)))
    assert short._classifier is not None and wordy._classifier is not None
    assert wordy._classifier._weights.shape == short._classifier._weights.shape


@pytest.mark.parametrize("text", ["", "   ", "!!!", "ㅋㅋㅋ", "🙏"])
def test_nothing_to_match(matcher: Matcher, text: str) -> None:
    assert matcher.match(text) == []


def test_an_empty_knowledge_base_matches_nothing() -> None:
    assert Matcher(KnowledgeBase()).match("소파 버리는 방법") == []


def test_an_entry_whose_questions_have_no_letters_is_still_indexed() -> None:
    odd = faq("odd", {"en": ["???"]})
    passport = faq("passport", {"en": ["passport office"]})
    matcher = Matcher(KnowledgeBase(entries=(odd, passport)))
    assert matcher.match("passport office")[0].entry.id == "passport"


@pytest.mark.parametrize("zeros", [0.0, 0.5, 0.99, 1.0])
def test_largest_is_the_top_of_a_full_sort(zeros: float) -> None:
    # The candidates' shortcut (only values near the largest are partitioned) must pick what sorting
    # everything would: the `count` largest positive values.
    import numpy as np

    from knowledge.matcher import _largest

    rng = np.random.default_rng(7)
    for size, count in ((2645, 8), (30, 10), (5, 8)):
        values = rng.random(size)
        values[rng.random(size) < zeros] = 0.0
        expected = sorted(i for i in np.argsort(-values)[:count] if values[i] > 0)
        assert sorted(_largest(values, count).tolist()) == expected
