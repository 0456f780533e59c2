"""Chat rooms as their platforms answer: Slack and Microsoft Teams incoming webhooks, and a
Matrix homeserver's send-message endpoint.

* Slack: ``POST /slack/<hook>``; ``200 ok`` (text/plain), ``400 invalid_payload`` without
  ``text`` or ``blocks``, ``404 no_service`` for a hook it does not know. No idempotency.
* Teams: ``POST /teams/<hook>``; ``202`` for a message with an Adaptive Card attachment,
  ``400`` otherwise, ``404`` for an unknown hook. No idempotency.
* Matrix: ``PUT /_matrix/client/v3/rooms/<room>/send/m.room.message/<txnId>`` with
  ``Authorization: Bearer <token>``; ``401 M_UNKNOWN_TOKEN`` for a wrong token, ``200
  {"event_id"}``; the same transaction id again answers the same event id and posts nothing
  (the homeserver's transaction idempotency).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from legation_devstack.channel_servers.base import Received, RecordingHttpServer, Response

MATRIX_PREFIX = "/_matrix/client/v3/rooms/"


@dataclass(frozen=True)
class ChatMessage:
    """One message a room shows: ``kind`` slack, teams or matrix; ``room`` the hook name or
    the Matrix room id."""

    kind: str
    room: str
    body: dict[str, Any]

    @property
    def text(self) -> str:
        """Everything the message says, as plain text (for assertions)."""
        if self.kind == "slack":
            blocks = " ".join(
                str(block.get("text", {}).get("text", "")) for block in self.body.get("blocks", [])
            )
            return f"{self.body.get('text', '')} {blocks}"
        if self.kind == "teams":
            card = self.body["attachments"][0]["content"]
            texts = [str(item.get("text", "")) for item in card.get("body", [])]
            texts += [str(action.get("url", "")) for action in card.get("actions", [])]
            return " ".join(texts)
        return str(self.body.get("body", ""))


class ChatServer(RecordingHttpServer):
    """Slack and Teams webhooks named ``hooks`` and Matrix rooms accepting ``matrix_token``."""

    def __init__(self, hooks: tuple[str, ...] = (), matrix_token: str = "matrix-token") -> None:
        super().__init__()
        self.hooks = set(hooks)
        self.matrix_token = matrix_token
        self.messages: list[ChatMessage] = []
        self._transactions: dict[tuple[str, str], str] = {}

    def slack_url(self, hook: str) -> str:
        self.hooks.add(hook)
        return f"{self.url}/slack/{hook}"

    def teams_url(self, hook: str) -> str:
        self.hooks.add(hook)
        return f"{self.url}/teams/{hook}"

    def in_room(self, kind: str, room: str) -> list[ChatMessage]:
        with self.lock:
            return [m for m in self.messages if m.kind == kind and m.room == room]

    def handle(self, request: Received) -> Response:
        if request.method == "POST" and request.path.startswith(("/slack/", "/teams/")):
            kind, hook = request.path.strip("/").split("/", 1)
            return self._webhook(kind, hook, request)
        if request.method == "PUT" and request.path.startswith(MATRIX_PREFIX):
            return self._matrix(request)
        return 404, {"error": "not found"}, {}

    def _webhook(self, kind: str, hook: str, request: Received) -> Response:
        if hook not in self.hooks:
            return 404, b"no_service", {"Content-Type": "text/plain"}
        try:
            body = request.json()
        except ValueError:
            body = None
        if kind == "slack":
            if not isinstance(body, dict) or not (body.get("text") or body.get("blocks")):
                return 400, b"invalid_payload", {"Content-Type": "text/plain"}
            with self.lock:
                self.messages.append(ChatMessage(kind, hook, body))
            return 200, b"ok", {"Content-Type": "text/plain"}
        attachments = body.get("attachments") if isinstance(body, dict) else None
        valid = (
            isinstance(body, dict)
            and body.get("type") == "message"
            and isinstance(attachments, list)
            and attachments
            and attachments[0].get("contentType") == "application/vnd.microsoft.card.adaptive"
        )
        if not valid:
            return 400, {"error": {"message": "Bad payload: expected an Adaptive Card"}}, {}
        assert isinstance(body, dict)
        with self.lock:
            self.messages.append(ChatMessage(kind, hook, body))
        return 202, b"", {}

    def _matrix(self, request: Received) -> Response:
        if request.headers.get("authorization", "") != f"Bearer {self.matrix_token}":
            return 401, {"errcode": "M_UNKNOWN_TOKEN", "error": "Invalid access token"}, {}
        parts = request.path[len(MATRIX_PREFIX) :].split("/")
        if len(parts) != 4 or parts[1:3] != ["send", "m.room.message"]:
            return 404, {"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"}, {}
        room, transaction = unquote(parts[0]), parts[3]
        with self.lock:
            known = self._transactions.get((room, transaction))
            if known is not None:
                return 200, {"event_id": known}, {}
            body = request.json()
            if not isinstance(body, dict) or not body.get("body"):
                return 400, {"errcode": "M_BAD_JSON", "error": "body is required"}, {}
            event_id = f"$event{len(self._transactions) + 1}"
            self._transactions[(room, transaction)] = event_id
            self.messages.append(ChatMessage("matrix", room, body))
        return 200, {"event_id": event_id}, {}
