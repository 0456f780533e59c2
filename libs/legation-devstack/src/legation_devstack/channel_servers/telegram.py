"""Telegram's Bot API: ``/bot<token>/sendMessage`` and the media methods.

Answers as the Bot API does, ``{"ok": true, "result": Message}`` or ``{"ok": false,
"error_code": ..., "description": ...}``: 401 ``Unauthorized`` for a bad token, 400
``Bad Request: chat not found`` / ``message is too long`` / ``message caption is too long``
/ ``message to be replied not found``, 429 ``Too Many Requests: retry after N`` with
``parameters.retry_after``. No idempotency: a repeated request posts again.
"""

from __future__ import annotations

import time
from typing import Any

from legation_devstack.channel_servers.base import Canned, Received, RecordingHttpServer, Response

_MEDIA = {"sendPhoto": "photo", "sendVideo": "video", "sendDocument": "document"}


class TelegramServer(RecordingHttpServer):
    def __init__(
        self,
        bot_token: str = "123456:test-token",
        chat_id: str = "@embassy_news",
        numeric_chat_id: int = -1001234567890,
    ) -> None:
        super().__init__()
        self.bot_token = bot_token
        self.chat_id = chat_id
        self.numeric_chat_id = numeric_chat_id
        self.messages: list[dict[str, Any]] = []

    def rate_limit_next(self, seconds: int = 2) -> None:
        self.fail_next(
            "/bot",
            Canned(
                429,
                {
                    "ok": False,
                    "error_code": 429,
                    "description": f"Too Many Requests: retry after {seconds}",
                    "parameters": {"retry_after": seconds},
                },
            ),
        )

    def handle(self, request: Received) -> Response:
        prefix = f"/bot{self.bot_token}/"
        if not request.path.startswith(prefix):
            return (
                _fail(401, "Unauthorized")
                if request.path.startswith("/bot")
                else _fail(404, "Not Found")
            )
        method = request.path[len(prefix) :]
        if method != "sendMessage" and method not in _MEDIA:
            return _fail(404, "Not Found: method not found")
        params = request.json() if request.body else {}
        if str(params.get("chat_id")) not in (self.chat_id, str(self.numeric_chat_id)):
            return _fail(400, "Bad Request: chat not found")
        message: dict[str, Any] = {
            "message_id": len(self.messages) + 1,
            "date": int(time.time()),
            "chat": {
                "id": self.numeric_chat_id,
                "title": "Embassy news",
                "type": "channel",
                "username": self.chat_id.lstrip("@"),
            },
        }
        if method == "sendMessage":
            text = params.get("text", "")
            if not text.strip():
                return _fail(400, "Bad Request: message text is empty")
            if len(text) > 4096:
                return _fail(400, "Bad Request: message is too long")
            message["text"] = text
        else:
            field = _MEDIA[method]
            if not params.get(field):
                return _fail(400, f"Bad Request: there is no {field} in the request")
            caption = params.get("caption", "")
            if len(caption) > 1024:
                return _fail(400, "Bad Request: message caption is too long")
            message[field] = params[field]
            message["caption"] = caption
        reply = (params.get("reply_parameters") or {}).get("message_id")
        if reply is not None:
            if not any(m["message_id"] == reply for m in self.messages):
                return _fail(400, "Bad Request: message to be replied not found")
            message["reply_to_message"] = {"message_id": reply}
        self.messages.append(message)
        return 200, {"ok": True, "result": message}, {}


def _fail(code: int, description: str) -> Response:
    return code, {"ok": False, "error_code": code, "description": description}, {}
