"""The changelog key schemes of the two state tables, in one place. Pure.

Every record of a state table is keyed ``<partition>|<key>``: the partition of the changelog (and of the
source or ``kpi.partials`` partition the state belongs to), so state moves with its partition. The
``<key>`` part is what the state's owner reads and writes (:func:`table_key`, :func:`partition_records`).

Stage 1 (one table per source, :class:`streams.engine.PartitionEngine`):

- ``<kpi>|<state_key>|<window_start>``: one window's partial state (:func:`stage1_window_key`);
- ``~clock``: the partition's watermark, offsets and undecided series (:data:`CLOCK_KEY`).

Stage 2 (one table, ``stage2``):

- ``<kpi>|<window_start>``: one window's merge entry (:func:`window_key`);
- ``<kpi>|~series|<dim>``: the series-cap admission state of one KPI dimension (:func:`admission_key`);
- ``~mrg``: the merger's own record (:data:`MERGER_KEY`);
- ``<namespace>|<key>``: checkpoints of the per-partition state that rides along with the merger
  (:class:`PartitionState`): ``~det|<kpi>|<series>`` detectors, ``~att|<kpi>`` attainment. A detector record is
  ``{"spec": {"kind", "sensitivity", "params"}, "state": ...}`` (:func:`streams.observers.checkpoint`): the spec
  rides in the record, not the key, so a series keeps one record whatever its spec (a new spec overwrites the old
  record instead of leaving it behind in the compacted changelog) and a restore tells a changed spec from the
  state it has; records of the release before are the bare state.

>>> table_key(3, window_key("orders", 60000))
b'3|orders|60000'
>>> split_stage2({"orders|0": b"{}", "~mrg": b"{}", "~det|orders|": b"d", "~att|orders": b"a"}, ["~det", "~att"])
({'orders|0': b'{}', '~mrg': b'{}'}, {'~det': {'orders|': b'd'}, '~att': {'orders': b'a'}})
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

__all__ = ["ATTAINMENT", "CLOCK_KEY", "DETECTORS", "MERGER_KEY", "PartitionState", "admission_key", "namespaced",
           "parse_admission_key", "parse_stage1_window_key", "parse_window_key", "partition_records",
           "split_stage2", "stage1_window_key", "table_key", "window_key"]

SEP = "|"
CLOCK_KEY = "~clock"                 # stage 1: the partition's clock record
MERGER_KEY = "~mrg"                  # stage 2: the merger's own record
_ADMISSION = f"{SEP}~series{SEP}"
DETECTORS = "~det"                   # stage 2 namespace: detector checkpoints (streams.observers)
ATTAINMENT = "~att"                  # stage 2 namespace: attainment checkpoints (streams.attainment)


class PartitionState(Protocol):
    """State that lives with one ``kpi.partials`` partition, checkpointed in that partition's stage-2 changelog
    under its own ``namespace`` (keys given and taken without the namespace).

    The detector bank (:class:`streams.observers.Observers`) and attainment (:class:`streams.attainment.Attainment`)
    follow it; the stage-2 agent restores them when the partition is assigned, writes their checkpoints with the
    merger's state and drops them when the partition moves to another worker."""

    namespace: str

    def restore(self, partition: int, records: Mapping[str, bytes]) -> None:
        """Take in this partition's checkpoints (a record it cannot read starts that part cold, never raises)."""

    def take_checkpoints(self, partition: int) -> list[tuple[str, bytes]]:
        """The partition's states changed since the last call, as (key, document)."""

    def drop(self, partition: int) -> None:
        """The partition moved to another worker: forget its state (the new owner restores it)."""


def table_key(partition: int, key: str) -> bytes:
    """The record key of ``key`` in a state table's ``partition``."""
    return f"{partition}{SEP}{key}".encode()


def partition_records(data: Iterable[tuple[bytes | str, bytes | None]], partition: int) -> dict[str, bytes]:
    """This partition's records of a table store, keyed without the partition (deleted records left out).

    >>> partition_records([(b"1|~clock", b"c"), (b"10|~clock", b"x"), (b"1|gone", None)], 1)
    {'~clock': b'c'}
    """
    prefix = f"{partition}{SEP}"
    out = {}
    for key, value in data:
        skey = key.decode() if isinstance(key, bytes) else str(key)
        if skey.startswith(prefix) and value is not None:
            out[skey[len(prefix):]] = value
    return out


# ---- stage 1 -------------------------------------------------------------------------------------
def stage1_window_key(kpi: str, state_key: str, start: int) -> str:
    return f"{kpi}{SEP}{state_key}{SEP}{start}"


def parse_stage1_window_key(key: str) -> tuple[str, str, int] | None:
    """``(kpi, state_key, window_start)`` of a stage-1 window record, None for any other key.

    >>> parse_stage1_window_key("orders|ab12|60000"), parse_stage1_window_key(CLOCK_KEY)
    (('orders', 'ab12', 60000), None)
    """
    parts = key.split(SEP)
    if len(parts) != 3 or not parts[2].lstrip("-").isdigit():
        return None
    return parts[0], parts[1], int(parts[2])


# ---- stage 2 -------------------------------------------------------------------------------------
def window_key(kpi: str, start: int) -> str:
    return f"{kpi}{SEP}{start}"


def parse_window_key(key: str) -> tuple[str, int] | None:
    """``(kpi, window_start)`` of a stage-2 merge entry, None for any other key.

    >>> parse_window_key("orders|60000"), parse_window_key("orders|~series|region"), parse_window_key(MERGER_KEY)
    (('orders', 60000), None, None)
    """
    kpi, _, ws = key.rpartition(SEP)
    if not kpi or not ws.lstrip("-").isdigit():
        return None
    return kpi, int(ws)


def admission_key(kpi: str, dim: str) -> str:
    return f"{kpi}{_ADMISSION}{dim}"


def parse_admission_key(key: str) -> tuple[str, str] | None:
    """``(kpi, dimension)`` of a stage-2 admission record, None for any other key."""
    kpi, tag, dim = key.partition(_ADMISSION)
    return (kpi, dim) if tag else None


def split_stage2(records: Mapping[str, bytes], namespaces: Iterable[str]) -> tuple[dict[str, bytes],
                                                                                   dict[str, dict[str, bytes]]]:
    """A partition's stage-2 records: the merger's (entries, admissions, its own record), and per namespace the
    checkpoints of each :class:`PartitionState` (keys without the namespace). Other ``~`` keys are left out."""
    known = {f"{ns}{SEP}": ns for ns in namespaces}
    merger: dict[str, bytes] = {}
    states: dict[str, dict[str, bytes]] = {ns: {} for ns in known.values()}
    for key, value in records.items():
        if not key.startswith("~") or key == MERGER_KEY:
            merger[key] = value
            continue
        ns, sep, rest = key.partition(SEP)
        if sep and f"{ns}{SEP}" in known:
            states[ns][rest] = value
    return merger, states


def namespaced(namespace: str, key: str) -> str:
    return f"{namespace}{SEP}{key}"
