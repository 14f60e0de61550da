"""Adding question variants to the YAML files: the file keeps its comments and layout, the folder
still loads, and nothing is written when anything is off."""

from __future__ import annotations

import difflib
import shutil
import textwrap
from pathlib import Path

import pytest

import knowledge.editor as editor
from knowledge import KnowledgeError, load_knowledge
from knowledge.editor import EditError, NewQuestion, add_questions, questions_like
from knowledge.importer import ImportOptions, import_csv
from tests.conftest import FAQ_MIN, ROOT

WASTE = """\
# waste.yaml: what the environment department answers
department: environment
entries:
  - id: bulky-waste   # the most asked
    questions:
      ko: ["대형 폐기물은 어떻게 버리나요?", "소파 버리는 방법"]
      en: ["How do I throw away a sofa?"]
    answer:
      ko: "구청에 신고하세요."
      en: "Register it with your district office."

  # Food waste has its own bags.
  - id: food-waste
    answer: {ko: "전용 봉투에 버리세요."}
    questions:
      ko:
        - "음식물 쓰레기 봉투"   # the bag
        - "음쓰 버리는 법"

  - id: recycling
    answer: {ko: "분리해서 버리세요."}
    questions:
      ko:
        - "분리수거 방법"

# More entries come here.
"""


@pytest.fixture
def faq(tmp_path: Path) -> Path:
    folder = tmp_path / "faq"
    folder.mkdir()
    (folder / "waste.yaml").write_text(WASTE, encoding="utf-8")
    shutil.copy(FAQ_MIN / "city.yaml", folder / "city.yaml")
    text = (folder / "city.yaml").read_text(encoding="utf-8").replace("bulky-waste", "city-bulky")
    (folder / "city.yaml").write_text(text, encoding="utf-8")
    return folder


