"""Stage 2 of the KPI engine: merge per-partition partials into exact KPI values. Pure.

A window of a KPI is final when every partition of its source topic has sent its partial
(or ``partition_wait_s`` of wall time after the first one, so a dead or empty partition
cannot hold a KPI back forever). Partials replace earlier partials of the same
(KPI, window, partition), so duplicates after a crash change nothing. A later partial for a
final window (a late event within grace) emits the value again with ``revision + 1``.

Ratio KPIs are computed when both parts of the same window are final, per series.
The per-KPI series cap is applied here, where the whole KPI is visible: series beyond
``max_series`` are merged into ``<dim>=__other__``.

Stage 1 closes the windows that hold data plus a bounded look-back after a watermark jump, so
stage 2 never gets the empty windows of a long silence: it emits only windows whose partials
arrive. Every series seen before a window still gets its zero (or no-data) value in it.

Robustness: a partial that is not the shape its KPI's aggregation expects raises
:class:`BadPartial` (the worker logs and counts it; nothing is merged). A merged value is never
non-finite: a sum that overflows across partitions is clamped to ±``sys.float_info.max`` and
counted in ``saturated`` (``kpimon_values_saturated_total``).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from streams.aggregations import valid_state
from streams.engine import OTHER
from streams.plan import KpiPlan, Plan

__all__ = ["BadPartial", "KpiValue", "Merger", "labels_of", "retention_ms"]


class BadPartial(ValueError):
    """A partial stage 2 cannot use; logged and counted by the worker, never fatal."""


def retention_ms(kp: KpiPlan) -> int:
    """How long (event time, behind the KPI's newest final window) a final window is kept and can be revised."""
    return kp.grace_ms + 2 * kp.size_ms + 60_000


@dataclass(frozen=True, slots=True)
class KpiValue:
    """The value of one series of one KPI for one window (what `kpi.values` carries)."""

    kpi: str
    series: str                  # "" total, "region=east" for a dimension series
    window_start_ms: int
    window_end_ms: int
    value: float | None          # None: no data (avg/min/max/percentile/last of an empty window, ratio over 0)
    revision: int

    @property
    def labels(self) -> dict[str, str]:
        return labels_of(self.series)

    def to_record(self) -> dict[str, Any]:
        return {"kpi": self.kpi, "labels": self.labels, "window_start": self.window_start_ms / 1000,
                "window_end": self.window_end_ms / 1000, "value": self.value, "revision": self.revision}


def labels_of(series: str) -> dict[str, str]:
    if not series:
        return {}
    dim, _, value = series.partition("=")
    return {dim: value}


@dataclass(slots=True)
class _Entry:
    sk: str
    we: int
    parts: dict[str, dict[str, Any]] = field(default_factory=dict)
    first_wall: float = 0.0
    revision: int = -1                 # last emitted revision; -1 = not final yet
    values: dict[str, float | None] = field(default_factory=dict)


class Merger:
    """Merges partials; keeps the latest final value of every series for the exporter."""

    def __init__(self, plan: Plan, *, partition_wait_s: float = 5.0, wall: Callable[[], float] = time.time) -> None:
        self.plan = plan
        self.partition_wait_s = partition_wait_s
        self.wall = wall
        self.entries: dict[tuple[str, int], _Entry] = {}
        self.latest: dict[tuple[str, str], KpiValue] = {}
        self.admitted: dict[str, dict[str, int]] = {}     # KPI -> series -> first window start seen
        self.overflow: dict[str, int] = {}
        self.saturated: dict[str, int] = {}                # KPI -> values clamped to a finite float
        self._changed: set[tuple[str, int]] = set()
        self._dirty: set[tuple[str, int]] = set()
        self._purged: set[tuple[str, int]] = set()

    def add_partial(self, partial: Any) -> None:
        """Take one partial (as decoded from JSON); raise :class:`BadPartial` if it is malformed."""
        if not isinstance(partial, dict):
            raise BadPartial(f"a partial is a JSON object, not {type(partial).__name__}")
        missing = {"kpi", "sk", "ws", "we", "src", "p", "series"} - partial.keys()
        if missing:
            raise BadPartial(f"partial without {sorted(missing)}")
        kpi = partial["kpi"]
        kp = self.plan.kpis.get(kpi) if isinstance(kpi, str) else None
        if kp is None or kp.state_key != partial["sk"]:
            return      # a partial for a removed or redefined KPI: its definition no longer applies
        ws, we, series = partial["ws"], partial["we"], partial["series"]
        if not (type(ws) is int and type(we) is int and ws < we):
            raise BadPartial(f"{kpi}: window [{ws!r}, {we!r}) is not two integers, start before end")
        if not isinstance(series, dict):
            raise BadPartial(f"{kpi}: series is {type(series).__name__}, not an object")
        for skey, state in series.items():
            if not valid_state(kp.kind, state):
                raise BadPartial(f"{kpi}: series {skey!r} has no valid {kp.kind} state: {str(state)[:80]}")
        key = (kpi, ws)
        entry = self.entries.get(key)
        if entry is None:
            entry = self.entries[key] = _Entry(kp.state_key, we, first_wall=self.wall())
        entry.parts[f"{partial['src']}:{partial['p']}"] = series
        self._changed.add(key)
        self._dirty.add(key)

    def poll(self) -> list[KpiValue]:
        """Values that became final or changed since the last call (base KPIs, then ratios)."""
        out: list[KpiValue] = []
        now = self.wall()
        # In window order, so which series exist in a window does not depend on partition arrival order.
        for key, entry in sorted(self.entries.items(), key=lambda item: item[0][1]):
            kp = self.plan.kpis.get(key[0])
            if kp is None:
                continue
            final = entry.revision >= 0
            if not final and not self._complete(key[0], entry, now):
                continue
            if final and key not in self._changed:
                continue
            values = self._merge(key[0], key[1], entry)
            self._changed.discard(key)
            if final and values == entry.values:
                continue
            entry.revision += 1
            entry.values = values
            self._dirty.add(key)
            out.extend(self._emit(key[0], key[1], entry))
        out.extend(self._ratios(out))
        self._purge()
        return out

    def _complete(self, kpi: str, entry: _Entry, now: float) -> bool:
        src = self.plan.source_of(kpi)
        return len(entry.parts) >= src.partitions or now - entry.first_wall >= self.partition_wait_s

    def _merge(self, kpi: str, ws: int, entry: _Entry) -> dict[str, float | None]:
        agg = self.plan.kpis[kpi].agg
        merged: dict[str, Any] = {}
        for series in entry.parts.values():
            for skey, state in series.items():
                merged[skey] = state if skey not in merged else agg.merge(merged[skey], state)
        merged = self._cap(kpi, ws, merged, agg.merge)
        # Every series seen in an earlier window gets a value, so a region whose events stopped shows 0 (not its
        # old value); a series that did not exist yet gets none, whatever order partitions report in.
        empty = agg.result(agg.init())
        values: dict[str, float | None] = {"": empty}
        values.update({skey: empty for skey, first in self.admitted.get(kpi, {}).items() if first < ws})
        values.update({skey: self._finite(kpi, agg.result(state)) for skey, state in merged.items()})
        return values

    def _finite(self, kpi: str, value: float | None) -> float | None:
        """``value``, or ±the largest float for an overflow (counted): no value is ever inf or NaN."""
        if value is None or math.isfinite(value):
            return value
        self.saturated[kpi] = self.saturated.get(kpi, 0) + 1
        return None if math.isnan(value) else math.copysign(sys.float_info.max, value)

    def _cap(self, kpi: str, ws: int, merged: dict[str, Any], merge: Callable[[Any, Any], Any]) -> dict[str, Any]:
        admitted = self.admitted.setdefault(kpi, {})
        limit = self.plan.kpis[kpi].max_series
        out: dict[str, Any] = {}
        for skey in sorted(merged):
            if skey == "" or skey in admitted or skey.endswith("=" + OTHER):
                if skey in admitted:
                    admitted[skey] = min(admitted[skey], ws)
                out[skey] = merged[skey] if skey not in out else merge(out[skey], merged[skey])
                continue
            if len(admitted) < limit:
                admitted[skey] = ws
                out[skey] = merged[skey]
                continue
            other = skey.partition("=")[0] + "=" + OTHER
            out[other] = merged[skey] if other not in out else merge(out[other], merged[skey])
            self.overflow[kpi] = self.overflow.get(kpi, 0) + 1
        return out

    def _emit(self, kpi: str, ws: int, entry: _Entry) -> list[KpiValue]:
        out = []
        for skey, value in sorted(entry.values.items()):
            val = KpiValue(kpi, skey, ws, entry.we, value, entry.revision)
            current = self.latest.get((kpi, skey))
            if current is None or current.window_start_ms <= ws:
                self.latest[(kpi, skey)] = val
            out.append(val)
        return out

    def _ratios(self, emitted: list[KpiValue]) -> list[KpiValue]:
        touched = {(v.kpi, v.window_start_ms) for v in emitted}
        out: list[KpiValue] = []
        for ratio in self.plan.ratios.values():
            for kpi, ws in touched:
                if kpi not in (ratio.numerator, ratio.denominator):
                    continue
                num = self.entries.get((ratio.numerator, ws))
                den = self.entries.get((ratio.denominator, ws))
                if num is None or den is None or num.revision < 0 or den.revision < 0:
                    continue
                rev = num.revision + den.revision
                for skey in sorted(set(num.values) | set(den.values)):
                    if skey and labels_of(skey).keys() - set(ratio.dims):
                        continue
                    n, d = num.values.get(skey), den.values.get(skey)
                    value = None if n is None or not d else self._finite(ratio.name, n / d * ratio.scale)
                    val = KpiValue(ratio.name, skey, ws, num.we, value, rev)
                    current = self.latest.get((ratio.name, skey))
                    if current is None or current.window_start_ms <= ws:
                        self.latest[(ratio.name, skey)] = val
                    out.append(val)
        return out

    def _purge(self) -> None:
        newest: dict[str, int] = {}
        for (kpi, _ws), entry in self.entries.items():
            if entry.revision >= 0:
                newest[kpi] = max(newest.get(kpi, 0), entry.we)
        for key, entry in list(self.entries.items()):
            kp = self.plan.kpis.get(key[0])
            if kp is None:
                continue
            keep_ms = retention_ms(kp)
            if entry.revision >= 0 and newest.get(key[0], 0) - entry.we > keep_ms:
                del self.entries[key]
                self._dirty.discard(key)
                self._purged.add(key)

    # ---- persistence (stage-2 changelog) ----------------------------------------------------
    def take_changes(self) -> list[tuple[str, dict[str, Any] | None]]:
        out: list[tuple[str, dict[str, Any] | None]] = []
        for kpi, ws in sorted(self._dirty):
            e = self.entries[(kpi, ws)]
            out.append((f"{kpi}|{ws}", {"sk": e.sk, "we": e.we, "parts": e.parts, "rev": e.revision, "values": e.values}))
        out.extend((f"{kpi}|{ws}", None) for kpi, ws in sorted(self._purged))
        self._dirty.clear()
        self._purged.clear()
        return out

    def restore(self, records: dict[str, dict[str, Any]]) -> list[KpiValue]:
        """Rebuild from stage-2 changelog records; return the final values they hold.

        The worker publishes those values again: a value whose window was recorded as final may not have
        reached `kpi.values` before a crash (the changelog and the output topic are separate writes).
        Re-publishing is harmless because a (kpi, series, window, revision) always carries the same value.
        """
        emitted: list[KpiValue] = []
        for key, doc in records.items():
            kpi, _, ws = key.rpartition("|")
            kp = self.plan.kpis.get(kpi)
            if kp is None or kp.state_key != doc["sk"] or not ws.lstrip("-").isdigit():
                continue
            entry = _Entry(doc["sk"], doc["we"], doc["parts"], self.wall(), doc["rev"], doc["values"])
            self.entries[(kpi, int(ws))] = entry
            if entry.revision >= 0:
                emitted += self._emit(kpi, int(ws), entry)
                for skey in entry.values:
                    seen = self.admitted.setdefault(kpi, {})
                    if skey and not skey.endswith(OTHER):
                        seen[skey] = min(seen.get(skey, int(ws)), int(ws))
        return emitted + self._ratios(emitted)
