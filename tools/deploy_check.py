"""``make deploy-check``: everything in deploy/ checked offline, without a cluster.

1. the Strimzi topics in deploy/components/kafka-topics match the catalog (topics/);
2. every overlay in deploy/overlays renders (``kustomize build``, else ``kubectl kustomize``);
3. every rendered object validates: built-in kinds strictly against the Kubernetes OpenAPI
   schemas of kubernetes-validate (the oldest and newest Kubernetes versions we support),
   custom resources against the JSON schemas vendored in deploy/schemas/;
4. the Dockerfile (services/Dockerfile, every service's image) passes hadolint;
5. the alerting rules pass their ``promtool test rules`` cases (a firing and a non-firing
   case per alert, deploy/components/monitoring/tests/); promtool comes from Debian's
   ``prometheus`` package (``make deploy-check`` installs it when it runs as root, as CI
   does). Without promtool this step is skipped with a loud warning.

The tests in tests/deploy then check what the schemas cannot (security settings, probes,
limits, env names and ports against the settings classes, topics against the catalog).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
# apiVersion/kind -> vendored schema of a custom resource.
CRD_SCHEMAS = {
    ("kafka.strimzi.io/v1beta2", "KafkaTopic"): "kafkatopic_v1beta2.json",
    ("kafka.strimzi.io/v1beta2", "KafkaUser"): "kafkauser_v1beta2.json",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor_v1.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrule_v1.json",
    ("keda.sh/v1alpha1", "ScaledObject"): "scaledobject_v1alpha1.json",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): "triggerauthentication_v1alpha1.json",
}


def overlays() -> list[Path]:
    return sorted(p.parent for p in (DEPLOY / "overlays").glob("*/kustomization.yaml"))


def render_command(directory: Path) -> list[str]:
    """``kustomize build`` when installed, else kubectl's built-in kustomize."""
    if shutil.which("kustomize"):
        return ["kustomize", "build", str(directory)]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize", str(directory)]
    raise SystemExit("deploy-check needs kustomize or kubectl on PATH to render the overlays")


def render(directory: Path) -> list[dict[str, Any]]:
    """The objects ``directory`` renders to."""
    result = subprocess.run(
        render_command(directory), capture_output=True, text=True, check=False, timeout=120
    )
    if result.returncode != 0:
        raise SystemExit(f"rendering {directory.relative_to(ROOT)} failed:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def crd_schema(api_version: str, kind: str) -> dict[str, Any] | None:
    name = CRD_SCHEMAS.get((api_version, kind))
    if name is None:
        return None
    schema: dict[str, Any] = json.loads((DEPLOY / "schemas" / name).read_text(encoding="utf-8"))
    return schema


def validation_errors(objects: list[dict[str, Any]]) -> Iterator[str]:
    for obj in objects:
        where = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        schema = crd_schema(str(obj.get("apiVersion")), str(obj.get("kind")))
        if schema is not None:
            for error in jsonschema.Draft202012Validator(schema).iter_errors(obj):
                path = "/".join(str(p) for p in error.absolute_path)
                yield f"{where}: {path}: {error.message}"
            continue
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                yield f"{where}: no schema for {obj.get('apiVersion')} {obj.get('kind')}"
            except kubernetes_validate.ValidationError as error:
                path = "/".join(str(p) for p in error.path)
                yield f"{where} (Kubernetes {version}): {path}: {error.message}"


def hadolint_errors() -> list[str]:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    # services/Dockerfile builds every image; any service-specific one is checked as well.
    dockerfiles = sorted(
        str(p.relative_to(ROOT))
        for p in [*ROOT.glob("services/Dockerfile"), *ROOT.glob("services/*/Dockerfile")]
    )
    result = subprocess.run(
        [hadolint, "--no-color", *dockerfiles],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    return result.stdout.splitlines() if result.returncode != 0 else []


MONITORING = DEPLOY / "components" / "monitoring"


def promtool_problems() -> list[str] | None:
    """Runs ``promtool test rules`` on the PrometheusRule's groups; None when promtool is
    not installed."""
    promtool = shutil.which("promtool")
    if promtool is None:
        return None
    rule = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text(encoding="utf-8"))
    tests = MONITORING / "tests" / "prometheusrule-tests.yaml"
    with tempfile.TemporaryDirectory() as folder:
        rules_file = Path(folder) / "rules.yaml"
        rules_file.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}), encoding="utf-8")
        copy = Path(folder) / tests.name
        copy.write_text(tests.read_text(encoding="utf-8"), encoding="utf-8")
        check = subprocess.run(
            [promtool, "check", "rules", str(rules_file)], capture_output=True, text=True
        )
        if check.returncode != 0:
            return [f"promtool check rules: {check.stdout}{check.stderr}"]
        result = subprocess.run(
            [promtool, "test", "rules", str(copy)], capture_output=True, text=True, cwd=folder
        )
    if result.returncode != 0:
        return [f"promtool test rules: {result.stdout}{result.stderr}"]
    return []


def main() -> int:
    started = time.monotonic()
    problems: list[str] = []
    topics = subprocess.run([sys.executable, str(ROOT / "tools" / "gen_k8s_topics.py"), "--check"])
    if topics.returncode != 0:
        problems.append("generated Strimzi topics are stale: run make k8s-topics")
    for directory in overlays():
        objects = render(directory)
        errors = list(validation_errors(objects))
        problems += [f"{directory.name}: {e}" for e in errors]
        print(f"overlay {directory.name}: {len(objects)} objects, {len(errors)} problems")
    lint = hadolint_errors()
    problems += lint
    print(f"hadolint: {len(lint)} findings")
    rules = promtool_problems()
    if rules is None:
        print(
            "WARNING: promtool is not installed: the alerting rules' tests were SKIPPED "
            "(apt-get install prometheus, or run make deploy-check as root)",
            file=sys.stderr,
        )
    else:
        problems += rules
        print(f"promtool test rules: {'passed' if not rules else 'failed'}")
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"deploy-check {'failed' if problems else 'passed'} in {time.monotonic() - started:.1f}s")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
