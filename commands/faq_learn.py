"""`bot.py faq learn | learned | forget | add-variant`: questions staff answered from the review queue
become questions of the entry they sent (in its YAML file); what was learned, and undoing it; one
question added by hand. The work itself is in knowledge/editor.py and the store."""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bot import resolve
from commands.support import fail, list_problems, open_store, parse_since
from knowledge import KnowledgeBase, KnowledgeError, detect_language, load_knowledge
from knowledge.editor import EditError, NewQuestion, add_questions, questions_like
from knowledge.learning import PERSONAL, describe_counts
from knowledge.text import normalize
from store import Database, data, utcnow

if TYPE_CHECKING:
    from server.config import BotConfig


ACTIONS = frozenset({"learn", "learned", "forget", "add-variant"})
LEARNED = "faq_learned"  # the ticket event that marks a question as learned


def add_actions(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    learn = actions.add_parser(
        "learn",
        help="add the questions staff answered from the review queue to the entries they sent",
        description="Questions that staff answered from the review queue with an FAQ entry's answer become "
        "questions of that entry, in the YAML file it lives in. The running bot reloads the files itself.",
    )
    learn.add_argument("--since", help="only answers sent since this date (YYYY-MM-DD, in the city's time)")
    learn.add_argument("--dry-run", action="store_true", help="show what would be added, write nothing")
    learn.add_argument(
        "--include-edited", action="store_true", help="also learn questions whose answer staff edited"
    )
    learn.add_argument("--max-chars", type=int, default=200, help="skip longer questions (default: 200)")
    learn.add_argument(
        "--staff", default=os.environ.get("USER", "staff"), help="your name in the audit trail"
    )

    learned = actions.add_parser(
        "learned",
        help="what the FAQ learned from staff: the learned questions and the labels, by kind",
        description="The questions learned from review items staff sent with an entry (kept in the store, "
        "not in the YAML files, until `faq learn` writes them there), and how many labels of each kind "
        "the thresholds are refitted from.",
    )
    learned.add_argument("--since", help="learned since this date (YYYY-MM-DD, in the city's time)")
    learned.add_argument("--all", action="store_true", help="every label, not only the learned questions")
    forget = actions.add_parser(
        "forget",
        help="undo what was learned: the labels (and learned questions) with these ids",
        description="Forget labels by id (`faq learned` lists them): a learned question is no longer "
        "a question of its entry, and the label no longer counts when the thresholds are refitted.",
    )
    forget.add_argument("ids", nargs="+", type=int, metavar="ID")

    variant = actions.add_parser(
        "add-variant",
        help="add one question to an entry",
        description="Add a way of asking to an FAQ entry, in the YAML file it lives in.",
    )
    variant.add_argument("entry", help="the entry's id")
    variant.add_argument("text", nargs="+", help="the question")
    variant.add_argument("--language", help="its language (default: detected from the text)")


def run(config: BotConfig, base_dir: Path, args: argparse.Namespace) -> int:
    if args.action == "add-variant":
        return add_variant_command(config, base_dir, args)
    if args.action == "learn":
        if config.knowledge.learning.enabled:
            return asyncio.run(fold_learned_command(config, base_dir, args))
        return asyncio.run(learn_command(config, base_dir, args))
    if args.action == "learned":
        return asyncio.run(learned_command(config, base_dir, args))
    return asyncio.run(forget_command(config, base_dir, args))


@dataclass
class Addition:
    question: NewQuestion
    tickets: list[tuple[int, str]] = field(default_factory=list)  # (id, reference)


@dataclass
class LearningPlan:
    additions: list[Addition] = field(default_factory=list)
    known: list[tuple[int, str, str]] = field(default_factory=list)  # already a question: id, ref, entry
    skipped: dict[str, list[str]] = field(default_factory=dict)  # reason -> references
    learned_before: int = 0

    def skip(self, reason: str, reference: str) -> None:
        self.skipped.setdefault(reason, []).append(reference)


def plan_learning(
    answers: Sequence[data.ReviewAnswer],
    base: KnowledgeBase,
    *,
    default_language: str,
    include_edited: bool = False,
    max_chars: int = 200,
) -> LearningPlan:
    """Which question goes to which entry, and why the others do not."""
    plan = LearningPlan()
    planned: dict[tuple[str, str], Addition] = {}
    for answer in answers:
        text = " ".join(answer.question.split())
        if answer.learned:
            plan.learned_before += 1
        elif answer.entry is None:
            plan.skip("answered in staff's own words, with no entry", answer.reference)
        elif answer.edited and not include_edited:
            plan.skip("an edited answer (--include-edited learns these too)", answer.reference)
        elif base.get(answer.entry) is None:
            plan.skip(f"entry {answer.entry} is no longer in the FAQ", answer.reference)
        elif not normalize(text):
            plan.skip("no text (a photo or location only)", answer.reference)
        elif len(text) > max_chars:
            plan.skip(f"longer than {max_chars} characters (--max-chars)", answer.reference)
        elif PERSONAL.search(text):
            plan.skip("looks like personal data (a phone number, e-mail or ID number)", answer.reference)
        else:
            owners = {entry.id for entry, _ in questions_like(base, text)}
            if answer.entry in owners:
                plan.known.append((answer.ticket_id, answer.reference, answer.entry))
            elif owners:
                plan.skip(f"already a question of {', '.join(sorted(owners))}", answer.reference)
            else:
                key = (answer.entry, normalize(text))
                addition = planned.get(key)
                if addition is None:
                    language = detect_language(text, default=default_language)
                    addition = planned[key] = Addition(NewQuestion(answer.entry, language, text))
                    plan.additions.append(addition)
                addition.tickets.append((answer.ticket_id, answer.reference))
    return plan


def _faq_to_learn_into(
    config: BotConfig, base_dir: Path, args: argparse.Namespace
) -> tuple[Path, set[str], datetime | None, KnowledgeBase] | int:
    """The FAQ folder, its departments, --since and the base as the files have it; or the exit
    status of a bad --since or a broken FAQ (said on stderr)."""
    folder = resolve(base_dir, config.knowledge.path)
    known = set(config.departments)
    try:
        since = parse_since(args.since, config.router.zone, default=None)
        base = load_knowledge(folder, known_departments=known)
    except ValueError as exc:
        return fail(str(exc))
    except KnowledgeError as exc:
        return list_problems(
            f"{folder}: fix the FAQ first; it has {len(exc.problems)} problem(s):", exc.problems
        )
    return folder, known, since, base


async def learn_command(config: BotConfig, base_dir: Path, args: argparse.Namespace) -> int:
    loaded = _faq_to_learn_into(config, base_dir, args)
    if isinstance(loaded, int):
        return loaded
    folder, known, since, base = loaded
    db = await open_store(config, base_dir)
    try:
        async with db.session() as session:
            answers = await data.review_answers(session, since=since, learned_kind=LEARNED)
        plan = plan_learning(
            answers,
            base,
            default_language=config.router.default_language,
            include_edited=args.include_edited,
            max_chars=args.max_chars,
        )
        period = f" since {args.since}" if args.since else ""
        print(f"{len(answers)} questions answered from the review queue{period}.")
        for addition in plan.additions:
            q = addition.question
            refs = ", ".join(reference for _, reference in addition.tickets)
            print(f'  + {q.entry_id} [{q.language}] "{q.text}" ({refs})')
        if plan.known:
            print(f"  {len(plan.known)} already among their entry's questions")
        if plan.learned_before:
            print(f"  {plan.learned_before} learned before")
        for reason, references in plan.skipped.items():
            shown = ", ".join(references[:10]) + (", ..." if len(references) > 10 else "")
            print(f"  {len(references)} not learned, {reason}: {shown}")
        if args.dry_run:
            print("Dry run: nothing was written.")
            return 0
        changed: list[str] = []
        if plan.additions:
            try:
                changed = await asyncio.to_thread(
                    add_questions, folder, [a.question for a in plan.additions], known_departments=known
                )
            except (EditError, KnowledgeError) as exc:
                return fail(f"nothing was written: {exc}")
        await _mark_learned(db, plan, args.staff, base)
        if plan.additions:
            entries = len({a.question.entry_id for a in plan.additions})
            print(
                f"Added {len(plan.additions)} questions to {entries} entries in {', '.join(changed)}; "
                "the running bot reloads the FAQ by itself."
            )
        else:
            print("Nothing new to add.")
        return 0
    finally:
        await db.close()


async def fold_learned_command(config: BotConfig, base_dir: Path, args: argparse.Namespace) -> int:
    """`faq learn` with knowledge.learning on: the learned questions in the store go into the YAML
    files (layout kept), and are marked as folded there."""
    loaded = _faq_to_learn_into(config, base_dir, args)
    if isinstance(loaded, int):
        return loaded
    folder, known, since, base = loaded
    db = await open_store(config, base_dir)
    try:
        async with db.session() as session:
            rows = await data.faq_labels(session, since=since, variants_only=True)
        additions: list[NewQuestion] = []
        folded: list[int] = []
        skipped: dict[str, list[int]] = {}
        planned: set[tuple[str, str]] = set()
        for row in rows:
            key = (row.entry_id, normalize(row.text))
            if base.get(row.entry_id) is None:
                skipped.setdefault(f"entry {row.entry_id} is no longer in the FAQ", []).append(row.id or 0)
            elif len(row.text) > args.max_chars:
                skipped.setdefault(f"longer than {args.max_chars} characters", []).append(row.id or 0)
            elif key in planned or any(e.id == row.entry_id for e, _ in questions_like(base, row.text)):
                folded.append(row.id or 0)  # the files have it already
            else:
                planned.add(key)
                additions.append(NewQuestion(row.entry_id, row.language, row.text))
                folded.append(row.id or 0)
                print(f'  + {row.entry_id} [{row.language}] "{row.text}" (label {row.id})')
        for reason, ids in skipped.items():
            print(f"  {len(ids)} not written, {reason}: labels {', '.join(map(str, ids[:10]))}")
        if args.dry_run:
            print(f"Dry run: {len(additions)} questions would be written; nothing was.")
            return 0
        changed: list[str] = []
        if additions:
            try:
                changed = await asyncio.to_thread(add_questions, folder, additions, known_departments=known)
            except (EditError, KnowledgeError) as exc:
                return fail(f"nothing was written: {exc}")
        async with db.transaction() as session:
            await data.mark_faq_labels(session, label_ids=folded, folded_at=utcnow())
        if additions:
            print(
                f"Wrote {len(additions)} learned questions into {', '.join(changed)}; "
                "the running bot reloads the FAQ by itself."
            )
        else:
            print("Nothing new to write.")
        return 0
    finally:
        await db.close()


async def learned_command(config: BotConfig, base_dir: Path, args: argparse.Namespace) -> int:
    try:
        since = parse_since(args.since, config.router.zone, default=None)
    except ValueError as exc:
        return fail(str(exc))
    db = await open_store(config, base_dir)
    try:
        async with db.session() as session:
            rows = await data.faq_labels(session, since=since, variants_only=not args.all)
            counts = await data.count_faq_labels(session)
            fit = await data.latest_faq_fit(session)
    finally:
        await db.close()
    zone = config.router.zone
    for row in rows:
        when = row.created_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        what = "question" if row.variant else row.kind
        print(f'{row.id:>6}  {when}  {what:<12} {row.entry_id:<28} [{row.language}] "{row.text}"')
    if not rows:
        print("(nothing learned)" if not args.all else "(no labels)")
    print(f"labels in use: {describe_counts(counts)}")
    if fit is not None and fit.confidence:
        when = fit.fitted_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        print(f"thresholds last refitted {when} from {fit.labels} labels")
    elif fit is not None:
        print(f"last refit attempt {fit.fitted_at.astimezone(zone):%Y-%m-%d %H:%M}: too few labels yet")
    return 0


async def forget_command(config: BotConfig, base_dir: Path, args: argparse.Namespace) -> int:
    db = await open_store(config, base_dir)
    try:
        async with db.transaction() as session:
            found = [await data.get_faq_label(session, label_id=i) for i in args.ids]
            missing = [i for i, row in zip(args.ids, found, strict=True) if row is None or row.forgotten_at]
            if missing:
                return fail(f"no label {', '.join(map(str, missing))} to forget (see `faq learned --all`)")
            await data.mark_faq_labels(session, label_ids=args.ids, forgotten_at=utcnow())
    finally:
        await db.close()
    folded = [row.id for row in found if row is not None and row.folded_at is not None]
    print(f"Forgot {len(args.ids)} label(s); running bots stop using them within a few seconds.")
    if folded:
        listed = ", ".join(map(str, folded))
        print(f"Labels {listed} were written into the YAML files by `faq learn`: remove them there too.")
    return 0


async def _mark_learned(db: Database, plan: LearningPlan, staff: str, base: KnowledgeBase) -> None:
    """An audit event on every ticket whose question is now among its entry's: it is not looked at again."""
    now = utcnow()
    async with db.transaction() as session:
        for addition in plan.additions:
            q = addition.question
            file = _file_of(base, q.entry_id)
            for ticket_id, _reference in addition.tickets:
                await data.add_event(
                    session,
                    ticket_id=ticket_id,
                    actor=f"staff:cli:{staff}",
                    actor_name=staff,
                    kind=LEARNED,
                    detail={"entry": q.entry_id, "language": q.language, "question": q.text, "file": file},
                    at=now,
                )
        for ticket_id, _reference, entry_id in plan.known:
            await data.add_event(
                session,
                ticket_id=ticket_id,
                actor=f"staff:cli:{staff}",
                actor_name=staff,
                kind=LEARNED,
                detail={"entry": entry_id, "already": True},
                at=now,
            )


def _file_of(base: KnowledgeBase, entry_id: str) -> str | None:
    entry = base.get(entry_id)
    return entry.source.file if entry else None


def add_variant_command(config: BotConfig, base_dir: Path, args: argparse.Namespace) -> int:
    folder = resolve(base_dir, config.knowledge.path)
    known = set(config.departments)
    text = " ".join(" ".join(args.text).split())
    if not normalize(text):
        return fail("the question needs some words")
    try:
        base = load_knowledge(folder, known_departments=known)
    except KnowledgeError as exc:
        return list_problems(
            f"{folder}: fix the FAQ first; it has {len(exc.problems)} problem(s):", exc.problems
        )
    entry = base.get(args.entry)
    if entry is None:
        return fail(f"no FAQ entry {args.entry!r}")
    language = args.language or detect_language(text, default=config.router.default_language)
    owners = questions_like(base, text)
    if any(owner.id == entry.id for owner, _ in owners):
        language_had = next(lang for owner, lang in owners if owner.id == entry.id)
        print(f'"{text}" is already a question of {entry.id} [{language_had}]; nothing to add.')
        return 0
    if owners:
        others = ", ".join(sorted({owner.id for owner, _ in owners}))
        return fail(f'"{text}" is already a question of {others}: a question belongs to one entry')
    try:
        (changed,) = add_questions(folder, [NewQuestion(entry.id, language, text)], known_departments=known)
    except (EditError, KnowledgeError) as exc:
        return fail(f"nothing was written: {exc}")
    print(
        f'Added "{text}" to {entry.id} [{language}] in {changed}; the running bot reloads the FAQ by itself.'
    )
    return 0


# --- faq gaps -----------------------------------------------------------------------------------
