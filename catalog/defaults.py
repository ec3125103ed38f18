"""The defaults of the deployment settings, in one place.

``kpimon.settings.Settings`` (each field also read from ``KPIMON_<FIELD>``), the command line's options (their
``--help`` shows these), ``streams``' ``WorkerConfig``, ``Topics``, stage engines and merger, and ``alerting``'s
delivery ``RetryPolicy`` all take their defaults from here: the catalog is the one layer every one of them may
import (``streams`` may not import the shell that holds ``Settings``). ``tests/test_settings.py`` checks that
they agree.

Not to be confused with the catalog file's own ``defaults:`` section (window, series cap, language), which is
:class:`catalog.model.Defaults`.

>>> LISTEN
'127.0.0.1:9108'
>>> redis_prefix(APP_ID)
'kpimon:'
"""

from __future__ import annotations

__all__ = [
    "ADMIN_REDIS_URL", "APP_ID", "BROKER", "CATALOG", "DELIVERY_BACKOFF_BASE_S", "DELIVERY_BACKOFF_CAP_S",
    "DELIVERY_MAX_AGE_S", "IDLE_MS", "LISTEN", "MAX_MESSAGE_BYTES", "METRICS_HOST", "METRICS_PORT", "PARTITIONS", "PARTITION_WAIT_S",
    "SPEEDUP", "TOPIC_PREFIX", "redis_prefix",
]

CATALOG = "examples/shop.yaml"
BROKER = "127.0.0.1:9092"           # Kafka bootstrap host:port
APP_ID = "kpimon"                   # consumer group / Faust app id
METRICS_HOST = "127.0.0.1"          # /metrics, /healthz and /api/*: loopback only unless told otherwise
METRICS_PORT = 9108
LISTEN = f"{METRICS_HOST}:{METRICS_PORT}"
SPEEDUP = 1.0                       # event-time seconds per wall second when idle (simulations)
IDLE_MS = 2000                      # wall ms without events before a partition's watermark follows the clock
PARTITION_WAIT_S = 5.0              # wall s to wait for the other partitions' partials before a window is final
PARTITIONS = 4                      # of kpimon's own topics (kpi.partials, kpi.values, ...)
TOPIC_PREFIX = ""                   # of kpimon's own topics
# outbox retries (wall-clock seconds, whatever the speedup): give up after max_age, backoff base doubling to cap
DELIVERY_MAX_AGE_S = 86400.0
DELIVERY_BACKOFF_BASE_S = 2.0
DELIVERY_BACKOFF_CAP_S = 300.0
ADMIN_REDIS_URL = "redis://localhost:6379/0"   # `kpimon threshold|alerts` (a worker without one keeps state in memory)


def redis_prefix(app_id: str) -> str:
    """The Redis key prefix of a deployment, unless one is configured: one namespace per app id."""
    return f"{app_id}:"
MAX_MESSAGE_BYTES = 1_048_576     # a Kafka message above this many bytes is a dead letter `too_large`
