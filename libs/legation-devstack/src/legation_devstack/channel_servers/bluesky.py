"""An AT Protocol PDS, the XRPC methods a Bluesky poster uses.

``com.atproto.server.createSession`` (401 ``AuthenticationRequired``: Invalid identifier or
password), ``com.atproto.repo.createRecord`` for ``app.bsky.feed.post`` (400
``InvalidRequest`` for a bad record key or a text over 300 graphemes; a record key already
in the repo gives 409 ``RecordAlreadyExists`` as current PDSes do, or 500
``InternalServerError`` as older ones did: ``conflict_status``), ``getRecord`` (400
``RecordNotFound``), ``uploadBlob``; 429 with ``ratelimit-*`` headers and Retry-After.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from typing import Any

import regex

from legation_devstack.channel_servers.base import Canned, Received, RecordingHttpServer, Response

_TID = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")


def cid_for(data: bytes, codec: int = 0x71) -> str:
    """A CIDv1 (base32, sha2-256) of ``data``: dag-cbor records, raw (0x55) blobs."""
    raw = bytes([0x01, codec, 0x12, 0x20]) + hashlib.sha256(data).digest()
    return "b" + base64.b32encode(raw).decode().lower().rstrip("=")


def _jwt(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    signing_input = f"{part({'alg': 'HS256', 'typ': 'at+jwt'})}.{part(claims)}"
    signature = hashlib.sha256(signing_input.encode()).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).decode().rstrip('=')}"


class BlueskyServer(RecordingHttpServer):
    def __init__(
        self,
        handle: str = "embassy.example.org",
        app_password: str = "app-pass-word",
        did: str = "did:plc:embassy000000000000000",
        conflict_status: int = 409,
    ) -> None:
        super().__init__()
        self.account_handle = handle
        self.app_password = app_password
        self.did = did
        self.conflict_status = conflict_status
        self.records: dict[str, dict[str, Any]] = {}  # at:// uri → {uri, cid, value}
        self.blobs: dict[str, int] = {}
        self._tokens: set[str] = set()

    def rate_limit_next(self, seconds: int = 2) -> None:
        self.fail_next(
            "/xrpc/com.atproto.repo.createRecord",
            Canned(
                429,
                {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"},
                {
                    "ratelimit-limit": "5000",
                    "ratelimit-remaining": "0",
                    "ratelimit-reset": str(int(time.time()) + seconds),
                    "ratelimit-policy": "5000;w=3600",
                    "Retry-After": str(seconds),
                },
            ),
        )

    def posts(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r for u, r in self.records.items() if "/app.bsky.feed.post/" in u]

    def add_post(
        self, rkey: str, text: str, reply: dict[str, Any] | None = None, repo: str = ""
    ) -> str:
        """Puts a post in the repo directly (someone else's post to reply to)."""
        value: dict[str, Any] = {
            "$type": "app.bsky.feed.post",
            "text": text,
            "createdAt": "2026-01-01T00:00:00Z",
        }
        if reply:
            value["reply"] = reply
        uri = f"at://{repo or self.did}/app.bsky.feed.post/{rkey}"
        self.records[uri] = {"uri": uri, "cid": cid_for(json.dumps(value).encode()), "value": value}
        return uri

    def handle(self, request: Received) -> Response:
        method = request.path.removeprefix("/xrpc/")
        if method == "com.atproto.server.createSession":
            return self._create_session(request)
        if method == "com.atproto.repo.getRecord":
            return self._get_record(request)
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self._tokens:
            return _xrpc(401, "AuthenticationRequired", "Authentication Required")
        if method == "com.atproto.repo.createRecord":
            return self._create_record(request)
        if method == "com.atproto.repo.uploadBlob":
            blob = cid_for(request.body, codec=0x55)
            self.blobs[blob] = len(request.body)
            return (
                200,
                {
                    "blob": {
                        "$type": "blob",
                        "ref": {"$link": blob},
                        "mimeType": request.headers.get("content-type", "*/*"),
                        "size": len(request.body),
                    }
                },
                {},
            )
        return _xrpc(501, "MethodNotImplemented", f"Method Not Implemented: {method}")

    def _create_session(self, request: Received) -> Response:
        data = request.json() or {}
        if (
            data.get("identifier") not in (self.account_handle, self.did)
            or data.get("password") != self.app_password
        ):
            return _xrpc(401, "AuthenticationRequired", "Invalid identifier or password")
        now = int(time.time())
        access = _jwt(
            {
                "scope": "com.atproto.appPass",
                "sub": self.did,
                "iat": now,
                "exp": now + 7200,
                "aud": "did:web:pds.example.org",
            }
        )
        refresh = _jwt(
            {
                "scope": "com.atproto.refresh",
                "sub": self.did,
                "iat": now,
                "exp": now + 86400,
                "jti": str(now),
            }
        )
        self._tokens.add(access)
        return (
            200,
            {
                "did": self.did,
                "handle": self.account_handle,
                "accessJwt": access,
                "refreshJwt": refresh,
                "active": True,
            },
            {},
        )

    def _get_record(self, request: Received) -> Response:
        q = {k: v[0] for k, v in request.query.items()}
        repo = self.did if q.get("repo") in (self.account_handle, self.did) else q.get("repo", "")
        uri = f"at://{repo}/{q.get('collection', '')}/{q.get('rkey', '')}"
        if uri not in self.records:
            return _xrpc(400, "RecordNotFound", f"Could not locate record: {uri}")
        return 200, self.records[uri], {}

    def _create_record(self, request: Received) -> Response:
        data = request.json() or {}
        if data.get("repo") not in (self.did, self.account_handle):
            return _xrpc(400, "InvalidRequest", "Input/repo must be the session's repo")
        collection, record = data.get("collection"), data.get("record")
        if collection != "app.bsky.feed.post" or not isinstance(record, dict):
            return _xrpc(400, "InvalidRequest", "Input/record must be an app.bsky.feed.post")
        rkey = data.get("rkey") or f"3l{int(time.time() * 1e6):011d}"[:13]
        if not _TID.match(rkey):
            return _xrpc(400, "InvalidRequest", f"Invalid record key: {rkey} is not a TID")
        text = record.get("text", "")
        if not isinstance(text, str) or len(regex.findall(r"\X", text)) > 300:
            return _xrpc(
                400,
                "InvalidRequest",
                "Invalid app.bsky.feed.post record: "
                "Record/text must not be longer than 300 graphemes",
            )
        for image in (record.get("embed") or {}).get("images", []):
            if image.get("image", {}).get("ref", {}).get("$link") not in self.blobs:
                return _xrpc(
                    400, "InvalidRequest", "Could not find blob referenced by Record/embed/images"
                )
        uri = f"at://{self.did}/{collection}/{rkey}"
        if uri in self.records:
            if self.conflict_status == 409:
                return _xrpc(409, "RecordAlreadyExists", f"Record already exists: {uri}")
            return _xrpc(500, "InternalServerError", "Internal Server Error")
        cid = cid_for(json.dumps(record, sort_keys=True).encode())
        self.records[uri] = {"uri": uri, "cid": cid, "value": record}
        return (
            200,
            {
                "uri": uri,
                "cid": cid,
                "validationStatus": "valid",
                "commit": {"cid": cid_for(uri.encode()), "rev": rkey},
            },
            {},
        )


def _xrpc(status: int, error: str, message: str) -> Response:
    return status, {"error": error, "message": message}, {}
