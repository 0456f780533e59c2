"""The outbox state machine against a fake channel, crashes between send and record included."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from channel_kit import Crash

from legation_channels.base import (
    ChannelError,
    ChannelLimits,
    ChannelRejected,
    ChannelUnavailable,
    Delivered,
    Outgoing,
    Reconcile,
)
from legation_channels.outbox import (
    DELIVERY_STATES,
    Deliverer,
    Delivery,
    DeliveryState,
    InvalidTransition,
    RetryPolicy,
    cancel,
    confirm_delivered,
    new_delivery,
    restart_decision,
    retry,
)

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@dataclass
class FakeChannel:
    """Keeps what was posted. Deduplicates on the key unless its reconcile mode is none,
    like the real channels of each mode do."""

    name: str = "fake"
    kind: str = "fake"
    reconcile: Reconcile = "lookup"
    limits: ChannelLimits = field(default_factory=lambda: ChannelLimits(max_text_length=20))
    posts: list[Outgoing] = field(default_factory=list)
    held: dict[str, Delivered] = field(default_factory=dict)
    # Raised by the next deliver calls, in order, before anything is posted.
    errors: list[BaseException] = field(default_factory=list)
    find_errors: list[BaseException] = field(default_factory=list)
    crash_after_post: bool = False
    finds: int = 0

    def deliver(self, message: Outgoing) -> Delivered:
        if self.errors:
            raise self.errors.pop(0)
        if self.reconcile != "none" and message.idempotency_key in self.held:
            return replace(self.held[message.idempotency_key], newly_published=False)
        self.posts.append(message)
        number = len(self.posts)
        result = Delivered(f"id-{number}", f"https://fake.example/{number}", T0, True)
        self.held[message.idempotency_key] = result
        if self.crash_after_post:
            self.crash_after_post = False
            raise Crash
        return result

    def find(self, idempotency_key: str) -> Delivered | None:
        self.finds += 1
        if self.find_errors:
            raise self.find_errors.pop(0)
        if self.reconcile != "lookup":
            return None
        found = self.held.get(idempotency_key)
        return replace(found, newly_published=False) if found else None


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


MESSAGE = Outgoing("post-1:fake", "hello world")


def deliverer(clock: Clock | None = None, **policy: Any) -> Deliverer:
    return Deliverer(RetryPolicy(**policy), clock=clock or Clock(), rand=lambda: 0.5)


def run_once(d: Deliverer, delivery: Delivery, channel: FakeChannel) -> Delivery:
    """What a caller does: persist "sending", then send and persist the result."""
    return d.send(d.begin(delivery), channel, MESSAGE)


def test_a_delivery_goes_pending_sending_delivered() -> None:
    channel = FakeChannel()
    d = deliverer()
    delivery = new_delivery("post-1:fake", "fake", T0)
    assert delivery.state == "pending"
    assert delivery.is_due(T0)
    sending = d.begin(delivery)
    assert (sending.state, sending.attempts) == ("sending", 1)
    done = d.send(sending, channel, MESSAGE)
    assert done.state == "delivered"
    assert (done.channel_item_id, done.url, done.newly_published) == (
        "id-1",
        "https://fake.example/1",
        True,
    )
    assert done.finished
    assert [m.text for m in channel.posts] == ["hello world"]


def test_rate_limited_waits_at_least_retry_after_then_delivers() -> None:
    clock = Clock()
    channel = FakeChannel(errors=[ChannelUnavailable("429 slow down", retry_after=120)])
    d = deliverer(clock, base_delay=1)
    delivery = run_once(d, new_delivery("post-1:fake", "fake", T0), channel)
    assert delivery.state == "pending"
    assert delivery.reason == "429 slow down"
    assert delivery.next_attempt_at == T0 + timedelta(seconds=120)
    assert not delivery.is_due(T0 + timedelta(seconds=119))
    with pytest.raises(InvalidTransition, match="due pending"):
        d.begin(delivery)
    clock.now = T0 + timedelta(seconds=120)
    done = run_once(d, delivery, channel)
    assert (done.state, done.attempts, done.reason) == ("delivered", 2, "")
    assert len(channel.posts) == 1


def test_backoff_doubles_is_capped_and_jittered_within_bounds() -> None:
    policy = RetryPolicy(base_delay=2, max_delay=30, jitter=0.25)
    assert [policy.delay(n, None, 0.5) for n in (1, 2, 3, 4, 5)] == [2, 4, 8, 16, 30]
    assert policy.delay(3, None, 0.0) == pytest.approx(6.0)
    assert policy.delay(3, None, 0.999999) == pytest.approx(10.0, rel=1e-5)
    assert policy.delay(1, 60, 0.5) == 60
    with pytest.raises(ValueError, match="jitter"):
        RetryPolicy(jitter=1.5)


def test_retries_are_bounded_then_failed_with_the_last_reason() -> None:
    clock = Clock()
    channel = FakeChannel(errors=[ChannelUnavailable(f"503 try {n}") for n in range(3)])
    d = deliverer(clock, max_attempts=3, base_delay=1)
    delivery = new_delivery("post-1:fake", "fake", T0)
    for _ in range(3):
        delivery = run_once(d, delivery, channel)
        assert delivery.next_attempt_at is not None or delivery.state == "failed"
        clock.now = delivery.next_attempt_at or clock.now
    assert delivery.state == "failed"
    assert delivery.reason == "gave up after 3 attempts: 503 try 2"
    assert channel.posts == []


def test_a_rejection_fails_at_once_naming_the_field() -> None:
    channel = FakeChannel(errors=[ChannelRejected("status is too long", field="text")])
    delivery = run_once(deliverer(), new_delivery("post-1:fake", "fake", T0), channel)
    assert (delivery.state, delivery.reason, delivery.reason_field) == (
        "failed",
        "status is too long",
        "text",
    )
    assert delivery.attempts == 1


def test_a_channel_error_fails_without_a_field() -> None:
    channel = FakeChannel(errors=[ChannelError("account suspended")])
    delivery = run_once(deliverer(), new_delivery("post-1:fake", "fake", T0), channel)
    assert (delivery.state, delivery.reason, delivery.reason_field) == (
        "failed",
        "account suspended",
        "",
    )


def test_a_message_that_does_not_fit_fails_before_reaching_the_channel() -> None:
    channel = FakeChannel()
    d = deliverer()
    long = Outgoing("post-1:fake", "x" * 21)
    delivery = d.send(d.begin(new_delivery("post-1:fake", "fake", T0)), channel, long)
    assert delivery.state == "failed"
    assert delivery.reason_field == "text"
    assert "at most 20" in delivery.reason
    assert channel.posts == []


@pytest.mark.parametrize(
    ("reconcile", "expected"),
    [("none", "needs-check"), ("idempotency-key", "pending"), ("lookup", "pending")],
)
def test_a_timeout_that_may_have_delivered_is_checked_only_where_the_channel_cannot_dedupe(
    reconcile: Reconcile, expected: DeliveryState
) -> None:
    channel = FakeChannel(
        reconcile=reconcile, errors=[ChannelUnavailable("read timed out", maybe_delivered=True)]
    )
    delivery = run_once(deliverer(), new_delivery("post-1:fake", "fake", T0), channel)
    assert delivery.state == expected
    assert "read timed out" in delivery.reason


@pytest.mark.parametrize(
    ("reconcile", "expected"), [("none", "needs-check"), ("lookup", "pending")]
)
def test_an_unexpected_adapter_error_is_treated_as_an_interrupted_send(
    reconcile: Reconcile, expected: DeliveryState
) -> None:
    channel = FakeChannel(reconcile=reconcile, errors=[KeyError("id")])
    delivery = run_once(deliverer(), new_delivery("post-1:fake", "fake", T0), channel)
    assert delivery.state == expected
    assert delivery.reason == "unexpected KeyError: 'id'"


@pytest.mark.parametrize(
    ("reconcile", "decision"),
    [("lookup", "look"), ("idempotency-key", "resend"), ("none", "needs-check")],
)
def test_restart_decision_by_reconcile_mode(reconcile: Reconcile, decision: str) -> None:
    assert restart_decision(reconcile) == decision


class Store:
    """The caller's persistence: only what was saved survives a crash."""

    def __init__(self) -> None:
        self.saved: dict[tuple[str, str], Delivery] = {}

    def save(self, delivery: Delivery) -> Delivery:
        self.saved[delivery.key] = delivery
        return delivery


