"""The publisher's API behind the runtime's auth and audit, with the audit trail on the Kafka
stand-in: a viewer's CreatePost and an editor's Approve are refused by the interceptor, an
approver's second step is refused by the workflow (four eyes), and every refusal is on
``legation.audit.v1``."""

from __future__ import annotations

import uuid
from pathlib import Path

import grpc
import pytest

from legation.events.v1 import audit_pb2
from legation.publisher.v1.publisher_service_pb2 import (
    CreatePostRequest,
    ReviewRequest,
    VariantContent,
)
from legation.publisher.v1.publisher_service_pb2_grpc import (
    PublisherServiceStub,
    add_PublisherServiceServicer_to_server,
)
from legation_channels.adapters.site_atom import LIMITS
from legation_core.auth import current_caller, with_token
from legation_core.codec import EventCodec
from legation_core.config import CoreSettings
from legation_core.grpc_server import build_server
from legation_core.kafka import read_topic
from legation_core.lifecycle import ServiceRuntime
from legation_core.topic_names import AUDIT_V1
from legation_devstack.users import UsersFile
from legation_publisher.adapters.grpc_api import PublisherServicer
from legation_publisher.adapters.policy import POLICY
from legation_publisher.adapters.state import PostBook, PostStore
from legation_publisher.domain.content import ChannelProfile
from legation_publisher.domain.workflow import WorkflowPolicy

pytestmark = pytest.mark.integration
Outcome = audit_pb2.AuditRecord.Outcome


def test_refused_and_granted_commands_reach_the_audit_topic(
    kafka_settings: CoreSettings, auth_users: UsersFile, tmp_path: Path
) -> None:
    runtime = ServiceRuntime("publisher", kafka_settings)
    servicer = PublisherServicer(
        PostStore(PostBook(), runtime.producer),
        WorkflowPolicy(),
        {"site-atom": ChannelProfile("site-atom", "site-atom", LIMITS)},
        ["site-atom"],
        "https://go.ministry.example/",
        lambda context: current_caller(),
        runtime.metrics.registry,
    )

    def register(server: grpc.Server) -> None:
        add_PublisherServiceServicer_to_server(servicer, server)

    runtime.add_grpc(register, POLICY.service, POLICY)  # checks the policy covers the API
    auth = runtime.interceptor()  # the runtime's interceptor, audit sink included
    server, _, port = build_server(0, [register], [POLICY.service], host="127.0.0.1", auth=auth)
    server.start()
    trace = uuid.uuid4().hex
    request = CreatePostRequest(
        request_id=f"req-{trace}",
        campaign_id="plastics-2026",
        language="en",
        content=VariantContent(
            title="Our position", body="We support a binding cap.", author="Press office"
        ),
    )
    metadata = (("x-trace-id", trace),)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as plain:
            viewer = PublisherServiceStub(with_token(plain, auth_users.token("viewer")))
            with pytest.raises(grpc.RpcError) as refused:
                viewer.CreatePost(request, metadata=metadata, timeout=30)
            assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
            editor = PublisherServiceStub(with_token(plain, auth_users.token("editor")))
            post_id = editor.CreatePost(request, metadata=metadata, timeout=30).post.post_id
            review = ReviewRequest(post_id=post_id)
            editor.SubmitForReview(review, metadata=metadata, timeout=30)
            with pytest.raises(grpc.RpcError) as not_an_approver:
                editor.Approve(review, metadata=metadata, timeout=30)
            assert not_an_approver.value.code() == grpc.StatusCode.PERMISSION_DENIED
            approver = PublisherServiceStub(with_token(plain, auth_users.token("approver")))
            approver.Approve(review, metadata=metadata, timeout=30)
            with pytest.raises(grpc.RpcError) as twice:
                approver.Approve(review, metadata=metadata, timeout=30)
            assert twice.value.code() == grpc.StatusCode.PERMISSION_DENIED
    finally:
        server.stop(0).wait(5)
        runtime.producer.close()  # flushes the audit records sent without waiting

    codec = EventCodec(runtime.catalog)
    records = [
        (envelope, envelope.audit_record)
        for envelope in read_topic(kafka_settings, "evaluator", codec, AUDIT_V1)
        if envelope.trace_id == trace
    ]
    assert [(r.user, r.outcome, r.status_code) for _, r in records] == [
        ("viewer", Outcome.OUTCOME_DENIED, "PERMISSION_DENIED"),
        ("editor", Outcome.OUTCOME_GRANTED, "OK"),
        ("editor", Outcome.OUTCOME_GRANTED, "OK"),
        # An editor approving: refused by the interceptor before the workflow sees it.
        ("editor", Outcome.OUTCOME_DENIED, "PERMISSION_DENIED"),
        ("approver", Outcome.OUTCOME_GRANTED, "OK"),
        # Allowed to call Approve, refused by the workflow: audited with its reason.
        ("approver", Outcome.OUTCOME_FAILED, "PERMISSION_DENIED"),
    ]
    unauthorised = records[3][1]
    assert unauthorised.method == "/legation.publisher.v1.PublisherService/Approve"
    assert "approver" in unauthorised.detail
    assert unauthorised.resource_ids["post_id"] == post_id
    assert "needs another approver" in records[5][1].detail
    denied_envelope, denied = records[0]
    assert denied_envelope.source_service == "publisher"
    assert denied_envelope.campaign_id == ""  # never counts in a campaign's KPIs
    assert denied.method == "/legation.publisher.v1.PublisherService/CreatePost"
    assert list(denied.roles) == ["viewer"]
    assert "needs the role editor" in denied.detail
    assert denied.peer.startswith("ipv4:127.0.0.1:")
    assert denied.authenticated_by == "token"
    assert dict(denied.resource_ids) == {
        "request_id": f"req-{trace}",
        "campaign_id": "plastics-2026",
    }
    assert post_id and records[1][1].resource_ids["request_id"] == f"req-{trace}"
