"""Who hears about what, once per episode, when: the notifier's decisions, without I/O.

* **Episodes** (:func:`fold`, :func:`close_due`): a condition opens an episode; more
  signals of it while open change nothing (a spike re-firing, a post record repeating a
  failed delivery); a resolving signal closes it, at once or after a settling time in which
  the condition may come back silently (a flapping source); a spike closes by itself after
  a quiet period. People hear when an episode opens and once when it closes (the
  follow-up), never for a redelivered event.
* **Recipients** (:func:`recipients`): the people the signal names (an assignee, an
  author), the owners of its campaigns and issues, the holders of the roles it concerns
  (within their scope, when they have one), and followers; never the person who caused it;
  muting a campaign or issue silences everything but what names the person. The follow-up
  goes to those told at the opening, and to the people the resolving signal names.
* **Timing** (:func:`deliver_at`): immediate, or the person's next daily digest time in
  their time zone; either waits for the end of their quiet hours.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from legation.events.v1 import notify_pb2
from legation_core.ids import stable_id
from legation_notifier.domain.people import (
    CAMPAIGN_INTERESTS,
    CONSOLE,
    ISSUE_INTERESTS,
    Choice,
    Directory,
    Person,
    Reason,
)
from legation_notifier.domain.signals import Signal

EpisodeState = notify_pb2.EpisodeState
NotificationState = notify_pb2.NotificationState
RECENT_EVENTS = 16
"""Event ids an episode remembers: a redelivered batch replays at most its own events."""
MAX_TEXT = 4000


@dataclass(frozen=True)
class Outcome:
    """What one signal (or a closing) changes: the episode's new record, if any, and the
    notifications to record."""

    episode: EpisodeState | None
    notifications: list[NotificationState]


def _stamp(when: datetime) -> datetime:
    return when.astimezone(UTC)


def _open(signal: Signal, previous: EpisodeState | None) -> EpisodeState:
    # One record per condition on the compacted topic: a new episode of a condition continues
    # its versions, so it replaces the closed one (an older version never does).
    episode = EpisodeState(
        episode_id=stable_id("episode", signal.condition, signal.event_id),
        condition=signal.condition,
        kind=signal.kind,
        open=True,
        last_event_id=signal.event_id,
        version=previous.version + 1 if previous is not None else 1,
        recent_event_ids=[signal.event_id],
        title=signal.title[:500],
        link=signal.link[:2000],
    )
    episode.opened_at.FromDatetime(_stamp(signal.at))
    if signal.quiet is not None:
        episode.closes_at.FromDatetime(_stamp(signal.at + signal.quiet))
    return episode


def _next(current: EpisodeState, signal: Signal | None) -> EpisodeState:
    nxt = EpisodeState()
    nxt.CopyFrom(current)
    nxt.version = current.version + 1
    if signal is not None:
        nxt.last_event_id = signal.event_id
        recent = [*current.recent_event_ids, signal.event_id][-RECENT_EVENTS:]
        del nxt.recent_event_ids[:]
        nxt.recent_event_ids.extend(recent)
    return nxt


def fold(current: EpisodeState | None, signal: Signal) -> tuple[EpisodeState | None, str | None]:
    """The episode after ``signal`` (None when nothing changes) and the phase to notify
    (``open``, ``resolved``, or None)."""
    if current is not None and signal.event_id in current.recent_event_ids:
        return None, None  # a redelivered event
    if signal.phase == "open":
        if current is None or not current.open:
            return _open(signal, current), "open"
        if signal.quiet is None and not current.HasField("closes_at"):
            # Still open, nothing pending (a state record repeating a failed delivery): no
            # change to record. Only the opening event must be remembered for redelivery.
            return None, None
        nxt = _next(current, signal)
        nxt.ClearField("closes_at")  # it came back before closing: the same episode
        nxt.resolution_title = nxt.resolution_text = ""
        if signal.quiet is not None:
            later = max(signal.at + signal.quiet, current.closes_at.ToDatetime(tzinfo=UTC))
            nxt.closes_at.FromDatetime(_stamp(later))
        return nxt, None
    if current is None or not current.open:
        return None, None  # nothing open: nobody was told, nobody needs a follow-up
    nxt = _next(current, signal)
    if signal.settle > timedelta(0):
        nxt.closes_at.FromDatetime(_stamp(signal.at + signal.settle))
        nxt.resolution_title = signal.title[:500]
        nxt.resolution_text = signal.text[:MAX_TEXT]
        return nxt, None
    nxt.open = False
    nxt.ClearField("closes_at")
    nxt.resolved_at.FromDatetime(_stamp(signal.at))
    return nxt, "resolved"


def close_due(current: EpisodeState, now: datetime) -> EpisodeState | None:
    """The closed episode when an open one's ``closes_at`` has passed, else None."""
    if not current.open or not current.HasField("closes_at"):
        return None
    closes_at = current.closes_at.ToDatetime(tzinfo=UTC)
    if closes_at > now:
        return None
    nxt = _next(current, None)
    nxt.open = False
    nxt.ClearField("closes_at")
    nxt.resolved_at.FromDatetime(_stamp(closes_at))
    return nxt


