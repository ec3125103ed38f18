"""Operator actions shared by the HTTP API and the CLI: threshold overrides, acks, silences.

Every action validates completely before it writes, writes its audit entry (who, when, old, new) with the
change, and raises :class:`AdminError` (``status`` 400, 404 or 409, a message for humans) otherwise.

Overrides are per rule: ``{"below": 80, "for": "5m"}``. Only :data:`~alerting.config.TUNABLE` fields may be
set; a ``null`` value resets the field to the catalog's value. Numbers must be JSON numbers and finite (no
``NaN``, ``Infinity``, ``"5"`` or ``true``: NaN would silently disable a rule), durations numbers of seconds or
``"5m"``, ``enabled`` a boolean. The merged rule is validated as a whole, so ``below`` above ``above`` is
refused, and nothing is stored.

``who`` is the operator (the CLI's ``--who``, the API's authenticated caller); ``on_behalf_of``, when given, is
what an API client claimed about itself, recorded beside it in the audit entry.

Exceptions::

    ValueError
     └── AdminError   .status: int (HTTP-like)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from alerting.acks import Ack
from alerting.config import TUNABLE, AlertingConfig, AlertRuleSpec, parse_duration, rule_adapter
from alerting.silences import MatcherError, Silence
from alerting.store import RuleKey, Store

__all__ = [
    "AdminError",
    "acknowledge",
    "add_silence",
    "apply_overrides",
    "backtest_summary",
    "check_types",
    "dump_rule",
    "list_thresholds",
    "proposed_overrides",
    "record_dry_run",
    "published_rules",
    "remove_silence",
    "set_threshold",
]


class AdminError(ValueError):
    """An operator request was refused; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def dump_rule(spec: AlertRuleSpec) -> dict[str, Any]:
    """A rule as JSON-safe dict with catalog field names (``for``, not ``for_``)."""
    return spec.model_dump(mode="json", by_alias=True)


def published_rules(config: AlertingConfig) -> dict[RuleKey, dict[str, Any]]:
    """Every rule of ``config`` keyed by (kpi, rule name), as the service publishes them to the store."""
    return {(kpi, r.name): dump_rule(r) for kpi, rules in config.rules.items() for r in rules}


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> AlertRuleSpec:
    return rule_adapter.validate_python({**base, **override})


def apply_overrides(
    config: AlertingConfig, overrides: Mapping[RuleKey, Mapping[str, Any]]
) -> tuple[AlertingConfig, int, list[str]]:
    """``config`` with ``overrides`` applied; returns (config, overrides applied, problems skipped)."""
    rules = {kpi: list(specs) for kpi, specs in config.rules.items()}
    applied, problems = 0, []
    for (kpi, name), fields in overrides.items():
        specs = rules.get(kpi, [])
        idx = next((i for i, r in enumerate(specs) if r.name == name), None)
        if idx is None:
            problems.append(f"override for unknown rule {kpi}/{name} ignored")
            continue
        try:
            specs[idx] = _merge(dump_rule(specs[idx]), fields)
        except ValidationError as exc:  # stored before a catalog change made it invalid
            problems.append(f"override for {kpi}/{name} ignored: {exc.errors()[0]['msg']}")
            continue
        applied += 1
    new_rules = {kpi: tuple(specs) for kpi, specs in rules.items()}
    return dataclasses.replace(config, rules=new_rules), applied, problems


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_input=False):
        loc = ".".join(str(p) for p in err["loc"][1:]) or "rule"  # drop the discriminator tag
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


_DURATIONS = frozenset({"for", "keep_firing_for", "missing_after"})
_BOOLEANS = frozenset({"enabled"})
_PAIRS = frozenset({"outside"})


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_types(fields: Mapping[str, Any]) -> None:
    """Refuse what pydantic's lax mode would coerce or take: ``"5"`` -> 5, ``true`` -> 1, NaN, infinity."""
    for name, value in sorted(fields.items()):
        if value is None:
            continue                                     # null: back to the catalog value
        if name in _BOOLEANS:
            if not isinstance(value, bool):
                raise AdminError(f"{name} must be true or false, got {value!r}")
        elif name in _PAIRS:
            if not (isinstance(value, list | tuple) and len(value) == 2 and all(map(_is_number, value))):
                raise AdminError(f"{name} must be a pair of finite numbers [low, high], got {value!r}")
        elif name in _DURATIONS:
            if not (_is_number(value) or isinstance(value, str)):
                raise AdminError(f"{name} must be a duration like \"5m\" or finite seconds, got {value!r}")
        elif not _is_number(value):
            raise AdminError(f"{name} must be a finite number, got {value!r}")


