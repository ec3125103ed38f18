"""The KPI catalog ("metric centre"): one definition per KPI for streams, detectors, alerts and boards.

Exceptions::

    ValueError
     └── CatalogError      (.issues: list[CatalogIssue], each with file, line, column, path, message)
"""

from catalog.load import CatalogError, CatalogIssue, load_catalog, parse_catalog, register_validator
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
    "Catalog", "CatalogError", "CatalogIssue", "DetectorSpec", "DistinctSpec", "KpiSpec", "Measure", "RatioSpec",
    "SourceSpec", "Target", "WindowSpec", "load_catalog", "parse_catalog", "parse_measure", "register_validator",
]
