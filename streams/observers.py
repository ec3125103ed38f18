"""What happens to every final KPI value: detectors, then alert rules. Pure of Faust.

The worker calls :meth:`Observers.on_values` with the values stage 2 emitted for one
``kpi.partials`` partition (the partition that owns those series), then publishes what it
returns. Detector state is checkpointed through :meth:`take_checkpoints` into the stage-2
changelog of that partition, so detectors move with their series and a restarted worker
resumes warm.

A checkpoint carries the detector spec (kind, sensitivity, params) it was learned under, so a catalog change of
a KPI's detector is not ignored for the series that already have one: see :meth:`Observers.restore`.

Only a window's first final value (revision 0) trains a detector: a revision corrects the
number, but feeding it again would teach the model the same window twice. Alert rules see
every revision.

Feedback (:mod:`alerting.feedback`): :meth:`Observers.take_feedback` reads the store's feedback writes on every
tick and teaches a verdict on an anomaly rule's alert to the detector of its series, where this worker holds it
(:meth:`~detectors.base.Detector.learn_label` at the raised window's end, with its value; a false alarm is
``normal``). The checkpoint records the newest feedback ``seq`` its detector was taught (``"taught"``), so a
restart or a partition move re-reads the feedback log and teaches nothing twice.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import orjson

from alerting.health import STORE_ERRORS
from alerting.lifecycle import Transition
from alerting.samples import Sample
from alerting.service import AlertService
from catalog.calendar import Calendar
from detectors.base import Detector, DetectorError, Verdict
from detectors.registry import adopt_state, make_detector, restore_detector
from streams.changelog import DETECTORS
from streams.records import KpiValue, series_key

__all__ = ["DetectorSpecLite", "EventClock", "Observers", "anomaly_record", "checkpoint"]

log = logging.getLogger("kpimon.observers")


@dataclass(frozen=True, slots=True)
class DetectorSpecLite:
    kind: str
    sensitivity: str
    params: Mapping[str, Any]


class EventClock:
    """Event time for the alert lifecycle: the newest window end seen, moving on with the wall clock
    (× ``speedup``) in between, never backwards. ``for``, group wait and repeat intervals then mean the
    same in a replay or a sped-up simulation as in production, where it is the wall clock minus the
    window-close delay."""

    def __init__(self, speedup: float = 1.0, wall: Callable[[], float] = time.time) -> None:
        self.speedup, self.wall = speedup, wall
        self._base: float | None = None
        self._wall_at = wall()
        self._last = 0.0

    def observe(self, event_s: float) -> None:
        if self._base is None or event_s > self.now():
            self._base, self._wall_at = event_s, self.wall()

    def seed(self, event_s: float) -> None:
        """Start from ``event_s`` (a restored watermark) unless a window was seen already: a restarted worker
        must not run its first alert ticks on the wall clock, which a sped-up simulation is far from."""
        if self._base is None:
            self._base, self._wall_at, self._last = event_s, self.wall(), event_s

    def now(self) -> float:
        if self._base is None:
            return self.wall()
        self._last = max(self._last, self._base + (self.wall() - self._wall_at) * self.speedup)
        return self._last


@dataclass
class Observers:
    """Per-series detectors (grouped by stage-2 partition) and the alert service."""

    detector_specs: Mapping[str, DetectorSpecLite]          # KPI -> spec; KPIs without detector are absent
    alerts: AlertService | None = None
    clock: EventClock | None = None
    detectors: dict[int, dict[tuple[str, str], Detector]] = field(default_factory=dict)
    verdicts: dict[tuple[str, str], Verdict] = field(default_factory=dict)
    anomalies: dict[str, int] = field(default_factory=dict)
    restored: dict[str, int] = field(default_factory=dict)      # kpi -> series restored warm (this process)
    errors: dict[str, int] = field(default_factory=dict)
    # (kind, event) for annotations: "alert" on firing/resolved transitions, "drift" on a new normal
    on_event: Callable[[str, dict[str, Any]], None] | None = None
    # samples whose evaluation waits for the alert store (see alert())
    backlog: list[Sample] = field(default_factory=list)
    backlog_max: int = 10_000
    backlog_dropped: int = 0
    # (kpi, window start, window end) -> the window lies in a silence of its sources (streams.freshness): no data
    no_data: Callable[[str, float, float], bool] | None = None
    _dirty: dict[int, set[tuple[str, str]]] = field(default_factory=dict)
    namespace: str = DETECTORS              # checkpoints in the stage-2 changelog (streams.changelog.PartitionState)
    # the catalog's business calendar (Catalog.business_calendar()), shared by every detector; never in a checkpoint
    calendar: Calendar | None = None
    # every alert state change, as the alert service returned it (the backtest's tally)
    on_transition: Callable[[Transition], None] | None = None
    # feedback: the newest feedback seq read from the store (this process), and per series the newest taught
    feedback_seen: int = 0
    taught: dict[tuple[str, str], int] = field(default_factory=dict)
    feedback_taught: dict[str, int] = field(default_factory=dict)   # kpi -> detectors taught (this process)
    # calendar notes ("expected" occasions) merged into the calendar: the store's version applied, the catalog's own
    notes_version: int = 0
    notes: int = 0
    base_calendar: Calendar | None = field(default=None, init=False)

    # KPI -> the catalog's calendar with that KPI's notes (take_calendar_notes); a KPI without notes uses `calendar`
    kpi_calendars: dict[str, Calendar | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.base_calendar = self.calendar  # the catalog's (calendar_of adds a KPI's notes)

    def calendar_of(self, kpi: str) -> Calendar | None:
        """The calendar ``kpi``'s detectors judge by: the catalog's, with the occasions noted on that KPI's alerts."""
        return self.kpi_calendars.get(kpi, self.calendar)

    # ---- detectors ---------------------------------------------------------------------------
    def restore(self, partition: int, records: Mapping[str, bytes]) -> None:
        """Restore this partition's detectors from their checkpoints (keys ``<kpi>|<series>``).

        A checkpoint carries the detector spec it was learned under (:func:`checkpoint`). Restored as it is when
        that is the KPI's spec now; with the learned state kept and the new sensitivity applied when only the
        sensitivity changed; otherwise (another kind or other params) the series starts fresh. A checkpoint of
        the release before (the bare detector state, no spec) is compared by the parameters the state itself
        holds. One log line per KPI says what changed and for how many series; nothing here raises."""
        bank = self.detectors.setdefault(partition, {})
        news: dict[str, _Restore] = {}
        fresh: dict[str, dict[str, Any]] = {}  # kpi -> the state a fresh detector of its spec writes (old checkpoints)
        for key, raw in records.items():
            kpi, _, series = key.partition("|")
            spec = self.detector_specs.get(kpi)
            if spec is None:
                continue
            note = news.setdefault(kpi, _Restore())
            try:
                doc = orjson.loads(raw)
                det = self._restored(kpi, spec, doc, note, partial(_fresh_state, fresh, kpi, spec))
            except (DetectorError, ValueError, TypeError, KeyError, AttributeError) as exc:
                # e.g. a checkpoint of another detector version: that series starts cold
                if not note.cold:
                    note.first, note.why = series, str(exc) or type(exc).__name__
                note.cold += 1
                continue
            if det is not None:
                bank[(kpi, series)] = det
                self.restored[kpi] = self.restored.get(kpi, 0) + 1
                self.taught[(kpi, series)] = _taught(doc)
        self.feedback_seen = 0  # read the feedback log again: these series may have been taught elsewhere, or not
        for kpi, note in news.items():
            if note.text(kpi):
                log.warning("%s", note.text(kpi))

    def _restored(self, kpi: str, spec: DetectorSpecLite, doc: Any, note: _Restore,
                  fresh: Callable[[], dict[str, Any]]) -> Detector | None:
        """The detector of one checkpoint under ``spec`` now, or None when it starts fresh (noted)."""
        old: dict[str, Any] | None
        if isinstance(doc, dict) and {"spec", "state"} <= set(doc) <= {"spec", "state", "taught"}:
            old = _spec_of(doc["spec"])
            state = doc["state"]
        else:  # written before checkpoints carried their spec: the bare state, judged by its own params
            state = doc
            old = _legacy_spec(spec, state, fresh)
        new = _spec_doc(spec)
        if old == new:
            return restore_detector(state, self.calendar_of(kpi))
        if old is not None and old["kind"] == new["kind"] and old["params"] == new["params"]:
            note.retuned += 1
            note.change = note.change or f"sensitivity {old['sensitivity']} -> {new['sensitivity']}"
            return restore_detector(state | {"params": {**state["params"], "sensitivity": spec.sensitivity}},
                                    self.calendar_of(kpi))
        if old is not None and old["kind"] != new["kind"]:
            try:        # e.g. seasonal -> calibrated with the same seasonal parameters
                adopted = adopt_state(spec.kind, state, spec.sensitivity, calendar=self.calendar_of(kpi),
                                      **spec.params)
            except DetectorError:
                adopted = None          # learned with other parameters: another model, start fresh
            if adopted is not None:
                note.adopted += 1
                note.change = note.change or f"{_describe(old)} -> {_describe(new)}"
                return adopted
        note.fresh += 1
        note.change = note.change or (f"{_describe(old)} -> {_describe(new)}" if old is not None else
                                      f"a checkpoint of the release before, not of {_describe(new)}")
        return None

    def drop(self, partition: int) -> None:
        """The partition moved to another worker: forget its detectors and their exported verdicts."""
        for key in self.detectors.pop(partition, {}):
            self.verdicts.pop(key, None)
            self.taught.pop(key, None)
        self._dirty.pop(partition, None)

    def detect(self, partition: int, values: list[KpiValue]) -> list[tuple[KpiValue, Verdict]]:
        """Feed revision-0 values to their series' detectors; return (value, verdict) pairs."""
        out = []
        bank = self.detectors.setdefault(partition, {})
        for val in self._with_data(values):
            spec = self.detector_specs.get(val.kpi)
            if spec is None or val.revision != 0 or val.value is None or not math.isfinite(val.value):
                continue
            key = (val.kpi, val.series)
            det = bank.get(key)
            if det is None:
                det = bank[key] = make_detector(spec.kind, spec.sensitivity, calendar=self.calendar_of(val.kpi),
                                                **spec.params)
            try:
                verdict = det.update(val.window_end_s, val.value)
            except DetectorError as exc:
                self.errors[val.kpi] = self.errors.get(val.kpi, 0) + 1
                log.warning("detector rejected %s{%s}: %s", val.kpi, val.series, exc)
                continue
            self._dirty.setdefault(partition, set()).add(key)
            if not verdict.warming_up:
                self.verdicts[key] = verdict
            if verdict.is_anomaly or verdict.drift:
                self.anomalies[val.kpi] = self.anomalies.get(val.kpi, 0) + 1
            if verdict.drift and self.on_event is not None:
                self.on_event("drift", {"kpi": val.kpi, "labels": val.labels, "at": val.window_end_s,
                                        "text": f"new normal around {verdict.expected:.4g}" if verdict.expected
                                        is not None else "new normal"})
            out.append((val, verdict))
        return out

    def take_checkpoints(self, partition: int) -> list[tuple[str, bytes]]:
        """Changed detector states of ``partition`` since the last call, as (``<kpi>|<series>``, JSON of
        :func:`checkpoint`: the state and the spec it was learned under)."""
        bank = self.detectors.get(partition, {})
        keys = self._dirty.pop(partition, set())
        return [(f"{kpi}|{series}", checkpoint(self.detector_specs[kpi], bank[(kpi, series)],
                                               self.taught.get((kpi, series), 0)))
                for kpi, series in sorted(keys) if (kpi, series) in bank and kpi in self.detector_specs]

    # ---- feedback ----------------------------------------------------------------------------
    async def take_feedback(self, limit: int = 500) -> int:
        """Teach the feedback written since the last call (up to ``limit`` writes) to the detectors held here;
        return how many detectors learned. An unreachable store is counted in the alert service's health."""
        if self.alerts is None:
            return 0
        since = self.feedback_seen
        try:
            records = await self.alerts.store.feedback_since(since, limit)
        except STORE_ERRORS as exc:
            self.alerts.health.failed(exc)
            return 0
        if self.feedback_seen != since:
            return 0                     # a restore meanwhile asked to read from the start again
        return self.learn_feedback(records)

    async def take_calendar_notes(self) -> int:
        """Merge the store's calendar notes into the detectors' calendar when they changed (one counter read
        otherwise); return how many notes are in effect. Each note is a one-day promotion named by its reason on
        the day of the raised window (in the calendar's time zone; UTC without one), for the detectors of the
        noted KPI only (an occasion that explains a refund spike says nothing about GMV's day)."""
        if self.alerts is None:
            return 0
        try:
            version = await self.alerts.store.calendar_notes_version()
            if version == self.notes_version:
                return self.notes
            notes = await self.alerts.store.list_calendar_notes()
        except STORE_ERRORS as exc:
            self.alerts.health.failed(exc)
            return self.notes
        self.notes_version, self.notes = version, len(notes)
        by_kpi: dict[str, list[Mapping[str, Any]]] = {}
        for n in notes:
            by_kpi.setdefault(str(n.get("kpi")), []).append(n)
        self.kpi_calendars = {kpi: _with_notes(self.base_calendar, mine) for kpi, mine in by_kpi.items()}
        for bank in self.detectors.values():
            for (kpi, _), det in bank.items():
                with_calendar = getattr(det, "with_calendar", None)  # the kinds that read a calendar
                if with_calendar is not None:
                    with_calendar(self.calendar_of(kpi))
        return self.notes

    def learn_feedback(self, records: Sequence[Mapping[str, Any]]) -> int:
        """Teach ``records`` (feedback writes, oldest first, each with its ``seq``) to the detectors of their
        series held here, each at most once (a detector's checkpoint keeps the newest ``seq`` it was taught).
        Only anomaly rules' verdicts teach (a threshold rule's false alarm says nothing about the model);
        ``expected`` does not (the occasion explains the deviation; see the calendar)."""
        n = 0
        for rec in records:
            seq = int(rec["seq"])
            self.feedback_seen = max(self.feedback_seen, seq)
            normal = _NORMAL.get(str(rec.get("verdict")))
            key = (str(rec.get("kpi")), _series_key(rec.get("series")))
            if normal is None or rec.get("rule_type") != "anomaly" or self.taught.get(key, 0) >= seq:
                continue
            partition = next((p for p, bank in self.detectors.items() if key in bank), None)
            if partition is None:
                continue                 # another worker owns the series (or it has no detector)
            raised = rec.get("raised") or {}
            try:
                self.detectors[partition][key].learn_label(raised["end"], raised["value"], normal=normal)
            except (DetectorError, KeyError, TypeError) as exc:
                self.errors[key[0]] = self.errors.get(key[0], 0) + 1
                log.warning("feedback %s on %s{%s} not taught: %s", seq, key[0], key[1], exc)
                continue
            self.taught[key] = seq
            self._dirty.setdefault(partition, set()).add(key)
            self.feedback_taught[key[0]] = self.feedback_taught.get(key[0], 0) + 1
            n += 1
        return n

    # ---- alerts ------------------------------------------------------------------------------
    async def alert(self, values: list[KpiValue], verdicts: Mapping[tuple[str, str, int], Verdict]) -> int:
        """Evaluate alert rules on every value (with its verdict if any); return the number of transitions.

        While the alert store is unreachable the samples wait in :attr:`backlog` (oldest first, at most
        ``backlog_max``; older ones are dropped and counted) and are evaluated before the next values once it
        answers: an incident that starts or ends during a Redis outage is still told."""
        if self.alerts is None:
            return 0
        values = self._with_data(values)
        if self.clock is not None and values:
            self.clock.observe(max(v.window_end_s for v in values))
        pending = self.backlog + [_sample(val, verdicts.get((val.kpi, val.series, val.window_start_ms)))
                                  for val in values]
        self.backlog = []
        changes = 0
        for i, sample in enumerate(pending):
            try:
                transitions = await self.alerts.observe(sample)
            except STORE_ERRORS as exc:  # counted and logged once per outage by the service's health
                self.alerts.health.failed(exc)
                self._keep(pending[i:])
                return changes
            self.alerts.health.ok()
            changes += len(transitions)
            for t in transitions:
                if self.on_transition is not None:
                    self.on_transition(t)
                if self.on_event is not None and t.new in ("firing", "resolved"):
                    self.on_event("alert", {"kpi": t.kpi, "labels": dict(t.labels), "state": t.new,
                                            "start": sample.window_start, "end": None, "severity": t.severity,
                                            "text": f"{t.rule}: {t.summary}" if t.summary else t.rule})
        return changes

    def _with_data(self, values: list[KpiValue]) -> list[KpiValue]:
        """``values`` without the windows of a stopped feed (see ``no_data``)."""
        if self.no_data is None:
            return values
        return [v for v in values if not self.no_data(v.kpi, v.window_start_ms / 1000, v.window_end_ms / 1000)]

    def _keep(self, samples: list[Sample]) -> None:
        over = len(samples) - self.backlog_max
        if over > 0:
            if not self.backlog_dropped:
                log.warning("alert store down: more than %d windows wait for evaluation; dropping the oldest",
                            self.backlog_max)
            self.backlog_dropped += over
            samples = samples[over:]
        self.backlog = samples


