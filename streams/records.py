"""The records that cross a stage boundary, each with its one converter. Pure.

- :class:`Partial`: stage 1 → stage 2 on ``kpi.partials`` (:meth:`Partial.to_record` / :meth:`Partial.from_record`);
- :class:`KpiValue`: stage 2 → ``kpi.values``, the exporter, detectors, alert samples and ``kpi.anomalies``
  (:meth:`KpiValue.to_record`; seconds for the outside world come from :attr:`KpiValue.window_start_s` and
  :attr:`KpiValue.window_end_s` only);
- a series key (``""`` for the total, ``"region=east"`` for a dimension series) and its labels:
  :func:`series_key`, :func:`split_series`, :func:`labels_of`.

The changelog documents are converted by their owners (:mod:`streams.engine`, :mod:`streams.merge`) under the keys
of :mod:`streams.changelog`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["BadPartial", "KpiValue", "Partial", "labels_of", "series_key", "split_series"]

SERIES_SEP = "="


def series_key(dim: str, value: str) -> str:
    """The key of one dimension value's series.

    >>> series_key("region", "east"), split_series("region=east"), labels_of("region=east"), labels_of("")
    ('region=east', ('region', 'east'), {'region': 'east'}, {})
    """
    return f"{dim}{SERIES_SEP}{value}"


def split_series(skey: str) -> tuple[str, str]:
    """``(dimension, value)`` of a dimension series key (``("", "")`` for the total)."""
    dim, _, value = skey.partition(SERIES_SEP)
    return dim, value


def labels_of(series: str) -> dict[str, str]:
    """The Prometheus / alert labels of a series key."""
    if not series:
        return {}
    dim, value = split_series(series)
    return {dim: value}


@dataclass(frozen=True, slots=True)
class KpiValue:
    """The value of one series of one KPI for one window (what `kpi.values` carries)."""

    kpi: str
    series: str                  # "" total, "region=east" for a dimension series
    window_start_ms: int
    window_end_ms: int
    value: float | None          # None: no data (avg/min/max/percentile/last of an empty window, ratio over 0)
    revision: int

    @property
    def labels(self) -> dict[str, str]:
        return labels_of(self.series)

    @property
    def window_start_s(self) -> float:
        return self.window_start_ms / 1000

    @property
    def window_end_s(self) -> float:
        return self.window_end_ms / 1000

    @property
    def key(self) -> bytes:
        """The record key on ``kpi.values`` and ``kpi.anomalies`` (one series, one partition: kept in order)."""
        return f"{self.kpi}|{self.series}".encode()

    def to_record(self) -> dict[str, Any]:
        """The `kpi.values` record (times in seconds).

        >>> KpiValue("orders", "region=east", 60_000, 120_000, 3.0, 0).to_record()
        {'kpi': 'orders', 'labels': {'region': 'east'}, 'window_start': 60.0, 'window_end': 120.0, 'value': 3.0, 'revision': 0}
        """
        return {"kpi": self.kpi, "labels": self.labels, "window_start": self.window_start_s,
                "window_end": self.window_end_s, "value": self.value, "revision": self.revision}


class BadPartial(ValueError):
    """A partial stage 2 cannot use; logged and counted by the worker, never fatal."""


_WIRE = {"kpi", "sk", "ws", "we", "src", "p", "series"}


@dataclass(frozen=True, slots=True)
class Partial:
    """One partition's mergeable state of one KPI window (stage 1 → stage 2).

    ``version`` is the highest source offset the state holds (only grows: a replayed, older partial is ignored);
    ``folded`` marks the dimensions this partition folded at its memory bound in the window (dimension ->
    ``[lo, hi]``, see :mod:`streams.engine`), which closes them at stage 2.

    >>> p = Partial("orders", "sk1", 0, 60_000, "orders", 2, 0, 41, {"": [3]})
    >>> Partial.from_record(p.to_record()) == p, p.part
    (True, 'orders:2')
    >>> Partial.from_record({"kpi": "orders"})
    Traceback (most recent call last):
    ...
    streams.records.BadPartial: partial without ['p', 'series', 'sk', 'src', 'we', 'ws']
    """

    kpi: str
    state_key: str
    window_start_ms: int
    window_end_ms: int
    source: str
    partition: int
    revision: int
    version: int
    series: dict[str, Any]
    folded: dict[str, list[int]] = field(default_factory=dict)

    @property
    def part(self) -> str:
        """The source partition it comes from, ``<source>:<partition>``."""
        return f"{self.source}:{self.partition}"

    def to_record(self) -> dict[str, Any]:
        """The JSON object on ``kpi.partials``."""
        record = {"kpi": self.kpi, "sk": self.state_key, "ws": self.window_start_ms, "we": self.window_end_ms,
                  "src": self.source, "p": self.partition, "rev": self.revision, "o": self.version,
                  "series": self.series}
        if self.folded:
            record["folded"] = self.folded
        return record

    @classmethod
    def from_record(cls, record: Any) -> Partial:
        """A partial from its decoded JSON; raises :class:`BadPartial` for anything not shaped like one (whether
        its series states fit the KPI's aggregation is stage 2's check, it knows the KPI)."""
        if not isinstance(record, dict):
            raise BadPartial(f"a partial is a JSON object, not {type(record).__name__}")
        missing = _WIRE - record.keys()
        if missing:
            raise BadPartial(f"partial without {sorted(missing)}")
        kpi, sk, ws, we, series = record["kpi"], record["sk"], record["ws"], record["we"], record["series"]
        if not (isinstance(kpi, str) and isinstance(sk, str) and isinstance(record["src"], str)
                and type(record["p"]) is int):
            raise BadPartial(f"partial of {str(kpi)[:80]!r}: kpi, sk and src must be strings, p an integer")
        if not (type(ws) is int and type(we) is int and ws < we):
            raise BadPartial(f"{kpi}: window [{ws!r}, {we!r}) is not two integers, start before end")
        if not isinstance(series, dict):
            raise BadPartial(f"{kpi}: series is {type(series).__name__}, not an object")
        version, revision = record.get("o", -1), record.get("rev", 0)
        if type(version) is not int:
            raise BadPartial(f"{kpi}: version {version!r} is not an integer")
        return cls(kpi, sk, ws, we, record["src"], record["p"], revision if type(revision) is int else 0, version,
                   series, _folded(kpi, record.get("folded")))


def _folded(kpi: str, folded: Any) -> dict[str, list[int]]:
    if not folded:
        return {}
    try:
        return {str(d): [int(lo), int(hi)] for d, (lo, hi) in folded.items()}
    except (AttributeError, TypeError, ValueError) as exc:
        raise BadPartial(f"{kpi}: folded {str(folded)[:80]} is not dimension -> [lo, hi]") from exc
