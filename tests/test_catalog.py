"""The catalog and `kpimon check`: every error names file, line and field; nothing is accepted halfway."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from catalog import CatalogError, load_catalog, parse_catalog
from kpimon.cli import main

REPO = Path(__file__).resolve().parents[1]

BASE = """\
version: 1
sources:
  orders: {topic: events.orders}
kpis:
  - name: orders
    source: orders
    measure: count
    dimensions: [region]
"""


def issues(text: str) -> list[tuple[int, str, str]]:
    with pytest.raises(CatalogError) as exc:
        parse_catalog(text, "cat.yaml")
    return [(i.line, ".".join(str(p) for p in i.path), i.message) for i in exc.value.issues]


def test_example_catalog_is_valid() -> None:
    cat = load_catalog(REPO / "examples" / "shop.yaml")
    assert {k.name for k in cat.kpis} >= {"gmv", "orders", "paid_orders", "visits", "conversion_rate",
                                          "average_order_value", "refund_rate"}
    assert cat.kpi("gmv").title == {"en": "Gross merchandise value", "zh": "成交总额"}
    assert cat.window_of(cat.kpi("gmv_hourly")).advance == 900


@pytest.mark.parametrize(("snippet", "line", "field", "words"), [
    ("    measure: sum()\n", 7, "kpis.0.measure", "needs a field"),
    ("    measure: median(x)\n", 7, "kpis.0.measure", "unknown measure"),
    ("    window: {type: hopping, size: 1m}\n", 8, "kpis.0.window", "step"),
    ("    window: {size: 5 minutes}\n", 8, "kpis.0.window.size", "bad duration"),
    ("    filter: {amount: {bigger: 3}}\n", 8, "kpis.0.filter", "unknown operator"),
    ("    colour: red\n", 8, "kpis.0.colour", "unknown field"),
    ("    detector: {kind: magic}\n", 8, "kpis.0.detector.kind", "unknown detector kind"),
    ("    alerts: [{type: threshold}]\n", 8, "kpis.0.alerts.0", "above"),
])
def test_field_errors_name_line_and_field(snippet: str, line: int, field: str, words: str) -> None:
    text = BASE.replace("    measure: count\n", "    measure: count\n" + snippet) if "measure" not in snippet \
        else BASE.replace("    measure: count\n", snippet)
    found = issues(text)
    assert any(ln == line and path.startswith(field) and words in msg for ln, path, msg in found), found


def test_cross_kpi_errors() -> None:
    text = BASE + """\
  - name: orders
    source: nowhere
    measure: count
  - name: rate
    ratio: {numerator: orders, denominator: ghosts}
    dimensions: [channel]
"""
    found = issues(text)
    assert (9, "kpis.1.name", "KPI 'orders' is defined twice") in found
    assert any(ln == 10 and "unknown source 'nowhere'" in msg for ln, _, msg in found)
    assert any(path == "kpis.2.ratio.denominator" and "unknown KPI 'ghosts'" in msg for _, path, msg in found)


def test_ratio_needs_matching_dimensions_and_measured_parts() -> None:
    text = BASE + """\
  - name: r1
    ratio: {numerator: orders, denominator: orders}
    dimensions: [channel]
  - name: r2
    ratio: {numerator: r1, denominator: orders}
"""
    found = issues(text)
    assert any(path == "kpis.1.dimensions.0" and "'channel' is not a dimension" in msg for _, path, msg in found)
    assert any(path == "kpis.2.ratio.numerator" and "itself a ratio" in msg for _, path, msg in found)


def test_missing_environment_variable_is_reported_without_a_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KPIMON_TEST_SECRET", raising=False)
    found = issues(BASE + "channels:\n  mail: {type: webhook, url: '${KPIMON_TEST_SECRET}'}\n")
    assert any(ln == 10 and "KPIMON_TEST_SECRET" in msg for ln, _, msg in found)


def test_unknown_channel_in_a_route_and_secret_free_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KPIMON_TEST_HOOK", "https://hooks.example/T0/B0/s3cr3t-token")
    text = BASE + """\
channels:
  hook: {type: webhook, url: '${KPIMON_TEST_HOOK}', timeout_seconds: -1}
routes:
  - {match: {}, channels: [hook, pager]}
