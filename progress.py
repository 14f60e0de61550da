"""A progress bar for the long commands (faq import, faq calibrate, routing import and eval, db
purge) on a terminal, and nothing when the output goes to a file or a pipe (tqdm's own test)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import NoReturn

from tqdm import tqdm

# (done, total) as work goes on; a total of 0 means not known beforehand.
Progress = Callable[[int, int], None]


def terminal(what: str, unit: str = "it") -> Progress:
    bars: list[tqdm[NoReturn]] = []  # made at the first update, when the total is known

    def update(done: int, total: int) -> None:
        if not bars:
            bars.append(
                tqdm(total=total or None, desc=what, unit=unit, disable=None, leave=False, file=sys.stderr)
            )
        bar = bars[0]
        bar.update(done - bar.n)
        if total and done >= total:
            bar.close()

    return update
