"""Leave-one-category-out: which categories train and test each fold, and that a test category never steers its
own choice.  Tiny synthetic tallies; one end-to-end run of ``kpimon nab --cv`` on tiny synthetic files."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping
from pathlib import Path

import pytest
from click.testing import CliRunner

from detectors.base import DetectorError
from detectors.nab_cv import Tally, choose, cross_validate, expand_grid, folds, pooled
from kpimon.commands.nab import DEFAULT_NAB_DIR, nab

CATS = ["artificialNoAnomaly", "artificialWithAnomaly", "realAWSCloudwatch", "realKnownCause"]


def tally(score: float | None, windows: int = 2) -> Tally:
    """A tally whose normalised score is ``score`` (None: a category without windows, one FP row)."""
    if score is None:
        return Tally(-0.11, 0.0, 0.0, 0, 0, 1)
    null, perfect = -float(windows), float(windows)
    return Tally(null + score / 100.0 * (perfect - null), null, perfect, windows, windows, 0)


def table(rows: Mapping[int, Mapping[str, float | None]]) -> dict[int, dict[str, Tally]]:
    return {cand: {cat: tally(s) for cat, s in by_cat.items()} for cand, by_cat in rows.items()}


def test_each_category_is_held_out_once_and_trained_on_the_others() -> None:
    got = folds(list(reversed(CATS)))
    assert [test for test, _ in got] == CATS
    for test, train in got:
        assert test not in train and sorted((*train, test)) == CATS and len(train) == 3


def test_fewer_than_two_categories_cannot_be_cross_validated() -> None:
    with pytest.raises(DetectorError, match="at least two"):
        folds(["only"])


def test_the_choice_reads_only_the_training_categories() -> None:
    """Candidate 1 is best on the test category alone; no value there changes what its fold chooses."""
    base = {0: {"a": 80.0, "b": 70.0, "c": 60.0}, 1: {"a": 10.0, "b": 69.0, "c": 59.0}}
    chosen = {f.test: f.chosen for f in cross_validate(table(base))}
    assert chosen == {"a": 0, "b": 0, "c": 0}
    for wild in (-500.0, 0.0, 100.0, 1e6):
        moved = {cand: {**row, "a": wild if cand == 1 else row["a"]} for cand, row in base.items()}
        fold_a = next(f for f in cross_validate(table(moved)) if f.test == "a")
        assert fold_a.chosen == 0 and fold_a.train == ("b", "c")


def test_choice_follows_the_pooled_score_not_the_mean_of_category_scores() -> None:
    """Scores are pooled over files (NAB's raw sums), so a category with more windows weighs more."""
    t = {0: {"big": Tally(0.0, -10.0, 10.0, 10), "small": Tally(1.0, -1.0, 1.0, 1), "test": tally(50.0)},
         1: {"big": Tally(2.0, -10.0, 10.0, 10), "small": Tally(-1.0, -1.0, 1.0, 1), "test": tally(50.0)}}
    # per category 0 scores 50 and 100, 1 scores 60 and 0; pooled both are 100 * 12 / 22
    assert pooled([t[0]["big"], t[0]["small"]]).score() == pytest.approx(1200 / 22)
    assert pooled([t[1]["big"], t[1]["small"]]).score() == pytest.approx(1200 / 22)
    assert choose(t, ["big", "small"])[0] == 0  # a tie goes to the earlier candidate (the defaults)
    t[1]["big"] = Tally(2.5, -10.0, 10.0, 10)  # 62.5 and 0: a mean of 31 against 75, but pooled it is better
    assert choose(t, ["big", "small"])[0] == 1


def test_a_category_without_windows_counts_through_its_false_positives() -> None:
    """artificialNoAnomaly has no window: it has no score of its own, but its FPs lower the pooled score."""
    quiet, noisy = Tally(0.0, 0.0, 0.0), Tally(-1.1, 0.0, 0.0, 0, 0, 10)
    assert quiet.score() is None
    real = tally(50.0)
    t = {0: {"none": noisy, "real": real}, 1: {"none": quiet, "real": tally(49.0)}}
    assert choose(t, ["none", "real"])[0] == 1
    with pytest.raises(DetectorError, match="no anomaly window"):
        choose(t, ["none"])  # nothing to rank by: the fold that trains on it alone is refused


def test_every_candidate_needs_every_category() -> None:
    with pytest.raises(DetectorError, match="candidate 1"):
        cross_validate({0: {"a": tally(1.0), "b": tally(2.0)}, 1: {"a": tally(1.0)}})


def test_grid_puts_the_base_first_and_never_repeats() -> None:
    assert expand_grid({"x": [1, 2]}, {"x": 1}) == [{"x": 1}, {"x": 2}]
    assert expand_grid({"x": [1], "y": [3, 4]}) == [{}, {"x": 1, "y": 3}, {"x": 1, "y": 4}]


def write(path: Path, values: list[float]) -> list[str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    stamps = [f"2014-04-{1 + i // 1440:02d} {i % 1440 // 60:02d}:{i % 60:02d}:00" for i in range(len(values))]
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["timestamp", "value"])
        out.writerows(zip(stamps, values, strict=True))
    return stamps


@pytest.mark.skipif(not (DEFAULT_NAB_DIR / "nab_score.py").exists(),
                    reason="needs the independent NAB scorer ../shared/nab/nab_score.py beside the checkout "
                           "(it is not part of this repository)")
def test_cv_command_end_to_end(tmp_path: Path) -> None:
    """Three tiny categories, two candidates: the out-of-fold files of each category come from its fold's choice,
    and nab_score.py on the pooled out-of-fold results agrees with the printed per-fold numbers."""
    scorer = DEFAULT_NAB_DIR / "nab_score.py"
    data, labels = tmp_path / "data", {}
    for k, cat in enumerate(("a", "b", "c")):
        values = [10.0 + math.sin(i / 7.0) + (40.0 if i == 300 + 20 * k else 0.0) for i in range(400)]
        stamps = write(data / cat / f"s{k}.csv", values)
        labels[f"{cat}/s{k}.csv"] = [[stamps[290 + 20 * k] + ".000000", stamps[320 + 20 * k] + ".000000"]]
    (tmp_path / "labels.json").write_text(json.dumps(labels))
    results = tmp_path / "results"
    done = CliRunner().invoke(nab, ["--cv", "--data", str(data), "--labels", str(tmp_path / "labels.json"),
                                    "--scorer", str(scorer), "--results", str(results), "-p", "seasonality=none",
                                    "--grid", "warmup=350"])
    assert done.exit_code == 0, done.output
    assert "candidate 2/2 calibrated seasonality=none warmup=350" in done.output
    assert "nab_score.py on the pooled out-of-fold results (3 files" in done.output
    for cat in ("a", "b", "c"):
        assert (results / "oof" / cat).is_dir()
    # warmup=350 judges nothing before row 350: it misses every window, so no fold chooses it
    assert (results / "oof" / "a" / "s0.csv").read_text() == (results / "cand0" / "a" / "s0.csv").read_text()


@pytest.mark.parametrize("args", [["--grid", "warmup=30"], ["--kind", "seasonal", "--kind", "calibrated"],
                                  ["--cv", "--kind", "seasonal", "--kind", "gaussian"]])
def test_the_command_refuses_what_it_cannot_score_fairly(tmp_path: Path, args: list[str]) -> None:
    """A grid or several kinds without --cv; kinds alarming at different thresholds in one cross-validation."""
    (tmp_path / "data" / "a").mkdir(parents=True)
    (tmp_path / "labels.json").write_text("{}")
    done = CliRunner().invoke(nab, [*args, "--data", str(tmp_path / "data"), "--labels", str(tmp_path / "labels.json"),
                                    "--results", str(tmp_path / "out")])
    assert done.exit_code == 2 and ("need --cv" in done.output or "different thresholds" in done.output), done.output
