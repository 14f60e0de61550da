"""The department model: learns departments from examples, routes what it is sure of, says when it
is not, and reads spreadsheets of historic complaints with clear errors."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from knowledge.routing import (
    DepartmentModel,
    ExamplesFileError,
    NotEnoughExamples,
    choose_threshold,
    read_examples_csv,
    wilson_lower,
)
from tests.routing_examples import examples, mixed_in_time


@pytest.fixture(scope="module")
def model() -> DepartmentModel:
    pairs = examples()
    return DepartmentModel().fit([t for t, _ in pairs], [d for _, d in pairs])


@pytest.mark.parametrize(
    ("text", "department"),
    [
        # Wordings the examples do not have, in both languages.
        ("택시 운전기사가 불친절해요", "transport"),
        ("the subway fare went up again", "transport"),
        ("하천 오염이 심각합니다", "environment"),
        ("아동수당 보육료 신청은 어디서 하나요", "welfare"),
        ("my landlord wants more rent", "housing"),
    ],
)
def test_a_new_text_goes_to_its_department(model: DepartmentModel, text: str, department: str) -> None:
    ranked = model.predict(text)
    assert ranked[0][0] == department
    assert math.isclose(sum(p for _, p in ranked), 1.0)
    assert [p for _, p in ranked] == sorted((p for _, p in ranked), reverse=True)
    assert model.route(text) == ranked[0]  # sure enough to route without a person


@pytest.mark.parametrize(
    "text",
    ["공원 벤치가 부서졌어요", "the parking is full of weeds", "the park is dirty", "오늘 날씨가 좋네요"],
)
def test_a_text_two_departments_handle_or_none_is_not_routed(model: DepartmentModel, text: str) -> None:
    (first, p1), (second, p2) = model.predict(text, limit=2)
    assert p1 < model.threshold and model.route(text) is None
    if "날씨" not in text:  # parks and parking: environment and housing both take them
        assert {first, second} == {"environment", "housing"} and p1 - p2 < 0.3


def test_the_threshold_is_chosen_on_held_out_examples_for_the_target(model: DepartmentModel) -> None:
    estimate = model.estimate
    assert estimate is not None and estimate.examples == 96
    assert 0.5 < model.threshold < 1.0
    # The 16 complaints about parks and parking are right about half the time: they stay below it.
    assert estimate.precision >= 0.9 and 0.5 < estimate.coverage < 0.9
    assert estimate.top3 >= estimate.top1 > 0.8
    assert set(model.departments) == {"transport", "environment", "welfare", "housing"}


def test_departments_with_too_few_examples_are_never_predicted() -> None:
    pairs = [*examples(), ("공원 벤치가 부서졌어요", "parks"), ("the park bench is broken", "parks")]
    model = DepartmentModel(min_examples=10).fit([t for t, _ in pairs], [d for _, d in pairs])
    assert "parks" not in model.departments and model.skipped == {"parks": 2}
    assert all(d != "parks" for d, _ in model.predict("the park bench is broken"))


def test_one_department_is_not_enough_to_learn_from() -> None:
    pairs = [(t, d) for t, d in examples() if d == "transport"]
    with pytest.raises(NotEnoughExamples, match="at least two departments"):
        DepartmentModel().fit([t for t, _ in pairs], [d for _, d in pairs])


def test_a_target_no_confidence_reaches_routes_nothing() -> None:
    # Every department's complaints (of both languages) split between "a" and "b": the text says nothing.
    pairs = examples()
    texts = [t for t, _ in pairs]
    labels = ["a" if (i // 2) % 2 else "b" for i in range(len(pairs))]  # languages alternate by one
    model = DepartmentModel(target_precision=0.95).fit(texts, labels)
    assert model.threshold == math.inf and model.route(texts[0]) is None
    assert model.estimate is not None and model.estimate.routed == 0


def test_learning_twice_gives_the_same_model() -> None:
    pairs = examples()
    first = DepartmentModel().fit([t for t, _ in pairs], [d for _, d in pairs])
    second = DepartmentModel().fit([t for t, _ in pairs], [d for _, d in pairs])
    assert first.threshold == second.threshold
    assert first.predict("버스가 안 와요") == second.predict("버스가 안 와요")


def test_with_time_a_renamed_department_is_predicted_for_its_own_years() -> None:
    # Transport complaints went to "roads" in 2016 and, after a reorganisation, to "mobility" in 2018.
    pairs = examples()
    transport = [text for text, department in pairs if department == "transport"]
    half = len(transport) // 2
    texts = [text for text, _ in pairs]
    labels = [department for _, department in pairs]
    times = [datetime(2016, 1, 1, tzinfo=UTC) + timedelta(days=8 * i) for i in range(len(pairs))]
    for i, text in enumerate(transport):
        index = texts.index(text)
        labels[index] = "roads" if i < half else "mobility"
        times[index] = datetime(2016 if i < half else 2018, 3, 1 + i, tzinfo=UTC)
    model = DepartmentModel(time_scale_days=90).fit(texts, labels, times=times)
    text = "the bus timetable is wrong again"
    assert model.predict(text, at=datetime(2016, 4, 1, tzinfo=UTC))[0][0] == "roads"
    assert model.predict(text, at=datetime(2018, 4, 1, tzinfo=UTC))[0][0] == "mobility"
    # Without a moment the text alone decides, and it cannot tell the two names apart reliably.
    assert {d for d, _ in model.predict(text, limit=1)} <= {"roads", "mobility"}


def test_with_times_the_threshold_is_judged_on_the_newer_half_by_models_of_older_examples() -> None:
    pairs = examples(30)
    texts, labels = [t for t, _ in pairs], [d for _, d in pairs]
    model = DepartmentModel().fit(texts, labels, times=mixed_in_time(pairs))
    assert model.validated_by == "forward"
    assert model.estimate is not None and model.estimate.examples == len(pairs) // 2 == 68
    assert model.shuffled_estimate is not None and model.shuffled_estimate.examples == model.examples == 136
    assert model.estimate.precision >= 0.9 and model.threshold < 1.0
    assert model.route("택시 운전기사가 불친절해요") is not None
    assert model.route("오늘 날씨가 좋네요") is None


def test_forward_a_department_that_only_lately_took_complaints_cannot_be_predicted_before() -> None:
    # Housing's complaints are the newest: the first model that is judged on them never saw one, so
    # they count as wrong there. Shuffled folds see housing in every fold.
    pairs = examples(30)
    pairs = [p for p in pairs if p[1] != "housing"] + [p for p in pairs if p[1] == "housing"]
    times = [datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=n) for n in range(len(pairs))]
    model = DepartmentModel().fit([t for t, _ in pairs], [d for _, d in pairs], times=times)
    assert model.validated_by == "forward"
    assert model.estimate is not None and model.shuffled_estimate is not None
    assert model.estimate.top1 < model.shuffled_estimate.top1 - 0.1


def test_without_an_order_in_time_the_shuffled_folds_choose_the_threshold() -> None:
    pairs = examples(30)
    texts, labels = [t for t, _ in pairs], [d for _, d in pairs]
    one_moment = [datetime(2024, 1, 1, tzinfo=UTC)] * len(pairs)  # an import without dates
    for model in (
        DepartmentModel().fit(texts, labels),
        DepartmentModel().fit(texts, labels, times=one_moment),
        DepartmentModel(validation="shuffled").fit(texts, labels, times=mixed_in_time(pairs)),
    ):
        assert model.validated_by == "shuffled"
        assert model.threshold == model.shuffled_threshold < 1.0
        assert model.estimate is model.shuffled_estimate and model.estimate is not None
        assert model.estimate.examples == 136
    with pytest.raises(ValueError, match="validation must be one of forward, shuffled"):
        DepartmentModel(validation="sideways")


def test_choose_threshold_is_the_lowest_confidence_that_keeps_the_target() -> None:
    confidences = [0.9, 0.8, 0.7, 0.6, 0.5]
    correct = [True, True, True, False, False]
    assert choose_threshold(confidences, correct, 0.75, z=0) == 0.6  # 3 of 4 right at 0.6
    assert choose_threshold(confidences, correct, 0.8, z=0) == 0.7
    assert choose_threshold(confidences, correct, 1.0, z=0) == 0.7
    assert choose_threshold(confidences, [False] * 5, 0.5, z=0) == math.inf
    # Tied confidences are routed together: 0.8 with one right and one wrong is 2 of 3.
    assert choose_threshold([0.9, 0.8, 0.8], [True, True, False], 0.9, z=0) == 0.9
    # With a margin (one standard error), three right out of three is not yet proof of 90 %.
    assert choose_threshold(confidences, correct, 0.8) == math.inf
    assert choose_threshold([0.9] * 200 + [0.1] * 20, [True] * 200 + [False] * 20, 0.95) == 0.9


def test_wilson_lower_bound() -> None:
    assert wilson_lower(0, 0, 1.0) == 0.0
    assert wilson_lower(9, 10, 0.0) == 0.9
    assert 0.75 < wilson_lower(9, 10, 1.0) < 0.9
    assert wilson_lower(900, 1000, 1.0) > 0.89


# --- spreadsheets ---------------------------------------------------------------------------


def write(tmp_path: Path, text: str, name: str = "complaints.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_spreadsheet_becomes_examples_with_title_text_and_date(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "\ufefftitle,date,content,depart\n"
        '주차장이 어두워요,2020.11.30,"공영주차장이 야간에\n너무 어두워요",도시재생국 교통운수과\n'
        ",,,\n"
        ",2020.11.29,,환경과\n"
        "Bus late,2019-01-02,The 3 bus is late,교통과\n",
    )
    rows, empty = read_examples_csv(
        path, text_column="content", title_column="title", department_column="depart", date_column="date"
    )
    # Lines are where a row starts: the first row's quoted text spans lines 2 and 3.
    assert [(r.department, r.line) for r in rows] == [("도시재생국 교통운수과", 2), ("교통과", 6)]
    assert rows[0].text == "주차장이 어두워요\n공영주차장이 야간에\n너무 어두워요"
    assert rows[0].at == datetime(2020, 11, 30, tzinfo=UTC)
    assert rows[1].text == "Bus late\nThe 3 bus is late"
    assert empty == [5]  # a department without any text; the blank line 4 is no row at all


def test_a_row_with_a_stray_field_is_named_by_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'content,depart\n"two\nlines",a\nfine,b\nbroken, row,c\n',
    )
    with pytest.raises(ExamplesFileError, match=r"complaints\.csv:5: 3 fields where the header has 2"):
        read_examples_csv(path, text_column="content", department_column="depart")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "text,depart\nhello,a\n",
            r"complaints\.csv:1: no column 'content' \(the header has 'text', 'depart'\)",
        ),
        ("", r"complaints\.csv: the file is empty"),
        ('content,depart\nhello,a\n"unclosed,b\n', r"complaints\.csv:\d+: not valid CSV"),
        ("content,depart\nhello,\n", r"complaints\.csv:2: no department in column 'depart'"),
    ],
)
def test_a_malformed_spreadsheet_is_refused_with_file_and_line(
    tmp_path: Path, content: str, message: str
) -> None:
    path = write(tmp_path, content)
    with pytest.raises(ExamplesFileError, match=message):
        read_examples_csv(path, text_column="content", department_column="depart")


def test_a_bad_date_and_a_non_utf8_file_are_named(tmp_path: Path) -> None:
    path = write(tmp_path, "content,depart,date\nhello,a,2020-01-01\nbye,b,yesterday\n")
    with pytest.raises(ExamplesFileError, match=r"complaints\.csv:3: 'yesterday' is not a date"):
        read_examples_csv(path, text_column="content", department_column="depart", date_column="date")
    korean = tmp_path / "excel.csv"
    korean.write_bytes("content,depart\n가로등,교통\n".encode("cp949"))
    with pytest.raises(ExamplesFileError, match=r"excel\.csv:2: not utf-8-sig text"):
        read_examples_csv(korean, text_column="content", department_column="depart")
    rows, _ = read_examples_csv(korean, text_column="content", department_column="depart", encoding="cp949")
    assert [(r.text, r.department) for r in rows] == [("가로등", "교통")]
