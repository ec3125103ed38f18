"""The CLI's command list is written down in ``kpimon.cli``, not assembled by whatever happened to import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from kpimon.cli import main

REPO = Path(__file__).resolve().parents[1]


def test_the_commands_are_listed_explicitly() -> None:
    """A fresh `kpimon --help` lists every command; none is mounted as a side effect of some other import."""
    done = subprocess.run([sys.executable, "-m", "kpimon", "--help"], capture_output=True, text=True, cwd=REPO,
                          check=True, timeout=120)
    listed = {line.split()[0] for line in done.stdout.split("Commands:")[1].splitlines() if line.strip()}
    assert listed == {"alerts", "backfill", "backtest", "check", "dashboards", "demo", "nab", "review", "simulate",
                      "threshold", "worker"}
    assert listed == set(main.commands)


def test_version() -> None:
    done = subprocess.run([sys.executable, "-m", "kpimon", "--version"], capture_output=True, text=True, cwd=REPO,
                          check=True, timeout=120)
    assert done.stdout.strip().startswith("kpimon 0.") and done.stderr == ""
