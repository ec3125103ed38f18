"""``kpimon`` command line. Every command has ``--help``; options also come from KPIMON_* env vars."""

from __future__ import annotations

import asyncio
import importlib
import sys
import time

import click

import kpimon.validation  # noqa: F401 - registers the alert/detector catalog checks
from kpimon.catalog import CatalogError, load_catalog
from kpimon.settings import Settings

__all__ = ["main"]


def _settings() -> Settings:
    return Settings()


def _load(path: str):  # type: ignore[no-untyped-def]
    try:
        return load_catalog(path)
    except CatalogError as exc:
        click.echo(str(exc), err=True)
        click.echo(f"{len(exc.issues)} problem(s) in {path}", err=True)
        sys.exit(2)


catalog_opt = click.option("--catalog", "-c", default=lambda: _settings().catalog, show_default="examples/shop.yaml",
                           help="KPI catalog YAML (env KPIMON_CATALOG)")
broker_opt = click.option("--broker", "-b", default=lambda: _settings().broker, show_default="127.0.0.1:9092",
                          help="Kafka bootstrap host:port (env KPIMON_BROKER)")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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


@main.command()
@catalog_opt
@broker_opt
@click.option("--metrics-port", type=int, default=lambda: _settings().metrics_port, show_default="9108")
@click.option("--speedup", type=float, default=lambda: _settings().speedup, show_default="1.0",
              help="simulated seconds per wall second, for the idle watermark (match the simulator)")
@click.option("--app-id", default=lambda: _settings().app_id, show_default="kpimon", help="consumer group / app id")
@click.option("--idle-ms", type=int, default=2000, show_default=True,
              help="wall ms without events before a partition's watermark follows the clock")
@click.option("--partition-wait", type=float, default=5.0, show_default=True,
              help="wall seconds to wait for the other partitions' partials before a window is final anyway")
@click.option("--topic-prefix", default=lambda: _settings().topic_prefix, show_default="''",
              help="prefix for kpimon's own topics (kpi.values, kpi.partials, kpi.deadletter, kpi.anomalies)")
@click.option("--redis-url", default=lambda: _settings().redis_url,
              help="Redis for alert state, silences, acks, overrides, outbox (env KPIMON_REDIS_URL; default: in memory)")
@click.option("--redis-prefix", default=lambda: _settings().redis_prefix, show_default="<app-id>:",
              help="key prefix in Redis (env KPIMON_REDIS_PREFIX); `kpimon threshold/alerts --prefix` must match")
@click.option("--api-token", default=None, help="bearer token for the /api/* endpoints (env KPIMON_API_TOKEN; off without)")
@click.option("--loglevel", "-l", default="warning", show_default=True)
def worker(catalog: str, broker: str, metrics_port: int, speedup: float, app_id: str, idle_ms: int,
           partition_wait: float, topic_prefix: str, redis_url: str | None, redis_prefix: str, api_token: str | None,
           loglevel: str) -> None:
    """Run a stream worker (several workers with one --app-id share the partitions)."""
    from aiokafka.errors import KafkaError

    from kpimon.wiring import build_worker, run_worker
    from streams.plan import compile_plan
    from streams.topics import PartitionMismatchError, Topics, prepare_topics

    cat = _load(catalog)
    settings = _settings().model_copy(update={"broker": broker, "metrics_port": metrics_port, "speedup": speedup,
                                              "app_id": app_id, "topic_prefix": topic_prefix,
                                              "redis_url": redis_url, "redis_prefix": redis_prefix})
    if api_token:
        from pydantic import SecretStr

        settings = settings.model_copy(update={"api_token": SecretStr(api_token)})
    topics = Topics(internal_partitions=settings.partitions).with_prefix(topic_prefix)
    try:
        layout = asyncio.run(prepare_topics(broker, compile_plan(cat), topics, app_id))
    except PartitionMismatchError as exc:
        click.echo(f"kpimon worker: error: {exc}", err=True)
        sys.exit(2)
    except (KafkaError, OSError, TimeoutError) as exc:
        click.echo(f"kpimon worker: error: cannot set up the topics on broker {broker}: {exc!r}", err=True)
        sys.exit(1)
    for note in layout.notes:
        click.echo(f"kpimon worker: note: {note}", err=True)
    click.echo(f"kpimon worker: {len(cat.kpis)} KPIs, broker {broker}, metrics http://127.0.0.1:{metrics_port}/metrics")
    run_worker(build_worker(cat, settings, layout, idle_ms=idle_ms, partition_wait_s=partition_wait), loglevel)


@main.command()
@catalog_opt
@broker_opt
@click.option("--rate", type=float, default=50.0, show_default=True, help="visits per simulated second at average traffic")
@click.option("--speedup", type=float, default=1.0, show_default=True, help="simulated seconds per wall second")
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
    cat = _load(catalog)
    asyncio.run(ensure_topics(broker, compile_plan(cat), Topics(internal_partitions=_settings().partitions)))
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
@click.option("--incident", "incidents", multiple=True, default=("payment_outage:east@40+20",), show_default=True)
@click.option("--speedup", type=float, default=60.0, show_default=True)
@click.option("--rate", type=float, default=30.0, show_default=True)
@click.option("--metrics-port", type=int, default=9108, show_default=True)
@catalog_opt
def demo(duration: float | None, incidents: tuple[str, ...], speedup: float, rate: float, metrics_port: int,
         catalog: str) -> None:
    """Embedded demo: broker + worker + simulator with an incident; a live KPI table in the terminal."""
    from kpimon.demo import run_demo

    sys.exit(run_demo(catalog=catalog, duration=duration, incidents=incidents, speedup=speedup, rate=rate,
                      metrics_port=metrics_port))


def _mount_optional() -> None:
    """Commands contributed by the other packages (each module exposes click commands)."""
    for module, names in (("kpimon.commands.nab", ("nab",)), ("kpimon.commands.alerts", ("threshold", "alerts")),
                          ("kpimon.commands.dashboards", ("dashboards",))):
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:
            if exc.name and exc.name.startswith(("kpimon.commands", "detectors", "alerting", "grafana")):
                continue
            raise
        for name in names:
            cmd = getattr(mod, name, None)
            if isinstance(cmd, click.Command):
                main.add_command(cmd, name)


_mount_optional()
