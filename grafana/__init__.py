"""Boards and rules as code: Grafana dashboards, provisioning and Prometheus rules from the KPI catalog, and
a small Grafana HTTP client for pushing boards and annotating alerts.

Imports only ``catalog``, ``catalog.durations`` and third-party libraries (see the import-linter contract).

Exceptions::

    Exception
     └── GrafanaError            (client.py; .status: int | None, never carries the token)
          ├── GrafanaAuthError   401/403: bad or missing GRAFANA_TOKEN
          ├── GrafanaConflictError  412: version/name conflict (push with overwrite to replace)
          └── GrafanaUnavailable    5xx, timeouts, connection errors after all retries
"""

from grafana.dashboards import all_dashboards, dashboard_uid, kpi_dashboard, overview_dashboard, to_json
from grafana.links import dashboard_url, panel_url
from grafana.provisioning import render_artifacts, write_artifacts
from grafana.rules import alerting_rules, recording_rules, rule_file, rule_tests

__all__ = [
    "alerting_rules", "all_dashboards", "dashboard_uid", "dashboard_url", "kpi_dashboard", "overview_dashboard",
    "panel_url", "recording_rules", "render_artifacts", "rule_file", "rule_tests", "to_json",
    "write_artifacts",
]
