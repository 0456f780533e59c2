"""A small OpenID Connect provider for the local stack and the tests: the demo people sign in
to the console through it exactly as ministry staff sign in through the ministry's identity
provider (authorization code flow with PKCE, a signed ID token carrying a ``groups`` claim).

Built on authlib's server components (authorization code grant, the OpenID Connect
extension, PKCE): this module only supplies the in-memory storage, the WSGI glue and a
sign-in page where a person picks a demo account (no passwords: local use only, never in a
shared environment). ``python -m legation_devstack.oidc_provider --help`` runs it alone.
"""

from __future__ import annotations

import argparse
import html
import json
import secrets
import signal
import threading
import time
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from wsgiref.types import StartResponse, WSGIEnvironment

from authlib.oauth2.rfc6749 import AuthorizationServer, OAuth2Payload, OAuth2Request
from authlib.oauth2.rfc6749.errors import OAuth2Error
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from joserfc.jwk import RSAKey

from legation_core.http_server import HttpServer

# The groups claim the console maps to roles and units (see legation_console's README).
GROUPS_CLAIM = "groups"


@dataclass(frozen=True)
class DemoPerson:
    """A person of the local identity provider: the claims their ID token carries."""

    username: str
    name: str
    groups: tuple[str, ...]

    @property
    def email(self) -> str:
        return f"{self.username}@ministry.example"


# The people of a working day in the console; the console's local group mapping
# (legation_devstack.console.GROUP_MAPPING) gives their groups roles and units.
DEMO_PEOPLE: tuple[DemoPerson, ...] = (
    DemoPerson("analyst", "Ana Lytic", ("legation-analysts", "unit-central")),
    DemoPerson("press-officer", "Pat Press", ("legation-press-officers", "unit-embassy-madrid")),
    DemoPerson("editor", "Eddie Torres", ("legation-editors", "unit-central")),
    DemoPerson("approver", "April Provost", ("legation-approvers", "unit-central")),
    # The publisher's second approval step needs another approver (four eyes).
    DemoPerson("head-of-comms", "Hana Head", ("legation-approvers", "unit-central")),
    DemoPerson("campaign-lead", "Cam Leadbetter", ("legation-campaign-leads", "unit-central")),
    DemoPerson("viewer", "Vic Viewer", ("legation-viewers", "unit-central")),
    DemoPerson("outsider", "Otto Sider", ("another-ministry",)),
)


@dataclass(frozen=True)
class Client:
    """The one registered relying party (the console): authlib's ClientMixin."""

    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...] = ()

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope: str) -> str:
        allowed = {"openid", "profile", "email", GROUPS_CLAIM}
        return " ".join(s for s in (scope or "").split() if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret.encode(), self.client_secret.encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass
class AuthorizationCode:
    """An issued code, with what authlib's grant, OIDC and PKCE extensions ask of it."""

    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: DemoPerson
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int = field(default_factory=lambda: int(time.time()))
    expires_at: float = field(default_factory=lambda: time.time() + 300)

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> str | None:
        return None

    def get_amr(self) -> list[str] | None:
        return None

    def is_expired(self) -> bool:
        return time.time() > self.expires_at


class _Payload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)

    @property
    def data(self) -> dict[str, str]:
        return self._values

    @property
    def datalist(self) -> dict[str, list[str]]:
        return {key: [value] for key, value in self._values.items()}


@dataclass(frozen=True)
class _Request:
    """A parsed WSGI request."""

    method: str
    url: str
    path: str
    headers: dict[str, str]
    args: dict[str, str]
    form: dict[str, str]


class _OAuth2Request(OAuth2Request):  # type: ignore[misc]
    def __init__(self, request: _Request) -> None:
        super().__init__(request.method, request.url, headers=request.headers)
        self._request = request
        self.payload = _Payload({**request.args, **request.form})

    @property
    def args(self) -> dict[str, str]:
        return self._request.args

    @property
    def form(self) -> dict[str, str]:
        return self._request.form


