"""`bot.py faq gaps`: what citizens ask that the FAQ does not answer, grouped (knowledge/gaps.py)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot import resolve
from commands.support import fail, open_store, parse_since
from knowledge import KnowledgeError, KnowledgeHolder, Matcher, detect_language
from knowledge.text import normalize
from store import data

if TYPE_CHECKING:
    from server.config import BotConfig


ACTIONS = frozenset({"gaps"})
# Forwards that the FAQ had nothing for: no entry came close (triage), or a keyword rule or the
# department model chose. A forward for an entry with handoff: always ("faq:<id>") is not a gap.
GAP_REASONS = ("triage", "keyword:", "model")


def add_actions(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    gaps = actions.add_parser(
        "gaps",
        help="questions the FAQ did not answer, grouped: candidates for new entries",
        description="The questions that were forwarded to a department without an FAQ entry, or sent to "
        "review, grouped by similarity, the largest groups first. Sensitive reports are never listed.",
    )
    gaps.add_argument("--since", help="from this date (YYYY-MM-DD; default: the last 90 days)")
    gaps.add_argument("--limit", type=int, default=20, help="how many groups (default: 20)")
    gaps.add_argument("--min-size", type=int, default=2, help="smallest group to list (default: 2)")
    gaps.add_argument(
        "--threshold", type=float, help="how similar the questions of a group are, 0-1 (default: 0.4)"
    )
    gaps.add_argument("--json", action="store_true", help="print one JSON object")


def run(config: BotConfig, base_dir: Path, args: argparse.Namespace) -> int:
    return asyncio.run(gaps_command(config, base_dir, args))


async def gaps_command(config: BotConfig, base_dir: Path, args: argparse.Namespace) -> int:
    # scikit-learn takes a second to import: only this command needs it.
    from knowledge.gaps import DEFAULT_THRESHOLD, group_texts

    started = time.perf_counter()
    try:
        since = parse_since(args.since, config.router.zone, default=timedelta(days=90))
    except ValueError as exc:
        return fail(str(exc))
    threshold = DEFAULT_THRESHOLD if args.threshold is None else args.threshold
    if not 0 < threshold <= 1:
        return fail(f"--threshold must be between 0 and 1, got {threshold}")
    db = await open_store(config, base_dir)
    try:
        async with db.session() as session:
            decisions = await data.first_decisions(session, statuses=("forwarded", "review"), since=since)
    finally:
        await db.close()
    asked = [
        decision
        for decision in decisions
        if decision.status == "review" or (decision.reason or "").startswith(GAP_REASONS)
    ]
    groups = await asyncio.to_thread(group_texts, [d.question for d in asked], threshold=threshold)
    listed = [group for group in groups if len(group) >= args.min_size][: max(args.limit, 0)]
    matcher = _matcher(config, base_dir)

    reports = []
    for group in listed:
        members = [asked[index] for index in group.members]
        representative = members[0]
        examples = _examples(members)
        outcomes = Counter("review" if m.status == "review" else "forwarded" for m in members)
        departments = Counter(m.department or "-" for m in members)
        reports.append(
            {
                "size": len(members),
                "representative": representative.question,
                "examples": examples,
                "forwarded": outcomes["forwarded"],
                "review": outcomes["review"],
                "departments": dict(departments.most_common()),
                "first": min(m.at for m in members).isoformat(),
                "last": max(m.at for m in members).isoformat(),
                "references": [m.reference for m in sorted(members, key=lambda m: m.at, reverse=True)[:10]],
                "best_entry": _best_entry(config, matcher, representative.question),
            }
        )
    grouped = sum(len(group) for group in groups if len(group) >= args.min_size)
    if args.json:
        result = {
            "since": since.isoformat() if since else None,
            "questions": len(asked),
            "groups": reports,
            "grouped": grouped,
            "seconds": round(time.perf_counter() - started, 2),
        }
        print(json.dumps(result, ensure_ascii=False))
        return 0
    _print_gaps(config, args, threshold, since, asked, reports, groups, time.perf_counter() - started)
    return 0


def _examples(members: Sequence[data.FirstDecision], count: int = 3) -> list[str]:
    """Other ways the group's question was put, from the closest to the representative to the
    farthest, so that the examples show how wide the group is."""
    seen = {normalize(members[0].question)}
    distinct = []
    for member in members[1:]:
        key = normalize(member.question)
        if key not in seen:
            seen.add(key)
            distinct.append(member.question)
    if len(distinct) <= count:
        return distinct
    step = (len(distinct) - 1) / (count - 1)
    return [distinct[round(i * step)] for i in range(count)]


def _matcher(config: BotConfig, base_dir: Path) -> Matcher | None:
    holder = KnowledgeHolder(
        resolve(base_dir, config.knowledge.path),
        known_departments=set(config.departments),
        default_confidence=config.knowledge.default_confidence(),
    )
    try:
        holder.load()
    except KnowledgeError as exc:
        print(
            f"the FAQ does not load ({len(exc.problems)} problem(s)): no best entries shown", file=sys.stderr
        )
        return None
    return holder.current[1]


def _best_entry(config: BotConfig, matcher: Matcher | None, question: str) -> dict[str, Any] | None:
    if matcher is None:
        return None
    language = detect_language(question, default=config.router.default_language)
    matches = matcher.match(question, language, limit=1)
    if not matches:
        return None
    top = matches[0]
    if top.entry.handoff != "auto":
        decision = "handoff"
    elif top.score >= matcher.confidence.answer_threshold:
        decision = "answer"
    elif top.score >= matcher.confidence.review_threshold:
        decision = "review"
    else:
        decision = "forward"
    return {"id": top.entry.id, "score": round(top.score, 3), "decision": decision}


def _print_gaps(
    config: BotConfig,
    args: argparse.Namespace,
    threshold: float,
    since: datetime | None,
    asked: Sequence[data.FirstDecision],
    reports: Sequence[dict[str, Any]],
    groups: Sequence[object],
    seconds: float,
) -> None:
    zone = config.router.zone
    when = f"since {since.astimezone(zone):%Y-%m-%d}" if since else "so far"
    review = sum(1 for d in asked if d.status == "review")
    print(
        f"{len(asked)} questions {when} were not answered by the FAQ: {len(asked) - review} forwarded to a "
        f"department, {review} sent to review (sensitive reports are never listed). "
        f"{len(groups)} groups at similarity {threshold:.2f} ({seconds:.1f} s)."
    )
    if not reports:
        print(f"(no group of {args.min_size} or more similar questions; --min-size 1 lists single ones)")
    verbs = {
        "answer": "would be answered now",
        "review": "would go to review",
        "handoff": "an entry that always goes to a person",
        "forward": "too far to suggest",
    }
    for number, report in enumerate(reports, start=1):
        departments = ", ".join(f"{name} {count}" for name, count in report["departments"].items())
        first = datetime.fromisoformat(report["first"]).astimezone(zone)
        last = datetime.fromisoformat(report["last"]).astimezone(zone)
        counts = f"forwarded {report['forwarded']}, review {report['review']}"
        print(
            f"\n{number:>2}. {report['size']} questions ({counts}) to {departments}; "
            f"{first:%Y-%m-%d} .. {last:%Y-%m-%d}"
        )
        print(f'    "{report["representative"]}"')
        for example in report["examples"]:
            print(f'      also "{example}"')
        best = report["best_entry"]
        if best is None:
            print("    best entry now: none shares a word with it")
        else:
            print(f"    best entry now: {best['id']} ({best['score']:.2f}, {verbs[best['decision']]})")
        more = ", ..." if report["size"] > len(report["references"]) else ""
        print(f"    tickets: {', '.join(report['references'])}{more}")


# --- shared -------------------------------------------------------------------------------------
