"""The `open311` section: what a city writes in config.yaml, and the mistakes refused at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

import bot as bot_module
from channels.open311 import Open311Channel
from channels.open311_config import Open311Config
from server.config import load_config
from tests.conftest import ROOT

SECTION = """
open311:
  enabled: true
  jurisdiction_id: city.example
  contact: "open311@city.example"
  services:
    - code: pothole
      name: {ko: 포트홀, en: Pothole}
      group: street
      department: transport
      keywords: [pothole, road]
    - code: illegal-dumping
      name: {ko: 쓰레기 무단투기, en: Illegal dumping}
      group: sanitation
      department: environment
      location_required: false
  clients:
    - name: civic-app
      api_key: "${OPEN311_API_KEY:-}"
"""


def with_section(tmp_path: Path, section: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text((ROOT / "config.yaml").read_text(encoding="utf-8") + section, encoding="utf-8")
    return path


def test_the_section_loads_and_a_client_without_a_key_cannot_post(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPEN311_API_KEY", raising=False)
    config = load_config(with_section(tmp_path, SECTION))
    assert [s.code for s in config.open311.services] == ["pothole", "illegal-dumping"]
    [channel] = [c for c in bot_module.provider_channels(config) if isinstance(c, Open311Channel)]
    assert channel.client_of("") is None  # the shipped config runs with no key: nobody may post
    monkeypatch.setenv("OPEN311_API_KEY", "a-long-enough-key-123")
    keyed = Open311Channel(load_config(with_section(tmp_path, SECTION)).open311)
    client = keyed.client_of("a-long-enough-key-123")
    assert client is not None and client.name == "civic-app"


def test_a_service_for_an_unknown_department_stops_the_start(tmp_path: Path) -> None:
    config = load_config(
        with_section(tmp_path, SECTION.replace("department: environment", "department: parks"))
    )
    with pytest.raises(ValueError, match=r"open311.services.1.department: 'parks' is not one of"):
        bot_module.provider_channels(config)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"services": [{"code": "other", "name": {"en": "x"}, "department": "triage"}]}, "kept for tickets"),
        ({"services": [{"code": "a b", "name": {"en": "x"}, "department": "triage"}]}, "service code is"),
        ({"services": [{"code": "a", "name": {}, "department": "triage"}]}, "at least 1 item"),
        ({"clients": [{"name": "app", "api_key": "short"}]}, "at least 16 characters"),
        (
            {"clients": [{"name": "a", "api_key": "k" * 20}, {"name": "b", "api_key": "k" * 20}]},
            "same api_key",
        ),
        ({"clients": [{"name": "a"}, {"name": "a"}]}, "same name"),
        ({"public_location_decimals": 9}, "less than or equal to 6"),
    ],
)
def test_mistakes_in_the_section_are_refused(change: dict[str, object], says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        Open311Config.model_validate(change)


def test_without_the_section_there_is_no_open311_channel() -> None:
    config = load_config(ROOT / "config.yaml").model_copy(update={"open311": Open311Config()})
    assert not any(isinstance(c, Open311Channel) for c in bot_module.provider_channels(config))
