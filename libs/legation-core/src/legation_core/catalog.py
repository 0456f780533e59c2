"""The topic catalog: the published contract of every Legation stream.

The catalog's source is ``topics/*.yaml`` at the repository root; the build copies it into
the ``legation_contracts`` package so every service runs against the catalog it was built
with. Services may only produce to and consume from topics the catalog grants them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from legation.events.v1 import envelope_pb2

SERVICES = ("listener", "publisher", "engager", "evaluator", "notifier")
DLQ_SUFFIX = ".dlq"
# Who outside the platform may be granted a topic (see deploy/departments.yaml):
#   internal  the platform's own state and working data (the default): no department;
#   personal  carries personal data as collected: only departments of the ministry's
#             digital team;
#   open      no more personal data than a department needs: any department.
DISCLOSURES = ("internal", "personal", "open")
# What a derived topic does with one field of its source's payload (``fields``):
#   full       copied as it is;
#   pseudonym  replaced by a keyed HMAC of its value (the same value, the same pseudonym);
#   drop       cleared;
#   text       free text: the author's name and handle and every @handle in it replaced by
#              their pseudonyms, the rest copied.
# A value may also map a source kind (the payload's ``source``) to one of these, with ``*``
# for every other kind.
FIELD_ACTIONS = ("full", "pseudonym", "drop", "text")


class CatalogError(Exception):
    """The catalog is malformed, or a service used a topic against it."""


@dataclass(frozen=True)
class TopicSpec:
    """One catalogued topic."""

    name: str
    description: str
    message_type: str
    key: str
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    partitions: int
    replication_factor: int
    retention_ms: int
    cleanup_policy: str
    internal: bool
    example: Mapping[str, Any]
    disclosure: str = "internal"
    # A topic the platform derives from another one for departments (``derived_from``), and
    # what it does with each field of the payload (``fields``, see FIELD_ACTIONS).
    derived_from: str = ""
    fields: Mapping[str, Any] = dataclass_field(default_factory=dict)

    @property
    def dlq(self) -> str:
        """The dead-letter topic that receives this topic's undecodable records."""
        return self.name + DLQ_SUFFIX

    @property
    def payload_field(self) -> str:
        """The Envelope oneof field that carries this topic's message type."""
        return payload_field_for(self.message_type)


@cache
def payload_field_for(message_type: str) -> str:
    """Maps a payload's full name to the Envelope field that holds it (asked for every event
    encoded or decoded: the answer is kept)."""
    for field in envelope_pb2.Envelope.DESCRIPTOR.oneofs_by_name["payload"].fields:
        if field.message_type is not None and field.message_type.full_name == message_type:
            return str(field.name)
    raise CatalogError(f"{message_type} is not a payload of legation.events.v1.Envelope")


_REQUIRED = (
    "name",
    "description",
    "message_type",
    "key",
    "producers",
    "consumers",
    "partitions",
    "replication_factor",
    "retention_ms",
    "cleanup_policy",
    "example",
)


def parse_topic(raw: Mapping[str, Any], origin: str) -> TopicSpec:
    """Validates one catalog entry; ``origin`` names it in errors."""
    missing = [key for key in _REQUIRED if key not in raw]
    if missing:
        raise CatalogError(f"{origin}: missing {', '.join(missing)}")
    for role in ("producers", "consumers"):
        unknown = set(raw[role]) - set(SERVICES)
        if unknown:
            raise CatalogError(f"{origin}: unknown {role} {sorted(unknown)}")
    if raw["cleanup_policy"] not in ("delete", "compact"):
        raise CatalogError(f"{origin}: cleanup_policy must be delete or compact")
    if int(raw["partitions"]) < 1:
        raise CatalogError(f"{origin}: partitions must be at least 1")
    disclosure = str(raw.get("disclosure", "internal"))
    if disclosure not in DISCLOSURES:
        raise CatalogError(f"{origin}: disclosure must be one of {', '.join(DISCLOSURES)}")
    fields = raw.get("fields") or {}
    derived_from = str(raw.get("derived_from", ""))
    if fields and not derived_from:
        raise CatalogError(f"{origin}: fields is only for a topic with derived_from")
    _check_fields(fields, origin)
    spec = TopicSpec(
        name=str(raw["name"]),
        description=str(raw["description"]),
        message_type=str(raw["message_type"]),
        key=str(raw["key"]),
        producers=tuple(raw["producers"]),
        consumers=tuple(raw["consumers"]),
        partitions=int(raw["partitions"]),
        replication_factor=int(raw["replication_factor"]),
        retention_ms=int(raw["retention_ms"]),
        cleanup_policy=str(raw["cleanup_policy"]),
        internal=bool(raw.get("internal", False)),
        example=raw["example"],
        disclosure=disclosure,
        derived_from=derived_from,
        fields=dict(fields),
    )
    spec.payload_field  # noqa: B018 - raises CatalogError for an unknown message type
    return spec


