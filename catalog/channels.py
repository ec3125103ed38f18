"""Channel specs: one pydantic model per notifier kind, discriminated by ``type`` (the catalog's ``channels``).

The notifiers that send through them are ``alerting.notifiers`` (one module per kind, listed in its registry; a
test checks every spec here has one).

Secrets (SMTP passwords, signing secrets and every webhook URL *as a whole*, since IM webhook URLs carry their
token in the path or query) are :class:`~pydantic.SecretStr`, so dumps and ``repr`` hide them; validation errors
hide the input for the same reason (``hide_input_in_errors``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from catalog.alerts import Loc, pydantic_problems

__all__ = [
    "ChannelSpec",
    "DingTalkSpec",
    "EmailSpec",
    "FeishuSpec",
    "Language",
    "SlackSpec",
    "TeamsSpec",
    "WebhookSpec",
    "WeComSpec",
    "parse_channel",
    "parse_channels",
]

Language = Literal["en", "zh"]


class _Spec(BaseModel):
    """Fields every channel has."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True, populate_by_name=True)

    # None: the route's language (every route says which language its people read); set: this channel's wins.
    language: Language | None = None
    timeout_seconds: float = Field(default=5.0, gt=0, le=120)


class _UrlSpec(_Spec):
    """A channel that posts to one secret webhook URL."""

    url: SecretStr

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: SecretStr) -> SecretStr:
        # The message must not echo the URL: it is the credential.
        if not value.get_secret_value().startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        return value


class EmailSpec(_Spec):
    """SMTP delivery. ``ssl`` is implicit TLS (port 465); ``starttls`` upgrades a plain connection."""

    type: Literal["email"] = "email"
    host: str
    port: int = Field(default=587, gt=0, lt=65536)
    starttls: bool = True
    ssl: bool = False
    username: str | None = None
    password: SecretStr | None = None
    from_: str = Field(alias="from")
    to: list[str] = Field(min_length=1)
    # A private relay's CA (PEM file) to trust in addition to the system store; verification stays on.
    ca_file: str | None = None
    # Last resort for relays with unverifiable certificates; off by default.
    verify_tls: bool = True

    @field_validator("username", "password", "ca_file", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # `${SMTP_USER:-}` in a catalog expands to "": an empty setting means "not set".
        return None if value == "" else value

    @model_validator(mode="after")
    def _auth_pair(self) -> EmailSpec:
        # ssl=True (implicit TLS) makes starttls moot, so the pair is not rejected.
        if self.password is not None and not self.username:
            raise ValueError("password given without username")
        return self


class SlackSpec(_UrlSpec):
    """Slack incoming webhook."""

    type: Literal["slack"] = "slack"


class TeamsSpec(_UrlSpec):
    """Microsoft Teams Workflows (Power Automate) webhook posting an Adaptive Card."""

    type: Literal["teams"] = "teams"


class DingTalkSpec(_UrlSpec):
    """DingTalk custom robot; ``secret`` enables the signed ("加签") security mode."""

    type: Literal["dingtalk"] = "dingtalk"
    secret: SecretStr | None = None
    at_mobiles: list[str] = Field(default_factory=list)


class FeishuSpec(_UrlSpec):
    """Feishu / Lark custom bot; ``secret`` enables signature verification."""

    type: Literal["feishu"] = "feishu"
    secret: SecretStr | None = None


class WeComSpec(_UrlSpec):
    """WeCom (WeChat Work) group robot."""

    type: Literal["wecom"] = "wecom"
    mentioned_mobile_list: list[str] = Field(default_factory=list)


class WebhookSpec(_UrlSpec):
    """Generic webhook posting Alertmanager's webhook_config JSON (version "4")."""

    type: Literal["webhook"] = "webhook"
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    max_alerts: int = Field(default=0, ge=0)  # 0 = no limit, as in alertmanager


ChannelSpec = Annotated[
    EmailSpec | SlackSpec | TeamsSpec | DingTalkSpec | FeishuSpec | WeComSpec | WebhookSpec,
    Field(discriminator="type"),
]

# Validating through this adapter hides inputs in error messages even when a parent model's config would not.
_ADAPTER: TypeAdapter[ChannelSpec] = TypeAdapter(ChannelSpec, config=ConfigDict(hide_input_in_errors=True))


def parse_channel(data: object) -> ChannelSpec:
    """Validate one channel mapping (e.g. from the catalog YAML) into its spec; errors never echo secrets."""
    return _ADAPTER.validate_python(data)


def parse_channels(channels: Mapping[str, Any]) -> tuple[dict[str, ChannelSpec], list[tuple[Loc, str]]]:
    """The catalog's ``channels`` (name -> mapping): the valid specs and every problem, located at
    ``("channels", name, ...)``; messages never echo an input (it may be a secret)."""
    specs: dict[str, ChannelSpec] = {}
    problems: list[tuple[Loc, str]] = []
    for name, raw in channels.items():
        try:
            specs[name] = _ADAPTER.validate_python(raw)
        except ValidationError as exc:
            tag = raw.get("type") if isinstance(raw, Mapping) else None
            problems.extend(pydantic_problems(("channels", name), exc, tag if isinstance(tag, str) else None))
    return specs, problems
