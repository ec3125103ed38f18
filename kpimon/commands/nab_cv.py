"""``kpimon nab --cv``: leave-one-category-out cross-validation of a small parameter grid, scored by ``nab_score.py``.

Every candidate runs over every file once; ``nab_score.py`` scores each candidate on each category at the fixed
threshold (``--json``); :mod:`detectors.nab_cv` picks, for each held-out category, the candidate best on the
others.  Printed: every candidate's standard score per category (in-sample, for reference), the choice per fold,
the out-of-fold score per category and pooled over all files for the three profiles, next to the in-sample score of
the candidate chosen on all categories.  The pooled out-of-fold results are also copied to ``RESULTS/oof`` and
scored there by ``nab_score.py`` as one run, so the headline number is the scorer's own.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from detectors.base import DetectorError
from detectors.nab import run_nab
from detectors.nab_cv import PROFILES, SELECT_BY, Fold, Tally, choose, cross_validate, pooled

__all__ = ["CvResult", "run_cv", "scorer_json"]

# candidate -> category -> profile -> tally
Scores = dict[int, dict[str, dict[str, Tally]]]
Candidate = tuple[str, dict[str, Any]]  # detector kind, parameters


@dataclass(frozen=True)
class CvResult:
    """What a cross-validation found (the printed report is made from it)."""

    candidates: list[Candidate]
    scores: Scores
    folds: list[Fold]
    in_sample: int  # the candidate chosen on all categories
    oof_total: dict[str, Any]  # nab_score.py --json over the pooled out-of-fold results


def scorer_json(scorer: Path, data: Path, labels: Path, results: Path, threshold: float,
                categories: Sequence[str] = ()) -> dict[str, Any]:
    """``nab_score.py --json`` at a fixed threshold, optionally on some categories only."""
    cmd = [sys.executable, str(scorer), "--data", str(data), "--labels", str(labels), "--results", str(results),
           "--threshold", repr(threshold), "--json"]
    if categories:
        cmd += ["--categories", ",".join(categories)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise click.ClickException(f"nab_score.py failed ({done.returncode}): {done.stderr.strip()}")
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def _tallies(report: dict[str, Any]) -> dict[str, Tally]:
    out = {}
    for name in PROFILES:
        p = report["profiles"][name]
        out[name] = Tally(p["raw"], p["raw_null"], p["raw_perfect"], p["windows"], p["detected_windows"],
                          p["fp_rows"])
    return out


def run_cv(sensitivity: str, candidates: list[Candidate], data: Path, labels: Path, scorer: Path,
           results: Path, threshold: float, echo: Callable[[str], None]) -> CvResult:
    """Run and score every candidate, cross-validate, score the pooled out-of-fold results."""
    categories = sorted(p.name for p in data.iterdir() if p.is_dir() and any(p.glob("*.csv")))
    scores: Scores = {}
    for i, (kind, params) in enumerate(candidates):
        start = time.perf_counter()
        out = results / f"cand{i}"
        files = run_nab(kind, data, out, sensitivity, **params)
        scores[i] = {c: _tallies(scorer_json(scorer, data, labels, out, threshold, [c])) for c in categories}
        std = pooled([scores[i][c][SELECT_BY] for c in categories]).score()
        echo(f"candidate {i + 1}/{len(candidates)} {_show((kind, params))}: {len(files)} files, "
             f"{sum(f.rows for f in files)} rows, {time.perf_counter() - start:.1f} s; in-sample standard "
             f"{_fmt(std)}")
    table = {cand: {c: by_cat[c][SELECT_BY] for c in categories} for cand, by_cat in scores.items()}
    done = cross_validate(table)
    in_sample, _ = choose(table, categories)
    oof = results / "oof"
    if oof.exists():
        shutil.rmtree(oof)
    for fold in done:  # the pooled out-of-fold results: each category from the candidate chosen without it
        shutil.copytree(results / f"cand{fold.chosen}" / fold.test, oof / fold.test)
    total = scorer_json(scorer, data, labels, oof, threshold)
    return CvResult(candidates, scores, done, in_sample, total)


def report(res: CvResult, threshold: float, echo: Callable[[str], None]) -> None:
    """Print the grid, the folds, and out-of-fold next to in-sample scores."""
    cats = [f.test for f in res.folds]
    echo("")
    echo(f"standard score per category at the fixed threshold {threshold} (every candidate, in-sample):")
    echo(f"  {'candidate':<40}" + "".join(f"{c[:22]:>24}" for c in cats) + f"{'all':>8}")
    for i, cand in enumerate(res.candidates):
        row = "".join(f"{_cell(res.scores[i][c][SELECT_BY]):>24}" for c in cats)
        all_ = pooled([res.scores[i][c][SELECT_BY] for c in cats]).score()
        echo(f"  {i + 1:>2} {_show(cand)[:37]:<37}{row}{_fmt(all_):>8}")
    echo("")
    echo(f"leave one category out (chosen by {SELECT_BY} on the other categories; the held-out one is never read):")
    for f in res.folds:
        echo(f"  held out {f.test:<24} chosen {f.chosen + 1} {_show(res.candidates[f.chosen])}  "
             f"(training scores {', '.join(_fmt(s) for s in f.train_scores)})")
    echo(f"  in-sample choice (all categories): {res.in_sample + 1} {_show(res.candidates[res.in_sample])}")
    echo("")
    head = "".join(f"{p[:18]:>20}" for p in PROFILES)
    echo(f"{'category':<26}{'':>10}{head}   (out-of-fold / in-sample)")
    for f in res.folds:
        oof, ins = res.scores[f.chosen][f.test], res.scores[res.in_sample][f.test]
        echo(f"{f.test:<26}{'':>10}" + "".join(f"{_cell(oof[p]) + ' / ' + _cell(ins[p]):>20}" for p in PROFILES))
    oof_all = {p: pooled([res.scores[f.chosen][f.test][p] for f in res.folds]) for p in PROFILES}
    ins_all = {p: pooled([res.scores[res.in_sample][c][p] for c in cats]) for p in PROFILES}
    echo(f"{'total':<26}{'':>10}" + "".join(f"{_cell(oof_all[p]) + ' / ' + _cell(ins_all[p]):>20}"
                                              for p in PROFILES))
    echo("")
    tot = res.oof_total
    echo(f"nab_score.py on the pooled out-of-fold results ({tot['files_scored']} files, fixed threshold {threshold}):")
    for p in PROFILES:
        r = tot["profiles"][p]
        echo(f"  {p:<20} {r['score']:7.2f}   windows {r['detected_windows']}/{r['windows']}, "
             f"FP rows {r['fp_rows']}")
    std = tot["profiles"][SELECT_BY]["score"]
    if abs(std - (oof_all[SELECT_BY].score() or 0.0)) > 1e-6:
        raise DetectorError(f"pooled tallies ({oof_all[SELECT_BY].score()}) disagree with the scorer ({std})")


def _cell(t: Tally) -> str:
    s = t.score()
    return f"n/a FP {t.fp_rows}" if s is None else f"{s:.2f}"


def _fmt(s: float | None) -> str:
    return "n/a" if s is None else f"{s:.2f}"


def _show(cand: Candidate) -> str:
    kind, params = cand
    return kind + " " + ("defaults" if not params else " ".join(f"{k}={_json(v)}" for k, v in params.items()))


def _json(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))
