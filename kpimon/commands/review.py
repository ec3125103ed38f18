"""``kpimon review``: a team's review (复盘) from the Redis the workers use, or its digest sent now.

Examples::

    kpimon review --team sales --since 7d                 # the last 7 days, as tables in the team's language
    kpimon review --team sales --since 2026-11-23 --until 2026-11-30 --json
    kpimon review --send                                  # send every digest whose period has ended (once)
    kpimon review --team sales --backtest -b kafka:9092   # each tuning proposal backtested on kpi.values

The figures are those of :mod:`alerting.review`; the digest's channels, period and language come from the
catalog's ``teams:`` (:mod:`catalog.teams`).
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from typing import Any

import click

from alerting.digest import render_text
from alerting.digest_job import DigestSender, ProposalBacktest, auto_tune_due, gather, kpi_titles, send_due
from alerting.redis_store import RedisStore
from catalog import defaults
from catalog.durations import parse_duration
from kpimon.commands.alerts import _redis_options, _run

__all__ = ["review_command"]


def _instant(text: str, now: float) -> float:
    """``2026-11-23`` / ``2026-11-23T08:00:00+08:00`` (UTC unless it says otherwise) -> epoch seconds."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r}: use a duration back from --until (7d, 24h) or an ISO date") from None
    del now
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _since(text: str, until: float) -> float:
    try:
        return until - parse_duration(text)
    except ValueError:
        return _instant(text, until)


@click.command("review")
@click.option("--team", help="The owner team (a KPI's `owner`); required unless --send.")
@click.option("--since", default="7d", show_default=True, help="A duration back from --until (7d, 24h) or an ISO date.")
@click.option("--until", default=None, help="ISO date or date-time (default: now).")
@click.option("--catalog", "-c", envvar="KPIMON_CATALOG", default=defaults.CATALOG, show_default=True,
              help="KPI catalog YAML (env KPIMON_CATALOG).")
@click.option("--lang", type=click.Choice(["en", "zh"]), default=None, help="Default: the team's digest language.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object with every figure.")
@click.option("--send", is_flag=True, help="Send the digests whose period has ended (once per period and channel).")
@click.option("--backtest", "with_backtest", is_flag=True,
              help="Backtest each tuning proposal over the period on the workers' kpi.values (needs --broker); "
                   "with --send, teams with auto_tune: true get the proposals that pay applied (audited).")
@click.option("--broker", "-b", envvar="KPIMON_BROKER", default="localhost:9092", show_default=True,
              help="Kafka bootstrap host:port, for --backtest (env KPIMON_BROKER).")
@click.option("--values-topic", default=lambda: os.environ.get("KPIMON_TOPIC_PREFIX", "") + "kpi.values",
              show_default="<KPIMON_TOPIC_PREFIX>kpi.values", help="The workers' kpi.values topic, for --backtest.")
@_redis_options
@click.pass_context
def review_command(ctx: click.Context, team: str | None, since: str, until: str | None, catalog: str,
                   lang: str | None, as_json: bool, send: bool, with_backtest: bool, broker: str, values_topic: str,
                   redis_url: str, prefix: str) -> None:
    """A team's review: alerts vs budget, time to ack and resolve, precision per rule, changes, proposals."""
    from kpimon.cli import _load

    cat = _load(catalog, channels=send)   # only sending digests needs the channels' secrets
    ctx.obj = {"redis_url": redis_url, "prefix": prefix}
    tester = None
    if with_backtest:
        from kpimon.wiring import proposal_backtest

        tester = proposal_backtest(cat, broker, values_topic)
    if send:
        _send(ctx, cat, tester)
        return
    if not team:
        raise click.UsageError("give --team (one of the KPI owners), or --send")
    if team not in {k.owner for k in cat.kpis}:
        owners = ", ".join(sorted({k.owner for k in cat.kpis if k.owner})) or "none"
        raise click.BadParameter(f"{team!r} owns no KPI in {catalog}; owners: {owners}", param_hint="--team")
    end = _instant(until, time.time()) if until else time.time()
    start = _since(since, end)
    if start >= end:
        raise click.BadParameter("--since must be before --until", param_hint="--since")
    result = _run(ctx, lambda s: gather(s, cat, team, start, end, backtest=tester))
    if as_json:
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
        return
    language = lang or cat.team_language(team)
    click.echo(render_text(result, language, cat.defaults.timezone, kpi_titles(cat, team, language)), nl=False)


def _send(ctx: click.Context, cat: Any, tester: ProposalBacktest | None) -> None:
    from alerting.digest_charts import charts
    from alerting.notifiers.registry import build_notifier
    from catalog.channels import parse_channels

    specs, _ = parse_channels(cat.channels)
    senders = {name: n for name, spec in specs.items() if isinstance(n := build_notifier(spec), DigestSender)}

    async def go(store: RedisStore) -> list[Any]:
        now = time.time()
        sent = await send_due(store, cat, senders, now=now, wall_now=now, charts=charts(store, cat), backtest=tester)
        for t in await auto_tune_due(store, cat, now=now, wall_now=now, backtest=tester):
            click.echo(f"{t.team}: auto-tuned {t.kpi}/{t.rule} {json.dumps(dict(t.change))}")
        return sent

    results = _run(ctx, go)
    for r in results:
        click.echo(f"{r.team} {r.channel}: {r.status}{' (' + r.reason + ')' if r.reason else ''}")
    if not results:
        click.echo("no team has a digest (teams: ... digest: in the catalog)")
    if any(r.status == "failed" for r in results):
        ctx.exit(1)
