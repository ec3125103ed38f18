"""Silences: label matchers plus a time range, and the :class:`Muter` protocol silences and acks share.

Matchers use Alertmanager's syntax: ``name=value``, ``name!=value``, ``name=~regex``, ``name!~regex``
(regexes are fully anchored; values may be double-quoted).

Examples
--------
>>> m = parse_matcher('kpi=~"paid_.*"')
>>> m.matches({"kpi": "paid_orders"}), m.matches({"kpi": "visits"})
(True, False)
>>> s = Silence.create(["team=ops", "severity!=critical"], starts_at=0, ends_at=60, created_by="ann", comment="deploy")
>>> s.mutes({"team": "ops", "severity": "warning"}, now=30), s.mutes({"team": "ops"}, now=90)
(True, False)
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

__all__ = ["Matcher", "MatcherError", "Muter", "Silence", "SilenceMuter", "parse_matcher"]

Op = Literal["=", "!=", "=~", "!~"]
_MATCHER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$")


class MatcherError(ValueError):
    """A matcher or silence is malformed."""


class Muter(Protocol):
    """Anything that can mute an alert by its labels at a time (silences, acknowledgements)."""

    def mutes(self, labels: Mapping[str, str], now: float) -> bool:
        """Whether an alert with ``labels`` is muted at ``now``."""
        ...


@dataclass(frozen=True, slots=True)
class Matcher:
    """One label matcher; a missing label matches as the empty string (as in Alertmanager)."""

    name: str
    op: Op
    value: str

    def __post_init__(self) -> None:
        if self.op in ("=~", "!~"):
            try:
                re.compile(self.value)
            except re.error as exc:
                raise MatcherError(f"bad regex {self.value!r} for {self.name}: {exc}") from None

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy this matcher."""
        got = labels.get(self.name, "")
        if self.op == "=":
            return got == self.value
        if self.op == "!=":
            return got != self.value
        hit = re.fullmatch(self.value, got) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        return f'{self.name}{self.op}"{self.value}"'


def parse_matcher(text: str) -> Matcher:
    """Parse ``name=value`` / ``!=`` / ``=~`` / ``!~``; raise :class:`MatcherError` with the reason."""
    match = _MATCHER.match(text) if isinstance(text, str) else None
    if not match:
        raise MatcherError(f"bad matcher {text!r}: use name=value, name!=value, name=~regex or name!~regex")
    name, op, value = match.group(1), match.group(2), match.group(3)
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    elif value[:1] in ("=", "~"):  # `team==shop` is a typo far more often than a value "=shop"
        raise MatcherError(f"bad matcher {text!r}: quote a value that starts with {value[0]!r}")
    return Matcher(name, op, value)  # type: ignore[arg-type]  # the regex only yields the four ops


@dataclass(frozen=True, slots=True)
class Silence:
    """Mutes matching alerts between ``starts_at`` and ``ends_at`` (epoch seconds)."""

    id: str
    matchers: tuple[Matcher, ...]
    starts_at: float
    ends_at: float
    created_by: str
    comment: str
    created_at: float = 0.0

    @classmethod
    def create(
        cls,
        matchers: Sequence[str | Matcher],
        *,
        starts_at: float,
        ends_at: float,
        created_by: str,
        comment: str = "",
        created_at: float | None = None,
        id: str | None = None,
    ) -> Silence:
        """Validate and build a silence; raise :class:`MatcherError` on any problem."""
        parsed = tuple(m if isinstance(m, Matcher) else parse_matcher(m) for m in matchers)
        if not parsed:
            raise MatcherError("a silence needs at least one matcher")
        if all(m.matches({}) for m in parsed):
            raise MatcherError("the matchers match every alert (even one without labels); be more specific")
        if not ends_at > starts_at:
            raise MatcherError(f"ends_at ({ends_at}) must be after starts_at ({starts_at})")
        if not created_by.strip():
            raise MatcherError("a silence needs an author (created_by)")
        return cls(
            id or uuid.uuid4().hex,
            parsed,
            float(starts_at),
            float(ends_at),
            created_by,
            comment,
            float(starts_at if created_at is None else created_at),
        )

    def active(self, now: float) -> bool:
        """Whether the time range covers ``now``."""
        return self.starts_at <= now < self.ends_at

    def mutes(self, labels: Mapping[str, str], now: float) -> bool:
        """Whether this silence mutes ``labels`` at ``now``."""
        return self.active(now) and all(m.matches(labels) for m in self.matchers)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict."""
        return {
            "id": self.id,
            "matchers": [str(m) for m in self.matchers],
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
            "created_by": self.created_by,
            "comment": self.comment,
            "created_at": self.created_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Silence:
        """Inverse of :meth:`to_dict` (validates like :meth:`create`)."""
        try:
            return cls.create(
                list(data["matchers"]),
                starts_at=float(data["starts_at"]),
                ends_at=float(data["ends_at"]),
                created_by=str(data["created_by"]),
                comment=str(data.get("comment", "")),
                created_at=float(data.get("created_at", data["starts_at"])),
                id=data.get("id"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, MatcherError):
                raise
            raise MatcherError(
                f"bad silence: {exc!r}; need matchers, starts_at, ends_at, created_by"
            ) from None


class SilenceMuter:
    """A :class:`Muter` over a set of silences."""

    def __init__(self, silences: Iterable[Silence]) -> None:
        self.silences = tuple(silences)

    def mutes(self, labels: Mapping[str, str], now: float) -> bool:
        """Whether any silence mutes ``labels`` at ``now``."""
        return any(s.mutes(labels, now) for s in self.silences)
