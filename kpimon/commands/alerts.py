"""``kpimon threshold …`` and ``kpimon alerts …``: live tuning and alert handling against Redis.

Both groups talk to the same Redis the workers use (``--redis-url`` / ``KPIMON_REDIS_URL``); changes reach
running workers within about a second (they reload overrides every second). Every change is audited with
``--who`` (default: ``$USER``).

Examples::

    kpimon threshold list
    kpimon threshold set paid_orders low below=80 for=5m --comment "black friday"
    kpimon threshold set paid_orders low below=null          # back to the catalog value
    kpimon threshold history
    kpimon alerts list
    kpimon alerts ack 3f2a… --comment "looking"
    kpimon alerts feedback 3f2a… false
    kpimon alerts feedback 3f2a… expected --reason promotion
    kpimon alerts silence -m team=shop -m 'kpi=~paid_.*' --for 2h --comment "deploy"
    kpimon alerts silences                                 # id, matchers, until when, who, why
    kpimon alerts unsilence <id>
"""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import click
from redis.exceptions import RedisError

from alerting.admin import (
    AdminError,
    acknowledge,
    add_silence,
    list_thresholds,
    proposed_overrides,
    record_dry_run,
    remove_silence,
    set_threshold,
)
from alerting.feedback import record_feedback
from alerting.notifiers.base import redact_urls
from alerting.redis_store import RedisStore
from catalog import defaults
from catalog.durations import parse_duration

__all__ = ["alerts", "threshold"]

T = TypeVar("T")


def _default_who() -> str:
    try:
        return os.environ.get("USER") or getpass.getuser()
    except (KeyError, OSError):
        return ""


def _run(ctx: click.Context, action: Callable[[RedisStore], Awaitable[T]]) -> T:
    """Run ``action`` against the configured Redis, turning failures into clear one-line errors."""
    url, prefix = ctx.obj["redis_url"], ctx.obj["prefix"]

    async def main() -> T:
        store = RedisStore.from_url(url, prefix=prefix)
        try:
            return await action(store)
        finally:
            await store.aclose()

    try:
        return asyncio.run(main())
    except AdminError as exc:
        raise click.ClickException(str(exc)) from None
    except (RedisError, OSError) as exc:  # the URL may carry a password: never print it
        raise click.ClickException(redact_urls(f"cannot reach Redis at {url}: {exc}")) from None
    except ValueError as exc:  # redis-py refuses a malformed URL
        raise click.ClickException(redact_urls(f"cannot use the Redis URL {url}: {exc}")) from None


def _redis_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option(
        "--prefix",
        envvar="KPIMON_REDIS_PREFIX",
        default=defaults.redis_prefix(defaults.APP_ID),
        show_default=True,
        help="Key prefix (as configured for the workers).",
    )(fn)
    return click.option(
        "--redis-url",
        envvar="KPIMON_REDIS_URL",
        default=defaults.ADMIN_REDIS_URL,
        show_default=True,
        help="Redis holding alert state (env KPIMON_REDIS_URL).",
    )(fn)


