"""The report's plots, drawn with matplotlib on its Agg canvas (no display, no global
pyplot state, so threads serving the API can draw at once)."""

from __future__ import annotations

import io
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime

import matplotlib.dates as mdates
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from legation_core.units import format_duration
from legation_evaluator.domain.report import ReportModel

OURS = "#1f5fa8"
THEIRS = "#9aa5b1"
BEFORE = "#9aa5b1"
AFTER = "#1f5fa8"
MARKER = "#d9480f"
TARGET = "#2b8a3e"
SIZE = (8.0, 3.6)
# What below and above 0 mean on the attitude plot.
SCALES = {"Sentiment": "negative - / positive +", "Stance": "against - / favour +"}


def _figure() -> Figure:
    figure = Figure(figsize=SIZE, layout="constrained")
    figure.set_facecolor("white")
    return figure


def _x(at: datetime) -> float:
    """A time as matplotlib's date number (its typed axes API takes floats)."""
    return float(mdates.date2num(at))  # type: ignore[no-untyped-call]


def _short(text: str, width: int = 28) -> str:
    return textwrap.shorten(text, width=width, placeholder="…") if text else "(untitled)"


def volume(model: ReportModel) -> Figure:
    """Mentions per hour or day, the baseline shaded, each publication a labelled line."""
    figure = _figure()
    axes = figure.add_subplot()
    unit = "hour" if model.interval == "1h" else "day"
    axes.set_title(f"Mentions per {unit}, with our publications", loc="left")
    if model.volume:
        times = [_x(point.start) for point in model.volume]
        counts = [point.count for point in model.volume]
        width = 1 / 24 if model.interval == "1h" else 1.0  # bucket width in days
        axes.bar(times, counts, width=width * 0.9, align="edge", color="#52606d")
        axes.set_ylim(0, max(counts) * 1.35 + 0.5)
    else:
        axes.text(0.5, 0.5, "no mentions indexed", ha="center", transform=axes.transAxes)
    if model.pivot is not None and model.volume and model.volume[0].start < model.pivot:
        axes.axvspan(_x(model.volume[0].start), _x(model.pivot), color="#f1f3f5", zorder=0)
        axes.text(
            _x(model.volume[0].start),
            axes.get_ylim()[1] * 0.97,
            " baseline",
            va="top",
            color="#5c6670",
            fontsize=8,
        )
    for number, marker in enumerate(model.publications):
        axes.axvline(_x(marker.at), color=MARKER, linewidth=1.2, linestyle="--")
        axes.annotate(
            _short(marker.title),
            xy=(_x(marker.at), 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(3, -12 - 11 * (number % 3)),
            textcoords="offset points",
            color=MARKER,
            fontsize=8,
        )
    axes.xaxis_date(tz=UTC)
    locator = mdates.AutoDateLocator(tz=UTC)  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(
        mdates.ConciseDateFormatter(locator, tz=UTC)  # type: ignore[no-untyped-call]
    )
    axes.set_ylabel("mentions")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.spines[["top", "right"]].set_visible(False)
    return figure


def attitude(model: ReportModel) -> Figure:
    """Mean sentiment and stance of mentions before and after the pivot, in [-1, 1]: stance
    signed (favour above 0, against below, neutral 0; see ``domain.report.signed_stance``)."""
    figure = _figure()
    axes = figure.add_subplot()
    axes.set_title("Sentiment and stance before and after the campaign started", loc="left")
    width = 0.36
    for index, shift in enumerate(model.shifts):
        if shift.before.value is None and shift.after.value is None:
            axes.text(
                index,
                0.1,
                f"no {shift.label.lower()} labels yet",
                ha="center",
                fontsize=9,
                color="#5c6670",
            )
            continue
        for offset, mean, colour, label in (
            (-width / 2, shift.before, BEFORE, "before"),
            (width / 2, shift.after, AFTER, "after"),
        ):
            x = index + offset
            if mean.value is None:
                axes.text(x, 0.1, "no data", ha="center", fontsize=8, color="#5c6670")
                continue
            axes.bar(x, mean.value, width * 0.95, color=colour, label=label)
            axes.annotate(
                f"{mean.value:+.2f}\n(n={mean.count})",
                xy=(x, mean.value),
                xytext=(0, 4 if mean.value >= 0 else -22),
                textcoords="offset points",
                ha="center",
                fontsize=8,
            )
    axes.axhline(0, color="#3d4a57", linewidth=0.8)
    axes.set_xticks(
        range(len(model.shifts)),
        [f"{shift.label}\n{SCALES.get(shift.label, '')}" for shift in model.shifts],
    )
    axes.set_xlim(-0.6, len(model.shifts) - 0.4)
    axes.set_ylim(-1, 1)
    axes.set_ylabel("mean score (-1 to +1)")
    handles, labels = axes.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))  # one entry per period
    if unique:
        axes.legend(unique.values(), unique.keys(), loc="lower right", frameon=False)
    axes.spines[["top", "right"]].set_visible(False)
    return figure


