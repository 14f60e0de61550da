"""Make twilio_api_v2010.json here: the part of Twilio's OpenAPI description that tests/fakes/twilio.py uses.

    .venv/bin/python tests/fakes/specs/trim_twilio_spec.py SOURCE.json

SOURCE is twilio_api_v2010.json from https://github.com/twilio/twilio-oai (spec/json/, MIT licence,
see TWILIO-LICENSE.txt), wherever a maintainer has it. Only this script reads it, by hand: the tests
read the trimmed copy here.
Kept: `openapi`, `info`, `servers`, the paths below whole (the fake checks each request against its
operation there) and every component schema they or ROOT_SCHEMAS reach through
`$ref`, followed recursively. If the fake starts reading more of the spec, add it here and rerun.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TARGET = HERE / "twilio_api_v2010.json"

TOP_LEVEL = ("openapi", "info", "servers")
PATHS = ("/2010-04-01/Accounts/{AccountSid}/Messages.json",)  # twilio.MESSAGES_PATH
ROOT_SCHEMAS = ("api.v2010.account.message",)  # the message resource, read by tests/fakes/test_twilio.py
SCHEMA_REF = "#/components/schemas/"


def _refs(node: Any) -> list[str]:
    """Every `$ref` string anywhere inside `node`."""
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in _refs(item)]
    return []


def trim(source: dict[str, Any]) -> dict[str, Any]:
    paths = {path: source["paths"][path] for path in PATHS}
    schemas: dict[str, Any] = source["components"]["schemas"]
    kept: set[str] = set()
    pending = list(ROOT_SCHEMAS) + _refs(paths)
    while pending:
        ref = pending.pop()
        if ref.startswith("#/") and not ref.startswith(SCHEMA_REF):
            raise SystemExit(f"unexpected $ref {ref!r}: only {SCHEMA_REF}... is followed")
        name = ref.removeprefix(SCHEMA_REF)
        if name not in kept:
            kept.add(name)
            pending += _refs(schemas[name])
    trimmed = {key: source[key] for key in TOP_LEVEL if key in source}
    trimmed["paths"] = paths
    # In the source's order, so a rerun on a newer spec gives a readable diff.
    trimmed["components"] = {"schemas": {name: schemas[name] for name in schemas if name in kept}}
    return trimmed


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    source_path = Path(argv[1])
    source = json.loads(source_path.read_text(encoding="utf-8"))
    trimmed = trim(source)
    TARGET.write_text(
        json.dumps(trimmed, indent=1, ensure_ascii=False, sort_keys=False) + "\n", encoding="utf-8"
    )
    schemas = ", ".join(trimmed["components"]["schemas"])
    print(
        f"{TARGET}: {TARGET.stat().st_size} bytes; paths: {', '.join(trimmed['paths'])}; schemas: {schemas}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
