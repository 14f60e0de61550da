"""Learning from staff, day by day (knowledge/learning.py has the rules): staff decisions become
labels in the store, in the transaction of the decision itself; every instance keeps its knowledge
holder in step with the store's learned variants and refitted thresholds; and once a night (at
`knowledge.learning.refit_at`, the city's time) the thresholds are refitted from all the labels.

Where the labels come from:
- desk.send_review with an entry's answer          -> positive (and a learned variant, unless near
                                                      a question the entry has, or personal, or long)
- desk.send_review in staff's own words            -> out_of_scope for the suggested entry
- "0" after an automatic answer (intake.to_person) -> negative for the entry that answered
- an automatic answer closed by the sweep           -> accepted (no "0" came in the reopen window)
A ticket keeps one label, its latest decision: a "0" after a confirmed answer replaces the positive.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, time, timedelta

from knowledge import KnowledgeHolder, detect_language
from knowledge.calibration import Confidence
from knowledge.config import LearningConfig
from knowledge.decision import SensitiveRule
from knowledge.learning import (
    ACCEPTED,
    NEGATIVE,
    OUT_OF_SCOPE,
    POSITIVE,
    Label,
    is_near_duplicate,
    may_become_variant,
    refit,
)
from store import Database, FaqFit, FaqLabel, Session, Ticket, data, utcnow

log = logging.getLogger("router.learning")

__all__ = ["ACCEPTED", "NEGATIVE", "OUT_OF_SCOPE", "POSITIVE", "FaqLearning"]


class FaqLearning:
    def __init__(
        self,
        db: Database,
        knowledge: KnowledgeHolder,
        config: LearningConfig,
        *,
        sensitive: SensitiveRule,
        default_language: str,
        zone: object,
        settle_hours: float = 72.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.knowledge = knowledge
        self.config = config
        self.sensitive = sensitive
        self.default_language = default_language
        self.zone = zone
        # An automatic answer is known right or wrong only when its reopen window has passed: a "0"
        # comes at once, an acceptance at the window's end. Until then its "0" is left out of refits,
        # or the labels above the answer threshold would be the wrong answers only.
        self.settle = timedelta(hours=settle_hours)
        self.clock = clock
        self._version: tuple[int, int, int, int] | None = None
        self._lock = asyncio.Lock()
        self._refitting = asyncio.Lock()  # one refit at a time, so a second sees the first's result

    # --- recording, in the caller's transaction -----------------------------------------------

    async def record(
        self,
        session: Session,
        ticket: Ticket,
        *,
        kind: str,
        entry_id: str | None,
        actor: str,
        actor_name: str | None = None,
    ) -> FaqLabel | None:
        """Label the ticket's first citizen text; None when there is nothing to label."""
        if not entry_id or ticket.id is None or ticket.sensitive:
            return None
        first = await data.first_inbound(session, ticket_id=ticket.id)
        text = " ".join(first.text.split()) if first is not None else ""
        if not text:
            return None  # a photo or a location alone
        language = detect_language(text, default=ticket.language or self.default_language)
        variant = kind == POSITIVE and may_become_variant(text) is None
        if variant:
            _, matcher = self.knowledge.current
            variant = not is_near_duplicate(matcher, text, entry_id, language)
        now = self.clock()
        for earlier in await data.faq_labels_of_ticket(session, ticket_id=ticket.id):
            earlier.forgotten_at = now
        return await data.add_faq_label(
            session,
            label=FaqLabel(
                kind=kind,
                entry_id=entry_id,
                text=text,
                language=language,
                variant=variant,
                ticket_id=ticket.id,
                actor=actor,
                actor_name=actor_name,
                created_at=now,
            ),
        )

    # --- keeping the knowledge holder in step ------------------------------------------------

    async def refresh(self, *, force: bool = False) -> bool:
        """Read the learned variants and the latest fit if they changed; True when the holder got them."""
        async with self._lock:
            async with self.db.session() as session:
                version = await data.faq_labels_version(session)
                if version == self._version and not force:
                    return False
                rows = await data.faq_labels(session, variants_only=True)
                fit = await data.latest_faq_fit(session)
            variants = [_label(row) for row in rows]
            fitted = _confidence_of(fit)
            await asyncio.to_thread(self.knowledge.set_learned, variants, fitted)
            self._version = version
            log.info(
                "learning: %d learned variants in use%s",
                len(variants),
                " and refitted thresholds" if fitted else "",
            )
            return True

    # --- refitting ----------------------------------------------------------------------------

    async def labels(self) -> list[Label]:
        """The labels a refit uses: all but the negatives of answers whose window has not passed."""
        settled = self.clock() - self.settle
        async with self.db.session() as session:
            rows = await data.faq_labels(session)
        return [_label(row) for row in rows if row.kind != NEGATIVE or row.created_at <= settled]

    async def refit(self, *, store: bool = True) -> Confidence:
        """Refit from every label now and store the result (the holders pick it up with their next
        refresh); ValueError when there are too few labels."""
        labels = await self.labels()
        base = self.knowledge.files_base
        _, matcher = self.knowledge.current
        confidence = await asyncio.to_thread(
            refit,
            base,
            labels,
            Confidence.default() if matcher.confidence.report is None else matcher.confidence,
            settings=self.config.settings(),
            sensitive=self.sensitive,
            default_language=self.default_language,
        )
        if store:
            async with self.db.transaction() as session:
                fit = FaqFit(fitted_at=self.clock(), labels=len(labels), confidence=confidence.to_json())
                await data.add_faq_fit(session, fit=fit)
        report = confidence.report
        if report is not None:
            log.info(
                "learning: thresholds refitted from %d labels (%d in scope): answer at %.3f, review at %.3f; "
                "out of fold precision %.3f, coverage %.3f",
                report.queries,
                report.in_scope,
                confidence.answer_threshold,
                confidence.review_threshold,
                report.precision,
                report.coverage,
            )
        return confidence

    def last_refit_due(self, now: datetime) -> datetime:
        """The latest nightly refit time at or before `now`."""
        hour, minute = (int(part) for part in self.config.refit_at.split(":"))
        local = now.astimezone(self.zone)  # type: ignore[arg-type]
        due = datetime.combine(local.date(), time(hour, minute), tzinfo=local.tzinfo)
        return due if due <= local else due - timedelta(days=1)

    async def refit_if_due(self) -> bool:
        """Refit once a night: when no fit was stored since the last refit time (and labels suffice)."""
        async with self._refitting:
            now = self.clock()
            async with self.db.session() as session:
                fit = await data.latest_faq_fit(session)
            if fit is not None and fit.fitted_at >= self.last_refit_due(now):
                return False
            try:
                await self.refit()
            except ValueError as exc:
                log.info("learning: no refit tonight: %s", exc)
                # Remember the attempt so that it is not made again before the next night.
                async with self.db.transaction() as session:
                    await data.add_faq_fit(session, fit=FaqFit(fitted_at=now, labels=0, confidence=""))
                return False
            return True

    async def run(self) -> None:
        """Refresh every `refresh_seconds`, refit when due, until cancelled."""
        while True:
            try:
                await self.refresh()
                if await self.refit_if_due():
                    await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception:  # the store may be down: keep what is in use, try again next round
                log.exception("learning: refreshing from the store failed; keeping what is in use")
            await asyncio.sleep(self.config.refresh_seconds)


def _label(row: FaqLabel) -> Label:
    return Label(
        id=row.id or 0,
        kind=row.kind,
        entry_id=row.entry_id,
        text=row.text,
        language=row.language,
        variant=row.variant,
    )


def _confidence_of(fit: FaqFit | None) -> Confidence | None:
    """The stored fit's confidence; None for none, for an attempt without one, or for one made for
    other matcher signals (an upgrade changed them: the next night refits)."""
    if fit is None or not fit.confidence:
        return None
    try:
        return Confidence.from_json(fit.confidence)
    except ValueError as exc:
        log.warning("learning: the stored fit is not usable (%s); using the FAQ's own thresholds", exc)
        return None