def share_of_voice(model: ReportModel) -> Figure:
    """Who spoke on the issue: our publications and replies against the other authors."""
    figure = _figure()
    axes = figure.add_subplot()
    axes.set_title("Share of voice on the issue", loc="left")
    total = sum(voice.count for voice in model.voices)
    if not total:
        axes.text(0.5, 0.5, "nobody spoke yet", ha="center", transform=axes.transAxes)
        axes.set_axis_off()
        return figure
    voices = list(reversed(model.voices))
    shares = [100 * voice.count / total for voice in voices]
    bars = axes.barh(
        [_short(voice.actor, 34) for voice in voices],
        shares,
        color=[OURS if voice.ours else THEIRS for voice in voices],
    )
    for bar, share, voice in zip(bars, shares, voices, strict=True):
        axes.text(
            bar.get_width() + 0.8,
            bar.get_y() + bar.get_height() / 2,
            f"{share:.0f}% ({voice.count})",
            va="center",
            fontsize=8,
        )
    axes.set_xlim(0, max(shares) * 1.25)
    axes.set_xlabel("% of everything said on the issue")
    axes.spines[["top", "right"]].set_visible(False)
    return figure


def response_times(model: ReportModel) -> Figure:
    """How fast we answered: reply times in hours, their median and the target."""
    figure = _figure()
    axes = figure.add_subplot()
    axes.set_title("How fast we answered questions", loc="left")
    hours = [seconds / 3600 for seconds in model.response_seconds]
    if not hours:
        axes.text(0.5, 0.5, "no replies yet", ha="center", transform=axes.transAxes)
        axes.set_axis_off()
        return figure
    axes.hist(hours, bins=min(20, max(5, len(hours))), color=THEIRS, edgecolor="white")
    ordered = sorted(hours)
    middle = len(ordered) // 2
    median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    axes.axvline(median, color=OURS, linewidth=2, label=f"median {format_duration(median * 3600)}")
    if model.response_target_seconds is not None:
        target = model.response_target_seconds / 3600
        axes.axvline(
            target,
            color=TARGET,
            linewidth=2,
            linestyle="--",
            label=f"target ≤ {format_duration(model.response_target_seconds)}",
        )
    axes.set_xlabel("hours from the question to our first reply")
    axes.set_ylabel("replies")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.legend(frameon=False)
    axes.spines[["top", "right"]].set_visible(False)
    return figure


# The report's plots in reading order: (key, caption, how to draw it).
PLOTS: list[tuple[str, str, Callable[[ReportModel], Figure]]] = [
    ("volume", "Volume over time", volume),
    ("attitude", "Sentiment and stance", attitude),
    ("share_of_voice", "Share of voice", share_of_voice),
    ("response_times", "Response times", response_times),
]


def to_png(figure: Figure, dpi: int = 150) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def to_svg(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg")
    return buffer.getvalue()
