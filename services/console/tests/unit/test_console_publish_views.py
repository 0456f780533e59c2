"""The Publish pages' view models: posts, the approval queue, a post's actions by role and
state, the new-post form."""

from __future__ import annotations

from legation.events.v1 import publish_pb2
from legation_console.domain.people import Person
from legation_console.domain.views import publish as views

EDITOR = Person("eddie", "Eddie", frozenset({"editor", "publisher", "viewer"}), frozenset())
APPROVER = Person("april", "April", frozenset({"approver", "viewer"}), frozenset())

IN_REVIEW = publish_pb2.POST_STATUS_IN_REVIEW


def post(
    post_id: str, status: publish_pb2.PostStatus.ValueType, approvals: tuple[str, ...] = ()
) -> publish_pb2.PostState:
    state = publish_pb2.PostState(
        post_id=post_id,
        status=status,
        campaign_id="c",
        channels=["site-atom"],
        variants=[
            publish_pb2.LanguageVariant(
                language="en",
                title=f"T {post_id}",
                status=status,
                approvals=[publish_pb2.Approval(step="desk", user=u) for u in approvals],
            ),
            publish_pb2.LanguageVariant(
                language="es",
                source_language="en",
                status=status,
                approvals=[publish_pb2.Approval(step="desk", user=u) for u in approvals],
            ),
        ],
    )
    state.updated_at.seconds = 1_800_000_000 + len(post_id)
    return state


def test_posts_and_the_approval_queue() -> None:
    posts = [post("a", publish_pb2.POST_STATUS_DRAFT), post("bb", IN_REVIEW)]
    page = views.posts_page(posts, EDITOR)
    assert [row.post_id for row in page.rows] == ["bb", "a"]  # last changed first
    assert (page.rows[0].status, page.rows[0].languages, page.rows[0].title) == (
        "In review",
        "en, es",
        "T bb",
    )
    assert page.can_create and not views.posts_page(posts, APPROVER).can_create
    assert page.awaiting_approval == "1 post"
    queue = views.approvals_page(posts, APPROVER)
    assert [row.post_id for row in queue.rows] == ["bb"]
    assert queue.summary == "1 post waiting for approval"
    assert queue.can_approve


def test_a_posts_actions_follow_roles_state_and_four_eyes() -> None:
    draft = views.post_page(post("a", publish_pb2.POST_STATUS_DRAFT), EDITOR)
    assert (draft.can_submit, draft.can_approve, draft.can_schedule) == (True, False, False)
    assert draft.variants[1].translated_from == "en"
    review = post("a", IN_REVIEW)
    assert views.post_page(review, APPROVER).can_approve
    assert not views.post_page(review, EDITOR).can_approve
    # One person passes one step of a variant: after theirs, no Approve button.
    assert not views.post_page(post("a", IN_REVIEW, ("april",)), APPROVER).can_approve
    assert views.post_page(post("a", IN_REVIEW, ("hana",)), APPROVER).can_approve
    approved = views.post_page(post("a", publish_pb2.POST_STATUS_APPROVED), EDITOR)
    assert approved.can_schedule and not approved.can_submit
    scheduled = post("a", publish_pb2.POST_STATUS_SCHEDULED)
    scheduled.deliveries.add(
        channel="site-atom",
        language="es",
        status=publish_pb2.DELIVERY_STATUS_PUBLISHED,
        attempts=1,
        url="javascript:x",
    )
    page = views.post_page(scheduled, EDITOR)
    assert page.live
    (delivery,) = page.deliveries
    assert (delivery.status, delivery.attempts, delivery.url) == ("Delivered", "1 attempt", None)


def test_the_new_post_form() -> None:
    empty = views.post_form_errors(views.PostForm(language=""))
    assert [name for name, _ in empty.errors] == ["campaign", "language", "title", "body"]
    half = views.post_form_errors(
        views.PostForm(campaign="c", title="T", body="B", translation_language="en")
    )
    assert [name for name, _ in half.errors] == [
        "translation_language",
        "translation_title",
        "translation_body",
    ]
    ok = views.PostForm(campaign="c", title="T", body="B")
    assert views.post_form_errors(ok).errors == () and not ok.has_translation
    refused = views.with_service_error(ok, "content.body is 600 characters", translation=True)
    assert refused.error("translation_body") == "Content.body is 600 characters"
    assert views.with_service_error(ok, "campaign_id is required", False).error("campaign")


def test_posts_come_fifty_at_a_time() -> None:
    many = [post(f"p{n:03}", publish_pb2.POST_STATUS_DRAFT) for n in range(120)]
    for number, state in enumerate(many):
        state.updated_at.seconds = 1_800_000_000 + number
    first = views.posts_page(many, EDITOR)
    assert (len(first.rows), first.page, first.pages, first.showing) == (
        50,
        1,
        3,
        "posts 1 to 50",
    )
    assert first.rows[0].post_id == "p119"  # last changed first
    last = views.posts_page(many, EDITOR, page=9)
    assert (last.page, last.showing, len(last.rows)) == (3, "posts 101 to 120", 20)
    assert views.posts_page([], EDITOR, page=0).showing == "no posts"


def test_changes_are_requested_with_a_reason_the_author_sees() -> None:
    review = post("a", IN_REVIEW)
    assert views.approvals_page([review], APPROVER).can_request_changes
    assert not views.approvals_page([review], EDITOR).can_request_changes
    assert views.post_page(review, APPROVER).can_request_changes
    assert not views.post_page(review, EDITOR).can_request_changes
    draft = post("a", publish_pb2.POST_STATUS_DRAFT)
    assert not views.post_page(draft, APPROVER).can_request_changes  # nothing to review
    assert not views.changes_form(draft, APPROVER).allowed
    assert views.changes_form(review, APPROVER).allowed

    form = views.changes_form(review, APPROVER)
    assert (form.post_id, form.title) == ("a", "T a")
    assert views.changes_form_errors(form).error("reason") == "Enter what the author should change"
    blank = views.changes_form(review, APPROVER, "  \n ")
    assert views.changes_form_errors(blank).error("reason")
    too_long = views.changes_form(review, APPROVER, "x" * (views.MAX_REASON + 1))
    assert views.changes_form_errors(too_long).error("reason") == (
        "The reason must be 5,000 characters or fewer"
    )
    fine = views.changes_form(review, APPROVER, "Cite the article")
    assert views.changes_form_errors(fine).errors == ()
    refused = views.with_changes_error(fine, "comment is required: say what should change")
    assert refused.error("reason") == "The reason is required: say what should change"

    # Sent back: the author's draft says who asked, and why, on each variant sent back.
    back = post("a", publish_pb2.POST_STATUS_CHANGES_REQUESTED)
    back.comments.add(user="eddie", language="en", text="A note of mine")
    reason = back.comments.add(user="april", language="en,es", text="Cite <the> article")
    reason.created_at.seconds = 1_800_000_000
    page = views.post_page(back, EDITOR)
    assert page.can_submit and not page.can_request_changes
    for variant in page.variants:
        assert variant.changes_requested is not None
        assert (variant.changes_requested.user, variant.changes_requested.text) == (
            "april",
            "Cite <the> article",
        )
    assert [(c.user, c.languages) for c in page.comments] == [
        ("april", "en, es"),
        ("eddie", "en"),
    ]
    assert views.post_page(review, EDITOR).variants[0].changes_requested is None
