"""The delivery state machine shared by the publisher (posts) and the engager (replies).

One :class:`Delivery` exists per (message idempotency key, channel). It moves::

    pending ──begin──▶ sending ──send──▶ delivered
       ▲                  │  │
       └── backoff ───────┘  ├──▶ failed (reason)       ──retry──▶ pending
                             └──▶ needs-check (reason)  ──retry──▶ pending
                                  failed / needs-check  ──cancel─▶ cancelled
                                  needs-check ──confirm_delivered──▶ delivered

Everything here is pure domain: no storage, no clock reads unless a clock is injected.
Only :class:`Deliverer` talks to a :class:`~legation_channels.base.Channel`, and only
through ``deliver`` and ``find``. The caller owns persistence and must follow one rule to
keep the never-twice promise: **persist the "sending" state returned by**
:meth:`Deliverer.begin` **before calling** :meth:`Deliverer.send`, and persist whatever
``send`` returns. A delivery found in "sending" when a process starts was interrupted
mid-send; :meth:`Deliverer.recover` decides what to do from the channel's reconcile mode:

* ``lookup``: ask the channel (``find``); found → delivered, not found → send again;
* ``idempotency-key``: send again with the same key, the channel drops the duplicate;
* ``none``: the channel cannot tell us, so the delivery becomes needs-check for a person,
  never re-sent blindly.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args

from legation_channels.base import (
    Channel,
    ChannelError,
    ChannelRejected,
    ChannelUnavailable,
    Delivered,
    Outgoing,
    Reconcile,
    problems,
)

DeliveryState = Literal["pending", "sending", "delivered", "failed", "needs-check", "cancelled"]
DELIVERY_STATES: tuple[DeliveryState, ...] = get_args(DeliveryState)
# What recover() does with a delivery interrupted mid-send, by reconcile mode.
RestartDecision = Literal["look", "resend", "needs-check"]

_RESTART: dict[Reconcile, RestartDecision] = {
    "lookup": "look",
    "idempotency-key": "resend",
    "none": "needs-check",
}


class InvalidTransition(Exception):
    """An operation that the delivery's current state does not allow (for example retrying
    a delivered message). The message says what the state is and what is allowed."""

    def __init__(self, delivery: Delivery, operation: str, allowed_from: tuple[str, ...]) -> None:
        super().__init__(
            f"cannot {operation} delivery {delivery.idempotency_key!r} on channel "
            f"{delivery.channel!r}: it is {delivery.state}; only "
            f"{' or '.join(allowed_from)} deliveries can be {_PAST[operation]}"
        )
        self.delivery = delivery
        self.operation = operation


_PAST = {
    "begin": "begun",
    "send": "sent",
    "recover": "recovered",
    "retry": "retried",
    "cancel": "cancelled",
    "confirm": "confirmed",
}


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff and jitter.

    The n-th failed attempt (n from 1) waits ``base_delay * 2**(n-1)`` seconds capped at
    ``max_delay``, scaled by a random factor in ``[1 - jitter, 1 + jitter]`` so that many
    deliveries failing together do not retry together. A channel's own ``retry_after``
    hint is a floor: we never come back sooner than it asked.
    """

    max_attempts: int = 6
    base_delay: float = 5.0
    max_delay: float = 900.0
    jitter: float = 0.25

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < self.base_delay:
            raise ValueError("delays must satisfy 0 <= base_delay <= max_delay")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")

    def delay(self, attempts: int, retry_after: float | None, rand: float) -> float:
        """Seconds to wait after ``attempts`` failed attempts; ``rand`` is uniform in
        [0, 1) (injected so this stays deterministic under test)."""
        backoff: float = min(self.max_delay, self.base_delay * 2.0 ** max(0, attempts - 1))
        jittered = backoff * (1 - self.jitter + 2 * self.jitter * rand)
        return max(jittered, retry_after or 0.0)


