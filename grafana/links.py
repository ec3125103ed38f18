"""Links from alerts to the KPI's panel, with the alert's series selected in the board's variables.

Examples
--------
>>> from catalog import load_catalog
>>> catalog = load_catalog("examples/shop.yaml")
>>> panel_url("http://grafana:3000/", catalog, "gmv", {"region": "east"})
'http://grafana:3000/d/kpimon-gmv?viewPanel=1&var-region=east&var-channel=%24__all'
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote, urlencode

from catalog import Catalog
from grafana.dashboards import PANEL, dashboard_uid

__all__ = ["ALL", "dashboard_url", "panel_url", "panel_url_template"]

#: Grafana's URL value for a variable's "All" option (here: the total series).
ALL = "$__all"


def dashboard_url(base_url: str, catalog: Catalog, kpi: str) -> str:
    """URL of the KPI's board."""
    catalog.kpi(kpi)  # raises KeyError naming the known KPIs
    return f"{base_url.rstrip('/')}/d/{dashboard_uid(catalog, kpi)}"


def panel_url(base_url: str, catalog: Catalog, kpi: str, labels: Mapping[str, str], panel: str = "value") -> str:
    """URL of the KPI's ``panel`` (default: value with band) showing the series with ``labels``.

    Labels that are not dimensions of the KPI (``severity``, ``team`` ...) are ignored; dimensions not in
    ``labels`` are set to "All", which on these boards means the total.
    """
    spec = catalog.kpi(kpi)
    params: list[tuple[str, str]] = [("viewPanel", str(PANEL[panel]))]
    params += [(f"var-{dim}", labels.get(dim) or ALL) for dim in spec.dimensions]
    return f"{dashboard_url(base_url, catalog, kpi)}?{urlencode(params, quote_via=quote)}"


def panel_url_template(base_url: str, catalog: Catalog, kpi: str, panel: str = "value") -> str:
    """:func:`panel_url` as a Prometheus alert template: label values are filled in when the alert fires."""
    spec = catalog.kpi(kpi)
    url = f"{dashboard_url(base_url, catalog, kpi)}?viewPanel={PANEL[panel]}"
    for dim in spec.dimensions:
        url += (f"&var-{dim}={{{{ if $labels.{dim} }}}}{{{{ $labels.{dim} | urlquery }}}}"
                f"{{{{ else }}}}%24__all{{{{ end }}}}")
    return url
