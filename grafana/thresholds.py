"""The catalog's static threshold alerts, as boards and Prometheus rules need them.

``kpis[].alerts`` items are validated by kpimon's alerting package; ``grafana`` may import only the catalog, so
this module reads the few fields it needs (``type: threshold`` items only; other fields are ignored).

Examples
--------
>>> [t.alert for t in static_thresholds_of([{"type": "threshold", "below": 10, "for": "2m"}], "orders")]
['KpiOrdersThreshold']
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kpimon.catalog import Catalog, KpiSpec
from kpimon.durations import parse_duration

__all__ = ["StaticThreshold", "static_thresholds", "static_thresholds_of"]


class StaticThreshold(BaseModel):
    """One ``type: threshold`` alert of a KPI: fire while the value is above/below/outside the limits."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    kpi: str
    name: str = "threshold"
    severity: Literal["info", "warning", "critical"] = "warning"
    above: float | None = None
    below: float | None = None
    outside: tuple[float, float] | None = None
    for_: float = Field(default=0.0, alias="for")
    keep_firing_for: float = 0.0
    labels: dict[str, str] = Field(default_factory=dict)
    summary: str | dict[str, str] | None = None   # one string, or one per language (alerting's messages)
    enabled: bool = True

    @field_validator("for_", "keep_firing_for", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        return parse_duration(value)

    @model_validator(mode="after")
    def _limits(self) -> StaticThreshold:
        if self.outside is not None:
            if self.above is not None or self.below is not None:
                raise ValueError("use either `outside: [lo, hi]` or `above`/`below`, not both")
            if self.outside[0] >= self.outside[1]:
                raise ValueError("outside: [lo, hi] needs lo < hi")
        elif self.above is None and self.below is None:
            raise ValueError("a threshold alert needs `above`, `below` or `outside: [lo, hi]`")
        return self

    @property
    def upper_limit(self) -> float | None:
        """The value above which the alert fires, if any."""
        return self.outside[1] if self.outside else self.above

    @property
    def lower_limit(self) -> float | None:
        """The value below which the alert fires, if any."""
        return self.outside[0] if self.outside else self.below

    @property
    def alert(self) -> str:
        """Prometheus alert name, CamelCase by convention: ``KpiGmvTooLow`` for KPI gmv, rule too_low."""
        return "Kpi" + _camel(self.kpi) + _camel(self.name)


def _camel(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


def static_thresholds_of(alerts: Iterable[Mapping[str, Any]], kpi: str) -> list[StaticThreshold]:
    """The enabled threshold alerts among one KPI's ``alerts`` items; raises ``ValueError`` on bad ones."""
    out = []
    for item in alerts:
        if item.get("type", "threshold") != "threshold":
            continue
        spec = StaticThreshold.model_validate({**item, "kpi": kpi})
        if spec.enabled:
            out.append(spec)
    return out


def static_thresholds(catalog: Catalog, kpi: KpiSpec | None = None) -> list[StaticThreshold]:
    """Threshold alerts of ``kpi``, or of every KPI in catalog order."""
    kpis = [kpi] if kpi is not None else catalog.kpis
    return [t for spec in kpis for t in static_thresholds_of(spec.alerts, spec.name)]
