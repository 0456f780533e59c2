"""``legation-topics``: create every catalogued topic and its DLQ (idempotent).

Run it before the services start, from a Makefile, a Kubernetes Job or by hand; in
production Strimzi KafkaTopic resources generated from the same catalog do the same job.
"""

from __future__ import annotations

import argparse
import sys

from legation_core.catalog import default_catalog
from legation_core.config import ConfigError, CoreSettings, load_settings
from legation_core.kafka import ensure_topics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--replication-factor",
        type=int,
        default=None,
        help="override the catalog's replication factor (1 for a one-broker cluster)",
    )
    args = parser.parse_args(argv)
    try:
        settings = load_settings(CoreSettings)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    created = ensure_topics(settings, default_catalog(), args.replication_factor)
    print(f"created {len(created)} topics" + (": " + ", ".join(created) if created else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
