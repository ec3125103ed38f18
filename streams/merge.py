"""Stage 2 of the KPI engine: merge per-partition partials into exact KPI values. Pure.

A window of a KPI is *complete* when every partition of its source topic has sent its partial
for it, or a partial of a later window (a partition closes its windows in order, so it has passed
this one). It is *final* when complete, or when each partition still missing has sent nothing for
this KPI for ``partition_wait_s`` of wall time (a dead or stopped partition cannot hold a KPI back
forever; one that is behind but still reporting is waited for). Partials replace earlier partials
of the same (KPI, window, partition) unless they are older (``o``, the highest source offset a
partial holds, only grows), so duplicates and replays after a crash change nothing. A later
partial for a final window (a late event within grace, or a partition that was waited out) emits
the value again with ``revision + 1``.

Entries are kept while a revision can still come: a complete window for ``retention_ms`` behind
the newest complete one; a window finalised without some partition for ``INCOMPLETE_KEEP_MS``
behind the newest final one. A partial for a window already dropped is counted and ignored
(never re-opened as a new revision 0): ``dropped`` per KPI.

Ratio KPIs are computed when both parts of the same window are final, per series.

The series cap is applied here, by its one owner (:class:`streams.admission.SeriesCap`, ``Merger.cap``):
values are admitted first come in window order up to ``max_series`` per dimension, everything else of the
dimension is merged into ``<dim>=__other__``. Its state is checkpointed in the stage-2 changelog with the
merger's and published for stage 1 (:meth:`Merger.take_feedback`).

Stage 1 closes the windows that hold data plus a bounded look-back after a watermark jump, so
stage 2 never gets the empty windows of a long silence: it emits only windows whose partials
arrive. Every series seen before a window still gets its zero (or no-data) value in it.

Robustness: a partial that is not the shape its KPI's aggregation expects raises
:class:`BadPartial` (the worker logs and counts it; nothing is merged). A merged value is never
non-finite: a sum that overflows across partitions is clamped to ±``sys.float_info.max`` and
counted in ``saturated`` (``kpimon_values_saturated_total``).
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from catalog import defaults
from streams.admission import OTHER, AdmissionView, SeriesCap
from streams.aggregations import valid_state
from streams.changelog import MERGER_KEY, parse_admission_key, parse_window_key, window_key
from streams.plan import KpiPlan, Plan
from streams.records import BadPartial, KpiValue, Partial, labels_of, series_key, split_series

__all__ = ["INCOMPLETE_KEEP_MS", "Merger", "retention_ms"]


log = logging.getLogger("kpimon.merge")
INCOMPLETE_KEEP_MS = 6 * 3600 * 1000     # event time a window finalised without every partition waits for it


def retention_ms(kp: KpiPlan) -> int:
    """How long (event time, behind the KPI's newest final window) a final window is kept and can be revised."""
    return kp.grace_ms + 2 * kp.size_ms + 60_000


@dataclass(slots=True)
class _Entry:
    sk: str
    we: int
    parts: dict[str, dict[str, Any]] = field(default_factory=dict)
    first_wall: float = 0.0
    revision: int = -1                 # last emitted revision; -1 = not final yet
    values: dict[str, float | None] = field(default_factory=dict)
    folded: dict[str, dict[str, list[int]]] = field(default_factory=dict)   # part -> dim -> [lo, hi] (engine)
    versions: dict[str, int] = field(default_factory=dict)     # part -> "o" of the partial held


class Merger:
    """Merges partials; keeps the latest final value of every series for the exporter."""

    def __init__(self, plan: Plan, *, partition_wait_s: float = defaults.PARTITION_WAIT_S, wall: Callable[[], float] = time.time) -> None:
        self.plan = plan
        self.partition_wait_s = partition_wait_s
        self.wall = wall
        self.entries: dict[tuple[str, int], _Entry] = {}
        self.latest: dict[tuple[str, str], KpiValue] = {}
        self.cap = SeriesCap(plan)                         # the series cap's owner (streams.admission)
        self.saturated: dict[str, int] = {}                # KPI -> values clamped to a finite float
        self.started = self.wall()
        self.applied = -1                                 # offset of the last partial the state holds
        self.reported: dict[str, dict[str, int]] = {}    # KPI -> part -> newest window start it sent
        self.heard: dict[str, dict[str, float]] = {}      # KPI -> part -> wall time of its last partial
        self.purged_through: dict[str, int] = {}          # KPI -> newest window start dropped
        self.dropped: dict[str, int] = {}                 # KPI -> partials for dropped windows (ignored)
        self._changed: set[tuple[str, int]] = set()
        self._dirty: set[tuple[str, int]] = set()
        self._purged: set[tuple[str, int]] = set()
        self._meta_dirty = False
        self._members: dict[str, list[str]] = {}          # merge group -> its base KPIs (a ratio's parts)
        for name in plan.kpis:
            self._members.setdefault(plan.groups.get(name, name), []).append(name)

    def add_partial(self, partial: Partial | Any, offset: int | None = None) -> None:
        """Take one partial (or its decoded JSON); raise :class:`~streams.records.BadPartial` if it is malformed.

        ``offset`` (its position on the partials topic) makes a replay after a restart a no-op."""
        if offset is not None:
            if offset <= self.applied:
                return          # redelivered: the restored state already holds it
            self.applied = offset
            self._meta_dirty = True
        p = partial if isinstance(partial, Partial) else Partial.from_record(partial)
        kpi = p.kpi
        kp = self.plan.kpis.get(kpi)
        if kp is None or kp.state_key != p.state_key:
            return      # a partial for a removed or redefined KPI: its definition no longer applies
        ws, series = p.window_start_ms, p.series
        for skey, state in series.items():
            if not valid_state(kp.kind, state):
                raise BadPartial(f"{kpi}: series {skey!r} has no valid {kp.kind} state: {str(state)[:80]}")
        part, version = p.part, p.version
        self.heard.setdefault(kpi, {})[part] = self.wall()
        reported = self.reported.setdefault(kpi, {})
        if ws > reported.get(part, -1 << 62):
            reported[part] = ws
            self._meta_dirty = True
        key = (kpi, ws)
        entry = self.entries.get(key)
        if entry is None:
            if ws <= self.purged_through.get(kpi, -1 << 62):
                self.dropped[kpi] = self.dropped.get(kpi, 0) + 1     # its window is gone: never a second rev 0
                return
            entry = self.entries[key] = _Entry(kp.state_key, p.window_end_ms, first_wall=self.wall())
        elif version < entry.versions.get(part, -1 << 62):
            return      # an older state of this partition's window (a replay): the entry holds a newer one
        entry.parts[part] = series
        entry.versions[part] = version
        if p.folded:
            entry.folded[part] = p.folded
        else:
            entry.folded.pop(part, None)
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
            if not final and not self._complete(key[0], key[1], entry) and not self._waited_out(key[0], key[1], entry, now):
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
        # Not a window emitted now: the changelog written before these values are published must still hold it
        # (a kill in between re-publishes it on restore). A backlog makes windows final and past retention at once.
        # The parts of a ratio emitted now too: a restore recomputes the ratio from them.
        keep = {(v.kpi, v.window_start_ms) for v in out}
        for ratio_name, ws in list(keep):
            ratio = self.plan.ratios.get(ratio_name)
            if ratio is not None:
                keep.update(((ratio.numerator, ws), (ratio.denominator, ws)))
        self._purge(keep)
        return out

    def _missing(self, kpi: str, ws: int, entry: _Entry) -> list[str]:
        """Partitions that have neither sent this window nor passed it."""
        src = self.plan.source_of(kpi)
        reported = self.reported.get(kpi, {})
        return [part for part in (f"{src.name}:{p}" for p in range(src.partitions))
                if part not in entry.parts and reported.get(part, -1 << 62) <= ws]

    def _complete(self, kpi: str, ws: int, entry: _Entry) -> bool:
        return not self._missing(kpi, ws, entry)

    def _waited_out(self, kpi: str, ws: int, entry: _Entry, now: float) -> bool:
        """Every missing partition has been silent on this KPI for ``partition_wait_s`` (and the window waited as long)."""
        heard = self.heard.get(kpi, {})
        return all(now - max(heard.get(part, self.started), entry.first_wall) >= self.partition_wait_s
                   for part in self._missing(kpi, ws, entry))

    def _merge(self, kpi: str, ws: int, entry: _Entry) -> dict[str, float | None]:
        agg = self.plan.kpis[kpi].agg
        merged: dict[str, Any] = {}
        for series in entry.parts.values():
            for skey, state in series.items():
                merged[skey] = state if skey not in merged else agg.merge(merged[skey], state)
        merged, unknown = self.cap.apply(kpi, ws, merged, agg.merge, parts=entry.parts, folded=entry.folded,
                                         first=entry.revision < 0)
        # Every series seen in an earlier window gets a value, so a region whose events stopped shows 0 (not its
        # old value); a series that did not exist yet gets none, whatever order partitions report in.
        empty = agg.result(agg.init())
        values: dict[str, float | None] = {"": empty}
        for dim in self.plan.kpis[kpi].dims:
            adm = self.cap.get(kpi, dim)
            if adm is None:
                continue
            values.update({series_key(dim, v): empty for v, first in adm.admitted.items() if first < ws})
            if adm.other is not None and adm.other < ws:
                values[series_key(dim, OTHER)] = empty
        values.update({skey: self._finite(kpi, agg.result(state)) for skey, state in merged.items()})
        for skey in unknown:             # not exported for this window; "no value" if it was before
            values.pop(skey, None)
            if skey in entry.values:
                values[skey] = None
        return values

    def _finite(self, kpi: str, value: float | None) -> float | None:
        """``value``, or ±the largest float for an overflow (counted): no value is ever inf or NaN."""
        if value is None or math.isfinite(value):
            return value
        self.saturated[kpi] = self.saturated.get(kpi, 0) + 1
        return None if math.isnan(value) else math.copysign(sys.float_info.max, value)

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
            for ws in sorted({ws for kpi, ws in touched if kpi in (ratio.numerator, ratio.denominator)}):
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

    def _purge(self, keep: set[tuple[str, int]]) -> None:
        newest_final: dict[str, int] = {}
        newest_complete: dict[str, int] = {}
        for (kpi, ws), entry in self.entries.items():
            if entry.revision >= 0:
                newest_final[kpi] = max(newest_final.get(kpi, 0), entry.we)
                if self._complete(kpi, ws, entry):
                    newest_complete[kpi] = max(newest_complete.get(kpi, 0), entry.we)
        # A ratio is computed when both of its parts are final: a part's window is kept until the newest windows of
        # every KPI of its merge group have moved on as far, or the ratio of a lagging part would never be computed.
        # A KPI of the group with no such window yet (its first partials are still to come: stage 1 closes a
        # backlog KPI by KPI) holds the group back too, but only as long as an incomplete window is kept (a part
        # whose source never reports must not keep the others' windows for ever).
        horizon_complete, horizon_final = self._horizons(newest_complete), self._horizons(newest_final)
        for key, entry in list(self.entries.items()):
            kp = self.plan.kpis.get(key[0])
            if kp is None or entry.revision < 0 or key in keep:
                continue
            group = self.plan.groups.get(key[0], key[0])
            final_h, _ = horizon_final.get(group, (0, False))
            gone = final_h - entry.we > max(retention_ms(kp), INCOMPLETE_KEEP_MS)
            if not gone and self._complete(key[0], key[1], entry):
                complete_h, every = horizon_complete.get(group, (0, False))
                gone = every and complete_h - entry.we > retention_ms(kp)
            if gone:
                del self.entries[key]
                self._dirty.discard(key)
                self._purged.add(key)
                if key[1] > self.purged_through.get(key[0], -1 << 62):
                    self.purged_through[key[0]] = key[1]
                    self._meta_dirty = True

    def _horizons(self, newest: dict[str, int]) -> dict[str, tuple[int, bool]]:
        """Per merge group: the least advanced of its KPIs' newest window ends, and whether every KPI of the group
        has one; if some have none, the most advanced end instead (what bounds the wait for them)."""
        out: dict[str, tuple[int, bool]] = {}
        for group, members in self._members.items():
            ends = [newest[k] for k in members if k in newest]
            if ends:
                out[group] = (min(ends), True) if len(ends) == len(members) else (max(ends), False)
        return out

    # ---- persistence (stage-2 changelog) and admission feedback ----------------------------
    def take_changes(self) -> list[tuple[str, dict[str, Any] | None]]:
        out: list[tuple[str, dict[str, Any] | None]] = []
        for kpi, ws in sorted(self._dirty):
            e = self.entries[(kpi, ws)]
            doc = {"sk": e.sk, "we": e.we, "parts": e.parts, "rev": e.revision, "values": e.values, "pv": e.versions}
            if e.folded:
                doc["folded"] = e.folded
            out.append((window_key(kpi, ws), doc))
        out.extend((window_key(kpi, ws), None) for kpi, ws in sorted(self._purged))
        out.extend(self.cap.take_changes())
        if self._meta_dirty:
            out.append((MERGER_KEY, {"reported": self.reported, "purged": self.purged_through, "at": self.applied}))
        self._dirty.clear()
        self._purged.clear()
        self._meta_dirty = False
        return out

    def take_feedback(self) -> list[tuple[bytes, bytes]]:
        """The series cap's records for the admission topic (:meth:`streams.admission.SeriesCap.take_feedback`):
        write them after :meth:`take_changes`' records."""
        return self.cap.take_feedback()

    def adopt(self, view: AdmissionView) -> None:
        """After a restore: take in published admission decisions (:meth:`streams.admission.SeriesCap.adopt`)."""
        self.cap.adopt(view)

    def restore(self, records: dict[str, dict[str, Any]]) -> list[KpiValue]:
        """Rebuild from stage-2 changelog records; return the final values they hold.

        The worker publishes those values again: a value whose window was recorded as final may not have
        reached `kpi.values` before a crash (the changelog and the output topic are separate writes).
        Re-publishing is harmless because a (kpi, series, window, revision) always carries the same value.
        The admission state is published again too (:meth:`take_feedback`).
        """
        emitted: list[KpiValue] = []
        meta = records.get(MERGER_KEY)
        if meta is not None:
            self.reported = {k: {p: int(ws) for p, ws in v.items()} for k, v in meta.get("reported", {}).items()}
            self.purged_through = {k: int(ws) for k, ws in meta.get("purged", {}).items()}
            self.applied = int(meta.get("at", -1))
        recorded: set[tuple[str, str]] = set()
        for key, doc in records.items():
            adm_key = parse_admission_key(key)
            if adm_key is None:
                continue
            if self.cap.restore(*adm_key, doc):
                recorded.add(adm_key)
        for key, doc in records.items():
            win_key = parse_window_key(key)
            if win_key is None:
                continue
            kpi, ws = win_key
            kp = self.plan.kpis.get(kpi)
            if kp is None or kp.state_key != doc["sk"]:
                continue
            entry = _Entry(doc["sk"], doc["we"], doc["parts"], self.wall(), doc["rev"], doc["values"],
                           doc.get("folded", {}), {p: int(o) for p, o in doc.get("pv", {}).items()})
            self.entries[(kpi, ws)] = entry
            if entry.revision >= 0:
                emitted += self._emit(kpi, ws, entry)
                for skey in entry.values:      # changelogs written before admission records existed
                    dim, value = split_series(skey)
                    if skey and value != OTHER and dim in kp.dims and (kpi, dim) not in recorded:
                        self.cap.admit_seen(kpi, dim, value, ws)
        return emitted + self._ratios(emitted)


