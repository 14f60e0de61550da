"""The monthly report's charts, each drawn on an Axes it is given, so one drawing serves the HTML's
chart and the PDF's page. matplotlib's object API only (no pyplot): no global figure state, safe in
the server's worker thread. Korean (and other CJK) labels need a CJK font: the first installed of
CJK_FONTS is used, and without one the report is still made, with a warning."""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from router.report_figures import MonthFigures
    from router.report_texts import ReportTexts

log = logging.getLogger("router.report")

CJK_FONTS = (
    "Noto Sans CJK KR",
    "Noto Sans KR",
    "Noto Sans CJK JP",
    "Noto Sans CJK SC",
    "NanumGothic",
    "Malgun Gothic",
    "Apple SD Gothic Neo",
    "AppleGothic",
    "Source Han Sans KR",
)
COLOURS = ("#1f5aa6", "#e07b39", "#3a9d5d", "#c0392b", "#8e6cbf", "#7f8c8d", "#d4ac0d", "#16a085")


def font_families() -> list[str]:
    """The fonts for the charts: an installed CJK font first (a warning when there is none), then
    matplotlib's own for what it lacks."""
    from matplotlib import font_manager

    installed = {font.name for font in font_manager.fontManager.ttflist}
    cjk = next((name for name in CJK_FONTS if name in installed), None)
    if cjk is None:
        log.warning(
            "no CJK font is installed (tried %s): Korean, Chinese and Japanese labels of the report's "
            "charts will show as boxes; install one, e.g. Debian's fonts-noto-cjk",
            ", ".join(CJK_FONTS),
        )
        return ["DejaVu Sans"]
    return [cjk, "DejaVu Sans"]


def short(text: str, width: int = 34) -> str:
    return textwrap.shorten(text, width=width, placeholder="…")


def contacts(ax: Axes, report: MonthFigures, texts: ReportTexts) -> None:
    """Stacked bars: new tickets per day, one colour per channel; weekends and holidays shaded."""
    days: list[date] = list(report.by_day)
    bottom = [0] * len(days)
    for index, channel in enumerate(report.channels):
        counts = [report.by_day[day].get(channel, 0) for day in days]
        ax.bar(
            [d.day for d in days],
            counts,
            bottom=bottom,
            label=channel,
            color=COLOURS[index % len(COLOURS)],
            width=0.8,
        )
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    ax.set_xlabel(texts("day"))
    ax.set_ylabel(texts("count"))
    ax.set_xticks([d.day for d in days if d.day % 2 == 1 or len(days) < 20])
    ax.set_xlim(0.3, len(days) + 0.7)
    if report.channels:
        ax.legend(
            fontsize=8,
            ncols=min(4, len(report.channels)),
            loc="lower center",
            bbox_to_anchor=(0.5, 1.0),
            frameon=False,
        )
    ax.grid(axis="y", alpha=0.3)


def ranked(ax: Axes, rows: Sequence[tuple[str, int]], xlabel: str, colour: str = COLOURS[0]) -> None:
    """Horizontal bars, the largest on top."""
    if not rows:
        ax.axis("off")
        return
    labels = [short(label, 26) for label, _ in rows][::-1]
    values = [value for _, value in rows][::-1]
    ax.barh(range(len(rows)), values, color=colour)
    ax.set_yticks(range(len(rows)), labels, fontsize=8)
    ax.set_xlabel(xlabel)
    for y, value in enumerate(values):
        ax.text(value, y, f" {value}", va="center", fontsize=8)
    ax.grid(axis="x", alpha=0.3)


def on_time(ax: Axes, report: MonthFigures, texts: ReportTexts, names: dict[str, str]) -> None:
    departments = [d for d in report.departments if report.figures.on_time.get(d)]
    if not departments:
        ax.axis("off")
        return
    shares = [report.figures.on_time[d] for d in departments]
    values = [(s.value or 0) * 100 for s in shares]
    ax.barh(range(len(departments)), values, color=COLOURS[2])
    ax.set_yticks(range(len(departments)), [short(names.get(d, d), 22) for d in departments], fontsize=8)
    ax.set_xlim(0, 115)
    ax.set_xlabel(f"{texts('on_time')} (%)")
    for y, share in enumerate(shares):
        ax.text(
            (share.value or 0) * 100,
            y,
            f" {texts.percent(share.value)} ({share.total})",
            va="center",
            fontsize=7,
        )
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)


def handling(ax: Axes, report: MonthFigures, texts: ReportTexts, names: dict[str, str]) -> None:
    departments = [d for d in report.departments if report.figures.handling_hours.get(d)]
    if not departments:
        ax.axis("off")
        return
    means = [report.figures.handling_hours[d] for d in departments]
    ax.barh(range(len(departments)), [m.value or 0 for m in means], color=COLOURS[1])
    ax.set_yticks(range(len(departments)), [short(names.get(d, d), 22) for d in departments], fontsize=8)
    ax.set_xlabel(texts("handling"))
    for y, mean in enumerate(means):
        ax.text(mean.value or 0, y, f" {texts.number(mean.value)}", va="center", fontsize=7)
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)


def ratings(ax: Axes, report: MonthFigures, texts: ReportTexts) -> None:
    values = list(report.ratings)
    counts = [report.ratings[v] for v in values]
    ax.bar(values, counts, color=[COLOURS[3], "#e67e22", "#f1c40f", "#7dcea0", COLOURS[2]])
    ax.set_xticks(values)
    ax.set_xlabel(texts("rating"))
    ax.set_ylabel(texts("ratings"))
    for x, count in zip(values, counts, strict=True):
        ax.text(x, count, str(count), ha="center", va="bottom", fontsize=8)
    ax.grid(axis="y", alpha=0.3)


__all__ = ["CJK_FONTS", "contacts", "font_families", "handling", "on_time", "ranked", "ratings", "short"]