def _sample(val: KpiValue, v: Verdict | None) -> Sample:
    return Sample(val.kpi, val.labels, val.window_start_s, val.window_end_s, val.value,
                  expected=v.expected if v else None, lower=v.lower if v else None,
                  upper=v.upper if v else None, score=v.score if v else None,
                  is_anomaly=bool(v and v.is_anomaly), drift=bool(v and v.drift), revision=val.revision)


def anomaly_record(val: KpiValue, verdict: Verdict) -> dict[str, Any]:
    """The `kpi.anomalies` record of one anomalous (or drift) verdict: the value's record and the verdict."""
    return {**val.to_record(), "score": verdict.score, "expected": verdict.expected, "lower": verdict.lower,
            "upper": verdict.upper, "is_anomaly": verdict.is_anomaly, "drift": verdict.drift}


_DEFAULT_SENSITIVITY = "medium"  # what a detector state without a sensitivity was built with


def _with_notes(calendar: Calendar | None, notes: Sequence[Mapping[str, Any]]) -> Calendar | None:
    """``calendar`` with each note as a one-day promotion (name: the reason, the catalog's default lift)."""
    if not notes:
        return calendar
    base = calendar or Calendar(frozenset(), frozenset())
    promos = []
    for note in notes:
        try:
            day = base.day(float(note["ts"]))
        except (KeyError, TypeError, ValueError, OverflowError):
            continue
        promos.append((str(note.get("reason") or "expected"), day, day, _NOTE_LIFT))
    return base.with_promotions(promos)


