"""The monthly report as files: one HTML file (charts as PNG data URIs), report.pdf (a page per
section, matplotlib's PdfPages: no browser), and each chart and page as PNG.

One model of sections (headings, notes, charts, tables) feeds both the HTML and the pages, so they
always say the same. Synchronous and CPU-bound: the server calls it in a worker thread."""

from __future__ import annotations

import base64
import io
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2

from router import report_charts as charts
from router.report_figures import MonthFigures
from router.report_terms import MIN_PEOPLE, Theme
from router.report_texts import ReportTexts

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

TEMPLATE = Path(__file__).resolve().parent / "report_template.html"
A4 = (8.27, 11.69)
DPI = 110


@dataclass(frozen=True)
class Chart:
    name: str
    draw: Callable[[Axes], None]
    height: float = 3.2  # inches, on its own
    caption: str = ""  # above it on a page


@dataclass(frozen=True)
class Table:
    caption: str
    columns: list[str]
    rows: list[list[str]]
    numeric: frozenset[int] = frozenset()  # columns aligned right
    on_page: bool = True  # False: the page's chart shows the same (the HTML keeps it, for reading)


@dataclass(frozen=True)
class Section:
    key: str
    heading: str
    notes: list[str] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)


@dataclass(frozen=True)
class Rendered:
    html: Path
    pdf: Path
    pngs: list[Path]
    summary: str


def summary(report: MonthFigures, texts: ReportTexts, names: dict[str, str]) -> str:
    """The month in a few sentences, in the report's language."""
    f = report.figures
    total = f.total_contacts
    channels = ", ".join(f"{c} {texts.percent(f.contacts[c] / total)}" for c in report.channels[:4])
    top_entry = report.title(report.answered[0][0]) if report.answered else texts("none")
    top_missed = (
        ", ".join(report.missed[0].terms[:3]) if report.missed and report.missed[0].terms else texts("none")
    )
    return " ".join(
        texts(
            "summary_text",
            month=texts.month(report.month.year, report.month.month),
            contacts=texts.number(total, 0),
            channels=channels or texts("none"),
            same_day=texts.percent(f.same_day.value),
            resolved=texts.number(f.on_time_all.total, 0),
            on_time=texts.percent(f.on_time_all.value),
            hours=texts.number(f.handling_all.value),
            rating=texts.number(f.satisfaction.value),
            ratings=texts.number(f.satisfaction.count, 0),
            top_entry=top_entry,
            top_missed=top_missed,
        ).split()
    )


def sections(report: MonthFigures, texts: ReportTexts, names: dict[str, str]) -> list[Section]:
    f = report.figures
    total = f.total_contacts
    found: list[Section] = []

    channel_rows = [
        [c, texts.number(f.contacts[c], 0), texts.percent(f.contacts[c] / total)] for c in report.channels
    ]
    if channel_rows:
        channel_rows.append([texts("total"), texts.number(total, 0), texts.percent(1.0)])
    found.append(
        Section(
            "contacts",
            texts("contacts"),
            [texts("contacts_note")],
            [Chart("contacts", lambda ax: charts.contacts(ax, report, texts))],
            [Table("", [texts("channel"), texts("count"), texts("share")], channel_rows, frozenset({1, 2}))],
        )
    )

    answered = [(report.title(entry), n) for entry, n in report.answered[:10]]
    found.append(
        Section(
            "asked",
            texts("asked"),
            [],
            [
                Chart(
                    "answered",
                    lambda ax: charts.ranked(ax, answered, texts("answered")),
                    3.6,
                    texts("answered_entries"),
                )
            ]
            if answered
            else [],
            [
                Table(
                    texts("answered_entries"),
                    [texts("entry"), texts("answered")],
                    [[t, texts.number(n, 0)] for t, n in answered],
                    frozenset({1}),
                    on_page=not answered,
                ),
                _themes_table(texts("asked_groups"), report.asked, texts, names),
            ],
        )
    )

    department_rows = []
    for d in report.departments:
        share, mean = f.on_time.get(d), f.handling_hours.get(d)
        department_rows.append(
            [
                names.get(d, d or "-"),
                texts.number(share.total if share else 0, 0),
                texts.percent(share.value if share else None),
                texts.number(mean.value if mean else None),
            ]
        )
    found.append(
        Section(
            "departments",
            texts("departments"),
            [
                texts("departments_note"),
                f"{texts('same_day')}: {texts.percent(f.same_day.value)} "
                f"({f.same_day.hits}/{f.same_day.total})",
            ],
            [
                Chart("on-time", lambda ax: charts.on_time(ax, report, texts, names), 2.8),
                Chart("handling", lambda ax: charts.handling(ax, report, texts, names), 2.8),
            ],
            [
                Table(
                    "",
                    [texts("department"), texts("resolved"), texts("on_time"), texts("handling")],
                    department_rows,
                    frozenset({1, 2, 3}),
                )
            ],
        )
    )

    found.append(
        Section(
            "satisfaction",
            texts("satisfaction"),
            [
                texts(
                    "mean_rating",
                    rating=texts.number(f.satisfaction.value),
                    count=texts.number(f.satisfaction.count, 0),
                    comments=texts.number(report.comment_count, 0),
                )
            ],
            [Chart("ratings", lambda ax: charts.ratings(ax, report, texts), 2.6)],
            [_themes_table(texts("comment_themes"), report.comments, texts, names)],
        )
    )

    turned = [(report.title(entry), n) for entry, n in report.turned_down[:10]]
    forwarded, review = report.missed_count
    found.append(
        Section(
            "missed",
            texts("missed"),
            [texts("missed_note", forwarded=forwarded, review=review)],
            [
                Chart(
                    "turned-down",
                    lambda ax: charts.ranked(ax, turned, texts("times"), charts.COLOURS[3]),
                    2.8,
                    texts("turned_down"),
                )
            ]
            if turned
            else [],
            [
                _themes_table("", report.missed, texts, names),
                Table(
                    texts("turned_down"),
                    [texts("entry"), texts("times")],
                    [[t, texts.number(n, 0)] for t, n in turned],
                    frozenset({1}),
                    on_page=not turned,
                ),
            ],
        )
    )
    return found


