"""One settings class for the shell; every field can come from the environment (``KPIMON_<FIELD>``)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from catalog import defaults

__all__ = ["Settings", "parse_listen"]


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9108`` for IPv6) -> (host, port); ValueError says what is wrong.

    >>> parse_listen("127.0.0.1:9108"), parse_listen("[::]:0")
    (('127.0.0.1', 9108), ('::', 0))
    """
    host, sep, port = text.strip().rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{text!r} is not HOST:PORT, e.g. 127.0.0.1:9108 (or 0.0.0.0:9108 for every interface)")
    return host, int(port)


class Settings(BaseSettings):
    """Defaults for the CLI; command-line options override them. The default values are
    :mod:`catalog.defaults` (which the worker's lower layers read too)."""

    model_config = SettingsConfigDict(env_prefix="KPIMON_", extra="ignore")

    catalog: str = defaults.CATALOG
    broker: str = defaults.BROKER
    app_id: str = defaults.APP_ID
    listen: str = defaults.LISTEN        # /metrics, /healthz and /api/*: loopback only unless told otherwise
    redis_url: str | None = None
    redis_prefix: str | None = None      # default "<app_id>:" so deployments sharing a Redis stay apart
    grafana_url: str | None = None       # annotations of alerts and drift; token from GRAFANA_TOKEN
    api_token: SecretStr | None = None   # one token, or name:token pairs (see alerting.http_api)
    api_token_file: str | None = None    # the same from a file: kept out of `ps` and shell history
    public_url: str | None = None        # the worker's HTTP port as people reach it: ack/silence links in messages
    action_secret: SecretStr | None = None  # signs those links (default: derived from the API token)
    speedup: float = Field(default=defaults.SPEEDUP, gt=0)
    # outbox retries (wall-clock seconds, whatever the speedup): give up after max_age, backoff base doubling to cap
    delivery_max_age: float = Field(default=defaults.DELIVERY_MAX_AGE_S, gt=0)
    delivery_backoff_base: float = Field(default=defaults.DELIVERY_BACKOFF_BASE_S, gt=0)
    delivery_backoff_cap: float = Field(default=defaults.DELIVERY_BACKOFF_CAP_S, gt=0)
    # dead man's switch: POST to this URL (a healthchecks.io check, a Prometheus pushgateway...) every interval
    heartbeat_url: SecretStr | None = None
    heartbeat_interval: float = Field(default=60.0, gt=0)
    partitions: int = Field(default=defaults.PARTITIONS, ge=1)
    topic_prefix: str = Field(default=defaults.TOPIC_PREFIX, pattern=r"^[A-Za-z0-9._-]*$")
