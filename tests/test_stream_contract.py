"""The published stream contract: the AsyncAPI document is generated, current and valid, and
a breaking change to the protos or the catalog fails the compatibility check unless it ships
as a new version of the topic."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import yaml

import contracts_compat as compat
import gen_asyncapi as asyncapi
from legation_core.catalog import default_catalog

ROOT = Path(__file__).resolve().parent.parent


def test_the_asyncapi_document_is_generated_from_the_current_catalog() -> None:
    assert asyncapi.main(["--check"]) == 0, "run make contracts-docs"


def test_the_document_has_a_channel_per_topic_and_dlq_with_its_promises() -> None:
    document = yaml.safe_load((ROOT / "libs/legation-contracts/asyncapi.yaml").read_text())
    addresses = {channel["address"] for channel in document["channels"].values()}
    for spec in default_catalog():
        assert {spec.name, spec.dlq} <= addresses
    mentions = document["channels"]["listen_mentions_v1"]
    assert mentions["bindings"]["kafka"]["partitions"] == 6
    assert mentions["bindings"]["kafka"]["topicConfiguration"]["retention.ms"] == 7_776_000_000
    assert mentions["x-legation-disclosure"] == "personal"
    message = document["components"]["messages"]["listen_mentions_v1_event"]
    assert message["bindings"]["kafka"]["key"]["description"].startswith("mention_id")
    assert set(message["headers"]["properties"]) >= {"event-type", "trace-id"}
    assert message["examples"][0]["payload"]["mention"]["author"] == "A. Reporter"
    derived = document["channels"]["listen_mentions_pseudonymised_v1"]
    assert derived["x-legation-fields"]["author"] == "pseudonym"
    # Only what a department may be granted has a receive operation.
    received = {op["channel"]["$ref"].rsplit("/", 1)[1] for op in document["operations"].values()}
    assert "listen_mentions_pseudonymised_v1" in received
    assert "publish_posts_v1" not in received
    schema = document["components"]["schemas"]["Envelope"]
    assert schema["schemaFormat"].startswith("application/vnd.google.protobuf")
    assert "// @RootNode\nmessage Envelope {" in schema["schema"]


def test_the_asyncapi_cli_rejects_a_document_whose_protobuf_schema_is_broken(
    tmp_path: Path,
) -> None:
    text = (ROOT / "libs/legation-contracts/asyncapi.yaml").read_text()
    broken = tmp_path / "asyncapi.yaml"
    broken.write_text(text.replace("string event_id = 1;", "strin event_id = 1 x;", 1))
    validate = [
        "sh",
        str(ROOT / "tools/asyncapi/validate.sh"),
    ]
    good = subprocess.run(validate, capture_output=True, text=True, check=False, timeout=240)
    assert good.returncode == 0, good.stdout + good.stderr
    bad = subprocess.run(
        [*validate, str(broken)], capture_output=True, text=True, check=False, timeout=240
    )
    assert bad.returncode != 0, bad.stdout


def test_the_repository_contract_is_compatible_with_its_baseline() -> None:
    assert compat.check(compat.PROTOS, compat.CATALOG_DIR, compat.BASELINE) == []


def _copy_contract(tmp_path: Path) -> tuple[Path, Path]:
    protos = tmp_path / "protos"
    topics = tmp_path / "topics"
    shutil.copytree(compat.PROTOS, protos)
    shutil.copytree(compat.CATALOG_DIR, topics)
    return protos, topics


def test_a_removed_field_fails_buf_breaking(tmp_path: Path) -> None:
    protos, topics = _copy_contract(tmp_path)
    listen = protos / "legation/events/v1/listen.proto"
    text = listen.read_text()
    assert "  string author = 6;\n" in text
    listen.write_text(text.replace("  string author = 6;\n", "", 1))
    problems = compat.check(protos, topics, compat.BASELINE)
    assert len(problems) == 1, problems
    assert problems[0].startswith("buf breaking")
    assert "author" in problems[0] and "Mention" in problems[0]


def test_a_removed_field_that_is_reserved_is_no_break(tmp_path: Path) -> None:
    protos, topics = _copy_contract(tmp_path)
    listen = protos / "legation/events/v1/listen.proto"
    listen.write_text(
        listen.read_text().replace(
            "  string author = 6;\n", '  reserved 6;\n  reserved "author";\n', 1
        )
    )
    assert compat.check(protos, topics, compat.BASELINE) == []


def test_a_changed_key_fails_the_catalog_check(tmp_path: Path) -> None:
    protos, topics = _copy_contract(tmp_path)
    path = topics / "legation.listen.alerts.v1.yaml"
    path.write_text(path.read_text().replace("key: issue_id", "key: alert_id", 1))
    problems = compat.check(protos, topics, compat.BASELINE)
    assert problems == [
        "catalog: legation.listen.alerts.v1: key changed from 'issue_id' to 'alert_id'; a "
        "change of key is a new version of the topic (legation.listen.alerts.v2) beside this one"
    ]


def test_rewording_a_key_explanation_is_no_change() -> None:
    assert compat.key_fields("mention_id (derived from issue id)") == "mention_id"
    assert compat.key_fields("user (empty for ...), so ...") == "user"
    assert compat.key_fields("<issue_id> <feed>") == "<issue_id> <feed>"


def test_catalog_breaks_and_the_v2_path() -> None:
    baseline = {
        "legation.listen.alerts.v1": {
            "message_type": "legation.events.v1.Alert",
            "key": "issue_id",
            "partitions": 3,
            "cleanup_policy": "delete",
        }
    }
    changed = {"legation.listen.alerts.v1": {**baseline["legation.listen.alerts.v1"]}}
    changed["legation.listen.alerts.v1"]["partitions"] = 6
    assert compat.catalog_breaks(baseline, changed) == [
        "legation.listen.alerts.v1: partitions changed from 3 to 6; a change of partitions is "
        "a new version of the topic (legation.listen.alerts.v2) beside this one"
    ]
    assert compat.catalog_breaks(baseline, {}) == [
        "legation.listen.alerts.v1: removed without a later version "
        "(add legation.listen.alerts.v1's .v2 first)"
    ]
    v2 = {**baseline["legation.listen.alerts.v1"], "key": "alert_id"}
    # The deprecation path: .v2 produced beside .v1, then .v1 removed.
    assert compat.catalog_breaks(baseline, {**baseline, "legation.listen.alerts.v2": v2}) == []
    assert compat.catalog_breaks(baseline, {"legation.listen.alerts.v2": v2}) == []
    # A new topic is no break.
    assert compat.catalog_breaks({}, baseline) == []


def test_the_baseline_catalog_is_the_released_form() -> None:
    promised = json.loads((compat.BASELINE / "catalog.json").read_text())
    assert set(promised) <= {spec.name for spec in default_catalog()}
    for entry in promised.values():
        assert set(entry) == set(compat.FROZEN)