@dataclass(frozen=True)
class Delivery:
    """Where one message stands on one channel. Immutable: every operation returns a new
    Delivery for the caller to persist (see :meth:`to_dict` / :meth:`from_dict`)."""

    idempotency_key: str
    channel: str
    state: DeliveryState = "pending"
    # Attempts begun since the delivery was created or last retried by a person.
    attempts: int = 0
    # When a pending delivery may be attempted (None: now).
    next_attempt_at: datetime | None = None
    # Why the last attempt failed, or why the delivery needs a person; empty otherwise.
    reason: str = ""
    # The message field the channel rejected, when it named one.
    reason_field: str = ""
    channel_item_id: str = ""
    url: str = ""
    published_at: datetime | None = None
    # False when a retry or lookup found the message already on the channel.
    newly_published: bool = False
    updated_at: datetime | None = None

    @property
    def key(self) -> tuple[str, str]:
        """The outbox key: (idempotency key, channel name)."""
        return (self.idempotency_key, self.channel)

    @property
    def finished(self) -> bool:
        """Delivered or cancelled: nothing more will happen to it."""
        return self.state in ("delivered", "cancelled")

    def is_due(self, now: datetime) -> bool:
        """A pending delivery whose backoff (if any) has elapsed."""
        return self.state == "pending" and (
            self.next_attempt_at is None or self.next_attempt_at <= now
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (datetimes as ISO 8601) for the caller's store."""
        return {
            "idempotency_key": self.idempotency_key,
            "channel": self.channel,
            "state": self.state,
            "attempts": self.attempts,
            "next_attempt_at": _iso(self.next_attempt_at),
            "reason": self.reason,
            "reason_field": self.reason_field,
            "channel_item_id": self.channel_item_id,
            "url": self.url,
            "published_at": _iso(self.published_at),
            "newly_published": self.newly_published,
            "updated_at": _iso(self.updated_at),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Delivery:
        """The inverse of :meth:`to_dict`; raises ValueError naming a bad field."""
        state = data.get("state", "pending")
        if state not in DELIVERY_STATES:
            raise ValueError(f"state: {state!r} is not one of {', '.join(DELIVERY_STATES)}")
        for name in ("idempotency_key", "channel"):
            if not isinstance(data.get(name), str) or not data[name]:
                raise ValueError(f"{name}: is required")
        return cls(
            idempotency_key=data["idempotency_key"],
            channel=data["channel"],
            state=state,
            attempts=int(data.get("attempts", 0)),
            next_attempt_at=_parse(data.get("next_attempt_at"), "next_attempt_at"),
            reason=str(data.get("reason", "")),
            reason_field=str(data.get("reason_field", "")),
            channel_item_id=str(data.get("channel_item_id", "")),
            url=str(data.get("url", "")),
            published_at=_parse(data.get("published_at"), "published_at"),
            newly_published=bool(data.get("newly_published", False)),
            updated_at=_parse(data.get("updated_at"), "updated_at"),
        )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse(value: object, name: str) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name}: expected an ISO 8601 string")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{name}: {value!r} is not an ISO 8601 time") from None


def new_delivery(idempotency_key: str, channel: str, now: datetime) -> Delivery:
    """A pending delivery, due at once."""
    if not idempotency_key.strip():
        raise ValueError("idempotency_key: is required")
    if not channel.strip():
        raise ValueError("channel: is required")
    return Delivery(idempotency_key, channel, updated_at=now)


def restart_decision(reconcile: Reconcile) -> RestartDecision:
    """What to do with a delivery found in "sending" after a restart, on a channel with
    this reconcile mode (see the module docstring)."""
    return _RESTART[reconcile]


def retry(delivery: Delivery, now: datetime) -> Delivery:
    """A person asks to try again a failed delivery, or one needing a check that they
    found is not on the channel. Pending and due now, with a fresh retry budget."""
    _require(delivery, "retry", ("failed", "needs-check"))
    return replace(
        delivery,
        state="pending",
        attempts=0,
        next_attempt_at=None,
        reason="",
        reason_field="",
        updated_at=now,
    )


