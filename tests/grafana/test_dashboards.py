"""Boards from the catalog: schema (grafana-foundation-sdk round trip), layout invariants, stable ids and bytes,
language, thresholds, band, variables, annotations, links."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard

from catalog import Catalog, parse_catalog
from grafana import links, promql
from grafana.dashboards import (
    PANEL,
    all_dashboards,
    dashboard_uid,
    kpi_dashboard,
    overview_dashboard,
    to_json,
)

register_default_plugins()  # decode panel options/fieldConfig with each panel type's own model


def schema_problems(board: dict[str, Any]) -> list[str]:
    """Round-trip through the SDK's typed model: keys the schema does not know are dropped, so any difference
    means the JSON is not what Grafana's schema describes."""
    again = json.loads(json.dumps(Dashboard.from_json(copy.deepcopy(board)), cls=JSONEncoder))
    a, b = to_json(board).splitlines(), to_json(again).splitlines()
    return [f"{x!r} != {y!r}" for x, y in zip(a, b, strict=False) if x != y][:5] + (
        [f"{len(a)} vs {len(b)} lines"] if len(a) != len(b) else [])


def layout_problems(board: dict[str, Any], ds_uid: str) -> list[str]:
    problems, ids, cells = [], set(), set()
    variables = {v["name"] for v in board["templating"].get("list", [])}
    for panel in board["panels"]:
        pid, pos = panel["id"], panel["gridPos"]
        if pid in ids:
            problems.append(f"duplicate panel id {pid}")
        ids.add(pid)
        if pos["x"] < 0 or pos["x"] + pos["w"] > 24 or pos["w"] <= 0 or pos["h"] <= 0:
            problems.append(f"panel {pid} outside the grid: {pos}")
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                if (x, y) in cells:
                    problems.append(f"panel {pid} overlaps at {(x, y)}")
                cells.add((x, y))
        for target in panel.get("targets", []):
            if target["datasource"] != {"type": "prometheus", "uid": ds_uid}:
                problems.append(f"panel {pid} queries {target['datasource']}")
            problems += [f"panel {pid}: undefined ${{{v}}}" for v in re.findall(r"\$\{(\w+)\}", target["expr"])
                         if v not in variables]
    return problems


def test_every_board_matches_the_schema_and_layout_rules(shop: Catalog) -> None:
    boards = all_dashboards(shop)
    assert len(boards) == len(shop.kpis) + 1
    for uid, board in boards.items():
        assert board["uid"] == uid and len(uid) <= 40
        assert schema_problems(board) == [], uid
        assert layout_problems(board, "${datasource}") == [], uid


def test_the_schema_check_catches_unknown_fields(shop: Catalog) -> None:
    board = kpi_dashboard(shop, shop.kpi("gmv"))
    board["panels"][0]["options"]["grpahMode"] = "area"
    _panel(board, PANEL["value"])["fieldConfig"]["defaults"]["custom"]["fillBelowToo"] = "x"
    board["refreshh"] = "1m"
    assert len(schema_problems(board)) >= 3


def test_the_layout_check_catches_overlaps_and_undefined_variables(shop: Catalog) -> None:
    board = kpi_dashboard(shop, shop.kpi("gmv"))
    board["panels"][1]["gridPos"] = dict(board["panels"][0]["gridPos"])
    board["panels"][2]["targets"][0]["expr"] = "kpi_gmv{zone=~\"${zone}\"}"
    problems = layout_problems(board, "${datasource}")
    assert any("overlaps" in p for p in problems) and any("${zone}" in p for p in problems)


def test_same_catalog_same_bytes(shop: Catalog) -> None:
    first = {uid: to_json(b) for uid, b in all_dashboards(shop).items()}
    second = {uid: to_json(b) for uid, b in all_dashboards(shop).items()}
    assert first == second


def test_uids_and_panel_ids_are_stable_when_kpis_move(shop: Catalog) -> None:
    reordered = shop.model_copy(update={"kpis": list(reversed(shop.kpis))})
    for kpi in shop.kpis:
        a, b = kpi_dashboard(shop, kpi), kpi_dashboard(reordered, kpi)
        assert a == b and a["uid"] == dashboard_uid(shop, kpi.name) == f"kpimon-{kpi.name}"
    gmv = kpi_dashboard(shop, shop.kpi("gmv"))
    assert {p["id"] for p in gmv["panels"]} == set(PANEL.values()) | {10, 11}


