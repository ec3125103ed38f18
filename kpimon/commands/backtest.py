"""``kpimon backtest``: what the alert rules and detectors would have fired on history, now or with a change.

History goes through the worker's own engine, detectors and rules (:mod:`streams.backtest`); nothing is sent.
Given changes (``--set``, ``--sensitivity``, ``--detector``), the same history is judged twice and the figures
are shown side by side, current and proposed.

Examples::

    kpimon backtest -c shop.yaml --from-file orders=orders.ndjson --from-file visits=visits.csv
    kpimon backtest -c shop.yaml --from-topic all --since 2026-11-24 --until 2026-12-01 \\
        --set paid_orders.payments_stopped.for=5m --sensitivity paid_orders=low
    kpimon backtest -c shop.yaml --from-values --since 7d --json      # judge kpi.values only (no engine)

The JSON (``--json``) is one object; a script may rely on ``rules``: one entry per rule and series that fired under
either judge, ``{kpi, rule, series: {labels…}, severity, fired, alert_minutes, first, last, longest_minutes,
firing_at_end, fired_at: [when each alert fired]}``; with ``--redis-url``, ``feedback``: per rule with recorded
feedback, ``{kpi, rule, marked_true, marked_false, marked_expected, fired_true, fired_false, fired_expected,
precision, recall}`` (and ``proposed``) for the current settings, and with changes a ``proposed`` object of the same figures.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import math
import re
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import click

from alerting.admin import AdminError, apply_overrides, check_types
from catalog import Catalog, CatalogError, defaults, load_catalog
from catalog.durations import parse_duration

__all__ = ["backfill", "backtest"]

_SENSITIVITIES = ("low", "medium", "high")
_FILE_KINDS = {".ndjson": "ndjson", ".jsonl": "ndjson", ".json": "ndjson", ".csv": "csv", ".parquet": "parquet"}


def _fail(message: str) -> NoReturn:
    click.echo(f"kpimon backtest: error: {message}", err=True)
    sys.exit(2)


def parse_time(text: str, now: float) -> int:
    """``--since``/``--until``: an ISO date or time (UTC unless it says otherwise), epoch seconds, or a duration back
    from now (``7d``, ``36h``). Epoch milliseconds.

    >>> parse_time("2026-11-24", 0)
    1795478400000
    >>> parse_time("7d", 1_000_000)
    395200000
    """
    text = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text) and float(text) > 1e8:
        return round(float(text) * 1000)
    if re.fullmatch(r"\d+(\.\d+)?\s*[smhdw]", text):
        return round((now - parse_duration(text)) * 1000)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not a time: give an ISO date (2026-11-24), a time (2026-11-24T09:00+08:00), "
                         "epoch seconds, or a duration back from now (7d, 36h)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return round(when.timestamp() * 1000)


def _source_of_file(catalog: Catalog, spec: str) -> tuple[str, Path]:
    """``SOURCE=PATH`` (a source name or its topic), or ``PATH`` alone when the catalog has one source or the file is
    named after a source or its topic (``orders.ndjson``, ``events.orders.csv``)."""
    topics = {src.topic: name for name, src in catalog.sources.items()}
    head, sep, tail = spec.partition("=")
    if sep and (head in catalog.sources or head in topics):
        return (head if head in catalog.sources else topics[head]), Path(tail)
    path = Path(spec)
    stem = path.name
    for suffix in _FILE_KINDS:
        stem = stem.removesuffix(suffix)
    if stem in catalog.sources:
        return stem, path
    if stem in topics:
        return topics[stem], path
    if len(catalog.sources) == 1:
        return next(iter(catalog.sources)), path
    _fail(f"which source is {spec}? give SOURCE=PATH with one of: {', '.join(sorted(catalog.sources))} "
          "(or name the file after the source or its topic)")


def _typed(text: str) -> Any:
    """A CSV cell: an integer or a finite number where it reads as one, else the text."""
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    try:
        x = float(text)
    except ValueError:
        return text
    return x if math.isfinite(x) else text


def _read_file(path: Path, count: Callable[[int], None]) -> Iterator[bytes | dict[str, Any]]:
    """The messages of one history file: NDJSON lines as the bytes a Kafka message would hold (an object, or an array
    of objects; a bad line is a dead letter like on Kafka), CSV rows and Parquet rows as events."""
    kind = _FILE_KINDS.get(path.suffix.lower())
    if kind is None:
        _fail(f"{path}: unknown file type {path.suffix!r}; use .ndjson/.jsonl, .csv or .parquet")
    try:
        size = path.stat().st_size
        handle = path.open("rb")
    except OSError as exc:
        _fail(f"cannot read {path}: {exc.strerror or exc}")
    with handle:
        if kind == "ndjson":
            for line in handle:
                count(len(line))
                line = line.strip()
                if line:
                    yield line
        elif kind == "csv":
            text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
            for row in csv.DictReader(text):
                count(sum(len(v or "") + 1 for v in row.values()))
                yield {k: _typed(v) for k, v in row.items() if k is not None and v not in (None, "")}
        else:
            try:
                import pyarrow.parquet as pq
            except ImportError:
                _fail(f"{path}: reading Parquet needs pyarrow (pip install pyarrow)")
            table = pq.ParquetFile(handle)
            for batch in table.iter_batches(batch_size=10_000):
                count(size // max(1, table.metadata.num_rows) * batch.num_rows)
                for row in batch.to_pylist():
                    yield {k: v for k, v in row.items() if v is not None}


def _changes(catalog: Catalog, sets: tuple[str, ...], sensitivities: tuple[str, ...],
             kinds: tuple[str, ...]) -> tuple[dict[tuple[str, str], dict[str, Any]], dict[str, dict[str, str]]]:
    """The proposed rule overrides ((kpi, rule) -> fields) and detector changes (kpi -> kind/sensitivity), checked."""
    from detectors.registry import KINDS

    names = {k.name: k for k in catalog.kpis}
    overrides: dict[tuple[str, str], dict[str, Any]] = {}
    for item in sets:
        target, sep, raw = item.partition("=")
        parts = target.split(".")
        if not sep or len(parts) != 3 or not all(parts):
            _fail(f"--set {item!r}: use KPI.RULE.FIELD=VALUE, e.g. paid_orders.payments_stopped.below=5")
        kpi, rule, name = parts
        if kpi not in names:
            _fail(f"--set {item!r}: no KPI {kpi!r} in the catalog")
        rules = [r.get("name") if isinstance(r, dict) else getattr(r, "name", None) for r in names[kpi].alerts]
        if rule not in rules:
            _fail(f"--set {item!r}: KPI {kpi} has no rule {rule!r}; its rules: {', '.join(map(str, rules)) or 'none'}")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        overrides.setdefault((kpi, rule), {})[name] = value
    for fields in overrides.values():
        try:
            check_types(fields)
        except AdminError as exc:
            _fail(f"--set: {exc}")
    detectors: dict[str, dict[str, str]] = {}
    for opt, items in (("--sensitivity", sensitivities), ("--detector", kinds)):
        for item in items:
            kpi, sep, value = item.partition("=")
            if not sep or kpi not in names:
                _fail(f"{opt} {item!r}: use KPI=VALUE with a KPI of the catalog")
            if opt == "--sensitivity" and value not in _SENSITIVITIES:
                _fail(f"{opt} {item!r}: sensitivity is one of {', '.join(_SENSITIVITIES)}")
            if opt == "--detector" and value not in KINDS:
                _fail(f"{opt} {item!r}: detector kind is one of {', '.join(sorted(KINDS))}")
            detectors.setdefault(kpi, {})["sensitivity" if opt == "--sensitivity" else "kind"] = value
    return overrides, detectors


class _Progress:
    """A progress line on stderr for people (off with ``--json`` output to a pipe or ``--no-progress``)."""

    def __init__(self, enabled: bool, total: int | None, unit: str) -> None:
        self.enabled, self.total, self.unit = enabled, total, unit
        self.done, self.t0, self._shown = 0, time.monotonic(), 0.0

    def add(self, n: int) -> None:
        self.done += n
        self.show()

    def set(self, n: int) -> None:
        self.done = n
        self.show()

    def show(self, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self._shown < 0.2):
            return
        self._shown = now
        if self.total:
            share = min(1.0, self.done / self.total)
            bar = "#" * round(share * 30)
            line = f"\r  reading [{bar:<30}] {share:4.0%}  {now - self.t0:5.1f}s"
        else:
            line = f"\r  read {self.done:,} {self.unit}  {now - self.t0:5.1f}s"
        click.echo(line, err=True, nl=False)

    def end(self, what: str) -> None:
        if self.enabled:
            self.show(force=True)
            click.echo(f"  {what}", err=True)


def _when(epoch: float | None) -> str:
    return "-" if epoch is None else datetime.fromtimestamp(epoch, tz=UTC).strftime("%m-%d %H:%M")


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.0%}"


def _series(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "total"


def _history_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The options that say where history comes from (backtest and backfill)."""
    for option in reversed((
        click.option("--catalog", "-c", envvar="KPIMON_CATALOG", required=True,
                     help="KPI catalog YAML (env KPIMON_CATALOG)"),
        click.option("--from-file", "files", multiple=True, metavar="[SOURCE=]PATH",
                     help="events of one source: .ndjson/.jsonl (one Kafka message per line), .csv or .parquet; "
                          "repeat per source"),
        click.option("--from-topic", "topics", multiple=True, metavar="SOURCE|all",
                     help="events of a source read from its Kafka topic (--broker); 'all' for every source"),
        click.option("--from-values", "values_topic", is_flag=False, flag_value="kpi.values", default=None,
                     metavar="[TOPIC]", help="the worker's kpi.values records (no engine); default topic kpi.values"),
        click.option("--broker", "-b", envvar="KPIMON_BROKER", default="localhost:9092", show_default=True,
                     help="Kafka bootstrap host:port (env KPIMON_BROKER)"),
        click.option("--since", default=None, help="first event time: 2026-11-24, 2026-11-24T09:00+08:00, or 7d back"),
        click.option("--until", default=None, help="end of the history (exclusive), same forms as --since"),
        click.option("--progress/--no-progress", default=None, help="a progress line on stderr (default: when a "
                                                                    "terminal)"),
    )):
        fn = option(fn)
    return fn


