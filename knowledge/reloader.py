"""Keep the last good knowledge base in use while administrators edit the FAQ files."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Collection, Sequence
from pathlib import Path

from knowledge.calibration import CALIBRATION_FILE, Confidence, OutdatedCalibration
from knowledge.learning import Label, merge
from knowledge.loader import KnowledgeError, Problem, find_yaml_files, load_knowledge
from knowledge.matcher import Matcher
from knowledge.model import KnowledgeBase
from knowledge.text import Analyzer

logger = logging.getLogger("knowledge")

Fingerprint = tuple[tuple[str, int, int], ...]


class KnowledgeHolder:
    """Holds the current (knowledge base, matcher) pair and replaces it when the files change.

    A bad edit never takes the service down: the last good pair stays in use and the error is
    returned, logged and handed to `on_error` so the administrators can be told.
    """

    def __init__(
        self,
        path: Path,
        *,
        known_departments: Collection[str] | None = None,
        default_confidence: Confidence | None = None,
        analyzer: Analyzer | None = None,
    ) -> None:
        self._path = path
        self._known_departments = None if known_departments is None else frozenset(known_departments)
        # Used while the folder has no calibration.json (config.yaml's thresholds).
        self._default_confidence = default_confidence or Confidence.default()
        self._analyzer = analyzer
        self._current: tuple[KnowledgeBase, Matcher] | None = None
        # The last good YAML base and its confidence (calibration.json, else the default), and what
        # staff taught since (router/learning.py): variants merged into the base, refitted thresholds.
        self._files: tuple[KnowledgeBase, Confidence] | None = None
        self._learned: tuple[Label, ...] = ()
        self._fitted: Confidence | None = None
        # The fingerprint of the files as they were at the last load attempt, good or bad.
        self._seen: Fingerprint | None = None
        # reload() may run in a worker thread (watch) and from a command at the same time.
        self._lock = threading.Lock()
        # For the operator's metrics: called with True (in use) or False (kept the last good) after
        # each reload of an edit.
        self.observers: list[Callable[[bool], None]] = []

    @property
    def path(self) -> Path:
        return self._path

    @property
    def current(self) -> tuple[KnowledgeBase, Matcher]:
        """The last good pair, replaced as one tuple so a reader never sees a base with another's matcher."""
        current = self._current
        if current is None:
            raise RuntimeError("the knowledge base has not been loaded yet: call load() first")
        return current

    @property
    def files_base(self) -> KnowledgeBase:
        """The knowledge base as the YAML files have it, without learned variants."""
        if self._files is None:
            raise RuntimeError("the knowledge base has not been loaded yet: call load() first")
        return self._files[0]

    @property
    def learned(self) -> tuple[Label, ...]:
        return self._learned

    def set_learned(self, variants: Sequence[Label], fitted: Confidence | None) -> None:
        """Use staff's learned variants and the confidence refitted from their labels (None: none yet);
        the matcher is built again at once if the FAQ is loaded, else at the first load."""
        with self._lock:
            self._learned, self._fitted = tuple(variants), fitted
            if self._files is not None:
                self._build()

    def load(self) -> None:
        """The first load: a problem raises KnowledgeError, since start-up must fail loudly."""
        error = self._reload(self.fingerprint())
        if error is not None:
            raise error

    def reload(self) -> KnowledgeError | None:
        """Reload now; on problems keep the last good pair and return (and log) the error."""
        error = self._reload(self.fingerprint())
        for observer in self.observers:
            observer(error is None)
        if error is not None:
            logger.error(
                "FAQ files in %s have %d problem(s); keeping the last good knowledge base:\n%s",
                self._path,
                len(error.problems),
                error,
            )
        return error

    async def watch(
        self,
        interval: float,
        on_error: Callable[[KnowledgeError], Awaitable[None]] | None = None,
    ) -> None:
        """Every `interval` seconds, reload if the files changed; runs until cancelled.

        `on_error` is awaited once per distinct broken state of the files, not on every check.
        An interval of 0 or less means watching is disabled and returns at once.
        """
        if interval <= 0:
            logger.info("not watching %s for FAQ changes (interval %s)", self._path, interval)
            return
        while True:
            await asyncio.sleep(interval)
            fingerprint = await asyncio.to_thread(self.fingerprint)
            if fingerprint == self._seen:
                continue
            error = await asyncio.to_thread(self.reload)
            if error is None:
                base, _ = self.current
                logger.info("reloaded %d FAQ entries from %d file(s)", len(base), len(base.files))
            elif on_error is not None:
                try:
                    await on_error(error)
                except Exception:
                    # Telling the administrators failed; watching must go on regardless.
                    logger.exception("on_error callback failed for a broken FAQ edit")

    def fingerprint(self) -> Fingerprint:
        """A cheap summary of the FAQ files and the calibration: sorted (relative path, mtime_ns, size)."""
        if not self._path.is_dir():
            return (("", -1, -1),)  # unlike an empty folder, which is a valid (empty) knowledge base
        summary = []
        calibration = self._path / CALIBRATION_FILE
        for file in [*find_yaml_files(self._path), *([calibration] if calibration.is_file() else [])]:
            try:
                stat = file.stat()
            except OSError:
                continue  # deleted between listing and stat: the next check sees the new state
            summary.append((file.relative_to(self._path).as_posix(), stat.st_mtime_ns, stat.st_size))
        return tuple(summary)

    def _reload(self, fingerprint: Fingerprint) -> KnowledgeError | None:
        # The fingerprint is taken before reading, so an edit made during the load is seen next time.
        with self._lock:
            self._seen = fingerprint
            try:
                base = load_knowledge(self._path, known_departments=self._known_departments)
                confidence = self._confidence()
            except KnowledgeError as error:
                return error
            self._files = (base, confidence)
            self._build()
            return None

    def _build(self) -> None:
        assert self._files is not None
        files_base, files_confidence = self._files
        base = merge(files_base, self._learned)
        confidence = newest(files_confidence, self._fitted)
        self._current = (base, Matcher(base, confidence=confidence, analyzer=self._analyzer))

    def _confidence(self) -> Confidence:
        """The folder's calibration, else the default; a broken file is a problem like a broken FAQ."""
        path = self._path / CALIBRATION_FILE
        if not path.is_file():
            return self._default_confidence
        try:
            return Confidence.from_json(path.read_text(encoding="utf-8"))
        except OutdatedCalibration as exc:
            # After an upgrade: the service keeps running on the default thresholds until someone
            # calibrates again (a broken file, below, is an edit to fix, like a broken FAQ).
            logger.warning("%s is outdated (%s); using the default confidence model", path, exc)
            return self._default_confidence
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise KnowledgeError([Problem(CALIBRATION_FILE, None, None, str(exc))]) from exc


def newest(files: Confidence, fitted: Confidence | None) -> Confidence:
    """The confidence refitted from staff's labels, unless calibration.json was written after it."""
    if fitted is None or fitted.report is None:
        return files
    if files.report is not None and files.report.calibrated_at > fitted.report.calibrated_at:
        return files
    return fitted
