"""The FAQ knowledge base: entries as administrators write them, validated."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Literal, TypeGuard

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

_SLUG = re.compile(r"[a-z0-9][a-z0-9-]*")
# ISO 639-1/-2 code, optionally with a region ("zh-tw").
_LANGUAGE = re.compile(r"[a-z]{2,3}(-[a-z0-9]{2,8})?")


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _slug(value: str) -> str:
    if not _SLUG.fullmatch(value):
        raise ValueError(f"must be a lowercase slug of a-z, 0-9 and '-' (like 'bulky-waste'), got {value!r}")
    return value


def _language(value: str) -> str:
    if not _LANGUAGE.fullmatch(value):
        raise ValueError(f"must be a lowercase language code like 'ko', 'en' or 'zh-tw', got {value!r}")
    return value


def is_slug(value: object) -> TypeGuard[str]:
    """True for a string that is a valid entry id."""
    return isinstance(value, str) and _SLUG.fullmatch(value) is not None


NonBlank = Annotated[str, AfterValidator(_not_blank)]
Slug = Annotated[str, AfterValidator(_slug)]
Language = Annotated[str, AfterValidator(_language)]


@dataclass(frozen=True)
class SourceRef:
    """Where an entry was written: the file name relative to the FAQ folder and the 1-based line."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


class FaqEntry(BaseModel):
    """One question the city answers from the FAQ, in one or more languages."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Slug
    questions: dict[Language, Annotated[list[NonBlank], Field(min_length=1)]] = Field(min_length=1)
    # Declared before `answer` because fields are validated in order and the answer check needs it.
    handoff: Literal["auto", "always"] = "auto"
    answer: dict[Language, NonBlank] = Field(default_factory=dict, validate_default=True)
    keywords: list[NonBlank] = Field(default_factory=list)
    # Groups of words that mean the same here ([소파, 쇼파, 카우치]): a question written with one of
    # them also matches a text that uses another.
    synonyms: list[Annotated[list[NonBlank], Field(min_length=2)]] = Field(default_factory=list)
    department: NonBlank | None = None
    source: SourceRef

    @field_validator("answer")
    @classmethod
    def _answer_needed(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        # Only an entry that always goes to a person may come without an answer.
        # A handoff that failed its own validation is missing from info.data: that error is enough.
        if not value and info.data.get("handoff", "always") != "always":
            raise ValueError("is required (at least one language) unless handoff is 'always'")
        return value

    def answer_in(self, language: str, fallbacks: Sequence[str] = ("en", "ko")) -> tuple[str, str] | None:
        """The answer as (language used, text): the asked language, its base language ("zh" for
        "zh-tw"), the first fallback present, else any; None when the entry has no answer."""
        base = language.split("-", 1)[0]
        for candidate in (language, base, *fallbacks):
            text = self.answer.get(candidate)
            if text is not None:
                return candidate, text
        return next(iter(self.answer.items()), None)


@dataclass(frozen=True)
class KnowledgeBase:
    """A validated, immutable set of FAQ entries; a new one is built on every reload."""

    entries: tuple[FaqEntry, ...] = ()
    files: tuple[str, ...] = ()
    _by_id: dict[str, FaqEntry] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {entry.id: entry for entry in self.entries})

    def get(self, entry_id: str) -> FaqEntry | None:
        return self._by_id.get(entry_id)

    def __len__(self) -> int:
        return len(self.entries)
