"""Deterministic ids: the same parts give the same id; order and boundaries matter."""

from __future__ import annotations

import uuid

from legation_core.ids import new_trace_id, stable_id


def test_stable_id_is_deterministic_uuid5() -> None:
    first = stable_id("mention", "plastics-treaty", "https://example.org/a")
    assert first == stable_id("mention", "plastics-treaty", "https://example.org/a")
    parsed = uuid.UUID(first)
    assert parsed.version == 5
    assert str(parsed) == first


def test_stable_id_is_order_sensitive() -> None:
    assert stable_id("a", "b") != stable_id("b", "a")


def test_stable_id_keeps_part_boundaries() -> None:
    assert stable_id("ab", "c") != stable_id("a", "bc")
    assert stable_id("abc") != stable_id("ab", "c")


def test_stable_id_differs_for_different_input() -> None:
    assert stable_id("x") != stable_id("y")
    assert len({stable_id(str(n)) for n in range(100)}) == 100


def test_new_trace_id_is_random_hex() -> None:
    ids = {new_trace_id() for _ in range(50)}
    assert len(ids) == 50
    for trace_id in ids:
        assert len(trace_id) == 32
        int(trace_id, 16)
