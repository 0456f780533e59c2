"""legation-evaluator-bootstrap against a recording fake of the OpenSearch client."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest
from opensearchpy import NotFoundError, OpenSearch

from legation_core.catalog import default_catalog
from legation_evaluator import bootstrap
from legation_evaluator.bootstrap import (
    BootstrapError,
    ism_policy,
    multipart,
    prepare_indices,
    retention_days,
)

PREFIX = "legation-events-v1"


class FakeIndices:
    def __init__(self, aliases: set[str], indices: set[str]) -> None:
        self.aliases = aliases
        self.indices = indices
        self.templates: dict[str, dict[str, Any]] = {}
        self.created: list[tuple[str, dict[str, Any]]] = []

    def put_index_template(self, name: str, body: dict[str, Any]) -> None:
        self.templates[name] = body

    def exists_alias(self, name: str) -> bool:
        return name in self.aliases

    def exists(self, index: str) -> bool:
        return index in self.indices or index in self.aliases

    def create(self, index: str, body: dict[str, Any]) -> None:
        self.created.append((index, body))
        self.indices.add(index)
        self.aliases.update(body["aliases"])


class FakeTransport:
    def __init__(self, policies: dict[str, dict[str, Any]]) -> None:
        self.policies = policies
        self.attached: list[tuple[str, dict[str, Any] | None]] = []
        self.calls: list[tuple[str, str, dict[str, Any] | None]] = []

    def perform_request(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        self.calls.append((method, path, params))
        if path.startswith("/_plugins/_ism/add/"):
            self.attached.append((path.rsplit("/", 1)[1], body))
            return {"updated_indices": 0, "failures": False}
        policy_id = path.rsplit("/", 1)[1]
        if method == "GET":
            if policy_id not in self.policies:
                raise NotFoundError(404, "not found", {})
            return {"_seq_no": 7, "_primary_term": 2, **self.policies[policy_id]}
        assert body is not None
        self.policies[policy_id] = body
        return {"_id": policy_id}


class FakeClient:
    def __init__(self, aliases: set[str] | None = None, indices: set[str] | None = None) -> None:
        self.indices = FakeIndices(aliases or set(), indices or set())
        self.transport = FakeTransport({})


def run(client: FakeClient) -> list[str]:
    return prepare_indices(cast(OpenSearch, client), PREFIX, default_catalog())


def test_retention_follows_the_catalog() -> None:
    days = retention_days(default_catalog())
    assert days["mention"] == 90
    assert days["interaction"] == 365
    assert "campaign" not in days  # compacted: kept forever
    assert "feedback" not in days  # retention -1: kept forever


def test_prepares_the_template_and_a_retention_policy_per_monthly_type() -> None:
    client = FakeClient()
    policies = run(client)
    assert f"{PREFIX}-mention" in policies
    assert f"{PREFIX}-campaign" not in policies  # kept forever, like its topic
    assert list(client.indices.templates) == [PREFIX]  # the evaluator's own template
    assert client.indices.created == []  # monthly indices are created by the first write
    policy = client.transport.policies[f"{PREFIX}-mention"]["policy"]
    delete = policy["states"][0]["transitions"][0]["conditions"]["min_index_age"]
    assert delete == "121d"  # 90 days of retention + the month the index spans
    assert (f"{PREFIX}-mention-*", {"policy_id": f"{PREFIX}-mention"}) in (
        client.transport.attached
    )


def test_second_run_updates_the_policy() -> None:
    client = FakeClient()
    run(client)
    run(client)
    updates = [c for c in client.transport.calls if c[0] == "PUT" and c[2]]
    assert updates
    assert updates[0][2] == {"if_seq_no": 7, "if_primary_term": 2}


def test_a_legacy_index_in_the_way_is_reported() -> None:
    client = FakeClient(indices={f"{PREFIX}-mention"})
    with pytest.raises(BootstrapError, match="reindex"):
        run(client)


def test_policy_shape() -> None:
    policy = ism_policy(PREFIX, "mention", 90)["policy"]
    assert [state["name"] for state in policy["states"]] == ["hot", "delete"]
    assert policy["ism_template"][0]["index_patterns"] == [f"{PREFIX}-mention-*"]


def test_multipart_body_carries_the_file() -> None:
    body = multipart(b'{"id": "x"}\n', "b0undary")
    assert body.startswith(b"--b0undary\r\n")
    assert b'name="file"; filename="legation.ndjson"' in body
    assert body.endswith(b'{"id": "x"}\n\r\n--b0undary--\r\n')


def test_bad_settings_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEGATION_OPENSEARCH_DASHBOARDS_URL", "ftp://nowhere")
    assert bootstrap.main(["--skip-dashboards"]) == 2


def test_import_needs_a_dashboards_url() -> None:
    settings = bootstrap.BootstrapSettings()
    with pytest.raises(BootstrapError, match="DASHBOARDS_URL"):
        bootstrap.import_saved_objects(settings, json.dumps({}).encode())