"""
    with pytest.raises(CatalogError) as exc:
        parse_catalog(text, "cat.yaml")
    text_out = str(exc.value)
    assert "pager" in text_out and "s3cr3t-token" not in text_out
    assert any(i.line == 12 for i in exc.value.issues), text_out


def test_invalid_yaml_has_a_position() -> None:
    found = issues("kpis:\n  - name: [unclosed\n")
    assert found[0][0] >= 2 and "invalid YAML" in found[0][2]


def test_check_command_prints_every_problem_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BASE.replace("measure: count", "measure: sum()") + "  - {name: x, source: orders}\n")
    result = CliRunner().invoke(main, ["check", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:7:14: kpis[0].measure: sum needs a field" in result.output
    assert f"{bad}:" in result.output and "2 problem(s)" in result.output
    ok = CliRunner().invoke(main, ["check", str(REPO / "examples" / "shop.yaml")])
    assert ok.exit_code == 0 and "OK" in ok.output


@pytest.mark.parametrize(("source", "field", "words"), [
    ("{topic: events.orders, max_future: soon}", "sources.orders.max_future", "bad duration"),
    ("{topic: events.orders, max_future: 0s}", "sources.orders.max_future", "must be > 0"),
    ("{topic: events.orders, since: last week}", "sources.orders.since", "ISO-8601"),
    ("{topic: events.orders, since: 1767225600}", "sources.orders.since", "ISO-8601"),
])
def test_source_time_bounds_errors_name_line_and_field(source: str, field: str, words: str) -> None:
    found = issues(BASE.replace("{topic: events.orders}", source))
    assert any(ln == 3 and path == field and words in msg for ln, path, msg in found), found


def test_source_time_bounds() -> None:
    cat = parse_catalog(BASE.replace("{topic: events.orders}", "{topic: events.orders, max_future: 1h, since: 2026-01-01}"))
    assert cat.sources["orders"].max_future == 3600 and cat.sources["orders"].since == 1_767_225_600
    assert parse_catalog(BASE).sources["orders"].max_future == 300 and parse_catalog(BASE).sources["orders"].since is None


FRESH = """\
import sys
from catalog import CatalogError, parse_catalog
text = sys.stdin.read()
try:
    parse_catalog(text, "cat.yaml")
except CatalogError as exc:
    print(exc)
else:
    print("accepted")
loaded = sorted({m.split(".")[0] for m in sys.modules} & {"alerting", "detectors", "grafana", "kpimon", "streams"})
print("loaded:", loaded)
"""


@pytest.mark.parametrize(("snippet", "expected"), [
    ("    detector: {kind: magic}\n", "cat.yaml:8:22: kpis[0].detector.kind: unknown detector kind 'magic'"),
    ("    detector: {kind: hst, params: {n_trees: 0}}\n", "cat.yaml:8:45: kpis[0].detector.params.n_trees: Input should be greater than or equal to 1"),
    ("    alerts: [{type: threshold, for: 5m}]\n",
     "cat.yaml:8:14: kpis[0].alerts[0]: a threshold rule needs `above`, `below` or `outside: [lo, hi]`"),
])
def test_parse_catalog_alone_is_complete_in_a_fresh_interpreter(snippet: str, expected: str) -> None:
    """No registration, no import order: `from catalog import parse_catalog` and nothing else refuses these."""
    import subprocess
    import sys

    text = BASE.replace("    measure: count\n", "    measure: count\n" + snippet)
    done = subprocess.run([sys.executable, "-c", FRESH], input=text, capture_output=True, text=True, cwd=REPO,
                          check=True, timeout=60)
    assert expected in done.stdout, done.stdout + done.stderr
    assert "loaded: []" in done.stdout, done.stdout


@pytest.mark.parametrize(("detector", "field", "words"), [
    ("{kind: seasonal, params: {level_rate: 2}}", "kpis.0.detector.params.level_rate", "less than or equal to 1"),
    ("{kind: seasonal, params: {colour: red}}", "kpis.0.detector.params.colour", "unknown parameter"),
    ("{kind: gaussian, params: {window_size: '10'}}", "kpis.0.detector.params.window_size", "valid integer"),
    ("{kind: predictive, params: {seasonality: 12}}", "kpis.0.detector.params", "gamma must be set"),
    ("{kind: seasonal, sensitivity: loud}", "kpis.0.detector.sensitivity", "'low', 'medium' or 'high'"),
])
def test_detector_errors_name_line_and_field(detector: str, field: str, words: str) -> None:
    found = issues(BASE.replace("    measure: count\n", f"    measure: count\n    detector: {detector}\n"))
    assert any(ln == 8 and path == field and words in msg for ln, path, msg in found), found


def test_a_disabled_detector_is_not_checked() -> None:
    parse_catalog(BASE.replace("    measure: count\n", "    measure: count\n    detector: {kind: magic, enabled: false}\n"))


def test_timezone_is_an_iana_name() -> None:
    assert parse_catalog(BASE + "defaults: {timezone: Asia/Shanghai}\n", "cat.yaml").defaults.timezone == "Asia/Shanghai"
    assert parse_catalog(BASE, "cat.yaml").defaults.timezone == "UTC"
    found = issues(BASE + "defaults: {timezone: Beijing}\n")
    assert any(path == "defaults.timezone" and "unknown time zone 'Beijing'" in msg and "Asia/Shanghai" in msg
               for _, path, msg in found), found


def test_every_problem_in_one_run_schema_and_references_alike() -> None:
    """Schema errors (a KPI with a bad window, a source with bad partitions) no longer hide the other checks: the
    unknown source of another KPI, an alert rule's bad field and an unknown route channel come in the same run, each
    at its own line; a ratio over the KPI whose schema is wrong is not reported a second time as unknown."""
    text = """version: 1
