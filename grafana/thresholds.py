"""The catalog's static threshold alerts, as boards and Prometheus rules need them.

The rules are the catalog's (:mod:`catalog.alerts`), validated by the same schema alerting fires them with; this
module keeps the enabled ``type: threshold`` ones and adds what boards and rule files need (the KPI, the Prometheus
alert name).

Examples
--------
>>> [t.alert for t in static_thresholds_of([{"type": "threshold", "below": 10, "for": "2m"}], "orders")]
['KpiOrdersThreshold']
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from catalog import Catalog, KpiSpec
from catalog.alerts import ThresholdRule, rule_adapter

__all__ = ["StaticThreshold", "static_thresholds", "static_thresholds_of"]


class StaticThreshold(ThresholdRule):
    """One enabled ``type: threshold`` rule of a KPI (named: the default name is ``threshold``)."""

    kpi: str

    @property
    def alert(self) -> str:
        """Prometheus alert name, CamelCase by convention: ``KpiGmvTooLow`` for KPI gmv, rule too_low."""
        return "Kpi" + _camel(self.kpi) + _camel(self.name)


def _camel(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


def static_thresholds_of(alerts: Iterable[Mapping[str, Any]], kpi: str) -> list[StaticThreshold]:
    """The enabled threshold rules among one KPI's ``alerts`` items; raises ``ValueError`` on any bad item."""
    out = []
    for item in alerts:
        rule = rule_adapter.validate_python(item)
        if isinstance(rule, ThresholdRule) and rule.enabled:
            out.append(StaticThreshold.model_validate({**dict(rule), "name": rule.name or rule.type, "kpi": kpi}))
    return out


def static_thresholds(catalog: Catalog, kpi: KpiSpec | None = None) -> list[StaticThreshold]:
    """Threshold alerts of ``kpi``, or of every KPI in catalog order."""
    kpis = [kpi] if kpi is not None else catalog.kpis
    return [t for spec in kpis for t in static_thresholds_of(spec.alerts, spec.name)]
