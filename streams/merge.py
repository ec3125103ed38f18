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

The series cap is decided here, by one owner per KPI × dimension (:mod:`streams.admission`): values
are admitted first come in window order (sorted within a window) up to ``max_series`` per dimension
and stay admitted; everything else of the dimension is merged into ``<dim>=__other__``. A partial
whose partition folded values at its memory bound (``folded``) closes the dimension from that merge
on: nothing is admitted on it any more, so no value a partition may have folded becomes a series
later; admitted series that partition may have folded there without knowing of their admission get
no value for that window (:meth:`Merger._unsafe`). The admission state is checkpointed in the
stage-2 changelog and published for stage 1 (:meth:`Merger.take_feedback`).

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
from streams.admission import AdmissionView, feedback_key, feedback_value
from streams.aggregations import valid_state
from streams.engine import OTHER
from streams.plan import KpiPlan, Plan

__all__ = ["INCOMPLETE_KEEP_MS", "META_KEY", "BadPartial", "KpiValue", "Merger", "labels_of", "retention_ms"]


class BadPartial(ValueError):
    """A partial stage 2 cannot use; logged and counted by the worker, never fatal."""

log = logging.getLogger("kpimon.merge")
UNSEEN = 2**62          # first window of a value adopted from the feedback topic but not in any window here
META_KEY = "~mrg"                        # the merger's own record in the stage-2 changelog
INCOMPLETE_KEEP_MS = 6 * 3600 * 1000     # event time a window finalised without every partition waits for it


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
    folded: dict[str, dict[str, list[int]]] = field(default_factory=dict)   # part -> dim -> [lo, hi] (engine)
    versions: dict[str, int] = field(default_factory=dict)     # part -> "o" of the partial held


@dataclass(slots=True)
class _Admission:
    """Admission state of one KPI × dimension (pinned: values are never un-admitted)."""

    sk: str
    admitted: dict[str, int] = field(default_factory=dict)   # value -> first window start, in admission order
    closed: bool = False                  # a partition folded at its memory bound: admit nothing more
    other: int | None = None              # first window with an __other__ series

    def full(self, max_series: int) -> bool:
        return self.closed or len(self.admitted) >= max_series

    def to_doc(self) -> dict[str, Any]:
        return {"sk": self.sk, "admitted": [[v, ws] for v, ws in self.admitted.items()], "closed": self.closed,
                "other": self.other}


