"""``kpimon`` command line. Every command has ``--help``; options also come from KPIMON_* env vars.

The commands are this module's own plus the groups in :mod:`kpimon.commands`, each added by name at the end of this
module: the list of commands is written down here, not assembled from whatever imported.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import click

from catalog import CatalogError, defaults, load_catalog
from kpimon.commands.alerts import alerts, threshold
from kpimon.commands.backtest import backfill, backtest
from kpimon.commands.dashboards import dashboards
from kpimon.commands.nab import nab
from kpimon.commands.review import review_command
from kpimon.settings import Settings, parse_listen

__all__ = ["main"]


def _settings() -> Settings:
    return Settings()


def redact_urls(text: str) -> str:
    """``text`` with the credentials of every URL in it removed (alerting's helper, imported when needed)."""
    from alerting.notifiers.base import redact_urls as redact

    return redact(text)


def _load(path: str, *, channels: bool = True):  # type: ignore[no-untyped-def]
    try:
        return load_catalog(path, channels=channels)
    except CatalogError as exc:
        click.echo(redact_urls(str(exc)), err=True)
        click.echo(f"{len(exc.issues)} problem(s) in {path}", err=True)
        sys.exit(2)


def _setting(name: str) -> dict[str, Any]:
    """An option's default from :class:`Settings` (so also from ``KPIMON_<NAME>``); ``--help`` shows Settings'."""
    default = Settings.model_fields[name].default
    return {"default": lambda: getattr(_settings(), name), "show_default": str(default) if default != "" else "''"}


catalog_opt = click.option("--catalog", "-c", **_setting("catalog"),
                           help="KPI catalog YAML (env KPIMON_CATALOG)")
broker_opt = click.option("--broker", "-b", **_setting("broker"),
                          help="Kafka bootstrap host:port (env KPIMON_BROKER)")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kpimon", message="kpimon %(version)s")
def main() -> None:
    """kpimon: live business KPIs from Kafka events, with anomaly detection, alerts and boards."""


@main.command()
@click.argument("catalog", required=False)
def check(catalog: str | None) -> None:
    """Validate a KPI catalog and print every error with file, line and field."""
    path = catalog or _settings().catalog
    cat = _load(path)
    kinds = sum(1 for k in cat.kpis if k.ratio)
    click.echo(f"{path}: OK — {len(cat.kpis)} KPIs ({kinds} ratios), {len(cat.sources)} sources")
    for spec in cat.kpis:
        w = cat.window_of(spec)
        what = f"ratio {spec.ratio.numerator}/{spec.ratio.denominator}" if spec.ratio else f"{spec.measure} of {spec.source}"
        dims = ",".join(spec.dimensions) or "-"
        click.echo(f"  {spec.name:<22} {what:<36} window {w.type} {w.size:g}s  dims {dims}")


def _fail(message: str) -> NoReturn:
    """One line on stderr, credentials of any URL in it removed, exit 2 (a usage or configuration error)."""
    click.echo(f"kpimon worker: error: {redact_urls(message)}", err=True)
    sys.exit(2)


def _listen(listen: str, metrics_port: int | None) -> str:
    """``--listen`` checked, with ``--metrics-port`` (if given) as its port: ``HOST:PORT`` or ``[V6]:PORT``."""
    try:
        host, port = parse_listen(listen)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--listen (env KPIMON_LISTEN)") from None
    port = port if metrics_port is None else metrics_port
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _api_tokens(token: str | None, token_file: str | None) -> str | None:
    """The API token spec from ``--api-token`` or ``--api-token-file`` (or their env vars), checked before the
    worker starts; None when the API is off. Errors never show a token."""
    from alerting.http_api import parse_api_tokens

    settings = _settings()
    token = token or (settings.api_token.get_secret_value() if settings.api_token else None)
    token_file = token_file or settings.api_token_file
    if token and token_file:
        _fail("give --api-token or --api-token-file (KPIMON_API_TOKEN or KPIMON_API_TOKEN_FILE), not both")
    if token_file:
        try:
            token = Path(token_file).read_text(encoding="utf-8")
            if os.stat(token_file).st_mode & 0o077:
                click.echo(f"kpimon worker: note: {token_file} is readable by other users (chmod 600 it)", err=True)
        except (OSError, UnicodeDecodeError) as exc:
            _fail(f"cannot read the API token file {token_file}: {getattr(exc, 'strerror', None) or exc}")
    if token is None:
        return None
    try:
        parse_api_tokens(token)
    except ValueError as exc:
        _fail(f"{exc} ({'in ' + token_file if token_file else '--api-token / KPIMON_API_TOKEN'})")
    return token


@main.command()
@catalog_opt
@broker_opt
@click.option("--listen", **_setting("listen"), metavar="HOST:PORT",
              help="address of /metrics, /healthz and /api/* (env KPIMON_LISTEN); 0.0.0.0:9108 = every interface")
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=None,
              help="only the port of --listen (the older spelling; wins over the port in --listen)")
