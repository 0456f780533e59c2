"""legation_core.auth without a server: the users file, token lookup, roles and policies."""

from __future__ import annotations

from pathlib import Path

import pytest
from grpc_health.v1 import health_pb2

from legation.events.v1 import publish_pb2
from legation_core.auth import (
    ADMIN,
    EDITOR,
    VIEWER,
    AccessDenied,
    AuthError,
    Caller,
    NotAuthenticated,
    Policy,
    bearer_token,
    check_policy,
    command,
    current_caller,
    hash_token,
    load_users,
    parse_users,
    reads,
    require_role,
    resource_ids,
)

TOKEN = "s3cret-token-of-ana"


def users(**overrides: object) -> dict[str, object]:
    entry: dict[str, object] = {
        "name": "ana",
        "roles": [EDITOR],
        "token_sha256": [hash_token(TOKEN)],
    }
    entry.update(overrides)
    return {"users": [entry]}


def test_a_token_maps_to_its_user_and_roles() -> None:
    directory = parse_users(users(), "users.yaml")
    assert directory.by_token(TOKEN) == Caller("ana", frozenset({EDITOR}))
    assert directory.by_token("another token") is None
    assert directory.by_token("") is None


def test_certificate_names_map_to_their_user() -> None:
    directory = parse_users(users(certificate_names=["ana.ministry.example"]), "users.yaml")
    assert directory.by_certificate(["x", "ana.ministry.example"]) == Caller(
        "ana", frozenset({EDITOR})
    )
    assert directory.by_certificate(["bob.ministry.example"]) is None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"token_sha256": [TOKEN]}, "users[0].token_sha256: expected 64 lowercase hex digits"),
        ({"roles": ["root"]}, "users[0].roles: unknown roles root"),
        ({"roles": "editor"}, "users[0].roles: expected a list"),
        ({"name": "a b"}, "users[0].name"),
        ({"token_sha256": []}, "ana has neither token_sha256 nor certificate_names"),
        ({"password": "x"}, "users[0]: unknown keys password"),
    ],
)
def test_a_bad_entry_is_refused_naming_the_field(
    overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(AuthError) as raised:
        parse_users(users(**overrides), "users.yaml")
    assert message in str(raised.value)
    assert str(raised.value).startswith("users.yaml: ")


def test_duplicate_names_and_token_hashes_are_refused() -> None:
    entry = {"name": "ana", "roles": [EDITOR], "token_sha256": [hash_token(TOKEN)]}
    with pytest.raises(AuthError, match=r"users\[1\].name: ana appears twice"):
        parse_users({"users": [entry, entry]}, "f")
    other = {**entry, "name": "bob"}
    with pytest.raises(AuthError, match=r"users\[1\].token_sha256: a token hash appears twice"):
        parse_users({"users": [entry, other]}, "f")


def test_a_users_file_that_is_not_utf8_is_refused_naming_it_and_the_offset(
    tmp_path: Path,
) -> None:
    path = tmp_path / "users.yaml"
    path.write_bytes(b"users:\n- name: jos\xe9\n")
    with pytest.raises(AuthError) as refused:
        load_users(path)
    assert str(refused.value) == (
        f"{path}: not UTF-8 text: byte 0xe9 at offset 18 (invalid continuation byte)"
    )


def test_keys_and_values_of_any_yaml_type_are_refused_naming_the_entry() -> None:
    # Keys that do not sort together (a number and a string) and values of any size.
    entry = {"name": "ana", "roles": [EDITOR], "token_sha256": [hash_token(TOKEN)]}
    with pytest.raises(AuthError, match=r"users\[0\]: unknown keys 1, None, x"):
        parse_users({"users": [{**entry, 1: 2, None: 3, "x": 4}]}, "f")
    bomb: list[object] = ["lol"] * 10
    for _ in range(8):  # an alias bomb's shape: 10**9 strings when printed whole
        bomb = [bomb] * 10
    with pytest.raises(AuthError, match=r"users\[0\]\.roles: expected a list") as refused:
        parse_users({"users": [{**entry, "roles": bomb}]}, "f")
    assert len(str(refused.value)) < 300
    with pytest.raises(AuthError, match=r"users\[0\]\.name: expected 1-128") as refused:
        parse_users({"users": [{**entry, "name": ["x" * 100_000]}]}, "f")
    assert len(str(refused.value)) < 300


def test_load_users_reports_an_unreadable_or_invalid_file(tmp_path: Path) -> None:
    with pytest.raises(AuthError, match="cannot read the users file"):
        load_users(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("users: [\n")
    with pytest.raises(AuthError, match="not valid YAML"):
        load_users(broken)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(AuthError, match="expected a mapping with a 'users' list"):
        load_users(empty)


def test_require_role_accepts_any_listed_role_and_admin() -> None:
    require_role(Caller("ana", frozenset({EDITOR})), EDITOR, ADMIN)
    require_role(Caller("root", frozenset({ADMIN})), EDITOR)
    with pytest.raises(AccessDenied, match="viv needs the role approver or editor"):
        require_role(Caller("viv", frozenset({VIEWER})), EDITOR, "approver")


def test_current_caller_outside_an_rpc_raises() -> None:
    with pytest.raises(NotAuthenticated):
        current_caller()


def test_bearer_token_reads_the_authorization_metadata() -> None:
    assert bearer_token([("x", "y"), ("authorization", "Bearer abc")]) == "abc"
    assert bearer_token([("authorization", "bearer  abc ")]) == "abc"
    assert bearer_token([("authorization", "Basic abc")]) is None
    assert bearer_token([("authorization", "Bearer ")]) is None
    assert bearer_token([]) is None


def test_check_policy_wants_a_rule_for_every_method_and_only_known_roles() -> None:
    service = "grpc.health.v1.Health"
    methods = [m.name for m in health_pb2.DESCRIPTOR.services_by_name["Health"].methods]
    complete = Policy(service, {name: reads() for name in methods})
    check_policy(complete)
    missing = Policy(service, {name: reads() for name in methods if name != "Watch"})
    with pytest.raises(AuthError, match="no access rule for Watch"):
        check_policy(missing)
    extra = Policy(service, {**complete.rules, "Reboot": command(ADMIN)})
    with pytest.raises(AuthError, match="methods it does not have: Reboot"):
        check_policy(extra)
    bad_role = Policy(service, {**complete.rules, "Check": command("root")})
    with pytest.raises(AuthError, match="Check names unknown roles root"):
        check_policy(bad_role)
    with pytest.raises(AuthError, match="unknown gRPC service"):
        check_policy(Policy("legation.nothing.v1.Nothing", {}))


def test_resource_ids_are_the_set_id_fields_of_the_request() -> None:
    request = publish_pb2.Publication(post_id="p-1", publication_id="", channel="site-atom")
    assert resource_ids(request) == {"post_id": "p-1"}
    assert resource_ids(b"raw") == {}
