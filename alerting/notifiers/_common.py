"""Small pieces every webhook notifier shares: construction and the send skeleton."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import httpx

from catalog.channels import _UrlSpec

from ._http import HttpResult, post_json, status_outcome, url_secrets
from .base import Notification, Outcome

__all__ = ["WebhookBase", "fit_bytes"]


def fit_bytes(text: str, limit: int, more: str = "\n…") -> str:
    r"""``text`` cut at a line boundary to at most ``limit`` UTF-8 bytes, ``more`` marking the cut (a robot's
    message limit; the digest's full text is the e-mail).

    >>> fit_bytes("a\nbb\nccc", 6)
    'a\n…'
    >>> fit_bytes("short", 100)
    'short'
    """
    if len(text.encode()) <= limit:
        return text
    room = limit - len(more.encode())
    kept: list[str] = []
    for line in text.split("\n"):
        if len("\n".join([*kept, line]).encode()) > room:
            break
        kept.append(line)
    return "\n".join(kept) + more


class WebhookBase:
    """Posts one JSON document per notification to a secret URL and classifies the answer.

    Subclasses implement ``send()`` (build the payload, call :meth:`_post`) and override ``_body_outcome()``
    to read the vendor's error codes. An
    ``httpx.AsyncClient`` may be passed in to reuse connections; otherwise each send opens and closes one, which
    keeps a notifier usable from any event loop.
    """

    def __init__(
        self,
        spec: _UrlSpec,
        *,
        extra_secrets: tuple[str, ...] = (),
        clock: Callable[[], float] = time.time,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        url = spec.url.get_secret_value()
        self._raw_url = url
        self.language = spec.language
        self._timeout = spec.timeout_seconds
        self._clock = clock
        self._client = client
        self._secrets = tuple(url_secrets(url)) + tuple(s for s in extra_secrets if s)

    def __repr__(self) -> str:
        # Never the URL: it is the credential.
        return f"{type(self).__name__}(url=<redacted>, timeout_seconds={self._timeout})"

    def _localize(self, n: Notification) -> Notification:
        # A channel's own language wins (a Chinese-speaking team's robot always gets Chinese); without one the
        # route's language, which the notification carries, is used.
        if self.language is None or n.language == self.language:
            return n
        return dataclasses.replace(n, language=self.language)

    async def _post(self, url: str, payload: Any, headers: dict[str, str] | None = None) -> Outcome:
        result = await post_json(url, payload, timeout=self._timeout, client=self._client, headers=headers)
        if isinstance(result, Outcome):
            return result
        # Some vendors put their error code in 4xx bodies too (Feishu 9499); a 5xx/429 is retryable whatever
        # the body says.
        if result.status == 429 or result.status >= 500:
            outcome = status_outcome(result, self._secrets)
            assert outcome is not None
            return outcome
        vendor = self._body_outcome(result)
        if vendor is not None:
            return vendor
        return status_outcome(result, self._secrets) or Outcome(True, False, f"HTTP {result.status}")

    def _body_outcome(self, result: HttpResult) -> Outcome | None:
        """Vendor-specific failure hidden in the body; ``None`` when the body reports no error."""
        return None
