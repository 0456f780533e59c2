"""Feedback from the audience, colleagues and partners: what the API accepts."""

from __future__ import annotations

from legation.events.v1 import evaluate_pb2
from legation_evaluator.domain.campaigns import InvalidRequest
from legation_evaluator.domain.campaigns import validate_feedback as validate_basics

Feedback = evaluate_pb2.Feedback

MAX_TEXT = 5000
MAX_NAME = 200


def validate_feedback(feedback: Feedback) -> None:
    """Refuses feedback the review and the report could not use; the error names the
    field. Who: a role, and for a partner its organisation or author; about what: a campaign, or the
    id of a publication or conversation."""
    validate_basics(feedback)  # rating, role, text
    if len(feedback.text) > MAX_TEXT:
        raise InvalidRequest(f"feedback.text is longer than {MAX_TEXT} characters")
    for name in ("author", "organisation"):
        if len(getattr(feedback, name)) > MAX_NAME:
            raise InvalidRequest(f"feedback.{name} is longer than {MAX_NAME} characters")
    partner = feedback.from_role == Feedback.FROM_ROLE_PARTNER
    if partner and not (feedback.organisation.strip() or feedback.author.strip()):
        # Feedback from a partner nobody can name cannot go back to that partner.
        raise InvalidRequest("feedback.organisation (or author) is required for partner feedback")
    if (
        feedback.about_kind
        in (
            Feedback.ABOUT_KIND_PUBLICATION,
            Feedback.ABOUT_KIND_CONVERSATION,
        )
        and not feedback.about.strip()
    ):
        kind = Feedback.AboutKind.Name(feedback.about_kind)
        raise InvalidRequest(f"feedback.about (the id) is required with about_kind {kind}")


def with_subject(feedback: Feedback, campaign_id: str) -> Feedback:
    """A copy whose subject is explicit: feedback about nothing in particular is about
    the campaign."""
    result = Feedback()
    result.CopyFrom(feedback)
    if result.about_kind == Feedback.ABOUT_KIND_UNSPECIFIED:
        result.about_kind = Feedback.ABOUT_KIND_CAMPAIGN
    if result.about_kind == Feedback.ABOUT_KIND_CAMPAIGN and not result.about:
        result.about = campaign_id
    return result


def who(feedback: Feedback) -> str:
    """ "Partner Ana Ruiz (Ocean Alliance)", "Audience member": the role and the names."""
    role = {
        Feedback.FROM_ROLE_AUDIENCE: "Audience member",
        Feedback.FROM_ROLE_COLLEAGUE: "Colleague",
        Feedback.FROM_ROLE_PARTNER: "Partner",
    }.get(feedback.from_role, "Someone")
    names = [n for n in (feedback.author.strip(), feedback.organisation.strip()) if n]
    if len(names) == 2 and names[0] != names[1]:
        return f"{role} {names[0]} ({names[1]})"
    return f"{role} {names[0]}" if names else role