def _themes_table(caption: str, themes: list[Theme], texts: ReportTexts, names: dict[str, str]) -> Table:
    rows = [
        [
            texts.number(theme.size, 0),
            texts.number(theme.people, 0),
            ", ".join(theme.terms) or "–",
            ", ".join(f"{names.get(d, d)} {n}" for d, n in theme.departments[:3]),
        ]
        for theme in themes
    ]
    columns = [texts("size"), texts("people"), texts("terms"), texts("to_departments")]
    return Table(caption, columns, rows, frozenset({0, 1}))


# --- output ---------------------------------------------------------------------------------------


def render(
    report: MonthFigures,
    *,
    texts: ReportTexts,
    names: dict[str, str],
    folder: Path,
    made: datetime,
    svg: bool = False,
) -> Rendered:
    """Write report.html, report.pdf, chart-*.png and page-*.png into `folder` (created); with `svg`,
    each page also as SVG with its text as text (searchable, unlike the PDF's kerned glyph runs)."""
    from matplotlib import rc_context
    from matplotlib.backends.backend_pdf import PdfPages

    folder.mkdir(parents=True, exist_ok=True)
    text = summary(report, texts, names)
    parts = sections(report, texts, names)
    title = texts("title", month=texts.month(report.month.year, report.month.month))
    generated = texts("generated", when=texts.moment(made.astimezone(report.zone)), zone=report.zone.key)
    privacy = texts("privacy", people=MIN_PEOPLE)
    pngs: list[Path] = []
    images: dict[str, str] = {}
    # svg: text kept as text, ids that do not change from run to run.
    with rc_context(
        {"font.family": charts.font_families(), "svg.hashsalt": "report", "svg.fonttype": "none"}
    ):
        for part in parts:
            for chart in part.charts:
                figure = _figure((7.5, chart.height))
                chart.draw(figure.add_subplot())
                figure.tight_layout()
                png = _png(figure)
                path = folder / f"chart-{chart.name}.png"
                path.write_bytes(png)
                pngs.append(path)
                images[chart.name] = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        pdf_path = folder / "report.pdf"
        metadata = {"Title": title, "Subject": "monthly report", "Creator": "city intake bot"}
        with PdfPages(pdf_path, metadata=metadata) as pdf:
            pages = [_summary_page(title, generated, text, privacy, report, texts)]
            pages += [_section_page(part, texts) for part in parts]
            for number, (key, page) in enumerate(pages, start=1):
                pdf.savefig(page)
                path = folder / f"page-{number}-{key}.png"
                path.write_bytes(_png(page))
                pngs.append(path)
                if svg:
                    page.savefig(path.with_suffix(".svg"), format="svg")
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = environment.from_string(TEMPLATE.read_text(encoding="utf-8"))
    html = template.render(
        lang=texts.language,
        title=title,
        generated=generated,
        summary_heading=texts("summary"),
        summary=text,
        sections=parts,
        images=images,
        privacy=privacy,
    )
    html_path = folder / "report.html"
    html_path.write_text(html, encoding="utf-8")
    return Rendered(html_path, pdf_path, pngs, text)


