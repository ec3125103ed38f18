"""The NAB runner writes what NAB's scorer reads, following NAB's rules."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from detectors.base import DetectorError
from detectors.nab import FileResult, parse_timestamp, run_nab


def write_series(path: Path, n: int, spike_at: int | None = None, repeat_ts: bool = False) -> list[str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    stamps = []
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["timestamp", "value"])
        for i in range(n):
            minute = i - 1 if repeat_ts and i == n // 2 else i  # NAB files do repeat timestamps
            stamp = f"2014-04-01 {minute // 60:02d}:{minute % 60:02d}:00"
            value = 10.0 + math.sin(i / 5.0) + (50.0 if i == spike_at else 0.0)
            out.writerow([stamp, value])
            stamps.append(stamp)
    return stamps


@pytest.fixture
def nab_folder(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    write_series(data / "artificial" / "flat.csv", 200, repeat_ts=True)
    stamps = write_series(data / "real" / "spiky.csv", 300, spike_at=250)
    labels = {"artificial/flat.csv": [], "real/spiky.csv": [[stamps[240] + ".000000", stamps[260] + ".000000"]]}
    (tmp_path / "labels.json").write_text(json.dumps(labels))
    return tmp_path


def test_results_mirror_the_data_row_by_row(nab_folder: Path) -> None:
    out = nab_folder / "results"
    seen: list[FileResult] = []
    done = run_nab("seasonal", nab_folder / "data", out, progress=seen.append, seasonality="none")
    assert [r.name for r in done] == ["artificial/flat.csv", "real/spiky.csv"] == [r.name for r in seen]
    for name, rows in (("artificial/flat.csv", 200), ("real/spiky.csv", 300)):
        with (nab_folder / "data" / name).open() as fh:
            data = list(csv.DictReader(fh))
        with (out / name).open() as fh:
            reader = csv.DictReader(fh)
            assert reader.fieldnames == ["timestamp", "value", "anomaly_score"]
            results = list(reader)
        assert len(results) == len(data) == rows
        assert [r["timestamp"] for r in results] == [d["timestamp"] for d in data]
        assert all(0.0 <= float(r["anomaly_score"]) <= 1.0 for r in results)
    spiky = done[1]
    assert spiky.rows == 300 and spiky.detections >= 1


@pytest.mark.parametrize("kind", ["gaussian", "predictive"])
def test_other_kinds_run_too(nab_folder: Path, kind: str) -> None:
    done = run_nab(kind, nab_folder / "data", nab_folder / kind)
    assert [r.rows for r in done] == [200, 300]


def test_bad_files_are_reported_with_their_row(nab_folder: Path) -> None:
    bad = nab_folder / "data" / "real" / "broken.csv"
    bad.write_text("timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01 00:01:00,oops\n")
    with pytest.raises(DetectorError, match=r"broken.csv, data row 2"):
        run_nab("seasonal", nab_folder / "data", nab_folder / "out")


def test_empty_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DetectorError, match="no <category>/<file>.csv"):
        run_nab("seasonal", tmp_path, tmp_path / "out")


def test_timestamps_are_utc() -> None:
    assert parse_timestamp("1970-01-01 00:01:00") == 60.0
    assert parse_timestamp("1970-01-01T01:00:00+01:00") == 0.0
