"""``legation-evaluator-bootstrap``: prepare OpenSearch for the evaluator (idempotent).

1. the index template of every event index (the same body the evaluator puts at start-up);
2. for every event type whose topic has a finite retention in the catalog: an ISM policy
   that deletes each monthly index ``<prefix>-<type>-<yyyy.mm>`` once it is older than the
   topic's retention plus a month (the evaluator writes each event to the index of the
   month it occurred in, so a replay overwrites rather than duplicates; see
   ``domain/documents.py``), attached to new monthly indices by its ISM template and to
   the ones that already exist;
3. unless ``--skip-dashboards``: the OpenSearch Dashboards saved objects (index pattern and
   campaign dashboard) from ``LEGATION_BOOTSTRAP_SAVED_OBJECTS_PATH``.

Run by the evaluator's init container (steps 1-2, before the first document is indexed)
and by the bootstrap Job in ``deploy/`` (all three). Exit 0 done, 1 failed, 2 bad settings.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import logging
import ssl
import sys
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from opensearchpy import NotFoundError, OpenSearch
from pydantic import Field

from legation_core.catalog import Catalog, default_catalog
from legation_core.config import ConfigError, load_settings
from legation_evaluator.adapters.index import EventIndex, connect
from legation_evaluator.config import EvaluatorSettings

log = logging.getLogger(__name__)
DAY_MS = 24 * 3600 * 1000
# A month's index holds events up to a month younger than the index itself.
MONTH_DAYS = 31


class BootstrapError(Exception):
    """OpenSearch or Dashboards refused a step; the message says which and why."""


class BootstrapSettings(EvaluatorSettings):
    """The evaluator's settings plus where the Dashboards and the saved objects are."""

    opensearch_dashboards_url: str | None = Field(
        None, pattern=r"^https?://", description="OpenSearch Dashboards endpoint"
    )
    bootstrap_saved_objects_path: Path | None = Field(
        None, description="ndjson file of Dashboards saved objects to import"
    )


def retention_days(catalog: Catalog) -> dict[str, int]:
    """Event type (index suffix) -> retention in days, for the evaluator's topics that
    delete old records; compacted and keep-forever topics keep their index forever."""
    days: dict[str, int] = {}
    for spec in catalog.consumed_by("evaluator"):
        if spec.cleanup_policy == "delete" and spec.retention_ms > 0:
            days[spec.payload_field] = max(1, spec.retention_ms // DAY_MS)
    return dict(sorted(days.items()))


def ism_policy(prefix: str, kind: str, days: int) -> dict[str, Any]:
    """Delete a monthly index of ``kind`` once its newest event is ``days`` old."""
    return {
        "policy": {
            "description": f"Legation {kind} events: delete a month's index after {days} days",
            "default_state": "hot",
            "states": [
                {
                    "name": "hot",
                    "actions": [],
                    "transitions": [
                        {
                            "state_name": "delete",
                            "conditions": {"min_index_age": f"{days + MONTH_DAYS}d"},
                        }
                    ],
                },
                {"name": "delete", "actions": [{"delete": {}}], "transitions": []},
            ],
            "ism_template": [{"index_patterns": [f"{prefix}-{kind}-*"], "priority": 100}],
        }
    }


def put_policy(client: OpenSearch, policy_id: str, body: dict[str, Any]) -> None:
    """Creates the ISM policy, or updates it in place (ISM needs the sequence number)."""
    path = f"/_plugins/_ism/policies/{policy_id}"
    try:
        current = client.transport.perform_request("GET", path)
    except NotFoundError:
        client.transport.perform_request("PUT", path, body=body)
        return
    params = {"if_seq_no": current["_seq_no"], "if_primary_term": current["_primary_term"]}
    client.transport.perform_request("PUT", path, params=params, body=body)


def refuse_legacy_index(client: OpenSearch, name: str) -> None:
    """A ``<prefix>-<type>`` index or alias of a monthly type (the layout before monthly
    indices) would be counted beside the monthly indices: stop and say what to do."""
    if client.indices.exists(index=name):
        raise BootstrapError(
            f"{name} exists beside the monthly indices {name}-<yyyy.mm> and would be counted "
            f"twice: rebuild the monthly indices with `legation-evaluator reindex`, then "
            f"delete {name} (see deploy/README.md)"
        )


def attach_policy(client: OpenSearch, policy_id: str, pattern: str) -> None:
    """Puts the existing indices of ``pattern`` under the policy (the ISM template covers
    only indices created later); indices already managed are left as they are."""
    with contextlib.suppress(NotFoundError):  # no index of the pattern yet
        client.transport.perform_request(
            "POST", f"/_plugins/_ism/add/{pattern}", body={"policy_id": policy_id}
        )


def prepare_indices(client: OpenSearch, prefix: str, catalog: Catalog) -> list[str]:
    """Steps 1 and 2; returns the ISM policies put."""
    EventIndex(client, prefix).ensure_template()
    policies = []
    for kind, days in retention_days(catalog).items():
        policy_id = f"{prefix}-{kind}"
        refuse_legacy_index(client, policy_id)
        put_policy(client, policy_id, ism_policy(prefix, kind, days))
        attach_policy(client, policy_id, f"{prefix}-{kind}-*")
        policies.append(policy_id)
    return policies


def multipart(ndjson: bytes, boundary: str) -> bytes:
    """A multipart/form-data body with ``ndjson`` as the ``file`` field."""
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="legation.ndjson"\r\n'
        "Content-Type: application/ndjson\r\n\r\n"
    )
    return head.encode() + ndjson + f"\r\n--{boundary}--\r\n".encode()


def import_saved_objects(settings: BootstrapSettings, ndjson: bytes) -> int:
    """Imports (overwriting) the saved objects; returns how many Dashboards accepted."""
    if not settings.opensearch_dashboards_url:
        raise BootstrapError("LEGATION_OPENSEARCH_DASHBOARDS_URL is not set")
    boundary = uuid.uuid4().hex
    url = settings.opensearch_dashboards_url.rstrip("/") + "/api/saved_objects/_import"
    request = urllib.request.Request(
        url + "?overwrite=true",
        data=multipart(ndjson, boundary),
        method="POST",
        headers={
            "osd-xsrf": "true",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
    )
    if settings.opensearch_username:
        token = f"{settings.opensearch_username}:{settings.opensearch_password or ''}"
        request.add_header("Authorization", "Basic " + base64.b64encode(token.encode()).decode())
    context = None
    if url.startswith("https"):
        context = ssl.create_default_context(cafile=settings.opensearch_ca_certs)
    timeout = settings.opensearch_timeout_seconds
    with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
        result: dict[str, Any] = json.load(response)
    if not result.get("success"):
        raise BootstrapError(f"Dashboards refused the saved objects: {result.get('errors')}")
    return int(result.get("successCount", 0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--skip-dashboards", action="store_true", help="only the index templates and ISM"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        settings = load_settings(BootstrapSettings)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    try:
        prefix = settings.evaluator_index_prefix
        policies = prepare_indices(connect(settings), prefix, default_catalog())
        log.info("index template and ISM policies in place: %s", policies)
        if not args.skip_dashboards:
            path = settings.bootstrap_saved_objects_path
            if path is None:
                raise BootstrapError("LEGATION_BOOTSTRAP_SAVED_OBJECTS_PATH is not set")
            count = import_saved_objects(settings, path.read_bytes())
            log.info("imported %d Dashboards saved objects from %s", count, path)
    except Exception as error:  # a Job log line an operator can act on, then exit 1
        log.error("bootstrap failed: %s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
