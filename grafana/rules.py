"""Prometheus rules from the catalog: recording rules, alerting rules for static thresholds, and their
``promtool test rules`` unit tests.

For teams that route alerts with Prometheus + Alertmanager instead of kpimon's notifier. The alerting rules
mirror kpimon's threshold semantics: one alert per rule × series (the total and each dimension value), the
catalog's ``for``/``keep_firing_for``, labels ``severity``, ``team`` (the KPI owner), ``kpi``, ``rule`` plus
the rule's own labels, and a link to the KPI's panel with the firing series selected. (kpimon's
``hysteresis`` has no Prometheus equivalent; ``keep_firing_for`` is the closest.)

Examples
--------
>>> from catalog import parse_catalog
>>> cat = parse_catalog('''
... sources: {o: {topic: t}}
... kpis: [{name: orders, source: o, measure: count, alerts: [{type: threshold, below: 10, for: 2m}]}]
... ''')
>>> rule = alerting_rules(cat)[0]["rules"][0]
>>> rule["alert"], rule["expr"], rule["for"]
('KpiOrdersThreshold', 'max without (instance, job) (kpi_orders) < 10', '2m')
"""

from __future__ import annotations

import math
from typing import Any

from catalog import Catalog, KpiSpec
from catalog.alerts import fill_summary
from catalog.durations import format_duration
from grafana import promql
from grafana.links import panel_url, panel_url_template
from grafana.selfmon import self_rule_tests, self_rules
from grafana.texts import text
from grafana.thresholds import StaticThreshold, static_thresholds

__all__ = ["alert_expr", "alerting_rules", "recording_rules", "rule_file", "rule_tests"]

Rule = dict[str, Any]


