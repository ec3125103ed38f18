"""Mergeable window aggregations with JSON-serialisable state.

Every aggregation has ``init() -> state``, ``add(state, x) -> state``, ``merge(a, b) -> state``
and ``result(state) -> float | None``. Partial states from different partitions (and workers)
merge into the exact total, which is what lets several workers share a KPI.
States are plain lists/dicts so they go into changelogs as JSON.

``percentile`` uses a DDSketch-style log-bucket sketch: every reported quantile is within
±1 % (relative) of a value of the true sample at that rank (``RELATIVE_ACCURACY``).

Examples
--------
>>> agg = make_aggregation("avg")
>>> s = agg.init()
>>> for x in (1.0, 2.0, 6.0):
...     s = agg.add(s, x)
>>> agg.result(s)
3.0
>>> agg.result(agg.merge(s, agg.add(agg.init(), 11.0)))
5.0
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["RELATIVE_ACCURACY", "Aggregation", "make_aggregation", "valid_state"]

State = Any
RELATIVE_ACCURACY = 0.01
_GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
_LOG_GAMMA = math.log(_GAMMA)
_MIN_POSITIVE = 1e-9


@dataclass(frozen=True, slots=True)
class Aggregation:
    """One measure's aggregation functions; ``empty`` is the result of a window with no events."""

    kind: str
    init: Callable[[], State]
    add: Callable[[State, Any], State]
    merge: Callable[[State, State], State]
    result: Callable[[State], float | None]
    q: float | None = None


def _count() -> Aggregation:
    def add(s: list[int], _x: Any) -> list[int]:
        s[0] += 1
        return s

    return Aggregation("count", lambda: [0], add, lambda a, b: [a[0] + b[0]], lambda s: float(s[0]))


def _sum(kind: str) -> Aggregation:
    def add(s: list[float], x: float) -> list[float]:
        s[0] += 1
        s[1] += x
        return s

    def merge(a: list[float], b: list[float]) -> list[float]:
        return [a[0] + b[0], a[1] + b[1]]

    if kind == "sum":
        return Aggregation("sum", lambda: [0, 0.0], add, merge, lambda s: float(s[1]))
    return Aggregation("avg", lambda: [0, 0.0], add, merge, lambda s: s[1] / s[0] if s[0] else None)


def _extreme(kind: str) -> Aggregation:
    pick = min if kind == "min" else max

    def add(s: list[Any], x: float) -> list[Any]:
        s[1] = x if s[0] == 0 else pick(s[1], x)
        s[0] += 1
        return s

    def merge(a: list[Any], b: list[Any]) -> list[Any]:
        if not a[0]:
            return list(b)
        if not b[0]:
            return list(a)
        return [a[0] + b[0], pick(a[1], b[1])]

    return Aggregation(kind, lambda: [0, None], add, merge, lambda s: float(s[1]) if s[0] else None)


def _distinct() -> Aggregation:
    # Exact distinct count: the state is the set of values (as strings, sorted when serialised).
    def add(s: list[str] | set[str], x: Any) -> set[str]:
        st = s if isinstance(s, set) else set(s)
        st.add(str(x))
        return st

    def merge(a: Any, b: Any) -> set[str]:
        return set(a) | set(b)

    return Aggregation("distinct", set, add, merge, lambda s: float(len(s)))


def _last() -> Aggregation:
    # The value with the latest event time wins; state is [ts_ms, value] (ts -inf when empty).
    def add(s: list[Any], x: tuple[int, float]) -> list[Any]:
        if s[0] is None or x[0] >= s[0]:
            s[0], s[1] = x
        return s

    def merge(a: list[Any], b: list[Any]) -> list[Any]:
        if a[0] is None:
            return list(b)
        if b[0] is None:
            return list(a)
        return list(b) if b[0] >= a[0] else list(a)

    return Aggregation("last", lambda: [None, None], add, merge, lambda s: None if s[0] is None else float(s[1]))


def _percentile(q: float) -> Aggregation:
    # State: [count, zero_or_negative_count, {bucket_index: count}]; negatives are clamped to 0.
    def add(s: list[Any], x: float) -> list[Any]:
        s[0] += 1
        if x <= _MIN_POSITIVE:
            s[1] += 1
        else:
            key = str(math.ceil(math.log(x) / _LOG_GAMMA))
            buckets = s[2]
            buckets[key] = buckets.get(key, 0) + 1
        return s

    def merge(a: list[Any], b: list[Any]) -> list[Any]:
        buckets = dict(a[2])
        for k, v in b[2].items():
            buckets[k] = buckets.get(k, 0) + v
        return [a[0] + b[0], a[1] + b[1], buckets]

    def result(s: list[Any]) -> float | None:
        if not s[0]:
            return None
        rank = q / 100 * (s[0] - 1)
        seen = s[1]
        if rank < seen:
            return 0.0
        for key in sorted(s[2], key=int):
            seen += s[2][key]
            if seen > rank:
                return 2 * _GAMMA ** int(key) / (_GAMMA + 1)
        return 2 * _GAMMA ** max(int(k) for k in s[2]) / (_GAMMA + 1)

    return Aggregation("percentile", lambda: [0, 0, {}], add, merge, result, q=q)


def make_aggregation(kind: str, q: float | None = None) -> Aggregation:
    """Aggregation for a measure kind (``count``, ``sum``, ``avg``, ``min``, ``max``, ``distinct``,
    ``last``, ``percentile``)."""
    if kind == "count":
        return _count()
    if kind in ("sum", "avg"):
        return _sum(kind)
    if kind in ("min", "max"):
        return _extreme(kind)
    if kind == "distinct":
        return _distinct()
    if kind == "last":
        return _last()
    if kind == "percentile":
        if q is None:
            raise ValueError("percentile needs q")
        return _percentile(q)
    raise ValueError(f"unknown aggregation {kind!r}")


def to_json_state(state: State) -> Any:
    """Make a state JSON-serialisable (sets become sorted lists)."""
    return sorted(state) if isinstance(state, set) else state


def _count_ok(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _number_ok(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def valid_state(kind: str, state: Any) -> bool:
    """Whether ``state`` (as read back from JSON) has the shape ``kind``'s functions expect, with finite numbers.

    Stage 2 checks every partial with it, so merging can never raise on what the partials topic carries.

    >>> valid_state("sum", [2, 10.5]), valid_state("sum", [2, None]), valid_state("max", [0, None])
    (True, False, True)
    """
    if kind == "distinct":
        return isinstance(state, list | set) and all(isinstance(v, str) for v in state)
    if not isinstance(state, list):
        return False
    if kind == "count":
        return len(state) == 1 and _count_ok(state[0])
    if kind in ("sum", "avg"):
        return len(state) == 2 and _count_ok(state[0]) and _number_ok(state[1])
    if kind in ("min", "max"):
        return len(state) == 2 and _count_ok(state[0]) and (_number_ok(state[1]) if state[0] else state[1] is None)
    if kind == "last":
        return len(state) == 2 and ((state[0] is None and state[1] is None)
                                    or (_count_ok(state[0]) and _number_ok(state[1])))
    if kind == "percentile":
        return (len(state) == 3 and _count_ok(state[0]) and _count_ok(state[1]) and isinstance(state[2], dict)
                and all(isinstance(k, str) and k.lstrip("-").isdigit() and len(k) < 8 and _count_ok(v)
                        for k, v in state[2].items()))
    return False
