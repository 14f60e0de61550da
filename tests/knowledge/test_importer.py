"""An FAQ spreadsheet (CSV) into YAML files that the loader accepts, with every text intact."""

from __future__ import annotations

import csv
import html
import io
from pathlib import Path

import pytest

from knowledge import KnowledgeBase, load_knowledge
from knowledge.importer import CsvImportError, ImportOptions, ImportResult, import_csv

DEPARTMENTS = {"welfare", "environment", "triage"}
SEOUL = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "seoul120" / "seoul-120-text.csv"


def sheet(*rows: list[str], delimiter: str = ",") -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return out.getvalue()


def imported(text: str | bytes, **options: object) -> ImportResult:
    data = text.encode("utf-8") if isinstance(text, str) else text
    settings = {"question_column": "제목", "answer_column": "내용", "id_prefix": "city", **options}
    return import_csv(
        data,
        source="faq.csv",
        options=ImportOptions(**settings),  # type: ignore[arg-type]
        known_departments=DEPARTMENTS,
    )


def written(result: ImportResult, folder: Path) -> KnowledgeBase:
    folder.mkdir(exist_ok=True)
    for file in result.files:
        (folder / file.name).write_text(file.text, encoding="utf-8")
    return load_knowledge(folder, known_departments=DEPARTMENTS)


HEADER = ["번호", "분류", "제목", "내용", "다른질문", "키워드"]


def test_one_file_per_category_with_its_department_and_every_text_back(tmp_path: Path) -> None:
    text = sheet(
        HEADER,
        [
            "7",
            "복지",
            "기초연금   신청 방법",
            "   주민센터에서    신청합니다.   ",
            "기초연금 어디서 신청해요 | 노인 연금",
            "기초연금, 노인",
        ],
        ["8", "환경", "대형폐기물 버리는 법", "구청에 신고하세요.", "", "대형폐기물; 가구"],
        ["9", "행정", "여권 발급", "여권은 구청에서.", "", ""],
        ["10", "복지", "장애인 등록", "주민센터에 신청서를\n\n\n\n내세요.", "", ""],
    )
    result = imported(
        text,
        id_column="번호",
        category_column="분류",
        extra_question_columns=("다른질문",),
        keyword_columns=("키워드",),
        department_map={"복지": "welfare", "환경": "environment"},
    )
    assert [(f.name, f.department, f.mapped, len(f.entries)) for f in result.files] == [
        ("city-복지.yaml", "welfare", True, 2),
        ("city-행정.yaml", "triage", False, 1),
        ("city-환경.yaml", "environment", True, 1),
    ]
    assert result.unmapped == {"행정": 1} and result.rows == 4 and result.entries == 4

    base = written(result, tmp_path / "faq")
    pension = base.get("city-7")
    assert pension is not None and pension.department == "welfare"
    assert pension.questions == {"ko": ["기초연금 신청 방법", "기초연금 어디서 신청해요", "노인 연금"]}
    assert pension.answer == {"ko": "주민센터에서 신청합니다."}  # whitespace runs collapsed
    assert pension.keywords == ["기초연금", "노인"]
    assert pension.source.file == "city-복지.yaml"
    assert base.get("city-8").keywords == ["대형폐기물", "가구"]  # type: ignore[union-attr]
    assert base.get("city-9").department == "triage"  # type: ignore[union-attr]
    # Line breaks in an answer stay, but at most one blank line.
    assert base.get("city-10").answer == {"ko": "주민센터에 신청서를\n\n내세요."}  # type: ignore[union-attr]


def test_the_files_read_like_hand_written_ones(tmp_path: Path) -> None:
    long_answer = (
        "가까운 주민센터에 신분증을 가지고 방문하시면 담당 공무원이 신청서 작성을 도와드립니다. " * 4
    )
    result = imported(
        sheet(
            ["분류", "제목", "내용"], ["복지", "기초연금 신청", long_answer], ["복지", "짧은 질문", "짧은 답"]
        ),
        category_column="분류",
        department_map={"복지": "welfare"},
    )
    (file,) = result.files
    lines = file.text.splitlines()
    assert lines[0].startswith("# city-복지.yaml: imported from faq.csv by `python bot.py faq import`")
    assert lines[2:9] == [
        "department: welfare",
        "entries:",
        "  - id: city-1",
        "    questions:",
        "      ko:",
        '        - "기초연금 신청"',
        "    answer:",
    ]
    assert lines[9] == "      ko: >-"  # a long answer is a folded block, Korean unescaped
    assert all(len(line) < 110 for line in lines[10:])
    assert '      ko: "짧은 답"' in lines
    assert "" in lines  # a blank line between entries
    base = written(result, tmp_path / "faq")
    assert base.get("city-1").answer["ko"] == long_answer.strip()  # type: ignore[union-attr]


