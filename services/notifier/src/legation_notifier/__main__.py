"""Wiring only: settings, the people file, state rebuild, the decision consumer, the
dispatcher (closings, digests, deliveries), the gRPC API."""

from __future__ import annotations

import json
import os
import sys
from datetime import timedelta

import yaml

from legation.notifier.v1 import notifier_service_pb2_grpc as pb_grpc
from legation_channels.outbox import Deliverer, RetryPolicy
from legation_core.config import ConfigError
from legation_core.lifecycle import ServiceRuntime, main_for
from legation_notifier.adapters.channels import PersonChannels, Smtp
from legation_notifier.adapters.dispatch import Dispatcher
from legation_notifier.adapters.events import TOPICS, DecisionHandler
from legation_notifier.adapters.grpc_api import NotifierApi
from legation_notifier.adapters.policy import POLICY, SERVICE_NAME
from legation_notifier.adapters.state import SERVICE, NotifierState
from legation_notifier.config import NotifierSettings
from legation_notifier.domain.people import Directory, PeopleError, parse_people

MAX_PEOPLE_FILE_BYTES = 4 * 1024 * 1024


def load_people(settings: NotifierSettings) -> Directory:
    """The directory of LEGATION_NOTIFIER_PEOPLE_FILE; raises ConfigError naming the
    variable and every bad field."""
    path = settings.notifier_people_file
    if path is None:
        raise ConfigError("LEGATION_NOTIFIER_PEOPLE_FILE is required: the people to notify")
    try:
        if path.stat().st_size > MAX_PEOPLE_FILE_BYTES:
            raise ConfigError(
                f"LEGATION_NOTIFIER_PEOPLE_FILE: larger than {MAX_PEOPLE_FILE_BYTES} bytes"
            )
        text = path.read_text(encoding="utf-8")
        raw = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        return parse_people(raw, os.environ)
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as error:
        raise ConfigError(f"LEGATION_NOTIFIER_PEOPLE_FILE: {error}") from None
    except PeopleError as error:
        raise ConfigError(f"LEGATION_NOTIFIER_PEOPLE_FILE: {error}") from None


def wire(runtime: ServiceRuntime, settings: NotifierSettings) -> None:
    directory = load_people(settings)
    registry = runtime.metrics.registry
    state = NotifierState(runtime.producer)
    state.rebuild(settings, runtime.codec, runtime.producer)
    max_age = timedelta(hours=settings.notifier_max_event_age_hours)
    runtime.add_consumer(
        "decide",
        TOPICS,
        DecisionHandler(state, directory, max_event_age=max_age, registry=registry),
    )
    smtp = Smtp(
        host=settings.notifier_smtp_host,
        port=settings.notifier_smtp_port,
        sender=settings.notifier_sender,
        starttls=settings.notifier_smtp_starttls,
        use_ssl=settings.notifier_smtp_ssl,
        username=settings.notifier_smtp_username,
        password=settings.notifier_smtp_password,
        ca_file=settings.notifier_smtp_ca_file,
    )
    dispatcher = Dispatcher(
        state,
        directory,
        PersonChannels(directory, smtp),
        Deliverer(RetryPolicy(max_attempts=settings.notifier_delivery_max_attempts)),
        registry=registry,
        max_event_age=max_age,
    )
    runtime.add_periodic(
        "notifier-dispatch", settings.notifier_interval_seconds, dispatcher.run_once
    )
    api = NotifierApi(state, directory=directory)
    runtime.add_grpc(
        lambda server: pb_grpc.add_NotifierServiceServicer_to_server(api, server),
        SERVICE_NAME,
        POLICY,
    )


def main() -> int:
    return main_for(SERVICE, NotifierSettings, wire)


if __name__ == "__main__":
    sys.exit(main())