def publish_until_crash(store: Store, channel: FakeChannel) -> None:
    d = deliverer()
    delivery = store.save(new_delivery("post-1:fake", "fake", T0))
    sending = store.save(d.begin(delivery))
    with pytest.raises(Crash):
        store.save(d.send(sending, channel, MESSAGE))


def restart_and_finish(store: Store, channel: FakeChannel) -> Delivery:
    """A new process: recover what was sending, then deliver whatever is due."""
    d = deliverer()
    delivery = store.saved[("post-1:fake", "fake")]
    if delivery.state == "sending":
        delivery = store.save(d.recover(delivery, channel))
    if delivery.is_due(T0):
        delivery = store.save(d.send(store.save(d.begin(delivery)), channel, MESSAGE))
    return delivery


def test_crash_after_send_on_a_lookup_channel_finds_it_and_never_resends() -> None:
    store, channel = Store(), FakeChannel(reconcile="lookup", crash_after_post=True)
    publish_until_crash(store, channel)
    assert store.saved[("post-1:fake", "fake")].state == "sending"
    delivery = restart_and_finish(store, channel)
    assert (delivery.state, delivery.channel_item_id, delivery.newly_published) == (
        "delivered",
        "id-1",
        False,
    )
    assert channel.finds == 1
    assert len(channel.posts) == 1


