"""`kpimon threshold …` and `kpimon alerts …` against a real Redis."""

from __future__ import annotations

import asyncio
import json

import click
from click.testing import CliRunner, Result

from alerting.lifecycle import advance, new_state
from alerting.redis_store import RedisStore
from kpimon.commands.alerts import alerts, threshold


def invoke(group: click.Group, url: str, prefix: str, *args: str, user: str = "ann") -> Result:
    env = {"KPIMON_REDIS_URL": url, "KPIMON_REDIS_PREFIX": prefix, "USER": user}
    return CliRunner().invoke(group, list(args), env=env, catch_exceptions=False)


def seed(url: str, prefix: str) -> str:
    async def main() -> str:
        store = RedisStore.from_url(url, prefix=prefix)
        await store.publish_rules(
            {
                ("orders", "low"): {
                    "type": "threshold",
                    "name": "low",
                    "below": 10.0,
                    "for": 60.0,
                    "severity": "warning",
                }
            }
        )
        state = advance(
            new_state("orders", "low", {}, {"kpi": "orders", "team": "shop"}, "warning"),
            True,
            now=100.0,
            for_s=0,
            keep_s=0,
        )
        await store.put_alert(state)
        await store.aclose()
        return state.fingerprint

    return asyncio.run(main())


def test_threshold_commands(redis_server: str, redis_prefix: str) -> None:
    seed(redis_server, redis_prefix)
    out = invoke(threshold, redis_server, redis_prefix, "list")
    assert out.exit_code == 0 and "orders/low [threshold, warning] below=10.0" in out.output
    out = invoke(
        threshold,
        redis_server,
        redis_prefix,
        "set",
        "orders",
        "low",
        "below=5",
        "for=5m",
        "--comment",
        "promo",
    )
    assert out.exit_code == 0, out.output
    assert "below: 10.0 -> 5.0" in out.output and "for: 60.0 -> 300.0" in out.output
    got = json.loads(invoke(threshold, redis_server, redis_prefix, "get", "orders", "low").output)
    assert got["values"]["below"] == 5.0 and got["overridden"] == ["below", "for"]
    history = invoke(threshold, redis_server, redis_prefix, "history").output
    assert "ann: orders/low below 10.0 -> 5.0  # promo" in history


def test_threshold_errors_are_clear_and_change_nothing(redis_server: str, redis_prefix: str) -> None:
    seed(redis_server, redis_prefix)
    cases = [
        (["set", "orders", "low", "below=abc"], "below must be a finite number"),
        (["set", "orders", "low", "below=NaN"], "below must be a finite number"),
        (["set", "orders", "low", "below=true"], "below must be a finite number"),
        (["set", "orders", "low", "above=1"], "below >= above"),
        (["set", "orders", "low", "severity=critical"], "cannot change ['severity']"),
        (["set", "orders", "nope", "below=1"], "no rule 'nope'"),
        (["set", "orders", "low", "below"], "use FIELD=VALUE"),
        (["get", "orders", "nope"], "no rule 'nope'"),
    ]
    for args, message in cases:
        out = invoke(threshold, redis_server, redis_prefix, *args)
        assert out.exit_code != 0 and message in out.output, (args, out.output)
    out = invoke(threshold, redis_server, redis_prefix, "set", "orders", "low", "below=1", "--who", " ")
    assert out.exit_code != 0 and "who made the change" in out.output
    assert invoke(threshold, redis_server, redis_prefix, "history").output == ""


def test_alerts_commands(redis_server: str, redis_prefix: str) -> None:
    fp = seed(redis_server, redis_prefix)
    out = invoke(alerts, redis_server, redis_prefix, "list")
    assert fp in out.output and "firing" in out.output
    out = invoke(alerts, redis_server, redis_prefix, "ack", fp, "--comment", "on it")
    assert out.exit_code == 0 and "acknowledged" in out.output and "by ann" in out.output
    assert "acked by ann" in invoke(alerts, redis_server, redis_prefix, "list").output
    out = invoke(
        alerts, redis_server, redis_prefix, "silence", "-m", "team=shop", "-m", "kpi=~ord.*", "--for", "2h"
    )
    assert out.exit_code == 0, out.output
    silence_id = out.output.split()[1]
    listed = invoke(alerts, redis_server, redis_prefix, "silences")
    assert listed.exit_code == 0 and silence_id in listed.output and "active" in listed.output
    assert 'team="shop"' in listed.output or "team=shop" in listed.output, listed.output
    as_json = json.loads(invoke(alerts, redis_server, redis_prefix, "silences", "--json").output)
    assert [x["id"] for x in as_json] == [silence_id] and as_json[0]["created_by"] == "ann"
    out = invoke(alerts, redis_server, redis_prefix, "silence", "-m", "team", "--for", "2h")
    assert out.exit_code != 0 and "bad matcher 'team'" in out.output
    out = invoke(alerts, redis_server, redis_prefix, "silence", "-m", "team=x", "--for", "later")
    assert out.exit_code != 0 and "bad duration" in out.output
    assert invoke(alerts, redis_server, redis_prefix, "unsilence", silence_id).exit_code == 0
    out = invoke(alerts, redis_server, redis_prefix, "unsilence", silence_id)
    assert out.exit_code != 0 and "no silence" in out.output
    assert "no silences in effect" in invoke(alerts, redis_server, redis_prefix, "silences").output


