"""Bytes from Kafka to event dicts, or dead letters with a reason. Pure: no Kafka here.

One message may hold one JSON object, a JSON array of objects, or newline-delimited
JSON objects (what collectors send in batches). A bad line in a batch dead-letters that
line only; the rest of the batch is kept.

Dead-letter reasons (the ``reason`` label of ``kpimon_dead_letters_total``):

============== ==========================================================
too_large      message over ``max_message_bytes``
malformed_json not JSON (or NaN/Infinity literals, which JSON does not allow)
not_an_object  an array item or line that is not a JSON object
missing_time   the source's event-time field is absent
bad_time       event time is not epoch s/ms or ISO-8601, is not finite, negative or past the year 9999,
               or is before the source's floor (``since:``, default 30 days before the partition's first start)
future_time    event time is more than the source's ``max_future`` (default 5m) ahead of the wall clock
missing_field  a field a matching KPI measures is absent
wrong_type     a measured field is not a number (bool, string...), or a dimension is not a scalar
too_long       a dimension value is longer than 256 characters (it would be a series key and a label)
not_finite     a measured number is NaN or ±Inf
overflow       adding the event would make a window's sum or average non-finite (the event is taken whole or not at all)
too_late       the event's window was closed more than ``grace`` ago
unknown_kpi    a sample for a KPI name the catalog does not know (sources with ``unmatched: dead_letter``)
internal_error handling the event raised an unexpected exception (a bug; logged with its traceback once per type)
============== ==========================================================
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

__all__ = ["MAX_TS_MS", "DeadLetter", "EventError", "Origin", "decode_message", "event_time_ms"]

MAX_ORIGINAL_BYTES = 64 * 1024
MAX_TS_MS = 253_402_300_799_999          # 9999-12-31T23:59:59.999Z, the last instant ISO-8601 can write


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that could not be used, with why; ``original`` is the raw bytes (possibly one line)."""

    reason: str
    detail: str
    original: bytes

    def to_record(self, *, topic: str, partition: int, offset: int, received_ms: int) -> bytes:
        """The JSON written to the dead-letter topic (original bytes kept, truncated past 64 KiB)."""
        original = self.original[:MAX_ORIGINAL_BYTES]
        try:
            text: str | None = original.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        return orjson.dumps({
            "reason": self.reason,
            "detail": self.detail,
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "received_ms": received_ms,
            "size": len(self.original),
            "truncated": len(self.original) > MAX_ORIGINAL_BYTES,
            "original": text,
            "original_b64": None if text is not None else base64.b64encode(original).decode("ascii"),
        })


@dataclass(frozen=True, slots=True)
class Origin:
    """Where an event came from in its message: the bytes a dead letter keeps (the whole message, or one
    NDJSON line) and, for an item of a JSON array, the item's index (the dead letter's ``detail`` names it).
    Dead letters never re-serialise the parsed event: a value nested deeper than orjson writes is still kept."""

    raw: bytes
    item: int | None = None

    def dead(self, reason: str, detail: str) -> DeadLetter:
        return DeadLetter(reason, detail if self.item is None else f"array item {self.item}: {detail}", self.raw)


class EventError(ValueError):
    """An event is unusable; ``reason`` is one of the dead-letter reasons."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


Decoded = tuple[list[dict[str, Any]], list[DeadLetter], list[Origin]]


def decode_message(raw: bytes | None, max_bytes: int) -> Decoded:
    """Split one Kafka message into event dicts, dead letters, and each event's :class:`Origin`."""
    if raw is None:
        return [], [DeadLetter("malformed_json", "empty message (null value)", b"")], []
    if len(raw) > max_bytes:
        return [], [DeadLetter("too_large", f"message of {len(raw)} bytes exceeds {max_bytes}", raw)], []
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if b"\n" in raw.strip():
            return _decode_lines(raw)
        return [], [DeadLetter("malformed_json", f"invalid JSON: {exc}", raw)], []
    if isinstance(doc, dict):
        return [doc], [], [Origin(raw)]
    if isinstance(doc, list):
        events, dead, origins = [], [], []
        for i, item in enumerate(doc):
            if isinstance(item, dict):
                events.append(item)
                origins.append(Origin(raw, i))
            else:
                dead.append(DeadLetter("not_an_object", f"array item {i} is {type(item).__name__}", raw))
        return events, dead, origins
    return [], [DeadLetter("not_an_object", f"message is a JSON {type(doc).__name__}, not an object", raw)], []


def _decode_lines(raw: bytes) -> Decoded:
    events, dead, origins = [], [], []
    for n, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            dead.append(DeadLetter("malformed_json", f"line {n}: invalid JSON: {exc}", line))
            continue
        if isinstance(doc, dict):
            events.append(doc)
            origins.append(Origin(line))
        else:
            dead.append(DeadLetter("not_an_object", f"line {n} is a JSON {type(doc).__name__}", line))
    return events, dead, origins


def event_time_ms(value: Any) -> int:
    """Event time in epoch milliseconds from epoch seconds, epoch milliseconds or ISO-8601.

    Numbers above 1e11 are milliseconds (1e11 s is the year 5138). Anything that is not an
    instant between 1970 and the end of the year 9999 (``MAX_TS_MS``) is ``bad_time``, never
    another exception: whatever the input, the result fits a 64-bit integer.

    >>> event_time_ms(1700000000)
    1700000000000
    >>> event_time_ms("2023-11-14T22:13:20Z")
    1700000000000
    >>> event_time_ms(1e30)
    Traceback (most recent call last):
    ...
    streams.events.EventError: event time 1e+30 is after the year 9999
    """
    if isinstance(value, bool) or value is None:
        raise EventError("bad_time", f"event time {value!r} is not a timestamp")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise EventError("bad_time", f"event time {value!r} is not finite or negative")
        if value > MAX_TS_MS:
            raise EventError("bad_time", f"event time {value!r} is after the year 9999")
        return int(value) if value > 1e11 else int(round(value * 1000))
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            ms = int(round(parsed.timestamp() * 1000))
        except (ValueError, OverflowError, OSError):
            raise EventError("bad_time", f"event time {value[:40]!r} is not an ISO-8601 instant") from None
        if not 0 <= ms <= MAX_TS_MS:
            raise EventError("bad_time", f"event time {value[:40]!r} is before 1970 or after the year 9999")
        return ms
    raise EventError("bad_time", f"event time of type {type(value).__name__} is not a timestamp")
