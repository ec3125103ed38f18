"""The notification pipeline run on every tick: mute -> route and group -> flush -> escalate -> outbox.

Like Alertmanager's ``MultiStage{silence, dispatch, fanout}``: silenced alerts never reach a group;
acknowledged ones stay in their group (their resolution is still told) but do not cause repeats or escalation.
Notifications are written to the outbox *before* the group state that records them, and their ids are
derived from the group's flush counter, so a worker that crashes in between re-enqueues the same ids (a no-op)
instead of sending twice.
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from alerting.acks import AckMuter
from alerting.config import (
    AbsenceRule,
    AlertingConfig,
    AlertRuleSpec,
    AnomalyRule,
    ChangeRule,
    KpiMeta,
    RouteSpec,
    ThresholdRule,
)
from alerting.escalation import Candidate, due_escalations, mark_escalated
from alerting.freshness import SOURCE_SILENT, SourceRecord, is_held
from alerting.grouping import GroupState, Member, apply_flush, flush_reason, group_key, match_routes, route_id
from alerting.grouping import to_notify as _to_notify
from alerting.lifecycle import AlertState
from alerting.notifiers import fmt
from alerting.notifiers.base import AlertInfo, Notification
from alerting.notifiers.render import source_silent_text
from alerting.notifiers.templates import LANGUAGES, word
from alerting.outbox import Outbox
from alerting.rules import fill_summary
from alerting.silences import SilenceMuter
from alerting.store import Store

__all__ = ["Pipeline", "alert_info"]

_SILENCE_KEEP_S = 86400.0  # expired silences stay listable for a day
_HIDDEN = frozenset({"alertname", "kpi", "severity"})  # shown as AlertInfo fields, not repeated as labels


class _Safe(dict[str, str]):
    # A dimension the series does not have (the total series has none) selects Grafana's "All",
    # which on kpimon's boards shows the total.
    def __missing__(self, key: str) -> str:
        return "%24__all"


def _condition(rule: AlertRuleSpec | None, a: AlertState) -> tuple[str, tuple[float, ...]]:
    """The condition key and limits the renderer words (see :class:`AlertInfo`)."""
    if isinstance(rule, ThresholdRule):
        if rule.outside is not None:
            return "outside", tuple(rule.outside)
        if rule.below is not None and (rule.above is None or a.value is None or a.value < rule.below):
            return "below", (rule.below,)
        return ("above", (rule.above,)) if rule.above is not None else ("", ())
    if isinstance(rule, ChangeRule):
        when = "previous" if rule.compare_to == "previous" else "last_week"
        if rule.below_pct is not None:
            return f"drop_{when}", (rule.below_pct,)
        return f"rise_{when}", (rule.above_pct or 0.0,)
    if isinstance(rule, AnomalyRule):
        # rules.py words a drift verdict as a level shift; a rule on both verdicts may fire on either
        drift = rule.fire_on == ["drift"] or a.summary.startswith("level shift")
        return ("drift", ()) if drift else ("anomaly", ())
    if isinstance(rule, AbsenceRule):
        return "absent", ()
    return "", ()


def _summaries(rule: AlertRuleSpec | None, a: AlertState, meta: KpiMeta | None) -> dict[str, str]:
    """The rule's own summary, filled in each language it is written in (numbers formatted for the KPI)."""
    if rule is None or rule.summary is None:
        return {}
    out = {}
    for lang in LANGUAGES:
        template = rule.summary_in(lang)
        if template:
            kind, unit = (meta.kind, meta.unit) if meta else ("value", "")
            unit = unit if kind in ("money", "ratio") else ""  # "paid orders {value}": the number, no unit
            value = fmt.number(a.value, kind, unit, lang, none=word(lang, "no_data"))
            fields = {"value": value, "kpi": meta.title_in(lang) if meta else a.kpi, **a.series}
            out[lang] = fill_summary(template, fields, word(lang, "total"))
    return out


