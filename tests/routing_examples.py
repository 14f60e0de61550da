"""Small synthetic complaints in Korean and English for the department model's tests (the real
Incheon benchmark lives in bench/routing.py). Each department has its own words; the phrasing
around them is shared by all departments. Some environment and housing complaints are about
subjects both handle (parks, parking), which the model cannot be sure of. None of the texts holds
a keyword rule of the shipped config or a question of the tests' FAQ."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

WORDS = {
    "transport": {
        "ko": ["버스", "택시", "지하철", "정류소", "노선", "배차", "운전기사", "환승"],
        "en": ["bus", "taxi", "subway", "route", "timetable", "driver", "fare", "transfer"],
    },
    "environment": {
        "ko": ["미세먼지", "하천", "오염", "분리수거", "재활용", "매립지", "대기", "폐수"],
        "en": ["dust", "river", "pollution", "recycling", "landfill", "air", "wastewater", "chemicals"],
    },
    "welfare": {
        "ko": ["기초연금", "아동수당", "장기요양", "한부모", "수급자", "바우처", "생계비", "보육료"],
        "en": ["pension", "allowance", "benefits", "voucher", "childcare", "subsidy", "seniors", "carer"],
    },
    "housing": {
        "ko": ["전세", "보증금", "임대주택", "집주인", "월세", "세입자", "재개발", "분양"],
        "en": ["rent", "deposit", "landlord", "tenant", "lease", "apartment", "redevelopment", "eviction"],
    },
}
SHARED = {"ko": ["공원", "주차장"], "en": ["park", "parking"]}
COMPLAINTS = {
    "ko": [
        "문제로 민원 드립니다",
        "관련해서 문의합니다",
        "때문에 너무 불편해요",
        "빨리 해결해 주세요",
        "어떻게 되는 건가요",
        "담당자와 통화하고 싶어요",
    ],
    "en": [
        "this is a real problem",
        "I have a question about it",
        "it makes life hard",
        "please sort it out",
        "what is going on",
        "I want to talk to someone",
    ],
}
PLACES = {
    "ko": ["중구", "연수동", "송도", "영종도", "신포동", "우리 동네"],
    "en": ["downtown", "near the station", "in Songdo", "on Yeongjong island", "in my neighbourhood"],
}


def examples(per_department: int = 20, *, shared: int = 2, seed: int = 5) -> list[tuple[str, str]]:
    """(text, department) pairs, half in Korean and half in English: a place, three of the
    department's words and a complaint. And, `shared` times for each of environment and housing,
    a complaint about each subject that both handle (different wordings, as many for each)."""
    rng = random.Random(seed)
    found = []
    for department, words in WORDS.items():
        for i in range(per_department):
            language = "ko" if i % 2 == 0 else "en"
            topic = rng.sample(words[language], 3)
            found.append(
                (
                    " ".join([rng.choice(PLACES[language]), *topic, rng.choice(COMPLAINTS[language])]),
                    department,
                )
            )
    for _ in range(shared):
        for department in ("environment", "housing"):
            for language, subjects in SHARED.items():
                for subject in subjects:
                    text = " ".join([rng.choice(PLACES[language]), subject, rng.choice(COMPLAINTS[language])])
                    found.append((text, department))
    return found


def mixed_in_time(pairs: list[tuple[str, str]], *, seed: int = 7) -> list[datetime]:
    """A moment for each pair, a day apart in a shuffled order: how a city's departments' complaints
    arrive (the helper's list runs department by department; the threshold is validated forward in
    time)."""
    slots = random.Random(seed).sample(range(len(pairs)), len(pairs))
    return [datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=slot) for slot in slots]