def test_crash_before_the_send_arrived_on_a_lookup_channel_sends_it_once() -> None:
    store, channel = Store(), FakeChannel(reconcile="lookup", errors=[Crash()])
    publish_until_crash(store, channel)
    delivery = restart_and_finish(store, channel)
    assert (delivery.state, delivery.attempts, delivery.newly_published) == (
        "delivered",
        2,
        True,
    )
    assert len(channel.posts) == 1


def test_crash_after_send_on_an_idempotency_key_channel_resends_with_the_same_key() -> None:
    store, channel = Store(), FakeChannel(reconcile="idempotency-key", crash_after_post=True)
    publish_until_crash(store, channel)
    delivery = restart_and_finish(store, channel)
    assert (delivery.state, delivery.channel_item_id, delivery.newly_published) == (
        "delivered",
        "id-1",
        False,
    )
    assert channel.finds == 0
    assert len(channel.posts) == 1


def test_crash_after_send_on_a_channel_without_reconcile_needs_a_check_not_a_resend() -> None:
    store, channel = Store(), FakeChannel(reconcile="none", crash_after_post=True)
    publish_until_crash(store, channel)
    delivery = restart_and_finish(store, channel)
    assert delivery.state == "needs-check"
    assert "cannot be asked" in delivery.reason
    assert len(channel.posts) == 1
    # A person found it there: recorded as delivered, still posted once.
    confirmed = confirm_delivered(delivery, T0, "id-1", "https://fake.example/1")
    assert (confirmed.state, confirmed.url) == ("delivered", "https://fake.example/1")


def test_a_lookup_the_channel_cannot_answer_keeps_it_sending_for_later() -> None:
    clock = Clock()
    channel = FakeChannel(
        reconcile="lookup", find_errors=[ChannelUnavailable("502 bad gateway", retry_after=30)]
    )
    d = deliverer(clock)
    sending = d.begin(new_delivery("post-1:fake", "fake", T0))
    later = d.recover(sending, channel)
    assert later.state == "sending"
    assert later.next_attempt_at == T0 + timedelta(seconds=30)
    assert "502" in later.reason
    assert d.recover(later, channel).state == "pending"


def test_a_lookup_the_channel_refuses_needs_a_check() -> None:
    channel = FakeChannel(reconcile="lookup", find_errors=[ChannelRejected("bad credentials")])
    d = deliverer()
    recovered = d.recover(d.begin(new_delivery("post-1:fake", "fake", T0)), channel)
    assert recovered.state == "needs-check"
    assert "bad credentials" in recovered.reason


def test_an_unexpected_error_in_a_lookup_needs_a_check_instead_of_raising() -> None:
    """An adapter bug on an odd answer must not stop every later recovery at this one."""
    channel = FakeChannel(reconcile="lookup", find_errors=[KeyError("records")])
    d = deliverer()
    recovered = d.recover(d.begin(new_delivery("post-1:fake", "fake", T0)), channel)
    assert recovered.state == "needs-check"
    assert "unexpectedly" in recovered.reason and "records" in recovered.reason


def test_a_crash_loop_ends_failed() -> None:
    channel = FakeChannel(reconcile="idempotency-key")
    d = deliverer(max_attempts=2)
    delivery = new_delivery("post-1:fake", "fake", T0)
    for _ in range(2):
        delivery = d.recover(d.begin(delivery), channel)
    assert delivery.state == "failed"
    assert "interrupted while sending too many times" in delivery.reason


def failed_delivery() -> Delivery:
    return Delivery("post-1:fake", "fake", "failed", attempts=6, reason="gave up", updated_at=T0)


def test_retry_from_failed_is_due_now_with_a_fresh_budget_and_delivers() -> None:
    channel = FakeChannel()
    again = retry(failed_delivery(), T0)
    assert (again.state, again.attempts, again.reason, again.is_due(T0)) == (
        "pending",
        0,
        "",
        True,
    )
    assert run_once(deliverer(), again, channel).state == "delivered"


def test_cancel_from_needs_check_keeps_the_reason() -> None:
    checking = replace(failed_delivery(), state="needs-check", reason="interrupted")
    cancelled = cancel(checking, T0)
    assert (cancelled.state, cancelled.reason, cancelled.finished) == (
        "cancelled",
        "interrupted",
        True,
    )
    assert cancel(failed_delivery(), T0, "editor withdrew it").reason == "editor withdrew it"