def _check_fields(fields: Any, origin: str) -> None:
    if not isinstance(fields, Mapping):
        raise CatalogError(f"{origin}: fields must map payload field names to actions")
    for name, action in fields.items():
        actions = action.values() if isinstance(action, Mapping) else [action]
        bad = [str(a) for a in actions if a not in FIELD_ACTIONS]
        if bad:
            raise CatalogError(
                f"{origin}: fields.{name}: {', '.join(bad)} is not one of "
                + ", ".join(FIELD_ACTIONS)
            )


class Catalog:
    """All catalogued topics, with the questions services ask of them."""

    def __init__(self, topics: Iterable[TopicSpec]) -> None:
        self._topics = {topic.name: topic for topic in topics}
        for topic in self._topics.values():
            source = self._topics.get(topic.derived_from) if topic.derived_from else topic
            if source is None or source.message_type != topic.message_type:
                raise CatalogError(
                    f"{topic.name}: derived_from must name a catalogued topic of the same "
                    f"message type ({topic.message_type})"
                )

    @classmethod
    def from_directory(cls, directory: Path) -> Catalog:
        """Loads every ``*.yaml`` entry of a catalog directory."""
        specs = []
        for path in sorted(directory.glob("*.yaml")):
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
            spec = parse_topic(raw, path.name)
            if path.name != f"{spec.name}.yaml":
                raise CatalogError(f"{path.name}: file name must be {spec.name}.yaml")
            specs.append(spec)
        if not specs:
            raise CatalogError(f"no topics in {directory}")
        return cls(specs)

    def __iter__(self) -> Any:
        return iter(self._topics.values())

    def __len__(self) -> int:
        return len(self._topics)

    def topic(self, name: str) -> TopicSpec:
        """The spec of ``name``; raises :class:`CatalogError` for an uncatalogued topic."""
        try:
            return self._topics[name]
        except KeyError:
            raise CatalogError(f"topic {name} is not in the catalog") from None

    def produced_by(self, service: str) -> list[TopicSpec]:
        return [topic for topic in self._topics.values() if service in topic.producers]

    def consumed_by(self, service: str) -> list[TopicSpec]:
        return [topic for topic in self._topics.values() if service in topic.consumers]

    def check_produce(self, service: str, topic: str) -> TopicSpec:
        """The spec of ``topic`` if ``service`` may produce to it, else CatalogError."""
        spec = self.topic(topic)
        if service not in spec.producers:
            raise CatalogError(
                f"{service} may not produce to {topic} (producers: {spec.producers})"
            )
        return spec

    def check_consume(self, service: str, topic: str) -> TopicSpec:
        """The spec of ``topic`` if ``service`` may consume it, else CatalogError."""
        spec = self.topic(topic)
        if service not in spec.consumers:
            raise CatalogError(f"{service} may not consume {topic} (consumers: {spec.consumers})")
        return spec


@cache
def default_catalog() -> Catalog:
    """The catalog shipped in the ``legation_contracts`` package."""
    directory = Path(str(files("legation_contracts") / "topics"))
    return Catalog.from_directory(directory)
