"""bot.flood: one polite warning, then silence, then normal service once the window has passed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.flood import FloodGuard, Verdict


def test_warn_once_then_drop_then_ok_after_the_window() -> None:
    guard = FloodGuard(limit_per_minute=3)
    assert [guard.hit("a", t) for t in (0.0, 1.0, 2.0)] == ["ok", "ok", "ok"]
    assert guard.hit("a", 3.0) == "warn"
    assert [guard.hit("a", t) for t in (4.0, 5.0, 30.0, 59.9)] == ["drop"] * 4
    assert guard.hit("a", 60.0) == "ok"  # the message of t=0 has left the window
    assert guard.hit("a", 60.5) == "warn"  # t=1 and t=2 are still in it: a new episode, a new warning
    assert guard.hit("a", 61.0) == "ok"
    assert guard.hit("a", 62.0) == "ok"
    assert guard.hit("a", 62.5) == "warn"


def test_the_window_slides_rather_than_resets() -> None:
    guard = FloodGuard(limit_per_minute=2)
    assert guard.hit("a", 0.0) == "ok"
    assert guard.hit("a", 50.0) == "ok"
    assert guard.hit("a", 70.0) == "ok"  # t=0 expired, t=50 still counts
    assert guard.hit("a", 80.0) == "warn"
    assert guard.hit("a", 110.0) == "ok"  # t=50 expired at 110


def test_dropped_messages_do_not_extend_the_penalty() -> None:
    guard = FloodGuard(limit_per_minute=1)
    assert guard.hit("a", 0.0) == "ok"
    assert guard.hit("a", 1.0) == "warn"
    for t in range(2, 60):
        assert guard.hit("a", float(t)) == "drop"
    assert guard.hit("a", 60.0) == "ok"


def test_keys_are_independent() -> None:
    guard = FloodGuard(limit_per_minute=1)
    assert guard.hit("a", 0.0) == "ok"
    assert guard.hit("a", 0.1) == "warn"
    assert guard.hit("b", 0.2) == "ok"
    assert guard.hit("a", 0.3) == "drop"
    assert guard.hit("b", 0.4) == "warn"


def test_idle_keys_are_forgotten() -> None:
    guard = FloodGuard(limit_per_minute=5)
    for i in range(1000):
        guard.hit(f"user{i}", i * 0.01)
    assert len(guard) == 1000
    guard.hit("late", 200.0)
    assert len(guard) == 1


def test_number_of_keys_is_capped() -> None:
    guard = FloodGuard(limit_per_minute=5, max_keys=100)
    for i in range(10_000):
        assert guard.hit(f"user{i}", 0.0) == "ok"
        assert len(guard) <= 100
    assert len(guard) == 100


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        FloodGuard(0)


@given(
    st.integers(1, 5),
    st.lists(st.tuples(st.sampled_from("abc"), st.floats(0, 5, allow_nan=False)), max_size=200),
)
def test_never_more_than_the_limit_in_any_window(limit: int, steps: list[tuple[str, float]]) -> None:
    """Whatever the traffic, at most `limit` messages per key get "ok" in any 60 s span, and each
    run of refusals starts with exactly one "warn"."""
    guard = FloodGuard(limit)
    now = 0.0
    allowed: dict[str, list[float]] = {}
    last: dict[str, Verdict] = {}
    for key, gap in steps:
        now += gap
        verdict = guard.hit(key, now)
        if verdict == "ok":
            allowed.setdefault(key, []).append(now)
            recent = [t for t in allowed[key] if t > now - 60]
            assert len(recent) <= limit
        elif verdict == "drop":
            assert last.get(key) in ("warn", "drop")
        else:
            assert last.get(key) != "warn" and last.get(key) != "drop"
        last[key] = verdict
