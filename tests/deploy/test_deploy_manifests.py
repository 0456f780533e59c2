"""The rendered manifests against what the services read and the security bar.

Schemas (make deploy-check) say the objects are well formed; these tests say they are
right: hardened containers, probes on the gRPC health port, limits, env names that are
settings fields, ports that are the settings' defaults, and topics that are the catalog.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import deploy_check
from legation_console.config import ConsoleSettings
from legation_core.catalog import Catalog
from legation_core.config import ENV_PREFIX, CoreSettings
from legation_core.kafka import dlq_config, topic_config
from legation_core.metrics import Metrics
from legation_engager.config import EngagerSettings
from legation_evaluator.bootstrap import BootstrapSettings
from legation_evaluator.config import EvaluatorSettings
from legation_listener.config import ListenerSettings
from legation_notifier.config import NotifierSettings
from legation_publisher.config import PublisherSettings

ROOT = Path(__file__).resolve().parents[2]
Objects = dict[str, list[dict[str, Any]]]
SETTINGS: dict[str, type[CoreSettings]] = {
    "legation-listener": ListenerSettings,
    "legation-publisher": PublisherSettings,
    "legation-engager": EngagerSettings,
    "legation-evaluator": EvaluatorSettings,
    "legation-notifier": NotifierSettings,
}
CONSOLE = "legation-console"


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def workloads(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] in ("Deployment", "Job")]


def grpc_services(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The Deployments of the four services (the console is a web application)."""
    return [d for d in of_kind(objects, "Deployment") if d["metadata"]["name"] != CONSOLE]


def containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return list(pod.get("initContainers", [])) + list(pod["containers"])


def env_names(objects: list[dict[str, Any]], container: dict[str, Any]) -> set[str]:
    configmaps = {o["metadata"]["name"]: o for o in of_kind(objects, "ConfigMap")}
    names = {e["name"] for e in container.get("env", [])}
    for source in container.get("envFrom", []):
        assert "configMapRef" in source, "secrets go in env with secretKeyRef, by name"
        names |= set(configmaps[source["configMapRef"]["name"]]["data"])
    return names


def env_value(objects: list[dict[str, Any]], container: dict[str, Any], name: str) -> str | None:
    configmaps = {o["metadata"]["name"]: o for o in of_kind(objects, "ConfigMap")}
    value = None
    for source in container.get("envFrom", []):
        value = configmaps[source["configMapRef"]["name"]]["data"].get(name, value)
    for entry in container.get("env", []):
        if entry["name"] == name:
            value = entry.get("value")
    return value


def fields(settings: type[CoreSettings] | type[ConsoleSettings]) -> set[str]:
    return {ENV_PREFIX + name.upper() for name in settings.model_fields}


def test_every_overlay_renders_the_four_services(rendered: Objects) -> None:
    assert {"dev", "prod"} <= set(rendered)
    for objects in rendered.values():
        names = {o["metadata"]["name"] for o in of_kind(objects, "Deployment")}
        assert names == {*SETTINGS, CONSOLE}
        for kind in ("Service", "ServiceAccount", "PodDisruptionBudget"):
            assert {*SETTINGS, CONSOLE} <= {o["metadata"]["name"] for o in of_kind(objects, kind)}
        assert of_kind(objects, "Job"), "the OpenSearch bootstrap Job"


def test_every_container_is_hardened_and_limited(rendered: Objects) -> None:
    for overlay, objects in rendered.items():
        for workload in workloads(objects):
            pod = workload["spec"]["template"]["spec"]
            assert pod["securityContext"]["runAsNonRoot"] is True
            assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
            assert pod["automountServiceAccountToken"] is False
            for container in containers(pod):
                where = f"{overlay} {workload['metadata']['name']} {container['name']}"
                context = container["securityContext"]
                assert context["runAsNonRoot"] is True, where
                assert context["runAsUser"] == 10001, where
                assert context["readOnlyRootFilesystem"] is True, where
                assert context["allowPrivilegeEscalation"] is False, where
                assert context["capabilities"]["drop"] == ["ALL"], where
                assert context["seccompProfile"]["type"] == "RuntimeDefault", where
                for bound in ("requests", "limits"):
                    assert {"cpu", "memory"} <= set(container["resources"][bound]), where
                mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
                assert "/tmp" in mounts, where