TRICKY = [
    'She said "hi" and left \\ backslash',
    "120",
    "yes",
    "null",
    "# not a comment",
    "key: value",
    "- not a list",
    "@home and `ticks` and {braces} [brackets] & *star !bang %percent",
    "emoji 😀 and 中文 and русский",
    "tab\there",
    "line\u2028separator and next\x85line",
    "control \x01 character and a \ufeff mark",
    "'single quotes'",
    ">folded? |literal?",
]


def test_every_kind_of_text_comes_back_exactly_through_the_loader(tmp_path: Path) -> None:
    rows = [[f"q {i} {text}", f"{text} " + "word " * (i * 8) + text] for i, text in enumerate(TRICKY)]
    rows.append(["multi-line answer", 'first line: with colon\n  second "line"\n\n# third'])
    result = imported(sheet(["제목", "내용"], *rows), keyword_columns=())
    base = written(result, tmp_path / "faq")
    answers = [entry.answer["ko"] for entry in base.entries]
    questions = [entry.questions["ko"][0] for entry in base.entries]

    def clean(text: str) -> str:
        # Line separators are line breaks; control characters and byte-order marks are dropped.
        text = text.replace("\u2028", "\n").replace("\x85", "\n").replace("\x01", "").replace("\ufeff", "")
        return "\n".join(" ".join(line.split()) for line in text.split("\n"))

    assert questions[: len(TRICKY)] == [" ".join(clean(f"q {i} {t}").split()) for i, t in enumerate(TRICKY)]
    assert answers[: len(TRICKY)] == [clean(f"{t} " + "word " * (i * 8) + t) for i, t in enumerate(TRICKY)]
    assert answers[-1] == 'first line: with colon\nsecond "line"\n\n# third'


def test_the_same_sheet_gives_the_same_files() -> None:
    text = sheet(["분류", "제목", "내용"], ["b", "q1", "a1"], ["a", "q2", "a2"], ["b", "q3", "a3"])
    first = imported(text, category_column="분류")
    assert [(f.name, f.text) for f in first.files] == [
        (f.name, f.text) for f in imported(text, category_column="분류").files
    ]
    assert [f.name for f in first.files] == ["city-a.yaml", "city-b.yaml"]


def test_ids_are_slugs_and_a_repeated_id_gets_a_suffix_that_is_reported(tmp_path: Path) -> None:
    text = sheet(
        ["번호", "제목", "내용"],
        ["A 12", "q1", "a"],
        ["a-12", "q2", "a"],
        ["가나", "q3", "a"],
        ["", "q4", "a"],
        ["a-12-2", "q5", "a"],
    )
    result = imported(text, id_column="번호", id_prefix="Seoul City")
    base = written(result, tmp_path / "faq")
    assert [entry.id for entry in base.entries] == [
        "seoul-city-a-12",
        "seoul-city-a-12-3",  # -2 is taken by a later row
        "seoul-city-row3",
        "seoul-city-row4",
        "seoul-city-a-12-2",
    ]
    messages = [(note.line, note.message) for note in result.notes]
    assert (
        3,
        "the id seoul-city-a-12 is used by an earlier row: this entry is seoul-city-a-12-3",
    ) in messages
    assert (4, "the id '가나' has no letters or digits a-z, 0-9: the entry is seoul-city-row3") in messages
    assert (5, "the id is empty: the entry is seoul-city-row4") in messages


def test_duplicate_questions_are_kept_and_reported_or_skipped(tmp_path: Path) -> None:
    text = sheet(["제목", "내용"], ["여권 발급?", "구청"], ["여권  발급", "시청"], ["다른 질문", "답"])
    kept = imported(text)
    assert kept.entries == 3
    assert [(n.line, n.message) for n in kept.notes] == [
        (3, "entry city-2 has the same question as entry city-1 (line 2): both kept, '여권 발급'")
    ]
    skipped = imported(text, skip_duplicates=True)
    assert skipped.entries == 2
    assert [(n.line, n.message) for n in skipped.notes] == [
        (3, "skipped: the same question as line 2 ('여권 발급')")
    ]
    assert [e.id for e in written(skipped, tmp_path / "faq").entries] == ["city-1", "city-3"]


def test_a_row_without_an_answer_becomes_handoff_always(tmp_path: Path) -> None:
    result = imported(sheet(["제목", "내용"], ["답 없는 질문", "   "]))
    assert [n.message for n in result.notes] == [
        "entry city-1 has no answer: it is handoff: always (a person answers)"
    ]
    (entry,) = written(result, tmp_path / "faq").entries
    assert entry.handoff == "always" and entry.answer == {}
    assert "# Line 2 of the spreadsheet has no answer" in result.files[0].text


def test_html_entities_of_a_scraped_sheet_are_decoded_on_request(tmp_path: Path) -> None:
    text = sheet(["제목", "내용"], ["&amp;amp;apos;부패&amp;amp;apos;란?", "A &amp;amp; B"])
    assert imported(text).files[0].entries[0].questions == ("&amp;amp;apos;부패&amp;amp;apos;란?",)
    entry = imported(text, unescape_html=True).files[0].entries[0]
    assert entry.questions == ("'부패'란?",) and entry.answer == "A & B"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig"])
