"""The KPI catalog ("metric centre"): one definition per KPI for streams, detectors, alerts and boards.

The bottom layer: every other package may import it, it imports none of them (an import-linter contract).

- :mod:`catalog.model` the schema of the catalog file; :mod:`catalog.load` loading it with file:line errors
  (:mod:`catalog.yamlmap`) and every cross-field check;
- :mod:`catalog.alerts` alert rules and routes, :mod:`catalog.channels` notification channels,
  :mod:`catalog.detectors` detector kinds and their parameters;
- :mod:`catalog.calendar` the business calendar (holidays, adjusted working days, promotions);
- :mod:`catalog.durations` the one duration parser;
- :mod:`catalog.defaults` the defaults of the deployment settings (broker, listen address, ...).

Exceptions::

    ValueError
     └── CatalogError      (.issues: list[CatalogIssue], each with file, line, column, path, message)
"""

from catalog.calendar import Calendar, CalendarSpec
from catalog.load import CatalogError, CatalogIssue, load_catalog, parse_catalog
from catalog.model import (
    Catalog,
    DetectorSpec,
    DistinctSpec,
    KpiSpec,
    Measure,
    RatioSpec,
    SourceSpec,
    Target,
    WindowSpec,
    parse_measure,
)

__all__ = [
    "Calendar", "CalendarSpec", "Catalog", "CatalogError", "CatalogIssue", "DetectorSpec", "DistinctSpec", "KpiSpec", "Measure", "RatioSpec",
    "SourceSpec", "Target", "WindowSpec", "load_catalog", "parse_catalog", "parse_measure",
]