def test_grpc_health_probes_and_graceful_termination(rendered: Objects) -> None:
    for objects in rendered.values():
        for deployment in grpc_services(objects):
            pod = deployment["spec"]["template"]["spec"]
            (server,) = pod["containers"]
            grpc = next(p["containerPort"] for p in server["ports"] if p["name"] == "grpc")
            # Probes use the health-only server (its own threads: a busy API never delays
            # them; plaintext: they cannot speak TLS), never the API port.
            health = env_value(objects, server, "LEGATION_GRPC_HEALTH_PORT")
            assert health is not None and int(health) != grpc
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert server[probe]["grpc"]["port"] == int(health), probe
                assert "service" not in server[probe]["grpc"]  # "" = the whole server
            grace = float(env_value(objects, server, "LEGATION_SHUTDOWN_GRACE_SECONDS") or 10)
            assert pod["terminationGracePeriodSeconds"] >= 3 * grace
            instance = next(
                e for e in server["env"] if e["name"] == ENV_PREFIX + "CONSUMER_INSTANCE_ID"
            )
            assert instance["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def test_env_names_are_settings_fields(rendered: Objects) -> None:
    for overlay, objects in rendered.items():
        for deployment in of_kind(objects, "Deployment"):
            name = deployment["metadata"]["name"]
            settings = ConsoleSettings if name == CONSOLE else SETTINGS[name]
            pod = deployment["spec"]["template"]["spec"]
            for container in pod["containers"]:
                unknown = env_names(objects, container) - fields(settings)
                assert not unknown, f"{overlay} {deployment['metadata']['name']}: {unknown}"
            for container in pod.get("initContainers", []):
                assert not env_names(objects, container) - fields(BootstrapSettings)
        for job in of_kind(objects, "Job"):
            for container in job["spec"]["template"]["spec"]["containers"]:
                assert not env_names(objects, container) - fields(BootstrapSettings)


def test_the_auth_users_file_and_tls_files_are_mounted_from_secrets(rendered: Objects) -> None:
    variables = (
        "LEGATION_AUTH_USERS_FILE",
        "LEGATION_GRPC_TLS_CERT",
        "LEGATION_GRPC_TLS_KEY",
        "LEGATION_GRPC_TLS_CLIENT_CA",
        "LEGATION_HTTP_TLS_CERT",
        "LEGATION_HTTP_TLS_KEY",
    )
    for overlay, objects in rendered.items():
        for deployment in grpc_services(objects):
            pod = deployment["spec"]["template"]["spec"]
            (server,) = pod["containers"]
            secrets = {v["name"]: v["secret"] for v in pod.get("volumes", []) if "secret" in v}
            mounts = {m["mountPath"]: m["name"] for m in server.get("volumeMounts", [])}
            assert env_value(objects, server, "LEGATION_AUTH_DISABLED") in (None, "false")
            for variable in variables:
                path = env_value(objects, server, variable)
                if path is None:
                    assert variable != "LEGATION_AUTH_USERS_FILE", overlay  # auth is required
                    continue
                directory, file_name = path.rsplit("/", 1)
                volume = mounts[directory]
                items = {item["path"] for item in secrets[volume]["items"]}
                assert file_name in items, (overlay, variable)


def test_ports_are_the_settings_defaults(rendered: Objects) -> None:
    for objects in rendered.values():
        services = {o["metadata"]["name"]: o for o in of_kind(objects, "Service")}
        for deployment in grpc_services(objects):
            name = deployment["metadata"]["name"]
            settings = SETTINGS[name]
            (server,) = deployment["spec"]["template"]["spec"]["containers"]
            ports = {p["name"]: p["containerPort"] for p in server["ports"]}
            expected = {
                "grpc": settings.model_fields["grpc_port"].default,
                "metrics": settings.model_fields["metrics_port"].default,
            }
            if "web_port" in settings.model_fields:  # the evaluator's live scorecard page
                expected["web"] = settings.model_fields["web_port"].default
                assert env_value(objects, server, "LEGATION_WEB_PORT") == str(expected["web"])
            if "publisher_redirect_port" in settings.model_fields:  # the short links
                expected["links"] = settings.model_fields["publisher_redirect_port"].default
                port = env_value(objects, server, "LEGATION_PUBLISHER_REDIRECT_PORT")
                assert port == str(expected["links"])
                # Short links go out in every post: never the developer default (127.0.0.1).
                base = env_value(objects, server, "LEGATION_PUBLISHER_REDIRECT_BASE_URL") or ""
                assert base.startswith("https://"), base
            if "listener_webhook_port" in settings.model_fields:  # the listener's webhook
                expected["webhook"] = settings.model_fields["listener_webhook_port"].default
                webhook = env_value(objects, server, "LEGATION_LISTENER_WEBHOOK_PORT")
                assert webhook == str(expected["webhook"])
            assert ports == expected, name
            assert env_value(objects, server, "LEGATION_GRPC_PORT") == str(expected["grpc"])
            assert env_value(objects, server, "LEGATION_METRICS_PORT") == str(expected["metrics"])
            service_ports = {p["name"]: p["port"] for p in services[name]["spec"]["ports"]}
            assert service_ports == expected, name


PRODUCTION = ("prod", "prod-keda")


def test_every_http_port_serves_tls_in_production(rendered: Objects) -> None:
    for overlay in PRODUCTION:
        objects = rendered[overlay]
        services = {o["metadata"]["name"]: o for o in of_kind(objects, "Service")}
        monitors = {o["metadata"]["name"]: o for o in of_kind(objects, "ServiceMonitor")}
        for deployment in of_kind(objects, "Deployment"):
            name = deployment["metadata"]["name"]
            (server,) = deployment["spec"]["template"]["spec"]["containers"]
            # Every port but gRPC (TLS of its own) is one of the runtime's HTTP servers,
            # which serve TLS only once these are set (mounted from a Secret: see above).
            assert env_value(objects, server, "LEGATION_HTTP_TLS_CERT"), (overlay, name)
            assert env_value(objects, server, "LEGATION_HTTP_TLS_KEY"), (overlay, name)
            http_ports = {p["name"] for p in server["ports"]} - {"grpc"}
            assert "metrics" in http_ports
            for port in services[name]["spec"]["ports"]:
                if port["name"] in http_ports:
                    assert port["appProtocol"] == "https", (overlay, name, port["name"])
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                if "httpGet" in server[probe]:
                    assert server[probe]["httpGet"]["scheme"] == "HTTPS", (overlay, name)
            [endpoint] = monitors[name]["spec"]["endpoints"]
            assert endpoint["scheme"] == "https", (overlay, name)
            namespace = deployment["metadata"]["namespace"]
            assert endpoint["tlsConfig"]["serverName"] == f"{name}.{namespace}.svc"
            assert endpoint["tlsConfig"]["ca"]["secret"]["name"] == "legation-http-tls"
            assert "insecureSkipVerify" not in endpoint["tlsConfig"]


def test_only_the_monitoring_namespace_may_scrape_metrics(rendered: Objects) -> None:
    monitoring = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}
    }
    for overlay, objects in rendered.items():
        policies = of_kind(objects, "NetworkPolicy")
        assert policies, overlay
        metrics: set[str | int] = {"metrics"}
        for deployment in of_kind(objects, "Deployment"):
            for container in deployment["spec"]["template"]["spec"]["containers"]:
                metrics |= {
                    p["containerPort"] for p in container["ports"] if p["name"] == "metrics"
                }
        scrapes = []
        for policy in policies:
            for rule in policy["spec"].get("ingress", []):
                ports = {p["port"] for p in rule.get("ports", [])}
                if ports and not ports & metrics:
                    continue
                # A rule naming the metrics port, or every port: only from monitoring.
                where = (overlay, policy["metadata"]["name"])
                assert rule.get("from") == [monitoring], where
                scrapes.append(policy["metadata"]["name"])
        assert scrapes == ["legation-allow-metrics-scrape"], overlay


