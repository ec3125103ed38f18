"""``kpimon dashboards``: build boards, provisioning and Prometheus rules from the catalog; push boards.

Wire into the CLI with ``cli.add_command(dashboards)``.
"""

from __future__ import annotations

from pathlib import Path

import click

from catalog import Catalog, CatalogError, defaults, load_catalog
from grafana.client import GrafanaClient, GrafanaError
from grafana.dashboards import all_dashboards, folder_uid
from grafana.provisioning import render_artifacts, render_rules, write_artifacts

__all__ = ["dashboards"]

_catalog_option = click.option("--catalog", "-c", "catalog_path", type=click.Path(dir_okay=False, path_type=Path),
                               envvar="KPIMON_CATALOG", default=Path(defaults.CATALOG), show_default=True,
                               help="KPI catalog YAML (env KPIMON_CATALOG).")
_out_option = click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("deploy"),
                           show_default=True, help="Directory to write into (the repo's deploy/).")


def _load(path: Path) -> Catalog:
    try:
        return load_catalog(path, channels=False)   # boards and rules send nothing: no channel secrets needed
    except CatalogError as exc:
        from alerting.notifiers.base import redact_urls  # channel URLs may carry tokens

        raise click.ClickException(redact_urls(f"invalid catalog:\n{exc}")) from None


def _write(files: dict[str, str], out: Path) -> None:
    for path in write_artifacts(files, out):
        click.echo(f"  wrote {path}")


@click.group()
def dashboards() -> None:
    """Grafana boards and Prometheus rules generated from the KPI catalog."""


@dashboards.command()
@_catalog_option
@_out_option
@click.option("--prometheus-url", default="http://prometheus:9090", show_default=True,
              help="Prometheus URL as Grafana sees it (datasource provisioning).")
def build(catalog_path: Path, out: Path, prometheus_url: str) -> None:
    """Write dashboard JSON, Grafana provisioning and Prometheus rules (+ their promtool tests)."""
    catalog = _load(catalog_path)
    click.echo(f"building from {catalog_path} ({len(catalog.kpis)} KPIs) into {out}/")
    _write(render_artifacts(catalog, catalog_path.name, prometheus_url), out)
    click.echo("done; commit the changes under deploy/ (a test checks they are up to date)")


@dashboards.command()
@_catalog_option
@_out_option
def rules(catalog_path: Path, out: Path) -> None:
    """Write only the Prometheus rules file and its promtool unit tests."""
    catalog = _load(catalog_path)
    _write(render_rules(catalog, catalog_path.name), out)
    click.echo(f"check with: promtool check rules {out}/prometheus/rules/kpimon.rules.yml")


@dashboards.command()
@_catalog_option
@click.option("--url", default=None, help="Grafana base URL [default: the catalog's grafana.url].")
@click.option("--timeout", default=10.0, show_default=True, help="Seconds per HTTP request.")
def push(catalog_path: Path, url: str | None, timeout: float) -> None:
    """Push every board into the catalog's Grafana folder (token from $GRAFANA_TOKEN, sent as Bearer)."""
    catalog = _load(catalog_path)
    target = url or catalog.grafana.url
    try:
        with GrafanaClient.from_env(target, timeout=timeout) as client:
            boards = all_dashboards(catalog)
            click.echo(f"pushing {len(boards)} boards to {target} (folder {catalog.grafana.folder!r})")
            client.push_all(boards, catalog.grafana.folder, folder_uid(catalog), click.echo)
    except GrafanaError as exc:
        from alerting.notifiers.base import redact_urls  # the URL may carry credentials

        raise click.ClickException(redact_urls(str(exc))) from None
    click.echo("done")
