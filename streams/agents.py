"""What every agent of the worker shares: durable sends, the failure policy, test-only fault injection.

Durable writes are awaited, in order. Faust's ``send_soon`` buffer is not enough: its flush gives up after
0.1 s without a message sent (``ProducerBuffer.flush_atmost``), so an offset commit could run ahead of
changelog records still in the buffer, and a kill -9 then lost the events between (measured: 7 % of the
torture test's events). The stages send their partials, dead letters, changelog records and values straight
to the producer and await their acknowledgements (:class:`Writes`) before a batch ends, i.e. before Faust can
ack and commit its offsets.

Failure policy: bad input never raises out of an agent (it becomes a dead letter, or a logged and counted bad
partial). Anything else an agent raises is a bug: it is logged once with its traceback and the *process* exits
with status 70 (:data:`EXIT_AGENT_FAILED`), so the orchestrator restarts the worker, which recovers from the
changelogs like after kill -9. Faust's own behaviour, restarting the agent in the same process, left a source
silently stalled. ``KPIMON_FAULT_INJECT`` (test only, see :class:`FaultInjection`) makes an agent raise on
purpose to test exactly that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["EXIT_AGENT_FAILED", "Agent", "FaultInjection", "SendFn", "Writes", "fail_loudly", "fail_worker", "limit_fetch_wait",
           "tick_guard"]

log = logging.getLogger("kpimon.worker")
EXIT_AGENT_FAILED = 70          # EX_SOFTWARE: an agent raised (a bug, not bad input)

#: ``send(topic, key, value, partition)`` -> the broker's acknowledgement to await (Faust's ``producer.send``)
SendFn = Callable[[str, bytes | None, bytes | None, int | None], Awaitable[Awaitable[Any]]]
Agent = Callable[[Any], Awaitable[None]]


class Writes:
    """Sends whose delivery a flush awaits (see the module docstring for why not ``send_soon``)."""

    def __init__(self, send: SendFn) -> None:
        self._send = send
        self.pending: list[Awaitable[Any]] = []

    async def send(self, topic: str, key: bytes | None, value: bytes | None, partition: int | None = None) -> None:
        self.pending.append(await self._send(topic, key, value, partition))

    async def wait(self) -> None:
        """Return once every send so far is acknowledged by the broker (raises if one failed)."""
        pending, self.pending = self.pending, []
        if pending:
            await asyncio.gather(*pending)


class FaultInjection:
    """TEST ONLY. ``KPIMON_FAULT_INJECT=stage1[:N]`` (or ``stage2[:N]``) makes that agent raise a RuntimeError
    on its Nth message (default 1st) since start, to test that an agent failure stops the worker loudly.
    Never set it in production.

    >>> FaultInjection("").check("stage1")
    >>> FaultInjection("stage3")
    Traceback (most recent call last):
    ...
    ValueError: KPIMON_FAULT_INJECT='stage3': use stage1[:N] or stage2[:N]
    """

    def __init__(self, spec: str) -> None:
        self.stage: str | None = None
        self.left = 0
        if not spec:
            return
        stage, _, nth = spec.partition(":")
        if stage not in ("stage1", "stage2") or not (nth or "1").isdigit() or int(nth or "1") < 1:
            raise ValueError(f"KPIMON_FAULT_INJECT={spec!r}: use stage1[:N] or stage2[:N]")
        log.warning("KPIMON_FAULT_INJECT=%s: this worker will fail on purpose (test only)", spec)
        self.stage, self.left = stage, int(nth or "1")

    @classmethod
    def from_env(cls) -> FaultInjection:
        return cls(os.environ.get("KPIMON_FAULT_INJECT", ""))

    def check(self, stage: str) -> None:
        """Called once per message of ``stage``: raise on the Nth."""
        if self.stage == stage:
            self.left -= 1
            if self.left == 0:
                raise RuntimeError(f"KPIMON_FAULT_INJECT: injected fault in {stage}")


def fail_loudly(what: str, agent: Agent) -> Agent:
    """The agent, but an exception out of it ends the process (see the module docstring), not just the agent."""
    async def run(stream: Any) -> None:
        try:
            await agent(stream)
        except Exception:
            fail_worker(what)
    run.__name__ = agent.__name__
    return run


def fail_worker(what: str) -> None:
    """Log the exception being handled once, with its traceback, and end the process non-zero now.

    ``os._exit``: Faust would catch a SystemExit in the agent and restart the agent in-process. Exiting
    hard is what kill -9 does, which the design recovers from (changelogs; offsets never ahead of state)."""
    log.critical("%s failed: a bug, not bad input; exiting with status %d so the worker is restarted",
                 what, EXIT_AGENT_FAILED, exc_info=True)
    for handler in [*logging.getLogger().handlers, *log.handlers]:
        with contextlib.suppress(Exception):      # exiting anyway
            handler.flush()
    os._exit(EXIT_AGENT_FAILED)


def tick_guard(coro: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
    """A timer callback that logs what it raises instead of ending the timer."""
    async def run() -> None:
        try:
            await coro()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("tick failed")
    return run


def limit_fetch_wait(max_wait_ms: int) -> None:
    """Faust hard-codes ``fetch_max_wait_ms=1500`` for its consumer, and the embedded broker holds a fetch
    for the full wait even when data arrives meanwhile: every hop (source → partials) would cost up to
    1.5 s. Give Faust's driver an AIOKafkaConsumer factory with a shorter wait (idempotent)."""
    import types

    import aiokafka
    from faust.transport.drivers import aiokafka as driver

    if getattr(driver.aiokafka, "_kpimon_wait", None) == max_wait_ms:  # type: ignore[attr-defined]
        return

    def consumer(*args: Any, **kwargs: Any) -> aiokafka.AIOKafkaConsumer:
        kwargs["fetch_max_wait_ms"] = max_wait_ms
        return aiokafka.AIOKafkaConsumer(*args, **kwargs)

    proxy = types.ModuleType("aiokafka_for_faust")
    proxy.__dict__.update(aiokafka.__dict__)
    proxy.AIOKafkaConsumer = consumer  # type: ignore[attr-defined]
    proxy._kpimon_wait = max_wait_ms  # type: ignore[attr-defined]
    driver.aiokafka = proxy  # type: ignore[attr-defined]
