"""The derived streams for departments: every mention again, with no more personal data
than the derived topic's catalog entry allows (``legation_core.disclosure``).

Why here: the listener produces the mentions, so the derived topic has the same producer in
the catalog and a department can trust it as much as the source; it runs as its own consume
loop (group ``legation.listener.derived-streams``) so a slow derivation never holds up the
listener's polls, and a restart resumes from its own commits (same event ids, so a replay
is harmless to a subscriber that deduplicates on event_id, as the contract asks).
"""

from __future__ import annotations

from collections.abc import Iterable

from legation_core.catalog import Catalog
from legation_core.consumer import BatchHandler, Incoming, Outgoing, per_event
from legation_core.disclosure import Pseudonymiser, derive
from legation_core.topic_names import LISTEN_MENTIONS_PSEUDONYMISED_V1

PURPOSE = "derived-streams"


def derived_streams_handler(catalog: Catalog, key: bytes) -> BatchHandler:
    """The handler that turns each mention into its pseudonymised copy (same key)."""
    spec = catalog.topic(LISTEN_MENTIONS_PSEUDONYMISED_V1)
    pseudonym = Pseudonymiser(key)

    def handle(incoming: Incoming) -> Iterable[Outgoing]:
        key_text = incoming.key.decode("utf-8", "replace") if incoming.key else ""
        derived = derive(spec, incoming.envelope, pseudonym)
        return [
            Outgoing(
                LISTEN_MENTIONS_PSEUDONYMISED_V1, key_text or derived.mention.mention_id, derived
            )
        ]

    return per_event(handle)