def _catalog(path: str) -> Catalog:
    try:
        return load_catalog(path, channels=False)   # nothing is sent: the channels' secrets are not needed
    except CatalogError as exc:
        _fail(f"{path}: {len(exc.issues)} problem(s); run `kpimon check {path}`")


def _load_history(cat: Catalog, files: tuple[str, ...], topics: tuple[str, ...], values_topic: str | None,
                  broker: str, since: str | None, until: str | None, show: bool) -> Any:
    """The :class:`streams.backtest.History` the options name (exit 2 with one line for a bad one)."""
    from streams.backtest import read_topic, replay, values_history_of
    from streams.plan import compile_plan

    if sum(map(bool, (files, topics, values_topic))) != 1:
        _fail("give the history: --from-file (repeat per source), --from-topic, or --from-values")
    now = time.time()
    try:
        since_ms = parse_time(since, now) if since else None
        until_ms = parse_time(until, now) if until else None
    except ValueError as exc:
        _fail(str(exc))
    if since_ms is not None and until_ms is not None and until_ms <= since_ms:
        _fail("--until must be after --since")
    if values_topic:
        bar = _Progress(show, None, "records")
        try:
            judged = asyncio.run(values_history_of(
                broker, values_topic, since_s=None if since_ms is None else since_ms / 1000,
                until_s=None if until_ms is None else until_ms / 1000, progress=bar.set))
        except (ConnectionError, LookupError) as exc:
            _fail(str(exc))
        bar.end(f"{judged.messages:,} values")
        return judged
    by_source: dict[str, Any] = {}
    if files:
        paths = [_source_of_file(cat, spec) for spec in files]
        for name, path in paths:
            if name in by_source:
                _fail(f"two files for source {name}: give one file per source")
            if not path.is_file():
                _fail(f"no file {path}")
            by_source[name] = path
        bar = _Progress(show, sum(p.stat().st_size for _, p in paths), "bytes")
        by_source = {name: _read_file(path, bar.add) for name, path in paths}
    else:
        wanted = sorted(cat.sources) if "all" in topics else list(topics)
        for name in wanted:
            if name not in cat.sources:
                _fail(f"--from-topic {name}: no such source; sources: {', '.join(sorted(cat.sources))}, or all")
        bar = _Progress(show, None, "messages")
        try:
            for name in wanted:
                base = bar.done

                def told(n: int, base: int = base) -> None:
                    bar.set(base + n)

                by_source[name] = asyncio.run(read_topic(broker, cat.sources[name].topic, since_ms=since_ms,
                                                         progress=told))
                bar.set(base + sum(map(len, by_source[name].parts)))
        except (ConnectionError, LookupError) as exc:
            _fail(str(exc))
    history = replay(compile_plan(cat), by_source, since_ms=since_ms, until_ms=until_ms)
    bar.end(f"{history.events:,} events, {history.values:,} window values")
    return history


