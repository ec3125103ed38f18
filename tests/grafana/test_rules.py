"""Prometheus rules and the Alertmanager example, checked by the real tools (promtool, amtool)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from catalog import Catalog, parse_catalog
from grafana.provisioning import RULES_FILE, RULES_TEST_FILE, render_rules, write_artifacts
from grafana.rules import alert_expr, alerting_rules, rule_file
from grafana.selfmon import SELF_RULES
from grafana.thresholds import static_thresholds, static_thresholds_of

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"


def tool(name: str) -> str:
    path = shutil.which(name) or f"/usr/bin/{name}"
    if not Path(path).exists():
        pytest.fail(f"{name} not found (Debian package prometheus / prometheus-alertmanager); tests never skip")
    return path


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def alert_rules_dir(alerts_catalog: Catalog, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rules")
    write_artifacts(render_rules(alerts_catalog, "shop+alerts.yaml"), out)
    return out


def test_committed_rules_pass_promtool_check() -> None:
    result = run(tool("promtool"), "check", "rules", DEPLOY / RULES_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_generated_alerts_fire_and_resolve_in_promtool_unit_tests(alert_rules_dir: Path,
                                                                   alerts_catalog: Catalog) -> None:
    check = run(tool("promtool"), "check", "rules", alert_rules_dir / RULES_FILE)
    assert check.returncode == 0, check.stdout + check.stderr
    tests = yaml.safe_load((alert_rules_dir / RULES_TEST_FILE).read_text())["tests"]
    assert len(tests) == len(static_thresholds(alerts_catalog)) + len(SELF_RULES) >= 4 + len(SELF_RULES)
    for case in tests:
        expectations = [len(c["exp_alerts"]) for c in case["alert_rule_test"]]
        assert expectations[-1] == 0 and max(expectations) >= 1  # fires, then resolves
    result = run(tool("promtool"), "test", "rules", RULES_TEST_FILE.split("/")[-1],
                 cwd=alert_rules_dir / "prometheus" / "tests")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_unit_tests_catch_a_broken_rule(alert_rules_dir: Path, tmp_path: Path) -> None:
    shutil.copytree(alert_rules_dir, tmp_path / "copy")
    rules = tmp_path / "copy" / RULES_FILE
    rules.write_text(rules.read_text().replace("kpi_gmv) < 1000", "kpi_gmv) < 10"))
    result = run(tool("promtool"), "test", "rules", "kpimon.rules.test.yml", cwd=rules.parent.parent / "tests")
    assert result.returncode != 0 and "KpiGmvTooLow" in result.stdout + result.stderr


def test_committed_rule_tests_pass() -> None:
    result = run(tool("promtool"), "test", "rules", "kpimon.rules.test.yml", cwd=DEPLOY / "prometheus" / "tests")
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_config_is_valid() -> None:
    result = run(tool("promtool"), "check", "config", DEPLOY / "prometheus" / "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout


def test_alertmanager_example_is_valid() -> None:
    result = run(tool("amtool"), "check-config", DEPLOY / "alertmanager" / "alertmanager.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    kinds = {k for r in config["receivers"] for k in r if k.endswith("_configs")}
    assert kinds == {"email_configs", "webhook_configs"}


def test_alert_labels_annotations_and_language(alerts_catalog: Catalog) -> None:
    groups = {g["name"]: g["rules"] for g in alerting_rules(alerts_catalog)}
    gmv = groups["kpimon-gmv"][0]
    assert gmv["alert"] == "KpiGmvTooLow" and gmv["for"] == "5m"
    assert gmv["labels"] == {"severity": "critical", "team": "sales", "kpi": "gmv", "rule": "too_low"}
    assert gmv["annotations"]["summary"] == "成交总额 低于 1000"
    assert gmv["annotations"]["dashboard"].startswith("http://localhost:3000/d/kpimon-gmv?viewPanel=1&var-region=")
    conv = next(r for r in groups["kpimon-conversion_rate"] if r["labels"].get("page") == "yes")
    assert conv["keep_firing_for"] == "5m" and conv["labels"]["page"] == "yes"
    assert "humanizePercentage" in conv["annotations"]["description"]
    # the anomaly alert is kpimon's, not Prometheus': only the two threshold rules (shop.yaml + the test's) are here
    assert sorted(r["labels"]["rule"] for r in groups["kpimon-refund_rate"]) == ["refunds_high", "threshold"]


@pytest.mark.parametrize(("item", "expr"), [
    ({"above": 5}, "X > 5"),
    ({"below": 0.5}, "X < 0.5"),
    ({"outside": [1, 2.5]}, "X < 1 or X > 2.5"),
    ({"below": 1, "above": 9}, "X < 1 or X > 9"),
])
def test_alert_expressions(item: dict[str, object], expr: str) -> None:
    cat = parse_catalog("sources: {o: {topic: t}}\nkpis: [{name: orders, source: o, measure: count}]\n")
    (rule,) = static_thresholds_of([{"type": "threshold", **item}], "orders")
    assert alert_expr(cat.kpi("orders"), rule) == expr.replace("X", "max without (instance, job) (kpi_orders)")


def test_disabled_and_invalid_thresholds() -> None:
    assert static_thresholds_of([{"type": "threshold", "above": 1, "enabled": False}], "k") == []
    with pytest.raises(ValueError, match="needs `above`"):
        static_thresholds_of([{"type": "threshold", "for": "1m"}], "k")
    with pytest.raises(ValueError, match="must be < upper"):
        static_thresholds_of([{"type": "threshold", "outside": [3, 1]}], "k")


def test_custom_summary_and_recording_rules(alerts_catalog: Catalog) -> None:
    doc = rule_file(alerts_catalog)
    records = {r["record"] for r in doc["groups"][0]["rules"]}
    assert {"kpimon:events:rate5m", "kpimon:kpi_gmv:total", "kpimon:kpi_gmv_attainment_ratio:total"} <= records
    cat = parse_catalog("sources: {o: {topic: t}}\nkpis: [{name: orders, source: o, measure: count, alerts: "
                        "[{type: threshold, below: 1, summary: 'No orders!'}]}]\n")
    assert alerting_rules(cat)[0]["rules"][0]["annotations"]["summary"] == "No orders!"


def test_summary_per_language_picks_the_catalog_language() -> None:
    cat = parse_catalog("defaults: {language: zh}\nsources: {o: {topic: t}}\nkpis: [{name: orders, source: o, "
                        "measure: count, alerts: [{type: threshold, below: 1, summary: {en: 'No orders', zh: '没有订单'}}]}]\n")
    assert alerting_rules(cat)[0]["rules"][0]["annotations"]["summary"] == "没有订单"


def test_a_catalog_summary_template_is_filled_by_prometheus_never_copied(tmp_path: Path) -> None:
    """``summary: "paid orders {value} in {region}"``: the rule carries Go templates for the fields, and promtool's
    unit test sees them expanded (the test value 0.5 humanized, the region, "total" on the total series)."""
    cat = parse_catalog("sources: {o: {topic: t}}\nkpis: [{name: orders, source: o, measure: count, "
                        "dimensions: [region], alerts: [{type: threshold, below: 1, "
                        "summary: 'orders {value} in {region} ({kpi}; {detail})'}]}]\n")
    summary = alerting_rules(cat)[0]["rules"][0]["annotations"]["summary"]
    assert "{value}" not in summary and "{region}" not in summary and "$labels.region" in summary, summary
    write_artifacts(render_rules(cat, "orders.yaml"), tmp_path)
    tests = yaml.safe_load((tmp_path / RULES_TEST_FILE).read_text())["tests"]
    shown = [a["exp_annotations"]["summary"] for case in tests for check in case["alert_rule_test"]
             for a in check["exp_alerts"] if a["exp_labels"].get("kpi") == "orders"]
    assert shown and {s.split(" (")[0] for s in shown} == {"orders 500m in total", "orders 500m in north/east"}, shown
    result = run(tool("promtool"), "test", "rules", RULES_TEST_FILE.split("/")[-1], cwd=tmp_path / "prometheus" / "tests")
    assert result.returncode == 0, result.stdout + result.stderr
