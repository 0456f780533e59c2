"""Who hears about what, once per episode, and when: the notifier's domain without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from notifier_people import ENV, directory, people_file

from legation.events.v1 import engage_pb2, evaluate_pb2, listen_pb2, notify_pb2, publish_pb2
from legation_core.codec import Envelope, make_envelope
from legation_notifier.domain.decide import (
    Decider,
    EpisodeState,
    Outcome,
    deliver_at,
)
from legation_notifier.domain.messages import plan_messages
from legation_notifier.domain.people import CONSOLE as INBOX
from legation_notifier.domain.people import PeopleError, parse_people
from legation_notifier.domain.signals import SOURCE_SETTLE, SPIKE_QUIET, signals_of

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
CONSOLE = "https://console.m.example"
A = publish_pb2.ApprovalState


NotificationState = notify_pb2.NotificationState


class Memory:
    """Episodes as the service keeps them: the decider's outcomes recorded."""

    def __init__(self, **overrides: Any) -> None:
        self.episodes: dict[str, EpisodeState] = {}
        self.sent: list[tuple[str, str, str, str]] = []  # person, channel, phase, title
        self.inbox: list[NotificationState] = []
        self.decider = Decider(directory(**overrides), self.episodes.get)

    def feed(self, envelope: Envelope, now: datetime) -> list[tuple[str, str, str]]:
        told = []
        for signal in signals_of(envelope, CONSOLE):
            told += self._record(self.decider.decide(signal, now))
        return told

    def tick(self, now: datetime) -> list[tuple[str, str, str]]:
        told = []
        for episode in list(self.episodes.values()):
            told += self._record(self.decider.close(episode, now))
        return told

    def _record(self, outcome: Outcome) -> list[tuple[str, str, str]]:
        if outcome.episode is not None:
            self.episodes[outcome.episode.condition] = outcome.episode
        # The console inbox copies are kept apart (``inbox``): ``told`` is the people's own
        # channels, and test_every_notification_has_one_inbox_copy checks the copies.
        for n in outcome.notifications:
            if n.channel == INBOX:
                self.inbox.append(n)
            else:
                self.sent.append((n.person, n.channel, n.phase, n.title))
        return [(n.person, n.channel, n.phase) for n in outcome.notifications if n.channel != INBOX]


def alert(hour: int, count: int = 42, issue: str = "plastics-treaty") -> Envelope:
    start = T0.replace(hour=hour)
    payload = listen_pb2.Alert(
        alert_id=f"alert-{hour}",
        issue_id=issue,
        count=count,
        threshold=7.1,
        baseline_mean=3.5,
        campaign_ids=["plastics-2026"],
        top_terms=[listen_pb2.Alert.Count(value="production cap", count=12)],
    )
    payload.window_start.FromDatetime(start)
    payload.window_end.FromDatetime(start + timedelta(hours=1))
    return make_envelope(
        payload,
        event_id=f"alert-{issue}-{hour}",
        source_service="listener",
        occurred_at=start + timedelta(hours=1),
        issue_id=issue,
    )


def approval(
    state: publish_pb2.ApprovalState.ValueType, version: int, role: str = "approver", by: str = ""
) -> Envelope:
    request = publish_pb2.ApprovalRequest(
        request_id=f"req-{version}",
        subject="post",
        subject_id="treaty-explainer",
        languages=["en"],
        step="policy-desk",
        role=role,
        state=state,
        requested_by="sam",
        decided_by=by,
        title="Why a production cap matters",
    )
    request.at.FromDatetime(T0 + timedelta(minutes=version))
    return make_envelope(
        request,
        event_id=f"req-{version}",
        source_service="publisher",
        occurred_at=T0,
        campaign_id="plastics-2026",
        issue_id="plastics-treaty",
    )


def source(state: listen_pb2.SourceHealth.State.ValueType, at: datetime, number: int) -> Envelope:
    health = listen_pb2.SourceHealth(
        health_id=f"health-{number}",
        issue_id="plastics-treaty",
        source="https://news.example.org/feed.xml",
        kind="rss",
        state=state,
        consecutive_failures=3,
        last_error="HTTP 503",
    )
    health.at.FromDatetime(at)
    return make_envelope(
        health, event_id=f"health-{number}", source_service="listener", occurred_at=at
    )


