"""The import-linter contracts bite: one import against the layers, added to a copy of the tree, is reported BROKEN.

The layers (pyproject.toml): kpimon (the shell) > streams | grafana > alerting > detectors > catalog; grafana uses
only the catalog. ``make test`` runs ``lint-imports`` on the real tree; these tests show that it would notice.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("kpimon", "catalog", "streams", "alerting", "detectors", "grafana")
LINT = "from importlinter.cli import lint_imports_command; lint_imports_command()"


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    for name in PACKAGES:
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root), "COLUMNS": "300"}   # the copy, not the installed tree; no wrapping
    return subprocess.run([sys.executable, "-c", LINT, "--no-cache"], cwd=root, env=env, capture_output=True,
                          text=True, timeout=300, check=False)


def test_the_real_tree_keeps_every_contract(tmp_path: Path) -> None:
    done = _lint(_copy(tmp_path))
    assert done.returncode == 0 and "BROKEN" not in done.stdout, done.stdout + done.stderr
    assert "layers:" in done.stdout and " kept, 0 broken" in done.stdout, done.stdout


@pytest.mark.parametrize(("module", "line", "contract"), [
    ("streams/plan.py", "from kpimon.wiring import build_worker", "layers:"),
    ("grafana/links.py", "from kpimon.wiring import build_worker", "grafana uses only the catalog"),
    ("grafana/links.py", "from streams.plan import compile_plan", "layers:"),
    ("grafana/links.py", "from alerting.notifiers.base import redact_urls", "grafana uses only the catalog"),
    ("catalog/model.py", "from alerting.config import TUNABLE", "layers:"),
    ("detectors/base.py", "from alerting.rules import evaluate", "layers:"),
    ("alerting/rules.py", "from streams.plan import compile_plan", "layers:"),
    ("detectors/base.py", "import redis", "detectors are pure"),
    ("catalog/load.py", "import faust", "the catalog is plain data"),
])
def test_one_bad_import_breaks_a_contract(tmp_path: Path, module: str, line: str, contract: str) -> None:
    root = _copy(tmp_path)
    path = root / module
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}  # noqa: E402\n", encoding="utf-8")
    done = _lint(root)
    broken = [ln for ln in done.stdout.splitlines() if ln.endswith("BROKEN")]
    assert done.returncode != 0 and any(ln.startswith(contract) for ln in broken), done.stdout + done.stderr
