"""Leave-one-category-out cross-validation of detector parameters on NAB, at a fixed threshold.

The protocol (``kpimon nab --cv``): a small grid of candidate parameter sets is run over every file once (a fresh
detector per file, so a file's results do not depend on which fold it is in); then for each category in turn, the
candidate with the best *standard* score on the **other** categories is chosen, and its results on the held-out
category are that category's out-of-fold results.  The threshold is the detector's own at the sensitivity, never
fitted.  Pooled over every category the out-of-fold results are a set of results no file of which influenced its
own parameters: their score is the number that says how the detector does on files it never saw.

Scores at a fixed threshold add up over files: NAB's raw score is a sum over files, and so are its null and perfect
raw scores.  So the scorer is asked once per candidate and category (:class:`Tally`), and any set of categories is
scored by summing tallies (:func:`pooled`) -- exactly what the scorer would print for those files together.

This module is pure: the scoring itself is passed in (``kpimon.commands.nab`` runs ``nab_score.py``).

Examples
--------
>>> t = {0: {"a": Tally.of(raw=1.0, null=-2.0, perfect=2.0), "b": Tally.of(raw=-2.0, null=-2.0, perfect=2.0)},
...      1: {"a": Tally.of(raw=0.0, null=-2.0, perfect=2.0), "b": Tally.of(raw=2.0, null=-2.0, perfect=2.0)}}
>>> [(f.test, f.chosen) for f in cross_validate(t)]
[('a', 1), ('b', 0)]
>>> round(pooled([t[1]["a"], t[0]["b"]]).score(), 2)
25.0
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from detectors.base import DetectorError

__all__ = ["CANDIDATES", "PROFILES", "SELECT_BY", "Fold", "Tally", "cross_validate", "choose", "expand_grid", "folds", "pooled"]

PROFILES = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")
SELECT_BY = "standard"  # the profile candidates are chosen by (the product has one setting per sensitivity)

#: kind -> the default grid of ``kpimon nab --cv``: a handful of settings, the defaults first (ties go to them),
#: then one parameter moved at a time, so a run takes minutes on one core.
CANDIDATES: dict[str, list[dict[str, Any]]] = {
    "seasonal": [{}, {"memory_days": 3.0}, {"memory_days": 12.0}, {"holdoff_h": 2.0}, {"holdoff_h": 8.0},
                 {"level_rate": 0.05}],
    "calibrated": [{}, {"budget": 0.05}, {"budget": 0.2}, {"budget_days": 0.5}, {"budget_days": 3.0},
                   {"likelihood": True}],
}


@dataclass(frozen=True, slots=True)
class Tally:
    """Additive parts of one profile's NAB score over some files, at a fixed threshold."""

    raw: float
    null: float
    perfect: float
    windows: int = 0
    detected: int = 0
    fp_rows: int = 0

    @classmethod
    def of(cls, raw: float, null: float, perfect: float) -> Tally:
        return cls(raw, null, perfect)

    def __add__(self, other: Tally) -> Tally:
        return Tally(self.raw + other.raw, self.null + other.null, self.perfect + other.perfect,
                     self.windows + other.windows, self.detected + other.detected, self.fp_rows + other.fp_rows)

    def score(self) -> float | None:
        """NAB's normalised score, 100 (raw - null) / (perfect - null); None without a window (no scale)."""
        if self.perfect == self.null:
            return None
        return 100.0 * (self.raw - self.null) / (self.perfect - self.null)


def pooled(parts: Sequence[Tally]) -> Tally:
    """The tally of the files of all ``parts`` together."""
    if not parts:
        raise DetectorError("nothing to pool")
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total


#: candidate index -> category -> tally of the selection profile
Table = Mapping[int, Mapping[str, Tally]]


@dataclass(frozen=True, slots=True)
class Fold:
    """One rotation: the categories parameters were chosen on, the one scored, and the choice."""

    test: str
    train: tuple[str, ...]
    chosen: int  # index of the chosen candidate
    train_scores: tuple[float, ...]  # each candidate's selection score on the training categories


def folds(categories: Sequence[str]) -> list[tuple[str, tuple[str, ...]]]:
    """``(test, train)`` pairs: each category held out once, trained on all the others.

    >>> folds(["a", "b", "c"])
    [('a', ('b', 'c')), ('b', ('a', 'c')), ('c', ('a', 'b'))]
    """
    cats = sorted(set(categories))
    if len(cats) < 2:
        raise DetectorError(f"cross-validation needs at least two categories, got {cats}")
    return [(test, tuple(c for c in cats if c != test)) for test in cats]


def choose(table: Table, train: Sequence[str]) -> tuple[int, tuple[float, ...]]:
    """The candidate with the best pooled score over ``train`` (ties: the earlier, i.e. the default, wins).

    Only the tallies of ``train`` are read.  A training set without a window cannot rank anything: error.
    """
    scores = []
    for cand in sorted(table):
        s = pooled([table[cand][c] for c in train]).score()
        if s is None:
            raise DetectorError(f"categories {list(train)} hold no anomaly window: nothing to choose by")
        scores.append(s)
    best = max(range(len(scores)), key=lambda i: (scores[i], -i))
    return sorted(table)[best], tuple(scores)


def cross_validate(table: Table) -> list[Fold]:
    """Leave-one-category-out over the categories of ``table`` (every candidate must have them all)."""
    cands = sorted(table)
    if not cands:
        raise DetectorError("no candidates")
    cats = sorted(table[cands[0]])
    for cand in cands:
        if sorted(table[cand]) != cats:
            raise DetectorError(f"candidate {cand} was scored on {sorted(table[cand])}, not {cats}")
    out = []
    for test, train in folds(cats):
        chosen, scores = choose(table, train)
        out.append(Fold(test, train, chosen, scores))
    return out


def expand_grid(grid: Mapping[str, Sequence[Any]], base: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Candidates: ``base`` first, then every combination of the grid's values (on top of ``base``), no repeats.

    >>> expand_grid({"a": [1, 2], "b": ["x"]})
    [{}, {'a': 1, 'b': 'x'}, {'a': 2, 'b': 'x'}]
    """
    first = dict(base or {})
    out = [first]
    keys = list(grid)
    for values in itertools.product(*(grid[k] for k in keys)):
        cand = {**first, **dict(zip(keys, values, strict=True))}
        if cand not in out:
            out.append(cand)
    return out