def _num(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def alert_expr(kpi: KpiSpec, rule: StaticThreshold) -> str:
    """``<value> < lo or <value> > hi`` over every series of the KPI (deduplicated across workers)."""
    value = promql.dedupe(promql.family(kpi))
    parts = []
    if rule.lower_limit is not None:
        parts.append(f"{value} < {_num(rule.lower_limit)}")
    if rule.upper_limit is not None:
        parts.append(f"{value} > {_num(rule.upper_limit)}")
    return " or ".join(parts)


def recording_rules(catalog: Catalog) -> list[Rule]:
    """Operational rates and counts, and each KPI's deduplicated total (cheap long-range queries)."""
    rules: list[Rule] = [
        {"record": "kpimon:events:rate5m", "expr": promql.events_rate()},
        {"record": "kpimon:dead_letters:rate5m", "expr": promql.dead_letter_rate()},
        {"record": "kpimon:alerts:count", "expr": "sum by (kpi, severity, state) (kpimon_alerts)"},
        {"record": "kpimon:series:count", "expr": promql.dedupe("kpimon_series")},
    ]
    for kpi in catalog.kpis:
        rules.append({"record": f"kpimon:{promql.family(kpi)}:total", "expr": promql.total(kpi)})
        if kpi.target is not None:
            rules.append({"record": f"kpimon:{promql.family(kpi, '_attainment_ratio')}:total",
                          "expr": promql.attainment(kpi)})
    return [{"name": "kpimon-recording", "interval": "30s", "rules": rules}]


def _summary(catalog: Catalog, kpi: KpiSpec, rule: StaticThreshold,
             expanded: tuple[str, dict[str, str]] | None = None) -> str:
    """The rule's summary: the catalog's template with its fields as Prometheus fills them (never a literal
    ``{region}``), else the built-in text. ``expanded`` (value shown, series labels): what promtool should see."""
    lang, title = catalog.defaults.language, kpi.title_in(catalog.defaults.language)
    own = rule.summary.get(lang) or rule.summary.get("en") if isinstance(rule.summary, dict) else rule.summary
    if not own:
        return _builtin(lang, title, rule)
    total = text(lang, "total")
    if expanded is None:
        value, dims = _value_template(kpi), {d: _label_template(catalog, d) for d in kpi.dimensions}
    else:
        value, dims = expanded[0], {d: expanded[1].get(d) or total for d in kpi.dimensions}
    return fill_summary(own, {"value": value, "kpi": title, "detail": _builtin(lang, title, rule), **dims}, total)


def _builtin(lang: str, title: str, rule: StaticThreshold) -> str:
    if rule.outside is not None:
        lo, hi = rule.outside
        return text(lang, "summary_outside").format(title=title, lo=_num(lo), hi=_num(hi))
    keys = [("summary_below", rule.below), ("summary_above", rule.above)]
    return "; ".join(text(lang, key).format(title=title, limit=_num(v)) for key, v in keys if v is not None)


def _label_template(catalog: Catalog, dim: str) -> str:
    """Go template of one dimension's value, or "total" on the total series."""
    return f'{{{{ or $labels.{dim} "{text(catalog.defaults.language, "total")}" }}}}'


def _series_template(catalog: Catalog, kpi: KpiSpec) -> str:
    """Go template naming the firing series: its dimension value, or "total"."""
    fallback = text(catalog.defaults.language, "total")
    args = " ".join(f"$labels.{d}" for d in kpi.dimensions)
    return f'{{{{ or {args} "{fallback}" }}}}' if args else fallback


def _value_template(kpi: KpiSpec) -> str:
    return "{{ $value | humanizePercentage }}" if kpi.unit == "ratio" else "{{ $value | humanize }}"


def _alert(catalog: Catalog, kpi: KpiSpec, rule: StaticThreshold) -> Rule:
    labels = {"severity": rule.severity, "team": kpi.owner or "unowned", "kpi": kpi.name, "rule": rule.name}
    labels.update(rule.labels)
    description = text(catalog.defaults.language, "description").format(
        series=_series_template(catalog, kpi), value=_value_template(kpi))
    out: Rule = {"alert": rule.alert, "expr": alert_expr(kpi, rule)}
    if rule.for_:
        out["for"] = format_duration(rule.for_)
    if rule.keep_firing_for:
        out["keep_firing_for"] = format_duration(rule.keep_firing_for)
    out["labels"] = labels
    out["annotations"] = {
        "summary": _summary(catalog, kpi, rule),
        "description": description,
        "dashboard": panel_url_template(catalog.grafana.url, catalog, kpi.name),
    }
    return out


def alerting_rules(catalog: Catalog) -> list[Rule]:
    """One group per KPI that has static threshold alerts."""
    groups = []
    for kpi in catalog.kpis:
        rules = [_alert(catalog, kpi, r) for r in static_thresholds(catalog, kpi)]
        if rules:
            groups.append({"name": f"kpimon-{kpi.name}", "rules": rules})
    return groups


def rule_file(catalog: Catalog) -> dict[str, Any]:
    """The whole rule file (``groups:``): recording rules, kpimon's own health (:mod:`grafana.selfmon`), KPIs."""
    return {"groups": recording_rules(catalog) + [self_rules()] + alerting_rules(catalog)}


# --- promtool unit tests -------------------------------------------------------------------------------------

def _humanize(value: float) -> str:
    """Prometheus' ``humanize`` template function (same arithmetic, same ``%.4g``)."""
    if value == 0 or math.isinf(value) or math.isnan(value):
        return f"{value:.4g}"
    prefix = ""
    if abs(value) >= 1:
        for p in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(value) < 1000:
                break
            prefix, value = p, value / 1000
    else:
        for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
            if abs(value) >= 1:
                break
            prefix, value = p, value * 1000
    return f"{value:.4g}{prefix}"


def _test_values(rule: StaticThreshold) -> tuple[float, float]:
    """A value that breaks the rule and one that satisfies it (half a limit beyond / inside it)."""
    lo, hi = rule.lower_limit, rule.upper_limit

    def delta(v: float) -> float:
        return abs(v) / 2 or 1.0

    if lo is not None and hi is not None:
        return lo - delta(lo), (lo + hi) / 2
    if lo is not None:
        return lo - delta(lo), lo + delta(lo)
    assert hi is not None
    return hi + delta(hi), hi - delta(hi)


#: A dimension value that needs URL escaping, to test the dashboard link of a dimension series.
TEST_DIMENSION_VALUE = "north/east"


def _expected_alert(catalog: Catalog, kpi: KpiSpec, rule: StaticThreshold, bad: float,
                    labels: dict[str, str], by: dict[str, str]) -> dict[str, Any]:
    """What promtool should see for the series with ``labels``: our labels, annotations expanded."""
    alert = _alert(catalog, kpi, rule)
    shown = f"{bad * 100:.4g}%" if kpi.unit == "ratio" else _humanize(bad)
    series = next(iter(labels.values()), text(catalog.defaults.language, "total"))
    description = (alert["annotations"]["description"]
                   .replace(_series_template(catalog, kpi), series).replace(_value_template(kpi), shown))
    annotations = {**alert["annotations"], "description": description,
                   "summary": _summary(catalog, kpi, rule, (shown, labels)),
                   "dashboard": panel_url(catalog.grafana.url, catalog, kpi.name, labels)}
    return {"exp_labels": {**alert["labels"], **by, **labels}, "exp_annotations": annotations}


def _rule_test(catalog: Catalog, kpi: KpiSpec, rule: StaticThreshold) -> dict[str, Any]:
    """Good for 2 min, bad long enough to pass ``for``, good again: pending → firing → resolved.

    Runs on the total series and, when the KPI has dimensions, on one dimension series too.
    """
    bad, good = _test_values(rule)
    pending, keep = math.ceil(rule.for_ / 60), math.ceil(rule.keep_firing_for / 60)
    bad_len = pending + 3
    values = " ".join(_num(v) for v in [good] * 2 + [bad] * bad_len + [good] * (keep + 4))
    series: list[dict[str, str]] = [{}]
    if kpi.dimensions:
        series.append({kpi.dimensions[0]: TEST_DIMENSION_VALUE})
    by = [{promql.BY: next(iter(labels), promql.TOTAL)} for labels in series]
    inputs = [{"series": promql.selector(promql.family(kpi), [promql.PromMatcher(k, "=", v) for k, v in
                                                               {**b, **labels, "instance": "worker-1",
                                                                "job": "kpimon"}.items()]),
               "values": values} for b, labels in zip(by, series, strict=True)]
    firing = [_expected_alert(catalog, kpi, rule, bad, labels, b) for b, labels in zip(by, series, strict=True)]
    checks = [(2 + pending + 1, firing), (2 + bad_len + keep + 2, [])]
    if rule.for_ > 0:
        checks.insert(0, (2, []))
    return {
        "interval": "1m",
        "input_series": inputs,
        "alert_rule_test": [{"eval_time": f"{t}m", "alertname": rule.alert, "exp_alerts": exp}
                            for t, exp in checks],
    }


def rule_tests(catalog: Catalog, rule_file_path: str) -> dict[str, Any]:
    """A ``promtool test rules`` file: each generated alert fires on a synthetic series, then resolves."""
    tests = [_rule_test(catalog, kpi, r) for kpi in catalog.kpis for r in static_thresholds(catalog, kpi)]
    tests += self_rule_tests()
    return {"rule_files": [rule_file_path], "evaluation_interval": "1m", "tests": tests}
