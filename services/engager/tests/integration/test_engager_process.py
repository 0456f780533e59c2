"""The engager process against the Kafka stand-in and the channels' local servers:
mentions in → the right conversations opened, threaded, de-duplicated, prioritised and
assigned; a reply reaches the Mastodon server exactly once although the engager is killed
mid-delivery and restarted; an SLA breach is emitted once; questions arrive by hashtag and
by the public form; partner activity reaches the evaluator's index; bad requests get clear
errors; first-response times are exported; the form refuses a body of unbounded or
undeclared length and deeply nested JSON without the process growing."""

from __future__ import annotations

import json
import socket
import sys
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml

from legation.engager.v1 import engager_service_pb2 as pb
from legation.engager.v1 import engager_service_pb2_grpc as pb_grpc
from legation.events.v1 import engage_pb2, listen_pb2
from legation_core.auth import with_token
from legation_core.catalog import default_catalog
from legation_core.codec import EventCodec, make_envelope
from legation_core.config import CoreSettings
from legation_core.consumer import Incoming
from legation_core.kafka import EventProducer, read_topic
from legation_core.metrics import Metrics
from legation_core.topic_names import (
    ENGAGE_INTERACTIONS_V1,
    ENGAGE_PARTNER_ACTIVITIES_V1,
    LISTEN_MENTIONS_V1,
)
from legation_devstack.channel_servers import ChannelServers
from legation_devstack.channel_servers.mastodon import MastodonServer
from legation_devstack.processes import Process, child_env, free_port, spawn, wait_until
from legation_devstack.standins import OpenSearchStandIn
from legation_devstack.users import UsersFile
from legation_engager.domain.inbox import conversation_id_for
from legation_evaluator.adapters.events import IndexingHandler
from legation_evaluator.adapters.index import EventIndex, connect
from legation_evaluator.config import EvaluatorSettings

pytestmark = pytest.mark.integration

SERVICE = "legation.engager.v1.EngagerService"
Kind = engage_pb2.Interaction
NOW = datetime.now(UTC)


class EngagerProcess:
    """``python -m legation_engager`` with its own ports, stopped by process id."""

    def __init__(self, env: dict[str, str], users: UsersFile, log_dir: Path) -> None:
        self.users = users
        self.grpc_port = free_port()
        self.metrics_port = free_port()
        self.form_port = free_port()
        env = {
            **env,
            "LEGATION_GRPC_PORT": str(self.grpc_port),
            "LEGATION_METRICS_PORT": str(self.metrics_port),
            "LEGATION_ENGAGER_FORM_PORT": str(self.form_port),
        }
        self.process: Process = spawn(
            "engager", [sys.executable, "-m", "legation_engager"], log_dir, env
        )
        self.process.wait_serving(self.grpc_port, SERVICE)

    def call(self, method: str, request: Any, user: str = "campaign-owner") -> Any:
        with grpc.insecure_channel(f"127.0.0.1:{self.grpc_port}") as channel:
            stub = pb_grpc.EngagerServiceStub(with_token(channel, self.users.token(user)))
            return getattr(stub, method)(request, timeout=10)

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())


@pytest.fixture
def start_engager(
    kafka_settings: CoreSettings,
    auth_users: UsersFile,
    channel_servers: ChannelServers,
    tmp_path: Path,
) -> Iterator[Callable[[], EngagerProcess]]:
    config, secrets = channel_servers.channels_config()
    channels_file = tmp_path / "channels.yaml"
    channels_file.write_text(yaml.safe_dump(config))
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(
        yaml.safe_dump(
            {
                "open": {"min_influence": 0.8},
                # Short deadlines so a breach happens during the test.
                "sla": {"urgent": 3600, "high": 3600, "normal": 2, "low": 2},
                "assignment": [
                    {"when": {"languages": ["fr"]}, "officer": "claire", "team": "francophone"},
                    {"when": {"min_priority": "high"}, "team": "duty-desk"},
                ],
                "reply_channels": [{"source": "mastodon", "channel": "mastodon"}],
            }
        )
    )
    env = child_env()
    env.update(secrets)
    env.update(
        {
            "LEGATION_KAFKA_BOOTSTRAP_SERVERS": kafka_settings.kafka_bootstrap_servers,
            "LEGATION_AUTH_USERS_FILE": str(auth_users.path),
            "LEGATION_CONSUMER_POLL_TIMEOUT_MS": "500",
            "LEGATION_CONSUMER_IDLE_WAIT_MS": "50",
            # The stand-in never evicts a killed member: static membership takes it back.
            "LEGATION_CONSUMER_INSTANCE_ID": f"engager-test-{uuid.uuid4().hex[:8]}",
            "LEGATION_ENGAGER_CHANNELS_FILE": str(channels_file),
            "LEGATION_ENGAGER_RULES_FILE": str(rules_file),
            "LEGATION_ENGAGER_JOBS_INTERVAL_SECONDS": "0.2",
        }
    )
    started: list[EngagerProcess] = []

    def start() -> EngagerProcess:
        started.append(EngagerProcess(env, auth_users, tmp_path / f"logs-{len(started)}"))
        return started[-1]

    yield start
    for engager in started:
        engager.process.stop()


