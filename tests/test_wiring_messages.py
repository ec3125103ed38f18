"""What the shell tells alerting about messages: board links only from a configured Grafana URL, each KPI's
number kind and range, the catalog's time zone, signed action links only with a public URL."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from catalog import load_catalog, parse_catalog
from kpimon.settings import Settings
from kpimon.wiring import alerting_config

SHOP = Path(__file__).resolve().parents[1] / "examples" / "shop.yaml"


def test_no_board_link_without_a_grafana_url() -> None:
    catalog = load_catalog(SHOP)
    assert "url" not in catalog.grafana.model_fields_set  # the example sets none
    assert all(meta.dashboard_url is None for meta in alerting_config(catalog).kpis.values())
    cfg = alerting_config(catalog, Settings(grafana_url="https://grafana.shop.example"))
    url = cfg.kpis["paid_orders"].dashboard_url
    assert url is not None and url.startswith("https://grafana.shop.example/d/") and "{region}" in url
    own = parse_catalog(SHOP.read_text(encoding="utf-8") + "grafana: {url: 'https://g.example'}\n", "shop.yaml")
    assert (alerting_config(own).kpis["gmv"].dashboard_url or "").startswith("https://g.example/d/")


def test_kinds_ranges_and_zone_from_the_catalog() -> None:
    cfg = alerting_config(load_catalog(SHOP))
    kinds = {name: (m.kind, m.min_value, m.max_value) for name, m in cfg.kpis.items()}
    assert kinds["paid_orders"] == ("count", 0.0, None)
    assert kinds["unique_visitors"] == ("count", 0.0, None)
    assert kinds["gmv"] == ("money", 0.0, None)
    assert kinds["conversion_rate"] == ("ratio", 0.0, 1.0)
    assert kinds["tickets_open"] == ("value", None, None)
    assert cfg.timezone == "Asia/Shanghai"


def test_action_links_need_a_public_url_and_a_key() -> None:
    catalog = load_catalog(SHOP)
    assert alerting_config(catalog, Settings()).actions is None
    assert alerting_config(catalog, Settings(public_url="https://k.example")).actions is None  # nothing to sign with
    links = alerting_config(catalog, Settings(public_url="https://k.example", api_token=SecretStr("t" * 20))).actions
    assert links is not None and links.base_url == "https://k.example" and "t" * 20 not in links.secret
