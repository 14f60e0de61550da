"""`bot.py tickets ...`: staff act on tickets from the command line, without Slack."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from bot import Bot, build
from router import Staff
from server.config import BotConfig
from store import data


async def run(config: BotConfig, base_dir: Path, args: argparse.Namespace) -> int:
    bot = await build(config, base_dir=base_dir, webchat=False, providers=False)
    zone = config.router.zone
    staff = Staff(id=f"cli:{args.staff}", name=args.staff)
    try:
        if args.action == "list":
            statuses = args.status.split(",") if args.status else None
            tickets = await bot.desk.list_tickets(
                statuses=statuses, department=args.department, limit=args.limit
            )
            print(f"{'REFERENCE':<12} {'STATUS':<12} {'DEPARTMENT':<12} {'DUE':<17} CREATED")
            for t in tickets:
                due = t.due_at.astimezone(zone).strftime("%Y-%m-%d %H:%M") if t.due_at else "-"
                created = t.created_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
                print(f"{t.reference:<12} {t.status:<12} {t.department or '-':<12} {due:<17} {created}")
            if not tickets:
                print("(no tickets)")
        elif args.action == "show":
            view = await bot.desk.show(args.reference)
            t = view.ticket
            print(
                f"Ticket {t.reference}  status {t.status}  department {t.department}  language {t.language}"
            )
            print(f"  from {view.contact.channel}:{view.contact.address}")
            if t.purged_at:
                print(
                    f"  texts and address purged {t.purged_at.astimezone(zone):%Y-%m-%d} (router.retention)"
                )
            print(
                f"  created {t.created_at.astimezone(zone):%Y-%m-%d %H:%M}"
                + (f"  due {t.due_at.astimezone(zone):%Y-%m-%d %H:%M}" if t.due_at else "")
            )
            print("Messages:")
            for m in view.messages:
                who = "citizen" if m.direction == "in" else (m.author_name or m.author)
                print(f"  {m.created_at.astimezone(zone):%m-%d %H:%M} {who}: {m.text}")
                for attachment in m.attachments:
                    print(
                        f"      attachment: {attachment.get('content_type') or 'file'}, "
                        f"`tickets media {attachment.get('media_id')}` saves it"
                    )
            print("Events:")
            for e in view.events:
                change = f" {e.from_status or ''}->{e.to_status}" if e.to_status else ""
                # Why it went where it did: a keyword, an FAQ entry, the department model, triage.
                reason = e.detail.get("reason") if e.to_status == "forwarded" else None
                who = (e.actor_name or e.actor) + (f" ({reason})" if reason else "")
                print(f"  {e.at.astimezone(zone):%m-%d %H:%M} {e.kind}{change} by {who}")
        elif args.action == "reply":
            ticket = await bot.desk.reply(args.reference, " ".join(args.text), staff=staff)
            print(f"Reply queued for {ticket.reference} ({ticket.channel}); status {ticket.status}.")
        elif args.action == "note":
            ticket = await bot.desk.note(args.reference, " ".join(args.text), staff=staff, public=args.public)
            where = "on its public status page" if args.public else "internal; the citizen does not see it"
            print(f"Note kept on {ticket.reference} ({where}).")
        elif args.action == "resolve":
            ticket = await bot.desk.resolve(args.reference, " ".join(args.text), staff=staff)
            print(f"Ticket {ticket.reference} resolved; the citizen is told on {ticket.channel}.")
        elif args.action == "claim":
            ticket = await bot.desk.claim(args.reference, staff=staff)
            print(f"Ticket {ticket.reference} is yours ({staff.name}); status {ticket.status}.")
        elif args.action == "reassign":
            ticket = await bot.desk.reassign(
                args.reference, args.department, reason=" ".join(args.reason), staff=staff
            )
            due = ticket.due_at.astimezone(zone).strftime("%Y-%m-%d %H:%M") if ticket.due_at else "-"
            print(f"Ticket {ticket.reference} now with {ticket.department}, due {due}; the citizen is told.")
        elif args.action == "reopen":
            ticket = await bot.desk.reopen(args.reference, reason=" ".join(args.reason), staff=staff)
            print(f"Ticket {ticket.reference} reopened with {ticket.department}; the citizen is told.")
        elif args.action == "review":
            await _review(bot, args, staff)
        elif args.action == "media":
            await _save_media(bot, args.media_id, Path(args.out) if args.out else None)
        # Deliver what this command queued when its channel lives here; otherwise the server does.
        await bot.dispatcher.run_once()
    except (LookupError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        await bot.db.close()
    return 0


async def _save_media(bot: Bot, media_id: int, out: Path | None) -> None:
    """A citizen's photo, as kept in the store, to a file (or stdout)."""
    async with bot.db.session() as session:
        media = await data.get_media(session, media_id=media_id)
    if media is None:
        raise LookupError(f"no attachment {media_id}")
    if media.data is None:
        raise LookupError(f"attachment {media_id} is {media.status}: {media.error or 'not fetched yet'}")
    if out is None:
        sys.stdout.buffer.write(media.data)
        sys.stdout.flush()
    else:
        await asyncio.to_thread(out.write_bytes, media.data)
        print(f"attachment {media_id} ({media.content_type}, {media.size} bytes) saved to {out}")


