"""The outbox dispatcher: sends queued rows through the channel adapters.

Rows are claimed (SKIP LOCKED on PostgreSQL, so several instances share the work) with a lease;
a sender that crashes mid-send leaves a lease that runs out, and the row is sent again after a
restart: delivery is at least once, and each message carries an idempotency key. Transient
failures are retried with exponential backoff and jitter, honouring a provider's Retry-After
(which also holds the channel's other sends) until the message is `give_up_after_hours` old; a
permanent failure, or giving up, marks the row failed and records it on the ticket.

Each channel has its own loop, so a slow provider (an SMS long code sends one segment a second)
never holds up another; its declared rate limits are kept overall and per recipient.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta

from channels.base import Channel, OutboundMessage, PermanentSendError, SendResult, TransientSendError
from router.config import DispatcherConfig
from router.ratelimit import Pacer, wait_all
from store import Database, Outbox, OutboxStatus, Session, data, utcnow
from store.group import GroupCommit

log = logging.getLogger("router.dispatcher")

CLAIM_SECONDS = 2.0  # a rate-limited channel claims what its rate sends in this long

FinalFailureHook = Callable[[Outbox, str], Awaitable[None]]
SentHook = Callable[[Outbox], Awaitable[None]]
# Fills a message in just before it is sent (a desk card shows the ticket as it is then).
PrepareHook = Callable[[OutboundMessage], Awaitable[OutboundMessage]]


class Dispatcher:
    def __init__(
        self,
        *,
        db: Database,
        channels: Mapping[str, Channel],
        config: DispatcherConfig,
        clock: Callable[[], datetime] = utcnow,
        on_final_failure: FinalFailureHook | None = None,
        on_sent: SentHook | None = None,
        prepare: PrepareHook | None = None,
        instance: str = "",
    ) -> None:
        self.db = db
        self.instance = instance  # names this process's claims (server.instance)
        self.channels = dict(channels)
        self.config = config
        self.clock = clock
        self.on_final_failure = on_final_failure
        self.on_sent = on_sent
        self.prepare = prepare
        # Outcomes recorded at the same moment share a transaction (store/group.py): a burst of
        # sends would otherwise queue one write transaction each behind the intakes.
        self._outcomes = GroupCommit(db)
        # For the operator's metrics: (channel, "sent" | "retried" | "failed") after each attempt.
        # ... and (channel, route) after a send the channel says went one of its several ways.
        self.observers: list[Callable[[str, str], None]] = []
        self.route_observers: list[Callable[[str, str], None]] = []
        self._wakes = {name: asyncio.Event() for name in self.channels}
        self._overall = {
            name: Pacer(ch.rate_limit.per_second) for name, ch in channels.items() if ch.rate_limit.per_second
        }
        self._per_recipient = {
            name: Pacer(ch.rate_limit.per_recipient_per_second)
            for name, ch in channels.items()
            if ch.rate_limit.per_recipient_per_second
        }

    def wake(self) -> None:
        """Look for work now (called after a commit that queued messages)."""
        for event in self._wakes.values():
            event.set()

    async def run(self) -> None:
        """Deliver until cancelled; a store outage pauses delivery, it does not end it."""
        await self.take_back_claims()
        async with asyncio.TaskGroup() as loops:
            for name in self.channels:
                loops.create_task(self._run_channel(name), name=f"dispatcher-{name}")

    async def _run_channel(self, name: str) -> None:
        wake = self._wakes[name]
        limits = self.channels[name].rate_limit
        paced = limits.per_second is not None or limits.per_recipient_per_second is not None
        while True:
            wake.clear()  # before claiming: a commit after this point wakes the wait below
            try:
                # A provider's limit is the account's, not one instance's: of several instances
                # only one sends on a rate-limited channel.
                if paced and not await self.db.lead(f"dispatch:{name}"):
                    delay = max(5.0, self.config.poll_seconds)
                elif await self._run_channel_once(name):
                    continue
                else:
                    delay = await self._idle_delay(name)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("dispatcher: %s: the store is not answering; trying again", name)
                delay = self.config.poll_seconds
            # asyncio.timeout, not wait_for: on 3.11 wait_for can turn a cancellation that races
            # its timeout into TimeoutError, which this loop would swallow and never stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await wake.wait()

    async def take_back_claims(self) -> None:
        """Rows this instance was sending when it last stopped are due now, not when their lease runs
        out: a restart after a crash sends its first replies within seconds."""
        if not self.instance:
            return
        try:
            async with self.db.transaction() as session:
                taken = await data.release_claims(session, claimed_by=self.instance, now=self.clock())
        except Exception:  # the store is not answering: their leases will run out instead
            log.exception("dispatcher: could not take back this instance's unfinished sends")
            return
        if taken:
            log.warning("dispatcher: %d message(s) were being sent when this instance stopped", taken)

    async def run_once(self) -> int:
        """Claim one batch of due rows per channel and deliver them; returns how many were claimed."""
        async with asyncio.TaskGroup() as group:
            counts = [group.create_task(self._run_channel_once(name)) for name in self.channels]
        return sum(task.result() for task in counts)

    def _claim_limit(self, name: str) -> int:
        """Rows to claim at once: a batch, or on a rate-limited channel what its rate lets go within
        `CLAIM_SECONDS`. A row claimed and still waiting for its turn is, after a crash, one whose
        fate is unknown (the provider is asked about it): claiming a long code's hour of texts at
        once would make a restart ask about all of them."""
        per_second = self.channels[name].rate_limit.per_second
        if per_second is None:
            return self.config.batch
        return max(1, min(self.config.batch, math.ceil(per_second * CLAIM_SECONDS)))

    async def _run_channel_once(self, name: str) -> int:
        lease = timedelta(seconds=self.config.lease_seconds)
        async with self.db.transaction() as session:
            # The clock is read once the transaction holds the lock: rows committed while it
            # waited are due too.
            rows = await data.claim_outbox(
                session,
                channels=[name],
                now=self.clock(),
                lease=lease,
                limit=self._claim_limit(name),
                claimed_by=self.instance,
            )
            stopped = await data.opted_out(session, channel=name, addresses={row.recipient for row in rows})
        claimed = len(rows)
        if not rows:
            return 0
        for row in [row for row in rows if row.recipient in stopped]:
            await self._fail(row, "permanent: the recipient opted out (STOP); nothing is sent until START")
        rows = [row for row in rows if row.recipient not in stopped]
        # One queue per recipient keeps each citizen's messages in order; recipients go in parallel.
        queues: dict[tuple[str, str], list[Outbox]] = defaultdict(list)
        for row in rows:
            queues[(row.channel, row.recipient)].append(row)
        async with self.db.session() as session:
            waiting = await data.waiting_outbox(session, channel=name, recipients={r.recipient for r in rows})
        limit = asyncio.Semaphore(self.config.concurrency)

        async def drain(queue: list[Outbox]) -> None:
            # An earlier message to this citizen waits for a retry: these wait behind it.
            earlier = waiting.get(queue[0].recipient)
            if earlier is not None and earlier[0] < (queue[0].id or 0):
                await self._put_back(queue, earlier[1])
                return
            for n, row in enumerate(queue):
                retry_at = await self._deliver(row, limit)
                if retry_at is not None:
                    await self._put_back(queue[n + 1 :], retry_at)
                    return

        # A TaskGroup, not gather: when the dispatcher is cancelled (shutdown) it waits for the
        # senders to unwind, so none is left mid-transaction after the store is closed.
        async with asyncio.TaskGroup() as senders:
            for queue in queues.values():
                senders.create_task(drain(queue))
        return claimed

    async def _idle_delay(self, name: str) -> float:
        async with self.db.session() as session:
            due = await data.next_outbox_time(session, channels=[name])
        if due is None:
            return self.config.poll_seconds
        return min(self.config.poll_seconds, max(0.0, (due - self.clock()).total_seconds()))

    async def _put_back(self, rows: list[Outbox], at: datetime) -> None:
        """Unclaim rows, due again at `at`, without counting this claim as an attempt."""
        if not rows:
            return

        async def unclaim(session: Session) -> None:
            for row in rows:
                await data.finish_outbox(
                    session,
                    outbox_id=row.id or 0,
                    attempt=row.attempts,
                    status=OutboxStatus.PENDING,
                    attempts=row.attempts - 1,
                    next_attempt_at=at,
                )

        await self._outcomes.run(unclaim)

    async def _deliver(self, row: Outbox, limit: asyncio.Semaphore) -> datetime | None:
        """Send one row; returns when it is due again if it was put back for a retry. `limit` bounds
        the calls to the provider at once; recording the outcome is outside it, so the outcomes of
        a whole batch share one transaction instead of queueing a few at a time behind intake."""
        channel = self.channels[row.channel]
        try:
            message = OutboundMessage.from_payload(row.payload)
        except (KeyError, TypeError, ValueError) as exc:  # no retry can make it readable
            await self._fail(row, f"permanent: the stored message cannot be read ({exc})")
            return None
        pacers = []
        if pacer := self._per_recipient.get(row.channel):
            pacers.append((pacer, row.recipient))
        if pacer := self._overall.get(row.channel):
            pacers.append((pacer, ""))
        cost = channel.send_cost(message)
        await wait_all(pacers, cost=cost)
        if not await self._still_ours(row):
            return None
        try:
            async with limit:
                if self.prepare is not None:
                    message = await self.prepare(message)
                result = await self._sent_already(channel, row, message) or await channel.send(message)
        except TransientSendError as exc:
            if exc.retry_after:
                # The provider asked everyone to wait: hold the channel's other sends too.
                for pacer, key in pacers:
                    pacer.hold(exc.retry_after, key)
            return await self._retry(row, str(exc), exc.retry_after)
        except PermanentSendError as exc:
            await self._fail(row, f"permanent: {exc}")
        except Exception as exc:  # an adapter bug or an unwrapped network error: retry, but say so
            log.exception("dispatcher: %s failed to send outbox row %s", row.channel, row.id)
            return await self._retry(row, f"{type(exc).__name__}: {exc}", None)
        else:
            sent_at = self.clock()
            await self._outcomes.run(
                lambda session: data.finish_outbox(
                    session,
                    outbox_id=row.id or 0,
                    attempt=row.attempts,
                    status=OutboxStatus.SENT,
                    sent_at=sent_at,
                    provider_message_id=result.provider_message_id,
                    last_error=None,
                )
            )
            channel.on_sent(message)
            self._observe(row.channel, "sent")
            if result.route is not None:
                for observer in self.route_observers:
                    observer(row.channel, result.route)
            if self.on_sent is not None:
                try:
                    await self.on_sent(row)
                except Exception:  # the message went out; a failed follow-up must not undo that
                    log.exception("dispatcher: after sending outbox row %s", row.id)
        finally:
            # A recipient's next send waits its interval from when this one was done, not from when
            # it left: the provider counts arrivals, and the time on the way varies.
            if pacer := self._per_recipient.get(row.channel):
                pacer.hold(pacer.interval * cost, row.recipient)
        return None

    async def _sent_already(
        self, channel: Channel, row: Outbox, message: OutboundMessage
    ) -> SendResult | None:
        """For a row whose earlier attempt may have reached the provider (its sender died before
        recording the outcome): the provider's record of it, where the provider can tell. Raises a
        `SendError` when it cannot be asked now (the row is retried, not sent blind)."""
        if row.unsure_since is None:
            return None
        if row.delivery_status is not None:
            # The provider reported on it already (a status callback carries our key): it arrived.
            log.warning(
                "dispatcher: %s row %s was sent before a crash (reported %s)",
                row.channel,
                row.id,
                row.delivery_status,
            )
            self._observe(row.channel, "found")
            return SendResult(provider_message_id=row.provider_message_id)
        if not channel.can_find_sent:
            return None
        try:
            # Each adapter allows for its provider's clock; a wider window would take an earlier
            # identical text (the same FAQ answer) for this one, and the citizen would miss it.
            found = await channel.find_sent(message, since=row.unsure_since)
        except PermanentSendError as exc:  # not allowed to look (a key without read access): send
            log.warning("dispatcher: %s cannot tell whether row %s was sent (%s)", row.channel, row.id, exc)
            return None
        log.warning(
            "dispatcher: %s row %s may have been sent before a crash: %s",
            row.channel,
            row.id,
            "the provider has it, not sending again" if found else "the provider does not have it; sending",
            extra={"channel": row.channel, "outbox_id": row.id},
        )
        if found is not None:
            self._observe(row.channel, "found")
        return found

    async def _still_ours(self, row: Outbox) -> bool:
        """Renew the claim's lease after a long wait for the rate limit, so no other sender takes
        the row meanwhile; False when it was taken already (then this sender leaves it)."""
        now = self.clock()
        lease = timedelta(seconds=self.config.lease_seconds)
        if row.claimed_until is None or row.claimed_until - now > lease / 2:
            return True
        renewed = await self._outcomes.run(
            lambda session: data.renew_outbox(
                session, outbox_id=row.id or 0, attempt=row.attempts, until=now + lease
            )
        )
        row.claimed_until = now + lease
        return renewed

    async def _retry(self, row: Outbox, error: str, retry_after: float | None) -> datetime | None:
        """Put the row back for another try, or fail it when it is too old; returns when it is due."""
        age = self.clock() - row.created_at
        if age > timedelta(hours=self.config.give_up_after_hours):
            await self._fail(row, f"gave up after {row.attempts} attempts over {age}: {error}")
            return None
        if row.attempts >= self.config.max_attempts:
            await self._fail(row, f"gave up after {row.attempts} attempts: {error}")
            return None
        backoff = min(self.config.backoff_max_seconds, self.config.backoff_seconds * 2 ** (row.attempts - 1))
        delay = max(backoff * random.uniform(0.5, 1.0), retry_after or 0.0)
        log.warning(
            "dispatcher: %s row %s attempt %s failed (%s); next try in %.1fs",
            row.channel,
            row.id,
            row.attempts,
            error,
            delay,
            extra={"channel": row.channel, "outbox_id": row.id},
        )
        due = self.clock() + timedelta(seconds=delay)
        await self._outcomes.run(
            lambda session: data.finish_outbox(
                session,
                outbox_id=row.id or 0,
                attempt=row.attempts,
                status=OutboxStatus.PENDING,
                next_attempt_at=due,
                last_error=error[:2000],
            )
        )
        self._observe(row.channel, "retried")
        return due

    def _observe(self, channel: str, result: str) -> None:
        for observer in self.observers:
            observer(channel, result)

    async def _fail(self, row: Outbox, error: str) -> None:
        log.error(
            "dispatcher: %s row %s failed for good: %s",
            row.channel,
            row.id,
            error,
            extra={"channel": row.channel, "outbox_id": row.id},
        )
        self._observe(row.channel, "failed")

        async def record(session: Session) -> None:
            finished = await data.finish_outbox(
                session,
                outbox_id=row.id or 0,
                attempt=row.attempts,
                status=OutboxStatus.FAILED,
                last_error=error[:2000],
            )
            if finished and row.ticket_id is not None:
                await data.add_event(
                    session,
                    ticket_id=row.ticket_id,
                    actor="system",
                    kind="delivery_failed",
                    at=self.clock(),
                    detail={
                        "outbox": row.id,
                        "channel": row.channel,
                        "attempts": row.attempts,
                        "error": error[:500],
                    },
                )

        await self._outcomes.run(record)
        if self.on_final_failure is not None:
            await self.on_final_failure(row, error)
