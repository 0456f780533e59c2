"""The evaluator's access policy: a rule for every RPC (or the service refuses to start), reads
open to viewers, commands only to their role."""

from __future__ import annotations

from legation_core.auth import Caller, check_policy
from legation_evaluator.adapters.policy import POLICY


def test_every_rpc_of_the_service_has_a_rule() -> None:
    check_policy(POLICY)


def test_viewers_read_and_only_the_analyst_commands() -> None:
    viewer = Caller("viv", frozenset({"viewer"}))
    worker = Caller("w", frozenset({"analyst"}))
    command = POLICY.rules["CreateCampaign"]
    read = POLICY.rules["GetCampaignScorecard"]
    assert command.command and not read.command
    assert not viewer.has_any(command.roles)
    assert worker.has_any(command.roles)
    assert viewer.has_any(read.roles)
    assert worker.has_any(read.roles)
