"""Log lines for machines: `--log-format json` (or INTAKE_LOG_FORMAT=json) writes one JSON object a
line with the time, level, logger and message and, where the code knows them, the channel, the
ticket reference and the outbox row (passed as `extra`). Never a citizen's words, name or address:
no log call passes them, and anything in a message that looks like a phone number or an e-mail
address (a provider's error can quote one) is masked here as a last guard.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

# The fields a log call may add with `extra={...}`; other extras are not written.
FIELDS = ("channel", "reference", "outbox_id", "outcome")
_PERSONAL = re.compile(
    r"\+?\d[\d -]{7,}\d"  # a phone number, spaced or not
    r"|[\w.+-]+@[\w-]+\.[\w.-]+"  # an e-mail address
)


def masked(text: str) -> str:
    return _PERSONAL.sub("[masked]", text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": masked(record.getMessage()),
        }
        for field in FIELDS:
            value = record.__dict__.get(field)
            if value is not None:
                line[field] = value
        if record.exc_info:
            line["exception"] = masked(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False)


def configure(level: str, log_format: str) -> None:
    """The root logger: plain lines for people, or JSON lines for machines."""
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
