from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from knowledge import FaqEntry, KnowledgeBase, KnowledgeHolder, Matcher, SourceRef
from knowledge.calibration import CALIBRATION_FILE, FEATURES, Confidence, knowledge_fingerprint, save
from knowledge.evaluate import LabelledQuery, calibrate_queries, evaluate

TOPICS = {
    "passport": ["apply for a passport", "passport renewal", "lost my passport", "passport photo rules"],
    "parking": ["residential parking permit", "where can I park overnight", "parking sticker for residents"],
    "bulky-waste": ["throw away a sofa", "dispose of old furniture", "mattress pickup sticker"],
    "library": ["library opening hours", "renew a library book", "get a library card"],
    "bus-card": ["senior bus pass", "top up my transit card", "discount card for buses"],
}


def entries() -> tuple[FaqEntry, ...]:
    return tuple(
        FaqEntry(
            id=entry_id,
            questions={"en": questions},
            answer={"en": f"About {entry_id}."},
            department="civil",
            source=SourceRef("civil.yaml", 1),
        )
        for entry_id, questions in TOPICS.items()
    )


IN_SCOPE = [
    ("how do i renew my passport", "passport"),
    ("passport lost what now", "passport"),
    ("new passport application", "passport"),
    ("rules for the passport picture", "passport"),
    ("can i park my car overnight here", "parking"),
    ("permit for parking near my home", "parking"),
    ("resident parking sticker", "parking"),
    ("how to get rid of a sofa", "bulky-waste"),
    ("old furniture disposal", "bulky-waste"),
    ("sticker for a mattress", "bulky-waste"),
    ("when does the library open", "library"),
    ("library card please", "library"),
    ("renew library books online", "library"),
    ("bus pass for seniors", "bus-card"),
    ("top up transit card", "bus-card"),
    ("discount bus card", "bus-card"),
]
OUT_OF_SCOPE = [
    "my neighbour is too loud",
    "the streetlight is broken",
    "is the swimming pool open",
    "hello",
    "thank you very much",
    "a pothole on main street",
    "who is the mayor",
    "report a dead animal",
]


def labelled(repeat: int = 3) -> list[LabelledQuery]:
    queries = [LabelledQuery(text, expect, n) for n, (text, expect) in enumerate(IN_SCOPE * repeat)]
    queries += [LabelledQuery(text, None, 1000 + n) for n, text in enumerate(OUT_OF_SCOPE * repeat)]
    random.Random(1).shuffle(queries)
    return queries


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher(KnowledgeBase(entries=entries()))


def test_calibration_reaches_the_target_precision_on_its_own_file(matcher: Matcher) -> None:
    confidence = calibrate_queries(matcher, labelled(), target_precision=0.95, queries_file="q.jsonl")
    assert 0 <= confidence.review_threshold <= confidence.answer_threshold <= 1
    report = confidence.report
    assert report is not None
    assert (report.queries, report.in_scope, report.queries_file) == (72, 48, "q.jsonl")
    assert report.precision >= 0.95 and report.coverage > 0.5
    matcher.confidence = confidence
    result = evaluate(matcher, labelled(1), default_language="en")
    assert result.precision >= 0.95 and result.coverage > 0.5
    assert result.out_of_scope_answered <= 0.15


def test_a_higher_target_never_answers_more(matcher: Matcher) -> None:
    loose = calibrate_queries(matcher, labelled(), target_precision=0.6)
    strict = calibrate_queries(matcher, labelled(), target_precision=0.999)
    assert strict.answer_threshold >= loose.answer_threshold
    assert loose.report and strict.report and strict.report.coverage <= loose.report.coverage


def test_the_real_out_of_scope_rate_weights_the_null_texts(matcher: Matcher) -> None:
    as_in_file = calibrate_queries(matcher, labelled())
    heavy = calibrate_queries(matcher, labelled(), out_of_scope_rate=0.9)
    assert as_in_file.report and heavy.report
    assert as_in_file.report.out_of_scope_rate == pytest.approx(24 / 72, abs=1e-3)
    assert heavy.report.out_of_scope_rate == 0.9
    # With most traffic out of scope, each wrong answer to it weighs more: the threshold cannot drop.
    assert heavy.answer_threshold >= as_in_file.answer_threshold


