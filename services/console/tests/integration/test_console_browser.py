"""The console in headless Chromium against real service processes: people sign in through
the local identity provider and work; each step asserts what the page shows. Also: a viewer
gets no editor action and the service refuses a forged one, a POST without the CSRF token is
refused, markup from a feed shows as text, every page passes axe-core (no serious or
critical violations) and the Content-Security-Policy blocks nothing the console needs."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from legation.engager.v1 import engager_service_pb2 as engager_pb
from legation.engager.v1 import engager_service_pb2_grpc as engager_grpc
from legation.evaluator.v1 import evaluator_service_pb2 as evaluator_pb
from legation.evaluator.v1 import evaluator_service_pb2_grpc as evaluator_grpc
from legation.events.v1 import evaluate_pb2, listen_pb2
from legation.listener.v1 import listener_service_pb2 as listener_pb
from legation.listener.v1 import listener_service_pb2_grpc as listener_grpc
from legation.publisher.v1 import publisher_service_pb2 as publisher_pb
from legation.publisher.v1 import publisher_service_pb2_grpc as publisher_grpc
from legation_core.catalog import default_catalog
from legation_core.codec import Envelope, make_envelope
from legation_core.config import CoreSettings
from legation_core.kafka import EventProducer
from legation_core.metrics import Metrics
from legation_devstack.console_browser import (
    SHORT_CHANNEL,
    SHORT_LIMIT,
    Running,
    Session,
    axe_violations,
    screenshot,
    sign_in,
)
from legation_devstack.processes import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.browser]

Feedback = evaluate_pb2.Feedback

MARKUP_TITLE = "Treaty <img src=x onerror=\"document.title='pwned'\"> talks <b>bold</b>"
FEED = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Markup test</title><link>https://example.org/</link>
<description>items whose text holds markup</description>
<item><title>Treaty &amp;lt;img src=x onerror="document.title='pwned'"&amp;gt; talks
&amp;lt;b&amp;gt;bold&amp;lt;/b&amp;gt;</title>
<link>https://example.org/a</link><guid>markup-1</guid>
<pubDate>Wed, 02 Dec 2026 05:00:00 GMT</pubDate>
<description>The plastics treaty &amp;lt;script&amp;gt;alert(1)&amp;lt;/script&amp;gt;
is discussed.</description>
</item>
<item><title>Ocean clean-up</title><link>https://example.org/b</link><guid>markup-2</guid>
<pubDate>Wed, 02 Dec 2026 04:00:00 GMT</pubDate><description>Nothing about it.</description></item>
</channel></rss>
"""


def accessible(session: Session) -> None:
    """No serious or critical axe violation, nothing blocked by the CSP."""
    assert axe_violations(session.page) == []
    assert session.csp_violations == []


def audits(running: Running, service: str) -> list[dict[str, object]]:
    """The audit records a service logged."""
    records = []
    for line in running.log(service).splitlines():
        if '"message": "audit"' in line:
            records.append(json.loads(line))
    return records


def acted(running: Running, service: str, field: str) -> set[tuple[str, object, object]]:
    """(RPC, person, the audit record's ``field``: audit_via, audit_outcome) of every call
    the service audited."""
    return {
        (str(a["audit_method"]).rsplit("/", 1)[1], a["audit_user"], a[field])
        for a in audits(running, service)
    }


def measured_campaign(
    running: Running,
    campaign_id: str,
    name: str,
    objective: tuple[str, int],
    days: tuple[int, int],
) -> None:
    """A campaign created through the evaluator's API with one objective (id, at least this
    many mentions), from ``days[0]`` days ago to ``days[1]`` days from now (negative: ended),
    once the evaluator reads it back (it stores campaigns from its topic)."""
    objective_id, target = objective
    campaign = evaluate_pb2.Campaign(
        campaign_id=campaign_id,
        name=name,
        objectives=[
            evaluate_pb2.Objective(
                objective_id=objective_id,
                metric="mentions",
                comparison=evaluate_pb2.Objective.COMPARISON_AT_LEAST,
                target=target,
            )
        ],
    )
    campaign.starts_at.FromDatetime(datetime.now(UTC) - timedelta(days=days[0]))
    campaign.ends_at.FromDatetime(datetime.now(UTC) + timedelta(days=days[1]))
    with running.stack.channel("evaluator", user="analyst") as channel:
        stub = evaluator_grpc.EvaluatorServiceStub(channel)
        stub.CreateCampaign(campaign, timeout=10)
        request = evaluator_pb.GetCampaignRequest(campaign_id=campaign_id)
        wait_until(lambda: _readable(stub, request), 15, "the campaign readable")


def plastics_treaty_tracked(running: Running, feed_dir: Path) -> None:
    """The issue the first test tracks through the page ("Plastics treaty", its query, the
    markup feed), tracked through the listener's API when a test runs without that one
    (alone, or selected with -k): the Listen filters offer a box per tracked issue."""
    with running.stack.channel("listener", user="analyst") as channel:
        listener = listener_grpc.ListenerServiceStub(channel)
        issues = listener.ListIssues(listener_pb.ListIssuesRequest(), timeout=10).issues
        if any(issue.issue_id == "plastics-treaty" for issue in issues):
            return
        feed = feed_dir / "markup.rss"
        feed.write_text(FEED, encoding="utf-8")
        request = listener_pb.TrackIssueRequest(
            name="Plastics treaty", query="plastic* AND treaty", feeds=[str(feed)]
        )
        assert listener.TrackIssue(request, timeout=10).issue_id == "plastics-treaty"


def test_an_analyst_writes_a_query_and_tracks_the_issue(
    running: Running, browser: Browser, tmp_path: Path
) -> None:
    feed = tmp_path / "markup.rss"
    feed.write_text(FEED, encoding="utf-8")
    session = sign_in(browser, running, "analyst")
    page = session.page
    expect(page.get_by_test_id("signed-in-as")).to_contain_text("Ana Lytic")
    expect(page.get_by_test_id("roles")).to_contain_text("Analyst")
    navigation = page.get_by_role("navigation", name="Sections")
    expect(navigation.get_by_role("link")).to_have_text(["Listen", "Publish", "Engage", "Evaluate"])
    accessible(session)

    navigation.get_by_role("link", name="Listen").click()
    expect(page.get_by_role("heading", name="Tracked issues")).to_be_visible()
    expect(page.get_by_test_id("issues-summary")).to_contain_text("0 tracked issues")
    accessible(session)

    page.get_by_test_id("track-issue").click()
    expect(page.get_by_role("heading", name="Track an issue")).to_be_visible()
    # A malformed query: the parser's message and a caret under its position, while typing.
    page.get_by_label("Query").fill("plastic AND (treaty")
    expect(page.get_by_test_id("query-problem")).to_contain_text("unclosed '('")
    expect(page.get_by_test_id("query-problem")).to_contain_text("character 13")
    caret = str(page.get_by_test_id("query-caret").text_content())
    assert caret.splitlines() == ["plastic AND (treaty", " " * 12 + "^"]
    accessible(session)

    # Fixed, and tried on the source read now: the match shows, its markup as text.
    page.get_by_label("Query").fill("plastic* AND treaty")
    expect(page.get_by_test_id("query-summary")).to_contain_text("Valid query")
    page.get_by_label("Sources").fill(str(feed))
    page.get_by_test_id("read-feeds").click()
    expect(page.get_by_test_id("query-summary")).to_contain_text("1 match among")
    matches = page.get_by_test_id("query-matches")
    expect(matches).to_contain_text(MARKUP_TITLE)
    expect(matches).to_contain_text("<script>alert(1)</script> is discussed")
    assert matches.locator("img, b, script").count() == 0
    assert page.title().startswith("Track an issue")  # the title is untouched
    accessible(session)
    screenshot(page, "listen-query-editor")

    page.get_by_label("Name").fill("Plastics treaty")
    page.get_by_test_id("save-issue").click()
    expect(page.get_by_role("heading", name="Tracked issues")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("“Plastics treaty” is tracked")
    row = page.locator('tr[data-issue="plastics-treaty"]')
    expect(row).to_contain_text("plastic* AND treaty")
    expect(row).to_contain_text("1 source")
    expect(row).to_contain_text("Active")
    accessible(session)
    screenshot(page, "listen-issues")
    page.get_by_role("link", name="how their sources are doing").click()
    sources = page.locator('[data-testid="sources"] tr[data-issue="plastics-treaty"]')
    expect(sources).to_contain_text(str(feed))
    expect(sources).to_contain_text("rss")
    accessible(session)

    # The listener's audit names the person, via the console.
    wait_until(
        lambda: any("TrackIssue" in str(a["audit_method"]) for a in audits(running, "listener")),
        10,
        "the listener's audit record",
    )
    (tracked,) = [a for a in audits(running, "listener") if "TrackIssue" in str(a["audit_method"])]
    assert (tracked["audit_user"], tracked["audit_via"]) == ("analyst", "console")
    assert tracked["audit_outcome"] == "granted"

    # Signing out ends the session: the next page asks to sign in again.
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="You have signed out")).to_be_visible()
    page.goto(running.url + "/listen/issues")
    assert page.url.startswith(running.console.issuer + "/authorize?")
    session.page.context.close()