@click.option("--speedup", type=float, **_setting("speedup"),
              help="simulated seconds per wall second, for the idle watermark (match the simulator)")
@click.option("--app-id", **_setting("app_id"), help="consumer group / app id")
@click.option("--idle-ms", type=int, default=defaults.IDLE_MS, show_default=True,
              help="wall ms without events before a partition's watermark follows the clock")
@click.option("--partition-wait", type=float, default=defaults.PARTITION_WAIT_S, show_default=True,
              help="wall seconds to wait for the other partitions' partials before a window is final anyway")
@click.option("--topic-prefix", **_setting("topic_prefix"),
              help="prefix for kpimon's own topics (kpi.values, kpi.partials, kpi.deadletter, kpi.anomalies)")
@click.option("--redis-url", default=lambda: _settings().redis_url,
              help="Redis for alert state, silences, acks, overrides, outbox (env KPIMON_REDIS_URL; default: in memory)")
@click.option("--redis-prefix", default=lambda: _settings().redis_prefix, show_default="<app-id>:",
              help="key prefix in Redis (env KPIMON_REDIS_PREFIX); `kpimon threshold/alerts --prefix` must match")
@click.option("--api-token", default=None,
              help="bearer token(s) for /api/*: TOKEN or name:TOKEN,... (env KPIMON_API_TOKEN; off without). "
                   "Prefer --api-token-file: a command line is visible in `ps` and shell history")
@click.option("--api-token-file", default=None, metavar="PATH",
              help="file with the token, or name:TOKEN lines (env KPIMON_API_TOKEN_FILE)")
@click.option("--loglevel", "-l", default="warning", show_default=True)
def worker(catalog: str, broker: str, listen: str, metrics_port: int | None, speedup: float, app_id: str,
           idle_ms: int, partition_wait: float, topic_prefix: str, redis_url: str | None, redis_prefix: str,
           api_token: str | None, api_token_file: str | None, loglevel: str) -> None:
    """Run a stream worker (several workers with one --app-id share the partitions)."""
    from aiokafka.errors import KafkaError
    from pydantic import SecretStr

    from kpimon.wiring import build_worker, run_worker
    from streams.plan import compile_plan
    from streams.topics import PartitionMismatchError, Topics, prepare_topics

    listen = _listen(listen, metrics_port)
    for gone in ("KPIMON_METRICS_HOST", "KPIMON_METRICS_PORT"):
        if gone in os.environ:
            click.echo(f"kpimon worker: note: {gone} is ignored; set KPIMON_LISTEN=HOST:PORT (now {listen})", err=True)
    tokens = _api_tokens(api_token, api_token_file)
    cat = _load(catalog)
    settings = _settings().model_copy(update={"broker": broker, "listen": listen, "speedup": speedup,
                                              "app_id": app_id, "topic_prefix": topic_prefix,
                                              "redis_url": redis_url, "redis_prefix": redis_prefix,
                                              "api_token": SecretStr(tokens) if tokens else None})
    topics = Topics(internal_partitions=settings.partitions).with_prefix(topic_prefix)
    try:
        layout = asyncio.run(prepare_topics(broker, compile_plan(cat), topics, app_id))
    except PartitionMismatchError as exc:
        _fail(str(exc))
    except (KafkaError, OSError, TimeoutError) as exc:
        click.echo(redact_urls(f"kpimon worker: error: cannot set up the topics on broker {broker}: {exc!r}"), err=True)
        sys.exit(1)
    for note in layout.notes:
        click.echo(f"kpimon worker: note: {note}", err=True)
    try:
        built = build_worker(cat, settings, layout, idle_ms=idle_ms, partition_wait_s=partition_wait)
    except ValueError as exc:      # e.g. a malformed --redis-url (redis-py parses it here)
        _fail(str(exc))
    click.echo(f"kpimon worker: {len(cat.kpis)} KPIs, broker {broker}, metrics http://{listen}/metrics")
    run_worker(built, loglevel)


