"""One settings class for the shell; every field can come from the environment (``KPIMON_<FIELD>``)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Defaults for the CLI; command-line options override them."""

    model_config = SettingsConfigDict(env_prefix="KPIMON_", extra="ignore")

    catalog: str = "examples/shop.yaml"
    broker: str = "127.0.0.1:9092"
    app_id: str = "kpimon"
    metrics_host: str = "0.0.0.0"
    metrics_port: int = Field(default=9108, ge=0, le=65535)
    redis_url: str | None = None
    redis_prefix: str | None = None      # default "<app_id>:" so deployments sharing a Redis stay apart
    grafana_url: str | None = None       # annotations of alerts and drift; token from GRAFANA_TOKEN
    api_token: SecretStr | None = None
    speedup: float = Field(default=1.0, gt=0)
    # outbox retries (wall-clock seconds, whatever the speedup): give up after max_age, backoff base doubling to cap
    delivery_max_age: float = Field(default=86400.0, gt=0)
    delivery_backoff_base: float = Field(default=2.0, gt=0)
    delivery_backoff_cap: float = Field(default=300.0, gt=0)
    partitions: int = Field(default=4, ge=1)
    topic_prefix: str = Field(default="", pattern=r"^[A-Za-z0-9._-]*$")
