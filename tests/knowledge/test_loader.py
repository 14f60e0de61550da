from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from knowledge import KnowledgeError, Problem, SourceRef, load_knowledge

Write = Callable[[str, str], Path]

WASTE = """
department: environment
entries:
  - id: bulky-waste
    questions:
      ko: ["대형 폐기물은 어떻게 버리나요?", "소파 버리는 방법"]
      en: ["How do I throw away a sofa?"]
    answer:
      ko: "대형 폐기물은 구청 홈페이지나 주민센터에서 배출 신고 후 ..."
      en: "Register bulky waste with your district office, then ..."
    keywords: [대형폐기물, 가구, bulky]

  - id: recycling-days
    questions:
      en: ["When is recycling collected?"]
    answer:
      en: "Recycling is collected on ..."
    department: cleaning
"""

CIVIL = """
department: civil
entries:
  - id: passport
    questions: {ko: ["여권 발급은 어디서 하나요?"], zh-tw: ["護照在哪裡辦理?"]}
    handoff: always
"""


def problems_of(path: Path, known: list[str] | None = None) -> list[Problem]:
    with pytest.raises(KnowledgeError) as caught:
        load_knowledge(path, known_departments=known)
    return caught.value.problems


def test_a_valid_knowledge_base_loads_from_several_files(faq: Path, write: Write) -> None:
    write("waste.yaml", WASTE)
    write("offices/civil.yml", CIVIL)
    write("notes.txt", "not yaml at all: [")
    write(".backup/old.yaml", "this: [is broken")

    base = load_knowledge(faq, known_departments={"environment", "cleaning", "civil"})

    assert base.files == ("offices/civil.yml", "waste.yaml")
    assert [entry.id for entry in base.entries] == ["passport", "bulky-waste", "recycling-days"]
    assert len(base) == 3
    assert [entry.source for entry in base.entries] == [
        SourceRef("offices/civil.yml", 3),
        SourceRef("waste.yaml", 3),
        SourceRef("waste.yaml", 12),
    ]
    bulky = base.get("bulky-waste")
    assert bulky is not None
    assert bulky.department == "environment"  # the file's default
    assert bulky.questions["ko"] == ["대형 폐기물은 어떻게 버리나요?", "소파 버리는 방법"]
    assert bulky.keywords == ["대형폐기물", "가구", "bulky"]
    assert bulky.handoff == "auto"
    recycling = base.get("recycling-days")
    assert recycling is not None
    assert recycling.department == "cleaning"  # its own, over the file's default
    passport = base.get("passport")
    assert passport is not None
    assert (passport.handoff, passport.answer, passport.department) == ("always", {}, "civil")
    assert base.get("nothing") is None


def test_an_empty_folder_is_an_empty_knowledge_base(faq: Path) -> None:
    base = load_knowledge(faq)
    assert (len(base), base.entries, base.files) == (0, (), ())


