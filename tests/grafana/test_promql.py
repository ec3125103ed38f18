"""The PromQL builder: escaping, selectors, errors; escaped values parse in a real Prometheus."""

from __future__ import annotations

import pytest

import grafana
from catalog import Catalog
from grafana import promql
from tests.fixtures.prometheus import PrometheusServer

NASTY = ['a"b', "back\\slash", "new\nline", "ünï ✓", "}{,=~", ""]


@pytest.mark.parametrize("value", NASTY)
def test_escaped_values_parse_and_match_exactly(value: str, shop_prometheus: PrometheusServer) -> None:
    expr = promql.selector("kpi_gmv", [promql.PromMatcher("region", "=", value)])
    result = shop_prometheus.query(expr)  # raises on a parse error
    assert all(s["metric"].get("region", "") == value for s in result)


def test_series_total_breakdown_and_selected(shop: Catalog) -> None:
    gmv = shop.kpi("gmv")
    assert promql.total(gmv) == 'max without (instance, job) (kpi_gmv{by="total"})'
    assert promql.series(gmv, "_upper", {"region": "east"}) == \
        'max without (instance, job) (kpi_gmv_upper{by="region",region="east"})'
    assert promql.selected(gmv, "_lower") == \
        'max without (instance, job) (kpi_gmv_lower{region=~"${region}",channel=~"${channel}"})'
    assert promql.total(shop.kpi("order_amount_p95")) == \
        'max without (instance, job) (kpi_order_amount_p95{by="total"})'
    assert promql.alert_count(gmv) == \
        'sum(max without (instance, job) (kpimon_alerts{kpi="gmv",state="firing"})) or vector(0)'


def test_errors_name_the_problem(shop: Catalog) -> None:
    gmv = shop.kpi("gmv")
    with pytest.raises(ValueError, match="not dimensions"):
        promql.series(gmv, "", {"country": "cn"})
    with pytest.raises(ValueError, match="not a dimension"):
        promql.breakdown(gmv, "country")
    with pytest.raises(ValueError, match="unknown companion"):
        promql.family(gmv, "_forecast")
    with pytest.raises(ValueError, match="no target"):
        promql.attainment(shop.kpi("orders"))


def test_metric_names_follow_the_worker_contract(shop: Catalog) -> None:
    names = promql.metric_names(shop.kpis)
    assert {"kpi_gmv_attainment_ratio", "kpi_gmv_upper", "kpi_gmv_hourly"} <= names
    assert "kpi_gmv_hourly_upper" not in names and "kpi_orders_target" not in names


def test_public_surface() -> None:
    for name in grafana.__all__:
        assert hasattr(grafana, name), name
