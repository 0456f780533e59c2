"""Every adapter against its platform's local protocol server, over real sockets, driven by
the outbox as the publisher and engager drive it: delivery, rate limits, bad credentials,
and a crash between sending and recording, then a restart, never posting twice."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from channel_kit import FAST, Crash, CrashAfterDeliver

from legation_channels.adapters.bluesky import BlueskyChannel, record_key_for
from legation_channels.adapters.email_newsletter import EmailNewsletterChannel, message_id_for
from legation_channels.adapters.mastodon import MastodonChannel
from legation_channels.adapters.telegram import TelegramChannel
from legation_channels.adapters.webhook import WebhookChannel
from legation_channels.adapters.wordpress import WordPressChannel, slug_for
from legation_channels.base import Channel, Media, Outgoing
from legation_channels.outbox import Deliverer, Delivery, RetryPolicy, new_delivery
from legation_channels.registry import build_channels
from legation_devstack.channel_servers import (
    BlueskyServer,
    ChannelServers,
    MastodonServer,
    SmtpServer,
    TelegramServer,
    WebhookReceiver,
    WordPressServer,
)
from legation_devstack.channel_servers.smtp import self_signed_tls

pytestmark = pytest.mark.integration

PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000") + b"\0" * 40


def deliverer() -> Deliverer:
    return Deliverer(RetryPolicy(base_delay=0.01, max_delay=0.05), rand=lambda: 0.5)


def deliver_once(channel: Channel, message: Outgoing, delivery: Delivery | None = None) -> Delivery:
    d = deliverer()
    delivery = delivery or new_delivery(message.idempotency_key, channel.name, d._clock())
    return d.send(d.begin(delivery), channel, message)


def crash_then_restart(make: Callable[[], Channel], message: Outgoing) -> Delivery:
    """Persist "sending", send through a process that dies, then in a new process (new
    adapter) recover and finish as the publisher would."""
    d = deliverer()
    stored = d.begin(new_delivery(message.idempotency_key, make().name, d._clock()))
    with pytest.raises(Crash):
        d.send(stored, CrashAfterDeliver(make()), message)
    after_restart = make()
    recovered = Deliverer().recover(stored, after_restart)
    if recovered.state == "pending":
        return d.send(d.begin(recovered), after_restart, message)
    return recovered


def after_rate_limit(delivery: Delivery, at_least: float) -> None:
    assert delivery.state == "pending", delivery
    assert delivery.updated_at and delivery.next_attempt_at
    assert delivery.next_attempt_at - delivery.updated_at >= timedelta(seconds=at_least - 0.5)


# --- WordPress ---------------------------------------------------------------------------


@pytest.fixture
def wordpress() -> Iterator[WordPressServer]:
    with WordPressServer(username="editor", application_password="abcd efgh ijkl") as server:
        yield server


def wp(server: WordPressServer, password: str = "abcd efgh ijkl") -> WordPressChannel:
    return WordPressChannel("blog", server.url, "editor", password, timeout=FAST)


POST = Outgoing(
    "post-7:blog",
    "Our embassy hosts a forum on plastics.\n\nJoin us on Friday.",
    title="Plastics forum",
    link="https://embassy.example.org/forum",
    media=(Media("https://embassy.example.org/forum.png", "image", "The forum poster"),),
)


def test_wordpress_publishes_with_a_key_slug_and_finds_it_again(wordpress: WordPressServer) -> None:
    done = deliver_once(wp(wordpress), POST)
    assert done.state == "delivered", done.reason
    [post] = wordpress.published()
    assert post["slug"] == slug_for("post-7:blog")
    assert done.channel_item_id == str(post["id"])
    assert done.url == f"https://blog.example.org/{post['slug']}/"
    assert (
        '<img src="https://embassy.example.org/forum.png" alt="The forum poster"/>'
        in post["content"]
    )
    # Delivering again (a retry) finds it rather than posting it as "-2".
    again = wp(wordpress).deliver(POST)
    assert (again.channel_item_id, again.newly_published) == (done.channel_item_id, False)
    assert len(wordpress.published()) == 1


def test_wordpress_crash_after_posting_is_found_by_lookup(wordpress: WordPressServer) -> None:
    done = crash_then_restart(lambda: wp(wordpress), POST)
    assert (done.state, done.newly_published) == ("delivered", False)
    assert len(wordpress.published()) == 1
    assert len(wordpress.requests_to("POST", "/wp-json/wp/v2/posts")) == 1


def test_wordpress_rate_limit_then_retry(wordpress: WordPressServer) -> None:
    from legation_devstack.channel_servers import Canned

    wordpress.fail_next("/wp-json", Canned(429, {"code": "too_many"}, {"Retry-After": "3"}))
    first = deliver_once(wp(wordpress), POST)
    after_rate_limit(first, 3)
    done = deliver_once(wp(wordpress), POST, replace(first, next_attempt_at=None))
    assert done.state == "delivered"
    assert len(wordpress.published()) == 1


def test_wordpress_bad_application_password_is_a_credentials_failure(
    wordpress: WordPressServer,
) -> None:
    failed = deliver_once(wp(wordpress, "wrong"), POST)
    assert (failed.state, failed.reason_field) == ("failed", "credentials")
    assert "invalid application password" in failed.reason
    assert wordpress.published() == []


# --- Mastodon ----------------------------------------------------------------------------


@pytest.fixture
def mastodon() -> Iterator[MastodonServer]:
    with MastodonServer(access_token="tok") as server:
        yield server


def masto(server: MastodonServer, token: str = "tok", max_characters: int = 500) -> MastodonChannel:
    return MastodonChannel("masto", server.url, token, max_characters=max_characters, timeout=FAST)


def test_mastodon_posts_with_media_alt_text_and_replies(mastodon: MastodonServer) -> None:
    image = mastodon.serve_file("/files/poster.png", PNG, "image/png")
    message = replace(
        POST, idempotency_key="post-7:masto", media=(Media(image, "image", "The poster"),)
    )
    done = deliver_once(masto(mastodon), message)
    assert done.state == "delivered", done.reason
    [status] = mastodon.statuses
    assert status["text"] == f"{POST.text}\n\n{POST.link}"
    assert [m["description"] for m in status["media_attachments"]] == ["The poster"]
    assert status["media_attachments"][0]["size"] == len(PNG)
    assert done.url == status["url"]
    assert mastodon.requests_to("POST", "/api/v1/statuses")[0].headers["idempotency-key"] == (
        "post-7:masto"
    )
    reply = Outgoing("reply-1:masto", "Thanks for asking!", in_reply_to=done.channel_item_id)
    answered = deliver_once(masto(mastodon), reply)
    assert answered.state == "delivered"
    assert mastodon.statuses[1]["in_reply_to_id"] == done.channel_item_id


def test_mastodon_crash_after_posting_resends_with_the_key_and_posts_once(
    mastodon: MastodonServer,
) -> None:
    message = replace(POST, idempotency_key="post-8:masto", media=())
    done = crash_then_restart(lambda: masto(mastodon), message)
    assert done.state == "delivered"
    assert len(mastodon.statuses) == 1
    assert done.channel_item_id == mastodon.statuses[0]["id"]
    assert len(mastodon.requests_to("POST", "/api/v1/statuses")) == 2


def test_mastodon_rate_limit_honours_the_reset_time(mastodon: MastodonServer) -> None:
    mastodon.rate_limit_next(seconds=4)
    message = replace(POST, idempotency_key="post-9:masto", media=())
    first = deliver_once(masto(mastodon), message)
    after_rate_limit(first, 3)
    assert deliver_once(masto(mastodon), message, replace(first, next_attempt_at=None)).state == (
        "delivered"
    )
    assert len(mastodon.statuses) == 1


def test_mastodon_times_out_as_its_channel_file_says_and_the_resend_posts_once(
    mastodon: MastodonServer,
) -> None:
    # timeout_seconds reaches Mastodon.py's requests as the other channels' does their
    # HTTP client: a 3 s answer is given up after 1 s; the status was posted, so the resend
    # finds it by its idempotency key.
    config = {
        "channels": [
            {
                "name": "masto",
                "kind": "mastodon",
                "options": {"base_url": mastodon.url, "timeout_seconds": 1},
                "secrets": {"access_token": "MASTODON_TOKEN"},
            }
        ]
    }
    slow = build_channels(config, env={"MASTODON_TOKEN": "tok"})["masto"]
    mastodon.answer_late(3, "POST", "/api/v1/statuses")
    message = replace(POST, idempotency_key="post-11:masto", media=())
    first = deliver_once(slow, message)
    assert first.state == "pending"
    assert "Read timed out. (read timeout=1.0)" in first.reason
    done = deliver_once(masto(mastodon), message, replace(first, next_attempt_at=None))
    assert done.state == "delivered"
    assert done.channel_item_id == mastodon.statuses[0]["id"]
    assert len(mastodon.statuses) == 1
    assert len(mastodon.requests_to("POST", "/api/v1/statuses")) == 2


def test_mastodon_errors_name_credentials_text_and_reply(mastodon: MastodonServer) -> None:
    message = replace(POST, idempotency_key="post-10:masto", media=())
    bad_token = deliver_once(masto(mastodon, token="nope"), message)
    assert (bad_token.state, bad_token.reason_field) == ("failed", "credentials")
    assert "access token is invalid" in bad_token.reason
    # The instance allows less than we were configured for: Mastodon's 422 names the text.
    long = replace(message, text="x" * 600, link="")
    too_long = deliver_once(masto(mastodon, max_characters=1000), long)
    assert (too_long.state, too_long.reason_field) == ("failed", "text")
    assert "character limit of 500" in too_long.reason
    orphan = deliver_once(masto(mastodon), Outgoing("r:masto", "hi", in_reply_to="999"))
    assert (orphan.state, orphan.reason_field) == ("failed", "in_reply_to")
    assert mastodon.statuses == []


# --- Bluesky -----------------------------------------------------------------------------


@pytest.fixture(params=[409, 500], ids=["conflict-409", "conflict-500"])
def bluesky(request: pytest.FixtureRequest) -> Iterator[BlueskyServer]:
    with BlueskyServer(app_password="pw", conflict_status=request.param) as server:
        yield server


def bsky(server: BlueskyServer, password: str = "pw") -> BlueskyChannel:
    return BlueskyChannel(
        "bsky", server.account_handle, password, service_url=server.url, timeout=FAST
    )


def test_bluesky_posts_at_a_key_derived_record_and_a_retry_finds_it(bluesky: BlueskyServer) -> None:
    image = bluesky.serve_file("/img.png", PNG, "image/png")
    message = replace(POST, idempotency_key="post-7:bsky", media=(Media(image, "image", "Poster"),))
    done = deliver_once(bsky(bluesky), message)
    assert done.state == "delivered", done.reason
    [post] = bluesky.posts()
    rkey = record_key_for("post-7:bsky")
    assert post["uri"] == done.channel_item_id == f"at://{bluesky.did}/app.bsky.feed.post/{rkey}"
    assert done.url == f"https://bsky.app/profile/{bluesky.did}/post/{rkey}"
    assert post["value"]["embed"]["images"][0]["alt"] == "Poster"
    [facet] = post["value"]["facets"]
    assert facet["features"][0]["uri"] == POST.link
    # The same message again conflicts on the record key and is found, not duplicated.
    again = bsky(bluesky).deliver(message)
    assert (again.channel_item_id, again.newly_published) == (done.channel_item_id, False)
    assert len(bluesky.posts()) == 1


def test_bluesky_crash_after_posting_is_found_by_get_record(bluesky: BlueskyServer) -> None:
    message = replace(POST, idempotency_key="post-8:bsky", media=())
    done = crash_then_restart(lambda: bsky(bluesky), message)
    assert (done.state, done.newly_published) == ("delivered", False)
    assert len(bluesky.posts()) == 1
    assert len(bluesky.requests_to("POST", "/xrpc/com.atproto.repo.createRecord")) == 1


def test_bluesky_reply_carries_root_and_parent(bluesky: BlueskyServer) -> None:
    root = bluesky.add_post("3kroot0000000", "Where do I apply for a visa?", repo="did:plc:asker")
    root_record = bluesky.records[root]
    parent = bluesky.add_post(
        "3kparent00000",
        "Same question",
        reply={
            "root": {"uri": root, "cid": root_record["cid"]},
            "parent": {"uri": root, "cid": root_record["cid"]},
        },
        repo="did:plc:other",
    )
    reply = Outgoing(
        "reply-3:bsky", "At the consulate: https://embassy.example.org/visa", in_reply_to=parent
    )
    done = deliver_once(bsky(bluesky), reply)
    assert done.state == "delivered", done.reason
    posted = bluesky.records[done.channel_item_id]["value"]["reply"]
    assert posted["root"]["uri"] == root
    assert (posted["parent"]["uri"], posted["parent"]["cid"]) == (
        parent,
        bluesky.records[parent]["cid"],
    )
    assert posted["root"]["cid"] == root_record["cid"]


def test_bluesky_rate_limit_bad_password_and_too_long(bluesky: BlueskyServer) -> None:
    bluesky.rate_limit_next(seconds=3)
    message = replace(POST, idempotency_key="post-9:bsky", media=())
    limited = deliver_once(bsky(bluesky), message)
    after_rate_limit(limited, 3)
    bad = deliver_once(bsky(bluesky, password="wrong"), message)
    assert (bad.state, bad.reason_field) == ("failed", "credentials")
    assert "Invalid identifier or password" in bad.reason
    # 300 graphemes: the outbox refuses 301 before the PDS is asked.
    emoji = replace(message, idempotency_key="post-10:bsky", text="👍🏽" * 301, link="")
    refused = deliver_once(bsky(bluesky), emoji)
    assert (refused.state, refused.reason_field) == ("failed", "text")
    assert "301 graphemes" in refused.reason
    assert deliver_once(bsky(bluesky), replace(emoji, text="👍🏽" * 300)).state == "delivered"
    assert len(bluesky.posts()) == 1


# --- Telegram ----------------------------------------------------------------------------


@pytest.fixture
def telegram() -> Iterator[TelegramServer]:
    with TelegramServer(bot_token="42:token", chat_id="@embassy_news") as server:
        yield server


def tg(
    server: TelegramServer, token: str = "42:token", chat: str = "@embassy_news"
) -> TelegramChannel:
    return TelegramChannel("tg", token, chat, api_url=server.url, timeout=FAST)


def test_telegram_sends_text_photo_with_caption_and_replies(telegram: TelegramServer) -> None:
    text = deliver_once(tg(telegram), replace(POST, idempotency_key="p1:tg", media=()))
    assert text.state == "delivered", text.reason
    assert text.url == "https://t.me/embassy_news/1"
    photo = deliver_once(tg(telegram), replace(POST, idempotency_key="p2:tg"))
    assert photo.state == "delivered"
    assert telegram.messages[1]["photo"] == POST.media[0].url
    assert telegram.messages[1]["caption"].endswith(POST.link)
    reply = deliver_once(tg(telegram), Outgoing("r1:tg", "Thank you", in_reply_to="1"))
    assert telegram.messages[2]["reply_to_message"] == {"message_id": 1}
    assert reply.state == "delivered"


def test_telegram_crash_after_sending_needs_a_check_and_is_not_resent(
    telegram: TelegramServer,
) -> None:
    message = replace(POST, idempotency_key="p3:tg", media=())
    checked = crash_then_restart(lambda: tg(telegram), message)
    assert checked.state == "needs-check"
    assert len(telegram.messages) == 1


def test_telegram_rate_limit_bad_token_and_unknown_chat(telegram: TelegramServer) -> None:
    telegram.rate_limit_next(seconds=3)
    message = replace(POST, idempotency_key="p4:tg", media=())
    after_rate_limit(deliver_once(tg(telegram), message), 3)
    bad = deliver_once(tg(telegram, token="42:wrong"), message)
    assert (bad.state, bad.reason_field) == ("failed", "credentials")
    chat = deliver_once(tg(telegram, chat="@nobody"), message)
    assert (chat.state, chat.reason_field, chat.reason) == (
        "failed",
        "chat_id",
        "Telegram rejected the message: Bad Request: chat not found",
    )
    assert telegram.messages == []


# --- Email newsletter --------------------------------------------------------------------


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer(username="news", password="secret") as server:
        yield server


def newsletter(server: SmtpServer, password: str = "secret") -> EmailNewsletterChannel:
    return EmailNewsletterChannel(
        "newsletter",
        "127.0.0.1",
        server.port,
        "news@embassy.example.org",
        ("a@example.org", "b@example.org"),
        list_address="subscribers@embassy.example.org",
        username="news",
        password=password,
        timeout=5,
    )


def test_email_newsletter_is_sent_with_a_key_derived_message_id(smtp: SmtpServer) -> None:
    done = deliver_once(newsletter(smtp), replace(POST, idempotency_key="p1:mail"))
    assert done.state == "delivered", done.reason
    [accepted] = smtp.accepted
    assert accepted.recipients == ("a@example.org", "b@example.org")
    email = accepted.message
    assert (
        email["Message-ID"]
        == message_id_for("p1:mail", "embassy.example.org")
        == (done.channel_item_id)
    )
    assert email["Subject"] == "Plastics forum"
    assert email["To"] == "subscribers@embassy.example.org"
    body = email.get_body(("plain",))
    assert body is not None and POST.link in body.get_content()


def test_email_crash_after_sending_needs_a_check(smtp: SmtpServer) -> None:
    checked = crash_then_restart(lambda: newsletter(smtp), replace(POST, idempotency_key="p2:mail"))
    assert checked.state == "needs-check"
    assert len(smtp.accepted) == 1


def test_email_bad_password_temporary_and_permanent_refusals(smtp: SmtpServer) -> None:
    message = replace(POST, idempotency_key="p3:mail")
    bad = deliver_once(newsletter(smtp, password="wrong"), message)
    assert (bad.state, bad.reason_field) == ("failed", "credentials")
    smtp.refuse_next(451, "4.3.0 Try again later")
    assert deliver_once(newsletter(smtp), message).state == "pending"
    smtp.refuse_next(554, "5.7.1 Message rejected")
    rejected = deliver_once(newsletter(smtp), message)
    assert (rejected.state, rejected.reason) == ("failed", "SMTP 554: message refused")
    assert smtp.accepted == []


# --- Webhook -----------------------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(secret="s3cret") as server:
        yield server


def hook(server: WebhookReceiver, secret: str = "s3cret") -> WebhookChannel:
    return WebhookChannel("partners", server.hook_url, secret, timeout=FAST)


def test_webhook_delivers_signed_json_once(receiver: WebhookReceiver) -> None:
    done = deliver_once(hook(receiver), replace(POST, idempotency_key="p1:hook"))
    assert (done.state, done.channel_item_id, done.newly_published) == ("delivered", "item-1", True)
    assert receiver.accepted["p1:hook"]["media"][0]["alt_text"] == "The forum poster"


def test_webhook_crash_after_sending_resends_and_the_receiver_drops_it(
    receiver: WebhookReceiver,
) -> None:
    done = crash_then_restart(lambda: hook(receiver), replace(POST, idempotency_key="p2:hook"))
    assert (done.state, done.newly_published, done.channel_item_id) == (
        "delivered",
        False,
        "item-1",
    )
    assert list(receiver.accepted) == ["p2:hook"]
    assert len(receiver.requests_to("POST", receiver.path)) == 2


def test_webhook_wrong_secret_and_outage(receiver: WebhookReceiver) -> None:
    from legation_devstack.channel_servers import Canned

    message = replace(POST, idempotency_key="p3:hook")
    bad = deliver_once(hook(receiver, secret="other"), message)
    assert (bad.state, bad.reason_field) == ("failed", "credentials")
    receiver.fail_next(receiver.path, Canned(503, {"error": "down"}, {"Retry-After": "7"}))
    after_rate_limit(deliver_once(hook(receiver), message), 7)
    assert receiver.accepted == {}


def test_a_channel_that_does_not_answer_in_time_is_unavailable() -> None:
    # Nothing listens on this port (held bound for the test, so nothing else can take it):
    # connecting fails, so the message surely did not arrive.
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        api_url = f"http://127.0.0.1:{port}"
        channel = TelegramChannel("tg", "1:x", "@c", api_url=api_url, timeout=FAST)
        delivery = deliver_once(channel, Outgoing("p:tg", "hello"))
    assert delivery.state == "pending"
    assert "ConnectError" in delivery.reason


def test_an_answer_that_comes_too_late_on_telegram_needs_a_check_not_a_resend(
    telegram: TelegramServer,
) -> None:
    telegram.answer_late(3)
    slow = TelegramChannel(
        "tg", "42:token", "@embassy_news", api_url=telegram.url, timeout=httpx.Timeout(1.0)
    )
    checked = deliver_once(slow, Outgoing("p5:tg", "hello"))
    assert checked.state == "needs-check"
    assert "ReadTimeout" in checked.reason
    assert len(telegram.messages) == 1


def test_an_answer_that_comes_too_late_on_a_webhook_is_resent_and_deduplicated(
    receiver: WebhookReceiver,
) -> None:
    receiver.answer_late(3)
    slow = WebhookChannel("partners", receiver.hook_url, "s3cret", timeout=httpx.Timeout(1.0))
    message = Outgoing("p4:hook", "hello")
    first = deliver_once(slow, message)
    assert first.state == "pending"
    done = deliver_once(hook(receiver), message, replace(first, next_attempt_at=None))
    assert (done.state, done.newly_published) == ("delivered", False)
    assert list(receiver.accepted) == ["p4:hook"]


def test_wordpress_drafts_are_found_by_their_status(wordpress: WordPressServer) -> None:
    drafts = WordPressChannel(
        "blog", wordpress.url, "editor", "abcd efgh ijkl", status="draft", timeout=FAST
    )
    done = crash_then_restart(lambda: drafts, POST)
    assert (done.state, done.newly_published) == ("delivered", False)
    assert [p["status"] for p in wordpress.published()] == ["draft"]


def test_one_message_reaches_every_configured_channel_exactly_once_across_a_crash(
    channel_servers: ChannelServers,
) -> None:
    config, env = channel_servers.channels_config()
    saved: dict[str, Delivery] = {}
    message = Outgoing("post-42", "Consular hours change on Monday.", title="Consular hours")

    def for_channel(name: str) -> Outgoing:
        return replace(message, idempotency_key=f"{message.idempotency_key}:{name}")

    # The first run dies right after every platform accepted the message.
    first = build_channels(config, env=env)
    for name, channel in first.items():
        d = deliverer()
        sending = d.begin(new_delivery(for_channel(name).idempotency_key, name, d._clock()))
        saved[name] = sending
        with pytest.raises(Crash):
            d.send(sending, CrashAfterDeliver(channel), for_channel(name))
    # The restarted run recovers each one.
    second = build_channels(config, env=env)
    outcome = {
        name: deliverer().run(saved[name], second[name], for_channel(name), lambda _: None).state
        for name in second
    }
    assert outcome == {
        "blog": "delivered",
        "mastodon": "delivered",
        "bluesky": "delivered",
        "telegram": "needs-check",
        "newsletter": "needs-check",
        "partners": "delivered",
    }
    assert channel_servers.published() == dict.fromkeys(outcome, 1)


def test_email_over_starttls_with_auth_after_tls(tmp_path: Path) -> None:
    tls, certificate = self_signed_tls(tmp_path)
    config = {
        "channels": [
            {
                "name": "newsletter",
                "kind": "email",
                "options": {
                    "host": "127.0.0.1",
                    "port": 0,
                    "starttls": True,
                    "ca_file": str(certificate),
                    "username": "news",
                    "sender": "news@embassy.example.org",
                    "recipients": ["a@example.org"],
                },
                "secrets": {"password": "SMTP_PASSWORD"},
            }
        ]
    }
    with SmtpServer("news", "secret", tls=tls) as server:
        config["channels"][0]["options"]["port"] = server.port  # type: ignore[index]
        channel = build_channels(config, env={"SMTP_PASSWORD": "secret"})["newsletter"]
        done = deliver_once(channel, Outgoing("p9:mail", "Encrypted on the way"))
        assert done.state == "delivered", done.reason
        assert len(server.accepted) == 1
        # Without STARTTLS the server refuses to go on: a clear, permanent failure.
        plain = EmailNewsletterChannel(
            "plain",
            "127.0.0.1",
            server.port,
            "news@embassy.example.org",
            ("a@example.org",),
            username="news",
            password="secret",
            timeout=5,
        )
        refused = deliver_once(plain, Outgoing("p10:mail", "In the clear"))
        assert (refused.state, refused.reason_field) == ("failed", "starttls"), refused.reason
        assert "starttls: true" in refused.reason
        assert len(server.accepted) == 1
