"""Catalog → compiled plans the engine runs: filters as closures, windows in milliseconds.

A KPI's ``state_key`` hashes everything that defines its numbers (source, filter, measure,
dimensions, window), so a changed definition starts fresh state instead of mixing old and new.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from catalog import Catalog, KpiSpec
from streams.aggregations import Aggregation, make_aggregation

__all__ = ["KpiPlan", "Plan", "RatioPlan", "SourcePlan", "compile_plan"]

EventFilter = Callable[[dict[str, Any]], bool]


@dataclass(frozen=True, slots=True)
class KpiPlan:
    name: str
    source: str
    kind: str
    field: str | None
    agg: Aggregation
    dims: tuple[str, ...]
    size_ms: int
    advance_ms: int
    grace_ms: int
    matches: EventFilter | None
    max_series: int
    state_key: str

    def window_starts(self, ts_ms: int) -> range:
        """Starts of every window containing ``ts_ms`` (one for tumbling, size/step for hopping)."""
        last = ts_ms - ts_ms % self.advance_ms
        return range(last - self.size_ms + self.advance_ms, last + 1, self.advance_ms)


@dataclass(frozen=True, slots=True)
class RatioPlan:
    name: str
    numerator: str
    denominator: str
    scale: float
    dims: tuple[str, ...]
    max_series: int


@dataclass(frozen=True, slots=True)
class SourcePlan:
    name: str
    topic: str
    time_field: str
    partitions: int
    kpis: tuple[KpiPlan, ...]
    dead_letter_unmatched: bool
    max_future_ms: int = 300_000         # events further ahead of the wall clock are `future_time`
    since_ms: int | None = None          # events before are `bad_time`; None: 30 days before the first start
    max_silence_s: float | None = None   # the catalog's max_silence (None: learned from the rate; 0: off)


@dataclass(frozen=True, slots=True)
class Plan:
    sources: tuple[SourcePlan, ...]
    kpis: dict[str, KpiPlan]
    ratios: dict[str, RatioPlan]
    groups: dict[str, str] = field(default_factory=dict)   # KPI name -> merge group (ratio-connected KPIs)
    timezone: str = "UTC"                                   # where target days/weeks/months begin

    def source_of(self, kpi: str) -> SourcePlan:
        src = self.kpis[kpi].source
        return next(s for s in self.sources if s.name == src)

    def sources_of(self) -> dict[str, frozenset[str]]:
        """KPI -> the sources it is computed from (a ratio: its numerator's and denominator's, through ratios of
        ratios)."""
        out: dict[str, frozenset[str]] = {name: frozenset({kp.source}) for name, kp in self.kpis.items()}

        def of(name: str, depth: int = 0) -> frozenset[str]:
            if name not in out:
                ratio = self.ratios.get(name)
                out[name] = frozenset() if ratio is None or depth > len(self.ratios) else (
                    of(ratio.numerator, depth + 1) | of(ratio.denominator, depth + 1))
            return out[name]

        for name in self.ratios:
            of(name)
        return out

    def with_partitions(self, counts: Mapping[str, int]) -> Plan:
        """The plan with the partition counts of the sources named in ``counts`` (source name -> count) replaced."""
        return replace(self, sources=tuple(replace(s, partitions=counts.get(s.name, s.partitions)) for s in self.sources))


def compile_plan(catalog: Catalog) -> Plan:
    """Compile a validated catalog."""
    kpis: dict[str, KpiPlan] = {}
    ratios: dict[str, RatioPlan] = {}
    for spec in catalog.kpis:
        if spec.ratio is not None:
            ratios[spec.name] = RatioPlan(spec.name, spec.ratio.numerator, spec.ratio.denominator,
                                          spec.ratio.scale, tuple(spec.dimensions), catalog.max_series(spec))
        else:
            kpis[spec.name] = _kpi_plan(catalog, spec)
    sources = []
    for name, src in catalog.sources.items():
        members = tuple(k for k in kpis.values() if k.source == name)
        if not members:
            continue
        # A source whose KPIs all select by a `kpi` field holds samples: unknown names are dead letters.
        samples = all(k.matches is not None and "kpi" in _filter_of(catalog, k.name) for k in members)
        sources.append(SourcePlan(name, src.topic, src.time_field, src.partitions, members, samples,
                                  max_future_ms=int(src.max_future * 1000),
                                  since_ms=None if src.since is None else int(src.since * 1000),
                                  max_silence_s=src.max_silence))
    return Plan(tuple(sources), kpis, ratios, _groups(kpis, ratios), timezone=catalog.defaults.timezone)


def _filter_of(catalog: Catalog, name: str) -> dict[str, Any]:
    return catalog.kpi(name).filter


def _kpi_plan(catalog: Catalog, spec: KpiSpec) -> KpiPlan:
    measure = spec.parsed_measure
    assert measure is not None and spec.source is not None
    window = catalog.window_of(spec)
    definition = json.dumps([spec.source, spec.filter, str(measure), spec.dimensions, window.model_dump()],
                            sort_keys=True, default=str)
    return KpiPlan(
        name=spec.name, source=spec.source, kind=measure.kind, field=measure.field,
        agg=make_aggregation(measure.kind, measure.q, exact_up_to=catalog.exact_up_to(spec)), dims=tuple(spec.dimensions),
        size_ms=int(window.size * 1000), advance_ms=int(window.advance * 1000), grace_ms=int(window.grace * 1000),
        matches=compile_filter(spec.filter), max_series=catalog.max_series(spec),
        state_key=hashlib.sha1(definition.encode()).hexdigest()[:10],
    )


def compile_filter(spec: dict[str, Any]) -> EventFilter | None:
    """Filter mapping → predicate. ``{status: success, amount: {gt: 0}, channel: {in: [app]}}``.

    >>> m = compile_filter({"status": "success", "amount": {"gt": 0}})
    >>> m({"status": "success", "amount": 5}), m({"status": "failed", "amount": 5}), m({"status": "success"})
    (True, False, False)
    """
    if not spec:
        return None
    checks = [_condition(name, cond) for name, cond in spec.items()]
    if len(checks) == 1:
        return checks[0]
    return lambda ev: all(check(ev) for check in checks)


def _condition(name: str, cond: Any) -> EventFilter:
    if not isinstance(cond, dict):
        return lambda ev: ev.get(name) == cond
    parts: list[EventFilter] = []
    for op, arg in cond.items():
        parts.append(_op(name, op, arg))
    return lambda ev: all(p(ev) for p in parts)


def _member(value: Any, values: set[Any]) -> bool:
    """``value in values``; a list or object in the event (unhashable) is in no set of scalars."""
    return isinstance(value, str | int | float | bool | None) and value in values


def _num(value: Any) -> float:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else math.nan


def _op(name: str, op: str, arg: Any) -> EventFilter:
    if op == "eq":
        return lambda ev: ev.get(name) == arg
    if op == "ne":
        return lambda ev: ev.get(name) != arg
    if op == "in":
        allowed = set(arg)
        return lambda ev: _member(ev.get(name), allowed)
    if op == "not_in":
        banned = set(arg)
        return lambda ev: not _member(ev.get(name), banned)
    if op == "exists":
        return lambda ev: (name in ev) == bool(arg)
    compare: dict[str, Callable[[float], bool]] = {
        "gt": lambda v: v > arg, "gte": lambda v: v >= arg, "lt": lambda v: v < arg, "lte": lambda v: v <= arg,
    }
    test = compare[op]
    return lambda ev: test(_num(ev.get(name)))


def _groups(kpis: dict[str, KpiPlan], ratios: dict[str, RatioPlan]) -> dict[str, str]:
    """Union KPIs linked by ratios, so a ratio and its parts are merged in the same place."""
    parent = {name: name for name in [*kpis, *ratios]}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for ratio in ratios.values():
        for part in (ratio.numerator, ratio.denominator):
            a, b = find(ratio.name), find(part)
            if a != b:
                parent[max(a, b)] = min(a, b)
    return {name: find(name) for name in parent}