def conversation(version: int, *, breached: bool, answered: bool, assignee: str) -> Envelope:
    state = engage_pb2.ConversationState(
        conversation_id="conv-1",
        campaign_id="plastics-2026",
        issue_id="plastics-treaty",
        assignee=assignee,
        sla_breached=breached,
        version=version,
        mentions=[listen_pb2.Mention(mention_id="m1", author="@ngo", text="When is the vote?")],
    )
    state.sla_due_at.FromDatetime(T0)
    state.change.at.FromDatetime(T0 + timedelta(minutes=version))
    if answered:
        state.first_response_at.FromDatetime(T0 + timedelta(minutes=version))
    return make_envelope(
        state, event_id=f"conv-1-{version}", source_service="engager", occurred_at=T0
    )


def post_delivery(version: int, status: publish_pb2.DeliveryStatus.ValueType) -> Envelope:
    post = publish_pb2.PostState(
        post_id="treaty-explainer",
        campaign_id="plastics-2026",
        created_by="sam",
        version=version,
        variants=[publish_pb2.LanguageVariant(language="en", title="Cap matters")],
        deliveries=[
            publish_pb2.Delivery(
                delivery_id="d-1",
                language="en",
                channel="newsletter",
                status=status,
                reason="interrupted while sending",
            )
        ],
    )
    post.transition.at.FromDatetime(T0 + timedelta(minutes=version))
    return make_envelope(
        post, event_id=f"post-{version}", source_service="publisher", occurred_at=T0
    )


def objective(to: evaluate_pb2.ObjectiveStatus.Status.ValueType, number: int) -> Envelope:
    change = evaluate_pb2.ObjectiveStatusChange(
        change_id=f"obj-{number}",
        campaign_id="plastics-2026",
        campaign_name="Plastics treaty 2026",
        objective_id="fast-answers",
        to_status=to,
        reason="median_response_seconds is 5.08 days, target at most 4 h",
    )
    change.at.FromDatetime(T0 + timedelta(hours=number))
    return make_envelope(
        change, event_id=f"obj-{number}", source_service="evaluator", occurred_at=T0
    )


def test_a_spike_reaches_analysts_and_the_issue_owner_once_however_often_it_refires() -> None:
    memory = Memory()
    told = memory.feed(alert(9), T0 + timedelta(hours=1))
    # ana: analyst and issue owner, once, on her channel; lea owns the campaign. Not omar
    # (officer), sam (editor, publisher), vic (viewer) or ops (admin).
    assert told == [("ana", "slack", "open"), ("lea", "matrix", "open")]
    assert memory.feed(alert(9), T0 + timedelta(hours=1)) == []  # redelivered
    for hour in (10, 11, 12):  # re-fires every hour: the same episode
        assert memory.feed(alert(hour), T0.replace(hour=hour + 1)) == []
    assert memory.tick(T0.replace(hour=13) + SPIKE_QUIET - timedelta(minutes=1)) == []
    follow_up = memory.tick(T0.replace(hour=13) + SPIKE_QUIET)
    assert follow_up == [("ana", "slack", "resolved"), ("lea", "matrix", "resolved")]
    # A new surge after it closed is a new episode.
    assert len(memory.feed(alert(20), T0.replace(hour=21))) == 2
    [first] = [s for s in memory.sent if s[2] == "open"][:1]
    assert "Spike on plastics-treaty: 42 mentions" in first[3]


def test_an_approval_request_reaches_the_steps_role_and_its_outcome_the_author() -> None:
    memory = Memory()
    told = memory.feed(approval(A.APPROVAL_STATE_AWAITING, 1), T0)
    assert told == [("lea", "matrix", "open")]  # the approver; not sam who asked, not vic
    assert memory.feed(approval(A.APPROVAL_STATE_AWAITING, 1), T0) == []
    decided = memory.feed(approval(A.APPROVAL_STATE_APPROVED, 2, by="lea"), T0)
    # The author hears the outcome; lea, who decided, is not told about her own act.
    assert decided == [("sam", "email", "resolved")]
    # A step needing another role reaches only its holders.
    other = Memory()
    assert other.feed(approval(A.APPROVAL_STATE_AWAITING, 1, role="chief"), T0) == []