def test_titles_follow_the_catalog_language_with_english_fallback(shop: Catalog) -> None:
    assert kpi_dashboard(shop, shop.kpi("gmv"))["title"] == "成交总额"
    assert overview_dashboard(shop)["title"] == "KPI 总览"
    english = shop.model_copy(update={"defaults": shop.defaults.model_copy(update={"language": "fr"})})
    assert kpi_dashboard(english, shop.kpi("gmv"))["title"] == "Gross merchandise value"
    assert overview_dashboard(english)["title"] == "KPI overview"


def _panel(board: dict[str, Any], pid: int) -> dict[str, Any]:
    return next(p for p in board["panels"] if p["id"] == pid)


def test_value_panel_has_the_band_and_catalog_thresholds() -> None:
    cat = parse_catalog("""
sources: {o: {topic: t}}
kpis:
  - {name: orders, source: o, measure: count, dimensions: [region],
     alerts: [{name: low, type: threshold, below: 10}, {name: high, type: threshold, above: 500, severity: critical},
              {type: anomaly}]}
""")
    value = _panel(kpi_dashboard(cat, cat.kpi("orders")), PANEL["value"])
    exprs = [t["expr"] for t in value["targets"]]
    assert exprs == [promql.selected(cat.kpi("orders"), s) for s in ("", "_expected", "_lower", "_upper")]
    steps = value["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps == [{"color": "red", "value": None}, {"color": "green", "value": 10}, {"color": "red",
                                                                                         "value": 500}]
    assert value["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"] == {"mode": "line+area"}
    fill = [o for o in value["fieldConfig"]["overrides"] if o["matcher"]["options"] == "D"][0]
    assert {"id": "custom.fillBelowTo", "value": "lower bound"} in fill["properties"]


def test_kpi_without_detector_or_target_has_no_band_score_or_gauge(shop: Catalog) -> None:
    board = kpi_dashboard(shop, shop.kpi("gmv_hourly"))
    ids = {p["id"] for p in board["panels"]}
    assert PANEL["score"] not in ids and PANEL["attainment"] not in ids and PANEL["score_now"] not in ids
    assert [t["refId"] for t in _panel(board, PANEL["value"])["targets"]] == ["A"]
    assert "_anomaly_score" not in to_json(board) and "_expected" not in to_json(board)


def test_variables_breakdowns_and_annotations(shop: Catalog) -> None:
    board = kpi_dashboard(shop, shop.kpi("gmv"))
    region = board["templating"]["list"][1]
    assert region["query"] == 'label_values(kpi_gmv{region!=""}, region)'
    assert region["includeAll"] and region["allValue"] == promql.ALL_VALUE
    assert _panel(board, 10)["targets"][0]["expr"] == 'max without (instance, job) (kpi_gmv{by="region"})'
    assert _panel(board, 11)["targets"][0]["legendFormat"] == "{{channel}}"
    annotation = board["annotations"]["list"][0]
    assert annotation["target"] == {"type": "tags", "tags": ["kpi:gmv"], "matchAny": False, "limit": 100}


def test_overview_lists_every_kpi_with_links_and_totals(shop: Catalog) -> None:
    board = overview_dashboard(shop)
    rows = [p["title"] for p in board["panels"] if p["type"] == "row"]
    assert rows[:-1] == [k.title_in("zh") for k in shop.kpis]
    assert "${" not in to_json(board).replace("${datasource}", "")
    gauges = [p for p in board["panels"] if p["type"] == "gauge"]
    assert len(gauges) == sum(1 for k in shop.kpis if k.target)
    stat = next(p for p in board["panels"] if p["type"] == "stat")
    assert stat["links"][0]["url"] == "/d/kpimon-gmv"


@pytest.mark.parametrize(("labels", "expected"), [
    ({}, "var-region=%24__all&var-channel=%24__all"),
    ({"region": "east", "severity": "critical"}, "var-region=east&var-channel=%24__all"),
    ({"channel": 'a b&c"'}, "var-region=%24__all&var-channel=a%20b%26c%22"),
])
def test_panel_url(shop: Catalog, labels: dict[str, str], expected: str) -> None:
    url = links.panel_url("https://grafana.example.com/", shop, "gmv", labels)
    assert url == f"https://grafana.example.com/d/kpimon-gmv?viewPanel={PANEL['value']}&{expected}"
    with pytest.raises(KeyError, match="unknown KPI"):
        links.panel_url("http://g", shop, "nope", {})


def test_long_uids_are_shortened_stably() -> None:
    name = "a" * 60
    cat = parse_catalog(f"sources: {{o: {{topic: t}}}}\nkpis: [{{name: {name}, source: o, measure: count}}]\n"
                        "grafana: {uid_prefix: twenty_chars_prefix_}\n")
    uid = dashboard_uid(cat, name)
    assert len(uid) == 40 and uid == dashboard_uid(cat, name) and uid.startswith("twenty_chars_prefix_-a")
