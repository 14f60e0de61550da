"""Grouping the questions the FAQ did not answer."""

from __future__ import annotations

import itertools
import json

import pytest

from knowledge import load_knowledge
from knowledge.gaps import group_texts
from tests.conftest import ROOT

TEXTS = [
    "가로등이 고장났어요",  # 0
    "우리 집 앞 가로등이 고장났어요",  # 1
    "음식물 쓰레기 수거를 안 해가요",  # 2
    "가로등 고장 신고합니다",  # 3
    "The streetlight on my street is broken",  # 4
    "음식물쓰레기 수거 안 해 가요",  # 5
    "가로등이 고장났어요!!",  # 6: the same as 0 once normalised
    "streetlight broken near the school",  # 7
    "공원 벤치가 부서졌어요",  # 8
    "ㅋㅋ ?!",  # 9: nothing to group
    "음식물 쓰레기 수거가 안 됐어요",  # 10
]


def test_similar_questions_share_a_group_the_largest_first() -> None:
    groups = group_texts(TEXTS)
    assert [sorted(group.members) for group in groups] == [[0, 1, 3, 6], [2, 5, 10], [4, 7], [8]]
    lights = groups[0]
    # The representative is the most repeated text; its copy follows it, then the others by similarity.
    assert lights.members[:2] == (0, 6) and lights.similarities[:2] == (1.0, 1.0)
    assert list(lights.similarities) == sorted(lights.similarities, reverse=True)
    assert all(similarity >= 0.4 for group in groups for similarity in group.similarities)


def test_grouping_is_deterministic_and_a_higher_threshold_splits_more() -> None:
    first = group_texts(TEXTS)
    assert group_texts(list(TEXTS)) == first
    strict = group_texts(TEXTS, threshold=0.9)
    assert len(strict) > len(first) and sorted(strict[0].members) == [0, 6]
    with pytest.raises(ValueError, match="threshold"):
        group_texts(TEXTS, threshold=0)
    assert group_texts([]) == [] and group_texts(["?!", "ㅠㅠ"]) == []


def test_paraphrases_of_one_faq_entry_mostly_share_groups_and_others_mostly_do_not() -> None:
    """The shipped paraphrases are a hard case (each says it differently on purpose): a guard that
    the grouping keeps telling topics apart, not a tuning target."""
    base = load_knowledge(ROOT / "knowledge" / "faq")
    texts, labels = [], []
    for entry in base.entries:
        for questions in entry.questions.values():
            texts += questions
            labels += [entry.id] * len(questions)
    with (ROOT / "tests" / "data" / "faq_paraphrases.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            query = json.loads(line)
            if query["expect"]:
                texts.append(query["text"])
                labels.append(query["expect"])
    group_of = {member: number for number, group in enumerate(group_texts(texts)) for member in group.members}
    together = [
        labels[i] == labels[j]
        for i, j in itertools.combinations(range(len(texts)), 2)
        if group_of[i] == group_of[j]
    ]
    assert sum(together) / len(together) > 0.5  # most pairs put together are about the same entry