def test_a_viewer_gets_no_editor_action_and_the_service_refuses_a_forged_one(
    running: Running, browser: Browser
) -> None:
    session = sign_in(browser, running, "viewer", "/listen/issues")
    page = session.page
    expect(page.get_by_role("heading", name="Tracked issues")).to_be_visible()
    expect(page.get_by_test_id("track-issue")).to_have_count(0)
    page.get_by_role("link", name="Try a query").click()
    expect(page.get_by_test_id("cannot-track")).to_be_visible()
    expect(page.get_by_test_id("save-issue")).to_have_count(0)
    accessible(session)

    # The form posted anyway, with a valid CSRF token: the listener refuses the viewer.
    token = page.locator('input[name="csrf_token"]').first.get_attribute("value")
    assert token
    forged = page.request.post(
        running.url + "/listen/issues",
        form={
            "csrf_token": token,
            "name": "Forged",
            "query": "forged",
            "feeds": "https://example.org/feed.rss",
        },
    )
    assert forged.status == 403
    assert "needs the role analyst" in forged.text()
    assert "viewer has viewer" in forged.text()
    wait_until(
        lambda: any(a["audit_outcome"] == "denied" for a in audits(running, "listener")),
        10,
        "the listener's audit record",
    )
    refused = [a for a in audits(running, "listener") if a["audit_outcome"] == "denied"]
    assert [(a["audit_user"], a["audit_via"]) for a in refused] == [("viewer", "console")]
    session.page.context.close()


def test_a_post_without_the_csrf_token_is_refused(running: Running, browser: Browser) -> None:
    session = sign_in(browser, running, "analyst", "/listen/issues/new")
    page = session.page
    before = len(audits(running, "listener"))
    forms: list[dict[str, str | float | bool]] = [
        {"name": "No token", "query": "x", "feeds": "https://example.org/feed.rss"},
        {"csrf_token": "not-the-token", "name": "Bad", "query": "x", "feeds": "x"},
    ]
    for form in forms:
        refused = page.request.post(running.url + "/listen/issues", form=form)
        assert refused.status == 403
        assert re.search(r"security token is\s+missing or has expired", refused.text())
    assert len(audits(running, "listener")) == before  # nothing reached the listener
    session.page.context.close()


def publish_question(
    running: Running,
    mention_id: str,
    title: str,
    text: str,
    campaign_id: str = "",
    hashtags: tuple[str, ...] = (),
) -> None:
    """A mention (asking us something), as the listener would publish it."""
    mention = listen_pb2.Mention(
        mention_id=mention_id,
        source="rss",
        source_url="https://news.example.org/feed.rss",
        item_id=mention_id,
        url=f"https://news.example.org/{mention_id}",
        author="Maria Lopez",
        title=title,
        text=text,
        language="en",
        sentiment=listen_pb2.Label(value="negative", score=-0.4),
        campaign_ids=[campaign_id] if campaign_id else [],
        hashtags=list(hashtags),
    )
    mention.published_at.FromDatetime(datetime.now(UTC))
    envelope = make_envelope(
        mention,
        event_id=mention_id,
        source_service="listener",
        occurred_at=datetime.now(UTC),
        issue_id="plastics-treaty",
        campaign_id=campaign_id,
    )
    produce(running, "legation.listen.mentions.v1", [(mention_id, envelope)])


def produce(running: Running, topic: str, records: list[tuple[str, Envelope]]) -> None:
    """Events on ``topic`` as the listener would publish them, acknowledged by the broker."""
    assert running.stack.kafka is not None
    settings = CoreSettings(kafka_bootstrap_servers=running.stack.kafka.bootstrap_servers)
    producer = EventProducer(settings, "listener", default_catalog(), Metrics())
    try:
        producer.send_and_wait([(topic, key, envelope) for key, envelope in records])
    finally:
        producer.close()


def test_a_press_officer_sees_a_question_arrive_takes_it_and_replies(
    running: Running, browser: Browser
) -> None:
    session = sign_in(browser, running, "press-officer")
    page = session.page
    navigation = page.get_by_role("navigation", name="Sections")
    expect(navigation.get_by_role("link")).to_have_text(["Listen", "Publish", "Engage", "Evaluate"])
    navigation.get_by_role("link", name="Engage").click()
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    expect(page.get_by_test_id("inbox-summary")).to_contain_text("conversation")
    accessible(session)

    # A question arrives on Kafka; the open inbox shows it without a reload.
    title = "When will the <em>treaty</em> text be published?"
    publish_question(running, "browser-q-1", title, "Is there a date? <script>x()</script>")
    link = page.get_by_role("link", name=title)
    expect(link).to_be_visible(timeout=30_000)
    row = page.locator("tr", has=link)
    expect(row).to_contain_text("New")
    expect(row).to_contain_text("nobody")
    expect(row).to_contain_text("Maria Lopez")
    assert page.locator("#inbox em, #inbox script").count() == 0
    accessible(session)

    link.click()
    expect(page.get_by_test_id("conversation-title")).to_have_text(title)
    expect(page.get_by_test_id("status")).to_have_text("New")
    expect(page.get_by_test_id("thread")).to_contain_text("Is there a date? <script>x()</script>")
    accessible(session)
    conversation_url = page.url

    page.get_by_test_id("assign-to-me").click()
    expect(page.get_by_role("alert")).to_contain_text("assigned to you")
    expect(page.get_by_test_id("assignee")).to_have_text("press-officer")
    expect(page.get_by_test_id("status")).to_have_text("Assigned")
    expect(page.get_by_test_id("assign-to-me")).to_have_count(0)

    page.get_by_label("Saved reply").select_option(label="Thank you for your question (en, es)")
    page.get_by_test_id("send-reply").click()
    expect(page.get_by_role("alert")).to_contain_text("Your reply is on its way")
    replies = page.get_by_test_id("replies")
    expect(replies).to_contain_text("Dear Maria Lopez, thank you for your question")
    expect(replies).to_contain_text("press-officer, press office")
    expect(page.get_by_test_id("reply-status")).to_contain_text("Recorded")
    accessible(session)
    screenshot(page, "engage-conversation")

    page.get_by_role("link", name="Back to the inbox").click()
    page.get_by_test_id("mine").click()
    expect(page.get_by_test_id("inbox-summary")).to_contain_text("assigned to you")
    mine = page.locator("tr", has=page.get_by_role("link", name=title))
    expect(mine).to_contain_text("you")
    expect(mine).to_contain_text("answered")
    screenshot(page, "engage-inbox")

    # The engager's audit names the officer, via the console.
    wait_until(
        lambda: any(
            "ReplyToConversation" in str(a["audit_method"]) for a in audits(running, "engager")
        ),
        10,
        "the engager's audit record",
    )
    done = acted(running, "engager", "audit_via")
    assert ("AssignConversation", "press-officer", "console") in done
    assert ("ReplyToConversation", "press-officer", "console") in done

    # Done with it: closed, it offers only to reopen.
    page.goto(conversation_url)
    page.get_by_test_id("status-closed").click()
    expect(page.get_by_role("alert")).to_contain_text("The conversation is now closed")
    expect(page.get_by_test_id("status")).to_have_text("Closed")
    expect(page.get_by_test_id("status-new")).to_be_visible()
    expect(page.get_by_test_id("send-reply")).to_have_count(0)
    page.context.close()

    # A viewer reads the conversation but gets neither action.
    viewer = sign_in(browser, running, "viewer", conversation_url.removeprefix(running.url))
    expect(viewer.page.get_by_test_id("conversation-title")).to_have_text(title)
    expect(viewer.page.get_by_test_id("assign-to-me")).to_have_count(0)
    expect(viewer.page.get_by_test_id("send-reply")).to_have_count(0)
    expect(viewer.page.get_by_test_id("status-new")).to_have_count(0)
    accessible(viewer)
    viewer.page.context.close()


def test_a_post_is_drafted_with_a_translation_approved_twice_and_delivered(
    running: Running, browser: Browser
) -> None:
    editor = sign_in(browser, running, "editor", "/publish/posts")
    page = editor.page
    expect(page.get_by_role("heading", name="Posts")).to_be_visible()
    accessible(editor)
    page.get_by_test_id("write-post").click()
    # A translation without its text is refused by the form, field by field.
    page.get_by_label("Campaign").fill("plastics-2026")
    page.get_by_label("Title", exact=True).fill("Plastics treaty: our position")
    page.get_by_label("Text", exact=True).fill("We support a <strong>binding</strong> treaty.")
    page.get_by_label("Language of the translation").fill("es")
    page.get_by_label("Image address (optional)").fill("https://example.org/plastics.png")
    page.get_by_test_id("save-draft").click()
    expect(page.get_by_role("alert")).to_contain_text("Enter the translation's title")
    expect(page.get_by_role("alert")).to_contain_text("Describe the image")
    accessible(editor)
    page.get_by_label("Image description (alt text)").fill("Bottles <i>on</i> a beach")
    page.get_by_label("Translated title").fill("Tratado sobre plásticos: nuestra posición")
    page.get_by_label("Translated text").fill("Apoyamos un tratado vinculante.")
    page.get_by_test_id("save-draft").click()
    expect(page.get_by_role("alert")).to_contain_text("The draft is saved")
    expect(page.get_by_test_id("post-status")).to_have_text("Draft")
    variants = page.get_by_test_id("variants")
    expect(variants).to_contain_text("We support a <strong>binding</strong> treaty.")
    expect(variants).to_contain_text("es (translated from en)")
    expect(variants).to_contain_text("Apoyamos un tratado vinculante.")
    expect(page.get_by_test_id("media")).to_contain_text("Alt text: Bottles <i>on</i> a beach")
    assert variants.locator("strong.govuk-tag").count() == 2  # only the status tags
    expect(page.get_by_test_id("approve-post")).to_have_count(0)
    accessible(editor)
    page.get_by_test_id("submit-post").click()
    expect(page.get_by_test_id("post-status")).to_have_text("In review")
    post_path = page.url.removeprefix(running.url)

    # Two approval steps, two approvers (one person passes one step).
    for approver, after in (("approver", "In review"), ("head-of-comms", "Approved")):
        session = sign_in(browser, running, approver, "/publish/approvals")
        queue = session.page
        expect(queue.get_by_test_id("approvals-summary")).to_contain_text("1 post waiting")
        accessible(session)
        queue.get_by_role("link", name="Plastics treaty: our position").click()
        queue.get_by_test_id("approve-post").click()
        expect(queue.get_by_role("alert")).to_contain_text("You approved the post")
        expect(queue.get_by_test_id("post-status")).to_have_text(after)
        expect(queue.get_by_test_id("approve-post")).to_have_count(0)  # not twice
        expect(queue.get_by_test_id("schedule-post")).to_have_count(0)  # not their role
        session.page.context.close()

    # The editor (also the local publisher) publishes it; the delivery shows as delivered.
    page.goto(running.url + post_path)
    expect(page.get_by_test_id("approvals")).to_have_count(2)
    page.get_by_test_id("schedule-post").click()
    expect(page.get_by_role("alert")).to_contain_text("scheduled")
    statuses = page.get_by_test_id("delivery-status")
    expect(statuses).to_have_text(["Delivered", "Delivered"], timeout=30_000)
    expect(page.get_by_test_id("post-status")).to_have_text("Published", timeout=30_000)
    accessible(editor)
    screenshot(page, "publish-post")
    feed = running.stack.site_feed.read_text(encoding="utf-8")
    assert "Tratado sobre plásticos: nuestra posición" in feed
    done = acted(running, "publisher", "audit_via")
    assert {
        ("CreatePost", "editor", "console"),
        ("Approve", "approver", "console"),
        ("Approve", "head-of-comms", "console"),
        ("Schedule", "editor", "console"),
    } <= done
    page.context.close()


