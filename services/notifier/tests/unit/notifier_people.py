"""A people file shared by the notifier's tests: a small embassy team."""

from __future__ import annotations

from typing import Any

from legation_notifier.domain.people import Directory, parse_people

ENV = {
    "ANA_SLACK": "http://127.0.0.1:1/slack/ana",
    "OMAR_TEAMS": "http://127.0.0.1:1/teams/omar",
    "LEA_MATRIX": "matrix-token",
    "OPS_SECRET": "ops-secret",
}


def people_file(**overrides: Any) -> dict[str, Any]:
    """The team: ana (analyst, Paris, Slack), omar (officer, Nairobi, Teams), lea (approver,
    Berlin, Matrix, owns the campaign), sam (publisher and editor, e-mail), vic (viewer),
    ops (admin, signed webhook); ``overrides`` replace whole people by name."""
    people: list[dict[str, Any]] = [
        {
            "name": "ana",
            "roles": ["analyst"],
            "time_zone": "Europe/Paris",
            "channels": {"slack": {"url_env": "ANA_SLACK"}, "email": {"address": "ana@m.example"}},
            "owns": {"issues": ["plastics-treaty"]},
        },
        {
            "name": "omar",
            "roles": ["officer"],
            "time_zone": "Africa/Nairobi",
            "channels": {"teams": {"url_env": "OMAR_TEAMS"}},
        },
        {
            "name": "lea",
            "roles": ["approver"],
            "time_zone": "Europe/Berlin",
            "channels": {
                "matrix": {
                    "homeserver": "http://127.0.0.1:1",
                    "room_id": "!desk:m.example",
                    "token_env": "LEA_MATRIX",
                }
            },
            "owns": {"campaigns": ["plastics-2026"]},
        },
        {
            "name": "sam",
            "roles": ["editor", "publisher"],
            "time_zone": "America/New_York",
            "channels": {"email": {"address": "sam@m.example"}},
        },
        {
            "name": "vic",
            "roles": ["viewer"],
            "time_zone": "UTC",
            "channels": {"email": {"address": "vic@m.example"}},
        },
        {
            "name": "ops",
            "roles": ["admin"],
            "time_zone": "UTC",
            "channels": {
                "webhook": {"url": "http://127.0.0.1:1/hooks/ops", "secret_env": "OPS_SECRET"}
            },
        },
    ]
    by_name = {person["name"]: person for person in people}
    by_name.update(overrides)
    return {"console_url": "https://console.m.example", "people": list(by_name.values())}


def directory(**overrides: Any) -> Directory:
    return parse_people(people_file(**overrides), ENV)
