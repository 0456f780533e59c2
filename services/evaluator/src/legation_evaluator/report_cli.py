"""``legation-evaluator report``: a campaign's report as HTML and PDF files, from the index
named by the usual settings (``LEGATION_OPENSEARCH_*``, ``LEGATION_EVALUATOR_INDEX_PREFIX``),
with a progress bar on stderr."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from tqdm import tqdm

from legation_core.config import ConfigError, load_settings
from legation_evaluator.adapters import report_plots, report_render
from legation_evaluator.adapters.campaign_data import REPORT_SEARCHES, CampaignData
from legation_evaluator.adapters.index import EventIndex, connect
from legation_evaluator.config import EvaluatorSettings

FORMATS = ("html", "pdf")


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="legation-evaluator report",
        description="Write a campaign's report (objectives, plots, lessons) as HTML and PDF.",
    )
    parser.add_argument("--campaign", required=True, help="the campaign id")
    parser.add_argument("--out", required=True, type=Path, help="folder for the report files")
    parser.add_argument(
        "--format",
        choices=FORMATS,
        action="append",
        help="html or pdf; repeat for both (default: both)",
    )
    return parser.parse_args(list(argv))


def main(argv: Sequence[str]) -> int:
    """Writes ``<out>/<campaign>-report.<format>``; exit 0, or 1 when the campaign is
    unknown, 2 on a bad setting."""
    args = parse(argv)
    formats = args.format or list(FORMATS)
    try:
        settings = load_settings(EvaluatorSettings)
    except ConfigError as error:
        print(f"report: {error}", file=sys.stderr)
        return 2
    data = CampaignData(EventIndex(connect(settings), settings.evaluator_index_prefix))
    steps = 1 + REPORT_SEARCHES + len(report_plots.PLOTS) + len(formats)
    with tqdm(total=steps, desc=f"report {args.campaign}", unit="step", file=sys.stderr) as bar:

        def step(name: str) -> None:
            bar.set_postfix_str(name)
            bar.update()

        campaign = data.campaign(args.campaign)
        if campaign is None:
            bar.close()
            print(f"report: campaign {args.campaign} is not in the index", file=sys.stderr)
            return 1
        step("campaign")
        model = data.report_model(campaign, datetime.now(UTC), step)
        plots = report_render.draw_plots(model, step)
        args.out.mkdir(parents=True, exist_ok=True)
        written = []
        for fmt in formats:
            content = (
                report_render.render_html(model, plots)
                if fmt == "html"
                else report_render.render_pdf(model, plots)
            )
            path = args.out / f"{campaign.campaign_id}-report.{fmt}"
            path.write_bytes(content)
            written.append(path)
            step(fmt)
    for path in written:
        print(path)
    return 0
