"""deploy/ holds what ``kpimon dashboards build`` generates from examples/shop.yaml, byte for byte."""

from __future__ import annotations

from pathlib import Path

import yaml

from catalog import Catalog
from grafana.dashboards import datasource_uid, folder_uid
from grafana.provisioning import DASHBOARDS_DIR, GRAFANA_DASHBOARDS_PATH, render_artifacts

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
REBUILD = "run `kpimon dashboards build --catalog examples/shop.yaml --out deploy` and commit"


def test_generated_files_are_up_to_date(shop: Catalog) -> None:
    files = render_artifacts(shop, "shop.yaml")
    stale = [rel for rel, text in files.items()
             if not (DEPLOY / rel).exists() or (DEPLOY / rel).read_text(encoding="utf-8") != text]
    assert stale == [], f"out of date: {stale}; {REBUILD}"
    extra = sorted(p.name for p in (DEPLOY / DASHBOARDS_DIR).glob("*.json")
                   if f"{DASHBOARDS_DIR}/{p.name}" not in files)
    assert extra == [], f"boards of removed KPIs: {extra}; {REBUILD}"


def test_provisioning_points_at_the_boards_and_the_datasource(shop: Catalog) -> None:
    ds = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/kpimon.yaml").read_text())
    assert ds["datasources"][0]["uid"] == datasource_uid(shop)
    assert ds["datasources"][0]["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/kpimon.yaml").read_text())
    (entry,) = provider["providers"]
    assert entry["options"]["path"] == GRAFANA_DASHBOARDS_PATH and entry["type"] == "file"
    assert entry["folder"] == shop.grafana.folder and entry["folderUid"] == folder_uid(shop)
