"""Catalog → Grafana dashboards (pure: no I/O). One overview board and one board per KPI.

Built with grafana-foundation-sdk's typed builders: they are generated from Grafana's own dashboard schema,
work with this install (``py.typed``, mypy-clean), and their models' ``from_json`` lets the tests validate our
JSON against that schema by round trip. Everything that users
bookmark or link to is stable: board UIDs are ``<uid_prefix>-<kpi>`` (overview: ``<uid_prefix>--overview``),
panel ids on a KPI board are fixed per role (:data:`PANEL`), and the same catalog gives the same JSON bytes.

Examples
--------
>>> from catalog import load_catalog
>>> catalog = load_catalog("examples/shop.yaml")
>>> board = kpi_dashboard(catalog, catalog.kpi("gmv"))
>>> board["uid"], board["title"]
('kpimon-gmv', '成交总额')
>>> [v["name"] for v in board["templating"]["list"]]
['datasource', 'region', 'channel']
>>> board["schemaVersion"], board["panels"][0]["datasource"]["uid"]
(39, '${datasource}')
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as dm

from catalog import Catalog, KpiSpec
from grafana import promql
from grafana.panels import (
    BAD,
    OK,
    WARN,
    Query,
    Step,
    annotation_by_tag,
    band_overrides,
    datasource,
    gauge_panel,
    grid,
    stat_panel,
    timeseries_panel,
    variable,
)
from grafana.texts import grafana_unit, text
from grafana.thresholds import StaticThreshold, static_thresholds

__all__ = [
    "PANEL", "SCHEMA_VERSION", "all_dashboards", "dashboard_uid", "datasource_uid", "export_form", "folder_uid", "kpi_dashboard", "overview_dashboard",
    "overview_uid", "to_json",
]

Board = dict[str, Any]
Pick = Callable[[KpiSpec, str], str]

#: Panel ids on a KPI board, fixed per role so links (``viewPanel=``) survive catalog edits.
PANEL = {"value": 1, "current": 2, "attainment": 3, "score_now": 4, "alerts": 5, "freshness": 6, "score": 7}
#: Breakdown panels: ``BREAKDOWN_BASE + index of the dimension``.
BREAKDOWN_BASE = 10
#: Overview panel ids: ``1000 + 10 * KPI index + KPI-board id``; the pipeline row starts at PIPELINE.
PIPELINE = 900
_UID_MAX = 40  # Grafana's limit
_TIME = ("now-6h", "now")
#: Grafana 11.0's dashboard schema version (the panel JSON we emit needs no migration from it).
SCHEMA_VERSION = 39
#: The datasource template variable every panel and variable queries through.
DS_VARIABLE = "datasource"
#: The ``__inputs`` name of the exported form (Grafana's "Export for sharing externally").
DS_INPUT = "DS_PROMETHEUS"


def _uid(catalog: Catalog, suffix: str) -> str:
    uid = f"{catalog.grafana.uid_prefix}-{suffix}"
    if len(uid) <= _UID_MAX:
        return uid
    digest = hashlib.sha256(uid.encode()).hexdigest()[:8]
    return f"{uid[:_UID_MAX - 9]}-{digest}"


def dashboard_uid(catalog: Catalog, kpi: str) -> str:
    """UID of the KPI's board: ``<uid_prefix>-<kpi>`` (shortened with a hash beyond Grafana's 40 chars)."""
    return _uid(catalog, kpi)


def overview_uid(catalog: Catalog) -> str:
    """UID of the overview board (``--`` cannot clash with a KPI name)."""
    return _uid(catalog, "-overview")


def folder_uid(catalog: Catalog) -> str:
    """UID of the Grafana folder holding the boards (provisioning and ``push`` use the same)."""
    return _uid(catalog, "-folder")


def datasource_uid(catalog: Catalog) -> str:
    """UID of the provisioned Prometheus datasource every panel queries."""
    return _uid(catalog, "prometheus")


def to_json(board: Board) -> str:
    """Canonical JSON text (sorted keys, 2-space indent, UTF-8 titles, trailing newline)."""
    return json.dumps(board, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def _finish(builder: db.Dashboard) -> Board:
    data: Board = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    data["schemaVersion"] = SCHEMA_VERSION
    return data


def _ds_variable(catalog: Catalog) -> db.DatasourceVariable:
    """Which Prometheus the board queries; defaults to the provisioned one (uid ``<uid_prefix>-prometheus``)."""
    uid = datasource_uid(catalog)
    return (db.DatasourceVariable(DS_VARIABLE).label("Prometheus").type("prometheus")
            .current(dm.VariableOption(selected=True, text=uid, value=uid)))


def export_form(board: Board) -> Board:
    """The board as Grafana's "Export for sharing externally" writes it: ``__inputs`` asks for a Prometheus
    on "Import dashboard", and the datasource variable defaults to the one chosen there."""
    out: Board = json.loads(json.dumps(board))
    ref = f"${{{DS_INPUT}}}"
    for var in out["templating"]["list"]:
        if var["name"] == DS_VARIABLE:
            var["current"] = {"selected": True, "text": ref, "value": ref}
    panels = sorted({p["type"] for p in out.get("panels", []) if p.get("type") != "row"})
    out["__inputs"] = [{"name": DS_INPUT, "label": "Prometheus", "description": "", "type": "datasource",
                        "pluginId": "prometheus", "pluginName": "Prometheus"}]
    out["__requires"] = ([{"type": "grafana", "id": "grafana", "name": "Grafana", "version": "11.0.0"},
                          {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"}]
                         + [{"type": "panel", "id": p, "name": p, "version": ""} for p in panels])
    out.pop("id", None)
    return out


def _base(catalog: Catalog, uid: str, title: str, tags: list[str]) -> db.Dashboard:
    lang = catalog.defaults.language
    return (db.Dashboard(title).uid(uid).tags(tags).refresh("1m").time(*_TIME).timezone("browser")
            .editable().tooltip(dm.DashboardCursorSync.CROSSHAIR).with_variable(_ds_variable(catalog))
            .link(db.DashboardLink(text(lang, "dashboards")).type(dm.DashboardLinkType.DASHBOARDS)
                  .tags(["kpimon"]).as_dropdown(True).include_vars(False).keep_time(True)))


def _threshold_steps(rules: list[StaticThreshold]) -> list[Step]:
    """Colour bands from the static alerts: red below the highest lower limit and above the lowest upper."""
    lows = [r.lower_limit for r in rules if r.lower_limit is not None]
    highs = [r.upper_limit for r in rules if r.upper_limit is not None]
    if not lows and not highs:
        return []
    steps = [Step(None, BAD if lows else OK)]
    if lows:
        steps.append(Step(max(lows), OK))
    if highs:
        steps.append(Step(min(highs), BAD))
    return steps


def _value_panel(catalog: Catalog, kpi: KpiSpec, ds: dm.DataSourceRef) -> Any:
    lang = catalog.defaults.language
    value = Query("A", promql.selected(kpi), text(lang, "value"))
    queries = [value]
    if kpi.detector.enabled:
        queries += [Query("B", promql.selected(kpi, "_expected"), text(lang, "expected")),
                    Query("C", promql.selected(kpi, "_lower"), text(lang, "lower")),
                    Query("D", promql.selected(kpi, "_upper"), text(lang, "upper"))]
    steps = _threshold_steps(static_thresholds(catalog, kpi))
    panel = timeseries_panel(text(lang, "value_band"), queries, ds, grafana_unit(kpi.unit), steps,
                             description=kpi.description)
    if kpi.detector.enabled:
        panel = band_overrides(panel, "A", "B", queries[2], queries[3])
    return panel.id(PANEL["value"]).grid_pos(grid(0, 4, 24, 9))


def _top_row(catalog: Catalog, kpi: KpiSpec, ds: dm.DataSourceRef, pick: Pick) -> list[Any]:
    """Current value, attainment, anomaly score, alerts, data age: the row a KPI gets on both boards.

    ``pick(kpi, suffix)`` chooses the series: the variables' selection on the KPI board, the total elsewhere.
    """
    lang = catalog.defaults.language
    steps = _threshold_steps(static_thresholds(catalog, kpi)) or [Step(None, OK)]
    cells: list[tuple[str, int, Any]] = [
        ("current", 0, stat_panel(text(lang, "current"), [Query("A", pick(kpi, ""), text(lang, "value"))],
                                  ds, grafana_unit(kpi.unit), steps, sparkline=True))]
    if kpi.target is not None:
        cells.append(("attainment", 4, gauge_panel(
            f"{text(lang, 'attainment')} ({text(lang, 'per_' + kpi.target.per)})", Query("A", promql.attainment(kpi), text(lang, "total")),
            ds, [Step(None, BAD), Step(0.8, WARN), Step(1.0, OK)])))
    if kpi.detector.enabled:
        cells.append(("score_now", 4, stat_panel(
            text(lang, "score"), [Query("A", pick(kpi, "_anomaly_score"), text(lang, "score"))], ds,
            "percentunit", [Step(None, OK), Step(0.5, WARN), Step(0.8, BAD)], sparkline=True)))
    alerts = [Query("A", promql.alert_count(kpi, "firing"), "firing"),
              Query("B", promql.alert_count(kpi, "pending"), "pending")]
    cells.append(("alerts", 4, stat_panel(text(lang, "alerts"), alerts, ds, "none", [Step(None, OK), Step(1, BAD)])))
    cells.append(("freshness", 4, stat_panel(text(lang, "freshness"), [Query("A", promql.freshness(kpi), "age")],
                                             ds, "s", _freshness_steps(catalog, kpi))))
    first = 24 - sum(w for _, w, _ in cells[1:])
    panels, x = [], 0
    for role, width, panel in cells:
        width = width or first
        panels.append(panel.id(PANEL[role]).grid_pos(grid(x, 0, width, 4)))
        x += width
    return panels


def _freshness_steps(catalog: Catalog, kpi: KpiSpec) -> list[Step]:
    """Age is normal up to one window advance plus grace; beyond twice that the data is stale."""
    window = catalog.window_of(kpi)
    normal = window.advance + window.grace
    return [Step(None, OK), Step(normal * 1.5, WARN), Step(normal * 3, BAD)]


def _breakdowns(catalog: Catalog, kpi: KpiSpec, ds: dm.DataSourceRef, y: int) -> list[Any]:
    lang = catalog.defaults.language
    out = []
    for i, dim in enumerate(kpi.dimensions):
        panel = timeseries_panel(text(lang, "by").format(dim=dim),
                                 [Query("A", promql.breakdown(kpi, dim), f"{{{{{dim}}}}}")], ds,
                                 grafana_unit(kpi.unit))
        out.append(panel.id(BREAKDOWN_BASE + i).grid_pos(grid(12 * (i % 2), y + 8 * (i // 2), 12, 8)))
    return out


def kpi_dashboard(catalog: Catalog, kpi: KpiSpec) -> Board:
    """The KPI's own board: top row, value with band and thresholds, anomaly score, one panel per dimension."""
    lang = catalog.defaults.language
    ds = datasource(f"${{{DS_VARIABLE}}}")
    tags = ["kpimon", f"kpi:{kpi.name}"] + ([f"team:{kpi.owner}"] if kpi.owner else [])
    board = _base(catalog, dashboard_uid(catalog, kpi.name), kpi.title_in(lang), tags)
    if kpi.description:
        board = board.description(kpi.description)
    for dim in kpi.dimensions:
        board = board.with_variable(variable(
            dim, f'label_values({promql.family(kpi)}{{{dim}!=""}}, {dim})', ds, text(lang, "all"), promql.ALL_VALUE))
    board = board.annotation(annotation_by_tag(text(lang, "annotations"), [f"kpi:{kpi.name}"]))
    panels = [*_top_row(catalog, kpi, ds, promql.selected), _value_panel(catalog, kpi, ds)]
    y = 13
    if kpi.detector.enabled:
        score = timeseries_panel(text(lang, "score"), [Query("A", promql.selected(kpi, "_anomaly_score"),
                                                              text(lang, "score"))], ds, "percentunit",
                                 [Step(None, OK), Step(0.5, WARN), Step(0.8, BAD)])
        panels.append(score.id(PANEL["score"]).grid_pos(grid(0, y, 24, 6)).min(0).max(1))
        y += 6
    panels += _breakdowns(catalog, kpi, ds, y)
    for panel in panels:
        board = board.with_panel(panel)
    return _finish(board)