def test_a_file_without_in_scope_texts_or_without_mistakes_is_refused(matcher: Matcher) -> None:
    with pytest.raises(ValueError, match="no in-scope texts"):
        calibrate_queries(matcher, [LabelledQuery("hello", None, 1)])
    with pytest.raises(ValueError, match="out-of-scope rate needs out-of-scope texts"):
        calibrate_queries(matcher, [LabelledQuery("passport renewal", "passport", 1)], out_of_scope_rate=0.2)


def test_a_calibration_survives_its_file(matcher: Matcher, tmp_path: Path) -> None:
    confidence = calibrate_queries(matcher, labelled(), queries_file="q.jsonl")
    path = save(confidence, tmp_path)
    assert path.name == CALIBRATION_FILE
    again = Confidence.from_json(path.read_text(encoding="utf-8"))
    assert again.answer_threshold == confidence.answer_threshold
    assert again.report == confidence.report
    assert again.weights == pytest.approx(confidence.weights, abs=1e-6)


def _file(**changes: object) -> str:
    data = json.loads(Confidence.default().to_json())
    data.update(changes)
    return json.dumps(data)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not JSON"),
        ('{"version": 99}', "not a version 2 calibration file"),
        ('{"version": 2, "features": ["bm25"]}', "other matcher signals"),
        (_file(top_features=["score"]), "other matcher signals"),
        (_file(weights=[1.0]), "wrong number of weights"),
        (_file(top_weights=[1.0]), "wrong number of weights"),
        (_file(answer_threshold=0.2, review_threshold=0.5), "out of order"),
        (_file(intercept="high"), "malformed calibration"),
    ],
)
def test_a_broken_calibration_file_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Confidence.from_json(text)


GOOD = """
department: civil
entries:
  - id: passport
    questions: {en: ["Where can I apply for a passport?", "passport renewal"]}
    answer: {en: "At the district office."}
"""


def test_the_holder_uses_the_folders_calibration_and_keeps_the_last_good_one(tmp_path: Path) -> None:
    (tmp_path / "civil.yaml").write_text(GOOD, encoding="utf-8")
    default = Confidence.default(0.7, 0.3)
    holder = KnowledgeHolder(tmp_path, default_confidence=default)
    holder.load()
    assert holder.current[1].confidence == default  # no calibration.json yet: config's thresholds

    calibrated = Confidence(tuple([0.5] * len(FEATURES)), -1.0, (1.0, 0.5), 0.0, 0.9, 0.4)
    save(calibrated, tmp_path)
    assert holder.fingerprint() != ()  # the calibration file is part of what is watched
    assert holder.reload() is None
    assert holder.current[1].confidence == calibrated

    (tmp_path / CALIBRATION_FILE).write_text("{ broken", encoding="utf-8")
    error = holder.reload()
    assert error is not None and error.problems[0].file == CALIBRATION_FILE
    assert "not JSON" in error.problems[0].message
    assert holder.current[1].confidence == calibrated  # the last good one stays


def test_the_fingerprint_changes_with_the_questions() -> None:
    base = KnowledgeBase(entries=entries())
    changed = entries()[0].model_copy(update={"questions": {"en": ["passport office"]}})
    assert knowledge_fingerprint(base) == knowledge_fingerprint(KnowledgeBase(entries=entries()))
    assert knowledge_fingerprint(base) != knowledge_fingerprint(
        KnowledgeBase(entries=(changed, *entries()[1:]))
    )


def test_a_calibration_of_an_older_matcher_is_set_aside_not_fatal(tmp_path: Path) -> None:
    """After an upgrade the bot starts on the default thresholds (and says so), where a broken file,
    an administrator's edit, is refused."""
    (tmp_path / "civil.yaml").write_text(GOOD, encoding="utf-8")
    (tmp_path / CALIBRATION_FILE).write_text(json.dumps({"version": 1, "weights": []}), encoding="utf-8")
    default = Confidence.default(0.7, 0.3)
    holder = KnowledgeHolder(tmp_path, default_confidence=default)
    holder.load()
    assert holder.current[1].confidence == default