def _note(entry: dict[str, Any], on_behalf_of: str) -> dict[str, Any]:
    return {**entry, "on_behalf_of": on_behalf_of} if on_behalf_of else entry


async def _tunable_rule(store: Store, kpi: str, rule: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The published rule ``kpi``/``rule`` after checking that ``fields`` may be changed on it."""
    if not isinstance(fields, Mapping) or not fields:
        raise AdminError('give the fields to change as a JSON object, e.g. {"below": 80}')
    base = (await store.get_rules()).get((kpi, rule))
    if base is None:
        raise AdminError(f"no rule {rule!r} on KPI {kpi!r} (list them: kpimon threshold list, or GET /api/thresholds)", 404)
    allowed = TUNABLE[str(base["type"])]
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise AdminError(
            f"cannot change {unknown} of a {base['type']} rule at run time; tunable: {sorted(allowed)}"
        )
    check_types(fields)
    return base


async def set_threshold(
    store: Store,
    kpi: str,
    rule: str,
    fields: Mapping[str, Any],
    *,
    who: str,
    now: float,
    comment: str = "",
    on_behalf_of: str = "",
    backtest: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Validate and store an override of ``kpi``/``rule``; return the audit entries written. ``backtest``: the
    figures of a dry run of this change (:func:`backtest_summary`), recorded next to it."""
    if not who.strip():
        raise AdminError("who made the change? (--who / the API token's user)")
    base, old_override, new_override, merged = await _change(store, kpi, rule, fields)
    old_effective = {**base, **old_override}
    stored = {k: merged[k] for k in new_override}  # normalised: "5m" is stored as 300.0
    audit = [
        _note({
            "kind": "threshold",
            "kpi": kpi,
            "rule": rule,
            "field": name,
            "old": old_effective.get(name),
            "new": merged.get(name),
            "who": who,
            "at": now,
            "comment": comment,
        }, on_behalf_of)
        for name in sorted(fields)
        if old_effective.get(name) != merged.get(name)
    ]
    if backtest is not None:
        audit = [{**entry, "backtest": backtest_summary(backtest)} for entry in audit]
    await store.set_override((kpi, rule), stored, audit)
    return audit


async def _change(
    store: Store, kpi: str, rule: str, fields: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(published rule, its override now, the override with ``fields``, the rule with it), validated."""
    base = await _tunable_rule(store, kpi, rule, fields)
    old_override = (await store.get_overrides()).get((kpi, rule), {})
    new_override = {**old_override, **fields}
    for name in [k for k, v in fields.items() if v is None]:
        del new_override[name]  # null = back to the catalog value
    try:
        merged = dump_rule(_merge(base, new_override))
    except ValidationError as exc:
        raise AdminError(f"invalid value for {kpi}/{rule}: {_validation_message(exc)}") from None
    return base, old_override, new_override, merged


async def proposed_overrides(
    store: Store, kpi: str, rule: str, fields: Mapping[str, Any]
) -> tuple[dict[RuleKey, dict[str, Any]], dict[RuleKey, dict[str, Any]]]:
    """Every override in effect now, and the same with ``fields`` on ``kpi``/``rule`` (validated as
    :func:`set_threshold` validates it): what a dry run judges side by side. Nothing is stored."""
    _, _, new_override, merged = await _change(store, kpi, rule, fields)
    current = await store.get_overrides()
    stored = {k: merged[k] for k in new_override}
    return current, {**current, (kpi, rule): stored}


def backtest_summary(figures: Mapping[str, Any]) -> dict[str, Any]:
    """The figures of a dry run as the audit trail keeps them: the span, then alerts, alert-minutes and series
    of the rule, current and proposed (not the rows)."""
    keep = ("fired", "alert_minutes", "series")
    out: dict[str, Any] = {k: figures.get(k) for k in ("days", "from", "to", "windows") if k in figures}
    for name in ("current", "proposed"):
        out[name] = {k: figures.get(name, {}).get(k) for k in keep}
    return out


async def record_dry_run(
    store: Store,
    kpi: str,
    rule: str,
    fields: Mapping[str, Any],
    figures: Mapping[str, Any],
    *,
    who: str,
    now: float,
    comment: str = "",
    on_behalf_of: str = "",
) -> dict[str, Any]:
    """Audit a dry run (kind ``dry_run``: the change asked for and its backtest figures); nothing is applied."""
    entry = _note({"kind": "dry_run", "kpi": kpi, "rule": rule, "fields": dict(fields), "who": who or "?",
                   "at": now, "comment": comment, "backtest": backtest_summary(figures)}, on_behalf_of)
    await store.append_audit(entry)
    return entry


async def list_thresholds(store: Store) -> list[dict[str, Any]]:
    """Every published rule with its effective tunable values and the overridden field names."""
    rules, overrides = await store.get_rules(), await store.get_overrides()
    out = []
    for (kpi, name), base in sorted(rules.items()):
        override = overrides.get((kpi, name), {})
        effective = {**base, **override}
        tunable = {f: effective.get(f) for f in sorted(TUNABLE[str(base["type"])])}
        out.append(
            {
                "kpi": kpi,
                "rule": name,
                "type": base["type"],
                "severity": base.get("severity"),
                "values": tunable,
                "overridden": sorted(override),
            }
        )
    return out


async def acknowledge(
    store: Store, fingerprint: str, *, who: str, now: float, comment: str = "", on_behalf_of: str = ""
) -> Ack:
    """Acknowledge the firing alert ``fingerprint`` (stops its repeats and escalation until it resolves)."""
    if not who.strip():
        raise AdminError("who acknowledges? (--who)")
    alert = await store.get_alert(fingerprint)
    if alert is None:
        raise AdminError(f"no active alert with fingerprint {fingerprint!r} (list them: kpimon alerts list, or GET /api/alerts)", 404)
    if alert.state != "firing" or alert.starts_at is None:
        raise AdminError(f"alert {fingerprint} is {alert.state}; only firing alerts can be acknowledged", 409)
    ack = Ack(fingerprint, dict(alert.labels), alert.starts_at, who, now, comment)
    await store.put_ack(ack)
    await store.ack_incident(fingerprint, alert.starts_at, who, now)  # the history keeps the first ack
    await store.append_audit(
        _note({
            "kind": "ack",
            "fingerprint": fingerprint,
            "labels": dict(alert.labels),
            "who": who,
            "at": now,
            "comment": comment,
        }, on_behalf_of)
    )
    return ack


def _time(data: Mapping[str, Any], name: str, default: float) -> float:
    value = data.get(name, default)
    if not _is_number(value):
        raise AdminError(f"{name} must be epoch seconds (a finite number), got {value!r}")
    return float(value)


async def add_silence(
    store: Store, data: Mapping[str, Any], *, who: str, now: float, on_behalf_of: str = ""
) -> Silence:
    """Create a silence from ``{"matchers": [...], "starts_at"?, "ends_at" | "duration", "comment"?}``."""
    if not isinstance(data, Mapping):
        raise AdminError(
            'a silence is a JSON object: {"matchers": ["team=ops"], "duration": "2h", "comment": ""}'
        )
    matchers = data.get("matchers")
    if not isinstance(matchers, Sequence) or isinstance(matchers, str):
        raise AdminError('matchers must be a list of strings like "team=ops" or "kpi=~pay.*"')
    starts = _time(data, "starts_at", now)
    try:
        ends = (
            _time(data, "ends_at", 0.0)
            if "ends_at" in data
            else starts + parse_duration(data.get("duration"))
        )
        silence = Silence.create(
            [str(m) for m in matchers],
            starts_at=starts,
            ends_at=ends,
            created_by=who,
            comment=str(data.get("comment", "")),
            created_at=now,
        )
    except (MatcherError, ValueError) as exc:
        raise AdminError(f"bad silence: {exc}") from None
    await store.put_silence(silence)
    await store.append_audit(
        _note({
            "kind": "silence",
            "id": silence.id,
            "matchers": [str(m) for m in silence.matchers],
            "starts_at": starts,
            "ends_at": ends,
            "who": who,
            "at": now,
            "comment": silence.comment,
        }, on_behalf_of)
    )
    return silence


async def remove_silence(store: Store, silence_id: str, *, who: str, now: float, on_behalf_of: str = "") -> None:
    """Delete a silence (audited); 404 when it does not exist."""
    if not await store.delete_silence(silence_id):
        raise AdminError(f"no silence with id {silence_id!r}", 404)
    await store.append_audit(_note({"kind": "unsilence", "id": silence_id, "who": who, "at": now}, on_behalf_of))
