"""docker-compose.yml is valid (``docker-compose config``; no Docker engine needed) and every host path it
bind-mounts exists in the repo, so ``docker-compose up`` on a fresh clone finds its configs."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def compose_config() -> dict[str, Any]:
    exe = shutil.which("docker-compose") or "/usr/bin/docker-compose"
    if not Path(exe).exists():
        pytest.fail("docker-compose not found (Debian package docker-compose); tests never skip")
    env = {**os.environ, "GRAFANA_ADMIN_PASSWORD": "test-only"}
    result = subprocess.run([exe, "-f", "docker-compose.yml", "config"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


def bind_sources(service: dict[str, Any]) -> list[str]:
    """Host paths of bind mounts (short ``/abs:/ctr[:ro]`` or long ``{type: bind, source}`` syntax)."""
    out = []
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            if volume.get("type") == "bind":
                out.append(volume["source"])
        elif volume.startswith(("/", ".")):
            out.append(volume.split(":", 1)[0])
    return out


def test_compose_config_is_valid_and_bind_mounts_exist() -> None:
    services = compose_config()["services"]
    assert {"kafka", "redis", "prometheus", "alertmanager", "grafana", "worker", "simulator"} <= set(services)
    mounts = {src for service in services.values() for src in bind_sources(service)}
    assert mounts, "expected bind mounts for configs"
    for src in mounts:
        path = (REPO / src).resolve()
        assert path.is_relative_to(REPO), f"{src} is outside the repo"
        assert path.exists(), f"bind-mounted {src} does not exist"


def test_services_use_the_generated_configs_and_documented_commands() -> None:
    services = compose_config()["services"]
    worker, simulator = services["worker"], services["simulator"]
    assert worker["build"]["context"] == str(REPO) and (REPO / "Dockerfile").exists()
    assert " ".join(worker["command"]) == ("worker --catalog /etc/kpimon/catalog.yaml --broker kafka:9092 "
                                           "--redis-url redis://redis:6379/0 --listen 0.0.0.0:9108 --loglevel info")
    assert "ports" not in worker, "the worker's HTTP port (API and /metrics) must not be published on the host"
    assert " ".join(simulator["command"]) == "simulate --catalog /etc/kpimon/catalog.yaml --broker kafka:9092 --rate 200"
    grafana_mounts = {v.split(":")[1] for v in services["grafana"]["volumes"] if v.startswith("/")}
    assert {"/etc/grafana/provisioning", "/var/lib/grafana/dashboards"} <= grafana_mounts
    home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (REPO / "deploy/grafana/dashboards" / Path(home).name).exists()
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    prometheus = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    (job,) = [j for j in prometheus["scrape_configs"] if j["job_name"] == "kpimon"]
    assert job["dns_sd_configs"][0] == {"names": ["worker"], "type": "A", "port": 9108, "refresh_interval": "30s"}