def _when(epoch: float | None) -> str:
    return "-" if epoch is None else datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _parse_value(text: str) -> Any:
    """``80`` -> 80, ``[1,2]`` -> list, ``null`` -> None, anything else (``5m``) stays a string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


@click.group()
@_redis_options
@click.pass_context
def threshold(ctx: click.Context, redis_url: str, prefix: str) -> None:
    """Show and change alert thresholds of running workers (audited)."""
    ctx.obj = {"redis_url": redis_url, "prefix": prefix}


@threshold.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def threshold_list(ctx: click.Context, as_json: bool) -> None:
    """Every rule with its effective tunable values (* = overridden)."""
    rows = _run(ctx, list_thresholds)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no rules published yet (is a worker running against this Redis?)")
    for row in rows:
        values = " ".join(
            f"{k}{'*' if k in row['overridden'] else ''}={json.dumps(v)}"
            for k, v in row["values"].items()
            if v is not None
        )
        click.echo(f"{row['kpi']}/{row['rule']} [{row['type']}, {row['severity']}] {values}")


@threshold.command("get")
@click.argument("kpi")
@click.argument("rule")
@click.pass_context
def threshold_get(ctx: click.Context, kpi: str, rule: str) -> None:
    """Effective values of one rule, as JSON."""
    rows = [r for r in _run(ctx, list_thresholds) if r["kpi"] == kpi and r["rule"] == rule]
    if not rows:
        raise click.ClickException(f"no rule {rule!r} on KPI {kpi!r} (see `kpimon threshold list`)")
    click.echo(json.dumps(rows[0], indent=2))


def _days(text: str | None, option: str) -> float | None:
    if text is None:
        return None
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise click.BadParameter(f"{text!r}: {exc} (e.g. 7d)", param_hint=option) from None
    if not 0 < seconds <= 90 * 86400:
        raise click.BadParameter(f"{text!r}: give a span of up to 90d, e.g. 7d", param_hint=option)
    return seconds


@threshold.command("set")
@click.argument("kpi")
@click.argument("rule")
@click.argument("assignments", nargs=-1, required=True)
@click.option("--who", default=_default_who, show_default="$USER", help="Recorded in the audit trail.")
@click.option("--comment", default="", help="Why (recorded in the audit trail).")
@click.option("--dry-run", "dry_run", default=None, metavar="SPAN",
              help="apply nothing: backtest the change over the last SPAN (e.g. 7d) of kpi.values and show what it "
                   "would have fired beside what the current rule fired (audited as a dry run)")
@click.option("--backtest", "backtest_span", default=None, metavar="SPAN",
              help="backtest over the last SPAN as --dry-run does, then apply; the audit keeps the figures")
@click.option("--catalog", "-c", envvar="KPIMON_CATALOG", default=None,
              help="KPI catalog of the workers (env KPIMON_CATALOG); needed by --dry-run / --backtest")
@click.option("--broker", "-b", envvar="KPIMON_BROKER", default="localhost:9092", show_default=True,
              help="Kafka bootstrap host:port, for --dry-run / --backtest (env KPIMON_BROKER)")
@click.option("--values-topic", default=lambda: os.environ.get("KPIMON_TOPIC_PREFIX", "") + "kpi.values",
              show_default="<KPIMON_TOPIC_PREFIX>kpi.values", help="the workers' kpi.values topic")
@click.pass_context
def threshold_set(
    ctx: click.Context, kpi: str, rule: str, assignments: tuple[str, ...], who: str, comment: str,
    dry_run: str | None, backtest_span: str | None, catalog: str | None, broker: str, values_topic: str,
) -> None:
    """Set FIELD=VALUE pairs on KPI/RULE (`below=80 for=5m`; `below=null` resets to the catalog)."""
    fields: dict[str, Any] = {}
    for item in assignments:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{item!r}: use FIELD=VALUE, e.g. below=80", param_hint="ASSIGNMENTS")
        fields[name.strip()] = _parse_value(value.strip())
    if dry_run is not None and backtest_span is not None:
        raise click.UsageError("give --dry-run (apply nothing) or --backtest (then apply), not both")
    span = _days(dry_run, "--dry-run") or _days(backtest_span, "--backtest")
    figures = None
    if span is not None:
        if catalog is None:
            raise click.UsageError("--dry-run / --backtest need the workers' catalog: -c CATALOG (or KPIMON_CATALOG)")
        figures = _run(ctx, lambda s: _dry_run(s, catalog, broker, values_topic, kpi, rule, fields, span))
        _show_figures(figures)
    if dry_run is not None:
        _run(ctx, lambda s: record_dry_run(s, kpi, rule, fields, figures or {}, who=who, now=time.time(),
                                           comment=comment))
        click.echo("dry run: nothing applied (recorded in the audit trail)")
        return
    changes = _run(
        ctx, lambda s: set_threshold(s, kpi, rule, fields, who=who, now=time.time(), comment=comment,
                                     backtest=figures)
    )
    for c in changes:
        click.echo(f"{kpi}/{rule} {c['field']}: {json.dumps(c['old'])} -> {json.dumps(c['new'])}")
    if not changes:
        click.echo("nothing changed (same values)")


async def _dry_run(store: RedisStore, catalog: str, broker: str, topic: str, kpi: str, rule: str,
                   fields: dict[str, Any], seconds: float) -> dict[str, Any]:
    from catalog import CatalogError, load_catalog
    from streams.backtest import Judge, values_dry_run

    try:
        cat = load_catalog(catalog, channels=False)
    except CatalogError as exc:
        raise AdminError(f"{catalog}: {len(exc.issues)} problem(s); run `kpimon check {catalog}`") from None
    current, proposed = await proposed_overrides(store, kpi, rule, fields)
    try:
        return await values_dry_run(broker, topic, Judge.of(cat), kpi, rule, current, proposed, seconds=seconds,
                                    now=time.time())
    except (ConnectionError, LookupError) as exc:
        raise AdminError(f"cannot backtest: {exc}") from None


def _show_figures(f: dict[str, Any]) -> None:
    span = f"{_when(f['from'])} .. {_when(f['to'])}" if f.get("from") is not None else "no values"
    click.echo(f"backtest of {f['kpi']}/{f['rule']} over the last {f['days']:g} days ({f['windows']:,} windows, {span}):")
    for name in ("current", "proposed"):
        x = f[name]
        click.echo(f"  {name:<9} {x['fired']:>4} alert(s) on {x['series']} series, {x['alert_minutes']:.1f} alert-minutes")


@threshold.command("history")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.pass_context
def threshold_history(ctx: click.Context, limit: int) -> None:
    """Audit trail of threshold changes: when, who, old -> new."""
    for e in _run(ctx, lambda s: s.list_audit(limit, kind="threshold")):
        note = f"  # {e['comment']}" if e.get("comment") else ""
        who = f"{e['who']} (for {e['on_behalf_of']})" if e.get("on_behalf_of") else e["who"]
        click.echo(
            f"{_when(e['at'])} {who}: {e['kpi']}/{e['rule']} {e['field']} "
            f"{json.dumps(e['old'])} -> {json.dumps(e['new'])}{note}"
        )


@click.group()
@_redis_options
@click.pass_context
def alerts(ctx: click.Context, redis_url: str, prefix: str) -> None:
    """List, acknowledge and silence alerts."""
    ctx.obj = {"redis_url": redis_url, "prefix": prefix}


@alerts.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def alerts_list(ctx: click.Context, as_json: bool) -> None:
    """Pending, firing and just-resolved alerts."""

    async def fetch(store: RedisStore) -> list[dict[str, Any]]:
        acks = {a.fingerprint: a for a in await store.list_acks()}
        out = []
        for a in await store.list_alerts():
            ack = acks.get(a.fingerprint)
            out.append({**a.to_dict(), "acked_by": ack.by if ack and ack.incident == a.starts_at else None})
        return sorted(out, key=lambda d: (d["state"], d["kpi"], d["rule"]))

    rows = _run(ctx, fetch)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no active alerts")
    for r in rows:
        series = ",".join(f"{k}={v}" for k, v in sorted(r["series"].items())) or "total"
        ack = f" acked by {r['acked_by']}" if r["acked_by"] else ""
        click.echo(
            f"{r['fingerprint']} {r['state']:<8} {r['severity']:<8} {r['kpi']}/{r['rule']} [{series}] "
            f"since {_when(r['starts_at'] or r['active_since'])}: {r['summary']}{ack}"
        )


@alerts.command("ack")
@click.argument("fingerprint")
@click.option("--who", default=_default_who, show_default="$USER")
@click.option("--comment", default="")
@click.pass_context
def alerts_ack(ctx: click.Context, fingerprint: str, who: str, comment: str) -> None:
    """Acknowledge a firing alert: no more repeats or escalation until it resolves."""
    ack = _run(ctx, lambda s: acknowledge(s, fingerprint, who=who, now=time.time(), comment=comment))
    click.echo(f"acknowledged {ack.fingerprint} by {ack.by} at {_when(ack.at)}")


@alerts.command("feedback")
@click.argument("fingerprint")
@click.argument("verdict", type=click.Choice(["true", "false", "expected", "true_alarm", "false_alarm"]))
@click.option("--reason", default="", help='Why; required for "expected" (e.g. promotion).')
@click.option("--incident", type=float, default=None,
              help="The incident's starts_at (epoch seconds), for an alert that has resolved since.")
@click.option("--who", default=_default_who, show_default="$USER")
@click.pass_context
def alerts_feedback(
    ctx: click.Context, fingerprint: str, verdict: str, reason: str, incident: float | None, who: str
) -> None:
    """Say whether an alert was a true alarm, a false alarm, or expected (audited; one per incident)."""
    record, wrote = _run(ctx, lambda s: record_feedback(
        s, fingerprint, verdict, reason=reason, who=who, now=time.time(), incident=incident))
    why = f" ({record['reason']})" if record["reason"] else ""
    what = "recorded" if wrote else "already recorded"
    click.echo(f"{what}: {record['verdict']}{why} on {fingerprint} (incident {_when(record['incident'])}) "
               f"by {record['who']}")


@alerts.command("silence")
@click.option(
    "-m",
    "--match",
    "matchers",
    multiple=True,
    required=True,
    help="Label matcher: name=value, name!=value, name=~regex, name!~regex (repeatable).",
)
@click.option("--for", "duration", default="1h", show_default=True, help="How long, e.g. 30m, 2h, 1d.")
@click.option("--who", default=_default_who, show_default="$USER")
@click.option("--comment", default="")
@click.pass_context
def alerts_silence(
    ctx: click.Context, matchers: tuple[str, ...], duration: str, who: str, comment: str
) -> None:
    """Mute notifications of alerts matching all matchers, starting now."""
    data = {"matchers": list(matchers), "duration": duration, "comment": comment}
    silence = _run(ctx, lambda s: add_silence(s, data, who=who, now=time.time()))
    click.echo(
        f"silence {silence.id} until {_when(silence.ends_at)}: {', '.join(map(str, silence.matchers))}"
    )


@alerts.command("silences")
@click.option("--all", "show_all", is_flag=True, help="Also the silences that have ended.")
@click.option("--json", "as_json", is_flag=True, help="One JSON list (for scripts).")
@click.pass_context
def alerts_silences(ctx: click.Context, show_all: bool, as_json: bool) -> None:
    """List the silences: id, matchers, until when, who and why (active and upcoming; --all for ended ones too)."""
    now = time.time()
    found = sorted(_run(ctx, lambda s: s.list_silences()), key=lambda x: (x.starts_at, x.id))
    shown = [x for x in found if show_all or x.ends_at > now]
    if as_json:
        click.echo(json.dumps([x.to_dict() for x in shown], ensure_ascii=False))
        return
    if not shown:
        click.echo("no silences" + ("" if show_all else " in effect or to come (--all shows ended ones)"))
    for x in shown:
        state = "active" if x.starts_at <= now < x.ends_at else ("ended" if x.ends_at <= now else "upcoming")
        note = f"  # {x.comment}" if x.comment else ""
        click.echo(f"{x.id}  {state:<8} {_when(x.starts_at)} .. {_when(x.ends_at)}  {' '.join(map(str, x.matchers))}"
                   f"  by {x.created_by}{note}")


@alerts.command("unsilence")
@click.argument("silence_id")
@click.option("--who", default=_default_who, show_default="$USER")
@click.pass_context
def alerts_unsilence(ctx: click.Context, silence_id: str, who: str) -> None:
    """Remove a silence."""
    _run(ctx, lambda s: remove_silence(s, silence_id, who=who, now=time.time()))
    click.echo(f"removed silence {silence_id}")


def _connection_override(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A connection option given after the subcommand wins over the group's (``ctx.obj`` is the group's dict)."""
    if value is not None and isinstance(ctx.obj, dict) and param.name is not None:
        ctx.obj[param.name] = value
    return value


# `kpimon alerts list --redis-url …` works as well as `kpimon alerts --redis-url … list`
for _command in (*threshold.commands.values(), *alerts.commands.values()):
    _command.params += [
        click.Option(["--redis-url"], default=None, expose_value=False, callback=_connection_override,
                     is_eager=True, help="Redis holding alert state (as on the group; env KPIMON_REDIS_URL)."),
        click.Option(["--prefix"], default=None, expose_value=False, callback=_connection_override, is_eager=True,
                     help="Key prefix (as on the group; env KPIMON_REDIS_PREFIX)."),
    ]
