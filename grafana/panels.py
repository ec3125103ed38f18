"""Panel builders shared by the boards, on grafana-foundation-sdk's typed builders.

Why the SDK: it is Grafana's own generated model of the dashboard schema (same source as Grafana's CUE
kinds), typed (``py.typed``), and its ``from_json`` lets the tests round-trip our JSON through the schema. Each
function here returns a configured builder; layout (``gridPos``) and ids are set by :mod:`grafana.dashboards`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import gauge, prometheus, stat, timeseries
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm

__all__ = [
    "Query", "Step", "annotation_by_tag", "band_overrides", "datasource", "gauge_panel", "grid",
    "stat_panel", "timeseries_panel", "variable",
]

#: Colours by meaning (Grafana's named palette).
OK, BAD, WARN = "green", "red", "orange"


@dataclass(frozen=True, slots=True)
class Query:
    """One PromQL target: ``ref`` (A, B, ...), expression, legend (``{{label}}`` templates)."""

    ref: str
    expr: str
    legend: str = ""
    instant: bool = False


@dataclass(frozen=True, slots=True)
class Step:
    """A threshold step: from ``value`` (``None`` = -inf) on, use ``color``."""

    value: float | None
    color: str


def datasource(uid: str) -> dm.DataSourceRef:
    """Reference to the provisioned Prometheus datasource."""
    return dm.DataSourceRef(type_val="prometheus", uid=uid)


def grid(x: int, y: int, w: int, h: int) -> dm.GridPos:
    """A grid position (24 columns)."""
    return dm.GridPos(x=x, y=y, w=w, h=h)


def _target(q: Query, ds: dm.DataSourceRef) -> prometheus.Dataquery:
    target = prometheus.Dataquery().ref_id(q.ref).expr(q.expr).datasource(ds).legend_format(q.legend or "__auto")
    return target.instant() if q.instant else target.range()


def _thresholds(steps: Sequence[Step]) -> db.ThresholdsConfig:
    return db.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps(
        [dm.Threshold(value=s.value, color=s.color) for s in steps])


def _link(title: str, url: str) -> db.DashboardLink:
    return db.DashboardLink(title).type(dm.DashboardLinkType.LINK).url(url).include_vars(True).keep_time(True)


def stat_panel(title: str, queries: Sequence[Query], ds: dm.DataSourceRef, unit: str,
               steps: Sequence[Step] = (Step(None, OK),), sparkline: bool = False,
               link: tuple[str, str] | None = None) -> stat.Panel:
    """A big number (last value), optionally with a sparkline and a link to the KPI's board."""
    panel = (stat.Panel().title(title).datasource(ds).unit(unit).thresholds(_thresholds(steps))
             .graph_mode(cm.BigValueGraphMode.AREA if sparkline else cm.BigValueGraphMode.NONE)
             .color_mode(cm.BigValueColorMode.VALUE)
             .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False)))
    for q in queries:
        panel = panel.with_target(_target(q, ds))
    if link is not None:
        panel = panel.links([_link(*link)])
    return panel


def gauge_panel(title: str, query: Query, ds: dm.DataSourceRef, steps: Sequence[Step]) -> gauge.Panel:
    """A 0-100 % gauge (attainment)."""
    return (gauge.Panel().title(title).datasource(ds).unit("percentunit").min(0).max(1.2)
            .thresholds(_thresholds(steps)).with_target(_target(query, ds))
            .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
            .show_threshold_markers(True))


def timeseries_panel(title: str, queries: Sequence[Query], ds: dm.DataSourceRef, unit: str,
                     steps: Sequence[Step] | None = None, description: str = "") -> timeseries.Panel:
    """Lines over time; ``steps`` draws threshold lines (and colours the area beyond them)."""
    panel = (timeseries.Panel().title(title).datasource(ds).unit(unit).line_width(2).fill_opacity(0)
             .span_nulls(False).show_points(cm.VisibilityMode.NEVER)
             .legend(cb.VizLegendOptions().display_mode(cm.LegendDisplayMode.LIST)
                     .placement(cm.LegendPlacement.BOTTOM).show_legend(True))
             .tooltip(cb.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI).sort(cm.SortOrder.NONE)))
    if description:
        panel = panel.description(description)
    if steps:
        panel = (panel.thresholds(_thresholds(steps))
                 .thresholds_style(cb.GraphThresholdsStyleConfig().mode(cm.GraphTresholdsStyleMode.LINE_AND_AREA)))
    for q in queries:
        panel = panel.with_target(_target(q, ds))
    return panel


def band_overrides(panel: timeseries.Panel, value_ref: str, expected_ref: str, lower: Query,
                   upper: Query) -> timeseries.Panel:
    """Shade the expected band: the upper line fills down to the lower one; expected is dashed."""
    band = [dm.DynamicConfigValue(id_val="custom.lineWidth", value=0),
            dm.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": "blue"})]
    dashed = {"fill": "dash", "dash": [10, 10]}
    return (panel
            .override_by_query(value_ref, [dm.DynamicConfigValue(id_val="color",
                                                                 value={"mode": "fixed", "fixedColor": "yellow"})])
            .override_by_query(expected_ref, [dm.DynamicConfigValue(id_val="custom.lineStyle", value=dashed),
                                              dm.DynamicConfigValue(id_val="custom.lineWidth", value=1)])
            .override_by_query(lower.ref, band)
            .override_by_query(upper.ref, [*band, dm.DynamicConfigValue(id_val="custom.fillBelowTo",
                                                                        value=lower.legend),
                                           dm.DynamicConfigValue(id_val="custom.fillOpacity", value=15)]))


def variable(name: str, query: str, ds: dm.DataSourceRef, all_text: str, all_value: str) -> db.QueryVariable:
    """A single-select label_values variable whose "All" means ``all_value``."""
    return (db.QueryVariable(name).label(name).query(query).datasource(ds)
            .include_all(True).all_value(all_value).multi(False)
            .current(dm.VariableOption(selected=True, text=all_text, value="$__all"))
            .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(dm.VariableSort.ALPHABETICAL_ASC))


def annotation_by_tag(name: str, tags: list[str], color: str = "red") -> db.AnnotationQuery:
    """Grafana's own annotations (posted by kpimon) carrying all ``tags``."""
    return (db.AnnotationQuery().name(name).enable(True).icon_color(color)
            .datasource(dm.DataSourceRef(type_val="grafana", uid="-- Grafana --"))
            .target(db.AnnotationTarget().type("tags").tags(tags).match_any(False).limit(100)))
