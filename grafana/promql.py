"""The single PromQL builder: every board panel and every Prometheus rule gets its expressions here.

The worker's metric contract (see the README): per KPI ``<name>`` a gauge family ``kpi_<name>`` whose *total*
series has ``by="total"`` and no dimension labels and whose dimension series carry ``by="<dimension>"`` and exactly
that one dimension label (so ``sum(kpi_gmv{by="total"})`` = ``sum(kpi_gmv{by="region"})`` = the total), plus companions
(``_expected``, ``_lower``, ``_upper``, ``_anomaly_score``, ``_target``, ``_attainment_ratio``,
``_window_end_timestamp_seconds``) and ``kpimon_*`` operational families.

Every KPI expression is wrapped in ``max without (instance, job) (...)``: with several workers (or a worker
replaced during a rebalance) the same series may be scraped from two targets for a moment; ``max`` keeps one
value per series and drops the target labels, so panels and alerts see exactly the catalog's labels.

Examples
--------
>>> escape('a"b\\\\c')
'a\\\\"b\\\\\\\\c'
>>> selector("kpi_gmv", [PromMatcher("region", "=", "")])
'kpi_gmv{region=""}'
>>> from catalog import load_catalog
>>> gmv = load_catalog("examples/shop.yaml").kpi("gmv")
>>> total(gmv)
'max without (instance, job) (kpi_gmv{by="total"})'
>>> breakdown(gmv, "region")
'max without (instance, job) (kpi_gmv{by="region"})'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from catalog import KpiSpec

__all__ = [
    "ALL_VALUE", "BY", "COMPANIONS", "TOTAL", "PromMatcher", "alert_count", "attainment", "breakdown",
    "dead_letter_rate", "dedupe", "events_rate",
    "escape", "family", "freshness", "metric_names", "selected", "selector", "series", "total",
]

Op = Literal["=", "!=", "=~", "!~"]

#: Suffixes of the per-KPI companion families (``kpi_<name><suffix>``).
COMPANIONS = ("", "_expected", "_lower", "_upper", "_anomaly_score", "_target", "_attainment_ratio",
              "_window_end_timestamp_seconds")

#: The value a board variable takes for "All": a regex that matches only the empty (absent) label, so
#: ``region=~"^$"`` selects the series without a region label, i.e. the total (see :func:`selected`).
ALL_VALUE = "^$"

_TARGETS = ("instance", "job")
#: Companions exported once per KPI, without ``by`` or dimension labels.
UNLABELLED = ("_target", "_attainment_ratio")

#: The label naming the breakdown of a KPI series (the exporter's ``streams.exporter.BY``): ``TOTAL`` on the total,
#: the dimension's name on its breakdown series.
BY, TOTAL = "by", "total"


@dataclass(frozen=True, slots=True)
class PromMatcher:
    """One label matcher, e.g. ``PromMatcher("region", "!=", "")``; the value is escaped when rendered."""

    label: str
    op: Op
    value: str

    def render(self, raw: bool = False) -> str:
        """``label op "value"``; ``raw`` keeps the value as is (Grafana ``$var`` placeholders)."""
        return f'{self.label}{self.op}"{self.value if raw else escape(self.value)}"'


def escape(value: str) -> str:
    """Escape ``value`` for a double-quoted PromQL string (backslash, quote, newline)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def selector(metric: str, matchers: Sequence[PromMatcher] = (), raw: bool = False) -> str:
    """``metric{m1,m2}``; no braces when there are no matchers."""
    if not matchers:
        return metric
    return metric + "{" + ",".join(m.render(raw) for m in matchers) + "}"


def family(kpi: KpiSpec | str, suffix: str = "") -> str:
    """The metric family name, e.g. ``family(gmv, "_upper") == "kpi_gmv_upper"``."""
    if suffix not in COMPANIONS:
        raise ValueError(f"unknown companion suffix {suffix!r}; known: {COMPANIONS}")
    name = kpi if isinstance(kpi, str) else kpi.name
    return f"kpi_{name}{suffix}"


