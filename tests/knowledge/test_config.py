from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from knowledge import KnowledgeConfig
from knowledge.calibration import Confidence


def test_defaults() -> None:
    config = KnowledgeConfig()
    assert config.path == Path("knowledge/faq")
    # No thresholds of its own: the default confidence model's shipped ones apply.
    assert (config.answer_threshold, config.suggest_threshold, config.reload_seconds) == (None, None, 2.0)
    shipped = Confidence.default()
    assert config.default_confidence() == shipped
    assert config.learning.enabled and config.learning.refit_at == "03:00"


def test_values_from_config_yaml() -> None:
    config = KnowledgeConfig.model_validate(
        {"path": "/srv/faq", "answer_threshold": 0.7, "reload_seconds": 0}
    )
    assert (config.path, config.answer_threshold, config.reload_seconds) == (Path("/srv/faq"), 0.7, 0.0)


@pytest.mark.parametrize(
    ("values", "loc"),
    [
        ({"answer_threshold": 1.5}, ("answer_threshold",)),
        ({"suggest_threshold": -0.1}, ("suggest_threshold",)),
        ({"reload_seconds": -1}, ("reload_seconds",)),
        ({"paths": "faq"}, ("paths",)),
    ],
)
def test_bad_values_name_their_key(values: dict[str, object], loc: tuple[str, ...]) -> None:
    with pytest.raises(ValidationError) as caught:
        KnowledgeConfig.model_validate(values)
    assert [error["loc"] for error in caught.value.errors()] == [loc]


def test_suggest_threshold_must_not_exceed_answer_threshold() -> None:
    with pytest.raises(ValidationError, match=r"suggest_threshold \(0\.6\) must not be greater than"):
        KnowledgeConfig(answer_threshold=0.5, suggest_threshold=0.6)
    assert KnowledgeConfig(answer_threshold=0.5, suggest_threshold=0.5).suggest_threshold == 0.5