def test_an_sla_breach_reaches_the_assignee_or_else_the_officers_and_resolves_once() -> None:
    memory = Memory()
    assert memory.feed(conversation(1, breached=False, answered=False, assignee="omar"), T0) == []
    told = memory.feed(conversation(2, breached=True, answered=False, assignee="omar"), T0)
    # The assignee at once; lea, who owns the campaign, in her digest.
    assert told == [("lea", "matrix", "open"), ("omar", "teams", "open")]
    assert memory.feed(conversation(3, breached=True, answered=False, assignee="omar"), T0) == []
    answered = memory.feed(conversation(4, breached=True, answered=True, assignee="omar"), T0)
    assert answered == [("lea", "matrix", "resolved"), ("omar", "teams", "resolved")]
    assert memory.feed(conversation(5, breached=True, answered=True, assignee="omar"), T0) == []
    unassigned = Memory()
    told = unassigned.feed(conversation(2, breached=True, answered=False, assignee=""), T0)
    assert ("omar", "teams", "open") in told  # the officers (omar is the only one)


def test_a_delivery_that_needs_a_check_reaches_its_author_and_the_publishers_once() -> None:
    memory = Memory()
    needs_check = publish_pb2.DELIVERY_STATUS_NEEDS_CHECK
    told = memory.feed(post_delivery(5, needs_check), T0)
    assert told == [("sam", "email", "open")]  # author and publisher: one person, once
    assert memory.feed(post_delivery(6, needs_check), T0) == []  # the next record repeats it
    assert "needs a check" in memory.sent[0][3]
    done = memory.feed(post_delivery(7, publish_pb2.DELIVERY_STATUS_PUBLISHED), T0)
    assert done == [("sam", "email", "resolved")]


def test_an_objective_at_risk_reaches_the_campaign_owner_and_its_recovery_too() -> None:
    memory = Memory()
    S = evaluate_pb2.ObjectiveStatus  # noqa: N806
    assert memory.feed(objective(S.STATUS_AT_RISK, 1), T0 + timedelta(hours=1)) == [
        ("lea", "matrix", "open")
    ]
    assert memory.feed(objective(S.STATUS_MISSED, 2), T0 + timedelta(hours=2)) == []
    assert memory.feed(objective(S.STATUS_ON_TRACK, 3), T0 + timedelta(hours=3)) == [
        ("lea", "matrix", "resolved")
    ]


def test_a_flapping_source_is_one_episode_with_one_follow_up_once_it_holds() -> None:
    memory = Memory()
    failing, recovered = (
        listen_pb2.SourceHealth.STATE_FAILING,
        listen_pb2.SourceHealth.STATE_RECOVERED,
    )
    told = memory.feed(source(failing, T0, 1), T0)
    # ana: analyst (source → her digest by default) and issue owner; ops: admin, at once.
    assert sorted(told) == [("ana", "slack", "open"), ("ops", "webhook", "open")]
    minute = timedelta(minutes=1)
    assert memory.feed(source(recovered, T0 + minute, 2), T0 + minute) == []  # settling
    assert memory.feed(source(failing, T0 + 3 * minute, 3), T0 + 3 * minute) == []  # back
    assert memory.feed(source(recovered, T0 + 5 * minute, 4), T0 + 5 * minute) == []
    assert memory.tick(T0 + 5 * minute + SOURCE_SETTLE - minute) == []
    follow_ups = memory.tick(T0 + 5 * minute + SOURCE_SETTLE)
    assert sorted(follow_ups) == [("ana", "slack", "resolved"), ("ops", "webhook", "resolved")]
    assert any("Source recovered" in sent[3] for sent in memory.sent if sent[2] == "resolved")


def test_muting_an_issue_silences_roles_and_ownership_but_not_what_names_the_person() -> None:
    muted = people_file()["people"][0] | {"mutes": {"issues": ["plastics-treaty"]}}
    memory = Memory(ana=muted)
    assert memory.feed(alert(9), T0 + timedelta(hours=1)) == [("lea", "matrix", "open")]
    omar = people_file()["people"][1] | {"mutes": {"issues": ["plastics-treaty"]}}
    assigned = Memory(omar=omar)
    told = assigned.feed(conversation(2, breached=True, answered=False, assignee="omar"), T0)
    assert ("omar", "teams", "open") in told


