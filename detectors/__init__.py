"""Pure online anomaly detectors for KPI series (stdlib + River only).

Public surface::

    Verdict, Detector, DetectorError          detectors.base
    KINDS, SENSITIVITIES, make_detector,
    restore_detector                          detectors.registry
    CalibratedDetector (kind "calibrated", the default: the seasonal model with a per-series alarm budget),
    SeasonalDetector ("seasonal"), GaussianDetector ("gaussian"), HalfSpaceTreesDetector ("hst"),
    PredictiveDetector ("predictive")
    run_nab                                   detectors.nab

Exceptions::

    ValueError
    └── DetectorError    bad input value, bad parameters, bad state, bad NAB files
"""

from detectors.base import Detector, DetectorError, Verdict
from detectors.calibrated import CalibratedDetector
from detectors.gaussian import GaussianDetector
from detectors.hst import HalfSpaceTreesDetector
from detectors.nab import run_nab
from detectors.predictive import PredictiveDetector
from detectors.registry import KINDS, SENSITIVITIES, make_detector, restore_detector
from detectors.seasonal import SeasonalDetector

__all__ = [
    "KINDS", "SENSITIVITIES", "CalibratedDetector", "Detector", "DetectorError", "GaussianDetector", "HalfSpaceTreesDetector",
    "PredictiveDetector", "SeasonalDetector", "Verdict", "make_detector", "restore_detector", "run_nab",
]