def cancel(delivery: Delivery, now: datetime, reason: str = "") -> Delivery:
    """A person gives up on a failed delivery or one needing a check."""
    _require(delivery, "cancel", ("failed", "needs-check"))
    return replace(
        delivery,
        state="cancelled",
        next_attempt_at=None,
        reason=reason or delivery.reason,
        updated_at=now,
    )


def confirm_delivered(
    delivery: Delivery, now: datetime, channel_item_id: str = "", url: str = ""
) -> Delivery:
    """A person checked a needs-check delivery and found it on the channel."""
    _require(delivery, "confirm", ("needs-check",))
    return replace(
        delivery,
        state="delivered",
        channel_item_id=channel_item_id,
        url=url,
        published_at=now,
        newly_published=False,
        reason="",
        reason_field="",
        updated_at=now,
    )


def _require(delivery: Delivery, operation: str, allowed: tuple[DeliveryState, ...]) -> None:
    if delivery.state not in allowed:
        raise InvalidTransition(delivery, operation, allowed)


def _delivered(delivery: Delivery, result: Delivered, now: datetime) -> Delivery:
    return replace(
        delivery,
        state="delivered",
        next_attempt_at=None,
        reason="",
        reason_field="",
        channel_item_id=result.channel_item_id,
        url=result.url,
        published_at=result.published_at,
        newly_published=result.newly_published,
        updated_at=now,
    )


