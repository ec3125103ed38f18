"""Mergeable window aggregations with JSON-serialisable state.

Every aggregation has ``init() -> state``, ``add(state, x) -> state``, ``merge(a, b) -> state``
and ``result(state) -> float | None``. Partial states from different partitions (and workers)
merge into the exact total, which is what lets several workers share a KPI.
States are plain lists/dicts so they go into changelogs as JSON.

``percentile`` uses a DDSketch-style log-bucket sketch: every reported quantile is within
±1 % (relative) of a value of the true sample at that rank (``RELATIVE_ACCURACY``).

``distinct`` is exact up to ``exact_up_to`` values (a set of 64-bit blake2b hashes of the values), then a
HyperLogLog sketch of 4096 registers (``DISTINCT_STANDARD_ERROR`` = 1.6 % relative standard error), so a state
stays a few KB whatever the cardinality. Its state is a function of the set of values alone: an exact set when
it has at most ``exact_up_to`` values, else the sketch of all of them, whatever the split over partitions.

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

import base64
import hashlib
import math
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DISTINCT_EXACT_UP_TO", "DISTINCT_PRECISION", "DISTINCT_STANDARD_ERROR", "RELATIVE_ACCURACY", "Aggregation",
    "hll_estimate", "make_aggregation", "to_json_state", "valid_state",
]

State = Any
RELATIVE_ACCURACY = 0.01
_GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
_LOG_GAMMA = math.log(_GAMMA)
_MIN_POSITIVE = 1e-9

DISTINCT_EXACT_UP_TO = 1000        # default: values kept exactly per series, window and partition
DISTINCT_PRECISION = 12            # HyperLogLog registers = 2**12 = 4096 (one byte each before compression)
DISTINCT_STANDARD_ERROR = 1.04 / math.sqrt(2**DISTINCT_PRECISION)    # 1.625 % relative, above exact_up_to
_HLL_M = 1 << DISTINCT_PRECISION
_HLL_Q = 64 - DISTINCT_PRECISION
_HLL_MASK = (1 << _HLL_Q) - 1


def _identity(state: State) -> State:
    return state


@dataclass(frozen=True, slots=True)
class Aggregation:
    """One measure's aggregation functions; ``empty`` is the result of a window with no events."""

    kind: str
    init: Callable[[], State]
    add: Callable[[State, Any], State]
    merge: Callable[[State, State], State]
    result: Callable[[State], float | None]
    q: float | None = None
    load: Callable[[Any], State] = _identity       # changelog JSON -> working state


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


