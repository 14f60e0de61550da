"""The monthly report's words (report_texts.yaml) and its numbers, months and times, written the way
the report's language writes them (Babel)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from babel.core import Locale, UnknownLocaleError
from babel.dates import format_datetime, format_skeleton
from babel.numbers import format_decimal, format_percent

TEXTS_FILE = Path(__file__).resolve().parent / "report_texts.yaml"


@dataclass(frozen=True)
class ReportTexts:
    language: str
    texts: dict[str, dict[str, str]]

    @classmethod
    def load(cls, language: str, path: Path = TEXTS_FILE) -> ReportTexts:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: expected a mapping of keys to texts per language")
        missing = sorted(
            key for key, value in raw.items() if not isinstance(value, dict) or "en" not in value
        )
        if missing:
            raise ValueError(f"{path}: these keys have no `en` text: {', '.join(missing)}")
        try:
            Locale.parse(language)
        except (UnknownLocaleError, ValueError):
            language = "en"
        return cls(language, {str(k): {str(lang): str(t) for lang, t in v.items()} for k, v in raw.items()})

    def __call__(self, key: str, **fields: Any) -> str:
        per_language = self.texts[key]
        return per_language.get(self.language, per_language["en"]).format(**fields)

    def percent(self, value: float | None) -> str:
        return "–" if value is None else format_percent(value, format="#,##0.0%", locale=self.language)

    def number(self, value: float | None, digits: int = 1) -> str:
        if value is None:
            return "–"
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        return format_decimal(value, format=pattern, locale=self.language)

    def month(self, year: int, month: int) -> str:
        return format_skeleton("yMMMM", datetime(year, month, 1), locale=self.language)

    def moment(self, when: datetime) -> str:
        return format_datetime(when, format="medium", tzinfo=when.tzinfo, locale=self.language)


__all__ = ["TEXTS_FILE", "ReportTexts"]