def test_the_calendar_shows_the_published_post_and_deliveries_refuse_what_is_not_allowed(
    running: Running, browser: Browser
) -> None:
    """After the post above went out (schedule "now", in UTC): it is on today's day, in the
    week and the month; filters and previous / next; a delivery action the state or the
    role does not allow is refused by the publisher."""
    title = "Plastics treaty: our position"
    editor = sign_in(browser, running, "editor", "/publish/posts")
    page = editor.page
    page.get_by_test_id("calendar-link").click()
    expect(page.get_by_role("heading", name="Calendar", exact=True)).to_be_visible()
    today = datetime.now(UTC).date()
    expect(page.get_by_test_id("calendar-heading")).to_contain_text("Week of")
    cell = page.locator(f'td[data-day="{today.isoformat()}"]')
    expect(cell).to_have_attribute("aria-current", "date")
    expect(cell).to_contain_text(title)
    expect(cell).to_contain_text("Published")
    expect(cell).to_contain_text("UTC")
    expect(page.get_by_test_id("calendar-summary")).to_contain_text("1 scheduled or published")
    accessible(editor)
    page.get_by_test_id("month-view").click()
    expect(page.get_by_test_id("calendar-heading")).to_have_text(f"{today:%B %Y}")
    expect(page.locator(f'td[data-day="{today.isoformat()}"]')).to_contain_text(title)
    accessible(editor)
    page.get_by_test_id("calendar-next").click()
    expect(page.get_by_test_id("calendar-summary")).to_contain_text("0 scheduled or published")
    page.get_by_test_id("calendar-previous").click()
    expect(page.get_by_test_id("calendar-summary")).to_contain_text("1 scheduled or published")
    page.get_by_label("Campaign").fill("oceans-2027")
    page.get_by_test_id("filter-calendar").click()
    expect(page.get_by_test_id("calendar-summary")).to_contain_text("0 scheduled or published")
    page.get_by_label("Campaign").fill("plastics-2026")
    page.get_by_label("Language").fill("es")
    page.get_by_test_id("filter-calendar").click()
    expect(page.get_by_test_id("calendar-summary")).to_contain_text("1 scheduled or published")

    # The post's deliveries went out: no retry or cancel; forced, the publisher says why.
    page.get_by_role("link", name=title).first.click()
    expect(page.get_by_test_id("delivery-status")).to_have_text(["Delivered", "Delivered"])
    expect(page.get_by_test_id("retry-delivery")).to_have_count(0)
    expect(page.get_by_test_id("cancel-delivery")).to_have_count(0)
    delivery = page.locator("tr[data-delivery]").first.get_attribute("data-delivery")
    token = page.locator('input[name="csrf_token"]').first.get_attribute("value") or ""
    post_path = page.url.removeprefix(running.url)
    retry = f"{running.url}{post_path}/deliveries/{delivery}/retry"
    answer = page.request.post(retry, form={"csrf_token": token})
    assert answer.ok  # redirected to the post, which says why not
    assert "Not done" in answer.text()
    page.context.close()
    viewer = sign_in(browser, running, "viewer", post_path)
    expect(viewer.page.get_by_test_id("post-title")).to_have_text(title)
    viewer_token = viewer.page.locator('input[name="csrf_token"]').first.get_attribute("value")
    forged = viewer.page.request.post(retry, form={"csrf_token": viewer_token or ""})
    assert forged.status == 403
    assert "needs the role publisher" in forged.text()
    viewer.page.context.close()


def draft_in_review(running: Running, request_id: str, campaign: str, title: str) -> str:
    """A post drafted and submitted by the editor through the publisher's API: its id."""
    with running.stack.channel("publisher", user="editor") as channel:
        stub = publisher_grpc.PublisherServiceStub(channel)
        post = stub.CreatePost(
            publisher_pb.CreatePostRequest(
                request_id=request_id,
                campaign_id=campaign,
                content=publisher_pb.VariantContent(title=title, body="Our position."),
            ),
            timeout=10,
        ).post
        stub.SubmitForReview(publisher_pb.ReviewRequest(post_id=post.post_id), timeout=10)
    return post.post_id


def test_a_recurring_posts_future_occurrences_are_on_the_calendar(
    running: Running, browser: Browser
) -> None:
    """A post scheduled every day from tomorrow at 09:00 UTC, through the publisher's API
    (approved by two approvers): the week after next shows it on each of its days,
    marked as repeating, computed from its rule."""
    title = "Daily <b>briefing</b>"
    post_id = draft_in_review(running, "recurring-briefing", "briefings-2026", title)
    for approver in ("approver", "campaign-owner"):
        with running.stack.channel("publisher", user=approver) as channel:
            publisher_grpc.PublisherServiceStub(channel).Approve(
                publisher_pb.ReviewRequest(post_id=post_id), timeout=10
            )
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    with running.stack.channel("publisher", user="publisher") as channel:
        publisher_grpc.PublisherServiceStub(channel).Schedule(
            publisher_pb.ScheduleRequest(
                post_id=post_id,
                local_time=f"{tomorrow.isoformat()}T09:00",
                time_zone="UTC",
                rrule="FREQ=DAILY;COUNT=30",
            ),
            timeout=10,
        )
    editor = sign_in(browser, running, "editor", "/publish/calendar?campaign=briefings-2026")
    page = editor.page
    later = tomorrow + timedelta(days=7)  # its week holds only occurrences from the rule
    page.goto(f"{running.url}/publish/calendar?view=week&day={later}&campaign=briefings-2026")
    expect(page.get_by_test_id("calendar-summary")).to_contain_text("7 scheduled or published")
    monday = later - timedelta(days=later.weekday())
    for offset in range(7):
        cell = page.locator(f'td[data-day="{monday + timedelta(days=offset)}"]')
        expect(cell).to_contain_text(title)
        expect(cell).to_contain_text("09:00 UTC")
        expect(cell.get_by_test_id("repeats")).to_have_text("(repeats)")
    assert page.locator("td b").count() == 0  # the title's markup is text
    accessible(editor)
    # The month: the first one (its start, recorded) is not marked; the next ones are.
    page.goto(f"{running.url}/publish/calendar?view=month&day={tomorrow}&campaign=briefings-2026")
    first = page.locator(f'td[data-day="{tomorrow}"]')
    expect(first).to_contain_text(title)
    expect(first.get_by_test_id("repeats")).to_have_count(0)
    second = page.locator(f'td[data-day="{tomorrow + timedelta(days=1)}"]')
    expect(second.get_by_test_id("repeats")).to_have_text("(repeats)")
    accessible(editor)
    page.context.close()


def test_an_approver_requests_changes_with_a_reason_the_editor_sees(
    running: Running, browser: Browser
) -> None:
    title = "Fisheries <i>accord</i>: our view"
    post_id = draft_in_review(running, "changes-fisheries", "fisheries-2026", title)
    post_path = f"/publish/posts/{post_id}"

    # A viewer: the queue without the button; the form's POST forged anyway is refused by
    # the publisher.
    viewer = sign_in(browser, running, "viewer", "/publish/approvals")
    expect(viewer.page.locator(f'tr[data-post="{post_id}"]')).to_contain_text(title)
    expect(viewer.page.get_by_test_id("request-changes")).to_have_count(0)
    viewer.page.goto(running.url + post_path)
    expect(viewer.page.get_by_test_id("request-changes")).to_have_count(0)
    token = viewer.page.locator('input[name="csrf_token"]').first.get_attribute("value") or ""
    forged = viewer.page.request.post(
        f"{running.url}{post_path}/request-changes",
        form={"csrf_token": token, "reason": "Forged"},
    )
    assert forged.status == 403
    assert "needs the role approver" in forged.text()
    viewer.page.context.close()

    approver = sign_in(browser, running, "approver", "/publish/approvals")
    page = approver.page
    row = page.locator(f'tr[data-post="{post_id}"]')
    expect(row).to_contain_text(title)
    accessible(approver)
    screenshot(page, "publish-approvals")
    row.get_by_test_id("request-changes").click()
    expect(page.get_by_role("heading", name="Request changes")).to_be_visible()
    expect(page.get_by_test_id("changes-post")).to_have_text(title)
    # No reason: refused on its field, nothing sent.
    page.get_by_test_id("send-back").click()
    expect(page.get_by_test_id("reason-error")).to_contain_text(
        "Enter what the author should change"
    )
    expect(page.get_by_role("alert")).to_contain_text("Enter what the author should change")
    accessible(approver)
    reason = "Cite the <em>article</em> of the accord, and add the Spanish version."
    page.get_by_label("What should change, and why").fill(reason)
    page.get_by_test_id("send-back").click()
    expect(page.get_by_role("alert")).to_contain_text("You sent the post back to its author")
    expect(page.get_by_test_id("post-status")).to_have_text("Changes requested")
    expect(page.get_by_test_id("approve-post")).to_have_count(0)
    page.goto(running.url + "/publish/approvals")
    expect(page.locator(f'tr[data-post="{post_id}"]')).to_have_count(0)  # out of the queue
    page.context.close()

    editor = sign_in(browser, running, "editor", post_path)
    page = editor.page
    expect(page.get_by_test_id("post-status")).to_have_text("Changes requested")
    changes = page.get_by_test_id("changes-requested")
    expect(changes).to_contain_text("Changes requested by approver")
    expect(page.get_by_test_id("changes-reason")).to_have_text(reason)
    assert page.locator("[data-testid=changes-reason] em").count() == 0  # markup as text
    expect(page.get_by_test_id("comments")).to_contain_text(reason)
    expect(page.get_by_test_id("submit-post")).to_be_visible()  # the author can resubmit
    expect(page.get_by_test_id("request-changes")).to_have_count(0)
    accessible(editor)
    page.context.close()
    done = acted(running, "publisher", "audit_outcome")
    assert {
        ("RequestChanges", "viewer", "denied"),
        ("RequestChanges", "approver", "granted"),
    } <= done