def _hash64(x: Any) -> int:
    # Deterministic across processes and restarts (Python's hash() of a str is salted per process).
    return int.from_bytes(hashlib.blake2b(str(x).encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big")


def _insert(regs: bytearray, h: int) -> None:
    # HyperLogLog: the top p bits pick the register, which keeps the highest rank (leading zeros + 1) of the rest.
    rank = _HLL_Q + 1 - (h & _HLL_MASK).bit_length()
    idx = h >> _HLL_Q
    if rank > regs[idx]:
        regs[idx] = rank


def _sketch(hashes: set[int]) -> bytearray:
    regs = bytearray(_HLL_M)
    for h in hashes:
        _insert(regs, h)
    return regs


def _sigma(x: float) -> float:
    if x == 1.0:
        return math.inf
    y, z = 1.0, x
    while True:
        x *= x
        z_old, z = z, z + x * y
        y += y
        if z == z_old:
            return z


def _tau(x: float) -> float:
    if x in (0.0, 1.0):
        return 0.0
    y, z = 1.0, 1.0 - x
    while True:
        x = math.sqrt(x)
        y *= 0.5
        z_old, z = z, z - (1.0 - x) ** 2 * y
        if z == z_old:
            return z / 3


def hll_estimate(regs: bytes | bytearray) -> float:
    """Cardinality estimate of HyperLogLog registers: Ertl's improved raw estimator (arXiv:1702.01284,
    algorithm 6), unbiased from a handful of values to 2^64 without empirical bias tables."""
    counts = [0] * (_HLL_Q + 2)
    for r in regs:
        counts[r] += 1
    z = _HLL_M * _tau(1.0 - counts[_HLL_Q + 1] / _HLL_M)
    for k in range(_HLL_Q, 0, -1):
        z = 0.5 * (z + counts[k])
    z += _HLL_M * _sigma(counts[0] / _HLL_M)
    return _HLL_M * _HLL_M / (2 * math.log(2)) / z if math.isfinite(z) else 0.0


def _load_distinct(s: Any) -> set[int] | bytearray:
    """A distinct state in its working form: a set of 64-bit hashes (exact) or HLL registers (sketch)."""
    if isinstance(s, set | bytearray):
        return s
    if isinstance(s, list):                       # written before sketches: the values themselves
        return {_hash64(v) for v in s}
    if "e" in s:
        raw = base64.b64decode(s["e"])
        return set(struct.unpack(f">{len(raw) // 8}Q", raw))
    if s.get("p") != DISTINCT_PRECISION:
        raise ValueError(f"distinct sketch of precision {s.get('p')!r}, expected {DISTINCT_PRECISION}")
    regs = bytearray(zlib.decompress(base64.b64decode(s["r"])))
    if len(regs) != _HLL_M:
        raise ValueError(f"distinct sketch with {len(regs)} registers, expected {_HLL_M}")
    return regs


def _distinct(exact_up_to: int) -> Aggregation:
    # Exact up to `exact_up_to` values (a set of 64-bit hashes), then a HyperLogLog sketch. The state is a
    # function of the set of values alone, so any split over partitions merges to what one pass gives.
    last: list[Any] = [None, 0]

    def bound(hashes: set[int]) -> set[int] | bytearray:
        return hashes if len(hashes) <= exact_up_to else _sketch(hashes)

    def add(s: Any, x: Any) -> set[int] | bytearray:
        if x is not last[0]:            # one event's value is added to each of its series: hash it once
            last[0], last[1] = x, _hash64(x)
        h = last[1]
        st = s if isinstance(s, set | bytearray) else _load_distinct(s)
        if isinstance(st, bytearray):
            _insert(st, h)
            return st
        st.add(h)
        return bound(st) if len(st) > exact_up_to else st

    def merge(a: Any, b: Any) -> set[int] | bytearray:      # never changes a or b
        x, y = _load_distinct(a), _load_distinct(b)
        if isinstance(x, set) and isinstance(y, set):
            return bound(x | y)
        if isinstance(x, set):
            x, y = y, x
        assert isinstance(x, bytearray)
        if isinstance(y, bytearray):
            return bytearray(map(max, x, y))
        out = bytearray(x)
        for h in y:
            _insert(out, h)
        return out

    def result(s: Any) -> float:
        st = _load_distinct(s)
        if isinstance(st, set):
            return float(len(st))
        # A sketch holds more than exact_up_to values, so an estimate is never at or below it.
        return float(max(round(hll_estimate(st)), exact_up_to + 1))

    def load(s: Any) -> Any:
        st = _load_distinct(s)
        return bound(st) if isinstance(st, set) else st

    return Aggregation("distinct", set, add, merge, result, load=load)


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


def make_aggregation(kind: str, q: float | None = None, *, exact_up_to: int = DISTINCT_EXACT_UP_TO) -> Aggregation:
    """Aggregation for a measure kind (``count``, ``sum``, ``avg``, ``min``, ``max``, ``distinct``,
    ``last``, ``percentile``); ``exact_up_to`` is where ``distinct`` switches from a set to a sketch."""
    if kind == "count":
        return _count()
    if kind in ("sum", "avg"):
        return _sum(kind)
    if kind in ("min", "max"):
        return _extreme(kind)
    if kind == "distinct":
        return _distinct(exact_up_to)
    if kind == "last":
        return _last()
    if kind == "percentile":
        if q is None:
            raise ValueError("percentile needs q")
        return _percentile(q)
    raise ValueError(f"unknown aggregation {kind!r}")


def to_json_state(state: State) -> Any:
    """Make a state JSON-serialisable: a distinct set becomes ``{"e": base64 of its sorted 64-bit hashes}``
    (8 bytes a value), a distinct sketch ``{"p": precision, "r": base64 of the zlib-compressed registers}``
    (at most 5.5 KB, typically 2-3 KB, for any number of values)."""
    if isinstance(state, set):
        return {"e": base64.b64encode(struct.pack(f">{len(state)}Q", *sorted(state))).decode()}
    if isinstance(state, bytearray):
        return {"p": DISTINCT_PRECISION, "r": base64.b64encode(zlib.compress(bytes(state), 9)).decode()}
    return state


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
    if kind == "distinct":      # an exact set {"e": base64}, a sketch {"p", "r"}, or a list of values (older records)
        if isinstance(state, dict):
            if not (set(state) == {"e"} and isinstance(state["e"], str)
                    or set(state) == {"p", "r"} and isinstance(state["r"], str)):
                return False
            try:
                _load_distinct(state)
            except (ValueError, TypeError, struct.error, zlib.error):    # binascii.Error is a ValueError
                return False
            return "r" in state or len(state["e"]) % 4 == 0
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
