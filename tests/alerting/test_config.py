"""Alerting config validation: every problem reported with its path, nothing built halfway."""

from __future__ import annotations

from typing import Any

import pytest

from alerting.config import (
    AlertingConfigError,
    ChangeRule,
    KpiMeta,
    RouteSpec,
    ThresholdRule,
    build_alerting_config,
    parse_duration,
)

KPIS = {"paid_orders": KpiMeta(name="paid_orders", owner="shop"), "visits": KpiMeta(name="visits")}
CHANNELS = {"ops": {"type": "webhook", "url": "http://127.0.0.1:9/hook"}}


def test_valid_config_parses_durations_and_defaults() -> None:
    cfg = build_alerting_config(
        {
            "paid_orders": [
                {"type": "threshold", "below": 10, "for": "2m", "keep_firing_for": "1m"},
                {"type": "change", "name": "drop", "below_pct": 30, "compare_to": "same_window_last_week"},
            ]
        },
        [
            {
                "match": {"team": "shop"},
                "channels": ["ops"],
                "group_wait": "10s",
                "repeat_interval": "1h",
                "escalate": {"after": "15m", "channels": ["ops"]},
            }
        ],
        CHANNELS,
        KPIS,
    )
    low, drop = cfg.rules["paid_orders"]
    assert isinstance(low, ThresholdRule) and low.name == "threshold" and low.for_ == 120.0
    assert low.keep_firing_for == 60.0
    assert isinstance(drop, ChangeRule) and drop.compare_to == "same_window_last_week"
    route = cfg.routes[0]
    assert (route.group_wait, route.repeat_interval, route.group_interval) == (10.0, 3600.0, 300.0)
    assert route.escalate is not None and route.escalate.after == 900.0
    assert cfg.rule("paid_orders", "drop") is drop


def test_every_problem_is_listed_with_its_location() -> None:
    with pytest.raises(AlertingConfigError) as info:
        build_alerting_config(
            {
                "paid_orders": [
                    {"type": "threshold", "below": "lots"},
                    {"type": "threshold", "above": 5, "for": "5 minutes"},
                    {"type": "bogus"},
                    {"type": "change"},
                ],
                "unknown_kpi": [],
            },
            [
                {"channels": ["ops", "pager"]},
                {"channels": [], "group_wait": "-1s"},
                {"channels": ["ops"], "escalate": {"after": "5m", "channels": ["sms"]}},
            ],
            {**CHANNELS, "broken": {"type": "webhook", "url": "ftp://x"}},
            KPIS,
        )
    locs = {loc for loc, _ in info.value.problems}
    assert ("kpis", "paid_orders", "alerts", 0, "below") in locs
    assert ("kpis", "paid_orders", "alerts", 1, "for") in locs
    assert any(loc[:4] == ("kpis", "paid_orders", "alerts", 2) for loc in locs)
    assert ("kpis", "paid_orders", "alerts", 3) in locs
    assert ("kpis", "unknown_kpi") in locs
    assert ("routes", 0, "channels", 1) in locs
    assert ("routes", 1, "channels") in locs
    assert ("routes", 2, "escalate", "channels", 0) in locs
    assert ("channels", "broken", "url") in locs
    text = str(info.value)
    assert "unknown channel 'pager'" in text and "bad duration '5 minutes'" in text
    assert "ftp://x" not in text  # channel URLs are secrets, even in errors


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"type": "threshold"}, "needs `above`, `below` or `outside"),
        ({"type": "threshold", "outside": [5, 1]}, "must be <"),
        ({"type": "threshold", "below": 10, "above": 5}, "below >= above"),
        ({"type": "threshold", "below": 1, "outside": [0, 2]}, "not both"),
        ({"type": "threshold", "below": 1, "severity": "page"}, "'info', 'warning' or 'critical'"),
        ({"type": "threshold", "below": 1, "labels": {"__x": "y"}}, "bad label name"),
        ({"type": "threshold", "below": 1, "for": -5}, "finite number >= 0"),
        ({"type": "threshold", "below": 1, "frobnicate": 1}, "Extra inputs are not permitted"),
        ({"type": "anomaly", "fire_on": []}, "at least 1 item"),
        ({"type": "change", "above_pct": -3}, "greater than 0"),
        ({"type": "threshold", "below": 1, "name": "Bad Name"}, "String should match pattern"),
    ],
)
def test_bad_rules_are_refused_with_a_clear_message(rule: dict[str, object], message: str) -> None:
    with pytest.raises(AlertingConfigError) as info:
        build_alerting_config({"visits": [rule]}, [], {}, KPIS)
    assert message in str(info.value)


def test_duplicate_rule_names_are_an_error() -> None:
    with pytest.raises(AlertingConfigError, match="duplicate rule name 'threshold'"):
        build_alerting_config(
            {"visits": [{"type": "threshold", "below": 1}, {"type": "threshold", "above": 9}]}, [], {}, KPIS
        )


def test_route_regex_and_matching() -> None:
    with pytest.raises(AlertingConfigError, match="bad regex"):
        build_alerting_config({}, [{"channels": ["ops"], "match_re": {"kpi": "("}}], CHANNELS, KPIS)
    route = RouteSpec(channels=["ops"], match={"team": "shop"}, match_re={"kpi": "paid_.*"})
    assert route.matches({"team": "shop", "kpi": "paid_orders"})
    assert not route.matches({"team": "shop", "kpi": "visits"})
    assert not route.matches({"kpi": "paid_orders"})


@pytest.mark.parametrize("text", ["", "5", "5 m", "m5", "1x", "-1s", True, None, [1]])
def test_bad_durations(text: object) -> None:
    # "5" (a string without a unit) is refused: YAML numbers are seconds, strings need a unit.
    with pytest.raises(ValueError):
        parse_duration(text)


def test_good_durations() -> None:
    assert [parse_duration(x) for x in ("30s", "5m", "1h", "1d", "1h30m", "500ms", 90, 1.5)] == [
        30.0,
        300.0,
        3600.0,
        86400.0,
        5400.0,
        0.5,
        90.0,
        1.5,
    ]


def test_problem_locations_can_follow_the_catalog_layout() -> None:
    with pytest.raises(AlertingConfigError) as info:
        build_alerting_config(
            {"visits": [{"type": "threshold", "below": "x"}]}, [], {}, KPIS, kpi_locs={"visits": ("kpis", 1)}
        )
    assert info.value.problems[0][0] == ("kpis", 1, "alerts", 0, "below")


def test_the_documented_catalog_shape_is_valid() -> None:
    import textwrap

    import yaml

    import catalog.alerts

    doc = catalog.alerts.__doc__ or ""
    data = yaml.safe_load(
        textwrap.dedent(doc.split("Catalog shape")[1].split("::", 1)[1].split("\n\n:func:")[0])
    )
    kpi = data["kpis"][0]
    channels: dict[str, dict[str, Any]] = {
        "shop_dingtalk": {"type": "dingtalk", "url": "https://oapi.dingtalk.com/robot/send?access_token=x"},
        "oncall_email": {
            "type": "email",
            "host": "smtp.example.com",
            "from": "k@example.com",
            "to": ["o@example.com"],
        },
    }
    cfg = build_alerting_config(
        {kpi["name"]: kpi["alerts"]},
        data["routes"],
        channels,
        {kpi["name"]: KpiMeta(name=kpi["name"], owner=kpi["owner"])},
    )
    assert [r.type for r in cfg.rules["paid_orders"]] == ["threshold", "change", "anomaly", "absence"]