def test_following_a_campaign_and_scope_limit_who_hears_through_a_role() -> None:
    vic = people_file()["people"][4] | {"follows": {"campaigns": ["plastics-2026"]}}
    lea = people_file()["people"][2] | {"scope": {"campaigns": ["other-campaign"]}, "owns": {}}
    memory = Memory(vic=vic, lea=lea)
    # lea's scope leaves this campaign out: the approval request reaches nobody.
    assert memory.feed(approval(A.APPROVAL_STATE_AWAITING, 1), T0) == []
    # vic follows the campaign: its objectives reach her.
    S = evaluate_pb2.ObjectiveStatus  # noqa: N806
    told = memory.feed(objective(S.STATUS_AT_RISK, 1), T0 + timedelta(hours=1))
    assert told == [("vic", "email", "open")]
    episode = memory.episodes["objective:plastics-2026:fast-answers"]
    assert list(episode.notified) == ["vic"]
    # A follower who chose approvals gets them too.
    keen = vic | {"kinds": {"approval": {"mode": "digest"}}}
    told = Memory(vic=keen, lea=lea).feed(approval(A.APPROVAL_STATE_AWAITING, 1), T0)
    assert told == [("vic", "email", "open")]


def test_a_kind_turned_off_or_moved_to_another_channel_is_respected() -> None:
    ana = people_file()["people"][0] | {"kinds": {"spike": {"channel": "email", "mode": "digest"}}}
    memory = Memory(ana=ana)
    decider = memory.decider
    [signal] = signals_of(alert(9), CONSOLE)
    outcome = decider.decide(signal, T0 + timedelta(hours=1))
    [notification] = [n for n in outcome.notifications if n.person == "ana" and n.channel != INBOX]
    assert (notification.channel, notification.digest) == ("email", True)
    off = people_file()["people"][0] | {"kinds": {"spike": "off"}}
    assert Memory(ana=off).feed(alert(9), T0 + timedelta(hours=1)) == [("lea", "matrix", "open")]


def test_an_analyst_hears_spikes_at_once_and_an_owner_in_the_digest_by_default() -> None:
    [signal] = signals_of(alert(9), CONSOLE)
    outcome = Memory().decider.decide(signal, T0 + timedelta(hours=1))
    modes = {n.person: n.digest for n in outcome.notifications if n.channel != INBOX}
    assert modes == {"ana": False, "lea": True}


def test_old_events_fold_into_episodes_but_tell_nobody() -> None:
    memory = Memory()
    assert memory.feed(alert(9), T0 + timedelta(days=3)) == []
    assert memory.episodes["spike:plastics-treaty"].open


def test_digest_and_quiet_hours_in_the_persons_own_time_zone() -> None:
    ana = people_file()["people"][0] | {
        "mode": "digest",
        "quiet_hours": {"from": "22:00", "to": "07:00"},
        "kinds": {"spike": {"mode": "digest"}},
    }
    team = directory(ana=ana)
    person = team.person("ana")
    assert person is not None
    paris = person.zone
    # Three events on 20 November (Paris is UTC+1): one digest at 08:00 Paris the next day.
    events = [datetime(2026, 11, 20, h, 30, tzinfo=paris) for h in (9, 14, 21)]
    times = {deliver_at(person, True, moment.astimezone(UTC)) for moment in events}
    assert times == {datetime(2026, 11, 21, 8, 0, tzinfo=paris).astimezone(UTC)}
    # Immediate at 23:30 waits for the end of the quiet hours, 07:00 Paris.
    late = datetime(2026, 11, 20, 23, 30, tzinfo=paris)
    assert deliver_at(person, False, late) == datetime(2026, 11, 21, 7, 0, tzinfo=paris)
    # Outside quiet hours: at once.
    noon = datetime(2026, 11, 20, 12, 0, tzinfo=paris)
    assert deliver_at(person, False, noon) == noon
    # A digest time inside quiet hours waits for their end.
    early = people_file()["people"][0] | {"quiet_hours": {"from": "22:00", "to": "09:15"}}
    sleepy = directory(ana=early).person("ana")
    assert sleepy is not None
    assert deliver_at(sleepy, True, noon) == datetime(2026, 11, 21, 9, 15, tzinfo=paris)