_NOTE_LIFT = 3.0  # catalog.calendar.Promotion's default lift
_NORMAL = {"false_alarm": True, "true_alarm": False}  # feedback verdict -> learn_label's ``normal``


def _series_key(series: Any) -> str:
    """The series key (``region=east``, ``""`` for the total) of a feedback record's series labels."""
    if not isinstance(series, Mapping) or len(series) > 1:
        return "\x00"  # no series of ours
    return "".join(series_key(str(k), str(v)) for k, v in series.items())


def _taught(doc: Any) -> int:
    """The newest feedback seq a checkpoint's detector was taught (0: none, or a checkpoint from before)."""
    taught = doc.get("taught", 0) if isinstance(doc, dict) else 0
    return taught if isinstance(taught, int) else 0


def checkpoint(spec: DetectorSpecLite, det: Detector, taught: int = 0) -> bytes:
    """A detector checkpoint: ``{"spec": {"kind", "sensitivity", "params"}, "state": <to_state()>}``, so a restore
    can tell whether the catalog still asks for the detector the state was learned as; ``"taught"``: the newest
    feedback seq it learned (only once it learned one)."""
    doc: dict[str, Any] = {"spec": _spec_doc(spec), "state": det.to_state()}
    if taught:
        doc["taught"] = taught
    return orjson.dumps(doc)


