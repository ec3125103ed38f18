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
bad_time       event time is not epoch s/ms or ISO-8601, or is not finite
missing_field  a field a matching KPI measures is absent
wrong_type     a measured field is not a number (bool, string...), or a dimension is not a scalar
not_finite     a measured number is NaN or ±Inf
too_late       the event's window was closed more than ``grace`` ago
unknown_kpi    a sample for a KPI name the catalog does not know (sources with ``unmatched: dead_letter``)
============== ==========================================================
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

__all__ = ["DeadLetter", "EventError", "decode_message", "event_time_ms"]

MAX_ORIGINAL_BYTES = 64 * 1024


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


class EventError(ValueError):
    """An event is unusable; ``reason`` is one of the dead-letter reasons."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def decode_message(raw: bytes | None, max_bytes: int) -> tuple[list[dict[str, Any]], list[DeadLetter]]:
    """Split one Kafka message into event dicts and dead letters."""
    if raw is None:
        return [], [DeadLetter("malformed_json", "empty message (null value)", b"")]
    if len(raw) > max_bytes:
        return [], [DeadLetter("too_large", f"message of {len(raw)} bytes exceeds {max_bytes}", raw)]
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if b"\n" in raw.strip():
            return _decode_lines(raw)
        return [], [DeadLetter("malformed_json", f"invalid JSON: {exc}", raw)]
    if isinstance(doc, dict):
        return [doc], []
    if isinstance(doc, list):
        events, dead = [], []
        for i, item in enumerate(doc):
            if isinstance(item, dict):
                events.append(item)
            else:
                dead.append(DeadLetter("not_an_object", f"array item {i} is {type(item).__name__}", orjson.dumps(item)))
        return events, dead
    return [], [DeadLetter("not_an_object", f"message is a JSON {type(doc).__name__}, not an object", raw)]


def _decode_lines(raw: bytes) -> tuple[list[dict[str, Any]], list[DeadLetter]]:
    events, dead = [], []
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
        else:
            dead.append(DeadLetter("not_an_object", f"line {n} is a JSON {type(doc).__name__}", line))
    return events, dead


def event_time_ms(value: Any) -> int:
    """Event time in epoch milliseconds from epoch seconds, epoch milliseconds or ISO-8601.

    Numbers above 1e11 are milliseconds (1e11 s is the year 5138).

    >>> event_time_ms(1700000000)
    1700000000000
    >>> event_time_ms("2023-11-14T22:13:20Z")
    1700000000000
    """
    if isinstance(value, bool) or value is None:
        raise EventError("bad_time", f"event time {value!r} is not a timestamp")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise EventError("bad_time", f"event time {value!r} is not finite or negative")
        return int(value) if value > 1e11 else int(round(value * 1000))
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise EventError("bad_time", f"event time {value[:40]!r} is not ISO-8601") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return int(round(parsed.timestamp() * 1000))
    raise EventError("bad_time", f"event time of type {type(value).__name__} is not a timestamp")