def overview_dashboard(catalog: Catalog) -> Board:
    """Every KPI on one board: a row of stats per KPI, each linking to the KPI's board."""
    lang = catalog.defaults.language
    ds = datasource(f"${{{DS_VARIABLE}}}")
    board = _base(catalog, overview_uid(catalog), text(lang, "overview"), ["kpimon", "kpimon:overview"])
    board = board.annotation(annotation_by_tag(text(lang, "annotations"), ["kpimon"]))
    for i, kpi in enumerate(catalog.kpis):
        board = board.with_row(db.Row(kpi.title_in(lang)).id(1000 + i * 10).grid_pos(grid(0, i * 5, 24, 1)))
        for panel in _top_row(catalog, kpi, ds, promql.total):
            built = panel.build()
            assert built.grid_pos is not None and built.id_val is not None
            pos = built.grid_pos
            link = (kpi.title_in(lang), f"/d/{dashboard_uid(catalog, kpi.name)}")
            panel = panel.id(1000 + i * 10 + built.id_val).grid_pos(grid(pos.x, i * 5 + 1, pos.w, pos.h))
            board = board.with_panel(panel.links([_board_link(*link)]))
    return _finish(_pipeline(board, catalog, ds, len(catalog.kpis) * 5))


def _pipeline(board: db.Dashboard, catalog: Catalog, ds: dm.DataSourceRef, y: int) -> db.Dashboard:
    """The operational row under the KPIs: events in, dead letters out."""
    lang = catalog.defaults.language
    events = timeseries_panel(text(lang, "events"), [Query("A", promql.events_rate(), "{{source}}")], ds, "reqps")
    dead = timeseries_panel(text(lang, "dead_letters"),
                            [Query("A", promql.dead_letter_rate(), "{{source}} {{reason}}")], ds, "reqps")
    return (board.with_row(db.Row(text(lang, "operations")).id(PIPELINE).grid_pos(grid(0, y, 24, 1)))
            .with_panel(events.id(PIPELINE + 1).grid_pos(grid(0, y + 1, 12, 8)))
            .with_panel(dead.id(PIPELINE + 2).grid_pos(grid(12, y + 1, 12, 8))))


def _board_link(title: str, url: str) -> db.DashboardLink:
    return db.DashboardLink(title).type(dm.DashboardLinkType.LINK).url(url).keep_time(True)


def all_dashboards(catalog: Catalog) -> dict[str, Board]:
    """Every board by UID, overview first, then KPIs in catalog order."""
    boards = {overview_uid(catalog): overview_dashboard(catalog)}
    for kpi in catalog.kpis:
        boards[dashboard_uid(catalog, kpi.name)] = kpi_dashboard(catalog, kpi)
    return boards
