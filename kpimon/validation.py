"""Catalog checks that need the other layers (alert rules, channels, routes, detector kinds).

Imported by the CLI; registers with :func:`catalog.register_validator` so `kpimon check` and every
command that loads a catalog report these problems with file and line like the schema's own.
"""

from __future__ import annotations

from collections.abc import Iterable

from catalog import Catalog, register_validator

Path = tuple[str | int, ...]


@register_validator
def _alerting(catalog: Catalog) -> Iterable[tuple[Path, str]]:
    from alerting.config import AlertingConfigError
    from kpimon.wiring import alerting_config

    try:
        alerting_config(catalog)
    except AlertingConfigError as exc:
        for loc, msg in exc.problems:
            yield tuple(loc), msg.removeprefix("Value error, ")


@register_validator
def _detectors(catalog: Catalog) -> Iterable[tuple[Path, str]]:
    from detectors.base import DetectorError
    from detectors.registry import KINDS, make_detector

    for i, kpi in enumerate(catalog.kpis):
        det = kpi.detector
        if not det.enabled:
            continue
        if det.kind not in KINDS:
            yield ("kpis", i, "detector", "kind"), f"unknown detector kind {det.kind!r}; known: {', '.join(sorted(KINDS))}"
            continue
        try:
            make_detector(det.kind, det.sensitivity, **det.params)
        except (DetectorError, TypeError) as exc:
            yield ("kpis", i, "detector", "params"), str(exc)


@register_validator
def _ratios(catalog: Catalog) -> Iterable[tuple[Path, str]]:
    names = {k.name: k for k in catalog.kpis}
    for i, kpi in enumerate(catalog.kpis):
        if kpi.ratio is None:
            continue
        for role in ("numerator", "denominator"):
            part = names.get(getattr(kpi.ratio, role))
            if part is not None and part.ratio is not None:
                yield ("kpis", i, "ratio", role), f"{part.name!r} is itself a ratio; a ratio's parts must be measured KPIs"
