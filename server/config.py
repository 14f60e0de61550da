"""The whole config.yaml as one typed model: each package owns its section's model, this module
assembles them, substitutes ${VAR}s from the environment and fails fast with the key path."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from channels.config import ChannelsConfig
from channels.open311_config import Open311Config
from knowledge import KnowledgeConfig
from router import DepartmentConfig, RouterConfig
from store import StoreConfig

ROOT = Path(__file__).resolve().parent.parent  # where config.yaml ships


class ServerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "0.0.0.0"
    port: int = Field(default=8080, ge=0, le=65535)
    public_url: str = "http://localhost:8080"
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Signs the links to citizens' photos that the staff desk shows (/media/ID); unset, a random one
    # is made at start-up, and links die with the process.
    media_secret: str = ""
    media_link_hours: float = Field(default=72.0, gt=0)
    # GET /metrics asks for `Authorization: Bearer <this>` when set (a ${VAR}); unset, it is open, for a
    # scraper on the same private network.
    metrics_token: str = ""
    # How old the store's gauges (outbox, open and overdue tickets) may be when scraped.
    metrics_cache_seconds: float = Field(default=5.0, ge=0)
    # Names this instance among those on one database: a restarted instance takes back at once the
    # messages it was sending when it stopped. Unset: this host's name and the port (set it where
    # the host name changes at each start, as in a container).
    instance: str = ""

    def instance_name(self) -> str:
        return self.instance or f"{socket.gethostname()}:{self.port}"


class BotConfig(BaseModel):
    """The whole config.yaml: each package owns its section's model."""

    model_config = ConfigDict(extra="forbid")

    server: ServerConfig = Field(default_factory=ServerConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    knowledge: KnowledgeConfig = Field(default_factory=KnowledgeConfig)
    channels: ChannelsConfig = Field(default_factory=ChannelsConfig)
    router: RouterConfig = Field(default_factory=RouterConfig)
    departments: dict[str, DepartmentConfig] = Field(min_length=1)
    open311: Open311Config = Field(default_factory=Open311Config)  # the public Open311 API

    @model_validator(mode="after")
    def _triage_exists(self) -> BotConfig:
        if self.router.triage_department not in self.departments:
            raise ValueError(
                f"router.triage_department {self.router.triage_department!r} is not one of the departments "
                f"({', '.join(self.departments)})"
            )
        restricted = self.router.sensitive.department
        if restricted is not None and restricted not in self.departments:
            raise ValueError(
                f"router.sensitive.department {restricted!r} is not one of the departments "
                f"({', '.join(self.departments)}): sensitive reports need a restricted inbox"
            )
        return self


class ConfigError(Exception):
    """A config that cannot run; the message names the file, the key path and the reason."""


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _substitute(value: Any, path: tuple[str, ...], missing: list[tuple[tuple[str, ...], str]]) -> Any:
    """Replace ${VAR} and ${VAR:-default} in every string, noting variables that are not set."""
    if isinstance(value, dict):
        return {k: _substitute(v, (*path, str(k)), missing) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, (*path, str(i)), missing) for i, v in enumerate(value)]
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            missing.append((path, name))
            return ""

        return _ENV.sub(replace, value)
    return value


def load_config(path: Path) -> BotConfig:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the config must be a mapping of sections")
    missing: list[tuple[tuple[str, ...], str]] = []
    try:
        config = BotConfig.model_validate(_substitute(raw, (), missing))
    except ValidationError as exc:
        lines = [
            f"{path}: {'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}" for e in exc.errors()
        ]
        # An unset variable is the likely cause of an error in its section: name it too.
        failing = {tuple(str(p) for p in e["loc"]) for e in exc.errors()}
        lines += [
            f"{path}: {'.'.join(key_path)}: environment variable {variable} is not set"
            for key_path, variable in missing
            if any(key_path[: len(loc)] == loc for loc in failing)
        ]
        raise ConfigError("\n".join(lines)) from None
    problems = []
    for key_path, variable in missing:
        # A secret of a disabled channel may stay unset; anything else in use may not.
        if key_path[:1] == ("channels",) and len(key_path) > 1:
            section = getattr(config.channels, key_path[1], None)
            if section is not None and not getattr(section, "enabled", True):
                continue
        problems.append(f"{path}: {'.'.join(key_path)}: environment variable {variable} is not set")
    if problems:
        raise ConfigError("\n".join(problems))
    return config


def config_path(argument: str | None) -> Path:
    return Path(argument or os.environ.get("INTAKE_CONFIG") or ROOT / "config.yaml").resolve()