def _figure(size: tuple[float, float]) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=size, dpi=DPI)


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _wrap(text: str, width: int) -> list[str]:
    # A CJK character is about twice as wide as a Latin one.
    wide = sum(1 for char in text if ord(char) > 0x2E80)
    return textwrap.wrap(text, width=width // 2 if wide > len(text) / 3 else width) or [""]


def _summary_page(
    title: str, generated: str, text: str, privacy: str, report: MonthFigures, texts: ReportTexts
) -> tuple[str, Figure]:
    page = _figure(A4)
    page.text(0.07, 0.95, title, fontsize=15, weight="bold", va="top")
    page.text(0.07, 0.925, generated, fontsize=8, color="#555", va="top")
    y = 0.88
    page.text(0.07, y, texts("summary"), fontsize=12, weight="bold", va="top")
    y -= 0.03
    for line in _wrap(text, 95):
        page.text(0.07, y, line, fontsize=10, va="top")
        y -= 0.02
    f = report.figures
    headline = [
        [texts("count"), texts.number(f.total_contacts, 0)],
        [texts("same_day"), texts.percent(f.same_day.value)],
        [texts("on_time"), f"{texts.percent(f.on_time_all.value)} ({f.on_time_all.total})"],
        [texts("handling"), texts.number(f.handling_all.value)],
        [texts("mean"), f"{texts.number(f.satisfaction.value)} ({f.satisfaction.count})"],
    ]
    _draw_table(page, Table("", ["", ""], headline, frozenset({1})), y - 0.02)
    y = 0.12
    for line in _wrap(privacy, 110):
        page.text(0.07, y, line, fontsize=7.5, color="#555", va="top")
        y -= 0.015
    return "summary", page


def _section_page(part: Section, texts: ReportTexts) -> tuple[str, Figure]:
    page = _figure(A4)
    page.text(0.07, 0.95, part.heading, fontsize=14, weight="bold", va="top")
    y = 0.915
    for note in part.notes:
        for line in _wrap(note, 105):
            page.text(0.07, y, line, fontsize=8.5, color="#333", va="top")
            y -= 0.017
    y -= 0.01
    for chart in part.charts:
        if chart.caption:
            page.text(0.07, y, chart.caption, fontsize=10.5, weight="bold", va="top")
            y -= 0.02
        height = min(0.26, chart.height / A4[1])
        # Below the axes: room for the tick labels and the axis' label.
        axes = page.add_axes((0.34, y - height + 0.05, 0.58, height - 0.07))
        chart.draw(axes)
        y -= height + 0.01
    for table in part.tables:
        if not table.on_page or (not table.rows and not table.caption):
            continue
        if table.caption:
            page.text(0.07, y, table.caption, fontsize=10.5, weight="bold", va="top")
            y -= 0.025
        if not table.rows:
            page.text(0.07, y, texts("no_data"), fontsize=8.5, color="#555", va="top")
            y -= 0.03
            continue
        y = _draw_table(page, table, y) - 0.02
    return part.key, page


def _draw_table(page: Figure, table: Table, top: float) -> float:
    """The table's rows as text from `top` down (long cells wrapped); returns where it ended."""
    widths = _column_widths(table)
    x, lefts = 0.07, []
    for width in widths:
        lefts.append(x)
        x += width
    row_height = 0.017
    y = top
    if any(table.columns):
        for index, column in enumerate(table.columns):
            _cell(page, table, index, lefts, widths, y, column, bold=True)
        y -= row_height * 1.2
    for row in table.rows[:20]:
        lines = [_wrap(cell, max(8, int(widths[i] * 120))) for i, cell in enumerate(row)]
        for index, cell_lines in enumerate(lines):
            for offset, line in enumerate(cell_lines):
                _cell(page, table, index, lefts, widths, y - offset * row_height * 0.85, line)
        y -= row_height * (0.85 * (max(len(cl) for cl in lines) - 1) + 1.15)
        if y < 0.05:
            break
    return y


def _cell(
    page: Figure,
    table: Table,
    index: int,
    lefts: list[float],
    widths: list[float],
    y: float,
    text: str,
    *,
    bold: bool = False,
) -> None:
    right = index in table.numeric
    x = lefts[index] + widths[index] - 0.015 if right else lefts[index]
    page.text(
        x, y, text, fontsize=8, va="top", ha="right" if right else "left", weight="bold" if bold else "normal"
    )


def _column_widths(table: Table) -> list[float]:
    """Shares of the page's 0.86 text width by each column's longest cell."""
    longest = [
        max([len(table.columns[i])] + [len(row[i]) for row in table.rows]) for i in range(len(table.columns))
    ]
    capped = [min(max(n, 6), 60) for n in longest]
    return [0.86 * n / sum(capped) for n in capped]


__all__ = ["Chart", "Rendered", "Section", "Table", "render", "sections", "summary"]
