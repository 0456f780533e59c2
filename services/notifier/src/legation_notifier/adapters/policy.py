"""Who may call the notifier's gRPC API (enforced by legation_core's interceptor; an RPC
missing here stops the service from starting)."""

from __future__ import annotations

from legation.notifier.v1 import notifier_service_pb2
from legation_core.auth import ADMIN, PUBLISHER, ROLES, Policy, command, reads

# From the generated descriptor, which importing it registers for check_policy.
SERVICE_NAME = notifier_service_pb2.DESCRIPTOR.services_by_name["NotifierService"].full_name

# Reads for viewers; retrying, cancelling and confirming a message for operators (admin)
# and publishers, who do the same for posts' deliveries.
POLICY = Policy(
    SERVICE_NAME,
    {
        "ListMessages": reads(PUBLISHER),
        "RetryMessage": command(ADMIN, PUBLISHER),
        "CancelMessage": command(ADMIN, PUBLISHER),
        "ConfirmMessage": command(ADMIN, PUBLISHER),
        # Everyone reads and marks their own inbox (the servicer takes the person from the
        # caller, never from the request).
        "ListMyNotifications": reads(*ROLES),
        "MarkNotificationsRead": command(*ROLES),
        "GetMyPreferences": reads(*ROLES),
    },
)
