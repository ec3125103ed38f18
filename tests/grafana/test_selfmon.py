"""kpimon's own rules: every one fires after its ``for`` and resolves in ``promtool test rules``; a broken rule
fails its case; every metric a rule reads is one the worker really exports."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from alerting.memory_store import MemoryStore
from alerting.service import AlertService
from grafana.selfmon import SELF_RULES, self_rule_tests, self_rules
from streams.exporter import KpiCollector, OpsCounters
from streams.freshness import FreshnessMonitor
from streams.observers import Observers
from tests.alerting.conftest import make_config
from tests.grafana.test_rules import run, tool


def _write(tmp_path: Path, rules: dict[str, object]) -> Path:
    (tmp_path / "self.rules.yml").write_text(yaml.safe_dump({"groups": [rules]}, sort_keys=False))
    tests = {"rule_files": ["self.rules.yml"], "evaluation_interval": "1m", "tests": self_rule_tests()}
    (tmp_path / "self.test.yml").write_text(yaml.safe_dump(tests, sort_keys=False))
    return tmp_path


def test_every_self_rule_fires_after_its_for_and_resolves(tmp_path: Path) -> None:
    out = _write(tmp_path, self_rules())
    check = run(tool("promtool"), "check", "rules", out / "self.rules.yml")
    assert check.returncode == 0, check.stdout + check.stderr
    cases = self_rule_tests()
    assert len(cases) == len(SELF_RULES) >= 9
    for case in cases:
        exp = [len(c["exp_alerts"]) for c in case["alert_rule_test"]]
        assert exp[0] == 0 and exp[-1] == 0 and 1 in exp      # quiet, firing, quiet again
    result = run(tool("promtool"), "test", "rules", "self.test.yml", cwd=out)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_worker_down_rule_without_its_for_fails_its_case(tmp_path: Path) -> None:
    rules = self_rules()
    down = next(r for r in rules["rules"] if r["alert"] == "KpimonWorkerDown")
    del down["for"]                                  # would page on the first failed scrape
    out = _write(tmp_path, rules)
    result = run(tool("promtool"), "test", "rules", "self.test.yml", cwd=out)
    assert result.returncode != 0 and "KpimonWorkerDown" in result.stdout + result.stderr


def test_the_rules_read_metrics_the_worker_exports() -> None:
    service = AlertService(make_config({}, [], {}), MemoryStore())
    collector = KpiCollector({}, lambda: [], OpsCounters(), observers=Observers({}, service),
                             freshness=FreshnessMonitor({}, service))
    families = list(collector.collect())
    exported = {f.name + ("_total" if f.type == "counter" else "") for f in families}
    read = {m for r in SELF_RULES for m in re.findall(r"\bkpimon_[a-z_]+", r.expr)}
    assert read and read <= exported, read - exported
