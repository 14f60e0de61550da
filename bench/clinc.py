"""CLINC150 as a knowledge base: how often the matcher answers, how often rightly, and how often it
answers what it should not (the out-of-scope queries).

Each of the 150 intents becomes an FAQ entry whose question variants are its 100 training utterances.
The confidence model and thresholds are calibrated on the validation sets (3,000 in-scope and 100
out-of-scope queries), with out-of-scope texts weighted to the test set's share (1,000 of 5,500), the
real rate this benchmark measures at; then the test sets (4,500 + 1,000) are evaluated.

    .venv/bin/python bench/clinc.py [--data PATH] [--target-precision 0.98] [--json FILE]

The FAQ is written as YAML files into a temp folder and loaded with the same loader, calibration and
evaluation as `faq calibrate` and `faq eval` use.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from knowledge import load_knowledge  # noqa: E402
from knowledge.calibration import Confidence  # noqa: E402
from knowledge.evaluate import LabelledQuery, calibrate_queries, evaluate  # noqa: E402
from knowledge.matcher import Matcher  # noqa: E402

DATA = ROOT.parent / "shared" / "datasets" / "clinc150" / "data_full.json"


def write_faq(data: dict[str, list[list[str]]], folder: Path) -> None:
    intents: dict[str, list[str]] = {}
    for text, intent in data["train"]:
        intents.setdefault(intent, []).append(text)
    entries = [
        {
            "id": intent.replace("_", "-"),
            "questions": {"en": texts},
            # The same answer for every intent: an answer naming the intent would give the label away.
            "answer": {"en": "An answer from the city."},
        }
        for intent, texts in sorted(intents.items())
    ]
    document = {"department": "triage", "entries": entries}
    (folder / "clinc.yaml").write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")


def queries(data: dict[str, list[list[str]]], *names: str) -> list[LabelledQuery]:
    found = []
    for name in names:
        for line, (text, intent) in enumerate(data[name], start=1):
            expect = None if intent == "oos" else intent.replace("_", "-")
            found.append(LabelledQuery(text=text, expect=expect, line=line))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--target-precision", type=float, default=0.98)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    data = json.loads(args.data.read_text(encoding="utf-8"))
    test = queries(data, "test", "oos_test")
    test_rate = sum(q.expect is None for q in test) / len(test)

    with tempfile.TemporaryDirectory() as folder:
        write_faq(data, Path(folder))
        started = time.perf_counter()
        base = load_knowledge(Path(folder))
        matcher = Matcher(base)
        built = time.perf_counter() - started

    started = time.perf_counter()
    confidence = calibrate_queries(
        matcher,
        queries(data, "val", "oos_val"),
        target_precision=args.target_precision,
        out_of_scope_rate=test_rate,
        queries_file="clinc150 val + oos_val",
        default_language="en",
    )
    calibrated = time.perf_counter() - started
    matcher.confidence = confidence
    started = time.perf_counter()
    result = evaluate(matcher, test, default_language="en")
    evaluated = time.perf_counter() - started
    report = {
        "entries": len(base),
        "variants": sum(len(q) for e in base.entries for q in e.questions.values()),
        "build_seconds": round(built, 2),
        "calibrate_seconds": round(calibrated, 2),
        "test_queries_per_second": round(len(test) / evaluated, 1),
        "out_of_scope_rate": round(test_rate, 4),
        "answer_threshold": confidence.answer_threshold,
        "review_threshold": confidence.review_threshold,
        "expected_on_validation": _expected(confidence),
        "test": result.as_dict(),
    }
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


def _expected(confidence: Confidence) -> dict[str, float] | None:
    if confidence.report is None:
        return None
    r = confidence.report
    return {
        "precision": r.precision,
        "coverage": r.coverage,
        "out_of_scope_answered": r.out_of_scope_answered,
    }


if __name__ == "__main__":
    sys.exit(main())
