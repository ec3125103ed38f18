"""Fixture registration and parallel-run grouping for the whole suite.

One way to register fixtures: every shared fixture lives in a module of ``tests/fixtures/`` and is registered
here, in :data:`pytest_plugins`; a fixture used by one directory only is defined in that directory's
``conftest.py``. Test modules import helpers (classes, functions) from ``tests.fixtures``, never fixtures.

``make test`` runs the suite on two xdist workers with ``--dist loadgroup``, scheduled by :func:`work_unit`:
each test module is one unit of work, so a module-scoped worker or broker stays on one xdist worker, and
the modules that use the session's shop run (``shop_run``: a worker, a simulator, Redis and receivers for
several minutes) are one unit, so the shop runs once, not once per xdist worker.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

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

#: The test modules that use the session's shop run; they form one xdist work unit, so the shop runs once.
#: Checked at collection: a module that uses ``shop_run`` and is not listed here fails the run.
SHOP_MODULES = (
    "tests/grafana/test_promql.py",
    "tests/grafana/test_queries_live.py",
    "tests/streams/test_shop_anomaly.py",
    "tests/streams/test_shop_e2e.py",
)


def work_unit(nodeid: str) -> str:
    """The xdist work unit of a test: its module, or ``shop_run`` for the shop's users.

    >>> work_unit("tests/streams/test_torture.py::test_kill[3]"), work_unit("tests/streams/test_shop_e2e.py::t")
    ('tests/streams/test_torture.py', 'shop_run')
    """
    module = nodeid.split("::")[0]
    return "shop_run" if module in SHOP_MODULES else module


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadgroup`` schedules by :func:`work_unit`. (xdist's own loadgroup reads ``xdist_group`` marks
    into node ids, which pytest 9.2 no longer lets it change: every test became a unit of its own.)"""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):  # type: ignore[misc]  # xdist ships no type information
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return ModuleScheduling(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep :data:`SHOP_MODULES` complete; on an xdist worker, hand out the slow modules first, so the two
    workers finish together instead of one starting a long end-to-end module last."""
    unlisted = sorted({item.nodeid.split("::")[0] for item in items
                       if "shop_run" in getattr(item, "fixturenames", ()) and work_unit(item.nodeid) != "shop_run"})
    if unlisted:
        raise pytest.UsageError(f"{', '.join(unlisted)} use shop_run: add them to SHOP_MODULES in tests/conftest.py")
    if hasattr(config, "workerinput"):   # an xdist worker (the controller does not collect)
        # By work unit, stable: a unit's tests keep their order. The shop's run is one unit, and its order matters:
        # test_shop_e2e's kill -9 (with the simulator paused, whose catch-up burst then comes in too late and is
        # dead-lettered for minutes) must come after the board queries that read the undisturbed run.
        slow = {work_unit(item.nodeid) for item in items if item.get_closest_marker("slow") is not None}
        items.sort(key=lambda item: work_unit(item.nodeid) not in slow)


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