async def _review(bot: Bot, args: argparse.Namespace, staff: Staff) -> None:
    zone = bot.config.router.zone
    if args.review_action == "list":
        items = await bot.desk.review_queue()
        for item in items:
            due = item.ticket.due_at.astimezone(zone).strftime("%m-%d %H:%M") if item.ticket.due_at else "-"
            print(f"{item.ticket.reference}  due {due}  [{item.ticket.language}] {item.question}")
            for number, (entry, score) in enumerate(item.suggestions, start=1):
                answer = entry.answer_in(item.ticket.language)
                preview = (answer[1] if answer else "").replace("\n", " ")
                print(f"   {number}. {entry.id} ({score:.2f}): {preview[:90]}")
        if not items:
            print("(nothing waits for review)")
        return
    if args.review_action == "send":
        ticket = await bot.desk.send_review(args.reference, staff=staff, entry_id=args.entry)
    else:
        ticket = await bot.desk.send_review(args.reference, staff=staff, text=" ".join(args.text))
    print(f"Ticket {ticket.reference} answered ({ticket.faq_entry or 'edited answer'}); the citizen is told.")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tickets = sub.add_parser("tickets", help="act on tickets as staff, without Slack")
    tickets.add_argument(
        "--staff", default=os.environ.get("USER", "staff"), help="your name in the audit trail"
    )
    actions = tickets.add_subparsers(dest="action", required=True)
    ls = actions.add_parser("list", help="the newest tickets")
    ls.add_argument("--status", help="comma-separated statuses, e.g. forwarded,in_progress")
    ls.add_argument("--department")
    ls.add_argument("--limit", type=int, default=50)
    actions.add_parser("show", help="one ticket with its messages and history").add_argument("reference")
    reply = actions.add_parser("reply", help="answer the citizen on the ticket's channel")
    reply.add_argument("reference")
    reply.add_argument("text", nargs="+")
    note = actions.add_parser("note", help="keep a note on the ticket (internal, or --public)")
    note.add_argument("reference")
    note.add_argument("text", nargs="+")
    note.add_argument(
        "--public", action="store_true", help="show it on the ticket's public status page (/status/REFERENCE)"
    )
    resolve_cmd = actions.add_parser("resolve", help="mark resolved and tell the citizen")
    resolve_cmd.add_argument("reference")
    resolve_cmd.add_argument("text", nargs="*", default=[])
    actions.add_parser("claim", help="take a forwarded ticket: in progress, assigned to you").add_argument(
        "reference"
    )
    reassign = actions.add_parser("reassign", help="send to another department, with a reason")
    reassign.add_argument("reference")
    reassign.add_argument("department")
    reassign.add_argument("reason", nargs="+")
    reopen_cmd = actions.add_parser("reopen", help="put a resolved or answered ticket back, with a reason")
    reopen_cmd.add_argument("reference")
    reopen_cmd.add_argument("reason", nargs="+")
    media = actions.add_parser("media", help="save a citizen's photo (an attachment id from `show`)")
    media.add_argument("media_id", type=int)
    media.add_argument("--out", help="the file to write (default: standard output)")
    review = actions.add_parser("review", help="the same-day queue of likely FAQ answers")
    review_actions = review.add_subparsers(dest="review_action", required=True)
    review_actions.add_parser("list", help="questions waiting, with the suggested entries")
    send = review_actions.add_parser("send", help="send an entry's answer (the top suggestion by default)")
    send.add_argument("reference")
    send.add_argument("--entry", help="the FAQ entry id to send")
    edit = review_actions.add_parser("edit", help="send your own (edited) answer")
    edit.add_argument("reference")
    edit.add_argument("text", nargs="+")
