"""Numbers, times and durations as a person reads them, by the KPI's kind and the catalog's time zone.

A value's *kind* decides its shape: ``count`` integers with thousands separators, ``money`` separators and the
currency (symbol for the common ones, else the code), ``ratio`` a percentage, anything else 3 significant
digits (thousands and more as separated integers). Times are shown in an IANA zone with its UTC offset, since
abbreviations are ambiguous (``CST`` is China, Cuba and the US Midwest).

Examples
--------
>>> number(1234567.4, "count", "orders", "en")
'1,234,567 orders'
>>> number(12.0, "count", "orders", "zh")
'12 单'
>>> number(1234567.0, "money", "CNY", "en")
'¥1,234,567'
>>> number(123.456, "money", "USD", "en")
'$123.46'
>>> number(0.0307692, "ratio", "ratio", "en")
'3.08%'
>>> number(39.4506, "value", "ms", "en")
'39.5 ms'
>>> local_time(1_764_324_120.0, "Asia/Shanghai")
'2025-11-28 18:02 UTC+8'
>>> duration(1200, "en"), duration(5400, "zh"), duration(30, "en")
('20 min', '1 小时 30 分钟', '30 s')
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["CURRENCIES", "check_timezone", "clip", "duration", "local_time", "number", "signed", "unit_name"]

#: Units that are money; the symbol shown before the amount (``None``: the code after it).
CURRENCIES: dict[str, str | None] = {
    "CNY": "¥", "RMB": "¥", "USD": "$", "EUR": "€", "GBP": "£", "JPY": "JP¥", "HKD": "HK$",
    "TWD": "NT$", "KRW": "₩", "SGD": "S$", "AUD": "A$", "CAD": "C$", "INR": "₹", "CHF": None,
}  # fmt: skip

# Count units are English nouns in most catalogs; a Chinese message shows the measure word instead.
_ZH_UNITS = {
    "orders": "单", "order": "单", "visits": "次", "visit": "次", "sessions": "次", "users": "人",
    "visitors": "人", "refunds": "笔", "payments": "笔", "tickets": "个", "events": "个", "items": "件",
    "requests": "次", "errors": "次", "messages": "条", "seconds": "秒", "s": "秒", "ms": "毫秒",
    "minutes": "分钟", "hours": "小时", "times": "次",
}  # fmt: skip


def unit_name(unit: str, language: str) -> str:
    """The unit as shown in ``language`` (Chinese measure words for common English count units)."""
    return _ZH_UNITS.get(unit.lower(), unit) if language == "zh" else unit


def _sig3(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    text = f"{value:.3g}"
    if "e" in text:  # tiny values: plain decimals read better than 1e-05
        text = f"{value:.6f}".rstrip("0").rstrip(".")
    return text


def _bare(value: float, kind: str) -> str:
    if kind == "count":
        return f"{round(value):,}"
    if kind == "ratio":
        return _sig3(value * 100.0) + "%"
    if kind == "money":
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.2f}"
    return _sig3(value)


def number(value: float | None, kind: str, unit: str, language: str, *, none: str = "–") -> str:
    """``value`` formatted by ``kind`` with its unit (``none`` for a missing or non-finite value)."""
    if value is None or not math.isfinite(value):
        return none
    if kind == "ratio":
        return _bare(value, kind)
    if kind == "money":
        symbol = CURRENCIES.get(unit.upper())
        sign, body = ("-", _bare(-value, kind)) if value < 0 else ("", _bare(value, kind))
        return f"{sign}{symbol}{body}" if symbol else f"{sign}{body} {unit}".strip()
    return f"{_bare(value, kind)} {unit_name(unit, language)}".strip()


def signed(value: float, kind: str, unit: str, language: str) -> str:
    """Like :func:`number` with an explicit sign (``+12`` / ``−12``, a true minus sign)."""
    text = number(abs(value), kind, unit, language)
    return ("+" if value > 0 else "−" if value < 0 else "") + text


def clip(value: float | None, lo: float | None, hi: float | None) -> float | None:
    """``value`` limited to ``[lo, hi]`` (either may be ``None``): a band never leaves the possible range.

    >>> clip(-12.42, 0.0, None), clip(1.3, 0.0, 1.0), clip(None, 0.0, 1.0)
    (0.0, 1.0, None)
    """
    if value is None:
        return None
    if lo is not None and value < lo:
        return lo
    if hi is not None and value > hi:
        return hi
    return value


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def check_timezone(name: str) -> str:
    """``name`` if it is an IANA time zone, else a ``ValueError`` saying how to write one.

    >>> check_timezone("Asia/Shanghai")
    'Asia/Shanghai'
    >>> check_timezone("Beijing")
    Traceback (most recent call last):
    ...
    ValueError: unknown time zone 'Beijing': use an IANA name such as Asia/Shanghai, Europe/Berlin or UTC
    """
    try:
        _zone(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r}: use an IANA name such as Asia/Shanghai, Europe/Berlin or UTC"
        ) from None
    return name


def _offset(delta: timedelta | None) -> str:
    minutes = int((delta or timedelta()).total_seconds() // 60)
    if minutes == 0:
        return "UTC"
    sign, minutes = ("+" if minutes > 0 else "-"), abs(minutes)
    return f"UTC{sign}{minutes // 60}" + (f":{minutes % 60:02d}" if minutes % 60 else "")


def local_time(epoch: float, tz: str, *, date: bool = True) -> str:
    """``epoch`` in zone ``tz`` as ``YYYY-MM-DD HH:MM UTC+8`` (seconds only when not zero)."""
    moment = datetime.fromtimestamp(epoch, tz=_zone(tz))
    clock = "%H:%M:%S" if moment.second else "%H:%M"
    shown = moment.strftime(f"%Y-%m-%d {clock}" if date else clock)
    return f"{shown} {_offset(moment.utcoffset())}"


def duration(seconds: float, language: str) -> str:
    """A rounded duration: ``30 s``, ``20 min``, ``1 h 30 min``, ``2 d 3 h`` (zh: 秒/分钟/小时/天)."""
    words = ("秒", "分钟", "小时", "天") if language == "zh" else ("s", "min", "h", "d")
    total = max(0, round(seconds))
    if total < 60:
        return f"{total} {words[0]}"
    minutes = round(total / 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = [(days, words[3]), (hours, words[2]), (mins, words[1])]
    shown = [f"{n} {w}" for n, w in parts if n][:2]
    return " ".join(shown)