def test_the_campaign_lead_sees_the_scorecard_move(running: Running, browser: Browser) -> None:
    measured_campaign(running, "ocean-2026", "Ocean <b>week</b> 2026", ("conversation", 3), (1, 30))
    session = sign_in(browser, running, "campaign-lead", "/evaluate/campaigns")
    page = session.page
    link = page.get_by_role("link", name="Ocean <b>week</b> 2026")
    expect(link).to_be_visible(timeout=15_000)
    accessible(session)
    link.click()
    expect(page.get_by_test_id("campaign-name")).to_have_text("Ocean <b>week</b> 2026")
    mentions = page.locator('[data-counter="mentions"] dd')
    expect(mentions).to_have_text("0")
    objective = page.locator('tr[data-objective="conversation"]')
    expect(objective).to_contain_text("3")
    expect(page.locator('[data-counter="response"] dd')).to_have_text("no replies yet")
    accessible(session)

    for number in range(3):
        publish_question(
            running, f"ocean-{number}", f"Ocean item {number}", "text", campaign_id="ocean-2026"
        )
    expect(mentions).to_have_text("3", timeout=60_000)
    expect(objective).to_contain_text("Achieved", timeout=30_000)
    expect(objective).to_contain_text("100 %")
    assert page.locator("#scorecard b").count() == 0
    accessible(session)
    screenshot(page, "evaluate-scorecard")
    page.context.close()


def test_the_campaign_lead_sets_up_a_campaign_with_field_errors_from_the_evaluator(
    running: Running, browser: Browser
) -> None:
    session = sign_in(browser, running, "campaign-lead", "/evaluate/campaigns")
    page = session.page
    page.get_by_test_id("new-campaign").click()
    expect(page.get_by_role("heading", name="Set up a campaign")).to_be_visible()
    accessible(session)
    today = datetime.now(UTC).date()
    page.get_by_label("Campaign id").fill("voice-2026")
    page.get_by_label("Name", exact=True).fill("Our voice on plastics")
    page.get_by_label("Starts").fill(str(today - timedelta(days=1)))
    page.get_by_label("Ends").fill(str(today + timedelta(days=30)))
    page.get_by_label("Objective id").fill("voice")
    page.get_by_label("Measure").select_option("share_of_voice")
    page.get_by_label("Target is").select_option("at_least")
    page.get_by_label("Target", exact=True).fill("120")
    page.get_by_test_id("save-campaign").click()
    # The evaluator refuses a share above 100 %: the message sits on the target field.
    expect(page.get_by_test_id("target-error")).to_contain_text(
        "Target 120 is outside what share_of_voice can be"
    )
    expect(page.get_by_label("Name", exact=True)).to_have_value("Our voice on plastics")
    accessible(session)
    page.get_by_label("Target", exact=True).fill("20")
    page.get_by_test_id("save-campaign").click()
    expect(page.get_by_role("alert")).to_contain_text("“Our voice on plastics” is measured")
    expect(page.get_by_test_id("campaign-name")).to_have_text("Our voice on plastics")
    expect(page.locator('tr[data-objective="voice"]')).to_contain_text("20.0 %")
    page.context.close()


def test_the_campaign_lead_edits_objectives_downloads_the_report_and_reviews(
    running: Running, browser: Browser
) -> None:
    measured_campaign(running, "river-2026", "River <i>days</i>", ("talk", 5), (20, -1))
    session = sign_in(browser, running, "campaign-lead", "/evaluate/campaigns/river-2026")
    page = session.page
    page.get_by_test_id("edit-campaign").click()
    expect(page.get_by_role("heading", name="Edit the campaign")).to_be_visible()
    expect(page.get_by_label("Name", exact=True)).to_have_value("River <i>days</i>")
    expect(page.get_by_label("Objective 1 target", exact=True)).to_have_value("5")
    accessible(session)
    # A second objective in the spare row; the evaluator refuses a share above 100 %.
    page.get_by_label("Objective 2 id", exact=True).fill("voice")
    page.get_by_label("Objective 2 measure").select_option("share_of_voice")
    page.get_by_label("Objective 2 filters (optional)").fill("language=es,fr")
    page.get_by_label("Objective 2 target", exact=True).fill("120")
    page.get_by_test_id("save-campaign").click()
    expect(page.get_by_test_id("objectives-1-target-error")).to_contain_text(
        "Objective 2: target 120 is outside what share_of_voice can be"
    )
    expect(page.get_by_label("Objective 2 filters (optional)")).to_have_value("language=es,fr")
    accessible(session)
    page.get_by_label("Objective 2 target", exact=True).fill("20")
    page.get_by_test_id("save-campaign").click()
    expect(page.get_by_role("alert")).to_contain_text("“River <i>days</i>” is saved")
    expect(page.locator('tr[data-objective="voice"]')).to_contain_text("20.0 %", timeout=15_000)
    expect(page.locator('tr[data-objective="talk"]')).to_contain_text("5")

    # Feedback: the evaluator's own error sits on its field, then it is recorded.
    page.goto(f"{running.url}/evaluate/campaigns/river-2026/feedback")
    expect(page.get_by_test_id("feedback-summary")).to_contain_text("0 pieces of feedback")
    accessible(session)
    page.get_by_label("From").select_option("partner")
    page.get_by_label("Rating").select_option("4")
    page.get_by_label("What they said").fill("Clear <b>posts</b>, late answers")
    page.get_by_test_id("save-feedback").click()
    expect(page.get_by_test_id("author-error")).to_contain_text("is required for partner")
    expect(page.get_by_label("What they said")).to_have_value("Clear <b>posts</b>, late answers")
    page.get_by_label("Their organisation (required for a partner)").fill("Ocean Trust")
    page.get_by_test_id("save-feedback").click()
    expect(page.get_by_role("alert")).to_contain_text("The feedback is recorded")

    # Reports: the HTML is drawn with its progress shown, then downloads; the PDF is a PDF.
    page.goto(f"{running.url}/evaluate/campaigns/river-2026/reports")
    expect(page.get_by_test_id("campaign-name")).to_have_text("River <i>days</i>")
    accessible(session)
    page.get_by_test_id("report-html").click()
    expect(page.get_by_test_id("report-ready")).to_be_visible(timeout=60_000)
    with page.expect_download(timeout=60_000) as downloading:
        page.get_by_test_id("report-ready").click()
    html = Path(downloading.value.path()).read_text(encoding="utf-8")
    assert downloading.value.suggested_filename == "river-2026-report.html"
    assert "River &lt;i&gt;days&lt;/i&gt;" in html
    pdf = page.request.get(f"{running.url}/evaluate/campaigns/river-2026/report.pdf")
    assert pdf.ok and pdf.body().startswith(b"%PDF")
    assert "attachment" in pdf.headers["content-disposition"]

    # The after-action review: the team's lessons with those the evaluator draws.
    page.goto(f"{running.url}/evaluate/campaigns/river-2026/review")
    expect(page.get_by_role("heading", name="After-action review")).to_be_visible()
    accessible(session)
    page.get_by_label("What worked (optional)").fill("Spanish <em>first</em>")
    page.get_by_test_id("save-review").click()
    expect(page.get_by_test_id("lessons-worked")).to_contain_text("Spanish <em>first</em>")
    expect(page.locator('tr[data-objective="voice"]')).to_be_visible()
    expect(page.get_by_test_id("review-facts")).to_contain_text("campaign-lead")
    accessible(session)
    page.context.close()


def _readable(
    stub: evaluator_grpc.EvaluatorServiceStub, request: evaluator_pb.GetCampaignRequest
) -> bool:
    try:
        stub.GetCampaign(request, timeout=5)
    except Exception:  # NOT_FOUND until the evaluator has read its topic
        return False
    return True


def test_engage_filters_labels_reply_approval_questions_and_partners(
    running: Running, browser: Browser
) -> None:
    officer = sign_in(browser, running, "press-officer", "/engage/inbox")
    page = officer.page
    title = "Is the <i>ocean</i> fund open to NGOs?"
    publish_question(running, "browser-q-engage", title, "Asking for Blue Seas <b>Trust</b>.")
    link = page.get_by_role("link", name=title)
    expect(link).to_be_visible(timeout=30_000)

    # Filters: the engager's (state) and the console's own (language).
    page.get_by_label("State").select_option(label="New")
    page.get_by_label("Language").fill("en")
    page.get_by_test_id("apply-filters").click()
    expect(page.get_by_test_id("inbox-summary")).to_contain_text(
        "filtered by state new; language en"
    )
    expect(link).to_be_visible()
    accessible(officer)
    page.get_by_label("Language").fill("fr")
    page.get_by_test_id("apply-filters").click()
    expect(page.get_by_test_id("inbox-summary")).to_contain_text("0 conversations")
    expect(page.get_by_role("link", name=title)).to_have_count(0)

    # Labels, priority, a named colleague, a reply in Spanish that waits for approval.
    page.get_by_label("Language").fill("")
    page.get_by_test_id("apply-filters").click()
    page.get_by_role("link", name=title).click()
    page.get_by_label("Add labels").fill("hostile, ngo")
    page.get_by_test_id("add-labels").click()
    expect(page.get_by_role("alert")).to_contain_text("Labels added hostile, ngo")
    expect(page.get_by_test_id("labels")).to_contain_text("hostile")
    page.get_by_label("Priority").select_option(label="Urgent")
    page.get_by_test_id("set-priority").click()
    expect(page.get_by_role("alert")).to_contain_text("The priority is now urgent")
    expect(page.get_by_test_id("conversation-facts")).to_contain_text("Urgent")
    page.get_by_label("Assign to a colleague").fill("ben")
    page.get_by_test_id("assign").click()
    expect(page.get_by_test_id("assignee")).to_have_text("ben")
    page.get_by_label("Saved reply").select_option(label="Thank you for your question (en, es)")
    page.get_by_label("Reply language").select_option("es")
    page.get_by_test_id("send-reply").click()
    expect(page.get_by_test_id("replies")).to_contain_text("Estimado/a Maria Lopez")
    expect(page.get_by_test_id("reply-status")).to_contain_text("Awaiting approval")
    expect(page.get_by_test_id("approve-reply")).to_have_count(0)  # not the officer's to approve
    accessible(officer)
    conversation_url = page.url

    # The approver sees it waiting and approves it.
    approver = sign_in(browser, running, "approver", "/engage/approvals")
    expect(approver.page.get_by_test_id("approvals-summary")).to_have_text(
        "1 reply awaiting approval"
    )
    expect(approver.page.get_by_test_id("approvals")).to_contain_text("Estimado/a Maria Lopez")
    accessible(approver)
    approver.page.get_by_test_id("approve-reply").click()
    expect(approver.page.get_by_role("alert")).to_contain_text("The reply is approved")
    expect(approver.page.get_by_test_id("approvals-summary")).to_have_text(
        "0 replies awaiting approval"
    )
    approver.page.context.close()
    page.goto(conversation_url)
    expect(page.get_by_test_id("reply-status")).not_to_contain_text("Awaiting approval")

    # A questions campaign: a mention with its hashtag becomes a question to moderate.
    page.goto(running.url + "/engage/questions")
    accessible(officer)
    page.get_by_label("Title").fill("Ask the <b>ambassador</b>")
    page.get_by_label("Issue").fill("plastics-treaty")
    page.get_by_label("Hashtag").fill("AskAmb")
    page.get_by_test_id("create-questions").click()
    expect(page.get_by_test_id("questions-title")).to_have_text("Ask the <b>ambassador</b>")
    expect(page.get_by_test_id("questions-summary")).to_have_text(
        "0 questions, 0 awaiting moderation"
    )
    publish_question(
        running,
        "browser-q-askamb",
        "Plastics",
        "#AskAmb will Spain sign <u>it</u>?",
        hashtags=("AskAmb",),
    )
    wait_until(
        lambda: (
            page.reload() is not None
            and "1 awaiting moderation" in page.get_by_test_id("questions-summary").inner_text()
        ),
        30,
        "the question",
    )
    questions = page.get_by_test_id("questions")
    expect(questions).to_contain_text("#AskAmb will Spain sign <u>it</u>?")
    expect(page.get_by_test_id("question-status")).to_have_text("Awaiting moderation")
    accessible(officer)
    page.get_by_test_id("accept-question").click()
    expect(page.get_by_test_id("question-status")).to_have_text("Accepted")
    page.get_by_label("Our answer").fill("Yes, in March.")
    page.get_by_test_id("answer-question").click()
    expect(page.get_by_test_id("question-status")).to_have_text("Answered")
    expect(page.get_by_test_id("question-answer")).to_contain_text("Yes, in March.")

    # The partner register: add one, record a meeting, move the relationship on.
    page.goto(running.url + "/engage/partners")
    expect(page.get_by_test_id("partners-summary")).to_contain_text("partner")
    accessible(officer)
    page.get_by_label("Name").fill("Blue Seas <Trust>")
    page.get_by_label("Countries").fill("es")
    page.get_by_label("Kind").select_option(label="NGO")
    page.get_by_label("Relationship stage").select_option(label="Identified")
    page.get_by_test_id("register-partner").click()
    expect(page.get_by_test_id("partner-name")).to_have_text("Blue Seas <Trust>")
    expect(page.get_by_test_id("partner-facts")).to_contain_text("ES")
    page.get_by_label("What happened").fill("Coffee with the director")
    page.get_by_test_id("record-activity").click()
    expect(page.get_by_role("alert")).to_contain_text("The activity is on the timeline")
    expect(page.get_by_test_id("timeline")).to_contain_text("Coffee with the director")
    page.get_by_label("Relationship stage").select_option(label="Engaged")
    page.get_by_test_id("set-stage").click()
    expect(page.get_by_test_id("partner-facts")).to_contain_text("Engaged")
    accessible(officer)
    page.context.close()

    # A viewer reads the register but gets no action.
    viewer = sign_in(browser, running, "viewer", "/engage/partners")
    expect(viewer.page.get_by_test_id("partners")).to_contain_text("Blue Seas <Trust>")
    expect(viewer.page.get_by_test_id("register-partner")).to_have_count(0)
    viewer.page.context.close()


def _questions_campaign(running: Running, request_id: str, title: str) -> str:
    with running.stack.channel("engager", user="officer") as channel:
        stub = engager_grpc.EngagerServiceStub(channel)
        created = stub.CreateQuestionsCampaign(
            engager_pb.CreateQuestionsCampaignRequest(
                request_id=request_id, issue_id="plastics-treaty", title=title
            ),
            timeout=10,
        )
        return created.questions_campaign.questions_id


def test_questions_campaigns_are_listed_and_a_viewer_gets_no_action(
    running: Running, browser: Browser
) -> None:
    """Questions campaigns made through the engager's API appear in the list with their
    state and link to their moderation page; a viewer reads the list without the form."""
    open_title = "Ask the <i>consul</i>"
    open_id = _questions_campaign(running, "browser-list-open", open_title)
    closed_id = _questions_campaign(running, "browser-list-closed", "Old <b>questions</b>")
    with running.stack.channel("engager", user="officer") as channel:
        engager_grpc.EngagerServiceStub(channel).CloseQuestionsCampaign(
            engager_pb.CloseQuestionsCampaignRequest(questions_id=closed_id), timeout=10
        )

    officer = sign_in(browser, running, "press-officer", "/engage/questions")
    page = officer.page
    table = page.get_by_test_id("questions-campaigns")
    expect(table.locator(f'tr[data-questions="{open_id}"]')).to_contain_text("Taking questions")
    expect(table.locator(f'tr[data-questions="{closed_id}"]')).to_contain_text("Closed")
    expect(table.locator(f'tr[data-questions="{closed_id}"]')).to_contain_text(
        "Old <b>questions</b>"
    )
    expect(page.get_by_test_id("create-questions")).to_have_count(1)
    accessible(officer)
    screenshot(page, "engage-questions")
    page.get_by_label("Only those taking questions").check()
    page.get_by_test_id("apply-filters").click()
    expect(table.locator(f'tr[data-questions="{open_id}"]')).to_be_visible()
    expect(table.locator(f'tr[data-questions="{closed_id}"]')).to_have_count(0)
    page.get_by_role("link", name=open_title).click()
    expect(page.get_by_test_id("questions-title")).to_have_text(open_title)
    expect(page.get_by_test_id("questions-summary")).to_have_text(
        "0 questions, 0 awaiting moderation"
    )
    page.context.close()

    viewer = sign_in(browser, running, "viewer", "/engage/questions")
    expect(viewer.page.get_by_test_id("questions-campaigns")).to_contain_text(open_title)
    expect(viewer.page.get_by_test_id("create-questions")).to_have_count(0)
    accessible(viewer)
    viewer.page.context.close()


def _feedback_shown(page: Page, text: str) -> bool:
    page.reload()
    return text in page.get_by_test_id("feedback-summary").inner_text() and (
        page.get_by_test_id("feedback-list").count() > 0
    )


def test_feedback_and_reviews_are_listed_a_review_opens_and_a_report_shows_its_progress(
    running: Running, browser: Browser
) -> None:
    """Feedback and a review recorded through the evaluator's API appear in the lists (text
    as text), a review opens from the list, a viewer sees no action, and a PDF report
    shows its steps in the status region before its download link."""
    measured_campaign(running, "coast-2026", "Coast <i>week</i>", ("talk", 5), (10, -1))
    with running.stack.channel("evaluator", user="analyst") as channel:
        stub = evaluator_grpc.EvaluatorServiceStub(channel)
        for number, (role, organisation, rating, text) in enumerate(
            [
                (Feedback.FROM_ROLE_PARTNER, "Sea <Trust>", 5, "Good <b>maps</b>"),
                (Feedback.FROM_ROLE_AUDIENCE, "", 2, "Slow answers"),
            ]
        ):
            stub.SubmitFeedback(
                evaluator_pb.SubmitFeedbackRequest(
                    campaign_id="coast-2026",
                    request_id=f"browser-feedback-{number}",
                    feedback=Feedback(
                        from_role=role, organisation=organisation, rating=rating, text=text
                    ),
                ),
                timeout=10,
            )
        review = stub.ReviewCampaign(
            evaluator_pb.ReviewCampaignRequest(
                campaign_id="coast-2026",
                request_id="browser-review",
                author="Cam <Lead>",
                lessons=[
                    evaluate_pb2.Lesson(
                        kind=evaluate_pb2.Lesson.KIND_NEXT_TIME, text="Brief <em>earlier</em>"
                    )
                ],
            ),
            timeout=30,
        )

    lead = sign_in(browser, running, "campaign-lead", "/evaluate/feedback?campaign=coast-2026")
    page = lead.page
    wait_until(lambda: _feedback_shown(page, "2 pieces of feedback"), 30, "the feedback")
    rows = page.get_by_test_id("feedback-row")
    expect(rows).to_have_count(2)
    expect(page.get_by_test_id("feedback-list")).to_contain_text("Good <b>maps</b>")
    expect(page.get_by_test_id("feedback-list")).to_contain_text("Partner: Sea <Trust>")
    expect(page.get_by_test_id("feedback-list")).to_contain_text("5 of 5")
    expect(page.get_by_test_id("record-feedback")).to_be_visible()
    accessible(lead)
    screenshot(page, "evaluate-feedback")
    page.get_by_label("From").select_option("audience")
    page.get_by_test_id("apply-filters").click()
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("Slow answers")
    expect(page.get_by_test_id("feedback-summary")).to_have_text(
        "1 piece of feedback on Coast <i>week</i> from the audience"
    )

    # The reviews: the one made through the API, opened from the list.
    page.goto(f"{running.url}/evaluate/reviews?campaign=coast-2026")
    row = page.locator(f'tr[data-review="{review.review_id}"]')
    expect(row).to_contain_text("Coast <i>week</i>", timeout=30_000)
    expect(row).to_contain_text("Cam <Lead>")
    expect(page.get_by_test_id("start-review")).to_be_visible()
    accessible(lead)
    screenshot(page, "evaluate-reviews")
    row.get_by_test_id("open-review").click()
    expect(page.get_by_role("heading", name="After-action review")).to_be_visible()
    expect(page.get_by_test_id("lessons-next_time")).to_contain_text("Brief <em>earlier</em>")
    expect(page.get_by_test_id("review-facts")).to_contain_text("Cam <Lead>")
    accessible(lead)

    # The PDF report: the status region shows the evaluator's steps, then the link.
    page.goto(f"{running.url}/evaluate/campaigns/coast-2026/reports")
    page.evaluate(
        """() => {
            window.reportSteps = [];
            const status = document.querySelector('[data-testid="report-status"]');
            new MutationObserver(() => window.reportSteps.push(status.textContent.trim()))
                .observe(status, {childList: true, subtree: true, characterData: true});
        }"""
    )
    expect(page.get_by_test_id("report-status")).to_have_attribute("aria-live", "polite")
    page.get_by_test_id("report-pdf").click()
    expect(page.get_by_test_id("report-ready")).to_be_visible(timeout=60_000)
    expect(page.get_by_test_id("report-ready")).to_contain_text(re.compile(r"PDF \(\d+\.\d KB\)"))
    steps: list[str] = page.evaluate("window.reportSteps")
    drawn = [text for text in steps if re.search(r"Step \d+ of \d+", text)]
    assert any("drawing the volume plot" in text for text in drawn), steps
    numbers = [int(m.group(1)) for m in (re.search(r"Step (\d+) of", t) for t in drawn) if m]
    assert numbers == sorted(numbers) and len(set(numbers)) >= 2, steps
    accessible(lead)
    screenshot(page, "evaluate-report-progress")
    with page.expect_download(timeout=30_000) as downloading:
        page.get_by_test_id("report-ready").click()
    assert downloading.value.suggested_filename == "coast-2026-report.pdf"
    assert Path(downloading.value.path()).read_bytes().startswith(b"%PDF")
    page.context.close()

    # A viewer reads both lists and the review, with no action to take.
    viewer = sign_in(browser, running, "viewer", "/evaluate/feedback?campaign=coast-2026")
    expect(viewer.page.get_by_test_id("feedback-list")).to_contain_text("Good <b>maps</b>")
    expect(viewer.page.get_by_test_id("record-feedback")).to_have_count(0)
    accessible(viewer)
    viewer.page.goto(f"{running.url}/evaluate/reviews")
    expect(viewer.page.locator(f'tr[data-review="{review.review_id}"]')).to_be_visible()
    expect(viewer.page.get_by_test_id("start-review")).to_have_count(0)
    accessible(viewer)
    viewer.page.context.close()


# Listen: mentions and alerts ------------------------------------------------------------

LISTEN_ISSUE = "coastal-talks"


def listen_mention(
    mention_id: str,
    minutes_ago: int,
    title: str,
    language: str = "en",
    source: str = "rss",
    sentiment: str = "neutral",
    stance: str = "unknown",
    influence: float = 0.1,
    duplicate_of: str = "",
    issue: str = LISTEN_ISSUE,
) -> tuple[str, Envelope]:
    """A mention of ``issue`` as the listener would publish it."""
    published = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    mention = listen_pb2.Mention(
        mention_id=mention_id,
        source=source,
        source_url=f"https://{source}.example.org/feed",
        item_id=mention_id,
        url=f"https://{source}.example.org/{mention_id}",
        author="Coastal Watch",
        title=title,
        text=f"About the coastal talks ({mention_id}).",
        language=language,
        sentiment=listen_pb2.Label(value=sentiment, score=0.9),
        stance=listen_pb2.Label(value=stance, score=0.8),
        influence=influence,
        duplicate_of=duplicate_of,
    )
    mention.published_at.FromDatetime(published)
    envelope = make_envelope(
        mention,
        event_id=mention_id,
        source_service="listener",
        occurred_at=published,
        issue_id=issue,
    )
    return mention_id, envelope


def shown_mentions(session: Session) -> list[str]:
    """The ids of the mention rows the page shows, top to bottom."""
    rows = session.page.locator("#mentions tr[data-mention]")
    return [str(row.get_attribute("data-mention")) for row in rows.all()]


def indexed(running: Running, mention_id: str, issue: str = LISTEN_ISSUE) -> bool:
    """Whether the evaluator can find ``mention_id`` (asked as the analyst, over gRPC)."""
    request = evaluator_pb.SearchMentionsRequest(issue_ids=[issue], page_size=100)
    with running.stack.channel("evaluator", user="analyst") as channel:
        found = evaluator_grpc.EvaluatorServiceStub(channel).SearchMentions(request, timeout=5)
    return any(hit.mention.mention_id == mention_id for hit in found.mentions)


def tick_exactly(page: Page, group: str, labels: str) -> None:
    """Ticks the boxes of the fieldset whose legend starts with ``group`` named in
    ``labels`` (separated by commas) and unticks the others."""
    wanted = {label.strip() for label in labels.split(",") if label.strip()}
    fieldset = page.get_by_role("group", name=re.compile(f"^{group}"))
    boxes = fieldset.get_by_role("checkbox")
    names = [str(box.evaluate("b => b.labels[0].textContent")).strip() for box in boxes.all()]
    assert wanted <= set(names), (wanted, names)
    for box, name in zip(boxes.all(), names, strict=True):
        box.set_checked(name in wanted)


def filter_mentions(session: Session, **fields: str) -> None:
    """Sets the mentions form's fields (label → value; "Issues", "Sentiments" and
    "Stances" are groups of boxes, given the labels to tick separated by commas; "fold" a
    checkbox), submits it and waits for the page it gives."""
    page = session.page
    for label, value in fields.items():
        if label in ("Issues", "Sentiments", "Stances"):
            tick_exactly(page, label, value)
        elif label == "fold":
            page.get_by_label("Fold duplicates into their first copy").set_checked(value == "on")
        else:
            page.get_by_label(label, exact=True).fill(value)
    with page.expect_navigation():
        page.get_by_test_id("apply-filters").click()


def test_mentions_arrive_live_and_each_filter_narrows_them(
    running: Running, browser: Browser, tmp_path: Path
) -> None:
    """The steps in order on one page, each its own function so that a failure names the
    step."""
    plastics_treaty_tracked(running, tmp_path)
    session = sign_in(browser, running, "analyst", "/listen/issues")
    step_the_mentions_page_opens_from_the_listen_menu(session)
    step_mentions_arrive_live_as_text_with_copies_folded(running, session)
    step_each_filter_narrows_the_mentions(session)
    step_a_filter_that_cannot_run_is_refused_on_its_field(session)
    step_several_values_of_a_filter_at_once(running, session)
    step_mentions_arriving_live_meet_the_filters_in_force(running, session)
    session.page.context.close()


def step_the_mentions_page_opens_from_the_listen_menu(session: Session) -> None:
    """The Listen menu marks the page; filtered by the test's issue, it is empty."""
    page = session.page
    summary = page.get_by_test_id("mentions-summary")
    listen = page.get_by_role("navigation", name="Listen")
    expect(listen.get_by_role("link")).to_have_text(
        ["Tracked issues", "Sources", "Mentions", "Alerts"]
    )
    listen.get_by_role("link", name="Mentions").click()
    expect(page.get_by_role("heading", name="Mentions")).to_be_visible()
    expect(listen.get_by_role("link", name="Mentions")).to_have_attribute("aria-current", "page")
    filter_mentions(session, **{"Other issue ids": LISTEN_ISSUE})
    expect(summary).to_have_text(
        f"0 mentions, filtered by issue {LISTEN_ISSUE} (copies folded into their first)"
    )
    accessible(session)


