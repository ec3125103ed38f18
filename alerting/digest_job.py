"""Reading a team's review from the store, and sending the scheduled digest once per period.

:func:`gather` reads the incident history, the audit log (feedback, threshold changes) and the rules in effect
(published rules with their overrides) and computes :func:`alerting.review.review` with the catalog's view of the
team (its KPIs, budget, detector sensitivities). :func:`send_due` is what the worker (or ``kpimon review --send``)
calls: for every team whose ``digest`` period has ended, it renders the digest in the team's language and sends it
to each of its channels, once: a per-channel marker in the store (:meth:`~alerting.store.Store.set_marker`) is
taken as a lease before sending (so two workers do not both send) and made permanent after a delivery; a failed
send lets the lease expire and is tried again on a later call. A restart therefore neither repeats nor loses a
digest (a crash between the delivery and the marker can repeat one: at-least-once, like the outbox).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol, runtime_checkable

from alerting.admin import AdminError, set_threshold
from alerting.digest import (
    DigestMessage,
    digest_id,
    period_due,
    render_html,
    render_markdown,
    render_text,
    title,
)
from alerting.notifiers.base import Outcome
from alerting.review import AttainmentFigure, Review, review
from alerting.store import Store
from alerting.tuning import Proposal, with_backtest
from catalog.model import Catalog

__all__ = [
    "AUTO_WHO", "DigestScheduler", "DigestSender", "ProposalBacktest", "SendResult", "Tuned", "auto_tune_due",
    "build_digest", "charted_kpis", "gather", "send_due", "store_attainment",
]

log = logging.getLogger(__name__)

AUDIT_LIMIT = 10_000  # the audit log's own cap: all of it
LEASE_S = 300.0
DONE_TTL_S = 60 * 86400.0

Charts = Callable[[Review, str], Awaitable[list[tuple[str, str, bytes]]]]  # (caption, cid, png)


@runtime_checkable
class DigestSender(Protocol):
    """A notifier that can deliver a digest (e-mail, and the IM robots that take markdown)."""

    async def send_digest(self, message: DigestMessage) -> Outcome: ...


async def effective_rules(store: Store) -> dict[tuple[str, str], dict[str, Any]]:
    """The published rules with their threshold overrides applied (what the proposals start from)."""
    rules, overrides = await store.get_rules(), await store.get_overrides()
    return {key: {**spec, **overrides.get(key, {})} for key, spec in rules.items()}


_SPAN_S = {"hour": 3600.0, "day": 86400.0, "week": 7 * 86400.0, "month": 30 * 86400.0}


def charted_kpis(catalog: Catalog) -> dict[str, float]:
    """KPI -> how long the service keeps its total series' points: the KPIs of teams with a digest, for one
    period and a day (the digest of a period is sent after it ends)."""
    out: dict[str, float] = {}
    for team, spec in catalog.teams.items():
        if spec.digest is not None:
            keep = (86400.0 if spec.digest.every == "daily" else 7 * 86400.0) + 86400.0
            out.update({k.name: max(keep, out.get(k.name, 0.0)) for k in catalog.team_kpis(team)})
    return out


async def store_attainment(store: Store, catalog: Catalog, team: str, since: float, until: float) -> list[AttainmentFigure]:
    """Attainment of the team's KPIs with a target over the period, from the points the service kept.

    A count or sum over tumbling windows adds up: actual = the sum of the period's windows, target = the target
    pro rata (``per: day`` over 7 days is 7 x the target; a month counts as 30 days). Any other KPI compares the
    mean of its windows with the target. No points (not kept, or no digest for the team): actual ``None``."""
    out = []
    for spec in catalog.team_kpis(team):
        if spec.target is None:
            continue
        values = [p[1] for p in await store.list_points(spec.name, since, until)]
        measure, window = spec.parsed_measure, catalog.window_of(spec)
        additive = measure is not None and measure.kind in ("count", "sum") and window.advance == window.size
        if additive and spec.target.per != "window":
            target = spec.target.value * (until - since) / _SPAN_S[spec.target.per]
            out.append(AttainmentFigure(spec.name, sum(values) if values else None, target, "period"))
        else:
            mean = sum(values) / len(values) if values else None
            out.append(AttainmentFigure(spec.name, mean, spec.target.value, spec.target.per))
    return out


#: (proposal, overrides in effect, since, until) -> its backtest figures (``alerting.admin.backtest_summary``'s
#: shape); given by the shell, which can read the workers' kpi.values (``streams.backtest.proposal_backtest``)
ProposalBacktest = Callable[[Proposal, Mapping[tuple[str, str], Any], float, float], Awaitable[Mapping[str, Any]]]


async def gather(
    store: Store, catalog: Catalog, team: str, since: float, until: float,
    attainment: Iterable[AttainmentFigure] | None = None, backtest: ProposalBacktest | None = None,
) -> Review:
    """The review of ``team`` over ``[since, until)`` from what ``store`` holds (attainment: from its points
    unless given); with ``backtest``, each tuning proposal carries its backtest over the period (a proposal whose
    backtest fails keeps none, logged)."""
    kpis = catalog.team_kpis(team)
    spec = catalog.teams.get(team)
    if attainment is None:
        attainment = await store_attainment(store, catalog, team, since, until)
    r = review(
        team, since, until, await store.list_incidents(since, until), await store.list_audit(AUDIT_LIMIT),
        kpis=[k.name for k in kpis], budget=spec.parsed_budget if spec else None, attainment=attainment,
        rules=await effective_rules(store), sensitivity={k.name: k.detector.sensitivity for k in kpis},
    )  # fmt: skip
    if backtest is None or not r.proposals:
        return r
    overrides = await store.get_overrides()
    tested = []
    for p in r.proposals:
        try:
            tested.append(with_backtest(p, await backtest(p, overrides, since, until)))
        except Exception as exc:  # noqa: BLE001 - a broker or replay failure must not stop the review
            log.warning("backtest of the proposal for %s/%s failed: %s", p.kpi, p.rule, exc)
            tested.append(p)
    return replace(r, proposals=tuple(tested))


def kpi_titles(catalog: Catalog, team: str, language: str) -> dict[str, str]:
    """KPI name -> its title in ``language``, for the team's KPIs."""
    return {k.name: k.title_in(language) for k in catalog.team_kpis(team)}