def test_three_events_in_a_day_are_one_digest_message_at_eight_local_time() -> None:
    ana = people_file()["people"][0] | {"kinds": {"spike": {"mode": "digest"}}}
    memory = Memory(ana=ana)
    paris = ZoneInfo("Europe/Paris")
    notifications = []
    # Three surges on three issues during 20 November (10:00, 15:00, 21:00 UTC).
    for hour, issue in ((9, "plastics-treaty"), (14, "ocean-day"), (20, "cop-31")):
        envelope = alert(hour, issue=issue)
        now = envelope.occurred_at.ToDatetime(tzinfo=UTC)
        for signal in signals_of(envelope, CONSOLE):
            outcome = memory.decider.decide(signal, now)
            memory._record(outcome)
            notifications += [
                n for n in outcome.notifications if n.person == "ana" and n.channel != INBOX
            ]
    assert len(notifications) == 3
    eight = datetime(2026, 11, 21, 8, 0, tzinfo=paris).astimezone(UTC)
    assert plan_messages(notifications, set(), eight - timedelta(seconds=1)) == []
    [digest] = plan_messages(notifications, set(), eight)
    assert digest.digest and digest.person == "ana" and len(digest.notifications) == 3
    assert digest.text.count("Spike on ") == 3 and "cop-31" in digest.text
    taken = {n.notification_id for n in digest.notifications}
    assert plan_messages(notifications, taken, eight + timedelta(hours=1)) == []


def test_the_people_file_names_every_bad_field() -> None:
    bad = people_file()
    bad["people"][0]["time_zone"] = "Mars/Olympus"
    bad["people"][1]["quiet_hours"] = {"from": "25:00", "to": "07:00"}
    bad["people"][2]["kinds"] = {"gossip": "off", "spike": {"channel": "fax"}}
    bad["people"][3]["channels"] = {"slack": {"url_env": "MISSING"}}
    bad["people"][4]["name"] = "ana"
    with pytest.raises(PeopleError) as caught:
        parse_people(bad, ENV)
    problems = "\n".join(caught.value.problems)
    assert "people[0].time_zone: not an IANA time zone" in problems
    assert "people[1].quiet_hours.from: expected HH:MM" in problems
    assert "people[2].kinds.gossip: unknown kind" in problems
    assert "people[2].kinds.spike.channel: 'fax' is not one of the person's channels" in problems
    assert "people[3].channels.slack.url_env: environment variable MISSING is not set" in problems
    assert "people[4].name: 'ana' appears twice" in problems


def test_secrets_come_from_the_environment_or_from_files(tmp_path: Path) -> None:
    secret = tmp_path / "teams-omar"
    secret.write_text("https://teams.example/hook/omar\n", encoding="utf-8")
    omar = people_file()["people"][1] | {"channels": {"teams": {"url_file": str(secret)}}}
    team = parse_people(people_file(omar=omar), ENV)
    person = team.person("omar")
    assert person is not None and person.channels["teams"].url == "https://teams.example/hook/omar"
    both = people_file()["people"][1] | {
        "channels": {"teams": {"url_file": str(secret), "url_env": "OMAR_TEAMS"}}
    }
    missing = people_file()["people"][1] | {
        "channels": {"teams": {"url_file": str(tmp_path / "nowhere")}}
    }
    for entry, complaint in (
        (both, "people[1].channels.teams: give exactly one of url_env and url_file"),
        (missing, "people[1].channels.teams.url_file: cannot be read"),
    ):
        with pytest.raises(PeopleError) as caught:
            parse_people(people_file(omar=entry), ENV)
        assert any(problem.startswith(complaint) for problem in caught.value.problems)


def test_every_notification_has_one_inbox_copy_at_once_whatever_the_digest_or_quiet_hours() -> None:
    quiet_ana = {**people_file()["people"][0], "quiet_hours": {"from": "00:00", "to": "23:59"}}
    memory = Memory(ana=quiet_ana)
    memory.feed(alert(9), T0 + timedelta(hours=1))
    memory.tick(T0 + timedelta(hours=9))
    told = [(person, phase) for person, _, phase, _ in memory.sent]
    copies = [(n.person, n.phase) for n in memory.inbox]
    assert sorted(copies) == sorted(told) and len(set(copies)) == len(copies)
    for copy in memory.inbox:
        assert copy.channel == INBOX and not copy.digest
        assert copy.deliver_at == copy.created_at  # no quiet hours, no digest
        assert copy.link.startswith(CONSOLE)


def test_a_person_may_go_without_the_inbox() -> None:
    without = {**people_file()["people"][0], "console": False}
    memory = Memory(ana=without)
    memory.feed(alert(9), T0 + timedelta(hours=1))
    assert [n.person for n in memory.inbox] == ["lea"]
    with pytest.raises(PeopleError, match=r"people\[0\]\.console: expected true or false"):
        parse_people(people_file(ana={**without, "console": "no"}), ENV)