def step_mentions_arrive_live_as_text_with_copies_folded(
    running: Running, session: Session
) -> None:
    """A mention arrives on Kafka: the open page shows it without a reload, markup as text;
    then another in French from Mastodon, and a copy of the first: folded into it."""
    page = session.page
    summary = page.get_by_test_id("mentions-summary")
    first = page.locator('tr[data-mention="coast-a"]')
    page.evaluate("window.stillThisPage = true")  # gone if the page were loaded again
    title = "Coastal <img src=x onerror=\"document.title='pwned'\"> talks <b>open</b>"
    produce(
        running,
        "legation.listen.mentions.v1",
        [
            listen_mention(
                "coast-a", 30, title, sentiment="negative", stance="against", influence=0.8
            )
        ],
    )
    expect(first).to_be_visible(timeout=30_000)
    expect(first).to_contain_text(title)
    expect(first).to_contain_text("sentiment negative")
    expect(first).to_contain_text("stance against")
    expect(first).to_contain_text("0.80 of 1")
    expect(first).to_contain_text("rss · https://rss.example.org/feed")
    assert page.locator("#mentions img, #mentions b, #mentions script").count() == 0
    assert page.title().startswith("Mentions")
    assert page.evaluate("window.stillThisPage") is True

    produce(
        running,
        "legation.listen.mentions.v1",
        [
            listen_mention(
                "coast-b",
                10,
                "Pourparlers côtiers",
                language="fr",
                source="mastodon",
                sentiment="positive",
                stance="favour",
                influence=0.2,
            ),
            listen_mention("coast-a-copy", 20, "Coastal talks (copy)", duplicate_of="coast-a"),
        ],
    )
    expect(first.get_by_test_id("copies")).to_have_text("1 copy", timeout=30_000)
    expect(page.locator('tr[data-mention="coast-b"]')).to_be_visible(timeout=30_000)
    expect(summary).to_contain_text("2 mentions, filtered by issue")
    assert shown_mentions(session) == ["coast-b", "coast-a"]
    assert page.evaluate("window.stillThisPage") is True
    accessible(session)


def step_each_filter_narrows_the_mentions(session: Session) -> None:
    """Each filter, end to end: what the page shows."""
    page = session.page
    summary = page.get_by_test_id("mentions-summary")
    first = page.locator('tr[data-mention="coast-a"]')
    filter_mentions(session, Languages="FR")
    expect(page.get_by_label("Languages", exact=True)).to_have_value("fr")
    expect(summary).to_contain_text("1 mention, filtered by issue coastal-talks; language fr")
    assert shown_mentions(session) == ["coast-b"]
    filter_mentions(session, Languages="", Source="mastodon")
    expect(summary).to_contain_text("1 mention, filtered by issue coastal-talks; source mastodon")
    assert shown_mentions(session) == ["coast-b"]
    filter_mentions(session, Source="https://rss.example.org/feed", Sentiments="Negative")
    expect(summary).to_contain_text("1 mention")
    assert shown_mentions(session) == ["coast-a"]
    filter_mentions(session, Source="", Sentiments="", Stances="In favour")
    expect(summary).to_contain_text("1 mention, filtered by issue coastal-talks; stance favour")
    assert shown_mentions(session) == ["coast-b"]
    filter_mentions(session, Stances="", **{"Influence at least": "0.5"})
    expect(summary).to_contain_text("influence at least 0.5")
    assert shown_mentions(session) == ["coast-a"]
    filter_mentions(session, **{"Influence at least": ""}, fold="off")
    expect(summary).to_have_text(f"3 mentions, filtered by issue {LISTEN_ISSUE}")
    assert shown_mentions(session) == ["coast-b", "coast-a-copy", "coast-a"]
    expect(first.get_by_test_id("copies")).to_have_count(0)
    accessible(session)


def step_a_filter_that_cannot_run_is_refused_on_its_field(session: Session) -> None:
    """Refused on its field before any search; one the evaluator refuses, in its words."""
    page = session.page
    filter_mentions(session, **{"Influence at least": "2"})
    expect(page.get_by_test_id("min_influence-error")).to_contain_text(
        "Enter an influence from 0 to 1"
    )
    expect(page.get_by_role("alert")).to_contain_text("Enter an influence from 0 to 1")
    assert shown_mentions(session) == []
    accessible(session)
    # One the evaluator refuses (an issue id is an id): its words, on the issue's field.
    filter_mentions(session, **{"Influence at least": "", "Other issue ids": "coastal talks!"})
    expect(page.get_by_test_id("issue-error")).to_contain_text("Issue must be an id")
    assert shown_mentions(session) == []


def step_several_values_of_a_filter_at_once(running: Running, session: Session) -> None:
    """Either sentiment, either stance, any of the languages, any of the issues (a tracked
    one ticked, another typed)."""
    page = session.page
    summary = page.get_by_test_id("mentions-summary")
    filter_mentions(session, **{"Other issue ids": LISTEN_ISSUE}, Sentiments="Negative, Positive")
    expect(summary).to_contain_text(
        "2 mentions, filtered by issue coastal-talks; sentiments positive, negative"
    )
    assert shown_mentions(session) == ["coast-b", "coast-a"]
    filter_mentions(session, Sentiments="", Stances="Against, In favour")
    expect(summary).to_contain_text("issue coastal-talks; stances favour, against")
    assert shown_mentions(session) == ["coast-b", "coast-a"]
    filter_mentions(session, Stances="Against", Languages="fr, EN", fold="off")
    expect(page.get_by_label("Languages", exact=True)).to_have_value("fr, en")
    expect(summary).to_contain_text("languages fr, en; stance against")
    assert shown_mentions(session) == ["coast-a"]
    filter_mentions(session, Stances="")
    assert shown_mentions(session) == ["coast-b", "coast-a-copy", "coast-a"]
    produce(
        running,
        "legation.listen.mentions.v1",
        [listen_mention("plastics-fr", 5, "Le traité", language="fr", issue="plastics-treaty")],
    )
    wait_until(lambda: indexed(running, "plastics-fr", "plastics-treaty"), 30, "indexed")
    filter_mentions(session, Issues="Plastics treaty", Languages="fr", fold="on")
    expect(page.get_by_test_id("issue-boxes").get_by_label("Plastics treaty")).to_be_checked()
    expect(page.get_by_label("Other issue ids")).to_have_value(LISTEN_ISSUE)
    expect(summary).to_contain_text(
        "2 mentions, filtered by issues plastics-treaty, coastal-talks; language fr"
    )
    assert shown_mentions(session) == ["plastics-fr", "coast-b"]
    accessible(session)


def step_mentions_arriving_live_meet_the_filters_in_force(
    running: Running, session: Session
) -> None:
    """An English mention (indexed first) stays out, the French and German ones that follow
    it come in."""
    page = session.page
    summary = page.get_by_test_id("mentions-summary")
    filter_mentions(session, Issues="", Languages="fr, de")
    assert shown_mentions(session) == ["coast-b"]
    page.evaluate("window.stillThisPage = true")
    produce(running, "legation.listen.mentions.v1", [listen_mention("coast-en", 1, "Talks")])
    wait_until(lambda: indexed(running, "coast-en"), 30, "the English mention indexed")
    produce(
        running,
        "legation.listen.mentions.v1",
        [
            listen_mention("coast-fr", 2, "Les pourparlers", language="fr"),
            listen_mention("coast-de", 3, "Die Gespräche", language="de"),
        ],
    )
    expect(page.locator('tr[data-mention="coast-de"]')).to_be_visible(timeout=30_000)
    expect(page.locator('tr[data-mention="coast-fr"]')).to_be_visible(timeout=30_000)
    assert shown_mentions(session) == ["coast-fr", "coast-de", "coast-b"]
    expect(summary).to_contain_text("3 mentions, filtered by issue coastal-talks; languages fr, de")
    assert page.evaluate("window.stillThisPage") is True
    accessible(session)
    screenshot(page, "listen-mentions")


def surge(issue: str, count: int, start: datetime) -> tuple[str, Envelope]:
    """An alert of ``issue`` for the hour from ``start``, as the listener would publish it."""
    alert = listen_pb2.Alert(
        alert_id=f"{issue}-surge",
        issue_id=issue,
        count=count,
        baseline_mean=3.14,
        baseline_stddev=1.37,
        baseline_hours=168,
        threshold=7.25,
    )
    alert.window_start.FromDatetime(start)
    alert.window_end.FromDatetime(start + timedelta(hours=1))
    alert.top_terms.add(value="<b>spill</b>", count=9)
    alert.top_sources.add(value="https://rss.example.org/feed", count=12)
    alert.sentiment.add(value="negative", count=10)
    envelope = make_envelope(
        alert,
        event_id=alert.alert_id,
        source_service="listener",
        occurred_at=start + timedelta(hours=1),
        issue_id=issue,
    )
    return alert.alert_id, envelope


def alert_indexed(running: Running, issue: str) -> bool:
    """Whether the evaluator lists an alert of ``issue`` (asked as the analyst)."""
    request = evaluator_pb.ListAlertsRequest(issue_id=issue)
    with running.stack.channel("evaluator", user="analyst") as channel:
        found = evaluator_grpc.EvaluatorServiceStub(channel).ListAlerts(request, timeout=5)
    return len(found.alerts) > 0


