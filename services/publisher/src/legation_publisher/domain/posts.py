"""Ids, shared checks and the Publication envelope.

A post's id derives from the caller's request_id and a publication's id from its delivery,
so a retried request finds the same post and a re-recorded delivery re-emits the same
Publication event, which subscribers deduplicate on its event id.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from legation.events.v1 import publish_pb2
from legation_core.calls import InvalidArgument
from legation_core.codec import Envelope, make_envelope
from legation_core.ids import stable_id

Publication = publish_pb2.Publication
SERVICE = "publisher"
MAX_TITLE_LENGTH = 300
DEFAULT_LANGUAGE = "en"

# A plausible BCP 47 tag: language (2-3 letters), optional script (4 letters), optional
# region (2 letters or 3 digits), optional variants. Extensions and private use are left
# out on purpose: no channel we publish to understands them.
_LANGUAGE_TAG = re.compile(
    r"[A-Za-z]{2,3}(-[A-Za-z]{4})?(-(?:[A-Za-z]{2}|[0-9]{3}))?"
    r"(-(?:[A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*"
)
# Characters XML 1.0 cannot carry: a post with one could never be written to a feed.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class InvalidPost(InvalidArgument):
    """A post that cannot be published; the message names the field."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}", field)


def post_id_for(request_id: str) -> str:
    """One request_id is one post, however often it is retried."""
    return stable_id("post", request_id)


def publication_id_for(delivery_id: str) -> str:
    """One delivery (post, language, channel, occurrence) is one publication and one event
    id, however often it is recorded."""
    return stable_id("publication", delivery_id)


def is_language_tag(tag: str) -> bool:
    """True when ``tag`` looks like a BCP 47 language tag (en, fr, es-MX, zh-Hant-TW)."""
    return len(tag) <= 35 and _LANGUAGE_TAG.fullmatch(tag) is not None


def xml_safe(field: str, value: str) -> str:
    """``value`` unless it holds a character XML cannot carry (:class:`InvalidPost`)."""
    bad = _NOT_XML.search(value)
    if bad:
        raise InvalidPost(field, f"contains the control character U+{ord(bad.group()):04X}")
    return value


def publication_envelope(
    publication: publish_pb2.Publication, campaign_id: str, issue_id: str = ""
) -> Envelope:
    """The envelope for the publications topic; its event id is the publication id, and it
    occurred when the channel published the post (the same on every retry)."""
    published_at: datetime = publication.published_at.ToDatetime(tzinfo=UTC)
    return make_envelope(
        publication,
        event_id=publication.publication_id,
        source_service=SERVICE,
        occurred_at=published_at,
        campaign_id=campaign_id,
        issue_id=issue_id,
    )