def mention(campaign: str, key: str, text: str, **fields: Any) -> listen_pb2.Mention:
    values: dict[str, Any] = {
        "mention_id": f"{campaign}-{key}",
        "source": "mastodon",
        "source_url": "https://social.example.org/@citizen",
        "item_id": f"{campaign}-item-{key}",
        "url": f"https://social.example.org/@citizen/{key}",
        "author": "@citizen",
        "author_id": "https://social.example.org/@citizen",
        "text": text,
        "language": "en",
        "campaign_ids": [campaign],
    }
    values.update(fields)
    result = listen_pb2.Mention(**values)
    result.published_at.FromDatetime(NOW - timedelta(minutes=10))
    return result


def produce_mentions(settings: CoreSettings, mentions: list[listen_pb2.Mention]) -> None:
    producer = EventProducer(settings, "listener", default_catalog(), Metrics())
    try:
        producer.send_and_wait(
            [
                (
                    LISTEN_MENTIONS_V1,
                    m.mention_id,
                    make_envelope(
                        m,
                        event_id=str(uuid.uuid4()),
                        source_service="listener",
                        occurred_at=NOW - timedelta(minutes=10),
                        campaign_id=m.campaign_ids[0],
                        issue_id="plastics-treaty",
                    ),
                )
                for m in mentions
            ]
        )
    finally:
        producer.close()


def interactions(settings: CoreSettings, campaign: str) -> list[engage_pb2.Interaction]:
    codec = EventCodec(default_catalog())
    return [
        envelope.interaction
        for envelope in read_topic(settings, "evaluator", codec, ENGAGE_INTERACTIONS_V1, 30)
        if envelope.campaign_id == campaign
    ]


def by_mention(engager: EngagerProcess, campaign: str) -> dict[str, pb.Conversation]:
    listed = engager.call("ListConversations", pb.ListConversationsRequest(campaign_id=campaign))
    return {c.opened.mention_id: c for c in listed.conversations}


def test_inbox_replies_questions_and_partners_through_the_process(
    kafka_settings: CoreSettings,
    start_engager: Callable[[], EngagerProcess],
    channel_servers: ChannelServers,
    opensearch_stand_in: OpenSearchStandIn,
    unique: str,
) -> None:
    """The steps in order, each its own function so that a failure names the step."""
    campaign = f"engage-{unique}"
    mastodon = channel_servers.mastodon
    # The citizen's posts on the Mastodon server; our reply answers the latest of the thread.
    mastodon.statuses.append({"id": f"{campaign}-item-q", "text": "When does it open?"})
    mastodon.statuses.append({"id": f"{campaign}-item-r", "in_reply_to_id": f"{campaign}-item-q"})
    first = start_engager()
    question = mention(campaign, "q", "When does the treaty conference open?")
    produce_mentions(
        kafka_settings,
        [
            question,
            mention(campaign, "r", "Also, thanks.", in_reply_to=question.item_id),
            mention(campaign, "dup", question.text, duplicate_of=question.mention_id),
            mention(campaign, "fr", "Quand commence la conférence ?", language="fr"),
            mention(
                campaign,
                "vip",
                "URGENT: the treaty is a disgrace.",
                influence=0.95,
                stance=listen_pb2.Label(value="against"),
                sentiment=listen_pb2.Label(value="negative", score=-0.8),
            ),
            mention(campaign, "plain", "The conference opened today."),
            question,  # redelivered
        ],
    )
    step_the_inbox_threads_deduplicates_prioritises_and_assigns(first, campaign, question)
    conversation_id = conversation_id_for(question.mention_id)
    second = step_a_reply_reaches_mastodon_once_across_a_kill(
        first, start_engager, mastodon, campaign, conversation_id
    )
    step_an_sla_breach_is_emitted_once(kafka_settings, campaign)
    step_questions_arrive_by_hashtag_and_by_the_form(kafka_settings, second, campaign, unique)
    step_partner_activity_reaches_the_evaluators_index(
        kafka_settings, second, opensearch_stand_in, campaign, unique
    )
    step_bad_requests_get_clear_errors(second, conversation_id, unique)
    assert second.process.stop() == 0


