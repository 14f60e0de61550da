"""config.yaml: environment references, defaults, and start-up errors that name the key path."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from router.notices import NoticeError, Notices
from server.config import ConfigError, load_config
from tests.conftest import ROOT

MINIMAL = """
departments:
  triage: {name: {ko: 민원총괄팀, en: Service Desk}}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_config_runs_without_any_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("INTAKE_DATABASE_URL", "INTAKE_PORT", "INTAKE_HOST", "INTAKE_PUBLIC_URL"):
        monkeypatch.delenv(variable, raising=False)
    config = load_config(ROOT / "config.yaml")
    assert config.store.url == "sqlite+aiosqlite:///data/intake.db"
    assert config.server.port == 8080 and config.channels.webchat.enabled
    assert set(config.departments) == {
        "transport",
        "environment",
        "welfare",
        "housing",
        "safety",
        "triage",
        "integrity",
    }
    assert config.router.sensitive.department == "integrity"


def test_environment_references_and_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITY_PORT", "9090")
    monkeypatch.delenv("CITY_HOST", raising=False)
    path = write(tmp_path, MINIMAL + "server: {port: '${CITY_PORT}', host: '${CITY_HOST:-127.0.0.1}'}\n")
    config = load_config(path)
    assert (config.server.port, config.server.host) == (9090, "127.0.0.1")


def test_a_missing_variable_is_named_with_its_key_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CITY_DB_URL", raising=False)
    path = write(tmp_path, MINIMAL + "store: {url: '${CITY_DB_URL}'}\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value) == f"{path}: store.url: environment variable CITY_DB_URL is not set"


def test_a_disabled_channel_may_leave_its_secrets_unset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("UNSET_SECRET", raising=False)
    path = write(
        tmp_path, MINIMAL + "channels: {webchat: {enabled: false, max_text_chars: '${UNSET_SECRET:-500}'}}\n"
    )
    assert load_config(path).channels.webchat.max_text_chars == 500


def test_the_shipped_provider_channels_are_off_until_their_variables_say_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for variable in (
        "TWILIO_ENABLED",
        "TELEGRAM_ENABLED",
        "X_ENABLED",
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
    ):
        monkeypatch.delenv(variable, raising=False)
    channels = load_config(ROOT / "config.yaml").channels
    assert not (channels.sms.enabled or channels.telegram.enabled or channels.x.enabled)
    assert (
        channels.sms.rate_limit.per_second == 1 and channels.telegram.rate_limit.per_recipient_per_second == 1
    )

    monkeypatch.setenv("TWILIO_ENABLED", "true")
    monkeypatch.setenv("TWILIO_FROM_NUMBER", "+15005550006")
    with pytest.raises(ConfigError) as error:
        load_config(ROOT / "config.yaml")
    # The section's own check and the unset variables behind it, by name.
    assert "channels.sms.account_sid: environment variable TWILIO_ACCOUNT_SID is not set" in str(error.value)
    assert "channels.sms.auth_token: environment variable TWILIO_AUTH_TOKEN is not set" in str(error.value)

    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC" + "0" * 32)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "secret")
    sms = load_config(ROOT / "config.yaml").channels.sms
    assert sms.enabled and sms.from_number == "+15005550006" and sms.api_base_url == "https://api.twilio.com"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("server: {port: lots}\n", "server.port: Input should be a valid integer"),
        (
            "channels: {webchat: {enabeld: true}}\n",
            "channels.webchat.enabeld: Extra inputs are not permitted",
        ),
        (
            "router: {timezone: Mars/Olympus}\n",
            "router.timezone: Value error, unknown time zone 'Mars/Olympus'",
        ),
        (
            "router: {triage_department: desk}\n",
            "router.triage_department 'desk' is not one of the departments",
        ),
        ("knowledge: {answer_threshold: 0.2, suggest_threshold: 0.5}\n", "must not be greater than"),
        ("departments: {x: {name: {}}}\n", "departments.x.name: Dictionary should have at least 1 item"),
    ],
)
def test_a_bad_value_fails_at_start_up_with_key_path_and_reason(
    tmp_path: Path, extra: str, message: str
) -> None:
    text = extra if extra.startswith("departments") else MINIMAL + extra
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")) as error:
        load_config(write(tmp_path, text))
    assert str(error.value).startswith(str(tmp_path / "config.yaml"))


def test_broken_yaml_and_a_missing_file_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "server: {port: [\n"))
    with pytest.raises(ConfigError, match="cannot read the config"):
        load_config(tmp_path / "nowhere.yaml")


def test_the_shipped_notices_cover_every_language_they_use() -> None:
    notices = Notices.load(ROOT / "router" / "notices.yaml", ZoneInfo("Asia/Seoul"))
    assert notices.languages >= {"ko", "en"}


def test_a_notice_missing_a_language_or_with_a_typo_stops_start_up(tmp_path: Path) -> None:
    shipped = (ROOT / "router" / "notices.yaml").read_text(encoding="utf-8")
    broken = shipped.replace('  vi: "Hồ sơ {reference}', '  vi: "Hồ sơ {referense}', 1)
    lines = broken.splitlines()
    joined = lines.index("joined:")
    del lines[joined + 2 : joined + 7]  # keep only the Korean text of `joined`
    path = tmp_path / "notices.yaml"
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(NoticeError) as error:
        Notices.load(path, ZoneInfo("Asia/Seoul"))
    problems = str(error.value).splitlines()
    assert any(p.startswith(f"{path}: ") and "vi: unknown placeholder {referense}" in p for p in problems)
    assert f"{path}: notice 'joined' has no 'en' text" in problems