def test_publisher_feed_is_on_its_volume(rendered: Objects) -> None:
    for objects in rendered.values():
        (publisher,) = [
            d
            for d in of_kind(objects, "Deployment")
            if d["metadata"]["name"] == "legation-publisher"
        ]
        (server,) = publisher["spec"]["template"]["spec"]["containers"]
        feed = env_value(objects, server, "LEGATION_PUBLISHER_SITE_FEED_PATH")
        mount = next(m for m in server["volumeMounts"] if m["name"] == "site")["mountPath"]
        assert feed is not None
        assert feed.startswith(mount + "/")
        assert publisher["spec"]["strategy"]["type"] == "Recreate"


def test_topics_are_the_catalog(rendered: Objects) -> None:
    catalog = Catalog.from_directory(ROOT / "topics")
    for overlay, objects in rendered.items():
        topics = {t["spec"]["topicName"]: t for t in of_kind(objects, "KafkaTopic")}
        assert set(topics) == {s.name for s in catalog} | {s.dlq for s in catalog}, overlay
        for spec in catalog:
            for name, config in ((spec.name, topic_config(spec)), (spec.dlq, dlq_config())):
                topic = topics[name]["spec"]
                assert topic["partitions"] == spec.partitions
                assert {k: str(v) for k, v in topic["config"].items()} == config
                if overlay != "dev":  # dev runs a one-broker cluster
                    assert topic["replicas"] == spec.replication_factor


