"""Every PromQL expression of every board (and every recording rule) runs against a real Prometheus that
scrapes the KPI metrics endpoint (see conftest.py: a stand-in for the worker until the real fixture is wired).

A panel passes when its query is valid, returns data, every metric family it names is exported, and every
``{{label}}`` of its legend is a label of every returned series.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from catalog import Catalog
from grafana import promql
from grafana.dashboards import all_dashboards
from grafana.rules import recording_rules
from tests.fixtures.prometheus import PrometheusQueryError, PrometheusServer

_NAME = re.compile(r"\b(kpi_[a-z0-9_]+|kpimon_[a-z0-9_]+)\b")
_LEGEND = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_LABEL_VALUES = re.compile(r"^label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\)$")


def targets(board: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(where, target)`` for every query of every panel."""
    for panel in board.get("panels", []):
        for target in panel.get("targets", []):
            yield f"{board['uid']} panel {panel['id']} {panel.get('title')!r} {target['refId']}", target


def interpolate(expr: str, values: dict[str, str]) -> str:
    """Replace Grafana ``${var}`` placeholders the way Grafana would (regex context, custom all value)."""
    return _VAR.sub(lambda m: values.get(m.group(1), promql.ALL_VALUE), expr)


def _exported(prom: PrometheusServer, name: str, _cache: dict[tuple[int, str], bool] = {}) -> bool:  # noqa: B006
    key = (prom.port, name)
    if key not in _cache:
        _cache[key] = bool(prom.query(f'count({{__name__="{name}"}})'))
    return _cache[key]


def check_query(prom: PrometheusServer, expr: str, legend: str = "") -> list[dict[str, Any]]:
    """Assert ``expr`` is valid, uses only exported families, returns data carrying the legend's labels."""
    for name in sorted(set(_NAME.findall(expr))):
        assert _exported(prom, name), f"{name} is not exported (query {expr!r})"
    result = prom.query(expr)
    assert result, f"no data for {expr!r}"
    for label in _LEGEND.findall(legend):
        for series in result:
            assert label in series["metric"], f"{expr!r}: series {series['metric']} lacks legend label {label!r}"
    return result


def test_every_board_query_returns_data(shop: Catalog, shop_prometheus: PrometheusServer) -> None:
    checked = 0
    for board in all_dashboards(shop).values():
        for where, target in targets(board):
            try:
                check_query(shop_prometheus, interpolate(target["expr"], {}), target.get("legendFormat", ""))
            except (AssertionError, PrometheusQueryError) as exc:
                pytest.fail(f"{where}: {exc}")
            checked += 1
    assert checked > 100


def test_all_selects_the_total_and_a_value_selects_its_series(shop: Catalog,
                                                               shop_prometheus: PrometheusServer) -> None:
    gmv = shop.kpi("gmv")
    total = check_query(shop_prometheus, interpolate(promql.selected(gmv), {}))
    assert [s["metric"] for s in total] == [{"by": "total"}]
    east = check_query(shop_prometheus, interpolate(promql.selected(gmv, "_upper"), {"region": "east"}))
    assert [s["metric"] for s in east] == [{"by": "region", "region": "east"}]
    by_channel = check_query(shop_prometheus, promql.breakdown(gmv, "channel"), "{{channel}}")
    assert {s["metric"]["channel"] for s in by_channel} == {"app", "web", "mini_program"}
    assert all(set(s["metric"]) == {"by", "channel"} for s in by_channel)


def test_each_breakdown_sums_to_the_total(shop: Catalog, shop_prometheus: PrometheusServer) -> None:
    """gmv has two breakdowns (region, channel): ``sum by (by)`` gives the total once per breakdown, and the
    README's ``sum(kpi_gmv{by="total"})`` is the total, not three times it."""
    gmv = shop.kpi("gmv")
    assert gmv.dimensions == ["region", "channel"]
    expr = "sum by (by) (max without (instance, job) (kpi_gmv))"
    per_by = {s["metric"]["by"]: float(s["value"][1]) for s in check_query(shop_prometheus, expr)}
    assert set(per_by) == {"total", "region", "channel"}
    total = float(check_query(shop_prometheus, 'sum(kpi_gmv{by="total"})')[0]["value"][1])
    assert per_by["total"] == pytest.approx(total)
    for dim in gmv.dimensions:
        assert per_by[dim] == pytest.approx(total, rel=1e-9), (dim, per_by)


def test_template_variables_list_dimension_values(shop: Catalog, shop_prometheus: PrometheusServer) -> None:
    for board in all_dashboards(shop).values():
        for var in board["templating"].get("list", []):
            if var["type"] == "datasource":
                assert var["query"] == "prometheus" and var["current"]["value"] == "kpimon-prometheus"
                continue
            match = _LABEL_VALUES.match(var["query"])
            assert match, var["query"]
            resp = httpx.get(f"{shop_prometheus.url}/api/v1/label/{match.group(2)}/values",
                             params={"match[]": match.group(1)}, timeout=10)
            values = resp.json()["data"]
            assert values and "" not in values, (board["uid"], var["name"], values)


def test_recording_rule_expressions_return_data(shop: Catalog, shop_prometheus: PrometheusServer) -> None:
    for group in recording_rules(shop):
        for rule in group["rules"]:
            check_query(shop_prometheus, rule["expr"])


@pytest.mark.parametrize(("expr", "legend", "why"), [
    ("max without (instance, job) (kpi_gmv_nonexistent)", "", "is not exported"),
    ("sum(kpi_gmv_not_there) or vector(0)", "", "is not exported"),
    ('max without (instance, job) (kpi_gmv{region="nowhere"})', "", "no data"),
    ('max without (instance, job) (kpi_gmv{region!=""})', "{{channel}}", "lacks legend label"),
])
def test_the_check_catches_wrong_queries(shop_prometheus: PrometheusServer, expr: str, legend: str,
                                         why: str) -> None:
    with pytest.raises(AssertionError, match=why):
        check_query(shop_prometheus, expr, legend)


def test_a_board_with_a_wrong_query_fails_the_check(shop: Catalog, shop_prometheus: PrometheusServer) -> None:
    board = all_dashboards(shop)["kpimon-gmv"]
    board["panels"][0]["targets"][0]["expr"] = "max without (instance, job) (kpi_gmv_typo)"
    failures = []
    for where, target in targets(board):
        try:
            check_query(shop_prometheus, interpolate(target["expr"], {}), target.get("legendFormat", ""))
        except AssertionError as exc:
            failures.append(f"{where}: {exc}")
    assert len(failures) == 1 and "kpi_gmv_typo is not exported" in failures[0]