class _Store:
    """Codes and access tokens, in memory (one provider process, local use)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.codes: dict[str, AuthorizationCode] = {}
        self.tokens: dict[str, DemoPerson] = {}


class _CodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
    store: _Store  # set on the class built per provider

    def save_authorization_code(self, code: str, request: _OAuth2Request) -> None:
        payload = request.payload
        with self.store.lock:
            self.store.codes[code] = AuthorizationCode(
                code=code,
                client_id=request.client.client_id,
                redirect_uri=payload.redirect_uri or "",
                scope=request.client.get_allowed_scope(payload.scope),
                user=request.user,
                nonce=payload.data.get("nonce"),
                code_challenge=payload.data.get("code_challenge"),
                code_challenge_method=payload.data.get("code_challenge_method"),
            )

    def query_authorization_code(self, code: str, client: Client) -> AuthorizationCode | None:
        with self.store.lock:
            found = self.store.codes.get(code)
        if found is None or found.client_id != client.client_id or found.is_expired():
            return None
        return found

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        with self.store.lock:
            self.store.codes.pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code: AuthorizationCode) -> DemoPerson:
        return authorization_code.user


class _OpenIDCode(OpenIDCode):  # type: ignore[misc]
    def __init__(self, provider: LocalIdentityProvider) -> None:
        super().__init__(require_nonce=True)
        self.provider = provider

    def exists_nonce(self, nonce: str, request: _OAuth2Request) -> bool:
        with self.provider.store.lock:
            return any(code.nonce == nonce for code in self.provider.store.codes.values())

    def resolve_client_private_key(self, client: Client) -> RSAKey:
        return self.provider.key

    def get_client_algorithm(self, client: Client) -> str:
        return "RS256"

    def get_encode_header(self, client: Client) -> dict[str, str]:
        return {"alg": "RS256", "kid": self.provider.key.kid or ""}

    def get_client_claims(self, client: Client) -> dict[str, Any]:
        return {"iss": self.provider.issuer, "aud": [client.client_id]}

    def generate_user_info(self, user: DemoPerson, scope: str) -> UserInfo:
        return self.provider.user_info(user, scope)


class _Server(AuthorizationServer):  # type: ignore[misc]
    def __init__(self, provider: LocalIdentityProvider) -> None:
        super().__init__(scopes_supported=["openid", "profile", "email", GROUPS_CLAIM])
        self.provider = provider

    def query_client(self, client_id: str) -> Client | None:
        client = self.provider.client
        return client if client_id == client.client_id else None

    def save_token(self, token: Mapping[str, Any], request: _OAuth2Request) -> None:
        with self.provider.store.lock:
            self.provider.store.tokens[str(token["access_token"])] = request.user

    def create_oauth2_request(self, request: Any) -> _OAuth2Request:
        if isinstance(request, _OAuth2Request):
            return request
        return _OAuth2Request(request)

    def handle_response(
        self, status: int, body: Any, headers: Iterable[tuple[str, str]]
    ) -> tuple[int, bytes, list[tuple[str, str]]]:
        if isinstance(body, dict):
            return status, json.dumps(body).encode(), [*headers]
        return status, str(body or "").encode(), [*headers]

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        pass


Response = tuple[int, bytes, list[tuple[str, str]]]


class LocalIdentityProvider:
    """The provider as a WSGI application for ``issuer`` (its own base URL) and one client."""

    def __init__(
        self, issuer: str, client: Client, people: Sequence[DemoPerson] = DEMO_PEOPLE
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.client = client
        self.people = {person.username: person for person in people}
        self.key = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256"})
        self.key.ensure_kid()
        self.store = _Store()
        grant = type("CodeGrant", (_CodeGrant,), {"store": self.store})
        self.server = _Server(self)
        self.server.register_token_generator("default", BearerTokenGenerator(_opaque_token))
        self.server.register_grant(grant, [CodeChallenge(required=True), _OpenIDCode(self)])

    def user_info(self, person: DemoPerson, scope: str) -> UserInfo:
        """The claims of ``person`` that ``scope`` asks for."""
        scopes = set(scope.split())
        info = UserInfo(sub=person.username, preferred_username=person.username)
        if "profile" in scopes:
            info["name"] = person.name
        if "email" in scopes:
            info["email"] = person.email
            info["email_verified"] = True
        if GROUPS_CLAIM in scopes:
            info[GROUPS_CLAIM] = list(person.groups)
        return info

    def metadata(self) -> dict[str, Any]:
        """The discovery document (``/.well-known/openid-configuration``)."""
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "jwks_uri": f"{self.issuer}/jwks",
            "end_session_endpoint": f"{self.issuer}/logout",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "profile", "email", GROUPS_CLAIM],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": [
                "sub",
                "preferred_username",
                "name",
                "email",
                "email_verified",
                GROUPS_CLAIM,
            ],
        }

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        request = _parse(environ)
        status, body, headers = self.handle(request)
        headers = [*headers, ("Cache-Control", "no-store")]
        if not any(name.lower() == "content-type" for name, _ in headers):
            headers.append(("Content-Type", "application/json"))
        start_response(f"{status} {_REASONS.get(status, 'OK')}", headers)
        return [body]

    def handle(self, request: _Request) -> Response:
        """Routes one request."""
        if request.path == "/.well-known/openid-configuration":
            return 200, json.dumps(self.metadata()).encode(), []
        if request.path == "/jwks":
            return 200, json.dumps({"keys": [self.key.as_dict(private=False)]}).encode(), []
        if request.path == "/authorize":
            return self._authorize(request)
        if request.path == "/token" and request.method == "POST":
            result: Response = self.server.create_token_response(request)
            return result
        if request.path == "/userinfo":
            return self._userinfo(request)
        if request.path == "/logout":
            return self._logout(request)
        if request.path == "/healthz":
            return 200, b'{"status": "ok"}', []
        return 404, b'{"error": "not_found"}', []

    def _authorize(self, request: _Request) -> Response:
        # PKCE with S256 on every request, confidential client or not (OAuth 2.1).
        if request.args.get("code_challenge_method") != "S256":
            body = {"error": "invalid_request", "error_description": "PKCE (S256) is required"}
            return 400, json.dumps(body).encode(), []
        try:
            grant = self.server.get_consent_grant(request, end_user=None)
        except OAuth2Error as error:
            return 400, json.dumps(dict(error.get_body())).encode(), []
        if request.method == "POST":
            person = self.people.get(request.form.get("username", ""))
            result: Response = self.server.create_authorization_response(
                request, grant_user=person, grant=grant
            )
            return result
        return 200, self._sign_in_page(request).encode(), [("Content-Type", "text/html")]

    def _sign_in_page(self, request: _Request) -> str:
        action = html.escape("/authorize?" + urllib.parse.urlencode(request.args), quote=True)
        buttons = "\n".join(
            f'<li><button type="submit" name="username" value="{html.escape(p.username)}">'
            f"Sign in as {html.escape(p.name)} ({html.escape(p.username)})</button>"
            f"<br><small>groups: {html.escape(', '.join(p.groups))}</small></li>"
            for p in self.people.values()
        )
        return (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            "<title>Local identity provider</title></head><body><main>"
            "<h1>Local identity provider</h1>"
            "<p>For the local stack only: pick a demo person. A real deployment signs in "
            "through the ministry's identity provider.</p>"
            f'<form method="post" action="{action}"><ul>{buttons}</ul></form>'
            "</main></body></html>"
        )

    def _userinfo(self, request: _Request) -> Response:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        with self.store.lock:
            person = self.store.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if person is None:
            return 401, b'{"error": "invalid_token"}', [("WWW-Authenticate", "Bearer")]
        info = self.user_info(person, f"openid profile email {GROUPS_CLAIM}")
        return 200, json.dumps(dict(info)).encode(), []

    def _logout(self, request: _Request) -> Response:
        target = request.args.get("post_logout_redirect_uri", "")
        if target and target in self.client.post_logout_redirect_uris:
            state = request.args.get("state")
            if state:
                target += ("&" if "?" in target else "?") + urllib.parse.urlencode({"state": state})
            return 302, b"", [("Location", target)]
        page = "<!doctype html><title>Signed out</title><p>You are signed out.</p>"
        return 200, page.encode(), [("Content-Type", "text/html")]


def _opaque_token(*_args: Any, **_kwargs: Any) -> str:
    return secrets.token_urlsafe(32)


_REASONS = {200: "OK", 302: "Found", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}


def _parse(environ: WSGIEnvironment) -> _Request:
    method = str(environ.get("REQUEST_METHOD", "GET"))
    path = str(environ.get("PATH_INFO", "/"))
    query = str(environ.get("QUERY_STRING", ""))
    host = str(environ.get("HTTP_HOST", "127.0.0.1"))
    url = f"{environ.get('wsgi.url_scheme', 'http')}://{host}{path}" + (
        f"?{query}" if query else ""
    )
    headers = {
        key[5:].replace("_", "-").title(): str(value)
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    if environ.get("CONTENT_TYPE"):
        headers["Content-Type"] = str(environ["CONTENT_TYPE"])
    form: dict[str, str] = {}
    if method == "POST":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(min(length, 64 * 1024)).decode("utf-8", "replace")
        form = dict(urllib.parse.parse_qsl(body, keep_blank_values=True))
    args = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
    return _Request(method, url, path, headers, args, form)


def main(argv: Sequence[str] | None = None) -> int:
    """Serves the provider until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument(
        "--client-secret-file", required=True, help="file holding the client's secret"
    )
    parser.add_argument("--redirect-uri", action="append", required=True)
    parser.add_argument("--post-logout-redirect-uri", action="append", default=[])
    options = parser.parse_args(argv)
    with open(options.client_secret_file, encoding="utf-8") as secret_file:
        secret = secret_file.read().strip()
    client = Client(
        options.client_id,
        secret,
        tuple(options.redirect_uri),
        tuple(options.post_logout_redirect_uri),
    )
    provider = LocalIdentityProvider(f"http://127.0.0.1:{options.port}", client)
    server = HttpServer("oidc", options.port, provider, host="127.0.0.1")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server.start()
    print(f"local identity provider on {provider.issuer}", flush=True)
    stop.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
