"""``kpimon dashboards build|rules`` write what the library renders and explain bad catalogs."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from catalog import Catalog
from grafana.provisioning import RULES_FILE, render_artifacts
from kpimon.commands.dashboards import dashboards

SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop.yaml"


def test_build_writes_every_artifact_and_removes_stale_boards(tmp_path: Path, shop: Catalog) -> None:
    stale = tmp_path / "grafana/dashboards/kpimon-removed_kpi.json"
    stale.parent.mkdir(parents=True)
    stale.write_text("{}")
    result = CliRunner().invoke(dashboards, ["build", "--catalog", str(SHOP), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    expected = render_artifacts(shop, "shop.yaml")
    for rel, text in expected.items():
        assert (tmp_path / rel).read_text(encoding="utf-8") == text
    assert not stale.exists()
    assert result.output.count("wrote ") == len(expected)


def test_rules_writes_only_rules(tmp_path: Path) -> None:
    result = CliRunner().invoke(dashboards, ["rules", "--catalog", str(SHOP), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / RULES_FILE).exists() and not (tmp_path / "grafana").exists()
    assert "promtool check rules" in result.output


def test_bad_catalog_is_reported_with_its_location(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources: {o: {topic: t}}\nkpis:\n  - {name: orders, source: nope, measure: count}\n")
    result = CliRunner().invoke(dashboards, ["build", "--catalog", str(bad), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "invalid catalog" in result.output and "bad.yaml:3" in result.output and "nope" in result.output
    assert not (tmp_path / "out").exists()


def test_the_catalog_comes_from_c_or_kpimon_catalog_like_every_command(tmp_path: Path) -> None:
    """`-c` and `KPIMON_CATALOG` name the catalog here as on the other commands."""
    short = CliRunner().invoke(dashboards, ["rules", "-c", str(SHOP), "--out", str(tmp_path / "a")])
    assert short.exit_code == 0, short.output
    env = CliRunner().invoke(dashboards, ["rules", "--out", str(tmp_path / "b")], env={"KPIMON_CATALOG": str(SHOP)})
    assert env.exit_code == 0, env.output
    assert (tmp_path / "a" / RULES_FILE).read_text() == (tmp_path / "b" / RULES_FILE).read_text()
    missing = CliRunner().invoke(dashboards, ["rules", "--out", str(tmp_path / "c")],
                                 env={"KPIMON_CATALOG": str(tmp_path / "nowhere.yaml")})
    assert missing.exit_code != 0 and "nowhere.yaml" in missing.output