@click.command()
@_history_options
@click.option("--set", "sets", multiple=True, metavar="KPI.RULE.FIELD=VALUE",
              help="a proposed rule change, e.g. paid_orders.payments_stopped.for=5m (repeatable)")
@click.option("--sensitivity", "sensitivities", multiple=True, metavar="KPI=low|medium|high",
              help="a proposed detector sensitivity (repeatable)")
@click.option("--detector", "kinds", multiple=True, metavar="KPI=KIND", help="a proposed detector kind (repeatable)")
@click.option("--json", "as_json", is_flag=True, help="one JSON object on stdout (for scripts)")
@click.option("--redis-url", envvar="KPIMON_REDIS_URL", default=None,
              help="the workers' Redis (env KPIMON_REDIS_URL): its recorded feedback scores each rule (precision, "
                   "recall)")
@click.option("--prefix", envvar="KPIMON_REDIS_PREFIX", default=defaults.redis_prefix(defaults.APP_ID),
              show_default=True, help="key prefix of the workers' Redis (env KPIMON_REDIS_PREFIX)")
def backtest(catalog: str, files: tuple[str, ...], topics: tuple[str, ...], values_topic: str | None, broker: str,
             since: str | None, until: str | None, sets: tuple[str, ...], sensitivities: tuple[str, ...],
             kinds: tuple[str, ...], as_json: bool, progress: bool | None, redis_url: str | None,
             prefix: str) -> None:
    """Replay history through the worker's engine, detectors and alert rules (nothing is sent) and tell what
    fired per rule and series; with --set/--sensitivity/--detector, current and proposed side by side."""
    from streams.backtest import Judge, judge

    cat = _catalog(catalog)
    overrides, detectors = _changes(cat, sets, sensitivities, kinds)
    current = Judge.of(cat)
    judges = [current]
    if overrides or detectors:
        proposed_alerting, _, problems = apply_overrides(current.alerting, overrides)
        if problems:
            _fail("; ".join(problems))
        judges.append(Judge(current.name, proposed_alerting, current.detectors, current.calendar)
                      .with_detectors("proposed", detectors))
    t0 = time.monotonic()
    history = _load_history(cat, files, topics, values_topic, broker, since, until,
                            sys.stderr.isatty() if progress is None else progress)
    labels = _labels(redis_url, prefix) if redis_url else None
    reports = [asyncio.run(judge(history, how)) for how in judges]
    doc = _document(history, reports, overrides, detectors, time.monotonic() - t0)
    if labels is not None:
        doc["feedback"] = _scores(history, reports, labels)
    if as_json:
        click.echo(json.dumps(doc, ensure_ascii=False, allow_nan=False))
    else:
        _print(doc, len(judges) > 1)