# What is generated from topics/: the Strimzi KafkaTopics and legation_core/topic_names.py.
@pytest.mark.parametrize("tool", ["gen_k8s_topics.py", "gen_topic_names.py"])
def test_generated_topics_are_up_to_date(tool: str) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / tool), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


SERVICE_METRIC = re.compile(r'\b(Counter|Gauge|Histogram)\(\s*"(legation_[a-z_]+)"')


def metric_names() -> set[str]:
    """The shared runtime's metrics, and those the services define in their code."""
    names = set()
    for collector in Metrics().registry.collect():
        names.add(collector.name)
        if collector.type == "counter":
            names.add(collector.name + "_total")
        if collector.type == "histogram":
            names |= {collector.name + suffix for suffix in ("_bucket", "_count", "_sum")}
    for path in (ROOT / "services").glob("*/src/**/*.py"):
        for kind, name in SERVICE_METRIC.findall(path.read_text(encoding="utf-8")):
            base = name.removesuffix("_total")
            names.add(base + "_total" if kind == "Counter" else name)
            if kind == "Histogram":
                names |= {name + suffix for suffix in ("_bucket", "_count", "_sum")}
    return names


def test_alerts_and_dashboard_use_real_metrics(rendered: Objects) -> None:
    known = metric_names()
    (rule,) = of_kind(rendered["prod"], "PrometheusRule")
    exprs = [r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]]
    dashboard = json.loads(
        (ROOT / "deploy/components/monitoring/grafana/legation-pipeline.json").read_text()
    )
    exprs += [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"\blegation_[a-z_]+", e)}
    # A name matched by a regular expression ({__name__=~"legation_(a|b)_total"}).
    for pattern in re.findall(r'__name__=~"([^"]+)"', "\n".join(exprs)):
        matching = {name for name in known if re.fullmatch(pattern, name)}
        assert matching, pattern
        used |= matching
    used = {m for m in used if not m.endswith("_")}
    assert used
    assert used <= known, used - known
    alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert {"LegationServiceDown", "LegationConsumerLagGrowing", "LegationDeadLetters"} <= alerts
    monitors = {
        m["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
        for m in of_kind(rendered["prod"], "ServiceMonitor")
    }
    assert monitors == {*SETTINGS, CONSOLE}


def test_every_alert_has_a_firing_and_a_quiet_promtool_case(rendered: Objects) -> None:
    (rule,) = of_kind(rendered["prod"], "PrometheusRule")
    alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    cases = yaml.safe_load(
        (ROOT / "deploy/components/monitoring/tests/prometheusrule-tests.yaml").read_text()
    )
    firing: set[str] = set()
    quiet: set[str] = set()
    for test in cases["tests"]:
        for case in test["alert_rule_test"]:
            (firing if case["exp_alerts"] else quiet).add(case["alertname"])
    assert alerts == firing, alerts ^ firing
    assert alerts == quiet, alerts ^ quiet


def test_saved_objects_reference_each_other() -> None:
    path = ROOT / "deploy/base/opensearch/legation-dashboards.ndjson"
    objects = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    ids = {(o["type"], o["id"]) for o in objects}
    for obj in objects:
        for ref in obj["references"]:
            assert (ref["type"], ref["id"]) in ids, ref
    (pattern,) = [o for o in objects if o["type"] == "index-pattern"]
    prefix = EvaluatorSettings.model_fields["evaluator_index_prefix"].default
    assert pattern["attributes"]["title"] == f"{prefix}-*"
    assert any(o["type"] == "dashboard" for o in objects)


@pytest.mark.parametrize(
    ("obj", "complaint"),
    [
        (
            {
                "apiVersion": "kafka.strimzi.io/v1beta2",
                "kind": "KafkaTopic",
                "metadata": {"name": "t", "labels": {"strimzi.io/cluster": "c"}},
                "spec": {"partitions": 0, "replicas": 3},
            },
            "minimum",
        ),
        (
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": "a"},
                "automountToken": False,
            },
            "automountToken",
        ),
    ],
)
def test_the_validators_reject_bad_objects(obj: dict[str, Any], complaint: str) -> None:
    errors = list(deploy_check.validation_errors([obj]))
    assert errors
    assert complaint in " ".join(errors)


