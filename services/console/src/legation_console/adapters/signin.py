"""Sign-in and sign-out at the identity provider: OpenID Connect, authorization code flow
with PKCE (S256) and a nonce, through authlib's Starlette client.

``GET /sign-in`` sends the browser to the provider; ``GET /auth/callback`` exchanges the
code (with the PKCE verifier), validates the ID token (signature from the provider's JWKS,
issuer, audience, expiry, nonce), maps the person's groups to roles and units
(:func:`legation_console.domain.people.person_from_claims`) and starts a *new* session with
a new CSRF token; ``POST /sign-out`` ends the session and the provider's (RP-initiated
logout), then ``GET /signed-out`` says so.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from authlib.integrations.starlette_client import OAuth, OAuthError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from legation_console.adapters.metrics import ConsoleMetrics
from legation_console.adapters.rendering import render
from legation_console.adapters.security import (
    SESSION_CSRF,
    SESSION_PERSON,
    new_csrf_token,
    session_person,
)
from legation_console.domain.people import GroupMapping, NoAccess, person_from_claims

log = logging.getLogger(__name__)

SESSION_NEXT = "after_sign_in"


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of the console only (never another site)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or "\\" in target:
        return "/"
    return target


class SignIn:
    """The OpenID Connect relying party and its routes."""

    open_paths = ("/sign-in", "/auth/callback", "/signed-out")

    def __init__(
        self,
        *,
        issuer: str,
        client_id: str,
        client_secret: str,
        scopes: str,
        public_url: str,
        mapping: GroupMapping,
        username_claim: str,
        groups_claim: str,
        metrics: ConsoleMetrics,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        parts = urlsplit(self.issuer)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.public_url = public_url.rstrip("/")
        self.mapping = mapping
        self.username_claim = username_claim
        self.groups_claim = groups_claim
        self.metrics = metrics
        self.client_id = client_id
        self.oauth = OAuth()
        self.oauth.register(
            name="idp",
            client_id=client_id,
            client_secret=client_secret,
            server_metadata_url=f"{self.issuer}/.well-known/openid-configuration",
            client_kwargs={"scope": scopes, "code_challenge_method": "S256"},
        )

    @property
    def idp(self) -> Any:
        return self.oauth.create_client("idp")

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/sign-in", self.sign_in, name="sign-in"),
            Route("/auth/callback", self.callback, name="auth-callback"),
            Route("/sign-out", self.sign_out, methods=["POST"], name="sign-out"),
            Route("/signed-out", self.signed_out, name="signed-out"),
        ]

    async def sign_in(self, request: Request) -> Response:
        """``GET /sign-in?next=/path``: to the identity provider."""
        if session_person(request.scope) is not None:
            return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
        request.session[SESSION_NEXT] = safe_next(request.query_params.get("next"))
        response: Response = await self.idp.authorize_redirect(
            request, f"{self.public_url}/auth/callback"
        )
        return response

    async def callback(self, request: Request) -> Response:
        """``GET /auth/callback``: the provider's answer."""
        try:
            token = await self.idp.authorize_access_token(request)
            claims = token.get("userinfo") or {}
            person = person_from_claims(
                claims, self.mapping, self.username_claim, self.groups_claim
            )
        except OAuthError as error:
            self.metrics.sign_ins.labels("failed").inc()
            log.warning("sign-in failed", extra={"error": error.error})
            return render(
                request,
                "signin/failed.html",
                {"reason": error.description or error.error or "the identity provider refused"},
                status_code=400,
            )
        except NoAccess as refused:
            self.metrics.sign_ins.labels("no_access").inc()
            request.session.clear()
            return render(request, "signin/no_access.html", {"reason": str(refused)}, 403)
        target = safe_next(request.session.get(SESSION_NEXT))
        # A new session for the person: nothing from before signing in carries over.
        request.session.clear()
        request.session[SESSION_PERSON] = person.to_session()
        request.session[SESSION_CSRF] = new_csrf_token()
        self.metrics.sign_ins.labels("signed_in").inc()
        log.info("signed in", extra={"person": person.username, "roles": sorted(person.roles)})
        return RedirectResponse(target, status_code=303)

    async def sign_out(self, request: Request) -> Response:
        """``POST /sign-out``: ends the console's session, then the provider's."""
        person = session_person(request.scope)
        request.session.clear()
        if person is not None:
            log.info("signed out", extra={"person": person.username})
        try:
            response: Response = await self.idp.logout_redirect(
                request,
                post_logout_redirect_uri=f"{self.public_url}/signed-out",
                client_id=self.client_id,
            )
        except (OAuthError, RuntimeError):
            # The provider offers no end-session endpoint: the console's session is over.
            return RedirectResponse("/signed-out", status_code=303)
        request.session.clear()  # no state kept for the way back
        response.status_code = 303
        return response

    async def signed_out(self, request: Request) -> Response:
        """``GET /signed-out``."""
        return render(request, "signin/signed_out.html", {})
