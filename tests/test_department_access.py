"""Department access: the KafkaUsers generated from deploy/departments.yaml let each
department read exactly its granted topics with its own groups, and nothing else; a grant
that would give personal data outside the digital team is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

import deploy_check
import gen_k8s_departments as access
from legation_core.catalog import default_catalog

ROOT = Path(__file__).resolve().parent.parent


def generated(name: str) -> dict[str, Any]:
    text = (access.OUT_DIR / f"legation-dept-{name}.yaml").read_text()
    user: dict[str, Any] = yaml.safe_load(text)
    return user


def test_the_generated_users_are_current() -> None:
    assert access.main(["--check"]) == 0, "run make k8s-departments"


def test_each_department_reads_exactly_its_granted_topics() -> None:
    raw = yaml.safe_load(access.GRANTS.read_text())
    every_topic = [spec.name for spec in default_catalog()]
    for entry in raw["departments"]:
        user = generated(entry["name"])
        for topic in every_topic:
            granted = topic in entry["topics"]
            assert access.acl_allows(user, "Read", "topic", topic) == granted, (entry, topic)
            # Nobody outside the platform writes, creates, deletes or alters a topic.
            for operation in ("Write", "Create", "Delete", "Alter", "AlterConfigs"):
                assert not access.acl_allows(user, operation, "topic", topic)
            assert not access.acl_allows(user, "Read", "topic", topic + ".dlq")


def test_a_department_uses_only_its_own_consumer_groups() -> None:
    research = generated("research-unit")
    assert access.acl_allows(research, "Read", "group", "legation.dept.research-unit.counts")
    assert access.acl_allows(research, "Describe", "group", "legation.dept.research-unit.x")
    assert not access.acl_allows(research, "Read", "group", "legation.dept.crisis-centre.x")
    assert not access.acl_allows(research, "Read", "group", "legation.listener.derived-streams")
    assert not access.acl_allows(research, "Read", "group", "legation.dept.research-unitx.a")
    assert not access.acl_allows(research, "ClusterAction", "cluster", "kafka-cluster")


def test_quotas_limit_fetch_produce_and_request_time() -> None:
    assert generated("research-unit")["spec"]["quotas"] == {
        "consumerByteRate": 2_097_152,
        "producerByteRate": 1024,
        "requestPercentage": 10,
    }
    assert generated("press-office-geneva")["spec"]["quotas"]["consumerByteRate"] == 524_288


def test_personal_data_goes_only_to_the_digital_team() -> None:
    catalog = default_catalog()

    def grants(entry: dict[str, Any]) -> Any:
        return access.parse_grants({"departments": [entry]}, catalog)

    with pytest.raises(access.GrantError) as refused:
        grants({"name": "research", "topics": ["legation.listen.mentions.v1"]})
    assert str(refused.value) == (
        "departments[0].topics (research): legation.listen.mentions.v1 carries personal data: "
        "only for the digital team (grant legation.listen.mentions-pseudonymised.v1 instead)"
    )
    assert grants({"name": "team", "digital_team": True, "topics": ["legation.listen.mentions.v1"]})
    with pytest.raises(access.GrantError, match="internal to the platform"):
        grants({"name": "x", "digital_team": True, "topics": ["legation.publish.posts.v1"]})
    with pytest.raises(access.GrantError, match="not in the catalog"):
        grants({"name": "x", "topics": ["legation.listen.nothing.v1"]})
    with pytest.raises(access.GrantError, match=r"departments\[0\].name"):
        grants({"name": "Not Valid", "topics": ["legation.listen.alerts.v1"]})
    with pytest.raises(access.GrantError, match=r"unknown settings \['topic'\]"):
        grants({"name": "x", "topic": ["legation.listen.alerts.v1"]})
    with pytest.raises(access.GrantError, match="consumer_byte_rate must be a whole number"):
        grants({"name": "x", "topics": ["legation.listen.alerts.v1"], "consumer_byte_rate": -1})


def test_the_users_validate_against_the_strimzi_schema() -> None:
    import jsonschema

    schema = deploy_check.crd_schema("kafka.strimzi.io/v1beta2", "KafkaUser")
    assert schema is not None
    user = generated("crisis-centre")
    jsonschema.validate(user, schema)
    user["spec"]["authorization"]["acls"][0]["operations"] = ["Reed"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(user, schema)