async def build_digest(
    r: Review, catalog: Catalog, language: str, channel: str, charts: Charts | None = None
) -> DigestMessage:
    """The digest message of review ``r`` for ``channel`` (its id names team, period and channel)."""
    tz, names = catalog.defaults.timezone, kpi_titles(catalog, r.team, language)
    images = await charts(r, language) if charts is not None else []
    html = render_html(r, language, tz, names, [(caption, cid) for caption, cid, _ in images])
    return DigestMessage(digest_id(r.team, r.since, channel), title(r, language, tz), render_text(r, language, tz, names),
                         render_markdown(r, language, tz, names), html, tuple((cid, png) for _, cid, png in images))


@dataclass(frozen=True, slots=True)
class SendResult:
    """One digest on one channel: ``status`` sent | already (sent before) | busy (another sender) | failed."""

    team: str
    channel: str
    since: float
    until: float
    status: str
    reason: str = ""


async def send_due(
    store: Store,
    catalog: Catalog,
    senders: Mapping[str, DigestSender],
    *,
    now: float,
    wall_now: float,
    charts: Charts | None = None,
    backtest: ProposalBacktest | None = None,
) -> list[SendResult]:
    """Send every team's digest whose period has ended at ``now`` (event time) and was not sent yet.

    ``wall_now`` dates the markers' leases (wall clock); ``senders``: channel name -> notifier."""
    out: list[SendResult] = []
    for team, spec in sorted(catalog.teams.items()):
        if spec.digest is None:
            continue
        since, until = period_due(spec.digest.every, now, catalog.defaults.timezone)
        language = catalog.team_language(team)
        pending = [c for c in spec.digest.channels if await store.get_marker(digest_id(team, since, c)) != "sent"]
        out += [SendResult(team, c, since, until, "already") for c in spec.digest.channels if c not in pending]
        if not pending:
            continue
        r = await gather(store, catalog, team, since, until, backtest=backtest)
        for channel in pending:
            out.append(await _send_one(store, catalog, senders.get(channel), r, language, channel, wall_now, charts))
    return out


async def _send_one(
    store: Store, catalog: Catalog, sender: DigestSender | None, r: Review, language: str, channel: str,
    wall_now: float, charts: Charts | None,
) -> SendResult:
    key = digest_id(r.team, r.since, channel)
    if sender is None:
        return SendResult(r.team, channel, r.since, r.until, "failed", f"channel {channel!r} cannot send digests")
    if not await store.set_marker(key, "sending", now=wall_now, ttl_s=LEASE_S, only_new=True):
        return SendResult(r.team, channel, r.since, r.until, "busy")
    message = await build_digest(r, catalog, language, channel, charts)
    outcome = await sender.send_digest(message)
    if not outcome.delivered:
        log.warning("digest %s not delivered: %s", key, outcome.reason)
        return SendResult(r.team, channel, r.since, r.until, "failed", outcome.reason)
    await store.set_marker(key, "sent", now=wall_now, ttl_s=DONE_TTL_S, only_new=False)
    return SendResult(r.team, channel, r.since, r.until, "sent", outcome.reason)


