"""The campaign report as HTML (jinja2, autoescaped, SVG plots embedded as images) and
as PDF (reportlab, PNG plots): both from the same :class:`ReportModel`.

reportlab is pure Python with wheels on PyPI, so the PDF needs no system library (unlike
weasyprint's pango), on a developer machine, in CI and in the slim image alike.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast
from xml.sax.saxutils import escape

from jinja2 import Environment, PackageLoader
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import cm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    Image,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)
from reportlab.platypus.flowables import Flowable

from legation_evaluator.adapters import report_plots
from legation_evaluator.domain.report import LessonRow, ReportModel

HTML = "text/html; charset=utf-8"
PDF = "application/pdf"
STATUS_COLOURS = {
    "achieved": "#2b8a3e",
    "on track": "#1f5fa8",
    "at risk": "#8f5b00",
    "missed": "#c92a2a",
    "not measured": "#5c6670",
}

# Autoescape everywhere: campaign names, feedback and lessons are user text.
_templates = Environment(loader=PackageLoader("legation_evaluator", "templates"), autoescape=True)

_SHEET = getSampleStyleSheet()

Progress = Callable[[str], None]


def _quiet(step: str) -> None:
    """No progress reporting."""


@dataclass(frozen=True)
class RenderedPlot:
    key: str
    caption: str
    png: bytes
    svg: bytes

    @property
    def svg_base64(self) -> str:
        return base64.b64encode(self.svg).decode("ascii")


def draw_plots(model: ReportModel, progress: Progress = _quiet) -> list[RenderedPlot]:
    """Every plot of the report, as PNG (for the PDF) and SVG (for the page)."""
    plots = []
    for key, caption, draw in report_plots.PLOTS:
        figure = draw(model)
        plots.append(
            RenderedPlot(key, caption, report_plots.to_png(figure), report_plots.to_svg(figure))
        )
        progress(f"plot {key}")
    return plots


def lesson_groups(lessons: list[LessonRow]) -> list[tuple[str, list[LessonRow]]]:
    """Lessons grouped by kind, the groups in the review's order."""
    groups: dict[str, list[LessonRow]] = {}
    for lesson in lessons:
        groups.setdefault(lesson.kind, []).append(lesson)
    return list(groups.items())


def render_html(model: ReportModel, plots: list[RenderedPlot]) -> bytes:
    template = _templates.get_template("report.html.j2")
    page = template.render(m=model, plots=plots, lesson_groups=lesson_groups(model.lessons))
    return page.encode("utf-8")


def _style(name: str) -> ParagraphStyle:
    return cast(ParagraphStyle, _SHEET[name])


def _p(text: str, style: ParagraphStyle) -> Paragraph:
    # Paragraph parses a markup of its own: user text must be escaped for it.
    return Paragraph(escape(text), style)


def render_pdf(model: ReportModel, plots: list[RenderedPlot]) -> bytes:
    """An A4 report: title, objectives table, key figures, the plots, lessons and
    feedback, with the campaign and page number in every footer."""
    styles = {name: _style(name) for name in ("Title", "BodyText", "Heading2", "Heading3")}
    body, small = styles["BodyText"], ParagraphStyle("small", fontSize=8, leading=10)
    story: list[Flowable] = [
        _p(f"Campaign report: {model.name}", styles["Title"]),
        _p(
            f"Campaign {model.campaign_id}"
            + (f", from {model.starts_at:%Y-%m-%d %H:%M}" if model.starts_at else "")
            + (f" to {model.ends_at:%Y-%m-%d %H:%M}" if model.ends_at else "")
            + f" UTC. Generated {model.generated_at:%Y-%m-%d %H:%M} UTC.",
            body,
        ),
    ]
    if model.description:
        story.append(_p(model.description, body))
    story.append(_p("Objectives", styles["Heading2"]))
    rows: list[list[object]] = [["objective", "metric", "target", "value", "status", "why"]]
    table_style: list[Any] = [
        ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 8),
        ("LINEBELOW", (0, 0), (-1, -1), 0.3, colors.HexColor("#dde2e6")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]
    for number, row in enumerate(model.objectives, start=1):
        name = row.objective_id + (f" — {row.description}" if row.description else "")
        rows.append(
            [
                _p(name, small),
                _p(row.metric, small),
                _p(f"{row.comparison} {row.target_shown}", small),
                _p(row.value_shown, small),
                _p(row.status, small),
                _p(row.reason, small),
            ]
        )
        colour = colors.HexColor(STATUS_COLOURS.get(row.status, "#5c6670"))
        table_style.append(("TEXTCOLOR", (4, number), (4, number), colour))
    if not model.objectives:
        rows.append([_p("This campaign set no objectives.", small), "", "", "", "", ""])
    story.append(
        Table(
            rows,
            colWidths=[4.2 * cm, 2.8 * cm, 1.6 * cm, 1.5 * cm, 1.7 * cm, 5.2 * cm],
            style=TableStyle(table_style),
            repeatRows=1,
        )
    )
    story.append(_p("Key figures", styles["Heading2"]))
    story.append(
        _p(", ".join(f"{kpi.name.replace('_', ' ')} {kpi.shown}" for kpi in model.kpis), body)
    )
    width = 17 * cm
    for plot in plots:
        image = Image(io.BytesIO(plot.png), width=width, height=width * 3.6 / 8.0)
        story.append(KeepTogether([_p(plot.caption, styles["Heading2"]), image]))
    story.append(_p("Lessons", styles["Heading2"]))
    if not model.reviewed:
        story.append(_p("No after-action review yet.", body))
    for kind, lessons in lesson_groups(model.lessons):
        story.append(_p(kind, styles["Heading3"]))
        story.extend(_p(f"• {lesson.text} ({lesson.source})", body) for lesson in lessons)
    story.append(_p("Feedback", styles["Heading2"]))
    if not model.feedback:
        story.append(_p("No feedback received.", body))
    for item in model.feedback:
        story.append(_p(f"{item.who}, {item.rating}/5 on {item.about}: {item.text}", body))
    story.append(Spacer(1, 0.5 * cm))

    def footer(canvas: Canvas, document: SimpleDocTemplate) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 8)
        canvas.drawString(2 * cm, 1.2 * cm, f"{model.name} ({model.campaign_id})")
        canvas.drawRightString(A4[0] - 2 * cm, 1.2 * cm, f"page {document.page}")
        canvas.restoreState()

    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        title=f"Campaign report: {model.name}",
        author="Legation evaluator",
        leftMargin=2 * cm,
        rightMargin=2 * cm,
        topMargin=2 * cm,
        bottomMargin=2 * cm,
    )
    document.build(story, onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()


def render(model: ReportModel, fmt: str, progress: Progress = _quiet) -> bytes:
    """The report in ``fmt`` ("html" or "pdf")."""
    plots = draw_plots(model, progress)
    if fmt == "html":
        return render_html(model, plots)
    if fmt == "pdf":
        return render_pdf(model, plots)
    raise ValueError(f"format must be html or pdf, got {fmt!r}")