class Merger:
    """Merges partials; keeps the latest final value of every series for the exporter."""

    def __init__(self, plan: Plan, *, partition_wait_s: float = defaults.PARTITION_WAIT_S, wall: Callable[[], float] = time.time) -> None:
        self.plan = plan
        self.partition_wait_s = partition_wait_s
        self.wall = wall
        self.entries: dict[tuple[str, int], _Entry] = {}
        self.latest: dict[tuple[str, str], KpiValue] = {}
        self.admission: dict[tuple[str, str], _Admission] = {}    # (KPI, dimension) -> state
        self.overflow: dict[str, int] = {}       # KPI -> windows × dimensions whose first merge folded values
        self._adm_dirty: set[tuple[str, str]] = set()        # changed: write to the changelog
        self._fb_dirty: set[tuple[str, str]] = set()         # admitted set or closed changed: publish
        self._warned: set[tuple[str, str]] = set()
        self._published: AdmissionView | None = None          # see adopt()
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

    def add_partial(self, partial: Any, offset: int | None = None) -> None:
        """Take one partial (as decoded from JSON); raise :class:`BadPartial` if it is malformed.

        ``offset`` (its position on the partials topic) makes a replay after a restart a no-op."""
        if offset is not None:
            if offset <= self.applied:
                return          # redelivered: the restored state already holds it
            self.applied = offset
            self._meta_dirty = True
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
        part, version = f"{partial['src']}:{partial['p']}", partial.get("o", -1)
        if type(version) is not int:
            raise BadPartial(f"{kpi}: version {version!r} is not an integer")
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
            entry = self.entries[key] = _Entry(kp.state_key, we, first_wall=self.wall())
        elif version < entry.versions.get(part, -1 << 62):
            return      # an older state of this partition's window (a replay): the entry holds a newer one
        entry.parts[part] = series
        entry.versions[part] = version
        folded = partial.get("folded")
        if folded:
            entry.folded[part] = {str(d): [int(lo), int(hi)] for d, (lo, hi) in folded.items()}
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
        self._purge()
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
        merged, unknown = self._cap(kpi, ws, merged, agg.merge, entry)
        # Every series seen in an earlier window gets a value, so a region whose events stopped shows 0 (not its
        # old value); a series that did not exist yet gets none, whatever order partitions report in.
        empty = agg.result(agg.init())
        values: dict[str, float | None] = {"": empty}
        for dim in self.plan.kpis[kpi].dims:
            adm = self.admission.get((kpi, dim))
            if adm is None:
                continue
            values.update({f"{dim}={v}": empty for v, first in adm.admitted.items() if first < ws})
            if adm.other is not None and adm.other < ws:
                values[f"{dim}={OTHER}"] = empty
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

    def _admission(self, kpi: str, dim: str) -> _Admission:
        sk = self.plan.kpis[kpi].state_key
        adm = self.admission.get((kpi, dim))
        if adm is None or adm.sk != sk:          # new, or left from an earlier definition of the KPI
            adm = self.admission[(kpi, dim)] = _Admission(sk)
            self._adopt(kpi, dim, adm)
        return adm

    def _adopt(self, kpi: str, dim: str, adm: _Admission) -> None:
        decided = None if self._published is None else self._published.get(kpi, adm.sk, dim)
        if decided is None:
            return
        new = [v for v in sorted(decided.admitted) if v not in adm.admitted]
        if new or (decided.closed and not adm.closed):
            adm.admitted.update(dict.fromkeys(new, UNSEEN))
            adm.closed = adm.closed or decided.closed
            self._adm_dirty.add((kpi, dim))

    def _cap(self, kpi: str, ws: int, merged: dict[str, Any], merge: Callable[[Any, Any], Any],
             entry: _Entry) -> tuple[dict[str, Any], set[str]]:
        """Admit and fold one window's series; also returns the admitted series that have no exact value in it."""
        kp = self.plan.kpis[kpi]
        out: dict[str, Any] = {}
        unknown: set[str] = set()
        by_dim: dict[str, list[str]] = {}
        for skey in sorted(merged):
            if skey == "":
                out[skey] = merged[skey]
            else:
                by_dim.setdefault(skey.partition("=")[0], []).append(skey)
        for dim, skeys in by_dim.items():
            adm = self._admission(kpi, dim)
            key = (kpi, dim)
            unsafe = self._unsafe(kpi, dim, adm, entry)
            other = f"{dim}={OTHER}"
            for skey in skeys:
                value = skey[len(dim) + 1:]
                if value != OTHER and value not in unsafe and (value in adm.admitted or not adm.full(kp.max_series)):
                    if value not in adm.admitted:
                        self._fb_dirty.add(key)
                    if adm.admitted.get(value, UNSEEN) > ws:
                        adm.admitted[value] = min(adm.admitted.get(value, UNSEEN), ws)
                        self._adm_dirty.add(key)
                    out[skey] = merged[skey]
                    continue
                out[other] = merged[skey] if other not in out else merge(out[other], merged[skey])
            unknown.update(f"{dim}={v}" for v in unsafe)
            if other in out:
                if entry.revision < 0:
                    self.overflow[kpi] = self.overflow.get(kpi, 0) + 1
                if adm.other is None or adm.other > ws:
                    adm.other = ws
                    self._adm_dirty.add(key)
        return out, unknown

    def _unsafe(self, kpi: str, dim: str, adm: _Admission, entry: _Entry) -> set[str]:
        """Admitted values of ``dim`` that a partition may have folded in this window at its memory bound.

        Such a partial closes the dimension. Its ``[lo, hi]`` says how many admitted values the partition knew of
        at its first fold there and at its last event of the dimension: it never folds a value it knew of, and
        while folding it takes no new undecided values, so a value it had not heard of even at the end (seq ≥ hi)
        was folded in this window if and only if it is missing from the partial's own series. Values heard of
        during the window (lo ≤ seq < hi) may have been folded before: unsafe too.
        """
        spans = {part: f[dim] for part, f in entry.folded.items() if dim in f}
        if not spans:
            return set()
        if not adm.closed:
            adm.closed = True
            self._adm_dirty.add((kpi, dim))
            self._fb_dirty.add((kpi, dim))
            log.warning("%s: a partition met more new %r values than it can hold undecided; the dimension admits no "
                        "more values (%d admitted)", kpi, dim, len(adm.admitted))
        unsafe: set[str] = set()
        order = list(adm.admitted)
        for part, (lo, hi) in spans.items():
            series = entry.parts.get(part, {})
            unsafe.update(v for seq, v in enumerate(order)
                          if seq >= lo and not (seq >= hi and f"{dim}={v}" in series))
        if unsafe and (kpi, dim) not in self._warned:
            self._warned.add((kpi, dim))
            log.warning("%s: a partition folded %r values at its memory bound before it heard that %s were admitted; "
                        "those series have no value in the windows concerned (their events are in __other__)",
                        kpi, dim, sorted(unsafe))
        return unsafe

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

    def _purge(self) -> None:
        newest_final: dict[str, int] = {}
        newest_complete: dict[str, int] = {}
        for (kpi, ws), entry in self.entries.items():
            if entry.revision >= 0:
                newest_final[kpi] = max(newest_final.get(kpi, 0), entry.we)
                if self._complete(kpi, ws, entry):
                    newest_complete[kpi] = max(newest_complete.get(kpi, 0), entry.we)
        # A ratio is computed when both of its parts are final: a part's window is kept until the newest windows of
        # every KPI of its merge group have moved on as far, or the ratio of a lagging part would never be computed.
        by_group_complete = _group_min(newest_complete, self.plan.groups)
        by_group_final = _group_min(newest_final, self.plan.groups)
        for key, entry in list(self.entries.items()):
            kp = self.plan.kpis.get(key[0])
            if kp is None or entry.revision < 0:
                continue
            group = self.plan.groups.get(key[0], key[0])
            if self._complete(key[0], key[1], entry):
                gone = by_group_complete.get(group, 0) - entry.we > retention_ms(kp)
            else:
                gone = by_group_final.get(group, 0) - entry.we > max(retention_ms(kp), INCOMPLETE_KEEP_MS)
            if gone:
                del self.entries[key]
                self._dirty.discard(key)
                self._purged.add(key)
                if key[1] > self.purged_through.get(key[0], -1 << 62):
                    self.purged_through[key[0]] = key[1]
                    self._meta_dirty = True

    # ---- persistence (stage-2 changelog) and admission feedback ----------------------------
    def take_changes(self) -> list[tuple[str, dict[str, Any] | None]]:
        out: list[tuple[str, dict[str, Any] | None]] = []
        for kpi, ws in sorted(self._dirty):
            e = self.entries[(kpi, ws)]
            doc = {"sk": e.sk, "we": e.we, "parts": e.parts, "rev": e.revision, "values": e.values, "pv": e.versions}
            if e.folded:
                doc["folded"] = e.folded
            out.append((f"{kpi}|{ws}", doc))
        out.extend((f"{kpi}|{ws}", None) for kpi, ws in sorted(self._purged))
        out.extend((f"{kpi}|~series|{dim}", self.admission[(kpi, dim)].to_doc()) for kpi, dim in sorted(self._adm_dirty))
        if self._meta_dirty:
            out.append((META_KEY, {"reported": self.reported, "purged": self.purged_through, "at": self.applied}))
        self._dirty.clear()
        self._purged.clear()
        self._adm_dirty.clear()
        self._meta_dirty = False
        return out

    def take_feedback(self) -> list[tuple[bytes, bytes]]:
        """Records for the admission topic (key ``kpi|state_key|dim``) whose admitted set or closed flag changed.

        Write them after :meth:`take_changes`' records: stage 1 must never learn of a decision the stage-2
        changelog could lose (a restarted stage 2 also adopts what was published, see :meth:`adopt`).
        """
        out = []
        for kpi, dim in sorted(self._fb_dirty):
            adm = self.admission[(kpi, dim)]
            out.append((feedback_key(kpi, adm.sk, dim).encode(), feedback_value(list(adm.admitted), adm.closed)))
        self._fb_dirty.clear()
        return out

    def adopt(self, view: AdmissionView) -> None:
        """After a restore: take in decisions published on the admission topic that the changelog lacks.

        The changelog and the topic are separate writes; stage 1 may already fold by a published decision,
        so stage 2 must keep it (a value admitted only there gets its first window when it is next seen).
        Only the KPI dimensions this merger holds or comes to merge take them in.
        """
        self._published = view
        for (kpi, dim), adm in self.admission.items():
            self._adopt(kpi, dim, adm)

    def restore(self, records: dict[str, dict[str, Any]]) -> list[KpiValue]:
        """Rebuild from stage-2 changelog records; return the final values they hold.

        The worker publishes those values again: a value whose window was recorded as final may not have
        reached `kpi.values` before a crash (the changelog and the output topic are separate writes).
        Re-publishing is harmless because a (kpi, series, window, revision) always carries the same value.
        The admission state is published again too (:meth:`take_feedback`).
        """
        emitted: list[KpiValue] = []
        meta = records.get(META_KEY)
        if meta is not None:
            self.reported = {k: {p: int(ws) for p, ws in v.items()} for k, v in meta.get("reported", {}).items()}
            self.purged_through = {k: int(ws) for k, ws in meta.get("purged", {}).items()}
            self.applied = int(meta.get("at", -1))
        for key, doc in records.items():
            kpi, tag, dim = key.partition("|~series|")
            kp = self.plan.kpis.get(kpi)
            if not tag or kp is None or kp.state_key != doc["sk"] or dim not in kp.dims:
                continue
            self.admission[(kpi, dim)] = _Admission(doc["sk"], {str(v): int(ws) for v, ws in doc["admitted"]},
                                                    bool(doc["closed"]), doc.get("other"))
            self._fb_dirty.add((kpi, dim))
        recorded = set(self.admission)
        for key, doc in records.items():
            if key == META_KEY:
                continue
            kpi, _, ws = key.rpartition("|")
            kp = self.plan.kpis.get(kpi)
            if kp is None or kp.state_key != doc["sk"] or not ws.lstrip("-").isdigit():
                continue
            entry = _Entry(doc["sk"], doc["we"], doc["parts"], self.wall(), doc["rev"], doc["values"],
                           doc.get("folded", {}), {p: int(o) for p, o in doc.get("pv", {}).items()})
            self.entries[(kpi, int(ws))] = entry
            if entry.revision >= 0:
                emitted += self._emit(kpi, int(ws), entry)
                for skey in entry.values:      # changelogs written before admission records existed
                    dim, _, value = skey.partition("=")
                    if skey and value != OTHER and dim in kp.dims and (kpi, dim) not in recorded:
                        adm = self._admission(kpi, dim)
                        adm.admitted[value] = min(adm.admitted.get(value, int(ws)), int(ws))
                        self._adm_dirty.add((kpi, dim))
                        self._fb_dirty.add((kpi, dim))
        return emitted + self._ratios(emitted)


def _group_min(newest: dict[str, int], groups: dict[str, str]) -> dict[str, int]:
    """Per merge group, the least advanced of its KPIs' newest window ends (KPIs with no window yet are left out)."""
    out: dict[str, int] = {}
    for kpi, we in newest.items():
        group = groups.get(kpi, kpi)
        out[group] = min(out.get(group, we), we)
    return out
