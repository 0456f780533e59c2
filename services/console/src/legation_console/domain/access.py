"""Which actions a person's roles allow, so pages offer only those. No I/O.

Each :class:`Action` is one RPC of a service and the roles its access policy grants it to
(``services/<step>/src/legation_<step>/adapters/policy.py``, with the services' default
workflow roles). The services enforce their policies whatever the console shows: this table
only decides which buttons and forms a page draws, and ``tests/unit/test_console_access.py``
checks it against the services' policies so the two cannot drift apart silently.
"""

from __future__ import annotations

from dataclasses import dataclass

from legation_core.auth import ADMIN, ANALYST, APPROVER, EDITOR, OFFICER, PUBLISHER, ROLES, VIEWER

LISTENER = "legation.listener.v1.ListenerService"
PUBLISHER_SERVICE = "legation.publisher.v1.PublisherService"
ENGAGER = "legation.engager.v1.EngagerService"
EVALUATOR = "legation.evaluator.v1.EvaluatorService"
NOTIFIER = "legation.notifier.v1.NotifierService"


@dataclass(frozen=True)
class Action:
    """One RPC and the roles that may call it."""

    service: str
    method: str
    roles: frozenset[str]


def _read(service: str, method: str, *roles: str) -> Action:
    return Action(service, method, frozenset({VIEWER, *roles}))


def _command(service: str, method: str, *roles: str) -> Action:
    return Action(service, method, frozenset(roles))


# Listen
LIST_ISSUES = _read(LISTENER, "ListIssues", ANALYST)
PREVIEW_QUERY = _read(LISTENER, "PreviewQuery", ANALYST)
LIST_SOURCES = _read(LISTENER, "ListSources", ANALYST)
TRACK_ISSUE = _command(LISTENER, "TrackIssue", ANALYST)
SET_ISSUE_ACTIVE = _command(LISTENER, "SetIssueActive", ANALYST)

# Engage
LIST_CONVERSATIONS = _read(ENGAGER, "ListConversations", OFFICER, APPROVER)
GET_CONVERSATION = _read(ENGAGER, "GetConversation", OFFICER, APPROVER)
LIST_SAVED_REPLIES = _read(ENGAGER, "ListSavedReplies", OFFICER)
ASSIGN_CONVERSATION = _command(ENGAGER, "AssignConversation", OFFICER)
REPLY_TO_CONVERSATION = _command(ENGAGER, "ReplyToConversation", OFFICER)
SET_CONVERSATION_STATUS = _command(ENGAGER, "SetConversationStatus", OFFICER)
LABEL_CONVERSATION = _command(ENGAGER, "LabelConversation", OFFICER)
PRIORITIZE_CONVERSATION = _command(ENGAGER, "PrioritizeConversation", OFFICER)
REVIEW_REPLY = _command(ENGAGER, "ReviewReply", APPROVER)
GET_QUESTIONS_CAMPAIGN = _read(ENGAGER, "GetQuestionsCampaign", OFFICER)
LIST_QUESTIONS_CAMPAIGNS = _read(ENGAGER, "ListQuestionsCampaigns", OFFICER)
CREATE_QUESTIONS_CAMPAIGN = _command(ENGAGER, "CreateQuestionsCampaign", OFFICER)
MODERATE_QUESTION = _command(ENGAGER, "ModerateQuestion", OFFICER)
ANSWER_QUESTION = _command(ENGAGER, "AnswerQuestion", OFFICER)
LIST_PARTNERS = _read(ENGAGER, "ListPartners", OFFICER)
GET_PARTNER = _read(ENGAGER, "GetPartner", OFFICER)
REGISTER_PARTNER = _command(ENGAGER, "RegisterPartner", OFFICER)
RECORD_PARTNER_ACTIVITY = _command(ENGAGER, "RecordPartnerActivity", OFFICER)

# Publish
LIST_POSTS = _read(PUBLISHER_SERVICE, "ListPosts", EDITOR, APPROVER, PUBLISHER)
GET_POST = _read(PUBLISHER_SERVICE, "GetPost", EDITOR, APPROVER, PUBLISHER)
CREATE_POST = _command(PUBLISHER_SERVICE, "CreatePost", EDITOR)
ADD_TRANSLATION = _command(PUBLISHER_SERVICE, "AddTranslation", EDITOR)
SUBMIT_POST = _command(PUBLISHER_SERVICE, "SubmitForReview", EDITOR)
APPROVE_POST = _command(PUBLISHER_SERVICE, "Approve", APPROVER)
REQUEST_CHANGES = _command(PUBLISHER_SERVICE, "RequestChanges", APPROVER)
SCHEDULE_POST = _command(PUBLISHER_SERVICE, "Schedule", PUBLISHER)
RETRY_DELIVERY = _command(PUBLISHER_SERVICE, "RetryDelivery", PUBLISHER)
CANCEL_DELIVERY = _command(PUBLISHER_SERVICE, "CancelDelivery", PUBLISHER)
CONFIRM_DELIVERY = _command(PUBLISHER_SERVICE, "ConfirmDelivery", PUBLISHER)

