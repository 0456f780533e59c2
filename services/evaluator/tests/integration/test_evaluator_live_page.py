"""The live scorecard page in headless Chromium: the evaluator runs as a process against
the Kafka and OpenSearch stand-ins, mentions are produced to Kafka, and the open page
shows them arrive (DOM and pixels)."""

from __future__ import annotations

import io
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from PIL import Image
from playwright.sync_api import Page, expect, sync_playwright

from legation.evaluator.v1 import evaluator_service_pb2_grpc as pb_grpc
from legation.events.v1 import evaluate_pb2, listen_pb2
from legation_core.auth import with_token
from legation_core.catalog import default_catalog
from legation_core.codec import make_envelope
from legation_core.config import CoreSettings
from legation_core.kafka import EventProducer
from legation_core.metrics import Metrics
from legation_devstack.processes import Process, child_env, free_port, http_ok, spawn, wait_until
from legation_devstack.standins import OpenSearchStandIn
from legation_devstack.users import UsersFile

pytestmark = [pytest.mark.integration, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
MENTIONS = "legation.listen.mentions.v1"
NAME = '<img src=x onerror="document.title=1">Ocean <b>week</b>'
BLUE = (0x1F, 0x5F, 0xA8)


class Evaluator:
    def __init__(
        self, kafka: CoreSettings, opensearch: OpenSearchStandIn, prefix: str, logs: Path
    ) -> None:
        self.grpc_port, self.web_port = free_port(), free_port()
        env = child_env()
        env.update(
            {
                "LEGATION_KAFKA_BOOTSTRAP_SERVERS": kafka.kafka_bootstrap_servers,
                "LEGATION_AUTH_USERS_FILE": str(kafka.auth_users_file),
                "LEGATION_CONSUMER_POLL_TIMEOUT_MS": "100",
                "LEGATION_CONSUMER_IDLE_WAIT_MS": "20",
                "LEGATION_OPENSEARCH_URL": opensearch.url,
                "LEGATION_EVALUATOR_INDEX_PREFIX": prefix,
                "LEGATION_EVALUATOR_SNAPSHOT_SECONDS": "3600",
                "LEGATION_GRPC_PORT": str(self.grpc_port),
                "LEGATION_METRICS_PORT": str(free_port()),
                "LEGATION_WEB_PORT": str(self.web_port),
                "LEGATION_WEB_REFRESH_SECONDS": "0.5",
            }
        )
        self.process: Process = spawn(
            "evaluator", [sys.executable, "-m", "legation_evaluator"], logs, env
        )
        self.url = f"http://127.0.0.1:{self.web_port}"
        try:
            wait_until(lambda: http_ok(f"{self.url}/healthz"), 60, "the evaluator's web page")
        except TimeoutError:
            self.process.stop()
            raise TimeoutError(self.process.log_tail()) from None


@pytest.fixture
def evaluator(
    kafka_settings: CoreSettings,
    opensearch_stand_in: OpenSearchStandIn,
    tmp_path: Path,
    unique: str,
) -> Iterator[Evaluator]:
    started = Evaluator(kafka_settings, opensearch_stand_in, f"live-{unique}", tmp_path / "logs")
    try:
        yield started
    finally:
        started.process.stop()


def create_campaign(evaluator: Evaluator, campaign_id: str, token: str) -> None:
    campaign = evaluate_pb2.Campaign(
        campaign_id=campaign_id,
        name=NAME,
        objectives=[
            evaluate_pb2.Objective(
                objective_id="conversation",
                metric="mentions",
                comparison=evaluate_pb2.Objective.COMPARISON_AT_LEAST,
                target=5,
            )
        ],
    )
    with grpc.insecure_channel(f"127.0.0.1:{evaluator.grpc_port}") as channel:
        stub = pb_grpc.EvaluatorServiceStub(with_token(channel, token))
        stub.CreateCampaign(campaign, timeout=10)


def produce_mentions(settings: CoreSettings, campaign_id: str, numbers: range) -> None:
    producer = EventProducer(settings, "listener", default_catalog(), Metrics())
    try:
        events = []
        for number in numbers:
            mention = listen_pb2.Mention(
                mention_id=f"{campaign_id}-m{number}",
                title=f"Mention {number}",
                campaign_ids=[campaign_id],
                sentiment=listen_pb2.Label(value="positive", score=0.4),
            )
            envelope = make_envelope(
                mention,
                event_id=mention.mention_id,
                source_service="listener",
                occurred_at=datetime.now(UTC),
                campaign_id=campaign_id,
            )
            events.append((MENTIONS, mention.mention_id, envelope))
        producer.send_and_wait(events)
    finally:
        producer.close()


def kpi(page: Page, name: str) -> str:
    return str(page.locator(f'.kpi[data-kpi="{name}"] b').text_content())


def blue_pixels(png: bytes) -> int:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    colours = image.getcolors(maxcolors=image.width * image.height) or []
    return sum(count for count, colour in colours if colour == BLUE)


def test_the_live_page_shows_events_as_they_arrive(
    evaluator: Evaluator,
    kafka_settings: CoreSettings,
    auth_users: UsersFile,
    tmp_path: Path,
    unique: str,
) -> None:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package")
    campaign_id = f"live-{unique}"
    create_campaign(evaluator, campaign_id, auth_users.token("analyst"))
    produce_mentions(kafka_settings, campaign_id, range(2))
    viewer = auth_users.token("viewer")
    with pytest.raises(urllib.error.HTTPError) as refused:
        _get(f"{evaluator.url}/api/campaigns/{campaign_id}", token="not-a-token")
    assert refused.value.code == 401
    wait_until(
        lambda: (
            '"volume", "value": 2.0' in _get(f"{evaluator.url}/api/campaigns/{campaign_id}", viewer)
        ),
        60,
        "the first mentions indexed",
        interval=0.3,
    )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-sync",
            ],
            viewport={"width": 1200, "height": 900},
            # Campaign results need a reader's token; a browser sends it as Basic auth.
            http_credentials={"username": "viewer", "password": viewer},
        )
        try:
            page = browser.new_page()
            page.goto(f"{evaluator.url}/?campaign={campaign_id}")
            page.wait_for_selector('tr[data-objective="conversation"]', timeout=30_000)
            assert kpi(page, "volume") == "2"
            row = page.locator('tr[data-objective="conversation"]')
            assert "on track" in str(row.text_content()) or "at risk" in str(row.text_content())
            # The campaign's name is text, not markup: no injected image, title untouched.
            assert page.locator("#name").text_content() == NAME
            assert page.locator("main img, nav img").count() == 0
            assert page.title() == "Legation · live scorecards"
            before = blue_pixels(page.locator("#chart").screenshot())

            produce_mentions(kafka_settings, campaign_id, range(2, 6))
            # expect() polls without eval, which the page's CSP rightly forbids.
            expect(page.locator('.kpi[data-kpi="volume"] b')).to_have_text("6", timeout=60_000)
            expect(row.locator(".status")).to_have_text("achieved", timeout=10_000)
            bars = page.locator("#chart rect.bar title").all_text_contents()
            assert sum(int(title.rsplit(": ", 1)[1]) for title in bars) == 6
            after = blue_pixels(page.locator("#chart").screenshot())
            screenshot = tmp_path / "live-page.png"
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    # The bars are drawn in the chart's blue, before and after the update.
    assert before > 1000 and after > 1000
    image = Image.open(screenshot).convert("L")
    darkest = image.getextrema()[0]
    assert isinstance(darkest, int | float) and darkest < 100  # dark text on white, not blank
    print(f"screenshot: {screenshot}")


def _get(url: str, token: str) -> str:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return str(response.read().decode())