@click.command()
@_history_options
@click.option("--app-id", envvar="KPIMON_APP_ID", default=defaults.APP_ID, show_default=True,
              help="the workers' app id (env KPIMON_APP_ID): whose changelog to warm")
@click.option("--topic-prefix", envvar="KPIMON_TOPIC_PREFIX", default=defaults.TOPIC_PREFIX, show_default=True,
              help="the workers' topic prefix (env KPIMON_TOPIC_PREFIX)")
@click.option("--partitions", envvar="KPIMON_PARTITIONS", type=click.IntRange(1, 1024), default=None,
              help="partitions of kpi.partials when it does not exist yet (env KPIMON_PARTITIONS)")
@click.option("--replace", is_flag=True, help="overwrite series that have a checkpoint already (default: keep them)")
def backfill(catalog: str, files: tuple[str, ...], topics: tuple[str, ...], values_topic: str | None, broker: str,
             since: str | None, until: str | None, progress: bool | None, app_id: str, topic_prefix: str,
             partitions: int | None, replace: bool) -> None:
    """Warm detectors (and the current period's attainment) from history, before the workers start, so they judge
    the first live window; series with a checkpoint are kept (idempotent)."""
    from streams.app import kpi_goal
    from streams.backfill import WorkersRunning
    from streams.backfill import backfill as warm
    from streams.backtest import Judge
    from streams.plan import compile_plan
    from streams.topics import PartitionMismatchError, Topics

    cat = _catalog(catalog)
    history = _load_history(cat, files, topics, values_topic, broker, since, until,
                            sys.stderr.isatty() if progress is None else progress)
    plan = compile_plan(cat)
    goals = {k.name: kpi_goal(plan, k.name, k.target.value, k.target.per) for k in cat.kpis if k.target is not None}
    judge = Judge.of(cat)
    layout = (Topics(internal_partitions=partitions) if partitions else Topics()).with_prefix(topic_prefix)
    try:
        report = asyncio.run(warm(broker, plan, history, app_id=app_id, topics=layout, detectors=judge.detectors,
                                  goals=goals, calendar=judge.calendar, replace=replace))
    except (PartitionMismatchError, WorkersRunning) as exc:
        _fail(str(exc))
    except (ConnectionError, OSError) as exc:
        _fail(f"cannot reach Kafka at {broker}: {exc}")
    click.echo(f"{report.changelog}: {report.records} record(s) in {report.partitions} partition(s)")
    for kpi in sorted(set(report.warmed) | set(report.kept)):
        warming = report.warming.get(kpi, 0)
        note = f" ({warming} still warming up: the history is shorter than a detector needs)" if warming else ""
        click.echo(f"  {kpi:<22} {report.warmed.get(kpi, 0):>5} series warmed, {report.kept.get(kpi, 0):>5} kept{note}")
    if report.attainment:
        click.echo(f"  attainment of the current period: {', '.join(sorted(report.attainment))}")
    if not report.warmed and not report.kept:
        click.echo("  nothing to warm: no KPI of the catalog has a detector, or the history holds none of their values")