def recipients(signal: Signal, directory: Directory) -> dict[str, tuple[Person, Choice]]:
    """Everyone who must hear about ``signal`` as an opening, with where and when."""
    found: dict[str, tuple[Person, Choice]] = {}
    for person in directory.people:
        if person.name == signal.actor:
            continue
        reasons = _reasons(person, signal)
        if not reasons:
            continue
        muted = bool(
            signal.campaign_ids & person.mutes_campaigns or signal.issue_ids & person.mutes_issues
        )
        if muted and "direct" not in reasons:
            continue
        choice = person.choice(signal.kind, reasons)
        if choice is not None:
            found[person.name] = (person, choice)
    return found


def _reasons(person: Person, signal: Signal) -> set[Reason]:
    reasons: set[Reason] = set()
    if person.name in signal.people:
        reasons.add("direct")
    chosen = signal.kind in person.kinds
    campaigns = signal.campaign_ids if chosen or signal.kind in CAMPAIGN_INTERESTS else set()
    issues = signal.issue_ids if chosen or signal.kind in ISSUE_INTERESTS else set()
    if campaigns & person.owns_campaigns or issues & person.owns_issues:
        reasons.add("owner")
    if signal.roles & person.roles and _in_scope(person, signal):
        reasons.add("role")
    if campaigns & person.follows_campaigns or issues & person.follows_issues:
        reasons.add("follow")
    return reasons


def _in_scope(person: Person, signal: Signal) -> bool:
    if not person.scope_campaigns and not person.scope_issues:
        return True
    return bool(
        signal.campaign_ids & person.scope_campaigns or signal.issue_ids & person.scope_issues
    )


def follow_up_recipients(
    episode: EpisodeState, signal: Signal | None, directory: Directory
) -> dict[str, tuple[Person, Choice]]:
    """Who hears that an episode closed: those told when it opened, and the people the
    resolving signal names (the author of a post whose approval was decided)."""
    found: dict[str, tuple[Person, Choice]] = {}
    named = signal.people if signal is not None else frozenset()
    actor = signal.actor if signal is not None else ""
    for name in [*episode.notified, *sorted(named)]:
        person = directory.person(name)
        if person is None or name == actor or name in found:
            continue
        choice = person.choice(episode.kind, {"direct"})
        if choice is None:
            continue
        if name not in named and name in episode.notified_in_digest:
            # The follow-up goes where and how the opening went: in the digest.
            choice = Choice(choice.channel, "digest")
        found[name] = (person, choice)
    return found


def deliver_at(person: Person, digest: bool, now: datetime) -> datetime:
    """When a notification decided at ``now`` may go to ``person``: at once or at their
    next digest time (local), either moved to the end of their quiet hours."""
    zone = person.zone
    local = now.astimezone(zone)
    if digest:
        moment = datetime.combine(local.date(), person.digest_at, tzinfo=zone)
        if moment <= local:
            moment = datetime.combine(local.date() + timedelta(days=1), person.digest_at, zone)
    else:
        moment = local
    quiet = person.quiet_hours
    if quiet is not None and quiet.contains(moment.timetz().replace(tzinfo=None)):
        end = datetime.combine(moment.date(), quiet.end, tzinfo=zone)
        if end <= moment:
            end = datetime.combine(moment.date() + timedelta(days=1), quiet.end, tzinfo=zone)
        moment = end
    return moment.astimezone(UTC)