def changes(before: str, after: str) -> list[str]:
    return [
        line
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


def test_a_question_joins_a_flow_list_and_nothing_else_in_the_file_changes(faq: Path) -> None:
    changed = add_questions(faq, [NewQuestion("bulky-waste", "ko", "장롱 버리고 싶어요")])
    assert changed == ["waste.yaml"]
    after = (faq / "waste.yaml").read_text(encoding="utf-8")
    assert changes(WASTE, after) == [
        '-      ko: ["대형 폐기물은 어떻게 버리나요?", "소파 버리는 방법"]',
        '+      ko: ["대형 폐기물은 어떻게 버리나요?", "소파 버리는 방법", "장롱 버리고 싶어요"]',
    ]
    entry = load_knowledge(faq).get("bulky-waste")
    assert entry is not None and entry.questions["ko"][-1] == "장롱 버리고 싶어요"


def test_block_lists_and_new_languages_keep_the_blank_lines_and_comments_around_them(faq: Path) -> None:
    add_questions(
        faq,
        [
            NewQuestion("food-waste", "ko", "음식물 쓰레기 버리는 요일"),
            NewQuestion("food-waste", "en", "food waste bags"),
            NewQuestion("recycling", "ko", "재활용 어떻게 해요"),
            NewQuestion("bulky-waste", "zh", "怎么扔沙发?"),
        ],
    )
    after = (faq / "waste.yaml").read_text(encoding="utf-8")
    assert changes(WASTE, after) == [
        '+      zh: ["怎么扔沙发?"]',
        '+        - "음식물 쓰레기 버리는 요일"',
        "+      en:",
        '+        - "food waste bags"',
        '+        - "재활용 어떻게 해요"',
    ]
    assert after.endswith('        - "재활용 어떻게 해요"\n\n# More entries come here.\n')
    assert '        - "음쓰 버리는 법"\n        - "음식물 쓰레기 버리는 요일"\n      en:\n' in after
    assert '        - "food waste bags"\n\n  - id: recycling\n' in after
    base = load_knowledge(faq)
    assert base.get("food-waste").questions["en"] == ["food waste bags"]  # type: ignore[union-attr]


def test_an_imported_file_takes_a_variant_with_a_one_line_change(tmp_path: Path) -> None:
    data = "제목,내용,분류\n기초연금 신청,주민센터에서 신청합니다.,복지\n장애인 등록,신청서를 내세요.,복지\n"
    result = import_csv(
        data.encode(),
        source="faq.csv",
        options=ImportOptions(question_column="제목", answer_column="내용", category_column="분류"),
    )
    folder = tmp_path / "faq"
    folder.mkdir()
    (file,) = result.files
    (folder / file.name).write_text(file.text, encoding="utf-8")
    add_questions(folder, [NewQuestion("faq-1", "ko", "기초연금 어디서 신청해요")])
    assert changes(file.text, (folder / file.name).read_text(encoding="utf-8")) == [
        '+        - "기초연금 어디서 신청해요"'
    ]


def test_the_shipped_files_take_a_variant_without_any_other_change(tmp_path: Path) -> None:
    folder = tmp_path / "faq"
    shutil.copytree(ROOT / "knowledge" / "faq", folder)
    base = load_knowledge(folder)
    for entry in base.entries[:: max(len(base) // 8, 1)]:
        before = (folder / entry.source.file).read_text(encoding="utf-8")
        add_questions(folder, [NewQuestion(entry.id, "en", f"a new way to ask about {entry.id}")])
        assert len(changes(before, (folder / entry.source.file).read_text(encoding="utf-8"))) == 2


def test_crlf_files_stay_crlf(faq: Path) -> None:
    (faq / "waste.yaml").write_bytes(WASTE.replace("\n", "\r\n").encode())
    add_questions(faq, [NewQuestion("recycling", "ko", "재활용")])
    data = (faq / "waste.yaml").read_bytes()
    assert data.count(b"\r\n") == WASTE.count("\n") + 1 and b"\n" not in data.replace(b"\r\n", b"")


def test_nothing_is_written_for_an_unknown_entry_or_a_broken_folder(faq: Path) -> None:
    before = (faq / "waste.yaml").read_bytes()
    with pytest.raises(EditError, match="no FAQ entry 'parking'"):
        add_questions(faq, [NewQuestion("bulky-waste", "ko", "ok"), NewQuestion("parking", "ko", "x")])
    (faq / "city.yaml").write_text("entries: [", encoding="utf-8")
    with pytest.raises(KnowledgeError):
        add_questions(faq, [NewQuestion("bulky-waste", "ko", "ok")])
    assert (faq / "waste.yaml").read_bytes() == before


def test_an_unknown_department_in_the_folder_stops_the_edit(faq: Path) -> None:
    with pytest.raises(KnowledgeError, match="unknown department 'environment'"):
        add_questions(faq, [NewQuestion("bulky-waste", "ko", "ok")], known_departments={"triage"})


def test_questions_shared_through_an_anchor_are_not_edited(tmp_path: Path) -> None:
    folder = tmp_path / "faq"
    folder.mkdir()
    text = textwrap.dedent(
        """\
        department: triage
        entries:
          - id: first
            questions: &shared
              ko: ["같은 질문"]
            answer: {ko: "답"}
          - id: second
            questions: *shared
            answer: {ko: "다른 답"}
        """
    )
    (folder / "a.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(EditError, match="entry second would change too"):
        add_questions(folder, [NewQuestion("first", "ko", "새 질문")])
    assert (folder / "a.yaml").read_text(encoding="utf-8") == text


def test_a_file_changed_during_the_edit_is_not_overwritten(
    faq: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    validate = editor._validate

    def meanwhile(*args: object, **kwargs: object) -> None:
        validate(*args, **kwargs)  # type: ignore[arg-type]
        (faq / "waste.yaml").write_text(WASTE + "\n# an administrator's edit\n", encoding="utf-8")

    monkeypatch.setattr(editor, "_validate", meanwhile)
    with pytest.raises(EditError, match="was changed while the questions were added"):
        add_questions(faq, [NewQuestion("bulky-waste", "ko", "장롱")])
    assert (faq / "waste.yaml").read_text(encoding="utf-8").endswith("# an administrator's edit\n")
    assert not [p.name for p in faq.iterdir() if p.name.endswith(".tmp")]


def test_questions_like_compares_as_the_matcher_does(faq: Path) -> None:
    base = load_knowledge(faq)
    found = questions_like(base, "소파  버리는 방법!!")
    assert [(e.id, lang) for e, lang in found] == [("city-bulky", "ko"), ("bulky-waste", "ko")]
    assert [e.id for e, _ in questions_like(base, "how do i throw away a SOFA")] == [
        "city-bulky",
        "bulky-waste",
    ]
    assert questions_like(base, "?!") == [] and questions_like(base, "새 질문") == []