def test_a_missing_folder_is_one_problem(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    assert problems_of(missing) == [Problem(str(missing), None, None, "FAQ folder does not exist")]


def test_a_file_instead_of_a_folder_is_one_problem(tmp_path: Path) -> None:
    file = tmp_path / "faq.yaml"
    file.write_text("entries: []\n")
    assert problems_of(file) == [Problem(str(file), None, None, "is not a folder of FAQ YAML files")]


def test_a_yaml_syntax_error_names_the_parser_line(faq: Path, write: Write) -> None:
    write(
        "bad.yaml",
        """
        department: environment
        entries:
          - id: bulky-waste
            questions: {en: ["How do I throw away a sofa?"]
            answer: {en: "Call us"}
        """,
    )
    assert problems_of(faq) == [
        Problem(
            "bad.yaml",
            5,
            None,
            "YAML syntax error: while parsing a flow mapping (line 4): "
            "expected ',' or '}', but got '<scalar>'",
        )
    ]


def test_several_documents_in_one_file_are_a_problem(faq: Path, write: Write) -> None:
    write("two.yaml", "entries: []\n---\nentries: []\n")
    assert problems_of(faq) == [
        Problem(
            "two.yaml",
            2,
            None,
            "YAML syntax error: expected a single document in the stream (line 1): "
            "but found another document",
        )
    ]


def test_a_file_that_is_not_utf8_is_a_problem(faq: Path) -> None:
    (faq / "latin1.yaml").write_bytes("entries:\n  - id: caf\xe9\n".encode("latin-1"))
    assert problems_of(faq) == [
        Problem("latin1.yaml", 2, None, "is not valid UTF-8 (byte 0xe9); save it as UTF-8")
    ]


def test_shape_errors_of_a_file(faq: Path, write: Write) -> None:
    write("empty.yaml", "# nothing yet\n")
    write("list.yaml", "- id: a\n")
    write("no-entries.yaml", "department: civil\ntopics: []\n")
    write("not-a-list.yaml", "department: civil\nentries:\n  id: a\n")
    write("bad-department.yaml", "department: [civil]\nentries: []\n")

    assert problems_of(faq) == [
        Problem("bad-department.yaml", 1, None, "'department' must be a department name"),
        Problem("empty.yaml", None, None, "is empty: expected 'entries:' with a list of entries"),
        Problem("list.yaml", 1, None, "expected a mapping with 'entries:' and optionally 'department:'"),
        Problem("no-entries.yaml", 1, None, "missing 'entries:' (a list of entries)"),
        Problem(
            "no-entries.yaml", 2, None, "unknown top-level key 'topics' (expected 'department' and 'entries')"
        ),
        Problem("not-a-list.yaml", 3, None, "'entries' must be a list of entries"),
    ]


def test_validation_errors_point_at_the_offending_field(faq: Path, write: Write) -> None:
    write(
        "waste.yaml",
        """
        department: environment
        entries:
          - id: bulky-waste
            questions:
              ko: ["소파 버리는 방법"]
              EN: ["How do I throw away a sofa?"]
            answer:
              ko: "구청에 신고하세요"
              en: "   "
            colour: red
          - questions:
              en: ["When is recycling collected?", ""]
            answer: {en: "Mondays"}
            handoff: never
          - "just a sentence"
          - id: Food Waste
            questions: {}
            keywords: [food, 3]
        """,
    )
    assert problems_of(faq) == [
        Problem(
            "waste.yaml",
            6,
            "bulky-waste",
            "questions.EN: must be a lowercase language code like 'ko', 'en' or 'zh-tw', got 'EN'",
        ),
        Problem("waste.yaml", 9, "bulky-waste", "answer.en: must not be empty"),
        Problem(
            "waste.yaml",
            10,
            "bulky-waste",
            "colour: unknown field (expected one of: id, questions, handoff, answer, keywords, synonyms, "
            "department)",
        ),
        # no usable id: the entry is named by its position
        Problem("waste.yaml", 11, "#2", "id: is required"),
        Problem("waste.yaml", 12, "#2", "questions.en[1]: must not be empty"),
        Problem("waste.yaml", 14, "#2", "handoff: Input should be 'auto' or 'always' (got 'never')"),
        Problem("waste.yaml", 15, "#3", "expected an entry (a mapping with id, questions and answer)"),
        Problem(
            "waste.yaml",
            16,
            "Food Waste",
            "id: must be a lowercase slug of a-z, 0-9 and '-' (like 'bulky-waste'), got 'Food Waste'",
        ),
        Problem(
            "waste.yaml",
            16,
            "Food Waste",
            "answer: is required (at least one language) unless handoff is 'always'",
        ),
        Problem("waste.yaml", 17, "Food Waste", "questions: must not be empty"),
        Problem("waste.yaml", 18, "Food Waste", "keywords[1]: Input should be a valid string (got 3)"),
    ]


def test_problem_and_error_text() -> None:
    problems = [
        Problem("waste.yaml", 12, "bulky-waste", "answer.en: must not be empty"),
        Problem("waste.yaml", 20, "#3", "id: is required"),
        Problem("empty.yaml", None, None, "is empty"),
    ]
    assert [str(problem) for problem in problems] == [
        "waste.yaml:12: entry 'bulky-waste': answer.en: must not be empty",
        "waste.yaml:20: entry #3: id: is required",
        "empty.yaml: is empty",
    ]
    error = KnowledgeError(problems)
    assert error.problems == problems
    assert str(error).splitlines() == [str(problem) for problem in problems]


def test_duplicate_ids_within_and_across_files(faq: Path, write: Write) -> None:
    write(
        "a.yaml",
        """
        department: civil
        entries:
          - id: passport
            questions: {en: ["Where do I get a passport?"]}
            answer: {en: "At the district office."}
          - id: passport
            questions: {en: ["Passport renewal"]}
            answer: {en: "Also there."}
        """,
    )
    write(
        "b.yaml",
        """
        department: civil
        entries:
          - id: other
            questions: {en: ["Something else"]}
            answer: {en: "Yes."}
          - answer: {en: "Again."}
            id: passport
            questions: {en: ["Passports"]}
        """,
    )
    assert problems_of(faq) == [
        Problem("a.yaml", 6, "passport", "duplicate id: already used at a.yaml:3"),
        Problem("b.yaml", 7, "passport", "duplicate id: already used at a.yaml:3"),
    ]


def test_departments_must_be_known(faq: Path, write: Write) -> None:
    write(
        "a.yaml",
        """
        department: enviroment
        entries:
          - id: bulky-waste
            questions: {en: ["Sofa"]}
            answer: {en: "Call."}
          - id: park-hours
            questions: {en: ["When do parks close?"]}
            answer: {en: "At 22:00."}
            department: parks
          - id: recycling
            questions: {en: ["Recycling"]}
            answer: {en: "Mondays."}
            department: environment
        """,
    )
    write(
        "b.yaml",
        """
        entries:
          - id: passport
            questions: {en: ["Passport"]}
            answer: {en: "District office."}
        """,
    )
    assert problems_of(faq, known=["environment", "civil"]) == [
        # the misspelt file default is reported once, at its line, not for every entry using it
        Problem("a.yaml", 1, None, "unknown department 'enviroment' (known: civil, environment)"),
        Problem("a.yaml", 9, "park-hours", "unknown department 'parks' (known: civil, environment)"),
        Problem(
            "b.yaml",
            2,
            "passport",
            "has no department: set 'department:' on the entry or at the top of the file",
        ),
    ]


def test_without_known_departments_any_department_is_accepted(faq: Path, write: Write) -> None:
    write("a.yaml", "department: anything\nentries:\n  - {id: a, questions: {en: [q]}, answer: {en: x}}\n")
    assert load_knowledge(faq).entries[0].department == "anything"


def test_unsafe_and_unknown_tags_are_refused(faq: Path, write: Write) -> None:
    write(
        "evil.yaml",
        """
        department: civil
        entries:
          - id: evil
            questions:
              en: !!python/object/apply:os.system ["touch /tmp/pwned"]
            answer: {en: !custom "x"}
          - id: fine
            questions: {en: ["Fine"]}
            answer: {en: "Yes"}
        """,
    )
    assert problems_of(faq) == [
        Problem(
            "evil.yaml",
            5,
            "evil",
            "YAML tag '!!python/object/apply:os.system' is not allowed: only plain values are",
        ),
        Problem("evil.yaml", 6, "evil", "YAML tag '!custom' is not allowed: only plain values are"),
    ]


def test_duplicate_keys_and_a_source_key_are_problems(faq: Path, write: Write) -> None:
    write(
        "a.yaml",
        """
        department: civil
        entries:
          - id: passport
            questions: {en: ["Passport"]}
            answer: {en: "First"}
            answer: {en: "Second"}
            source: elsewhere.yaml
        """,
    )
    assert problems_of(faq) == [
        Problem("a.yaml", 6, "passport", "duplicate key 'answer': already given at line 5"),
        Problem("a.yaml", 7, "passport", "source: is set by the loader and must not be in the file"),
    ]


def test_anchors_and_merge_keys_are_plain_yaml(faq: Path, write: Write) -> None:
    write(
        "a.yaml",
        """
        department: civil
        entries:
          - &base
            id: passport
            questions: {en: ["Passport"]}
            answer: {en: "District office."}
          - <<: *base
            id: passport-renewal
            questions: {en: ["Renew a passport"]}
        """,
    )
    base = load_knowledge(faq)
    renewal = base.get("passport-renewal")
    assert renewal is not None
    assert renewal.answer == {"en": "District office."}
    assert renewal.source == SourceRef("a.yaml", 7)


def test_all_problems_of_all_files_are_reported_at_once(faq: Path, write: Write) -> None:
    write("a.yaml", "entries: [\n")
    write(
        "b.yaml",
        """
        department: civil
        entries:
          - id: one
            questions: {en: ["One"]}
            answer: {en: ""}
        """,
    )
    write("c/d.yaml", "department: civil\nentries:\n  - id: one\n    questions: {en: [One]}\n")
    write("ok.yaml", "department: civil\nentries:\n  - {id: fine, questions: {en: [q]}, answer: {en: a}}\n")

    problems = problems_of(faq)

    assert [(problem.file, problem.line, problem.entry) for problem in problems] == [
        ("a.yaml", 2, None),
        ("b.yaml", 5, "one"),
        ("c/d.yaml", 3, "one"),
        ("c/d.yaml", 3, "one"),
    ]
    assert [problem.message for problem in problems[1:]] == [
        "answer.en: must not be empty",
        "answer: is required (at least one language) unless handoff is 'always'",
        "duplicate id: already used at b.yaml:3",
    ]


def test_an_id_inherited_through_a_merge_key_is_still_checked(faq: Path, write: Write) -> None:
    write(
        "a.yaml",
        """
        department: civil
        entries:
          - &base
            id: passport
            questions: {en: ["Passport"]}
            answer: {en: "District office."}
          - <<: *base
            questions: {en: ["Renew a passport"]}
          - !!set {not, an, entry}
        """,
    )
    assert problems_of(faq) == [
        Problem("a.yaml", 7, "passport", "duplicate id: already used at a.yaml:4"),
        Problem("a.yaml", 9, "#3", "expected an entry (a mapping with id, questions and answer)"),
    ]
