"""One source of defaults: ``Settings``, the CLI's options and the worker's own config agree (``catalog.defaults``)."""

from __future__ import annotations

from typing import Any

import click
import pytest
from click.testing import CliRunner

from alerting.outbox import RetryPolicy
from catalog import defaults
from kpimon.cli import main
from kpimon.commands.alerts import alerts, threshold
from kpimon.commands.dashboards import dashboards
from kpimon.settings import Settings, parse_listen
from streams.app import WorkerConfig
from streams.engine import PartitionEngine
from streams.merge import Merger
from streams.topics import Topics


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings as a fresh environment gives them (no KPIMON_* variables)."""
    import os

    for name in [n for n in os.environ if n.startswith("KPIMON_")]:
        monkeypatch.delenv(name)
    return Settings()


def _option(command: click.Command, name: str) -> click.Option:
    found = [p for p in command.params if isinstance(p, click.Option) and p.name == name]
    assert found, f"{command.name} has no option {name}"
    return found[0]


def _default(command: click.Command, name: str) -> Any:
    default = _option(command, name).default
    return default() if callable(default) else default


def _command(name: str) -> click.Command:
    return main.commands[name]


@pytest.mark.parametrize("field", ["catalog", "broker", "listen", "speedup", "app_id", "topic_prefix"])
def test_worker_options_read_settings(settings: Settings, field: str) -> None:
    worker = _command("worker")
    assert _default(worker, field) == getattr(settings, field)
    shown = _option(worker, field).show_default
    assert shown == (str(getattr(settings, field)) or "''")


def test_help_shows_the_settings_defaults(settings: Settings) -> None:
    out = " ".join(CliRunner().invoke(main, ["worker", "--help"], terminal_width=200).output.split())
    for value in (settings.catalog, settings.broker, settings.listen, settings.app_id, str(settings.speedup),
                  str(defaults.IDLE_MS), str(defaults.PARTITION_WAIT_S)):
        assert f"[default: ({value})]" in out or f"[default: {value}]" in out, value


def test_an_environment_variable_moves_the_cli_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KPIMON_BROKER", "kafka:9092")
    assert _default(_command("worker"), "broker") == _default(_command("simulate"), "broker") == "kafka:9092"


def test_worker_config_agrees_with_settings(settings: Settings) -> None:
    cfg, worker = WorkerConfig(), _command("worker")
    assert (cfg.broker, cfg.app_id, cfg.speedup) == (settings.broker, settings.app_id, settings.speedup)
    assert (cfg.metrics_host, cfg.metrics_port) == parse_listen(settings.listen)
    assert cfg.idle_ms == _default(worker, "idle_ms") == defaults.IDLE_MS
    assert cfg.partition_wait_s == _default(worker, "partition_wait") == defaults.PARTITION_WAIT_S
    assert Topics().internal_partitions == settings.partitions
    assert cfg.topics.with_prefix(settings.topic_prefix) == cfg.topics


def test_the_stage_classes_and_delivery_agree_with_settings(settings: Settings) -> None:
    import inspect

    assert inspect.signature(PartitionEngine).parameters["idle_ms"].default == WorkerConfig().idle_ms
    assert inspect.signature(PartitionEngine).parameters["speedup"].default == settings.speedup
    assert inspect.signature(Merger).parameters["partition_wait_s"].default == WorkerConfig().partition_wait_s
    retry = RetryPolicy()
    assert (retry.base_s, retry.cap_s, retry.max_age_s) == (
        settings.delivery_backoff_base, settings.delivery_backoff_cap, settings.delivery_max_age)


def test_the_other_commands_agree(settings: Settings) -> None:
    assert _default(_command("simulate"), "speedup") == settings.speedup
    assert _default(_command("demo"), "metrics_port") == parse_listen(settings.listen)[1]
    for group in (threshold, alerts):
        assert _default(group, "prefix") == f"{settings.app_id}:"  # what a worker without --redis-prefix uses
    assert str(_default(dashboards.commands["build"], "catalog_path")) == settings.catalog
