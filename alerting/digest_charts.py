"""One PNG chart per KPI for the digest e-mail, rendered server-side with matplotlib (Agg, no display).

The chart shows the KPI's total series over the period with its expected band (``values``: a
:data:`ValueSource`; by default the points the alert service keeps in the store for the KPIs of teams with a
digest, :func:`alerting.digest_job.charted_kpis`), and always the period's alerts: a red span from start to
resolution (to the period's end while open) and a red marker at the value the alert was raised on. Without
points (a KPI of no team with a digest, a worker started during the period) the chart is the alerts timeline. The figure is a bare
:class:`matplotlib.figure.Figure` (no pyplot): no global state, safe in a worker thread.

Examples
--------
>>> png = chart_png("orders", 0.0, 86400.0, [], [])
>>> png[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
True
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from alerting.digest import word
from alerting.digest_job import Charts
from alerting.history import IncidentRecord
from alerting.review import Review
from alerting.store import Store
from catalog.model import Catalog

__all__ = ["Point", "ValueSource", "chart_png", "charts"]

Point = tuple[float, float | None, float | None, float | None]  # (epoch, value, lower, upper)
ValueSource = Callable[[str, float, float], Awaitable[list[Point]]]  # (kpi, since, until) -> points


def _when(epoch: float, tz: str) -> float:
    del tz  # matplotlib's date numbers are days since 1970-01-01 UTC; the axis labels carry the zone
    return epoch / 86400.0


def _nan(value: float | None) -> float:
    return float("nan") if value is None else value


def chart_png(kpi: str, since: float, until: float, points: Sequence[Point], incidents: Sequence[IncidentRecord],
              tz: str = "UTC") -> bytes:
    """The chart of one KPI as PNG bytes (see the module docstring)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    zone = ZoneInfo(tz)

    fig = Figure(figsize=(8.0, 2.6), dpi=96)
    ax = fig.subplots()
    if points:
        xs = [_when(p[0], tz) for p in points]
        ax.plot(xs, [_nan(p[1]) for p in points], color="#1f77b4", linewidth=1.2, label=kpi)
        if any(p[2] is not None and p[3] is not None for p in points):
            low, high = [_nan(p[2]) for p in points], [_nan(p[3]) for p in points]
            ax.fill_between(xs, low, high, color="#1f77b4", alpha=0.15, linewidth=0)
    for inc in incidents:
        end = inc.resolved_at if inc.resolved_at is not None else until
        ax.axvspan(_when(inc.starts_at, tz), _when(max(end, inc.starts_at + 1), tz), color="#d62728", alpha=0.12)
        if inc.value is not None:
            ax.plot([_when(inc.starts_at, tz)], [inc.value], marker="v", color="#d62728", markersize=7)
    ax.set_xlim(_when(since, tz), _when(until, tz))
    ax.xaxis.set_major_formatter(FuncFormatter(
        lambda x, _: datetime.fromtimestamp(x * 86400.0, zone).strftime("%m-%d %H:%M")))
    ax.set_title(kpi, fontsize=10, loc="left")
    ax.grid(alpha=0.3)
    ax.tick_params(labelsize=8)
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


def charts(store: Store, catalog: Catalog, values: ValueSource | None = None) -> Charts:
    """The digest's chart maker: one chart per KPI of the team that had alerts (or values) in the period;
    values from ``values``, else the points the service kept in ``store`` (KPIs of teams with a digest)."""
    tz = catalog.defaults.timezone

    async def kept(kpi: str, since: float, until: float) -> list[Point]:
        return list(await store.list_points(kpi, since, until))

    values = values or kept

    async def make(r: Review, language: str) -> list[tuple[str, str, bytes]]:
        out = []
        for spec in catalog.team_kpis(r.team):
            points = await values(spec.name, r.since, r.until)
            mine = [i for i in r.incidents if i.kpi == spec.name]
            if not points and not mine:
                continue
            png = await asyncio.to_thread(chart_png, spec.name, r.since, r.until, points, mine, tz)  # CPU: off the loop
            out.append((word(language, "chart").format(spec.title_in(language)), f"chart-{spec.name}", png))
        return out

    return make