sources:
  orders: {topic: o}
  visits: {topic: v, partitions: -3}
kpis:
  - {name: broken, source: orders, measure: count, window: {type: tumbling, size: nope}}
  - {name: lost, source: nowhere, measure: count}
  - name: fine
    source: orders
    measure: count
    alerts: [{name: low, type: threshold, below: "x"}]
  - {name: rate, ratio: {numerator: broken, denominator: fine}}
routes:
  - {match: {}, channels: [missing]}
"""
    with pytest.raises(CatalogError) as err:
        parse_catalog(text, "cat.yaml")
    lines = {(i.line, i.message.split(";")[0][:40]) for i in err.value.issues}
    found = "\n".join(str(i) for i in err.value.issues)
    assert any(i.line == 4 and "partitions" in str(i) for i in err.value.issues), found
    assert any(i.line == 6 and "size" in str(i) for i in err.value.issues), found
    assert any(i.line == 7 and "unknown source 'nowhere'" in i.message for i in err.value.issues), found
    assert any(i.line == 11 and "below" in str(i) for i in err.value.issues), found
    assert any("unknown channel 'missing'" in i.message for i in err.value.issues), found
    assert not any("'broken'" in i.message for i in err.value.issues), found     # said once, at its schema error
    assert len(lines) == len(err.value.issues) >= 5


SECRET_CHANNELS = """version: 1
sources:
  orders: {topic: "${ORDERS_TOPIC:-s.orders}"}
kpis:
  - {name: s_orders, source: orders, measure: count}
channels:
  mail: {type: email, host: "${KPIMON_TEST_SMTP_HOST}", port: 25, from: a@b.c, to: [x@y.z]}
routes:
  - {match: {}, channels: [mail]}
"""


def test_commands_that_send_nothing_need_no_channel_secrets(tmp_path: Path) -> None:
    """Without the channels' variables the catalog is invalid for the worker (and `kpimon check`), valid for a command
    that sends no alert (channels=False); a missing variable outside the channels is an error either way."""
    with pytest.raises(CatalogError, match=r"KPIMON_TEST_SMTP_HOST\} is not set"):
        parse_catalog(SECRET_CHANNELS)
    assert parse_catalog(SECRET_CHANNELS, channels=False).kpis[0].name == "s_orders"
    with pytest.raises(CatalogError, match=r"NO_SUCH_TOPIC\} is not set"):
        parse_catalog(SECRET_CHANNELS.replace("${ORDERS_TOPIC:-s.orders}", "${NO_SUCH_TOPIC}"), channels=False)
    path = tmp_path / "cat.yaml"
    path.write_text(SECRET_CHANNELS)
    sim = CliRunner().invoke(main, ["simulate", "-c", str(path), "-b", "127.0.0.1:1", "--duration", "1"])
    assert sim.exit_code == 2 and "cannot reach Kafka at 127.0.0.1:1" in sim.output, sim.output
    assert "not set" not in sim.output
    rules = CliRunner().invoke(main, ["dashboards", "rules", "-c", str(path), "--out", str(tmp_path / "out")])
    assert rules.exit_code == 0, rules.output
    check = CliRunner().invoke(main, ["check", str(path)])
    assert check.exit_code == 2 and "KPIMON_TEST_SMTP_HOST" in check.output
