"""Wiring only: settings, rules and channels, state rebuild, the mentions consumer, the
periodic jobs (deliveries, SLA), the gRPC API and the questions form."""

from __future__ import annotations

import sys

from legation.engager.v1 import engager_service_pb2_grpc as pb_grpc
from legation_channels.base import Channel
from legation_channels.outbox import Deliverer, RetryPolicy
from legation_channels.registry import channels_from_file
from legation_core.config import ConfigError, ConfigFileError, read_config_file
from legation_core.lifecycle import ServiceRuntime, main_for
from legation_core.topic_names import LISTEN_MENTIONS_V1
from legation_engager.adapters.delivery import EngagerJobs
from legation_engager.adapters.events import MentionHandler
from legation_engager.adapters.form import FORM_PREFIX, QuestionsForm
from legation_engager.adapters.grpc_api import EngagerApi
from legation_engager.adapters.policy import SERVICE_NAME, policy_for
from legation_engager.adapters.store import EngagerState
from legation_engager.config import EngagerSettings
from legation_engager.domain.rules import Rules, RulesError, parse_rules


def load_rules(settings: EngagerSettings, channels: dict[str, Channel]) -> Rules:
    """The rules of LEGATION_ENGAGER_RULES_FILE (defaults without one); raises ConfigError
    naming the variable and the field."""
    path = settings.engager_rules_file
    if path is None:
        return Rules()
    try:
        rules = parse_rules(read_config_file(path, "the rules file"))
    except (ConfigFileError, RulesError) as error:
        raise ConfigError(f"LEGATION_ENGAGER_RULES_FILE: {error}") from None
    unknown = [
        f"reply_channels[{i}].channel: {rule.channel!r} is not in LEGATION_ENGAGER_CHANNELS_FILE"
        for i, rule in enumerate(rules.reply_channels)
        if rule.channel not in channels
    ]
    if unknown:
        raise ConfigError(f"LEGATION_ENGAGER_RULES_FILE: {'; '.join(unknown)}")
    return rules


def wire(runtime: ServiceRuntime, settings: EngagerSettings) -> None:
    channels: dict[str, Channel] = {}
    if settings.engager_channels_file is not None:
        channels = channels_from_file(
            settings.engager_channels_file, "LEGATION_ENGAGER_CHANNELS_FILE"
        )
    rules = load_rules(settings, channels)
    registry = runtime.metrics.registry
    state = EngagerState(runtime.producer, registry, rules.approval_role)
    state.rebuild(settings, runtime.codec, runtime.producer)
    runtime.add_consumer("inbox", [LISTEN_MENTIONS_V1], MentionHandler(state, rules))
    deliverer = Deliverer(RetryPolicy(max_attempts=settings.engager_delivery_max_attempts))
    jobs = EngagerJobs(state, channels, deliverer, registry=registry)
    runtime.add_periodic("engager-jobs", settings.engager_jobs_interval_seconds, jobs.run_once)
    form_port = settings.engager_form_port
    api = EngagerApi(
        state,
        rules,
        {name: channel.limits for name, channel in channels.items()},
        form_path=(lambda qid: f"{FORM_PREFIX}{qid}") if form_port is not None else None,
    )
    runtime.add_grpc(
        lambda server: pb_grpc.add_EngagerServiceServicer_to_server(api, server),
        SERVICE_NAME,
        policy_for(rules.approval_role),
    )
    if form_port is not None:
        # Public on purpose: anyone may ask; nothing is published before moderation.
        form = QuestionsForm(
            api, settings.engager_form_questions_per_minute, settings.trusted_proxies()
        )
        runtime.add_http(
            "questions-form",
            form_port,
            form,
            roles=None,
            port_variable="LEGATION_ENGAGER_FORM_PORT",
        )


def main() -> None:
    sys.exit(main_for("engager", EngagerSettings, wire))


if __name__ == "__main__":
    main()