def alert_info(
    a: AlertState, status: str, config: AlertingConfig, language: str, now: float = 0.0, *, correction: bool = False
) -> AlertInfo:
    """What notifiers see of ``a``, titled in ``language`` (and carrying every language's title; with its
    correction for a correction notice)."""
    if a.rule == SOURCE_SILENT:
        return _silent_info(a, status, config, language)
    meta = config.kpis.get(a.kpi)
    rule = config.rule(a.kpi, a.rule)
    url = None
    if meta is not None and meta.dashboard_url:
        url = meta.dashboard_url.format_map(_Safe(kpi=a.kpi, **a.series))
    cond, limits = _condition(rule, a)
    starts = a.starts_at or a.updated_at
    actions = config.actions.urls(a.fingerprint, starts, now=now) if config.actions and status == "firing" else {}
    return AlertInfo(
        rule=a.rule,
        kpi=a.kpi,
        kpi_title=meta.title_in(language) if meta else a.kpi,
        severity=a.severity,
        status=status,
        labels={k: v for k, v in a.labels.items() if k not in _HIDDEN},
        value=a.value,
        expected=a.expected,
        lower=a.lower,
        upper=a.upper,
        unit=meta.unit if meta else "",
        summary=a.summary,
        window_start=a.window_start,
        window_end=a.window_end,
        starts_at=starts,
        ends_at=a.ends_at if status == "resolved" else None,
        fingerprint=a.fingerprint,
        dashboard_url=url,
        kind=rule.type if rule else "",
        condition=cond,
        limits=limits,
        value_kind=meta.kind if meta else "value",
        value_min=meta.min_value if meta else None,
        value_max=meta.max_value if meta else None,
        owner=meta.owner if meta else "",
        kpi_titles=dict(meta.title) if meta else {},
        summaries=_summaries(rule, a, meta),
        actions=actions,
        correction=dict(a.correction) if correction and a.correction else None,
        drift_since=a.incident.get("level_since") if a.incident else None,
    )


def _silent_info(a: AlertState, status: str, config: AlertingConfig, language: str) -> AlertInfo:
    """A ``source_silent`` alert: the source, since when, and the KPIs it feeds (titled in ``language``)."""
    kpis = [k for k in a.labels.get("kpis", "").split(",") if k]
    titles = [m.title_in(language) if (m := config.kpis.get(k)) else k for k in kpis]
    title, summary, affected = source_silent_text(language, status, a.kpi, a.window_start, a.window_end, titles,
                                                  config.timezone)
    team = {"team": a.labels["team"]} if a.labels.get("team") else {}
    return AlertInfo(
        rule=a.rule, kpi=a.kpi, kpi_title=title, severity=a.severity, status=status,
        labels={"source": a.kpi, **team, "affected": affected},
        value=None, expected=None, lower=None, upper=None, unit="", summary=summary,
        window_start=a.window_start, window_end=a.window_end, starts_at=a.starts_at or a.updated_at,
        ends_at=a.ends_at if status == "resolved" else None, fingerprint=a.fingerprint, kind=SOURCE_SILENT,
    )  # fmt: skip


def _status(a: AlertState) -> str | None:
    """How groups see an alert: firing, resolved, or not at all (pending, inactive)."""
    if a.state in ("firing", "resolved"):
        return a.state
    # pending again after a resolution: to receivers, the previous incident is resolved
    return "resolved" if a.state == "pending" and a.ends_at is not None else None


def _note_id(*parts: object) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:32]


@dataclass(slots=True)
class _Round:
    """One tick's view: members per group key and the routes they came from."""

    members: dict[str, list[tuple[Member, AlertState]]] = field(default_factory=lambda: defaultdict(list))
    routes: dict[str, RouteSpec] = field(default_factory=dict)
    muted: set[str] = field(default_factory=set)


