"""``kpimon demo``: the embedded broker, a worker and the simulator, with a live KPI table.

Everything runs as child processes in one process group of ours; Ctrl-C or the end of
``--duration`` stops them all (no orphans).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import yaml
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from catalog import load_catalog
from kpimon.demo_sinks import Sinks
from kpimon.embedded import free_port, start_broker, wait_port

__all__ = ["quick_detectors", "run_demo"]

WATCH = ("gmv", "orders", "paid_orders", "visits", "conversion_rate", "average_order_value", "refund_rate")


def quick_detectors(source: Path, out: Path, warmup: int = 30) -> Path:
    """Write ``source`` to ``out`` with every detector judging after ``warmup`` windows, without seasonality.

    A demo (or a test) has minutes of history, not the day a seasonal detector waits for.
    """
    doc = yaml.safe_load(source.read_text(encoding="utf-8"))
    for kpi in doc["kpis"]:
        det = kpi.setdefault("detector", {})
        if det.get("enabled", True):
            det["params"] = {**det.get("params", {}), "seasonality": "none", "warmup": warmup}
    out.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return out


def _bindable(port: int) -> bool:
    """Whether 127.0.0.1:``port`` is free to listen on."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def run_demo(*, catalog: str, duration: float | None, incidents: tuple[str, ...], speedup: float, rate: float,
             metrics_port: int) -> int:
    console = Console()
    cat = load_catalog(catalog)
    logdir = Path(tempfile.mkdtemp(prefix="kpimon-demo-"))
    console.print(f"[bold]kpimon demo[/] — logs in {logdir}")
    catalog = str(quick_detectors(Path(catalog), logdir / "catalog.yaml"))
    console.print("detectors judge after 30 windows, without seasonality (a demo has minutes of history; "
                  "in production they wait for a day)")
    broker = start_broker(log_path=logdir / "broker.log")
    console.print(f"broker (Tansu, embedded) at {broker.bootstrap}")
    sinks = Sinks(free_port(), free_port(), log_path=logdir / "alerts.jsonl").start()
    console.print(f"alert receivers: SMTP 127.0.0.1:{sinks.smtp_port}, DingTalk-style webhook 127.0.0.1:{sinks.http_port}")
    console.print(f"every notification delivered (time, channel, state, subject, body): {sinks.log_path}",
                  soft_wrap=True)
    env = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(sinks.smtp_port), "SMTP_STARTTLS": "false",
           "DINGTALK_WEBHOOK": f"http://127.0.0.1:{sinks.http_port}/robot/send?access_token=demo"}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        port = metrics_port or free_port()
        if not _bindable(port):   # another worker or demo has it: /metrics there would be someone else's
            taken, port = port, free_port()
            console.print(f"port {taken} is in use; the demo's worker listens on 127.0.0.1:{port} instead "
                          f"(--metrics-port N to choose)")
        procs.append(_spawn(["worker", "--catalog", catalog, "--broker", broker.bootstrap, "--listen", f"127.0.0.1:{port}",
                             "--speedup", str(speedup)], logdir / "worker.log", env))
        wait_port(port, 60, procs[0])
        console.print(f"worker metrics: [link]http://127.0.0.1:{port}/metrics[/]")
        sim = ["simulate", "--catalog", catalog, "--broker", broker.bootstrap, "--speedup", str(speedup),
               "--rate", str(rate), "--shop-hour", "10"]  # the same busy late morning at any hour
        for inc in incidents:
            sim += ["--incident", inc]
            console.print(f"scripted incident: [yellow]{inc}[/] (simulated minutes after start)")
        procs.append(_spawn(sim, logdir / "simulator.log"))
        title = {k.name: k.title_in(cat.defaults.language) for k in cat.kpis}
        asyncio.run(_watch(console, broker.bootstrap, title, duration, procs, sinks))
    except KeyboardInterrupt:
        console.print("stopping…")
    finally:
        for p in procs:
            _stop(p)
        broker.stop()
        sinks.stop()
    received = list(sinks.received)
    # the first deliveries (each incident's first page) and the latest; the middle of a long run is in the log
    shown = received if len(received) <= 20 else received[:10] + received[-10:]
    for i, d in enumerate(shown):
        if i == 10 and len(received) > 20:
            console.print(f"… {len(received) - 20} more deliveries in {sinks.log_path}", soft_wrap=True)
        console.print(f"alert delivered via {d.channel}: {d.text}")
    console.print(f"every notification delivered, in full: {sinks.log_path}", soft_wrap=True)
    console.print(f"stopped cleanly; logs in {logdir}")
    return 0