def step_the_inbox_threads_deduplicates_prioritises_and_assigns(
    first: EngagerProcess, campaign: str, question: listen_pb2.Mention
) -> None:
    """Seven mentions make three conversations: the reply joins its question's thread, the
    duplicate and the redelivery are dropped, a plain mention opens nothing; the French one
    is assigned by rule, the influential one is urgent and first."""
    wait_until(lambda: len(by_mention(first, campaign)) == 3, 60, "three conversations", 0.2)
    inbox = by_mention(first, campaign)
    asked = inbox[question.mention_id].detail
    assert [m.mention_id for m in asked.mentions] == [question.mention_id, f"{campaign}-r"]
    assert (asked.channel, asked.priority) == ("mastodon", engage_pb2.PRIORITY_NORMAL)
    french = inbox[f"{campaign}-fr"].detail
    assert (french.assignee, french.team, french.status) == (
        "claire",
        "francophone",
        engage_pb2.CONVERSATION_STATUS_ASSIGNED,
    )
    vip = inbox[f"{campaign}-vip"].detail
    assert vip.priority == engage_pb2.PRIORITY_URGENT
    assert (vip.team, list(vip.rules)) == ("duty-desk", ["influence"])
    # Highest priority first.
    assert next(iter(inbox.values())).opened.mention_id == f"{campaign}-vip"


def step_a_reply_reaches_mastodon_once_across_a_kill(
    first: EngagerProcess,
    start_engager: Callable[[], EngagerProcess],
    mastodon: MastodonServer,
    campaign: str,
    conversation_id: str,
) -> EngagerProcess:
    """A reply goes to Mastodon; the server takes it but answers late, and the engager is
    killed while it waits: "sending" is on Kafka, the status on the server. The second
    engager (returned) finishes it, exactly once."""
    mastodon.answer_late(8)
    first.call(
        "ReplyToConversation",
        pb.ReplyToConversationRequest(
            request_id="answer-1", conversation_id=conversation_id, text="It opens on Monday."
        ),
        user="officer",
    )

    def replies() -> list[dict[str, Any]]:
        return [s for s in mastodon.statuses if s.get("in_reply_to_id") == f"{campaign}-item-r"]

    wait_until(lambda: len(replies()) == 1, 60, "the reply on the Mastodon server", 0.05)
    first.process.kill()

    second = start_engager()

    def delivered() -> bool:
        state = second.call(
            "GetConversation", pb.GetConversationRequest(conversation_id=conversation_id)
        ).detail
        return bool(state.replies[0].status == engage_pb2.REPLY_STATUS_DELIVERED)

    wait_until(delivered, 30, "the reply delivered", 0.2, detail=second.process.log_tail)
    assert len(replies()) == 1  # exactly once, across the kill
    state = second.call(
        "GetConversation", pb.GetConversationRequest(conversation_id=conversation_id)
    )
    assert state.state == pb.Conversation.STATE_ANSWERED
    [reply] = state.detail.replies
    posts = mastodon.requests_to("POST", "/api/v1/statuses")
    assert reply.delivery.attempts == 2, [
        (r.headers.get("idempotency-key"), r.form().get("in_reply_to_id")) for r in posts
    ]
    assert reply.delivery.channel_item_id == replies()[0]["id"]
    assert 'legation_engager_first_response_seconds_count{priority="normal"} 1.0' in (
        second.metrics()
    )
    return second


