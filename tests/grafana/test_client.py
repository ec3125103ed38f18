"""The Grafana client against a local server that follows Grafana's documented HTTP API.

Grafana itself cannot run here (no Docker engine, no Grafana binary), so these tests use
tests/grafana/fake_grafana.py: real HTTP on a real socket, Grafana's paths, payloads, auth and error codes.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from catalog import Catalog
from grafana.client import (
    GrafanaAuthError,
    GrafanaClient,
    GrafanaConflictError,
    GrafanaError,
    GrafanaUnavailable,
)
from grafana.dashboards import PANEL, all_dashboards, folder_uid
from kpimon.commands.dashboards import dashboards
from tests.grafana.fake_grafana import FakeGrafana

TOKEN = "glsa_s3cr3t-token-value"


@pytest.fixture
def fake() -> Iterator[FakeGrafana]:
    server = FakeGrafana(TOKEN).start()
    yield server
    server.stop()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(fake: FakeGrafana, sleeps: list[float]) -> GrafanaClient:
    return GrafanaClient(fake.url, TOKEN, timeout=2.0, retries=3, backoff=0.5, sleep=sleeps.append)


def test_push_all_creates_the_folder_and_every_board(client: GrafanaClient, fake: FakeGrafana,
                                                     shop: Catalog) -> None:
    lines: list[str] = []
    boards = all_dashboards(shop)
    results = client.push_all(boards, "kpimon", folder_uid(shop), lines.append)
    assert [r["uid"] for r in results] == list(boards) and len(lines) == len(boards)
    assert fake.folders == {folder_uid(shop): "kpimon"}
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in fake.requests)
    push = [r for r in fake.requests if r.path == "/api/dashboards/db"][0]
    assert push.body["overwrite"] is True and push.body["folderUid"] == folder_uid(shop)
    assert push.body["dashboard"]["uid"] == "kpimon--overview" and push.body["dashboard"]["id"] is None
    client.push_all(boards, "kpimon", folder_uid(shop))  # again: overwrite bumps the version
    assert fake.dashboards["kpimon-gmv"]["version"] == 2


def test_retries_5xx_with_backoff_then_succeeds(client: GrafanaClient, fake: FakeGrafana, sleeps: list[float],
                                                shop: Catalog) -> None:
    fake.fail_next = [500, 502, 503]
    result = client.push_dashboard(all_dashboards(shop)["kpimon-gmv"])
    assert result["status"] == "success" and len(fake.requests) == 4
    assert sleeps == [0.5, 1.0, 2.0]


def test_gives_up_after_the_last_retry(client: GrafanaClient, fake: FakeGrafana, shop: Catalog) -> None:
    fake.fail_next = [500] * 10
    with pytest.raises(GrafanaUnavailable, match="after 4 attempts") as err:
        client.push_dashboard(all_dashboards(shop)["kpimon-gmv"])
    assert err.value.status == 500 and len(fake.requests) == 4


@pytest.mark.parametrize("status", [400, 401, 403, 404, 412])
def test_no_retry_on_4xx(client: GrafanaClient, fake: FakeGrafana, sleeps: list[float], status: int,
                         shop: Catalog) -> None:
    fake.fail_next = [status]
    with pytest.raises(GrafanaError) as err:
        client.push_dashboard(all_dashboards(shop)["kpimon-gmv"])
    assert err.value.status == status and len(fake.requests) == 1 and sleeps == []
    assert not isinstance(err.value, GrafanaUnavailable)


def test_bad_token_is_an_auth_error_that_never_shows_the_token(fake: FakeGrafana, shop: Catalog,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "glsa_wrong-token-value"
    client = GrafanaClient(fake.url, wrong, retries=2, sleep=lambda _: None)
    with pytest.raises(GrafanaAuthError, match="401") as err:
        client.push_dashboard(all_dashboards(shop)["kpimon-gmv"])
    assert len(fake.requests) == 1 and fake.requests[0].headers["authorization"] == f"Bearer {wrong}"
    assert wrong not in str(err.value) and wrong not in repr(client) and wrong not in caplog.text


def test_conflict_without_overwrite(client: GrafanaClient, fake: FakeGrafana, shop: Catalog) -> None:
    board = all_dashboards(shop)["kpimon-gmv"]
    client.push_dashboard(board)
    with pytest.raises(GrafanaConflictError, match="name-exists"):
        client.push_dashboard(board, overwrite=False)


def test_connection_errors_and_timeouts_are_retried(fake: FakeGrafana, shop: Catalog,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    sleeps: list[float] = []
    down = GrafanaClient(f"http://127.0.0.1:{closed}", TOKEN, retries=2, sleep=sleeps.append)
    with pytest.raises(GrafanaUnavailable, match="after 3 attempts") as err:
        down.push_dashboard(all_dashboards(shop)["kpimon-gmv"])
    assert sleeps == [0.5, 1.0] and TOKEN not in str(err.value)
    fake.delay = 0.5
    slow = GrafanaClient(fake.url, TOKEN, timeout=0.1, retries=1, sleep=lambda _: None)
    with pytest.raises(GrafanaUnavailable):
        slow.annotate("kpimon-gmv", 1, 0, None, [], "x")
    assert len(fake.requests) == 2 and TOKEN not in caplog.text


def test_alert_and_drift_annotations(client: GrafanaClient, fake: FakeGrafana, shop: Catalog) -> None:
    first = client.annotate_alert(shop, "gmv", {"region": "east", "severity": "critical"}, "firing",
                                  1_700_000_000.0, None, "GMV too low", severity="critical")
    second = client.annotate_alert(shop, "gmv", {"region": "east"}, "resolved", 1_700_000_000.0,
                                   1_700_000_600.5, "GMV back to normal")
    drift = client.annotate_drift(shop, "orders", {}, 1_700_000_100.0, "new normal: 120/min")
    assert (first, second, drift) == (1, 2, 3)
    fired, resolved, new_normal = fake.annotations
    assert fired == {"dashboardUID": "kpimon-gmv", "panelId": PANEL["value"], "time": 1_700_000_000_000,
                     "tags": ["kpimon", "kpi:gmv", "alert:firing", "severity:critical", "region:east"],
                     "text": "GMV too low"}
    assert resolved["timeEnd"] == 1_700_000_600_500 and "alert:resolved" in resolved["tags"]
    assert new_normal["dashboardUID"] == "kpimon-orders" and "drift" in new_normal["tags"]


def test_from_env_needs_a_token(monkeypatch: pytest.MonkeyPatch, fake: FakeGrafana) -> None:
    monkeypatch.delenv("GRAFANA_TOKEN", raising=False)
    with pytest.raises(GrafanaAuthError, match="GRAFANA_TOKEN"):
        GrafanaClient.from_env(fake.url)
    monkeypatch.setenv("GRAFANA_TOKEN", TOKEN)
    assert TOKEN not in repr(GrafanaClient.from_env(fake.url))


def test_cli_push(monkeypatch: pytest.MonkeyPatch, fake: FakeGrafana, shop: Catalog) -> None:
    monkeypatch.setenv("GRAFANA_TOKEN", TOKEN)
    result = CliRunner().invoke(dashboards, ["push", "--url", fake.url])
    assert result.exit_code == 0, result.output
    assert f"pushing {len(shop.kpis) + 1} boards" in result.output and "kpimon-gmv: http" in result.output
    monkeypatch.setenv("GRAFANA_TOKEN", "glsa_nope")
    result = CliRunner().invoke(dashboards, ["push", "--url", fake.url])
    assert result.exit_code == 1 and "401" in result.output and "glsa_nope" not in result.output
    monkeypatch.delenv("GRAFANA_TOKEN")
    result = CliRunner().invoke(dashboards, ["push", "--url", fake.url])
    assert result.exit_code == 1 and "set GRAFANA_TOKEN" in result.output


def test_grafana_under_a_sub_path(fake: FakeGrafana) -> None:
    with GrafanaClient(f"{fake.url}/grafana", TOKEN, retries=0) as client, \
            pytest.raises(GrafanaError, match="404"):
        client.annotate("kpimon-gmv", 1, 0, None, [], "x")
    assert fake.requests[-1].path == "/grafana/api/annotations"