def _labels(url: str, prefix: str) -> list[Any]:
    """The feedback recorded in the workers' Redis, as :class:`streams.backtest.Label` (exit 2 when unreachable)."""
    from redis.exceptions import RedisError

    from alerting.notifiers.base import redact_urls
    from alerting.redis_store import RedisStore
    from streams.backtest import Label

    async def read() -> list[dict[str, Any]]:
        store = RedisStore.from_url(url, prefix=prefix)
        try:
            return await store.list_feedback()
        finally:
            await store.aclose()

    try:
        records = asyncio.run(read())
    except (RedisError, OSError, ValueError) as exc:
        _fail(redact_urls(f"cannot read feedback from Redis at {url}: {exc}"))
    return [label for r in records if (label := Label.of(r)) is not None]


def _scores(history: Any, reports: list[Any], labels: list[Any]) -> list[dict[str, Any]]:
    """Per rule with feedback in the history: people's verdicts and what each judge fired on of them."""
    from streams.backtest import score_labels

    first = None if history.first_ms is None else history.first_ms / 1000
    last = None if history.last_ms is None else history.last_ms / 1000
    scored = [score_labels(rep, labels, first=first, last=last) for rep in reports]
    out = []
    for key in sorted(set().union(*scored)):
        entry: dict[str, Any] = {"kpi": key[0], "rule": key[1], **scored[0].get(key, {})}
        if len(scored) > 1:
            entry["proposed"] = scored[1].get(key, {})
        out.append(entry)
    return out


