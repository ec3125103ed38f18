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
The per-KPI series cap is applied here, where the whole KPI is visible: series beyond
``max_series`` are merged into ``<dim>=__other__``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from streams.engine import OTHER
from streams.plan import KpiPlan, Plan

__all__ = ["INCOMPLETE_KEEP_MS", "META_KEY", "KpiValue", "Merger", "labels_of", "retention_ms"]

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
    versions: dict[str, int] = field(default_factory=dict)     # part -> "o" of the partial held


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

    def add_partial(self, partial: dict[str, Any], offset: int | None = None) -> None:
        """Merge one partial; ``offset`` (its position on the partials topic) makes a replay after a restart a no-op."""
        if offset is not None:
            if offset <= self.applied:
                return          # redelivered: the restored state already holds it
            self.applied = offset
            self._meta_dirty = True
        kpi = partial["kpi"]
        kp = self.plan.kpis.get(kpi)
        if kp is None or kp.state_key != partial["sk"]:
            return      # a partial for a removed or redefined KPI: its definition no longer applies
        ws, part, version = int(partial["ws"]), f"{partial['src']}:{partial['p']}", int(partial.get("o", -1))
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
            entry = self.entries[key] = _Entry(kp.state_key, int(partial["we"]), first_wall=self.wall())
        elif version < entry.versions.get(part, -1 << 62):
            return      # an older state of this partition's window (a replay): the entry holds a newer one
        entry.parts[part] = partial["series"]
        entry.versions[part] = version
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
        merged = self._cap(kpi, ws, merged, agg.merge)
        # Every series seen in an earlier window gets a value, so a region whose events stopped shows 0 (not its
        # old value); a series that did not exist yet gets none, whatever order partitions report in.
        empty = agg.result(agg.init())
        values: dict[str, float | None] = {"": empty}
        values.update({skey: empty for skey, first in self.admitted.get(kpi, {}).items() if first < ws})
        values.update({skey: agg.result(state) for skey, state in merged.items()})
        return values

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
                    value = None if n is None or not d else n / d * ratio.scale
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

    # ---- persistence (stage-2 changelog) ----------------------------------------------------
    def take_changes(self) -> list[tuple[str, dict[str, Any] | None]]:
        out: list[tuple[str, dict[str, Any] | None]] = []
        for kpi, ws in sorted(self._dirty):
            e = self.entries[(kpi, ws)]
            out.append((f"{kpi}|{ws}", {"sk": e.sk, "we": e.we, "parts": e.parts, "rev": e.revision, "values": e.values,
                                        "pv": e.versions}))
        out.extend((f"{kpi}|{ws}", None) for kpi, ws in sorted(self._purged))
        if self._meta_dirty:
            out.append((META_KEY, {"reported": self.reported, "purged": self.purged_through, "at": self.applied}))
        self._dirty.clear()
        self._purged.clear()
        self._meta_dirty = False
        return out

    def restore(self, records: dict[str, dict[str, Any]]) -> list[KpiValue]:
        """Rebuild from stage-2 changelog records; return the final values they hold.

        The worker publishes those values again: a value whose window was recorded as final may not have
        reached `kpi.values` before a crash (the changelog and the output topic are separate writes).
        Re-publishing is harmless because a (kpi, series, window, revision) always carries the same value.
        """
        emitted: list[KpiValue] = []
        meta = records.get(META_KEY)
        if meta is not None:
            self.reported = {k: {p: int(ws) for p, ws in v.items()} for k, v in meta.get("reported", {}).items()}
            self.purged_through = {k: int(ws) for k, ws in meta.get("purged", {}).items()}
            self.applied = int(meta.get("at", -1))
        for key, doc in records.items():
            if key == META_KEY:
                continue
            kpi, _, ws = key.rpartition("|")
            kp = self.plan.kpis.get(kpi)
            if kp is None or kp.state_key != doc["sk"] or not ws.lstrip("-").isdigit():
                continue
            entry = _Entry(doc["sk"], doc["we"], doc["parts"], self.wall(), doc["rev"], doc["values"],
                           {p: int(o) for p, o in doc.get("pv", {}).items()})
            self.entries[(kpi, int(ws))] = entry
            if entry.revision >= 0:
                emitted += self._emit(kpi, int(ws), entry)
                for skey in entry.values:
                    seen = self.admitted.setdefault(kpi, {})
                    if skey and not skey.endswith(OTHER):
                        seen[skey] = min(seen.get(skey, int(ws)), int(ws))
        return emitted + self._ratios(emitted)


def _group_min(newest: dict[str, int], groups: dict[str, str]) -> dict[str, int]:
    """Per merge group, the least advanced of its KPIs' newest window ends (KPIs with no window yet are left out)."""
    out: dict[str, int] = {}
    for kpi, we in newest.items():
        group = groups.get(kpi, kpi)
        out[group] = min(out.get(group, we), we)
    return out
