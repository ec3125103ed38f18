"""`kpimon demo` — the newcomer's first command — runs end to end and shows the outage's alerts."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kpimon.demo import quick_detectors
from tests.fixtures.worker import REPO

pytestmark = pytest.mark.slow


def test_demo_delivers_the_outage_alerts_and_stops_cleanly() -> None:
    done = subprocess.run([sys.executable, "-m", "kpimon", "demo", "--duration", "80", "--metrics-port", "0"],
                          cwd=REPO, capture_output=True, text=True, timeout=240)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    # the routes are zh: the whole headline is Chinese (the catalog's summary is English-only, so not used);
    # the console wraps long lines, so compare without whitespace
    flat = re.sub(r"\s+", "", out)
    assert "alertdeliveredvia" in flat and "【告警中】严重·支付订单数·region=east：0单，低于1" in flat, out[-3000:]
    assert "{region}" not in out
    assert "stopped cleanly" in out
    path = Path(out.split("every notification delivered, in full: ")[1].split()[0])
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert {d["channel"] for d in lines} == {"email", "dingtalk"}
    outage = [d for d in lines if d["subject"].startswith("【告警中】严重 · 支付订单数 · region=east：0 单")]
    assert {d["channel"] for d in outage} == {"email", "dingtalk"} and all(d["state"] == "firing" for d in outage)
    assert all(d["body"] and d["time"] for d in lines)
    # the feed stop (payments) is at most one page per channel, never one per region or team
    silent = [d["channel"] for d in lines if "数据源 payments" in d["subject"] and d["state"] == "firing"]
    assert len(silent) == len(set(silent)), silent


def test_quick_detectors_keep_other_params_and_skip_disabled(tmp_path: Path) -> None:
    src = tmp_path / "in.yaml"
    src.write_text(yaml.safe_dump({"kpis": [
        {"name": "a", "detector": {"kind": "seasonal", "params": {"memory_days": 3}}},
        {"name": "b", "detector": {"enabled": False}},
        {"name": "c"}]}), encoding="utf-8")
    doc = yaml.safe_load(quick_detectors(src, tmp_path / "out.yaml").read_text(encoding="utf-8"))
    a, b, c = doc["kpis"]
    assert a["detector"]["params"] == {"memory_days": 3, "seasonality": "none", "warmup": 30}
    assert "params" not in b["detector"]
    assert c["detector"]["params"] == {"seasonality": "none", "warmup": 30}


def test_a_taken_port_is_seen_before_the_demo_uses_it() -> None:
    """The demo's worker port: one another process listens on is not bindable (the demo then picks a free one and
    says so instead of showing someone else's /metrics)."""
    import socket

    from kpimon.demo import _bindable

    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        taken = other.getsockname()[1]
        assert not _bindable(taken)
    assert _bindable(taken)