AUTO_WHO = "kpimon auto-tune"


@dataclass(frozen=True, slots=True)
class Tuned:
    """A proposal :func:`auto_tune_due` applied (``audit``: the threshold entries written)."""

    team: str
    kpi: str
    rule: str
    change: Mapping[str, Any]
    audit: tuple[Mapping[str, Any], ...]


def _pays(p: Proposal) -> bool:
    """Whether a proposal may be applied unattended: a run-time override (not a catalog change) whose backtest
    over the period fired fewer alerts than the rule in effect."""
    figures = p.backtest or {}
    now, then = figures.get("current"), figures.get("proposed")
    if "sensitivity" in p.change or not isinstance(now, Mapping) or not isinstance(then, Mapping):
        return False
    return isinstance(now.get("fired"), int) and isinstance(then.get("fired"), int) and then["fired"] < now["fired"]


async def auto_tune_due(
    store: Store, catalog: Catalog, *, now: float, wall_now: float, backtest: ProposalBacktest | None,
) -> list[Tuned]:
    """For every team with ``auto_tune: true`` whose last complete period (its digest's, else the week) ran over
    budget: apply the tuning proposals that :func:`_pays` admits, once per period (a store marker), each audited
    as :data:`AUTO_WHO` with its backtest figures (``alerting.admin.set_threshold``). Without a backtest nothing is
    applied: a change is never made blind."""
    out: list[Tuned] = []
    if backtest is None:
        return out
    for team, spec in sorted(catalog.teams.items()):
        if not spec.auto_tune:
            continue
        since, until = period_due(spec.digest.every if spec.digest else "weekly", now, catalog.defaults.timezone)
        key = f"autotune|{team}|{since:.0f}"
        if await store.get_marker(key) == "done":
            continue
        if not await store.set_marker(key, "tuning", now=wall_now, ttl_s=LEASE_S, only_new=True):
            continue
        r = await gather(store, catalog, team, since, until, backtest=backtest)
        for p in r.proposals:
            if not _pays(p):
                continue
            try:
                audit = await set_threshold(store, p.kpi, p.rule, p.change, who=AUTO_WHO, now=wall_now,
                                            comment=p.reason, backtest=p.backtest)
            except AdminError as exc:      # the rule changed since: nothing applied, said once
                log.warning("auto-tune of %s/%s skipped: %s", p.kpi, p.rule, exc)
                continue
            log.warning("auto-tune: %s/%s %s (team %s over budget; backtest %s -> %s alerts)", p.kpi, p.rule,
                        dict(p.change), team, (p.backtest or {}).get("current", {}).get("fired"),
                        (p.backtest or {}).get("proposed", {}).get("fired"))
            out.append(Tuned(team, p.kpi, p.rule, dict(p.change), tuple(audit)))
        await store.set_marker(key, "done", now=wall_now, ttl_s=DONE_TTL_S, only_new=False)
    return out


class DigestScheduler:
    """What the worker runs: :func:`send_due` at most every ``every_s`` wall-clock seconds.

    Periods follow ``clock`` (the lifecycle's event time, like the incidents they review); leases follow
    ``wall_clock``. Nothing is kept in memory that matters: the markers are in the store."""

    def __init__(
        self, store: Store, catalog: Catalog, senders: Mapping[str, DigestSender], *,
        clock: Callable[[], float] = time.time, wall_clock: Callable[[], float] = time.time,
        every_s: float = 60.0, charts: Charts | None = None, backtest: ProposalBacktest | None = None,
    ) -> None:
        self.store, self.catalog, self.senders = store, catalog, dict(senders)
        self.clock, self.wall_clock, self.every_s, self.charts = clock, wall_clock, every_s, charts
        self.backtest = backtest
        self._last: float | None = None

    @property
    def enabled(self) -> bool:
        """Whether any team has a digest or tunes itself."""
        return any(t.digest is not None or t.auto_tune for t in self.catalog.teams.values())

    def due(self) -> bool:
        """Time for another look (the first one at once)."""
        return self.enabled and (self._last is None or self.wall_clock() - self._last >= self.every_s)

    async def run(self) -> list[SendResult]:
        """Send what is due now."""
        self._last = self.wall_clock()
        sent = await send_due(self.store, self.catalog, self.senders, now=self.clock(), wall_now=self._last,
                              charts=self.charts, backtest=self.backtest)
        # after the digest, which reports the proposals; the next one lists the changes made (the audit)
        await auto_tune_due(self.store, self.catalog, now=self.clock(), wall_now=self._last, backtest=self.backtest)
        return sent
