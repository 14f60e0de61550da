"""Citizen notices: templates per language from YAML, dates written the way each language writes them."""

from __future__ import annotations

import string
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml
from babel.dates import format_skeleton

# Every notice the router sends, each needed in every language the file has.
NOTICES = (
    "received",  # a likely FAQ answer waits for a person's check today: {reference} {due}
    "answered_footer",  # appended to an automatic FAQ answer: how to reach a person instead
    "forwarded",  # {reference} {department} {due}
    "sensitive_received",  # a sensitive report, handled confidentially: {reference} {due}
    "joined",  # a later message added to an open ticket: {reference}
    "staff_reply",  # {reference} {department} {text}
    "claimed",  # a staff member took the ticket: {reference} {department} {due}
    "resolved",  # {reference} {text}, with the request for a 1-5 rating
    "rated",  # thanks for the rating; a comment may follow
    "comment_thanks",  # thanks for the comment
    "late",  # {reference} {due}: the new expected time
    "reopened",  # {reference} {department} {due}
    "status",  # {reference} {status} {due} {link} (the department is on the page: SMS stays short)
    "status_done",  # the same when answered, resolved or closed: {reference} {status} {department} {link}
    "status_unknown",  # {reference}: no such ticket of theirs
    "welcome",  # the first words to a new chat (Telegram's /start)
    "help",  # what the citizen can do here
    "help_sms",  # the same by SMS, with how to opt out (carriers require it)
    "opted_in",  # after START: texts will come again
    "public_reply",  # {reference}: the only public answer to a public message; the rest goes privately
)
_PLACEHOLDERS = {"reference", "department", "due", "text", "status", "link"}
# A ticket's status as a citizen reads it, per language (the `status_names` section of the file).
STATUSES = ("new", "answered", "review", "forwarded", "in_progress", "resolved", "reopened", "closed")
# Babel skeletons: each locale orders and names month, day and weekday its own way.
_DATE_SKELETON, _TIME_SKELETON = "MMMEd", "Hm"


class NoticeError(ValueError):
    """A notices file that cannot be used; the message names the file and the notice."""


class Notices:
    def __init__(
        self, templates: dict[str, dict[str, str]], zone: ZoneInfo, status_names: dict[str, dict[str, str]]
    ) -> None:
        self._templates = templates
        self._status_names = status_names
        self.zone = zone
        self.languages = frozenset(templates[NOTICES[0]])

    @classmethod
    def load(cls, path: Path, zone: ZoneInfo) -> Notices:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise NoticeError(f"{path}: {exc}") from exc
        if not isinstance(data, dict):
            raise NoticeError(f"{path}: expected a mapping of notice names to texts per language")
        problems: list[str] = []
        status_names = data.pop("status_names", None)
        for name in sorted(set(data) - set(NOTICES)):
            problems.append(f"{path}: unknown notice {name!r} (known: {', '.join(NOTICES)})")
        languages: set[str] = set()
        for name in NOTICES:
            texts = data.get(name)
            if not isinstance(texts, dict) or not texts:
                problems.append(f"{path}: notice {name!r} is missing")
                continue
            languages |= set(texts)
            for language, text in texts.items():
                if not isinstance(text, str) or not text.strip():
                    problems.append(f"{path}: {name}.{language}: must be a non-empty text")
                    continue
                unknown = {f for _, f, _, _ in string.Formatter().parse(text) if f} - _PLACEHOLDERS
                if unknown:
                    problems.append(
                        f"{path}: {name}.{language}: unknown placeholder {{{sorted(unknown)[0]}}}"
                    )
        for name in NOTICES:
            texts = data.get(name)
            if isinstance(texts, dict):
                for language in sorted(languages - set(texts)):
                    problems.append(f"{path}: notice {name!r} has no {language!r} text")
        if not isinstance(status_names, dict):
            problems.append(
                f"{path}: status_names is missing (each language's names for {', '.join(STATUSES)})"
            )
            status_names = {}
        for language in sorted(languages):
            names = status_names.get(language)
            missing = [status for status in STATUSES if not isinstance(names, dict) or not names.get(status)]
            if missing:
                problems.append(f"{path}: status_names.{language}: missing {', '.join(missing)}")
        if problems:
            raise NoticeError("\n".join(problems))
        return cls({name: dict(data[name]) for name in NOTICES}, zone, status_names)

    def language_for(self, language: str, default: str) -> str:
        return language if language in self.languages else default

    def render(self, name: str, language: str, **values: str) -> str:
        texts = self._templates[name]
        template = texts.get(language) or texts.get("en") or next(iter(texts.values()))
        if not values.get("link"):
            # The line that shows the ticket's public page goes where there is none (a sensitive ticket).
            template = "\n".join(line for line in template.split("\n") if "{link}" not in line)
        text = template.format_map({key: values.get(key, "") for key in _PLACEHOLDERS})
        # An empty placeholder ("resolved" without staff words) must not leave a double space.
        return " ".join(part for part in text.split(" ") if part).strip() if "  " in text else text.strip()

    def status_name(self, status: str, language: str) -> str:
        names = self._status_names.get(language) or self._status_names.get("en") or {}
        return str(names.get(status, status))

    def due(self, when: datetime, language: str) -> str:
        """A due time in the city's zone, e.g. '11월 24일 (화) 17:00' or 'Tue, Nov 24 17:00'."""
        locale = language.replace("-", "_")
        date = format_skeleton(_DATE_SKELETON, when, tzinfo=self.zone, locale=locale)
        return f"{date} {format_skeleton(_TIME_SKELETON, when, tzinfo=self.zone, locale=locale)}"
