"""The public status pages' words per language (status_texts.yaml), which language a visitor gets,
and numbers and dates written the way each language writes them (Babel)."""

from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml
from babel.dates import format_skeleton
from babel.numbers import format_decimal, format_percent

TEXTS_FILE = Path(__file__).resolve().parent / "status_texts.yaml"


class StatusTextsError(ValueError):
    """A texts file that cannot be used; the message names the file and the text."""


@dataclass(frozen=True)
class StatusTexts:
    languages: dict[str, str]  # code -> the language's own name, in the switcher's order
    texts: dict[str, dict[str, str]]  # key -> language -> text
    channels: dict[str, dict[str, str]]  # channel -> language -> name

    @classmethod
    def load(cls, path: Path = TEXTS_FILE) -> StatusTexts:
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise StatusTextsError(f"{path}: {exc}") from exc
        if not isinstance(raw, dict) or not isinstance(raw.get("languages"), dict):
            raise StatusTextsError(f"{path}: expected `languages`, `texts` and `channels` mappings")
        languages = {str(k): str(v) for k, v in raw["languages"].items()}
        problems: list[str] = []
        sections: dict[str, dict[str, dict[str, str]]] = {}
        for section in ("texts", "channels"):
            entries = raw.get(section)
            if not isinstance(entries, dict) or not entries:
                problems.append(f"{path}: `{section}` is missing")
                continue
            sections[section] = {}
            for key, per_language in entries.items():
                if not isinstance(per_language, dict):
                    problems.append(f"{path}: {section}.{key}: expected a text per language")
                    continue
                for language in languages:
                    text = per_language.get(language)
                    if not isinstance(text, str) or not text.strip():
                        problems.append(f"{path}: {section}.{key}.{language}: missing or empty")
                    elif any(
                        field and not field.isidentifier()
                        for _, field, _, _ in string.Formatter().parse(text)
                    ):
                        problems.append(f"{path}: {section}.{key}.{language}: a bad placeholder")
                sections[section][str(key)] = {str(k): str(v) for k, v in per_language.items()}
        if problems:
            raise StatusTextsError("\n".join(problems))
        return cls(languages, sections["texts"], sections["channels"])

    def text(self, key: str, language: str, **values: object) -> str:
        return self.texts[key][language].format_map({k: str(v) for k, v in values.items()})

    def channel(self, name: str, language: str) -> str:
        return self.channels.get(name, {}).get(language, name)

    def choose(self, asked: str | None, accept_language: str | None, default: str) -> str | None:
        """The page's language: `asked` (?lang=) if given, else the first of ours that the
        Accept-Language header names (by q-value), else `default`. None: `asked` is not one of ours."""
        if asked is not None:
            return asked if asked in self.languages else None
        for tag in preferred_tags(accept_language or ""):
            primary = tag.split("-", 1)[0]
            if primary in self.languages:
                return primary
        return default if default in self.languages else next(iter(self.languages))


def preferred_tags(header: str) -> list[str]:
    """An Accept-Language header's language tags, most wanted first (q=0 means "not this one");
    equal q-values keep the header's order."""
    weighted: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, parameters = part.strip().partition(";")
        tag = tag.strip().lower()
        if not tag or tag == "*":
            continue
        quality = 1.0
        for parameter in parameters.split(";"):
            name, _, value = parameter.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0  # a malformed weight: the tag is not taken
        if quality > 0:
            weighted.append((-quality, position, tag))
    return [tag for _, _, tag in sorted(weighted)]


@dataclass(frozen=True)
class Formats:
    """Numbers and times in one language, times in the city's zone."""

    language: str
    zone: ZoneInfo

    def percent(self, share: float | None) -> str:
        return "–" if share is None else format_percent(share, format="#,##0%", locale=self.language)

    def decimal(self, number: float | None) -> str:
        return "–" if number is None else format_decimal(number, format="#,##0.0", locale=self.language)

    def day(self, when: datetime) -> str:
        """A month and day, e.g. '11월 16일' or 'Nov 16'."""
        return format_skeleton("MMMd", when, tzinfo=self.zone, locale=self.language)

    def moment(self, when: datetime) -> str:
        """A date with its year and a time, e.g. '2026년 11월 24일 (화) 10:00'."""
        date = format_skeleton("yMMMEd", when, tzinfo=self.zone, locale=self.language)
        return f"{date} {format_skeleton('Hm', when, tzinfo=self.zone, locale=self.language)}"