def test_the_console_is_an_https_web_application_with_its_secrets(rendered: Objects) -> None:
    """The console: HTTP probes, ports that are its settings' defaults, secrets by reference
    only, the group mapping mounted where the setting points, an Ingress to its Service, and
    the mutual TLS client certificate (or a token) to reach the services."""
    for overlay, objects in rendered.items():
        (console,) = [d for d in of_kind(objects, "Deployment") if d["metadata"]["name"] == CONSOLE]
        pod = console["spec"]["template"]["spec"]
        (server,) = pod["containers"]
        ports = {p["name"]: p["containerPort"] for p in server["ports"]}
        assert ports == {
            "http": ConsoleSettings.model_fields["console_port"].default,
            "metrics": ConsoleSettings.model_fields["metrics_port"].default,
        }
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert server[probe]["httpGet"]["port"] == "http", probe
        assert server["readinessProbe"]["httpGet"]["path"] == "/readyz"
        secrets = {
            e["name"]: e["valueFrom"]["secretKeyRef"] for e in server["env"] if "valueFrom" in e
        }
        for name in ("SESSION_SECRET", "OIDC_CLIENT_SECRET", "SERVICE_TOKEN"):
            assert secrets[f"LEGATION_CONSOLE_{name}"]["name"] == CONSOLE, overlay
        public_url = env_value(objects, server, "LEGATION_CONSOLE_PUBLIC_URL") or ""
        assert public_url.startswith("https://")
        mapping = env_value(objects, server, "LEGATION_CONSOLE_GROUP_MAPPING_FILE") or ""
        mounts = {m["mountPath"]: m["name"] for m in server["volumeMounts"]}
        assert mounts[mapping.rsplit("/", 1)[0]] == "groups"
        assert pod["automountServiceAccountToken"] is False
        assert (
            console["spec"]["template"]["metadata"]["labels"]["legation.dev/api-client"] == "true"
        )
        (ingress,) = of_kind(objects, "Ingress")
        backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
        assert backend == {"name": CONSOLE, "port": {"name": "http"}}
        assert ingress["spec"]["tls"], "people reach the console over HTTPS only"
        if env_value(objects, server, "LEGATION_CONSOLE_GRPC_TLS_CERT"):
            volumes = {v["name"]: v for v in pod["volumes"]}
            assert volumes["grpc-client"]["secret"]["secretName"] == "legation-console-grpc-client"
            assert "grpc-users" not in volumes  # the users file is the services' business