def _feedback_audit(url: str, prefix: str) -> list[dict[str, object]]:
    async def main() -> list[dict[str, object]]:
        store = RedisStore.from_url(url, prefix=prefix)
        try:
            return await store.list_audit(kind="feedback")
        finally:
            await store.aclose()

    return asyncio.run(main())


def test_alerts_feedback_lands_once_and_is_audited(redis_server: str, redis_prefix: str) -> None:
    fp = seed(redis_server, redis_prefix)
    out = invoke(alerts, redis_server, redis_prefix, "feedback", fp, "expected")
    assert out.exit_code != 0 and '"expected" needs a reason' in out.output
    out = invoke(alerts, redis_server, redis_prefix, "feedback", fp, "expected", "--reason", "promotion")
    assert out.exit_code == 0 and out.output.startswith("recorded: expected (promotion)") and "by ann" in out.output
    out = invoke(alerts, redis_server, redis_prefix, "feedback", fp, "expected", "--reason", "promotion", user="bob")
    assert out.exit_code == 0 and out.output.startswith("already recorded") and "by ann" in out.output
    out = invoke(alerts, redis_server, redis_prefix, "feedback", fp, "false", "--who", "carol")
    assert out.exit_code == 0 and out.output.startswith("recorded: false_alarm")
    newest, oldest = _feedback_audit(redis_server, redis_prefix)
    assert (oldest["verdict"], oldest["reason"], oldest["who"], oldest["incident"]) == ("expected", "promotion",
                                                                                         "ann", 100.0)
    assert (newest["verdict"], newest["previous"], newest["who"]) == ("false_alarm", "expected", "carol")
    out = invoke(alerts, redis_server, redis_prefix, "feedback", "nope", "true")
    assert out.exit_code != 0 and "no active alert" in out.output


def test_unreachable_redis_is_a_clear_error(redis_prefix: str) -> None:
    out = invoke(alerts, "redis://127.0.0.1:1/0", redis_prefix, "list")
    assert out.exit_code != 0 and "cannot reach Redis at redis://127.0.0.1:1/0" in out.output


def test_errors_never_print_the_redis_password(redis_server: str, redis_prefix: str) -> None:
    """A password in KPIMON_REDIS_URL is redacted from every error: Redis refusing it, Redis unreachable."""
    with_password = redis_server.replace("redis://", "redis://nobody:hunter2-pw@")   # no such user: WRONGPASS
    for url in (with_password, "redis://:hunter2-pw@127.0.0.1:1/0"):
        for group, args in ((threshold, ["list"]), (alerts, ["list"]), (threshold, ["set", "orders", "low", "below=1"])):
            out = invoke(group, url, redis_prefix, *args)
            assert out.exit_code == 1, out.output
            assert "hunter2-pw" not in out.output and ":<redacted>@" in out.output, out.output


def test_connection_options_work_after_the_subcommand_too(redis_server: str, redis_prefix: str) -> None:
    """`kpimon alerts list --redis-url URL --prefix P` reads the same Redis as `kpimon alerts --redis-url URL …`; the
    option after the subcommand wins."""
    fp = seed(redis_server, redis_prefix)
    runner = CliRunner()
    after = runner.invoke(alerts, ["list", "--redis-url", redis_server, "--prefix", redis_prefix],
                          env={"KPIMON_REDIS_URL": "redis://127.0.0.1:1/0"}, catch_exceptions=False)
    assert after.exit_code == 0 and fp in after.output, after.output
    wins = runner.invoke(alerts, ["--redis-url", "redis://127.0.0.1:1/0", "list", "--redis-url", redis_server,
                                  "--prefix", redis_prefix], catch_exceptions=False)
    assert wins.exit_code == 0 and fp in wins.output, wins.output
