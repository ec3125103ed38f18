"""Security defaults of a real ``kpimon worker``: loopback-only unless told, API tokens from a file naming the
caller, and a refused token stops the start with one line (exit 2) before anything runs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.fixtures.worker import REPO, WorkerProcess

CATALOG = REPO / "tests" / "streams" / "e2e.yaml"
TOKEN = "file-token-" + os.urandom(8).hex()

Factory = Callable[..., WorkerProcess]


def listening_addresses(port: int) -> set[str]:
    """Local addresses of the LISTEN sockets on ``port``, from /proc/net/tcp and tcp6 (hex, host byte order)."""
    out = set()
    for name in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{name}").read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, hexport = local.split(":")
            if state != "0A" or int(hexport, 16) != port:
                continue
            raw = bytes.fromhex(addr)
            words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            out.add(socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, words))
    return out


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def test_default_listen_is_loopback_only_and_the_token_file_names_the_caller(
    worker_factory: Factory, tmp_path: Path
) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"# who:token\nops-bot:{TOKEN}\n")
    tokens.chmod(0o600)
    # host=None: only --metrics-port is given, so the host is the worker's default
    w = worker_factory(CATALOG, "sec-default", host=None, args=("--api-token-file", str(tokens)))
    assert listening_addresses(w.metrics_port) == {"127.0.0.1"}
    assert reachable("127.0.0.1", w.metrics_port)
    assert not reachable("127.0.0.2", w.metrics_port)      # another address of this machine (lo is 127/8)

    base = f"http://127.0.0.1:{w.metrics_port}/api"
    assert httpx.get(f"{base}/silences", timeout=5).status_code == 401
    auth = {"Authorization": f"Bearer {TOKEN}", "X-Kpimon-User": "root"}
    resp = httpx.post(f"{base}/silences", json={"matchers": ["kpi=e_count"], "duration": "1h"}, headers=auth,
                      timeout=5)
    assert resp.status_code == 201, resp.text
    assert resp.json()["created_by"] == "ops-bot"
    assert TOKEN not in w.log_path.read_text()


def test_listen_sets_the_address(worker_factory: Factory) -> None:
    w = worker_factory(CATALOG, "sec-any", host="0.0.0.0")
    assert listening_addresses(w.metrics_port) == {"0.0.0.0"}
    assert reachable("127.0.0.2", w.metrics_port)


def run_worker(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "kpimon", "worker", "--catalog", str(CATALOG), "--broker", "127.0.0.1:1", *args]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KPIMON_")}
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60, env={**clean, **(env or {})})


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (("--api-token", "short-secret"), {}, "too short: use at least 16 characters"),
        ((), {"KPIMON_API_TOKEN": "short-secret"}, "too short: use at least 16 characters"),
        (("--api-token-file", "{file}"), {}, "too short: use at least 16 characters"),
        ((), {"KPIMON_API_TOKEN_FILE": "{file}"}, "too short: use at least 16 characters"),
        (("--api-token-file", "{missing}"), {}, "cannot read the API token file"),
        (("--api-token", TOKEN, "--api-token-file", "{file}"), {}, "not both"),
        (("--listen", "localhost"), {}, "is not HOST:PORT"),
    ],
)
def test_bad_tokens_stop_the_worker_before_it_starts(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], message: str
) -> None:
    short = tmp_path / "tokens"
    short.write_text("ann:short-secret\n")
    short.chmod(0o600)
    paths = {"file": str(short), "missing": str(tmp_path / "nope")}
    proc = run_worker(*(a.format(**paths) for a in args), env={k: v.format(**paths) for k, v in env.items()})
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output
    assert message in output and "Traceback" not in output
    assert "short-secret" not in output and TOKEN not in output
    assert "broker" not in output          # refused before any connection attempt (the broker is unreachable)
    if message != "is not HOST:PORT":      # click's usage error spans a few lines
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr

