"""Push boards and write annotations through Grafana's HTTP API.

Built on ``grafana-client`` (the maintained successor of the archived ``grafana_api`` package: same element
API, current Grafana endpoints, typed errors per status). This wrapper adds what kpimon needs around it:
explicit timeouts, retries with exponential backoff on 5xx / timeouts / connection errors (never on 4xx: a bad
token or a conflict does not get better by asking again), errors that never contain the token, and the
annotation shapes kpimon uses for fired/resolved alerts and drift events.

Endpoints (https://grafana.com/docs/grafana/latest/developers/http_api/): ``POST /api/dashboards/db``
(``{dashboard, folderUid, overwrite, message}``), ``GET``/``POST /api/folders``, ``POST /api/annotations``
(``{dashboardUID, panelId, time, timeEnd, tags, text}``, epoch milliseconds).

Exceptions::

    Exception
     └── GrafanaError              .status: HTTP status or None
          ├── GrafanaAuthError     401/403
          ├── GrafanaConflictError 412 (changed by someone else / name exists)
          └── GrafanaUnavailable   5xx, timeout, connection error, after the last retry
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, TypeVar

from grafana_client.api import GrafanaApi
from grafana_client.client import (
    GrafanaClientError,
    GrafanaException,
    GrafanaServerError,
    GrafanaTimeoutError,
)
from niquests.exceptions import RequestException

from catalog import Catalog
from grafana.dashboards import PANEL, dashboard_uid

__all__ = [
    "TOKEN_ENV", "GrafanaAuthError", "GrafanaClient", "GrafanaConflictError", "GrafanaError",
    "GrafanaUnavailable",
]

log = logging.getLogger(__name__)
T = TypeVar("T")
TOKEN_ENV = "GRAFANA_TOKEN"


class GrafanaError(Exception):
    """A Grafana call failed; the message names the operation and Grafana's reason, never the token."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class GrafanaAuthError(GrafanaError):
    """401/403: the token is missing, wrong, or lacks the permission."""


class GrafanaConflictError(GrafanaError):
    """412: the board was changed by someone else, or a board with that name exists (use overwrite)."""


class GrafanaUnavailable(GrafanaError):
    """Grafana did not answer successfully after every retry (5xx, timeout, connection error)."""


