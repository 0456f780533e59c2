"""A webhook receiver that does what we ask of receivers: checks the HMAC signature and
its age, deduplicates on the Idempotency-Key (201 the first time, 200 with
``"duplicate": true`` after), and answers ``{"id", "url"}``."""

from __future__ import annotations

import time
from typing import Any

from legation_channels.adapters.webhook import SIGNATURE_HEADER, verify
from legation_devstack.channel_servers.base import Received, RecordingHttpServer, Response


class WebhookReceiver(RecordingHttpServer):
    def __init__(self, secret: str = "webhook-secret", path: str = "/hooks/legation") -> None:
        super().__init__()
        self.secret = secret
        self.path = path
        self.accepted: dict[str, dict[str, Any]] = {}

    @property
    def hook_url(self) -> str:
        return self.url + self.path

    def handle(self, request: Received) -> Response:
        if request.path != self.path or request.method != "POST":
            return 404, {"error": "not found"}, {}
        signature = request.headers.get(SIGNATURE_HEADER.lower(), "")
        if not verify(self.secret, signature, request.body, time.time()):
            return 401, {"error": "signature does not match"}, {}
        key = request.headers.get("idempotency-key", "")
        if not key:
            return (
                400,
                {"error": "Idempotency-Key header is required", "field": "idempotency_key"},
                {},
            )
        if key in self.accepted:
            return 200, {**self._answer(key), "duplicate": True}, {}
        document = request.json()
        empty = not isinstance(document, dict) or not (
            document.get("text") or document.get("media")
        )
        if empty:
            return 422, {"error": "text is required", "field": "text"}, {}
        self.accepted[key] = document
        return 201, self._answer(key), {}

    def _answer(self, key: str) -> dict[str, str]:
        number = list(self.accepted).index(key) + 1
        return {"id": f"item-{number}", "url": f"https://partners.example.org/items/{number}"}
