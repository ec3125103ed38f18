"""Fixture registration and parallel-run grouping for the whole suite.

One way to register fixtures: every shared fixture lives in a module of ``tests/fixtures/`` and is registered
here, in :data:`pytest_plugins`; a fixture used by one directory only is defined in that directory's
``conftest.py``. Test modules import helpers (classes, functions) from ``tests.fixtures``, never fixtures.

``make test`` runs the suite on two xdist workers with ``--dist loadgroup``. Each test module is one unit
of work, so a module-scoped worker or broker stays on one xdist worker; every module that uses the
session's shop run (``shop_run``: a worker, a simulator, Redis and receivers for several minutes) joins
one group, so the shop runs once, not once per xdist worker.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# in dependency order: a fixture module is registered before any module that imports it (else pytest cannot
# rewrite its asserts and warns)
pytest_plugins = [
    "tests.fixtures.broker",
    "tests.fixtures.im",
    "tests.fixtures.prometheus",
    "tests.fixtures.redis_server",
    "tests.fixtures.smtp_server",
    "tests.fixtures.worker",
    "tests.fixtures.shop",
]

#: Session fixtures too costly to start on both xdist workers: their users form one group each.
SHARED_SESSIONS = ("shop_run",)


def xdist_group(item: pytest.Item) -> str:
    """The xdist work unit of a test: its module, or the shared session fixture it uses."""
    fixtures = getattr(item, "fixturenames", ())
    shared = [name for name in SHARED_SESSIONS if name in fixtures]
    return shared[0] if shared else item.nodeid.split("::")[0]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under xdist, group tests for ``--dist loadgroup`` (see the module docstring) and hand out the slow
    modules first, so the two workers finish together instead of one starting a long end-to-end module last."""
    if getattr(config.option, "dist", "no") == "no":
        return
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(xdist_group(item)))
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)   # stable: modules stay contiguous


@pytest.fixture(scope="session", autouse=True)
def faust_datadir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Faust's data directory (``<app id>-data``, by default in the cwd: the repository) goes to this session's
    temporary directory, for every worker the tests start, so parallel sessions never share one."""
    old = os.environ.get("FAUST_DATADIR")
    os.environ["FAUST_DATADIR"] = str(tmp_path_factory.mktemp("faust") / "{conf.name}-data")
    yield
    if old is None:
        os.environ.pop("FAUST_DATADIR", None)
    else:
        os.environ["FAUST_DATADIR"] = old