def test_an_alert_appears_live_on_the_alerts_page(
    running: Running, browser: Browser, tmp_path: Path
) -> None:
    plastics_treaty_tracked(running, tmp_path)
    session = sign_in(browser, running, "analyst", "/listen/alerts")
    page = session.page
    listen = page.get_by_role("navigation", name="Listen")
    expect(listen.get_by_role("link", name="Alerts")).to_have_attribute("aria-current", "page")
    # An issue id the evaluator refuses: its words on the field, nothing to follow.
    page.get_by_label("Other issue ids").fill("coastal talks!")
    with page.expect_navigation():
        page.get_by_test_id("apply-filters").click()
    expect(page.get_by_test_id("issue-error")).to_contain_text("Issue must be an id")
    expect(page.get_by_test_id("alerts-live")).to_have_count(0)
    accessible(session)
    # Two issues at once: a tracked one ticked, another typed.
    page.get_by_label("Other issue ids").fill(LISTEN_ISSUE)
    tick_exactly(page, "Issues", "Plastics treaty")
    with page.expect_navigation():
        page.get_by_test_id("apply-filters").click()
    summary = page.get_by_test_id("alerts-summary")
    chosen = f"plastics-treaty, {LISTEN_ISSUE}"
    expect(summary).to_have_text(f"0 alerts for issues {chosen}")
    accessible(session)
    page.evaluate("window.stillThisPage = true")

    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    # An alert of an issue not chosen, indexed first, stays out; those that follow come in.
    produce(running, "legation.listen.alerts.v1", [surge("other-issue", 30, start)])
    wait_until(lambda: alert_indexed(running, "other-issue"), 30, "the other alert indexed")
    produce(
        running,
        "legation.listen.alerts.v1",
        [surge(LISTEN_ISSUE, 12, start), surge("plastics-treaty", 9, start)],
    )
    row = page.locator(f'tr[data-alert="{LISTEN_ISSUE}-surge"]')
    expect(row).to_be_visible(timeout=30_000)
    expect(page.locator('tr[data-alert="plastics-treaty-surge"]')).to_be_visible(timeout=30_000)
    expect(summary).to_have_text(f"2 alerts for issues {chosen}")
    expect(page.locator('tr[data-alert="other-issue-surge"]')).to_have_count(0)
    expect(row).to_contain_text(f"{start:%Y-%m-%d %H}:00 UTC, 1 h")
    expect(row).to_contain_text("12 mentions")
    expect(row).to_contain_text("usually 3.1 mentions an hour (± 1.4) over 7 days")
    expect(row).to_contain_text("alert above 7.2 mentions")
    expect(row).to_contain_text("Terms: <b>spill</b> (9 mentions)")
    expect(row).to_contain_text("Sentiment: negative (10 mentions)")
    assert row.locator("b").count() == 0
    assert page.evaluate("window.stillThisPage") is True
    accessible(session)
    screenshot(page, "listen-alerts")
    page.context.close()


def test_the_editor_counts_a_channel_s_text_as_delivered_and_its_limit_holds(
    running: Running, browser: Browser
) -> None:
    """A channel with a 60-character limit: the editor's count is the channel's (links as
    the publisher's short links), over the limit it says by how much, the publisher refuses
    to save it on that channel's field, and a shorter text saves."""
    assert running.stack.redirect_port is not None
    short_link = len(f"http://127.0.0.1:{running.stack.redirect_port}/r/") + 11
    link = "https://www.example.org/news/2026/12/the-plastics-treaty-our-position-in-full"
    too_long = f"Our position on the plastics treaty, in full: {link}"
    too_long_count = len("Our position on the plastics treaty, in full: ") + short_link
    fits = f"Our position: {link}"
    fits_count = len("Our position: ") + short_link
    assert too_long_count > SHORT_LIMIT >= fits_count and len(fits) > SHORT_LIMIT

    session = sign_in(browser, running, "editor", "/publish/posts/new")
    page = session.page
    page.get_by_label("Campaign").fill("plastics-2026")
    page.get_by_label("Title", exact=True).fill("Short channel")
    page.get_by_label("Text", exact=True).fill("We support a binding treaty.")
    own = page.get_by_label(f"Own text for {SHORT_CHANNEL} (optional)")
    expect(page.locator(f"#variant_{SHORT_CHANNEL}-hint")).to_contain_text(
        f"At most {SHORT_LIMIT} characters, counted as delivered"
    )
    counted = page.get_by_test_id(f"count-{SHORT_CHANNEL}")
    expect(counted).to_contain_text(f"28 of {SHORT_LIMIT} characters")  # the post's text
    own.fill(too_long)
    expect(counted).to_contain_text(
        f"{too_long_count - SHORT_LIMIT} characters over the {SHORT_CHANNEL} limit of {SHORT_LIMIT}"
    )
    expect(counted.locator(".govuk-tag--red")).to_have_text("Too long")
    accessible(session)

    page.get_by_test_id("save-draft").click()
    error = page.locator(f"#variant_{SHORT_CHANNEL}-error")
    expect(error).to_contain_text(
        f"is {too_long_count} characters; this channel takes at most {SHORT_LIMIT}"
    )
    expect(error).to_contain_text(f"channel {SHORT_CHANNEL}")
    summary_link = page.get_by_role("alert").get_by_role("link")
    expect(summary_link).to_have_attribute("href", f"#variant_{SHORT_CHANNEL}")
    expect(own).to_have_value(too_long)
    expect(counted.locator(".govuk-tag--red")).to_have_text("Too long")
    accessible(session)

    own.fill(fits)
    expect(counted).to_contain_text(f"{fits_count} of {SHORT_LIMIT} characters")
    expect(counted.locator(".govuk-tag--red")).to_have_count(0)
    page.get_by_test_id("save-draft").click()
    expect(page.get_by_role("alert")).to_contain_text("The draft is saved")
    variants = page.get_by_test_id("channel-variants")
    on_channel = variants.locator(f'li[data-channel="{SHORT_CHANNEL}"]')
    expect(on_channel).to_contain_text(f"{fits_count} of {SHORT_LIMIT} characters")
    expect(on_channel).to_contain_text(fits)
    accessible(session)
    page.context.close()


def bell(page: Page) -> Locator:
    """The header's bell link (swapped in by its live stream)."""
    return page.get_by_test_id("bell-live").get_by_test_id("bell")


def test_an_approval_request_rings_the_approvers_bell_live_and_only_theirs(
    running: Running, browser: Browser
) -> None:
    approver = sign_in(browser, running, "approver", "/notifications")
    page = approver.page
    # Start from nothing unread (earlier tests of this module asked for approvals too).
    expect(bell(page)).to_have_attribute("data-unread", re.compile(r"^\d+$"), timeout=30_000)
    if page.get_by_test_id("mark-all-read").count():
        page.get_by_test_id("mark-all-read").click()
    expect(bell(page)).to_have_accessible_name("Notifications, 0 unread", timeout=30_000)

    # The editor submits a post through the publisher's API: the open page's bell rings
    # without a reload (its server-sent events), 1 unread.
    title = "Ports <b>cap</b> <img src=x onerror=\"document.title='pwned'\">: our line"
    post_id = draft_in_review(running, "bell-ports", "notify-2026", title)
    expect(bell(page)).to_have_accessible_name("Notifications, 1 unread", timeout=60_000)
    expect(bell(page)).to_have_attribute("data-unread", "1")

    page.goto(running.url + "/notifications")
    item = page.get_by_test_id("notification").filter(has_text="Ports")
    expect(item).to_have_count(1)
    expect(item).to_have_attribute("data-unread", "yes")
    link = item.get_by_test_id("notification-link")
    expect(link).to_contain_text("<b>cap</b>")  # markup shown as text
    assert item.locator("b, img").count() == 0 and page.title() != "pwned"
    assert link.get_attribute("href") == f"/publish/posts/{post_id}"
    accessible(approver)
    screenshot(page, "notifications")
    message_id = item.get_attribute("data-message") or ""

    # A viewer sees only their own (nothing about this approval) and cannot mark the
    # approver's notification read, even by a forged form.
    viewer = sign_in(browser, running, "viewer", "/notifications")
    expect(viewer.page.get_by_test_id("inbox-summary")).to_be_visible()
    expect(viewer.page.get_by_test_id("notification").filter(has_text="Ports")).to_have_count(0)
    token = viewer.page.locator('input[name="csrf_token"]').first.get_attribute("value") or ""
    forged = viewer.page.request.post(
        f"{running.url}/notifications/read", form={"csrf_token": token, "message_id": message_id}
    )
    assert "is not one of your notifications" in forged.text()
    accessible(viewer)
    viewer.page.context.close()
    page.reload()
    expect(page.get_by_test_id("notification").filter(has_text="Ports")).to_have_attribute(
        "data-unread", "yes"
    )

    # The link opens the post; marking it read drops the count.
    link = (
        page.get_by_test_id("notification")
        .filter(has_text="Ports")
        .get_by_test_id("notification-link")
    )
    link.click()
    page.wait_for_url(running.url + f"/publish/posts/{post_id}")
    expect(page.get_by_test_id("post-status")).to_be_visible()
    page.goto(running.url + "/notifications")
    page.get_by_test_id("notification").filter(has_text="Ports").get_by_test_id("mark-read").click()
    expect(page.get_by_role("alert")).to_contain_text("Marked read.")
    expect(page.get_by_test_id("notification").filter(has_text="Ports")).to_have_attribute(
        "data-unread", "no"
    )
    expect(bell(page)).to_have_accessible_name("Notifications, 0 unread", timeout=30_000)
    accessible(approver)

    # The approver's effective preferences, read-only: approvals at once on Matrix.
    page.goto(running.url + "/notifications/preferences")
    expect(page.get_by_test_id("preference-kinds")).to_contain_text("at once by matrix")
    expect(page.get_by_test_id("preferences")).to_contain_text("Europe/Berlin")
    accessible(approver)
    screenshot(page, "notification-preferences")

    # The failed / needs-check page: the policy's read for everyone who may list messages.
    page.goto(running.url + "/notifications/deliveries")
    expect(
        page.get_by_role("heading", name="Notifications that failed or need a check")
    ).to_be_visible()
    accessible(approver)
    page.context.close()