# Evaluate
LIST_CAMPAIGNS = _read(EVALUATOR, "ListCampaigns", ANALYST)
GET_SCORECARD = _read(EVALUATOR, "GetCampaignScorecard", ANALYST)
CREATE_CAMPAIGN = _command(EVALUATOR, "CreateCampaign", ANALYST)
GET_CAMPAIGN = _read(EVALUATOR, "GetCampaign", ANALYST)
GET_REPORT = _read(EVALUATOR, "GetCampaignReport", ANALYST)
BUILD_REPORT = _read(EVALUATOR, "BuildCampaignReport", ANALYST)
LIST_FEEDBACK = _read(EVALUATOR, "ListFeedback", ANALYST, EDITOR, APPROVER, PUBLISHER, OFFICER)
LIST_REVIEWS = _read(EVALUATOR, "ListAfterActionReviews", ANALYST)
SUBMIT_FEEDBACK = _command(
    EVALUATOR, "SubmitFeedback", ANALYST, EDITOR, APPROVER, PUBLISHER, OFFICER
)
REVIEW_CAMPAIGN = _command(EVALUATOR, "ReviewCampaign", ANALYST)

# Notify: everyone's own inbox; the messages the notifier could not finish, for operators.
LIST_MY_NOTIFICATIONS = _read(NOTIFIER, "ListMyNotifications", *ROLES)
MARK_NOTIFICATIONS_READ = _command(NOTIFIER, "MarkNotificationsRead", *ROLES)
GET_MY_PREFERENCES = _read(NOTIFIER, "GetMyPreferences", *ROLES)
LIST_MESSAGES = _read(NOTIFIER, "ListMessages", PUBLISHER)
RETRY_MESSAGE = _command(NOTIFIER, "RetryMessage", ADMIN, PUBLISHER)
CANCEL_MESSAGE = _command(NOTIFIER, "CancelMessage", ADMIN, PUBLISHER)
CONFIRM_MESSAGE = _command(NOTIFIER, "ConfirmMessage", ADMIN, PUBLISHER)

ACTIONS: tuple[Action, ...] = (
    LIST_ISSUES,
    PREVIEW_QUERY,
    LIST_SOURCES,
    TRACK_ISSUE,
    SET_ISSUE_ACTIVE,
    LIST_CONVERSATIONS,
    GET_CONVERSATION,
    LIST_SAVED_REPLIES,
    ASSIGN_CONVERSATION,
    REPLY_TO_CONVERSATION,
    SET_CONVERSATION_STATUS,
    LABEL_CONVERSATION,
    PRIORITIZE_CONVERSATION,
    REVIEW_REPLY,
    GET_QUESTIONS_CAMPAIGN,
    LIST_QUESTIONS_CAMPAIGNS,
    CREATE_QUESTIONS_CAMPAIGN,
    MODERATE_QUESTION,
    ANSWER_QUESTION,
    LIST_PARTNERS,
    GET_PARTNER,
    REGISTER_PARTNER,
    RECORD_PARTNER_ACTIVITY,
    LIST_POSTS,
    GET_POST,
    CREATE_POST,
    ADD_TRANSLATION,
    SUBMIT_POST,
    APPROVE_POST,
    REQUEST_CHANGES,
    SCHEDULE_POST,
    RETRY_DELIVERY,
    CANCEL_DELIVERY,
    CONFIRM_DELIVERY,
    LIST_CAMPAIGNS,
    GET_SCORECARD,
    CREATE_CAMPAIGN,
    GET_CAMPAIGN,
    GET_REPORT,
    BUILD_REPORT,
    LIST_FEEDBACK,
    LIST_REVIEWS,
    SUBMIT_FEEDBACK,
    REVIEW_CAMPAIGN,
    LIST_MY_NOTIFICATIONS,
    MARK_NOTIFICATIONS_READ,
    GET_MY_PREFERENCES,
    LIST_MESSAGES,
    RETRY_MESSAGE,
    CANCEL_MESSAGE,
    CONFIRM_MESSAGE,
)


def may(roles: frozenset[str], action: Action) -> bool:
    """True when someone with ``roles`` may take ``action``."""
    return not roles.isdisjoint(action.roles)