def dedupe(expr: str) -> str:
    """One value per series across scrape targets (see the module docstring)."""
    return f"max without ({', '.join(_TARGETS)}) ({expr})"


def series(kpi: KpiSpec, suffix: str = "", labels: Mapping[str, str] | None = None) -> str:
    """The one series with exactly ``labels`` (``{}`` = the total; at most one dimension)."""
    labels = labels or {}
    unknown = set(labels) - set(kpi.dimensions)
    if unknown:
        raise ValueError(f"{sorted(unknown)} are not dimensions of KPI {kpi.name!r}")
    if len(labels) > 1:
        raise ValueError(f"a series of KPI {kpi.name!r} has one dimension at most, not {sorted(labels)}")
    if suffix in UNLABELLED:
        if labels:
            raise ValueError(f"{family(kpi, suffix)} has only a total")
        return dedupe(family(kpi, suffix))
    matchers = [PromMatcher(BY, "=", next(iter(labels), TOTAL))]
    matchers += [PromMatcher(d, "=", v) for d, v in labels.items()]
    return dedupe(selector(family(kpi, suffix), matchers))


def total(kpi: KpiSpec, suffix: str = "") -> str:
    """The KPI's total series (``by="total"``, no dimension labels)."""
    return series(kpi, suffix)


def breakdown(kpi: KpiSpec, dimension: str, suffix: str = "") -> str:
    """One series per value of ``dimension`` (``by="<dimension>"``; they sum to the total)."""
    if dimension not in kpi.dimensions:
        raise ValueError(f"{dimension!r} is not a dimension of KPI {kpi.name!r}")
    return dedupe(selector(family(kpi, suffix), [PromMatcher(BY, "=", dimension)]))


def selected(kpi: KpiSpec, suffix: str = "") -> str:
    """The series chosen by the board's template variables (one per dimension, named like it).

    A variable set to "All" (:data:`ALL_VALUE`) matches the absent label, so with every variable on "All" this
    is the total, and with ``region=east`` it is the ``region="east"`` series.
    """
    matchers = [PromMatcher(d, "=~", f"${{{d}}}") for d in kpi.dimensions]
    return dedupe(selector(family(kpi, suffix), matchers, raw=True))


def attainment(kpi: KpiSpec) -> str:
    """Target attainment of the current period (total only; 1 = target reached)."""
    if kpi.target is None:
        raise ValueError(f"KPI {kpi.name!r} has no target")
    return total(kpi, "_attainment_ratio")


def freshness(kpi: KpiSpec) -> str:
    """Seconds since the end of the window the total's value belongs to (large = stale data)."""
    return f"time() - {total(kpi, '_window_end_timestamp_seconds')}"


def alert_count(kpi: KpiSpec, state: Literal["pending", "firing"] = "firing") -> str:
    """Number of kpimon alerts of ``kpi`` in ``state`` (0 when there are none)."""
    sel = selector("kpimon_alerts", [PromMatcher("kpi", "=", kpi.name), PromMatcher("state", "=", state)])
    return f"sum({dedupe(sel)}) or vector(0)"


def metric_names(kpis: Iterable[KpiSpec]) -> set[str]:
    """Every family the boards may query for ``kpis`` (for documentation and tests)."""
    names: set[str] = set()
    for kpi in kpis:
        names.update({family(kpi), family(kpi, "_window_end_timestamp_seconds")})
        if kpi.detector.enabled:
            names.update(family(kpi, s) for s in ("_expected", "_lower", "_upper", "_anomaly_score"))
        if kpi.target is not None:
            names.update({family(kpi, "_target"), family(kpi, "_attainment_ratio")})
    return names


def events_rate(window: str = "5m") -> str:
    """Events read per second, by source topic."""
    return f"sum by (source) (rate(kpimon_events_total[{window}]))"


def dead_letter_rate(window: str = "5m") -> str:
    """Dead letters per second, by source and reason (``too_late``, ``invalid`` ...)."""
    return f"sum by (source, reason) (rate(kpimon_dead_letters_total[{window}]))"