@pytest.mark.parametrize("state", ["pending", "sending", "delivered", "cancelled"])
def test_retry_and_cancel_are_refused_outside_failed_and_needs_check(
    state: DeliveryState,
) -> None:
    delivery = replace(failed_delivery(), state=state)
    with pytest.raises(InvalidTransition) as refused:
        retry(delivery, T0)
    assert str(refused.value) == (
        f"cannot retry delivery 'post-1:fake' on channel 'fake': it is {state}; "
        "only failed or needs-check deliveries can be retried"
    )
    with pytest.raises(InvalidTransition, match=f"it is {state}; only failed or needs-check"):
        cancel(delivery, T0)


def test_operations_refuse_the_wrong_state() -> None:
    d, channel = deliverer(), FakeChannel()
    pending = new_delivery("post-1:fake", "fake", T0)
    with pytest.raises(InvalidTransition, match="only sending deliveries can be sent"):
        d.send(pending, channel, MESSAGE)
    with pytest.raises(InvalidTransition, match="only sending deliveries can be recovered"):
        d.recover(pending, channel)
    with pytest.raises(InvalidTransition, match="only pending deliveries can be begun"):
        d.begin(failed_delivery())
    with pytest.raises(InvalidTransition, match="only needs-check"):
        confirm_delivered(failed_delivery(), T0)


def test_a_message_or_channel_that_does_not_match_the_delivery_is_refused() -> None:
    d = deliverer()
    sending = d.begin(new_delivery("post-1:fake", "fake", T0))
    with pytest.raises(ValueError, match="idempotency_key"):
        d.send(sending, FakeChannel(), Outgoing("post-2:fake", "hi"))
    with pytest.raises(ValueError, match="channel: 'other'"):
        d.send(sending, FakeChannel(name="other"), MESSAGE)
    with pytest.raises(ValueError, match="channel: is required"):
        new_delivery("k", " ", T0)


def test_a_delivery_round_trips_through_its_dict() -> None:
    delivered = run_once(deliverer(), new_delivery("post-1:fake", "fake", T0), FakeChannel())
    assert Delivery.from_dict(delivered.to_dict()) == delivered
    pending = replace(failed_delivery(), state="pending", next_attempt_at=T0)
    assert Delivery.from_dict(pending.to_dict()) == pending
    assert set(DELIVERY_STATES) == {
        "pending",
        "sending",
        "delivered",
        "failed",
        "needs-check",
        "cancelled",
    }


def test_a_bad_stored_delivery_names_its_field() -> None:
    good = failed_delivery().to_dict()
    with pytest.raises(ValueError, match="state: 'lost'"):
        Delivery.from_dict({**good, "state": "lost"})
    with pytest.raises(ValueError, match="next_attempt_at: 'soon'"):
        Delivery.from_dict({**good, "next_attempt_at": "soon"})
    with pytest.raises(ValueError, match="channel: is required"):
        Delivery.from_dict({**good, "channel": ""})


def test_run_saves_sending_before_the_channel_sees_the_message() -> None:
    saved: list[DeliveryState] = []
    channel = FakeChannel()

    class Watching(FakeChannel):
        def deliver(self, message: Outgoing) -> Delivered:
            # At the moment of sending, "sending" is already stored.
            assert saved == ["sending"]
            return channel.deliver(message)

    d = deliverer()
    done = d.run(
        new_delivery("post-1:fake", "fake", T0),
        Watching(),
        MESSAGE,
        lambda delivery: saved.append(delivery.state),
    )
    assert done.state == "delivered"
    assert saved == ["sending", "delivered"]


@pytest.mark.parametrize(
    ("reconcile", "states"),
    [
        ("lookup", ["delivered"]),
        ("idempotency-key", ["pending", "sending", "delivered"]),
        ("none", ["needs-check"]),
    ],
)
def test_run_recovers_an_interrupted_delivery_first(
    reconcile: Reconcile, states: list[DeliveryState]
) -> None:
    store, channel = Store(), FakeChannel(reconcile=reconcile, crash_after_post=True)
    publish_until_crash(store, channel)
    saved: list[DeliveryState] = []
    done = deliverer().run(
        store.saved[("post-1:fake", "fake")], channel, MESSAGE, lambda d: saved.append(d.state)
    )
    assert saved == states
    assert done.state == states[-1]
    assert len(channel.posts) == 1


def test_run_leaves_a_delivery_that_is_not_due_alone() -> None:
    clock = Clock()
    waiting = replace(new_delivery("post-1:fake", "fake", T0), next_attempt_at=T0 + timedelta(1))
    saved: list[Delivery] = []
    assert deliverer(clock).run(waiting, FakeChannel(), MESSAGE, saved.append) == waiting
    assert deliverer(clock).run(failed_delivery(), FakeChannel(), MESSAGE, saved.append) == (
        failed_delivery()
    )
    assert saved == []