def _fresh_state(cache: dict[str, dict[str, Any]], kpi: str, spec: DetectorSpecLite) -> dict[str, Any]:
    """The state a fresh detector of ``spec`` writes (once per KPI)."""
    if kpi not in cache:
        cache[kpi] = make_detector(spec.kind, spec.sensitivity, **spec.params).to_state()
    return cache[kpi]


def _legacy_spec(spec: DetectorSpecLite, state: Any,
                 fresh_state: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
    """The spec an old (spec-less) checkpoint was learned under, as far as its state tells: the current spec
    when the state's kind and parameters are those a detector of the current spec writes (its sensitivity
    too, or only that differs); None when the state cannot say."""
    if not isinstance(state, dict) or not isinstance(state.get("params"), dict):
        return None
    fresh = fresh_state()
    if state.get("kind") != fresh.get("kind"):
        return {"kind": state.get("kind"), "sensitivity": "?", "params": state["params"]}
    theirs, ours = dict(state["params"]), dict(fresh["params"])
    their_sens = theirs.pop("sensitivity", None) or _DEFAULT_SENSITIVITY
    ours.pop("sensitivity", None)
    return {**_spec_doc(spec), "sensitivity": their_sens} if theirs == ours else {
        "kind": state.get("kind"), "sensitivity": their_sens, "params": theirs}


def _spec_doc(spec: DetectorSpecLite) -> dict[str, Any]:
    return {"kind": spec.kind, "sensitivity": spec.sensitivity, "params": dict(spec.params)}


def _spec_of(doc: Any) -> dict[str, Any]:
    if not isinstance(doc, dict) or not isinstance(doc.get("params"), dict):
        raise ValueError(f"not a detector spec: {doc!r}")
    return {"kind": doc.get("kind"), "sensitivity": doc.get("sensitivity"), "params": doc["params"]}


def _describe(spec: Mapping[str, Any]) -> str:
    params = ", ".join(f"{k}={v}" for k, v in sorted(spec["params"].items()))
    return f"{spec['kind']}/{spec['sensitivity']}" + (f" {{{params}}}" if params else "")


@dataclass
class _Restore:
    """What the restore of one KPI's checkpoints found, for its one log line."""

    retuned: int = 0                # restored with the new sensitivity
    adopted: int = 0                # the new kind wraps the old one's model: learned state kept
    fresh: int = 0                  # started fresh: another kind or params
    cold: int = 0                   # unreadable (another detector version, bad JSON): started cold
    change: str = ""                # the spec change (the first one seen)
    first: str = ""                 # the first series that could not be read, and why
    why: str = ""

    def text(self, kpi: str) -> str:
        parts = []
        if self.retuned or self.fresh or self.adopted:
            kept = [f"{self.retuned} series keep their learned state with the new sensitivity"] if self.retuned else []
            kept += [f"{self.adopted} series keep their learned model under the new kind"] if self.adopted else []
            kept += [f"{self.fresh} series start fresh"] if self.fresh else []
            parts.append(f"detector spec of {kpi} changed ({self.change}): {', '.join(kept)}")
        if self.cold:
            parts.append(f"detector state of {self.cold} series of {kpi} not restored (e.g. {{{self.first}}}: "
                         f"{self.why}); they start cold")
        return "; ".join(parts)