@main.command()
@catalog_opt
@broker_opt
@click.option("--rate", type=float, default=50.0, show_default=True, help="visits per simulated second at average traffic")
@click.option("--speedup", type=float, default=defaults.SPEEDUP, show_default=True,
              help="simulated seconds per wall second")
@click.option("--duration", type=float, default=None, help="wall seconds to run (default: until Ctrl-C)")
@click.option("--batch", type=int, default=100, show_default=True, help="events per Kafka message (1 = one event per message)")
@click.option("--incident", "incidents", multiple=True, metavar="NAME[:ARG][@START+DUR]",
              help="scripted incident, e.g. payment_outage:east@10+20 (simulated minutes); repeatable")
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--shop-hour", type=click.FloatRange(0, 24, max_open=True), default=None,
              help="start the daily traffic curve at this UTC hour (timestamps stay real); default: the real hour")
def simulate(catalog: str, broker: str, rate: float, speedup: float, duration: float | None, batch: int,
             incidents: tuple[str, ...], seed: int, shop_hour: float | None) -> None:
    """Produce simulated shop events (visits, orders, payments, refunds) with incidents."""
    from streams.plan import compile_plan
    from streams.simulator import Shop, parse_incident, run
    from streams.topics import Topics, ensure_topics

    try:
        parsed = tuple(parse_incident(i) for i in incidents)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--incident") from None
    from aiokafka.errors import KafkaError

    cat = _load(catalog, channels=False)   # the simulator sends no alert: the channels' secrets are not needed
    try:
        asyncio.run(ensure_topics(broker, compile_plan(cat), Topics(internal_partitions=_settings().partitions)))
    except (TimeoutError, KafkaError, OSError) as exc:
        click.echo(f"kpimon simulate: error: cannot reach Kafka at {broker}: {exc}", err=True)
        sys.exit(2)
    for inc in parsed:
        click.echo(f"incident: {inc.describe()}")
    shop = Shop(visits_per_s=rate, incidents=parsed, seed=seed)
    if shop_hour is not None:
        shop.at_hour(shop_hour)
        click.echo(f"traffic curve starts at {shop_hour:g}:00 UTC (event timestamps are real)")
    last = [0.0]

    def progress(sim: float, sent: dict[str, int]) -> None:
        if time.monotonic() - last[0] >= 5:
            last[0] = time.monotonic()
            stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime(sim))
            click.echo(f"[sim {stamp} UTC] sent " + ", ".join(f"{k}={v}" for k, v in sorted(sent.items())))

    try:
        sent = asyncio.run(run(broker, shop, speedup=speedup, duration_s=duration, batch=batch, on_tick=progress))
    except KeyboardInterrupt:
        return
    click.echo("done: " + ", ".join(f"{k}={v}" for k, v in sorted(sent.items())))


@main.command()
@click.option("--duration", type=float, default=None, help="wall seconds to run (default: until Ctrl-C)")
@click.option("--incident", "incidents", multiple=True, default=("payment_outage:east@40+20", "feed_stop:payments@65+8"),
              show_default=True, help="scripted incidents (see `kpimon simulate --help`); repeatable")
@click.option("--speedup", type=float, default=60.0, show_default=True)
@click.option("--rate", type=float, default=30.0, show_default=True)
@click.option("--metrics-port", type=int, default=defaults.METRICS_PORT, show_default=True)
@catalog_opt
def demo(duration: float | None, incidents: tuple[str, ...], speedup: float, rate: float, metrics_port: int,
         catalog: str) -> None:
    """Embedded demo: broker + worker + simulator with an incident; a live KPI table in the terminal."""
    from kpimon.demo import run_demo

    sys.exit(run_demo(catalog=catalog, duration=duration, incidents=incidents, speedup=speedup, rate=rate,
                      metrics_port=metrics_port))


for _command in (nab, threshold, alerts, dashboards, backtest, backfill, review_command):
    main.add_command(_command)
