"""Which department a text belongs to: an administrator's keyword rule, else the department of a
plausible FAQ entry, else the learned department model when it is sure enough, else the triage desk."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from knowledge import Match
from knowledge.keywords import KeywordRules
from router.config import DepartmentConfig


@dataclass(frozen=True)
class Route:
    department: str
    reason: str  # "keyword:<word>", "faq:<entry id>", "model:<department>:<confidence>" or "triage"


def department_rules(departments: Mapping[str, DepartmentConfig]) -> KeywordRules:
    """Each department's configured keywords, labelled with the department."""
    return KeywordRules(
        (name, keyword) for name, config in departments.items() for keyword in config.keywords
    )


def choose_department(
    text: str,
    matches: Sequence[Match],
    *,
    rules: KeywordRules,
    faq_threshold: float,
    triage: str,
    model: Callable[[str], tuple[str, float] | None] | None = None,
) -> Route:
    """`faq_threshold`: how likely the best FAQ match must be right for its department to take the
    text. `model`: the learned department model's verdict on a text, the department and its confidence
    when that is at or above the model's threshold (else None)."""
    keyword = rules.find(text)
    if keyword is not None:
        return Route(keyword[0], f"keyword:{keyword[1]}")
    if matches and matches[0].score >= faq_threshold and matches[0].entry.department:
        return Route(matches[0].entry.department, f"faq:{matches[0].entry.id}")
    learned = model(text) if model is not None else None
    if learned is not None:
        return Route(learned[0], f"model:{learned[0]}:{learned[1]:.2f}")
    return Route(triage, "triage")
