"""The listener's derived-streams handler: each mention becomes its pseudonymised copy on the
derived topic, with the same key and event id."""

from __future__ import annotations

from legation_core.catalog import default_catalog
from legation_core.codec import EventCodec, envelope_from_json
from legation_core.consumer import Incoming
from legation_core.topic_names import LISTEN_MENTIONS_PSEUDONYMISED_V1, LISTEN_MENTIONS_V1
from legation_listener.adapters.derived_streams import derived_streams_handler

KEY = b"listener-test-key-of-32-bytes-at-least"


def test_each_mention_is_produced_again_pseudonymised_with_its_key() -> None:
    catalog = default_catalog()
    source = envelope_from_json(catalog.topic(LISTEN_MENTIONS_V1).example)
    handler = derived_streams_handler(catalog, KEY)
    result = handler([Incoming(LISTEN_MENTIONS_V1, 2, 41, b"mention-key", source)])
    assert result.rejected == []
    [out] = result.outgoing
    assert (out.topic, out.key) == (LISTEN_MENTIONS_PSEUDONYMISED_V1, "mention-key")
    assert out.envelope.event_id == source.event_id
    assert out.envelope.mention.author.startswith("p-")
    assert source.mention.author not in str(out.envelope)
    # What the listener produces is valid on the derived topic (the producer checks it too).
    EventCodec.validate(catalog.topic(LISTEN_MENTIONS_PSEUDONYMISED_V1), out.envelope)
    # The listener may produce to it, by the catalog.
    assert catalog.check_produce("listener", LISTEN_MENTIONS_PSEUDONYMISED_V1)


def test_a_short_pseudonym_key_stops_start_up_naming_the_variable() -> None:
    import pytest

    from legation_core.config import ConfigError, load_settings
    from legation_listener.config import ListenerSettings

    with pytest.MonkeyPatch.context() as env:
        env.setenv("LEGATION_PSEUDONYM_KEY", "too short")
        with pytest.raises(ConfigError, match="LEGATION_PSEUDONYM_KEY"):
            load_settings(ListenerSettings)
        env.setenv("LEGATION_PSEUDONYM_KEY", "k" * 32)
        assert load_settings(ListenerSettings).pseudonym_key == "k" * 32
