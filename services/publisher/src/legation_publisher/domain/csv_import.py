"""Bulk import of drafts from CSV (a calendar exported from a spreadsheet). No I/O.

The first row names the columns. Every row must be valid before any post is created, and
an error names the row (as the spreadsheet numbers it: the header is row 1) and the column.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from datetime import datetime

from legation.events.v1 import publish_pb2
from legation.publisher.v1 import publisher_service_pb2
from legation_core.auth import Caller
from legation_publisher.domain import workflow
from legation_publisher.domain.content import ChannelProfile
from legation_publisher.domain.posts import InvalidPost
from legation_publisher.domain.workflow import WorkflowPolicy

REQUIRED = ("request_id", "campaign_id", "title", "body")
OPTIONAL = ("issue_id", "language", "author", "channels")
MAX_ROWS = 1000
# The request field a domain error names → the CSV column it came from.
_COLUMN_OF = {
    "request_id": "request_id",
    "campaign_id": "campaign_id",
    "language": "language",
    "content.title": "title",
    "content.body": "body",
    "content.author": "author",
    "content.media": "body",
}


def _column(field: str) -> str:
    if field.startswith("channels"):
        return "channels"
    return _COLUMN_OF.get(field, field)


def parse_csv(
    text: str,
    caller: Caller,
    policy: WorkflowPolicy,
    channels: Mapping[str, ChannelProfile],
    default_channels: Sequence[str],
    now: datetime,
) -> list[publish_pb2.PostState]:
    """The drafts the CSV describes, or :class:`InvalidPost` (field ``csv``) naming the row
    and column of the first problem."""
    if not text.strip():
        raise InvalidPost("csv", "is required")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [name.strip() for name in reader.fieldnames or []]
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise InvalidPost("csv", f"row 1: missing the column(s) {', '.join(missing)}")
    unknown = [name for name in header if name not in REQUIRED + OPTIONAL]
    if unknown:
        raise InvalidPost(
            "csv",
            f"row 1, column {unknown[0]}: unknown column (known: {', '.join(REQUIRED + OPTIONAL)})",
        )
    drafts: list[publish_pb2.PostState] = []
    seen: dict[str, int] = {}
    try:
        for number, raw in enumerate(reader, start=2):
            if number - 1 > MAX_ROWS:
                raise InvalidPost("csv", f"has more than {MAX_ROWS} rows: split it")
            if None in raw:
                raise InvalidPost("csv", f"row {number}: more cells than columns")
            row = {key.strip(): (value or "") for key, value in raw.items()}
            request_id = row["request_id"].strip()
            if request_id in seen:
                raise InvalidPost(
                    "csv",
                    f"row {number}, column request_id: {request_id!r} is also on row "
                    f"{seen[request_id]}",
                )
            seen[request_id] = number
            request = publisher_service_pb2.CreatePostRequest(
                request_id=request_id,
                campaign_id=row["campaign_id"],
                issue_id=row.get("issue_id", ""),
                language=row.get("language", ""),
                content=publisher_service_pb2.VariantContent(
                    title=row["title"], body=row["body"], author=row.get("author", "")
                ),
                channels=row.get("channels", "").split(),
            )
            try:
                drafts.append(
                    workflow.create_post(request, caller, policy, channels, default_channels, now)
                )
            except InvalidPost as error:
                problem = str(error).removeprefix(error.field).strip()
                raise InvalidPost(
                    "csv", f"row {number}, column {_column(error.field)}: {problem}"
                ) from None
    except csv.Error as error:
        raise InvalidPost("csv", f"row {reader.line_num}: {error}") from None
    if not drafts:
        raise InvalidPost("csv", "has no rows after the header")
    return drafts