class GrafanaClient:
    """Grafana API for kpimon: folders, boards, annotations.

    ``sleep`` is injected so tests need no wall-clock waits.
    """

    def __init__(self, url: str, token: str | None, *, timeout: float = 5.0, retries: int = 3,
                 backoff: float = 0.5, sleep: Callable[[float], None] = time.sleep) -> None:
        self.url = url.rstrip("/")
        self._token = token or ""
        # The trailing slash keeps a sub-path (https://host/grafana/) intact: grafana-client appends "api".
        self._api = GrafanaApi.from_url(self.url + "/", credential=token or None, timeout=timeout)
        self.retries, self.backoff, self._sleep = retries, backoff, sleep

    @classmethod
    def from_env(cls, url: str, **kwargs: Any) -> GrafanaClient:
        """Client with the token from ``$GRAFANA_TOKEN`` (a service-account token, sent as Bearer)."""
        token = os.environ.get(TOKEN_ENV, "")
        if not token:
            raise GrafanaAuthError(f"set {TOKEN_ENV} to a Grafana service-account token (Editor role)")
        return cls(url, token, **kwargs)

    def close(self) -> None:
        """Close the HTTP session."""
        self._api.client.s.close()

    def __enter__(self) -> GrafanaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"GrafanaClient(url={self.url!r}, token={'***' if self._token else None})"

    # --- plumbing -------------------------------------------------------------------------------------------

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """Run ``fn``; retry transient failures with exponential backoff; map errors to GrafanaError."""
        for attempt in range(self.retries + 1):
            try:
                return fn()
            except GrafanaClientError as exc:
                raise self._client_error(what, exc) from None
            except (GrafanaServerError, GrafanaTimeoutError, GrafanaException, RequestException) as exc:
                status = getattr(exc, "status_code", None) or None
                reason = self._redact(f"{type(exc).__name__}: {getattr(exc, 'message', exc)}")
                if attempt == self.retries:
                    raise GrafanaUnavailable(f"{what} failed after {attempt + 1} attempts: {reason}",
                                             status) from None
                delay = self.backoff * 2 ** attempt
                log.warning("%s: %s; retry %d/%d in %.1fs", what, reason, attempt + 1, self.retries, delay)
                self._sleep(delay)
        raise AssertionError("unreachable")

    def _client_error(self, what: str, exc: GrafanaClientError) -> GrafanaError:
        body = exc.response if isinstance(exc.response, dict) else {}
        reason = self._redact(str(body.get("message") or exc.message))
        status = exc.status_code
        if status in (401, 403):
            return GrafanaAuthError(f"{what}: {status} {reason} (check {TOKEN_ENV} and its role)", status)
        if status == 412:
            return GrafanaConflictError(f"{what}: 412 {reason} ({body.get('status', 'conflict')})", status)
        return GrafanaError(f"{what}: {status} {reason}", status)

    # --- folders and boards ---------------------------------------------------------------------------------

    def ensure_folder(self, title: str, uid: str) -> str:
        """The folder's uid, creating the folder if it does not exist."""
        try:
            self._call(f"get folder {uid}", lambda: self._api.folder.get_folder(uid))
            return uid
        except GrafanaError as exc:
            if exc.status != 404:
                raise
        created = self._call(f"create folder {uid}", lambda: self._api.folder.create_folder(title, uid=uid))
        return str(created.get("uid", uid))

    def push_dashboard(self, board: Mapping[str, Any], folder_uid: str | None = None, *,
                       overwrite: bool = True, message: str = "kpimon dashboards push") -> dict[str, Any]:
        """Create or replace ``board`` (matched by uid); returns Grafana's answer (id, uid, url, version)."""
        payload: dict[str, Any] = {"dashboard": {**board, "id": None}, "overwrite": overwrite, "message": message}
        if folder_uid:
            payload["folderUid"] = folder_uid
        result: dict[str, Any] = self._call(f"push dashboard {board.get('uid')}",
                                            lambda: self._api.dashboard.update_dashboard(payload))
        log.info("pushed dashboard %s (version %s)", result.get("uid"), result.get("version"))
        return result

    def push_all(self, boards: Mapping[str, Mapping[str, Any]], folder_title: str, folder_uid: str,
                 progress: Callable[[str], None] = lambda _: None) -> list[dict[str, Any]]:
        """Ensure the folder, then push every board; ``progress`` gets one line per board."""
        folder = self.ensure_folder(folder_title, folder_uid)
        results = []
        for uid, board in boards.items():
            result = self.push_dashboard(board, folder)
            progress(f"{uid}: {self.url}{result.get('url', '')} (version {result.get('version')})")
            results.append(result)
        return results

    # --- annotations ----------------------------------------------------------------------------------------

    def annotate(self, dashboard: str, panel_id: int | None, start_ms: int, end_ms: int | None,
                 tags: Sequence[str], text: str) -> int:
        """Add an annotation (a region when ``end_ms`` is given) and return its id."""
        payload: dict[str, Any] = {"dashboardUID": dashboard, "time": int(start_ms), "tags": list(tags),
                                   "text": text}
        if panel_id is not None:
            payload["panelId"] = panel_id
        if end_ms is not None:
            payload["timeEnd"] = int(end_ms)
        result = self._call(f"annotate {dashboard}", lambda: self._api.client.POST("/annotations", json=payload))
        return int(result["id"])

    def annotate_alert(self, catalog: Catalog, kpi: str, labels: Mapping[str, str],
                       state: Literal["firing", "resolved"], start_s: float, end_s: float | None,
                       text: str, severity: str = "warning") -> int:
        """Mark a kpimon alert on the KPI's value panel; tags ``kpi:<name>`` feed the board's annotation query."""
        series = [f"{k}:{v}" for k, v in sorted(labels.items()) if k in catalog.kpi(kpi).dimensions]
        tags = ["kpimon", f"kpi:{kpi}", f"alert:{state}", f"severity:{severity}", *series]
        return self.annotate(dashboard_uid(catalog, kpi), PANEL["value"], round(start_s * 1000),
                             None if end_s is None else round(end_s * 1000), tags, text)

    def annotate_drift(self, catalog: Catalog, kpi: str, labels: Mapping[str, str], at_s: float,
                       text: str) -> int:
        """Mark a detector's new normal (drift) on the KPI's value panel."""
        series = [f"{k}:{v}" for k, v in sorted(labels.items()) if k in catalog.kpi(kpi).dimensions]
        return self.annotate(dashboard_uid(catalog, kpi), PANEL["value"], round(at_s * 1000), None,
                             ["kpimon", f"kpi:{kpi}", "drift", *series], text)