def _document(history: Any, reports: list[Any], overrides: dict[tuple[str, str], dict[str, Any]],
              detectors: dict[str, dict[str, str]], elapsed: float) -> dict[str, Any]:
    current = reports[0].by_key()
    proposed = reports[1].by_key() if len(reports) > 1 else None
    zero: dict[str, Any] = {"fired": 0, "alert_minutes": 0.0, "first": None, "last": None, "longest_minutes": 0.0,
            "firing_at_end": False, "fired_at": []}
    rows = []
    for key in sorted(set(current) | set(proposed or {})):
        row = current.get(key) or (proposed or {})[key]
        entry = {**row.to_json(), **({} if key in current else zero)}
        if proposed is not None:
            other = proposed.get(key)
            entry["proposed"] = {k: v for k, v in (other.to_json() if other else zero).items()
                                 if k not in ("kpi", "rule", "series", "severity")}
        rows.append(entry)

    def totals(report: Any) -> dict[str, Any]:
        return {"fired": sum(r.fired for r in report.rows),
                "alert_minutes": round(sum(r.alert_minutes for r in report.rows), 3),
                "series": len(report.rows), "anomalies": report.anomalies}

    return {
        "history": {"messages": history.messages, "events": history.events, "values": history.values,
                    "skipped_outside_range": history.skipped, "dead_letters": dict(history.dead),
                    "dead_letter_examples": history.examples,
                    "first": None if history.first_ms is None else history.first_ms / 1000,
                    "last": None if history.last_ms is None else history.last_ms / 1000,
                    "silences": [{"source": s.source, "from": s.start, "to": None if math.isinf(s.end) else s.end}
                                 for s in history.silences]},
        "changes": {"rules": [{"kpi": k, "rule": r, "fields": f} for (k, r), f in sorted(overrides.items())],
                    "detectors": [{"kpi": k, **v} for k, v in sorted(detectors.items())]},
        "rules": rows,
        "totals": {rep.judge: totals(rep) for rep in reports},
        "seconds": round(elapsed, 3),
    }


def _print(doc: dict[str, Any], side_by_side: bool) -> None:
    h = doc["history"]
    span = f"{_when(h['first'])} .. {_when(h['last'])} UTC" if h["first"] is not None else "no events"
    click.echo(f"history: {h['events']:,} events in {h['messages']:,} messages, {h['values']:,} window values, {span}")
    if h["dead_letters"]:
        click.echo("dead letters: " + ", ".join(f"{k} {v:,}" for k, v in sorted(h["dead_letters"].items())))
    for s in h["silences"]:
        click.echo(f"source {s['source']} silent from {_when(s['from'])} to {_when(s['to'])} (its windows: no data; "
                   "the worker pages source_silent instead)")
    if not doc["rules"]:
        click.echo("no alert would have fired" + (" under either setting" if side_by_side else ""))
    else:
        head = f"{'kpi':<22} {'rule':<20} {'series':<22} {'fired':>5} {'alert-min':>9} {'first':>11} {'last':>11} {'longest':>7}"
        click.echo(head + ("   | proposed: fired alert-min longest" if side_by_side else ""))
        for r in doc["rules"]:
            line = (f"{r['kpi']:<22} {r['rule']:<20} {_series(r['series']):<22} {r['fired']:>5} "
                    f"{r['alert_minutes']:>9.1f} {_when(r['first']):>11} {_when(r['last']):>11} "
                    f"{r['longest_minutes']:>7.1f}")
            if side_by_side:
                p = r["proposed"]
                line += f"   | {p['fired']:>14} {p['alert_minutes']:>9.1f} {p['longest_minutes']:>7.1f}"
            click.echo(line)
    for f in doc.get("feedback", []):
        line = (f"feedback on {f['kpi']}/{f['rule']}: {f['marked_true']} true, {f['marked_false']} false alarm(s) "
                f"marked; fired on {f['fired_true']} true, {f['fired_false']} false: precision {_pct(f['precision'])}, "
                f"recall {_pct(f['recall'])}")
        p = f.get("proposed")
        if p:
            line += (f"  | proposed: {p['fired_true']} true, {p['fired_false']} false, precision "
                     f"{_pct(p['precision'])}, recall {_pct(p['recall'])}")
        click.echo(line)
    for name, t in doc["totals"].items():
        click.echo(f"{name}: {t['fired']} alert(s) on {t['series']} series, {t['alert_minutes']:.1f} alert-minutes, "
                   f"{t['anomalies']} anomalous windows")
    click.echo(f"({doc['seconds']:.1f}s)")