def notifications_for(
    episode: EpisodeState,
    phase: str,
    people: dict[str, tuple[Person, Choice]],
    signal: Signal | None,
    now: datetime,
    campaign_ids: Iterable[str] = (),
    issue_ids: Iterable[str] = (),
) -> list[NotificationState]:
    """One notification per person (on their chosen channel) for an episode's phase."""
    if signal is not None:
        title, text, link = signal.title, signal.text, signal.link
    else:
        title = episode.resolution_title or f"Over: {episode.title}"
        since = episode.resolved_at.ToDatetime(tzinfo=UTC)
        text = episode.resolution_text or (
            f"Nothing more reported since {since:%Y-%m-%d %H:%M} UTC: {episode.title}"
        )
        link = episode.link
    created = []
    for name, (person, choice) in sorted(people.items()):
        digest = choice.mode == "digest"
        notification = NotificationState(
            notification_id=stable_id(
                "notification", episode.episode_id, phase, name, choice.channel
            ),
            person=name,
            channel=choice.channel,
            kind=episode.kind,
            episode_id=episode.episode_id,
            phase=phase,
            title=title[:500],
            text=text[:MAX_TEXT],
            link=link[:2000],
            campaign_id=next(iter(sorted(campaign_ids)), ""),
            issue_id=next(iter(sorted(issue_ids)), ""),
            digest=digest,
            version=1,
        )
        notification.created_at.FromDatetime(_stamp(now))
        notification.deliver_at.FromDatetime(deliver_at(person, digest, now))
        created.append(notification)
        if person.console and choice.channel != CONSOLE:
            created.append(_inbox_copy(notification))
    return created


def _inbox_copy(notification: NotificationState) -> NotificationState:
    """The same notification in the person's console inbox: alone and at once (the inbox
    interrupts nobody, so digests and quiet hours do not apply)."""
    copy = NotificationState()
    copy.CopyFrom(notification)
    copy.notification_id = stable_id(
        "notification", notification.episode_id, notification.phase, notification.person, CONSOLE
    )
    copy.channel = CONSOLE
    copy.digest = False
    copy.deliver_at.CopyFrom(notification.created_at)
    return copy


class Decider:
    """Folds signals into episodes and decides the notifications, against the current
    episodes (``episode_of``) and the people directory. Pure: the caller records what it
    returns (episode first or last, see the adapters) and feeds it back."""

    def __init__(
        self,
        directory: Directory,
        episode_of: Callable[[str], EpisodeState | None],
        max_event_age: timedelta = timedelta(hours=24),
    ) -> None:
        self.directory = directory
        self.episode_of = episode_of
        # Events older than this fold into episodes but tell nobody (a first start over a
        # long history must not page everyone about last month).
        self.max_event_age = max_event_age

    def decide(self, signal: Signal, now: datetime) -> Outcome:
        """What ``signal`` changes."""
        current = self.episode_of(signal.condition)
        episode, phase = fold(current, signal)
        if episode is None or phase is None:
            return Outcome(episode, [])
        stale = now - signal.at > self.max_event_age
        if phase == "open":
            people = {} if stale else recipients(signal, self.directory)
            del episode.notified[:]
            episode.notified.extend(sorted(people))
            del episode.notified_in_digest[:]
            episode.notified_in_digest.extend(
                sorted(name for name, (_, choice) in people.items() if choice.mode == "digest")
            )
        else:
            people = {} if stale else follow_up_recipients(episode, signal, self.directory)
        return Outcome(
            episode,
            notifications_for(
                episode, phase, people, signal, now, signal.campaign_ids, signal.issue_ids
            ),
        )

    def close(self, current: EpisodeState, now: datetime) -> Outcome:
        """The closing of an episode whose time has come (a spike gone quiet, a recovery
        that held), with its follow-ups; an empty outcome when it is not due."""
        episode = close_due(current, now)
        if episode is None:
            return Outcome(None, [])
        people = follow_up_recipients(episode, None, self.directory)
        return Outcome(episode, notifications_for(episode, "resolved", people, None, now))
