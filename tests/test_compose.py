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
    env = {**os.environ, "GRAFANA_ADMIN_PASSWORD": "test-only", "SMTP_HOST": "smtp.test", "DINGTALK_WEBHOOK":
           "https://oapi.dingtalk.com/robot/send?access_token=test", "DINGTALK_SECRET": "SECtest"}
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


def test_the_stack_sets_what_the_worker_and_its_catalog_read() -> None:
    """Every KPIMON_* variable the stack sets is a setting the worker reads (derived from the Settings class, so a
    misspelt name such as GRAFANA_URL fails here), and every ${VAR} the mounted catalog reads is set by the stack
    (else its channels would fall back to the demo's local receivers, which do not exist in a container)."""
    import re

    from kpimon.settings import Settings

    services = compose_config()["services"]
    read = {f"KPIMON_{name.upper()}" for name in Settings.model_fields} | {"GRAFANA_TOKEN"}
    [catalog_mount] = [v for v in services["worker"]["volumes"] if v.endswith(":/etc/kpimon/catalog.yaml:ro")]
    catalog = (REPO / catalog_mount.split(":")[0].removeprefix(str(REPO) + "/")).read_text()
    wanted = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", catalog))
    assert wanted, "the catalog reads its channels' endpoints from the environment"
    for name in ("worker", "simulator"):
        env = services[name]["environment"]
        unknown = {k for k in env if k.startswith("KPIMON_") or k.startswith("GRAFANA")} - read
        assert not unknown, f"{name} sets {sorted(unknown)}, which the worker does not read"
        assert wanted <= set(env), f"{name} does not set {sorted(wanted - set(env))}"
    assert services["worker"]["environment"]["KPIMON_GRAFANA_URL"] == "http://grafana:3000"
