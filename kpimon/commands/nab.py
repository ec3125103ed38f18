"""``kpimon nab``: run a detector over the NAB benchmark and score it twice.

Runs :func:`detectors.nab.run_nab` (streaming, one parameter set, a fresh
detector per file), then NAB's scorer ``nab_score.py`` for the optimised
threshold (NAB's usual, slightly flattering number) and again at the
detector's own fixed production threshold (the honest number).

Examples::

    kpimon nab                                   # calibrated (the default kind), medium, ../shared/nab
    kpimon nab --kind hst --results out/nab-hst
    kpimon nab --kind seasonal -p memory_days=3 --threshold 0.55
    kpimon nab --cv                              # leave one category out over the default grid
    kpimon nab --cv --grid memory_days=3,6,12    # ... over a grid of your own (combinations of the lists)

``--cv`` (see :mod:`kpimon.commands.nab_cv`) runs each candidate once, chooses parameters for each category on the
other categories only, and prints the out-of-fold scores (per category and pooled) beside the in-sample ones, all
at the fixed threshold.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import click

from detectors.base import DetectorError
from detectors.nab import FileResult, run_nab
from detectors.nab_cv import CANDIDATES, expand_grid
from detectors.registry import DEFAULT_KIND, KINDS, SENSITIVITIES, make_detector
from kpimon.commands.nab_cv import report, run_cv

__all__ = ["nab"]

# kpimon/commands/nab.py -> repository root -> its sibling "shared/nab"
DEFAULT_NAB_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "nab"


def _parse_params(items: tuple[str, ...]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected key=value, got {item!r}", param_hint="--param")
        try:
            params[key] = json.loads(raw)
        except json.JSONDecodeError:
            params[key] = raw  # plain words ("daily") need no JSON quotes
    return params


def _parse_grid(items: tuple[str, ...]) -> dict[str, list[Any]]:
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key or not raw:
            raise click.BadParameter(f"expected key=v1,v2,..., got {item!r}", param_hint="--grid")
        grid[key] = [_parse_params((f"{key}={v}",))[key] for v in raw.split(",")]
    return grid


def _cv(kinds: tuple[str, ...], sensitivity: str, kwargs: dict[str, Any], grid: dict[str, list[Any]], data: Path,
        labels: Path, scorer: Path, results: Path, fixed: float) -> None:
    """``--cv``: the kinds' grids (or the given one) cross-validated at one fixed threshold."""
    cands = [(k, c) for k in kinds for c in (
        expand_grid(grid, kwargs) if grid else [{**kwargs, **c} for c in CANDIDATES.get(k, [{}])])]
    click.echo(f"cross-validation: {', '.join(kinds)}, {sensitivity}, fixed threshold {fixed}, {len(cands)} candidates")
    report(run_cv(sensitivity, cands, data, labels, scorer, results, fixed, click.echo), fixed, click.echo)


def _score(scorer: Path, data: Path, labels: Path, results: Path, threshold: float | None) -> None:
    cmd = [sys.executable, str(scorer), "--data", str(data), "--labels", str(labels), "--results", str(results)]
    if threshold is not None:
        cmd += ["--threshold", repr(threshold)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    click.echo(done.stdout.rstrip())
    if done.returncode != 0:
        raise click.ClickException(f"nab_score.py failed ({done.returncode}): {done.stderr.strip()}")


@click.command()
@click.option("--kind", "kinds", type=click.Choice(sorted(KINDS)), multiple=True,
              help="Detector kind [default: calibrated]; with --cv repeatable: the kinds' grids are searched together.")
@click.option("--sensitivity", type=click.Choice(SENSITIVITIES), default="medium", show_default=True)
@click.option("--param", "-p", "params", multiple=True, metavar="KEY=VALUE",
              help="Detector parameter (JSON value), the same for every file; repeatable.")
@click.option("--nab-dir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_NAB_DIR,
              show_default=True, help="NAB folder holding data/, labels/ and nab_score.py.")
@click.option("--data", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="NAB data folder [default: NAB_DIR/data].")
@click.option("--labels", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="combined_windows.json [default: NAB_DIR/labels/combined_windows.json].")
@click.option("--scorer", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="nab_score.py [default: NAB_DIR/nab_score.py].")
@click.option("--results", type=click.Path(file_okay=False, path_type=Path), default=Path("out/nab"),
              show_default=True, help="Where the results CSVs go (one per data file).")
@click.option("--threshold", type=float, default=None,
              help="Fixed threshold to score at [default: the detector's own at this sensitivity].")
@click.option("--cv", is_flag=True, help="Leave-one-category-out cross-validation over a small grid.")
@click.option("--grid", "grid", multiple=True, metavar="KEY=V1,V2",
              help="With --cv: values to try (every combination, on top of --param); repeatable "
                   "[default: the kind's own handful of settings].")
def nab(kinds: tuple[str, ...], sensitivity: str, params: tuple[str, ...], nab_dir: Path, data: Path | None,
        labels: Path | None, scorer: Path | None, results: Path, threshold: float | None, cv: bool,
        grid: tuple[str, ...]) -> None:
    """Run a detector over the Numenta Anomaly Benchmark and print NAB's scores."""
    data = data or nab_dir / "data"
    labels = labels or nab_dir / "labels" / "combined_windows.json"
    scorer = scorer or nab_dir / "nab_score.py"
    kwargs = _parse_params(params)
    if (grid or len(kinds) > 1) and not cv:
        raise click.UsageError("--grid and several --kind need --cv")
    kinds = kinds or (DEFAULT_KIND,)
    own = {make_detector(k, sensitivity).threshold for k in kinds}
    if cv and threshold is None and len(own) > 1:   # said before anything is read: a usage error, not a run's
        raise click.UsageError(f"the kinds {', '.join(kinds)} alarm at different thresholds ({sorted(own)}): "
                               "cross-validate them at one --threshold, or apart")
    for path in (data, labels, scorer):
        if not path.exists():
            raise click.ClickException(f"{path} not found; point --nab-dir (or --data/--labels/--scorer) at NAB")
    kind = kinds[0]
    try:
        fixed = make_detector(kind, sensitivity, **kwargs).threshold if threshold is None else threshold
        if cv:
            _cv(kinds, sensitivity, kwargs, _parse_grid(grid), data, labels, scorer, results, fixed)
            return
        count = len(list(data.glob("*/*.csv")))
        done: list[FileResult] = []

        def progress(res: FileResult) -> None:
            done.append(res)
            click.echo(f"[{len(done):>2}/{count}] {res.name:<60} {res.rows:>6} rows "
                       f"{res.detections:>4} alarms {1e6 * res.seconds / max(res.rows, 1):6.1f} us/row")

        run_nab(kind, data, results, sensitivity, progress=progress, **kwargs)
    except DetectorError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo("")
    _score(scorer, data, labels, results, None)
    click.echo("")
    _score(scorer, data, labels, results, fixed)