class Deliverer:
    """Performs one delivery step against a channel and returns the new Delivery.

    The only code that calls ``channel.deliver`` and ``channel.find``. Stateless apart
    from its policy, clock and random source, so one instance serves every channel.
    """

    def __init__(
        self,
        policy: RetryPolicy | None = None,
        clock: Callable[[], datetime] | None = None,
        rand: Callable[[], float] | None = None,
    ) -> None:
        self.policy = policy or RetryPolicy()
        self._clock = clock or (lambda: datetime.now(UTC))
        self._rand = rand or random.random

    def run(
        self,
        delivery: Delivery,
        channel: Channel,
        message: Outgoing,
        save: Callable[[Delivery], None],
    ) -> Delivery:
        """One turn for one delivery, saving every state in the order the never-twice
        promise needs: a delivery found "sending" was interrupted (this method never leaves
        one behind), so it is recovered first; a due pending one is begun, saved, sent and
        saved again. Anything else comes back unchanged. One worker per delivery at a time.
        """
        if delivery.state == "sending":
            waiting = delivery.next_attempt_at
            if waiting is not None and waiting > self._clock():
                return delivery
            delivery = self.recover(delivery, channel)
            save(delivery)
        if delivery.is_due(self._clock()):
            delivery = self.begin(delivery)
            save(delivery)
            delivery = self.send(delivery, channel, message)
            save(delivery)
        return delivery

    def begin(self, delivery: Delivery) -> Delivery:
        """pending → sending, counting the attempt. Persist the result, then :meth:`send`."""
        _require(delivery, "begin", ("pending",))
        now = self._clock()
        if not delivery.is_due(now):
            raise InvalidTransition(delivery, "begin", ("due pending",))
        return replace(
            delivery,
            state="sending",
            attempts=delivery.attempts + 1,
            next_attempt_at=None,
            updated_at=now,
        )

    def send(self, delivery: Delivery, channel: Channel, message: Outgoing) -> Delivery:
        """Delivers ``message`` for a delivery this process has just put in "sending" (and
        persisted). Returns delivered, pending (with a backoff), failed or needs-check."""
        _require(delivery, "send", ("sending",))
        self._check_matches(delivery, channel, message)
        found = problems(message, channel.limits)
        if found:
            return self._failed(delivery, "; ".join(map(str, found)), found[0].field)
        try:
            result = channel.deliver(message)
        except ChannelUnavailable as error:
            if error.maybe_delivered and channel.reconcile == "none":
                return self._needs_check(
                    delivery, f"the channel may have received it before failing: {error}"
                )
            return self._after_transient(delivery, str(error), error.retry_after)
        except ChannelRejected as error:
            return self._failed(delivery, str(error), error.field)
        except ChannelError as error:
            return self._failed(delivery, str(error))
        except Exception as error:  # an adapter bug must not lose the message
            # An unexpected error leaves us not knowing whether the message went out: treat
            # it as an interrupted send.
            reason = f"unexpected {type(error).__name__}: {error}"
            if channel.reconcile == "none":
                return self._needs_check(delivery, reason)
            return self._after_transient(delivery, reason, None)
        return _delivered(delivery, result, self._clock())

    def recover(self, delivery: Delivery, channel: Channel) -> Delivery:
        """For a delivery found in "sending" after a restart (a crash between sending and
        recording): delivered if a lookup finds it, pending (due now) to resend with the
        same key, or needs-check when the channel cannot tell. A lookup the channel cannot
        answer now leaves it "sending" with a ``next_attempt_at`` to recover again."""
        _require(delivery, "recover", ("sending",))
        if channel.name != delivery.channel:
            raise ValueError(f"channel: {channel.name!r} is not {delivery.channel!r}")
        now = self._clock()
        decision = restart_decision(channel.reconcile)
        if decision == "needs-check":
            return self._needs_check(
                delivery,
                "interrupted while sending; this channel cannot be asked whether it arrived",
            )
        if decision == "look":
            try:
                result = channel.find(delivery.idempotency_key)
            except ChannelUnavailable as error:
                wait = self.policy.delay(delivery.attempts, error.retry_after, self._rand())
                return replace(
                    delivery,
                    next_attempt_at=now + timedelta(seconds=wait),
                    reason=f"lookup after restart failed: {error}",
                    updated_at=now,
                )
            except ChannelError as error:
                return self._needs_check(delivery, f"lookup after restart failed: {error}")
            except Exception as error:
                # An adapter bug on an odd answer: raising would stop the caller's recovery
                # at this delivery on every run (and everything queued behind it); whether
                # it arrived is unknown, so a person checks.
                return self._needs_check(
                    delivery, f"lookup after restart failed unexpectedly: {error!r}"
                )
            if result is not None:
                return _delivered(delivery, result, now)
        # Not found, or the channel deduplicates on the key: sending again is safe. The
        # interrupted attempt stays counted so a crash loop still ends.
        if delivery.attempts >= self.policy.max_attempts:
            return self._failed(delivery, "interrupted while sending too many times")
        return replace(delivery, state="pending", next_attempt_at=None, updated_at=now)

    def _check_matches(self, delivery: Delivery, channel: Channel, message: Outgoing) -> None:
        # A mismatch is a caller bug that could deliver the wrong message: refuse loudly.
        if channel.name != delivery.channel:
            raise ValueError(f"channel: {channel.name!r} is not {delivery.channel!r}")
        if message.idempotency_key != delivery.idempotency_key:
            raise ValueError(
                f"idempotency_key: {message.idempotency_key!r} is not {delivery.idempotency_key!r}"
            )

    def _after_transient(
        self, delivery: Delivery, reason: str, retry_after: float | None
    ) -> Delivery:
        now = self._clock()
        if delivery.attempts >= self.policy.max_attempts:
            return self._failed(delivery, f"gave up after {delivery.attempts} attempts: {reason}")
        wait = self.policy.delay(delivery.attempts, retry_after, self._rand())
        return replace(
            delivery,
            state="pending",
            next_attempt_at=now + timedelta(seconds=wait),
            reason=reason,
            reason_field="",
            updated_at=now,
        )

    def _failed(self, delivery: Delivery, reason: str, field: str = "") -> Delivery:
        return replace(
            delivery,
            state="failed",
            next_attempt_at=None,
            reason=reason,
            reason_field=field,
            updated_at=self._clock(),
        )

    def _needs_check(self, delivery: Delivery, reason: str) -> Delivery:
        return replace(
            delivery,
            state="needs-check",
            next_attempt_at=None,
            reason=reason,
            reason_field="",
            updated_at=self._clock(),
        )
