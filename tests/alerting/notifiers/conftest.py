"""Fixtures for notifier tests: the fake vendor servers and the SMTP server (real sockets, no mocks)."""

from tests.fixtures.im import (  # noqa: F401 - re-exported as fixtures
    dingtalk_server,
    feishu_server,
    im_server,
    refused_url,
    slack_server,
    teams_server,
    webhook_server,
    wecom_server,
)
from tests.fixtures.smtp_server import (  # noqa: F401 - re-exported as fixtures
    smtp_cert,
    smtp_server,
    smtp_server_factory,
    smtps_server,
)