def test_a_byte_order_mark_does_not_hide_the_first_column(encoding: str) -> None:
    data = "\ufeff번호,제목,내용\r\n1,질문,답\r\n".encode()
    result = imported(data, encoding=encoding, id_column="번호")
    assert result.files[0].entries[0].id == "city-1"


def test_korean_excel_exports_in_cp949_and_other_delimiters() -> None:
    data = sheet(["제목", "내용"], ["여권 발급", "구청에서"], delimiter=";").encode("cp949")
    result = imported(data, encoding="cp949", delimiter=";")
    assert result.files[0].entries[0].questions == ("여권 발급",)


def problems(text: str | bytes, **options: object) -> list[str]:
    with pytest.raises(CsvImportError) as caught:
        imported(text, **options)
    return [str(problem) for problem in caught.value.problems]


def test_bad_input_names_the_file_the_line_and_what_is_wrong() -> None:
    assert problems(sheet(["title", "body"], ["q", "a"])) == [
        "faq.csv:1: no column '제목' in the header (the columns are: 'title', 'body')",
        "faq.csv:1: no column '내용' in the header (the columns are: 'title', 'body')",
    ]
    # An empty question, after a row whose answer spans three lines.
    text = sheet(["제목", "내용"], ["q1", "one\ntwo\nthree"], ["  ", "an answer"], ["q3", "a", "extra"])
    assert problems(text) == [
        "faq.csv:5: empty question in column '제목'",
        "faq.csv:6: has 3 fields but the header has 2 (a comma in a text that is not quoted?)",
    ]
    hint = "(the columns are: '제목;내용'); is the delimiter semicolon? (--delimiter)"
    assert problems(sheet(["제목;내용"], ["q;a"])) == [
        f"faq.csv:1: no column '제목' in the header {hint}",
        f"faq.csv:1: no column '내용' in the header {hint}",
    ]
    assert problems('제목,내용\r\nq,a\r\nq,"unclosed\r\n') == [
        "faq.csv:3: not valid CSV: unexpected end of data"
    ]
    assert problems("") == ["faq.csv: is empty: expected a header row naming the columns"]
    assert problems(sheet(["제목", "내용"], ["", ""])) == ["faq.csv: has no rows with a question"]


def test_undecodable_bytes_name_the_line_and_suggest_the_encoding() -> None:
    data = sheet(["title", "body"], ["q", "a"], ["여권", "구청"]).encode("cp949")
    assert problems(data, question_column="title", answer_column="body") == [
        "faq.csv:3: is not valid utf-8-sig: byte 0xbf cannot be read; "
        "try --encoding cp949 (Korean Excel exports are often cp949)"
    ]
    assert problems(b"\xff\xfe" + "제목,내용".encode("utf-16-le"), encoding="latin-1") == [
        "faq.csv:1: contains a NUL character; is it UTF-16? save it as CSV UTF-8"
    ]
    assert problems(b"a,b", encoding="klingon") == ["faq.csv: unknown encoding 'klingon'"]


def test_departments_must_be_ones_the_config_knows() -> None:
    text = sheet(["분류", "제목", "내용"], ["복지", "q", "a"])
    assert problems(text, category_column="분류", department_map={"복지": "wellness"}) == [
        "faq.csv: unknown department 'wellness' (known: environment, triage, welfare)"
    ]
    assert problems(text, default_department="parks")[0].startswith("faq.csv: unknown department 'parks'")
    unused = imported(text, category_column="분류", department_map={"복지": "welfare", "교통": "welfare"})
    assert unused.unused_mappings == ("교통",)


@pytest.mark.skipif(
    not SEOUL.exists(), reason="the Seoul 120 dataset (../shared/datasets/seoul120) is not beside this clone"
)
def test_the_seoul_120_sheet_becomes_2645_entries_that_load(tmp_path: Path) -> None:
    result = import_csv(
        SEOUL.read_bytes(),
        source=SEOUL.name,
        options=ImportOptions(
            question_column="제목",
            answer_column="내용",
            id_column="번호",
            id_prefix="seoul",
            category_column="분류",
            department_map={"복지": "welfare", "환경": "environment"},
            unescape_html=True,
        ),
        known_departments=DEPARTMENTS,
    )
    base = written(result, tmp_path / "faq")
    assert len(base) == result.entries == result.rows == 2645 and len(result.files) == 10
    with SEOUL.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        entry = base.get(f"seoul-{row['번호']}")
        question = " ".join(row["제목"].split())
        while html.unescape(question) != question:  # some are escaped three times over
            question = html.unescape(question)
        assert entry is not None and entry.questions["ko"][0] == question
        if "&" not in row["내용"]:
            assert entry.answer.get("ko", "") == " ".join(row["내용"].split())
    assert sum(1 for e in base.entries if e.handoff == "always") == 5  # the rows without an answer
