"""Shared HTTP plumbing for the webhook-style notifiers.

One place decides how transport failures and HTTP statuses map to :class:`Outcome`, so every channel retries the
same way (alertmanager's ``notify.RetryCodes``: 5xx and 429 are worth retrying, other 4xx are not) and no
channel can leak its URL: httpx exception messages and httpx's own "HTTP Request: POST <url>" log line both
contain the full URL, which for IM robots *is* the credential.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import httpx

from .base import Outcome, redact

__all__ = ["HttpResult", "post_json", "response_snippet", "status_outcome", "url_secrets"]

_SNIPPET = 200


class _RedactHttpxUrls(logging.Filter):
    """Rewrite httpx's request log line so it names only scheme, host and port, never path or query."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(_scrub(arg) for arg in record.args)
        return True


def _scrub(arg: object) -> object:
    if isinstance(arg, httpx.URL):
        return f"{arg.scheme}://{arg.host}:{arg.port or ''}/<redacted>"
    return arg


def _install_log_filter() -> None:
    # httpx logs every request URL at INFO on the "httpx" logger; a logger-level filter runs before the
    # record propagates to any handler, so it covers handlers we do not own (pytest's caplog, the app's).
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, _RedactHttpxUrls) for f in logger.filters):
        logger.addFilter(_RedactHttpxUrls())


_install_log_filter()


def url_secrets(url: str) -> list[str]:
    """The pieces of a webhook URL that may appear on their own in error text: the URL, path, query values.

    Examples
    --------
    >>> url_secrets("https://h/robot/send?access_token=t0k")[-1]
    't0k'
    >>> "https://h/robot/send?access_token=t0k" in url_secrets("https://h/robot/send?access_token=t0k")
    True
    """
    parts = urlsplit(url)
    pieces = [url, url.split("?", 1)[0], parts.path, parts.query, parts.password or "", parts.username or ""]
    for _, value in parse_qsl(parts.query, keep_blank_values=False):
        pieces += [value, unquote(value)]
    # Path segments hold the token for Slack/Feishu/Teams; skip short generic ones like "robot" or "send".
    pieces += [seg for seg in parts.path.split("/") if len(seg) >= 16]
    return list(dict.fromkeys(p for p in pieces if p and p != "/"))


class HttpResult:
    """A completed HTTP exchange: status, decoded text, and JSON body when the body is JSON."""

    __slots__ = ("status", "text", "body")

    def __init__(self, response: httpx.Response) -> None:
        self.status = response.status_code
        self.text = response.text
        self.body: Any = None
        try:
            self.body = json.loads(self.text) if self.text else None
        except ValueError:
            self.body = None


async def post_json(
    url: str,
    payload: Any,
    *,
    timeout: float,
    client: httpx.AsyncClient | None = None,
    headers: Mapping[str, str] | None = None,
) -> HttpResult | Outcome:
    """POST ``payload`` as UTF-8 JSON; return the response, or an :class:`Outcome` if none arrived.

    Transport failures are retryable except ones that cannot change on retry (bad URL, unsupported scheme).
    The reason names the exception type only: httpx messages embed the URL.
    """
    content = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    send_headers = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
    try:
        if client is not None:
            response = await client.post(url, content=content, headers=send_headers, timeout=timeout)
        else:
            async with httpx.AsyncClient(timeout=httpx.Timeout(timeout), follow_redirects=False) as own:
                response = await own.post(url, content=content, headers=send_headers)
    except httpx.TimeoutException as exc:
        return Outcome(False, True, f"timeout after {timeout:g}s ({type(exc).__name__})")
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        return Outcome(False, False, f"invalid webhook url ({type(exc).__name__})")
    except httpx.TransportError as exc:
        return Outcome(False, True, f"connection error ({type(exc).__name__})")
    except httpx.HTTPError as exc:
        return Outcome(False, False, f"http error ({type(exc).__name__})")
    return HttpResult(response)


def response_snippet(result: HttpResult, secrets: Iterable[str]) -> str:
    """A short, redacted excerpt of the response body for reasons (servers may echo the request)."""
    # Redact before cutting: a cut through a secret would leave a prefix that no longer matches it.
    return redact(result.text, secrets)[:_SNIPPET].replace("\n", " ")


def status_outcome(result: HttpResult, secrets: Iterable[str]) -> Outcome | None:
    """Classify a non-2xx status: 429 and 5xx retryable, other statuses not. ``None`` for 2xx."""
    if 200 <= result.status < 300:
        return None
    retryable = result.status == 429 or result.status >= 500
    return Outcome(False, retryable, f"HTTP {result.status}: {response_snippet(result, secrets)}")
