"""EngagerApi over a real in-process gRPC server, behind the real access policy, with a
fake producer: the inbox, saved replies, questions campaigns and partners, and the clear
errors of bad requests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from engager_fakes import RULES, handle, mention
from google.protobuf.timestamp_pb2 import Timestamp

from legation.engager.v1 import engager_service_pb2 as pb
from legation.engager.v1.engager_service_pb2_grpc import (
    EngagerServiceStub,
    add_EngagerServiceServicer_to_server,
)
from legation.events.v1 import engage_pb2
from legation_channels.base import ChannelLimits
from legation_core.auth import AuthInterceptor, load_users, with_token
from legation_core.grpc_server import build_server
from legation_core.testing import RecordingProducer
from legation_core.topic_names import ENGAGE_INTERACTIONS_V1, ENGAGE_PARTNER_ACTIVITIES_V1
from legation_devstack.users import UsersFile
from legation_engager.adapters.grpc_api import EngagerApi
from legation_engager.adapters.policy import POLICY
from legation_engager.adapters.store import EngagerState
from legation_engager.domain.inbox import conversation_id_for


@pytest.fixture
def producer() -> RecordingProducer:
    return RecordingProducer("engager")


@pytest.fixture
def state(producer: RecordingProducer) -> EngagerState:
    state = EngagerState(producer)
    handle(state, [mention("m-1"), mention("m-2", campaign_ids=["other"])])
    return state


@pytest.fixture
def connect(state: EngagerState, auth_users: UsersFile) -> Iterator[Any]:
    limits = {"mastodon": ChannelLimits(max_text_length=500, supports_replies=True)}
    api = EngagerApi(state, RULES, limits)
    server, _health, port = build_server(
        0,
        [lambda server: add_EngagerServiceServicer_to_server(api, server)],
        [POLICY.service],
        max_workers=2,
        host="127.0.0.1",
        auth=AuthInterceptor(load_users(auth_users.path), [POLICY]),
    )
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")

    def as_user(name: str = "officer") -> EngagerServiceStub:
        return EngagerServiceStub(with_token(channel, auth_users.token(name)))

    try:
        yield as_user
    finally:
        channel.close()
        server.stop(None).wait()


@pytest.fixture
def stub(connect: Any) -> EngagerServiceStub:
    stub: EngagerServiceStub = connect()
    return stub


CID = conversation_id_for("m-1")


def reply_request(**overrides: Any) -> pb.ReplyToConversationRequest:
    fields: dict[str, Any] = {
        "request_id": "req-1",
        "conversation_id": CID,
        "text": "Apply online at the consulate's site.",
    }
    fields.update(overrides)
    return pb.ReplyToConversationRequest(**fields)


def code_of(call: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as error:
        call()
    return error.value.code(), error.value.details() or ""


def test_a_reply_is_recorded_once_and_answers_the_conversation(
    stub: EngagerServiceStub, producer: RecordingProducer
) -> None:
    before = len(producer.calls)
    conversation = stub.ReplyToConversation(reply_request(), timeout=5)
    assert conversation.state == pb.Conversation.STATE_ANSWERED
    assert [r.actor for r in conversation.replies] == ["officer"]  # the caller by default
    written = producer.calls[before:]
    again = stub.ReplyToConversation(reply_request(), timeout=5)
    assert len(again.replies) == 1
    assert producer.calls[before:] == written  # the second request wrote nothing
    kinds = [
        e.interaction.kind for call in written for t, _, e in call if t == ENGAGE_INTERACTIONS_V1
    ]
    assert kinds == [engage_pb2.Interaction.KIND_REPLIED]


def test_a_saved_reply_is_rendered_with_its_variables(stub: EngagerServiceStub) -> None:
    listed = stub.ListSavedReplies(pb.ListSavedRepliesRequest(), timeout=5)
    assert [s.saved_reply_id for s in listed.saved_replies] == ["visa-info"]
    conversation = stub.ReplyToConversation(
        reply_request(text="", saved_reply_id="visa-info", variables={"link": "https://v.example"}),
        timeout=5,
    )
    assert conversation.replies[0].text == "Dear @citizen, visas are at https://v.example. officer"


@pytest.mark.parametrize(
    ("request_fields", "code", "message"),
    [
        ({"conversation_id": ""}, grpc.StatusCode.INVALID_ARGUMENT, "conversation_id is required"),
        ({"request_id": ""}, grpc.StatusCode.INVALID_ARGUMENT, "request_id is required"),
        ({"text": ""}, grpc.StatusCode.INVALID_ARGUMENT, "text: is required"),
        ({"conversation_id": "nope"}, grpc.StatusCode.NOT_FOUND, "conversation nope"),
        ({"saved_reply_id": "x"}, grpc.StatusCode.INVALID_ARGUMENT, "not both"),
        (
            {"text": "", "saved_reply_id": "visa-info"},
            grpc.StatusCode.INVALID_ARGUMENT,
            "variables.link: is required",
        ),
        (
            {"text": "", "saved_reply_id": "nope"},
            grpc.StatusCode.INVALID_ARGUMENT,
            "saved_reply_id: 'nope' is not a saved reply (visa-info)",
        ),
    ],
)
def test_bad_replies_get_clear_errors(
    stub: EngagerServiceStub, request_fields: dict[str, Any], code: grpc.StatusCode, message: str
) -> None:
    got, details = code_of(lambda: stub.ReplyToConversation(reply_request(**request_fields)))
    assert got == code
    assert message in details


def test_a_producer_failure_is_unavailable_and_changes_nothing(
    stub: EngagerServiceStub, producer: RecordingProducer, state: EngagerState
) -> None:
    producer.failing = RuntimeError("broker down")
    code, details = code_of(lambda: stub.ReplyToConversation(reply_request(), timeout=5))
    assert code == grpc.StatusCode.UNAVAILABLE
    # The broker's own words stay in the log (they may name hosts): the shared mapping
    # answers every service's dependency failures alike.
    assert details.startswith("temporarily unavailable, retry; reference ")
    assert "broker down" not in details
    current = state.conversations.get(CID)
    assert current is not None and not current.replies


def test_assign_label_status_and_filters(stub: EngagerServiceStub, connect: Any) -> None:
    assigned = stub.AssignConversation(
        pb.AssignConversationRequest(conversation_id=CID, officer="ana", team="visa"), timeout=5
    )
    assert assigned.state == pb.Conversation.STATE_ASSIGNED
    stub.LabelConversation(pb.LabelConversationRequest(conversation_id=CID, add=["visa"]))
    mine = stub.ListConversations(pb.ListConversationsRequest(assignee="ana", label="visa"))
    assert [c.conversation_id for c in mine.conversations] == [CID]
    waiting = stub.SetConversationStatus(
        pb.SetConversationStatusRequest(
            conversation_id=CID, status=engage_pb2.CONVERSATION_STATUS_WAITING
        )
    )
    assert waiting.state == pb.Conversation.STATE_WAITING
    code, details = code_of(
        lambda: stub.SetConversationStatus(
            pb.SetConversationStatusRequest(
                conversation_id=CID, status=engage_pb2.CONVERSATION_STATUS_ANSWERED
            )
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "status: expected" in details
    code, _ = code_of(
        lambda: stub.LabelConversation(
            pb.LabelConversationRequest(conversation_id=CID, add=["Not A Label"])
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    viewer = connect("viewer")
    code, _ = code_of(
        lambda: viewer.AssignConversation(pb.AssignConversationRequest(conversation_id=CID))
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert len(viewer.ListConversations(pb.ListConversationsRequest()).conversations) == 2


def test_questions_are_collected_moderated_and_answered(stub: EngagerServiceStub) -> None:
    created = stub.CreateQuestionsCampaign(
        pb.CreateQuestionsCampaignRequest(
            request_id="ask-1", campaign_id="camp-1", issue_id="issue-1", title="Ask us"
        )
    ).questions_campaign
    qid = created.questions_id
    code, details = code_of(
        lambda: stub.CreateQuestionsCampaign(
            pb.CreateQuestionsCampaignRequest(
                request_id="x", issue_id="i", title="t", answer_channel="tv"
            )
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "answer_channel: 'tv' is not a channel (mastodon)" in details
    submitted = stub.SubmitQuestion(
        pb.SubmitQuestionRequest(questions_id=qid, request_id="q1", author="Ana", text="Why?")
    ).questions_campaign
    [question] = submitted.questions
    code, details = code_of(
        lambda: stub.AnswerQuestion(
            pb.AnswerQuestionRequest(questions_id=qid, question_id=question.question_id, text="A")
        )
    )
    assert "only approved questions are answered" in details
    stub.ModerateQuestion(
        pb.ModerateQuestionRequest(questions_id=qid, question_id=question.question_id, approve=True)
    )
    answered = stub.AnswerQuestion(
        pb.AnswerQuestionRequest(
            questions_id=qid, question_id=question.question_id, text="Because."
        )
    ).questions_campaign
    assert answered.questions[0].status == engage_pb2.QUESTION_STATUS_ANSWERED
    closed = stub.CloseQuestionsCampaign(pb.CloseQuestionsCampaignRequest(questions_id=qid))
    assert not closed.questions_campaign.open
    code, details = code_of(
        lambda: stub.SubmitQuestion(
            pb.SubmitQuestionRequest(questions_id=qid, request_id="q2", text="Late?")
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "is closed" in details


def test_partners_have_a_timeline_and_their_activity_is_an_event(
    stub: EngagerServiceStub, producer: RecordingProducer
) -> None:
    partner = stub.RegisterPartner(
        pb.RegisterPartnerRequest(
            partner_id="ocean-alliance",
            name="Ocean Alliance",
            kind=engage_pb2.PARTNER_KIND_NGO,
            countries=["KE"],
            issue_ids=["issue-1"],
        )
    ).partner
    assert partner.stage == engage_pb2.RELATIONSHIP_STAGE_IDENTIFIED
    request = pb.RecordPartnerActivityRequest(
        partner_id="ocean-alliance",
        request_id="op-ed",
        kind=engage_pb2.PartnerActivity.KIND_CO_PUBLICATION,
        title="Joint op-ed",
        campaign_id="camp-1",
    )
    stub.RecordPartnerActivity(request)
    partner = stub.RecordPartnerActivity(request).partner  # retried: recorded once
    assert [a.kind for a in partner.timeline] == [
        engage_pb2.PartnerActivity.KIND_STAGE_CHANGE,
        engage_pb2.PartnerActivity.KIND_CO_PUBLICATION,
    ]
    activities = [e for c in producer.calls for t, _, e in c if t == ENGAGE_PARTNER_ACTIVITIES_V1]
    assert [e.partner_activity.joint for e in activities] == [False, True]
    assert activities[-1].campaign_id == "camp-1"
    code, details = code_of(
        lambda: stub.RegisterPartner(pb.RegisterPartnerRequest(partner_id="Bad_Id"))
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "partner_id:" in details and "name: is required" in details
    # A country that is no ISO code breaks the field's limit (checked before the register).
    code, details = code_of(
        lambda: stub.RegisterPartner(
            pb.RegisterPartnerRequest(partner_id="ngo-1", name="NGO", countries=["Kenya"])
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith("countries[0]: must be an ISO 3166-1 alpha-2 country code")
    code, _ = code_of(lambda: stub.GetPartner(pb.GetPartnerRequest(partner_id="nobody")))
    assert code == grpc.StatusCode.NOT_FOUND


def test_settling_a_delivery_that_has_none_is_a_failed_precondition(
    stub: EngagerServiceStub,
) -> None:
    reply_id = stub.ReplyToConversation(reply_request(), timeout=5).detail.replies[0].reply_id
    resolve = pb.ResolveReplyDeliveryRequest(
        conversation_id=CID, reply_id=reply_id, action=pb.ResolveReplyDeliveryRequest.ACTION_RETRY
    )
    code, details = code_of(lambda: stub.ResolveReplyDelivery(resolve))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "no channel delivery" in details
    resolve.action = pb.ResolveReplyDeliveryRequest.ACTION_UNSPECIFIED
    code, details = code_of(lambda: stub.ResolveReplyDelivery(resolve))
    assert (code, details) == (grpc.StatusCode.INVALID_ARGUMENT, "action is required")


def test_questions_campaigns_are_listed_with_counts_in_pages(connect: Any) -> None:
    officer: EngagerServiceStub = connect("officer")
    for n in range(3):
        officer.CreateQuestionsCampaign(
            pb.CreateQuestionsCampaignRequest(
                request_id=f"ask-{n}",
                campaign_id="camp-1" if n < 2 else "camp-2",
                issue_id="issue-1",
                title=f"Ask us {n}",
            )
        )
    qid = (
        officer.ListQuestionsCampaigns(pb.ListQuestionsCampaignsRequest(campaign_id="camp-2"))
        .questions_campaigns[0]
        .questions_campaign.questions_id
    )
    officer.SubmitQuestion(
        pb.SubmitQuestionRequest(questions_id=qid, request_id="q1", author="Ana", text="Why?")
    )
    officer.CloseQuestionsCampaign(pb.CloseQuestionsCampaignRequest(questions_id=qid))

    # A viewer may read the list (a read), newest change first, the questions counted.
    viewer: EngagerServiceStub = connect("viewer")
    listed = viewer.ListQuestionsCampaigns(pb.ListQuestionsCampaignsRequest())
    first = listed.questions_campaigns[0]
    assert first.questions_campaign.title == "Ask us 2" and not first.questions_campaign.open
    assert (first.questions, first.pending) == (1, 1)
    assert not first.questions_campaign.questions  # counts, not the questions themselves
    assert {s.questions_campaign.title for s in listed.questions_campaigns} == {
        "Ask us 0",
        "Ask us 1",
        "Ask us 2",
    }
    open_ones = viewer.ListQuestionsCampaigns(pb.ListQuestionsCampaignsRequest(open_only=True))
    assert len(open_ones.questions_campaigns) == 2

    page = viewer.ListQuestionsCampaigns(pb.ListQuestionsCampaignsRequest(page_size=2))
    assert len(page.questions_campaigns) == 2 and page.next_page_token
    rest = viewer.ListQuestionsCampaigns(
        pb.ListQuestionsCampaignsRequest(page_size=2, page_token=page.next_page_token)
    )
    assert len(rest.questions_campaigns) == 1 and not rest.next_page_token

    code, details = code_of(
        lambda: viewer.ListQuestionsCampaigns(
            pb.ListQuestionsCampaignsRequest(page_token="12345678901234567890x")
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("page_token:")
    code, details = code_of(
        lambda: viewer.ListQuestionsCampaigns(pb.ListQuestionsCampaignsRequest(page_size=5000))
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("page_size:")
    code, _ = code_of(
        lambda: connect("publisher").ListQuestionsCampaigns(pb.ListQuestionsCampaignsRequest())
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED


def test_conversations_come_in_pages(stub: EngagerServiceStub) -> None:
    first = stub.ListConversations(pb.ListConversationsRequest(page_size=1))
    assert len(first.conversations) == 1 and first.next_page_token
    second = stub.ListConversations(
        pb.ListConversationsRequest(page_size=1, page_token=first.next_page_token)
    )
    assert len(second.conversations) == 1 and not second.next_page_token
    assert first.conversations[0].conversation_id != second.conversations[0].conversation_id
    code, details = code_of(
        lambda: stub.ListConversations(pb.ListConversationsRequest(page_token="x"))
    )
    assert (code, details) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "page_token: not a token this API gave",
    )


# --------------------------------------------------------------- hostile requests (issue 11)


@pytest.mark.parametrize(
    ("call", "details"),
    [
        (
            lambda stub: stub.RegisterPartner(
                pb.RegisterPartnerRequest(partner_id="ngo-1", name="NGO", kind=999)  # type: ignore[arg-type]  # not a PartnerKind, on purpose
            ),
            "kind: 999 is not a PartnerKind",
        ),
        (
            lambda stub: stub.RecordPartnerActivity(
                pb.RecordPartnerActivityRequest(
                    partner_id="ngo-1",
                    request_id="a-1",
                    kind=engage_pb2.PartnerActivity.KIND_MEETING,
                    title="Met",
                    occurred_at=Timestamp(seconds=10**12),
                )
            ),
            "occurred_at: a time from 1970-01-01T00:00:00Z",
        ),
        (
            lambda stub: stub.ReplyToConversation(reply_request(text="t" * 3_000_000)),
            "text: at most 10000 characters (got 3000000)",
        ),
        (
            lambda stub: stub.ReplyToConversation(reply_request(conversation_id="c\u202e1")),
            "conversation_id: must be an id",
        ),
        (
            lambda stub: stub.ReplyToConversation(
                reply_request(variables={f"v{n}": "x" for n in range(21)})
            ),
            "variables: at most 20 entries (got 21)",
        ),
        (
            lambda stub: stub.SetConversationStatus(
                pb.SetConversationStatusRequest(conversation_id=CID, status=42)  # type: ignore[arg-type]  # not a status, on purpose
            ),
            "status: 42 is not a ConversationStatus",
        ),
    ],
)
def test_hostile_requests_are_invalid_argument_naming_the_field(
    stub: EngagerServiceStub, producer: RecordingProducer, call: Any, details: str
) -> None:
    before = len(producer.calls)
    code, message = code_of(lambda: call(stub))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert message.startswith(details), message
    assert len(producer.calls) == before
