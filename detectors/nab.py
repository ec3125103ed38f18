"""Run a detector over the Numenta Anomaly Benchmark, following NAB's rules.

* streaming only: the score of row *i* comes from ``update`` on rows 0..i;
* one parameter set for every file, a fresh detector per file;
* timestamps parsed from the CSV (naive times are read as UTC), rows matched by
  position (a few NAB files repeat or step back in time);
* one results CSV per data file, same relative path, columns
  ``timestamp,value,anomaly_score`` (what ``nab_score.py`` reads).

NAB's first 15% of each file is never scored, so the detectors' own warm-up
(``anomaly_score`` 0) costs nothing there.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from detectors.base import DetectorError
from detectors.registry import make_detector

__all__ = ["FileResult", "parse_timestamp", "run_nab", "run_file"]


@dataclass(frozen=True, slots=True)
class FileResult:
    """What happened on one data file."""

    name: str  # "<category>/<file>.csv"
    rows: int
    detections: int  # rows with is_anomaly at the detector's own threshold
    seconds: float


def parse_timestamp(text: str) -> float:
    """Epoch seconds of a NAB timestamp; naive times are UTC.

    Examples
    --------
    >>> parse_timestamp("2014-07-01 00:30:00")
    1404174600.0
    """
    dt = datetime.fromisoformat(text.strip())
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def run_file(src: Path, dst: Path, kind: str, sensitivity: str, params: dict[str, Any]) -> FileResult:
    """Stream one data file through a fresh detector and write its results CSV."""
    det = make_detector(kind, sensitivity, **params)
    rows = detections = 0
    start = time.perf_counter()
    dst.parent.mkdir(parents=True, exist_ok=True)
    with src.open(newline="") as fin, dst.open("w", newline="") as fout:
        reader = csv.DictReader(fin)
        if reader.fieldnames is None or not {"timestamp", "value"} <= set(reader.fieldnames):
            raise DetectorError(f"{src}: expected columns timestamp,value, got {reader.fieldnames}")
        out = csv.writer(fout)
        out.writerow(["timestamp", "value", "anomaly_score"])
        for row in reader:
            try:
                verdict = det.update(parse_timestamp(row["timestamp"]), float(row["value"]))
            except ValueError as exc:  # DetectorError is a ValueError too
                raise DetectorError(f"{src}, data row {rows + 1}: {exc}") from exc
            out.writerow([row["timestamp"], row["value"], repr(verdict.score)])
            rows += 1
            detections += verdict.is_anomaly
    return FileResult(f"{src.parent.name}/{src.name}", rows, detections, time.perf_counter() - start)


def run_nab(kind: str, data_dir: str | Path, results_dir: str | Path, sensitivity: str = "medium",
            progress: Callable[[FileResult], None] | None = None, **params: Any) -> list[FileResult]:
    """Run ``kind`` over every ``<category>/<file>.csv`` under ``data_dir``.

    Parameters
    ----------
    kind, sensitivity, **params
        Passed to :func:`detectors.registry.make_detector`, identically for every file.
    data_dir : path
        NAB ``data`` folder (one sub-folder per category).
    results_dir : path
        Where the results CSVs go, mirroring ``data_dir``.
    progress : callable, optional
        Called with each file's :class:`FileResult` as soon as it is done.

    Returns
    -------
    list of FileResult
        One per data file, in sorted path order.
    """
    data, results = Path(data_dir), Path(results_dir)
    files = sorted(data.glob("*/*.csv"))
    if not files:
        raise DetectorError(f"no <category>/<file>.csv files under {data}")
    done = []
    for src in files:
        res = run_file(src, results / src.parent.name / src.name, kind, sensitivity, params)
        if progress is not None:
            progress(res)
        done.append(res)
    return done
