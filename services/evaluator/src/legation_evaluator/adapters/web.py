"""The live scorecard page: a WSGI app the service runtime serves over HTTP.

``/`` is the page (campaign list, objectives with status, KPIs, a mentions chart); its
script polls ``/api/campaigns/<id>`` and redraws, so the page follows events as they are
indexed. User text reaches the page only through jinja2's autoescape or the script's
``textContent``, never as markup. ``/healthz`` answers the orchestrator's probe.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any
from wsgiref.types import StartResponse, WSGIEnvironment

from jinja2 import Environment, PackageLoader
from opensearchpy.exceptions import TransportError

from legation_evaluator.adapters.campaign_data import CampaignData
from legation_evaluator.adapters.index import IndexUnavailable
from legation_evaluator.adapters.rebuild import IndexRebuilding
from legation_evaluator.domain.live import campaign_entry, scorecard_json

log = logging.getLogger(__name__)
_templates = Environment(loader=PackageLoader("legation_evaluator", "templates"), autoescape=True)
_SCRIPT = files("legation_evaluator").joinpath("static/live.js").read_bytes()
_SECURITY_HEADERS = [
    ("X-Content-Type-Options", "nosniff"),
    # Only our own script and inline SVG: no CDN, nothing from elsewhere.
    ("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'"),
]


class ScorecardPage:
    """WSGI application of the live page over the index."""

    def __init__(self, data: CampaignData, refresh_seconds: float) -> None:
        self.data = data
        self.refresh_seconds = refresh_seconds

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        # PEP 3333: the server decoded the path as latin-1; the URL's bytes are UTF-8.
        path = str(environ.get("PATH_INFO", "/")).encode("latin-1").decode("utf-8", "replace")
        if method not in ("GET", "HEAD"):
            return _send(start_response, "405 Method Not Allowed", "text/plain", b"GET only")
        try:
            if path == "/":
                return self._page(start_response)
            if path == "/static/live.js":
                return _send(start_response, "200 OK", "text/javascript", _SCRIPT)
            if path == "/healthz":
                return _send(start_response, "200 OK", "text/plain", b"ok")
            if path == "/api/campaigns":
                campaigns = [campaign_entry(c) for c in self.data.campaigns()]
                return _json(start_response, "200 OK", {"campaigns": campaigns})
            if path.startswith("/api/campaigns/"):
                campaign_id = path.removeprefix("/api/campaigns/")
                return self._scorecard(start_response, campaign_id)
        except IndexRebuilding:  # before IndexUnavailable, its parent
            body = {"error": "the index is being rebuilt from Kafka", "rebuilding": True}
            return _json(start_response, "503 Service Unavailable", body)
        except (IndexUnavailable, TransportError) as error:  # the index is down: say so
            # (anything else is a bug: a generic 500 from the server, its stack in the log)
            log.warning("live page request failed", extra={"path": path, "error": str(error)})
            return _json(start_response, "503 Service Unavailable", {"error": "index unavailable"})
        return _send(start_response, "404 Not Found", "text/plain", b"not found")

    def _page(self, start_response: StartResponse) -> Iterable[bytes]:
        page = _templates.get_template("live.html.j2").render(
            campaigns=self.data.campaigns(), refresh_ms=int(self.refresh_seconds * 1000)
        )
        return _send(start_response, "200 OK", "text/html; charset=utf-8", page.encode())

    def _scorecard(self, start_response: StartResponse, campaign_id: str) -> Iterable[bytes]:
        campaign = self.data.campaign(campaign_id)
        if campaign is None:
            return _json(start_response, "404 Not Found", {"error": "no such campaign"})
        card = self.data.scorecard(campaign, datetime.now(UTC))
        return _json(start_response, "200 OK", scorecard_json(card))


def _json(start_response: StartResponse, status: str, body: dict[str, Any]) -> Iterable[bytes]:
    return _send(start_response, status, "application/json", json.dumps(body).encode())


def _send(
    start_response: StartResponse, status: str, content_type: str, body: bytes
) -> Iterable[bytes]:
    start_response(
        status,
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            *_SECURITY_HEADERS,
        ],
    )
    return [body]