def _spawn(args: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:  # the child keeps its own descriptor
        return subprocess.Popen([sys.executable, "-m", "kpimon", *args], stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


async def _watch(console: Console, bootstrap: str, titles: dict[str, str], duration: float | None,
                 procs: list[subprocess.Popen[bytes]], sinks: Sinks) -> None:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer("kpi.values", bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None)
    await consumer.start()
    rows: dict[str, list[tuple[float, dict[str, Any]]]] = {}
    regions: dict[float, dict[str, float | None]] = {}
    start = time.monotonic()
    try:
        with Live(console=console, refresh_per_second=2) as live:
            while duration is None or time.monotonic() - start < duration:
                if any(p.poll() not in (None, 0) for p in procs):
                    raise RuntimeError("a demo process died; see the logs")
                batch = await consumer.getmany(timeout_ms=500)
                for msgs in batch.values():
                    for m in msgs:
                        _record(orjson.loads(m.value), rows, regions)
                live.update(screen(titles, rows, regions, sinks, console.size.height))
    finally:
        await consumer.stop()


def _record(rec: dict[str, Any], rows: dict[str, list[tuple[float, dict[str, Any]]]],
            regions: dict[float, dict[str, float | None]]) -> None:
    if rec["kpi"] == "paid_orders" and set(rec["labels"]) == {"region"}:
        regions.setdefault(rec["window_start"], {})[rec["labels"]["region"]] = rec["value"]
    if rec["labels"] or rec["kpi"] not in WATCH:
        return
    series = rows.setdefault(rec["kpi"], [])
    series[:] = [r for r in series if r[0] != rec["window_start"]] + [(rec["window_start"], rec)]
    series.sort(key=lambda r: r[0])
    del series[:-6]


def screen(titles: dict[str, str], rows: dict[str, list[tuple[float, dict[str, Any]]]],
           regions: dict[float, dict[str, float | None]], sinks: Sinks, height: int = 24) -> Group:
    """The live view: the alerts first (one line each, as many as fit), then the KPI table (cropped at the
    bottom by ``Live`` if the terminal is short), so the alerts stay visible on an 80×24 terminal."""
    return Group(_alerts(sinks, max(2, min(6, height - 16))), _render(titles, rows, regions))


def _render(titles: dict[str, str], rows: dict[str, list[tuple[float, dict[str, Any]]]],
            regions: dict[float, dict[str, float | None]]) -> Table:
    starts = sorted({ws for series in rows.values() for ws, _ in series})[-5:]     # 5 columns fit 80 wide
    table = Table(title="last closed 1-minute windows (simulated UTC)", title_justify="left", box=None,
                  padding=(0, 1))
    table.add_column("KPI", no_wrap=True, overflow="ellipsis", max_width=22)
    for ws in starts:
        table.add_column(time.strftime("%H:%M", time.gmtime(ws)), justify="right")
    for kpi in WATCH:
        vals = dict(rows.get(kpi, []))
        table.add_row(titles.get(kpi, kpi), *[_fmt(vals[ws]["value"]) if ws in vals else "…" for ws in starts])
    for region in ("east", "north", "south", "west"):
        cells = []
        for ws in starts:
            v = regions.get(ws, {}).get(region)
            cells.append("[bold red]0[/]" if v == 0 else _fmt(v))
        table.add_row(f"paid orders · {region}", *cells)
    return table


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) < 1:
        return f"{value:.3f}"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.1f}"


def _alerts(sinks: Sinks, shown: int) -> Table:
    table = Table(title=f"alerts delivered (full text: {sinks.log_path or 'not logged'})", title_justify="left",
                  box=None, padding=(0, 1), expand=True)
    table.add_column("channel", no_wrap=True)
    table.add_column("message", no_wrap=True, overflow="ellipsis", ratio=1)
    for d in list(sinks.received)[-shown:]:
        table.add_row(d.channel, d.text)
    if not sinks.received:
        table.add_row("-", "none yet")
    return table