class Pipeline:
    """Turns the stored alert states into notifications in the outbox."""

    def __init__(
        self,
        store: Store,
        outbox: Outbox,
        config: Callable[[], AlertingConfig],
        *,
        sources_of: Mapping[str, frozenset[str]] | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.outbox = outbox
        self.config = config
        #: KPI -> the sources it is computed from; their freshness inhibits its alerts (alerting.freshness)
        self.sources_of = sources_of or {}
        self.wall_clock = wall_clock

    async def run(self, now: float) -> int:
        """One pass at ``now``; returns how many notifications were queued."""
        config = self.config()
        alerts = await self.store.list_alerts()
        groups = {g["key"]: GroupState.from_dict(g) for g in await self.store.list_groups()}
        rnd = await self._collect(config, alerts, groups, now)
        queued = 0
        for key, group in list(groups.items()):
            route = rnd.routes.get(key) or self._route(config, group.route)
            members = rnd.members.get(key, [])
            if route is None or not members:
                await self.store.delete_group(key)  # route gone, or nothing left to tell
                del groups[key]
                continue
            before = group.to_dict()
            queued += await self._correct(config, group, route, members, now)
            queued += await self._flush(config, group, route, members, now)
            queued += await self._escalate(config, group, route, members, now)
            if group.to_dict() != before:
                await self.store.put_group(key, group.to_dict())
        await self._collect_garbage(alerts, groups, rnd.muted, now)
        return queued

    @staticmethod
    def _route(config: AlertingConfig, rid: str) -> RouteSpec | None:
        return next((r for i, r in enumerate(config.routes) if route_id(r, i) == rid), None)

    async def _collect(
        self, config: AlertingConfig, alerts: Sequence[AlertState], groups: dict[str, GroupState], now: float
    ) -> _Round:
        silences = SilenceMuter(await self.store.list_silences())
        by_fp = {a.fingerprint: a for a in alerts}
        # An ack covers one incident: only while the alert still fires since the acknowledged start.
        acks = AckMuter(
            k
            for k in await self.store.list_acks()
            if (a := by_fp.get(k.fingerprint)) is not None and a.starts_at == k.incident
        )
        rnd = _Round()
        fresh = await self._freshness()
        wall = self.wall_clock()
        for a in alerts:
            status = _status(a)
            if status is None or is_held(a, fresh, self.sources_of, wall):
                continue  # held while its sources are quiet or silent: tracked, not told
            if silences.mutes(a.labels, now):
                rnd.muted.add(a.fingerprint)
                continue
            member = Member(a.fingerprint, status, acks.mutes(a.labels, now))
            for rid, route in match_routes(config.routes, a.labels):
                key, glabels = group_key(rid, route, a.labels)
                if key not in groups:
                    if status != "firing":
                        continue  # a resolved alert never needs a new group
                    # group_wait counts from when the alert fired, not from whichever tick noticed it
                    new = GroupState.new(key, glabels, min(now, a.starts_at or now), rid)
                    groups[key] = GroupState.from_dict(await self.store.create_group(key, new.to_dict()))
                rnd.routes[key] = route
                rnd.members[key].append((member, a))
        return rnd

    async def _freshness(self) -> dict[str, SourceRecord]:
        if not self.sources_of:
            return {}
        return {name: SourceRecord.from_dict(doc) for name, doc in (await self.store.list_sources()).items()}

    def _notes(
        self,
        config: AlertingConfig,
        group: GroupState,
        route: RouteSpec,
        channels: Sequence[str],
        alerts: Sequence[tuple[Member, AlertState]],
        kind: str,
        seq: int | str,
        now: float,
    ) -> list[Notification]:
        status = "firing" if any(m.status == "firing" for m, _ in alerts) else "resolved"
        fix = kind == "correction"
        status = "correction" if fix else status
        infos = tuple(alert_info(a, m.status, config, route.language, now, correction=fix) for m, a in alerts)
        # A channel named twice (or in a route and its escalation) is one receiver: it gets one message.
        return [
            Notification(
                id=_note_id(group.key, group.incarnation, "escalate" if kind == "escalation" else kind, seq, channel),
                group_key=group.key,
                receiver=channel,
                status=status,
                alerts=infos,
                language=route.language,
                external_url=route.external_url,
                kind=kind,
                at=now,
                timezone=config.timezone,
                # the group's first message on this channel: later ones (updates, resolution) reply to it
                thread=_note_id(group.key, group.incarnation, "notify", 0, channel),
            )
            for channel in dict.fromkeys(channels)
        ]

    async def _correct(
        self, config: AlertingConfig, group: GroupState, route: RouteSpec, members: list[tuple[Member, AlertState]],
        now: float,
    ) -> int:
        """Queue one correction notice per new correction of an alert whose firing this group told.

        A retracted alert leaves the group's ``sent``: the correction is its resolution, no resolved notice
        follows. Ids hash (group, fingerprint, correction seq, channel), so a retried tick queues nothing twice.
        """
        queued = 0
        present = {m.fingerprint for m, _ in members}
        group.corrected = {fp: n for fp, n in group.corrected.items() if fp in present}
        for member, a in members:
            c = a.correction
            if c is None or group.sent.get(a.fingerprint) != "firing" or group.corrected.get(a.fingerprint) == c["seq"]:
                continue
            seq = f"{a.fingerprint}:{c['seq']}"
            for note in self._notes(config, group, route, route.channels, [(member, a)], "correction", seq, now):
                await self.outbox.put(note)
                queued += 1
            group.corrected[a.fingerprint] = int(c["seq"])
            if c.get("retracted"):
                group.sent.pop(a.fingerprint, None)
        return queued

    async def _flush(
        self,
        config: AlertingConfig,
        group: GroupState,
        route: RouteSpec,
        members: list[tuple[Member, AlertState]],
        now: float,
    ) -> int:
        if flush_reason(group, route, [m for m, _ in members], now) is None:
            return 0
        chosen = {m.fingerprint for m in _to_notify(group, [m for m, _ in members])}
        alerts = [(m, a) for m, a in members if m.fingerprint in chosen]
        shown = alerts if route.send_resolved else [(m, a) for m, a in alerts if m.status == "firing"]
        if shown:
            for note in self._notes(config, group, route, route.channels, shown, "notify", group.seq, now):
                await self.outbox.put(note)
        apply_flush(group, [m for m, _ in alerts], now)
        return len(set(route.channels)) if shown else 0

    async def _escalate(
        self,
        config: AlertingConfig,
        group: GroupState,
        route: RouteSpec,
        members: list[tuple[Member, AlertState]],
        now: float,
    ) -> int:
        firing = {
            m.fingerprint: (m, a) for m, a in members if m.status == "firing" and a.starts_at is not None
        }
        candidates = [Candidate(fp, a.severity, a.starts_at or 0.0, m.acked) for fp, (m, a) in firing.items()]
        due = due_escalations(group, route, candidates, now)
        if due and route.escalate is not None:
            alerts = [firing[c.fingerprint] for c in due]
            notes = self._notes(
                config, group, route, route.escalate.channels, alerts, "escalation", group.escalation_seq, now
            )
            for note in notes:
                await self.outbox.put(note)
        mark_escalated(group, due, set(firing))
        return len(set(route.escalate.channels)) if due and route.escalate else 0

    async def _collect_garbage(
        self, alerts: Sequence[AlertState], groups: Mapping[str, GroupState], muted: set[str], now: float
    ) -> None:
        """Forget resolved alerts once every group told (or never needed to tell) their resolution."""
        told_firing = {fp for g in groups.values() for fp, status in g.sent.items() if status == "firing"}
        live = {a.fingerprint: a for a in alerts if a.state in ("pending", "firing")}
        for a in alerts:
            if a.state == "resolved" and (a.fingerprint in muted or a.fingerprint not in told_firing):
                await self.store.delete_alert(a.fingerprint, if_unchanged=a)
        for ack in await self.store.list_acks():
            alert = live.get(ack.fingerprint)
            if alert is None or alert.starts_at != ack.incident:
                await self.store.delete_ack(ack.fingerprint)
        for silence in await self.store.list_silences():
            if silence.ends_at + _SILENCE_KEEP_S < now:
                await self.store.delete_silence(silence.id)
