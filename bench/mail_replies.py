"""How well the citizen's own words are cut out of a reply: quoted mail and signatures removed.

Runs every sample in tests/channels/mail_samples/ (`<client>-<language>-<case>.eml` and the text a
person would keep, `.expected.txt`) through the whole text path the e-mail channel uses
(`parse_mail`: the MIME text part, then `channels/mail_quotes.reply_text`), and through
mail-parser-reply alone (`EmailReplyParser(languages=["ko", "en"]).parse_reply`, the library's
plain API) for comparison. A sample counts as cut right when the kept text equals the expected one
after joining whitespace. Prints the share right per client and the samples that are wrong.

    .venv/bin/python bench/mail_replies.py [--samples DIR] [--json FILE] [--show]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mailparser_reply import EmailReplyParser  # type: ignore[import-untyped]  # noqa: E402

from channels.mail_parsing import message_from_bytes, parse_mail  # noqa: E402

SAMPLES = ROOT / "tests" / "channels" / "mail_samples"


def normalized(text: str | None) -> str:
    return " ".join((text or "").split())


def samples(folder: Path) -> list[tuple[str, bytes, str]]:
    """(name, the mail, the expected kept text) for each sample, by name."""
    found = []
    for mail in sorted(folder.glob("*.eml")):
        expected = mail.with_suffix(".expected.txt").read_text(encoding="utf-8")
        found.append((mail.stem, mail.read_bytes(), expected))
    return found


def ours(raw: bytes) -> str:
    return parse_mail(raw, own_addresses=("help@city.example",), domain="city.example").text


def library_alone(raw: bytes) -> str:
    body = message_from_bytes(raw).get_body(preferencelist=("plain",))
    text = str(body.get_content()) if body is not None else ""
    return str(EmailReplyParser(languages=["ko", "en"]).parse_reply(text) or "")


def measure(folder: Path) -> dict[str, Any]:
    by_client: dict[str, dict[str, list[str]]] = defaultdict(lambda: {"ours": [], "library": [], "all": []})
    wrong: dict[str, dict[str, str]] = {}
    for name, raw, expected in samples(folder):
        client, language = name.split("-")[:2]
        for group in (client, f"({language})"):
            by_client[group]["all"].append(name)
        for label, cut in (("ours", ours), ("library", library_alone)):
            kept = cut(raw)
            if normalized(kept) == normalized(expected):
                by_client[client][label].append(name)
                by_client[f"({language})"][label].append(name)
            elif label == "ours":
                wrong[name] = {"expected": expected.strip(), "kept": kept.strip()}
    rows = {
        client: {"samples": len(r["all"]), "ours": len(r["ours"]), "library": len(r["library"])}
        for client, r in sorted(by_client.items())
    }
    clients = [row for name, row in rows.items() if not name.startswith("(")]
    return {
        "clients": rows,
        "total": {
            "samples": sum(r["samples"] for r in clients),
            "ours": sum(r["ours"] for r in clients),
            "library": sum(r["library"] for r in clients),
        },
        "wrong": wrong,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=Path, default=SAMPLES)
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--show", action="store_true", help="print what was kept of each wrong sample")
    args = parser.parse_args(argv)
    result = measure(args.samples)
    print(f"{'client':<12} {'samples':>7} {'ours':>10} {'library alone':>14}")
    for client, row in [*result["clients"].items(), ("all", result["total"])]:
        n, mine, theirs = row["samples"], row["ours"], row["library"]
        print(f"{client:<12} {n:>7} {mine:>4} ({mine / n:>4.0%}) {theirs:>6} ({theirs / n:>4.0%})")
    if result["wrong"]:
        print("\ncut wrong (ours):", ", ".join(result["wrong"]))
        if args.show:
            for name, texts in result["wrong"].items():
                print(f"\n--- {name}\nexpected: {texts['expected']!r}\nkept:     {texts['kept']!r}")
    if args.json:
        args.json.write_text(json.dumps(result, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
