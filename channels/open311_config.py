"""The `open311` section: the services an Open311 GeoReport v2 app may report, and the apps (clients)
allowed to post them, each with its API key."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_CODE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_CLIENT_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
# The service_code GET answers give a ticket that came in on another channel (or whose Open311
# details the retention period has taken): no configured service may use it.
OTHER_SERVICE = "other"
MIN_API_KEY_CHARS = 16


class Open311Service(BaseModel):
    """One service (request type): what GET services lists and where a report of it goes."""

    model_config = ConfigDict(extra="forbid")

    code: str
    name: dict[str, str] = Field(min_length=1)  # by language: {ko: 포트홀, en: Pothole}
    description: dict[str, str] = Field(default_factory=dict)  # by language, optional
    group: str | None = None
    department: str  # a key of `departments`: the report is forwarded there (checked at start-up)
    keywords: list[str] = Field(default_factory=list)
    # Whether a report needs a place: lat and long, address_string or address_id.
    location_required: bool = True

    @field_validator("code")
    @classmethod
    def _code(cls, value: str) -> str:
        if not _CODE.match(value):
            raise ValueError("a service code is 1-64 characters of A-Z a-z 0-9 _ . -")
        if value == OTHER_SERVICE:
            raise ValueError(f"the service code {OTHER_SERVICE!r} is kept for tickets of other channels")
        return value

    def text_in(self, texts: dict[str, str], language: str, default: str) -> str | None:
        for candidate in (language, default, "en", "ko"):
            if candidate in texts:
                return texts[candidate]
        return next(iter(texts.values()), None)


class Open311Client(BaseModel):
    """An app allowed to post reports. Its key comes from the environment (`${OPEN311_API_KEY}`);
    an empty key turns the client off (so the shipped config runs without one)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    api_key: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _CLIENT_NAME.match(value):
            raise ValueError("a client name is 1-64 characters of A-Z a-z 0-9 _ . -")
        return value

    @field_validator("api_key")
    @classmethod
    def _key(cls, value: str) -> str:
        if value and len(value) < MIN_API_KEY_CHARS:
            raise ValueError(f"an api_key needs at least {MIN_API_KEY_CHARS} characters")
        return value


class Open311Config(BaseModel):
    """The `open311` section (README, "Open311 GeoReport v2")."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    # Only needed where one endpoint serves several jurisdictions; a request naming another is 404.
    jurisdiction_id: str | None = None
    services: list[Open311Service] = Field(default_factory=list)
    clients: list[Open311Client] = Field(default_factory=list)
    # The same client posting the same request again within this time gets the same id back.
    dedupe_seconds: float = Field(default=60.0, ge=0)
    # Discovery's human-readable fields: how to reach the API's maintainers and get a key.
    contact: str = ""
    key_service: str = ""
    # Coordinates in GET answers are rounded to this many decimals (3: about 100 m), so a report can
    # be put on a map but does not point at a door; None leaves them out altogether.
    public_location_decimals: int | None = Field(default=3, ge=0, le=6)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    max_requests: int = Field(default=1000, ge=1, le=10_000)  # one GET requests answer at most
    # A report's media_url is copied into the store (as a citizen's photo on another channel is).
    max_media_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    media_timeout_seconds: float = Field(default=20.0, gt=0)
    # media_url on a private, loopback or link-local address is refused unless this is set (a key
    # holder must not make the city's server fetch from its own network).
    media_private_hosts: bool = False

    @model_validator(mode="after")
    def _unique(self) -> Open311Config:
        codes = [s.code for s in self.services]
        if len(set(codes)) != len(codes):
            raise ValueError("open311.services: two services have the same code")
        names = [c.name for c in self.clients]
        if len(set(names)) != len(names):
            raise ValueError("open311.clients: two clients have the same name")
        keys = [c.api_key for c in self.clients if c.api_key]
        if len(set(keys)) != len(keys):
            raise ValueError("open311.clients: two clients have the same api_key")
        return self

    def service(self, code: str) -> Open311Service | None:
        return next((s for s in self.services if s.code == code), None)