def step_an_sla_breach_is_emitted_once(kafka_settings: CoreSettings, campaign: str) -> None:
    """The French question stays unanswered past its 2 s deadline: one breach, even though
    two engager processes watched the deadline."""
    french_id = conversation_id_for(f"{campaign}-fr")

    def breaches() -> list[engage_pb2.Interaction]:
        return [
            i
            for i in interactions(kafka_settings, campaign)
            if i.kind == Kind.KIND_BREACHED and i.conversation_id == french_id
        ]

    wait_until(lambda: len(breaches()) == 1, 60, "the SLA breach", 0.3)
    kinds = sorted(Kind.Kind.Name(i.kind) for i in interactions(kafka_settings, campaign))
    assert kinds.count("KIND_OPENED") == 3
    assert kinds.count("KIND_JOINED") == 1
    assert kinds.count("KIND_REPLIED") == 1
    assert kinds.count("KIND_ASSIGNED") == 2  # the French one and the urgent one, by rules


def step_questions_arrive_by_hashtag_and_by_the_form(
    kafka_settings: CoreSettings, second: EngagerProcess, campaign: str, unique: str
) -> None:
    """A questions campaign collects a hashtagged mention and a question sent to its public
    form (which refuses an empty one)."""
    created = second.call(
        "CreateQuestionsCampaign",
        pb.CreateQuestionsCampaignRequest(
            request_id=f"ask-{unique}",
            campaign_id=campaign,
            issue_id="plastics-treaty",
            title="Ask the ambassador",
            hashtag="AskTheAmbassador",
        ),
    )
    form = urllib.request.Request(
        f"http://127.0.0.1:{second.form_port}{created.form_path}",
        data=json.dumps({"author": "Student", "text": "How is the cap enforced?"}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(form, timeout=5) as response:
        assert response.status == 202
    empty = urllib.request.Request(form.full_url, data=b"text=", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(empty, timeout=5)
    assert refused.value.code == 400
    assert "text: is required" in refused.value.read().decode()
    produce_mentions(
        kafka_settings,
        [mention(campaign, "tag", "Will you cap production?", hashtags=["asktheambassador"])],
    )
    questions_id = created.questions_campaign.questions_id

    def collected() -> list[str]:
        response = second.call(
            "GetQuestionsCampaign", pb.GetQuestionsCampaignRequest(questions_id=questions_id)
        )
        return sorted(q.source for q in response.questions_campaign.questions)

    wait_until(lambda: collected() == ["form", "mention"], 60, "both questions", 0.2)
    listed = second.call(
        "ListQuestionsCampaigns", pb.ListQuestionsCampaignsRequest(campaign_id=campaign)
    )
    [summary] = listed.questions_campaigns
    assert summary.questions_campaign.questions_id == questions_id
    assert (summary.questions, summary.pending, summary.form_path) == (2, 2, created.form_path)
    assert not summary.questions_campaign.questions


def step_partner_activity_reaches_the_evaluators_index(
    kafka_settings: CoreSettings,
    second: EngagerProcess,
    opensearch_stand_in: OpenSearchStandIn,
    campaign: str,
    unique: str,
) -> None:
    """The register and a joint activity, which the evaluator indexes."""
    second.call(
        "RegisterPartner",
        pb.RegisterPartnerRequest(
            partner_id=f"ocean-{unique}",
            name="Ocean Alliance",
            kind=engage_pb2.PARTNER_KIND_NGO,
            countries=["KE"],
            issue_ids=["plastics-treaty"],
            stage=engage_pb2.RELATIONSHIP_STAGE_PARTNER,
        ),
    )
    partner = second.call(
        "RecordPartnerActivity",
        pb.RecordPartnerActivityRequest(
            partner_id=f"ocean-{unique}",
            request_id="op-ed-1",
            kind=engage_pb2.PartnerActivity.KIND_CO_PUBLICATION,
            title="Joint op-ed on the production cap",
            campaign_id=campaign,
        ),
    ).partner
    assert len(partner.timeline) == 2
    codec = EventCodec(default_catalog())
    batch = [
        Incoming(ENGAGE_PARTNER_ACTIVITIES_V1, 0, offset, None, envelope)
        for offset, envelope in enumerate(
            read_topic(kafka_settings, "evaluator", codec, ENGAGE_PARTNER_ACTIVITIES_V1, 30)
        )
    ]
    index = EventIndex(
        connect(EvaluatorSettings(opensearch_url=opensearch_stand_in.url)), f"test-{unique}"
    )
    index.ensure_template()
    assert not IndexingHandler(index)(batch).rejected
    index.client.indices.refresh(index=f"test-{unique}-*")
    found = index.client.search(
        index=f"test-{unique}-partner_activity*",
        body={"query": {"bool": {"filter": [{"term": {"campaign_ids": campaign}}]}}},
    )
    [hit] = found["hits"]["hits"]
    assert hit["_source"]["partner_activity"]["joint"] is True


def step_bad_requests_get_clear_errors(
    second: EngagerProcess, conversation_id: str, unique: str
) -> None:
    """Clear errors naming what is wrong; a viewer may not reply."""
    with pytest.raises(grpc.RpcError) as error:
        second.call(
            "RecordPartnerActivity",
            pb.RecordPartnerActivityRequest(partner_id=f"ocean-{unique}", request_id="x"),
        )
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "kind: expected" in (error.value.details() or "")
    assert "title: is required" in (error.value.details() or "")
    with pytest.raises(grpc.RpcError) as error:
        second.call(
            "SetConversationStatus",
            pb.SetConversationStatusRequest(
                conversation_id=conversation_id, status=engage_pb2.CONVERSATION_STATUS_NEW
            ),
        )
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "only from closed, waiting" in (error.value.details() or "")
    with pytest.raises(grpc.RpcError) as error:
        second.call("ReplyToConversation", pb.ReplyToConversationRequest(request_id="r"), "viewer")
    assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED


def peak_rss_kib(pid: int) -> int:
    """The process's peak resident memory so far (VmHWM), in KiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1])


def post_streaming(port: int, headers: str, body_bytes: int) -> tuple[int, bytes, int]:
    """POSTs ``headers`` then streams ``body_bytes`` of body from another thread while the
    answer is read: (status, body of the answer, bytes the server let us send)."""
    connection = socket.create_connection(("127.0.0.1", port), timeout=30)
    connection.sendall(f"POST /questions/q-1 HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n".encode())
    sent = [0]

    def stream() -> None:
        chunk = b"[" * 65536
        try:
            while sent[0] < body_bytes:
                connection.sendall(chunk)
                sent[0] += len(chunk)
            connection.shutdown(socket.SHUT_WR)  # the whole body: a server may read to the end
        except OSError:
            pass  # the server answered and closed: the rest is never read

    sender = threading.Thread(target=stream, daemon=True)
    sender.start()
    answer = connection.makefile("rb")
    status = int(answer.readline().split()[1])
    length = 0
    while (line := answer.readline().strip()) != b"":
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    body = answer.read(length)
    connection.close()
    sender.join(30)
    return status, body, sent[0]


def error_of(body: bytes) -> str:
    try:
        return str(json.loads(body)["error"])
    except (ValueError, KeyError, TypeError):
        return body.decode(errors="replace")


def test_the_form_refuses_unbounded_and_deep_bodies_without_growing(
    start_engager: Callable[[], EngagerProcess],
) -> None:
    engager = start_engager()
    hostile_mib = 300
    before = peak_rss_kib(engager.process.pid)
    refused = {
        "length -1": post_streaming(
            engager.form_port,
            "Content-Type: application/json\r\nContent-Length: -1\r\n",
            hostile_mib << 20,
        ),
        "chunked": post_streaming(
            engager.form_port,
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n",
            hostile_mib << 20,
        ),
        "longer than declared": post_streaming(
            engager.form_port,
            "Content-Type: application/json\r\nContent-Length: 100\r\n",
            hostile_mib << 20,
        ),
        "deep JSON": post_streaming(
            engager.form_port,
            f"Content-Type: application/json\r\nContent-Length: {16 * 1024}\r\n",
            16 * 1024,
        ),
    }
    grown_kib = peak_rss_kib(engager.process.pid) - before
    assert grown_kib < 8 * 1024, f"the engager grew by {grown_kib} KiB"
    answers = {name: (status, error_of(body)) for name, (status, body, _) in refused.items()}
    assert answers == {
        "length -1": (400, "Content-Length: not a number of bytes"),
        "chunked": (
            411,
            f"chunked bodies are not accepted: send Content-Length (at most {16 * 1024} bytes)",
        ),
        "longer than declared": (400, "body: JSON nested deeper than 4 levels"),
        "deep JSON": (400, "body: JSON nested deeper than 4 levels"),
    }
    # The process is still serving: a good question still gets in line.
    ok = urllib.request.Request(
        f"http://127.0.0.1:{engager.form_port}/questions/q-1",
        data=json.dumps({"text": "Still there?"}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(ok, timeout=5)
    assert missing.value.code == 404  # no such questions campaign, answered cleanly
    assert engager.process.alive()
