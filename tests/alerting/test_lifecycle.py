"""The alert state machine: examples and hypothesis properties."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from alerting.lifecycle import AlertState, advance, fingerprint, new_state

ALLOWED = {
    ("inactive", "pending"),
    ("inactive", "firing"),
    ("pending", "firing"),
    ("pending", "inactive"),
    ("firing", "resolved"),
    ("resolved", "pending"),
    ("resolved", "firing"),
    ("pending", "resolved"),  # only back to a resolution not yet notified
}


def fresh() -> AlertState:
    return new_state("orders", "low", {"region": "east"}, {"kpi": "orders"}, "warning")


def test_fingerprint_is_stable_and_distinguishes_series() -> None:
    assert fingerprint("orders", "low", {"a": "1", "b": "2"}) == fingerprint(
        "orders", "low", {"b": "2", "a": "1"}
    )
    assert fingerprint("orders", "low", {}) != fingerprint("orders", "low", {"a": "1"})
    assert fingerprint("orders", "low", {}) != fingerprint("orders", "high", {})
    assert fresh().fingerprint == fingerprint("orders", "low", {"region": "east"})


def test_for_then_keep_firing() -> None:
    s = advance(fresh(), True, now=0, for_s=120, keep_s=60)
    assert s.state == "pending" and s.active_since == 0
    s = advance(s, True, now=60, for_s=120, keep_s=60)
    assert s.state == "pending"
    s = advance(s, True, now=120, for_s=120, keep_s=60)
    assert (s.state, s.starts_at) == ("firing", 120)
    s = advance(s, False, now=150, for_s=120, keep_s=60)
    assert s.state == "firing"  # kept firing
    s = advance(s, True, now=170, for_s=120, keep_s=60)  # flaps back: same incident
    assert (s.state, s.starts_at) == ("firing", 120)
    s = advance(s, False, now=200, for_s=120, keep_s=60)
    assert s.state == "firing"
    s = advance(s, False, now=230, for_s=120, keep_s=60)
    assert (s.state, s.ends_at) == ("resolved", 230)


def test_pending_that_clears_never_fires() -> None:
    s = advance(fresh(), True, now=0, for_s=120, keep_s=0)
    s = advance(s, False, now=60, for_s=120, keep_s=0)
    assert s.state == "inactive" and s.active_since is None
    s = advance(s, True, now=120, for_s=120, keep_s=0)
    assert s.state == "pending" and s.active_since == 120  # the `for` clock restarts


def test_flap_after_resolution_keeps_the_resolution() -> None:
    s = advance(fresh(), True, now=0, for_s=0, keep_s=0)
    s = advance(s, False, now=60, for_s=120, keep_s=0)
    assert (s.state, s.starts_at, s.ends_at) == ("resolved", 0, 60)
    s = advance(s, True, now=120, for_s=120, keep_s=0)
    assert (s.state, s.starts_at, s.ends_at) == ("pending", 0, 60)  # still the old incident's resolution
    assert advance(s, False, now=180, for_s=120, keep_s=0).state == "resolved"
    s = advance(s, True, now=240, for_s=120, keep_s=0)
    assert (s.state, s.starts_at, s.ends_at) == ("firing", 240, None)  # a new incident


def test_round_trip() -> None:
    s = advance(fresh(), True, now=5, for_s=0, keep_s=0)
    assert AlertState.from_dict(s.to_dict()) == s
    assert AlertState.from_dict({**s.to_dict(), "some_future_field": 1}) == s


steps = st.lists(st.tuples(st.floats(0, 300, allow_nan=False), st.booleans()), min_size=1, max_size=40)


@settings(max_examples=300, deadline=None)
@given(steps=steps, for_s=st.sampled_from([0.0, 60.0, 120.0]), keep_s=st.sampled_from([0.0, 60.0, 300.0]))
def test_lifecycle_invariants(steps: list[tuple[float, bool]], for_s: float, keep_s: float) -> None:
    s, now, run_start = fresh(), 0.0, None
    for dt, active in steps:
        now += dt
        prev = s
        s = advance(s, active, now=now, for_s=for_s, keep_s=keep_s)
        if s.state != prev.state:
            assert (prev.state, s.state) in ALLOWED
            if (prev.state, s.state) == ("pending", "resolved"):
                assert prev.ends_at is not None
        if active:
            run_start = now if run_start is None else run_start
            assert s.state in ("pending", "firing")
        else:
            run_start = None
            assert s.state != "pending"
            if keep_s == 0:
                assert s.state in ("inactive", "resolved")
        if s.state == "firing":
            assert s.starts_at is not None and s.starts_at <= now
            if prev.state != "firing":  # it just fired: the condition held for `for` without a break
                assert run_start is not None and now - run_start >= for_s
        if s.state == "resolved" and prev.state == "firing":
            assert s.ends_at == now and s.last_active_at is not None and now - s.last_active_at >= keep_s
