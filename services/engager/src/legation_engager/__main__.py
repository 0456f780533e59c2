"""Wiring only: settings, state rebuild, the mentions consumer and the gRPC API."""

from __future__ import annotations

import sys
import threading

from legation.engager.v1 import engager_service_pb2_grpc as pb_grpc
from legation_core.consumer import per_event
from legation_core.lifecycle import ServiceRuntime, main_for
from legation_engager.adapters.events import MENTIONS, MentionHandler, rebuild_inbox
from legation_engager.adapters.grpc_api import EngagerApi
from legation_engager.adapters.policy import POLICY
from legation_engager.config import EngagerSettings


def wire(runtime: ServiceRuntime, settings: EngagerSettings) -> None:
    inbox = rebuild_inbox(settings, runtime.codec)
    lock = threading.Lock()
    handler = MentionHandler(inbox, lock)
    runtime.add_consumer("inbox", [MENTIONS], per_event(handler), handler.apply_produced)
    api = EngagerApi(inbox, lock, runtime.producer)
    runtime.add_grpc(
        lambda server: pb_grpc.add_EngagerServiceServicer_to_server(api, server),
        POLICY.service,
        POLICY,
    )


def main() -> None:
    sys.exit(main_for("engager", EngagerSettings, wire))


if __name__ == "__main__":
    main()
