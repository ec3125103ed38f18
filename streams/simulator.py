"""A simulated online shop: visits → orders → payments → refunds with daily and weekly rhythm,
noise, and scripted incidents. The model is pure (``Shop.tick`` returns events); ``run`` sends
them to Kafka in batched messages.

Incidents (``--incident NAME[:ARG][@START_MIN[+DURATION_MIN]]``, simulated minutes from the start):

================== ===================================================================
payment_outage     payments of one region (ARG, default ``east``) all fail: its paid orders drop to 0
conversion_drift   conversion slowly drifts down to half over the incident
traffic_spike      visits ×4 with no extra orders (bots): conversion rate falls
late_events        5 % of events arrive 1-3 windows late and out of order (some beyond grace)
malformed          a burst of bad messages: broken JSON, missing fields, wrong types, NaN, unknown KPI
feed_stop          the producer of one source (ARG, default ``payments``) stops: its events are not sent
================== ===================================================================
"""

from __future__ import annotations

import asyncio
import math
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = ["INCIDENTS", "Incident", "Shop", "parse_incident", "run"]

REGIONS = (("east", 0.35), ("north", 0.25), ("south", 0.25), ("west", 0.15))
CHANNELS = (("app", 0.55), ("web", 0.35), ("mini_program", 0.10))
INCIDENTS = ("payment_outage", "conversion_drift", "traffic_spike", "late_events", "malformed", "feed_stop")
TOPICS = {"visits": "events.visits", "orders": "events.orders", "payments": "events.payments",
          "refunds": "events.refunds", "samples": "kpi.samples"}


@dataclass(frozen=True, slots=True)
class Incident:
    name: str
    arg: str | None = None
    start_min: float = 10.0
    duration_min: float = 20.0

    def active(self, sim_min: float) -> bool:
        return self.start_min <= sim_min < self.start_min + self.duration_min

    def progress(self, sim_min: float) -> float:
        return min(1.0, max(0.0, (sim_min - self.start_min) / self.duration_min))

    def describe(self) -> str:
        arg = f":{self.arg}" if self.arg else ""
        return f"{self.name}{arg} from minute {self.start_min:g} for {self.duration_min:g} min"


def parse_incident(text: str) -> Incident:
    """``payment_outage:east@10+20`` → Incident; clear errors for unknown names.

    >>> parse_incident("payment_outage:south@5+10")
    Incident(name='payment_outage', arg='south', start_min=5.0, duration_min=10.0)
    >>> parse_incident("feed_stop:orders@30+8").describe()
    'feed_stop:orders from minute 30 for 8 min'
    >>> parse_incident("feed_stop:payment")
    Traceback (most recent call last):
    ...
    ValueError: unknown source 'payment'; known: visits, orders, payments, refunds, samples
    """
    spec, _, timing = text.partition("@")
    name, _, arg = spec.partition(":")
    if name not in INCIDENTS:
        raise ValueError(f"unknown incident {name!r}; known: {', '.join(INCIDENTS)}")
    if name == "payment_outage" and arg and arg not in dict(REGIONS):
        raise ValueError(f"unknown region {arg!r}; known: {', '.join(dict(REGIONS))}")
    if name == "feed_stop" and arg and arg not in TOPICS:
        raise ValueError(f"unknown source {arg!r}; known: {', '.join(TOPICS)}")
    start, _, dur = timing.partition("+")
    try:
        return Incident(name, arg or None, float(start) if start else 10.0, float(dur) if dur else 20.0)
    except ValueError:
        raise ValueError(f"bad incident timing {timing!r}: use @START_MIN+DURATION_MIN, e.g. @10+20") from None


def seasonality(ts: float) -> float:
    """Traffic multiplier: quiet nights, a late-morning and an evening peak, busier weekends (UTC)."""
    hour = (ts % 86400) / 3600
    day = math.exp(-((hour - 11) ** 2) / 8) * 0.7 + math.exp(-((hour - 21) ** 2) / 6) + 0.15
    weekday = int(ts // 86400 + 4) % 7          # 1970-01-01 was a Thursday; 5, 6 = Sat, Sun
    return day * (1.2 if weekday >= 5 else 1.0)


def _pick(rng: random.Random, table: tuple[tuple[str, float], ...]) -> str:
    x, acc = rng.random(), 0.0
    for name, share in table:
        acc += share
        if x < acc:
            return name
    return table[-1][0]


@dataclass
class Shop:
    """The shop model. ``visits_per_s`` is the visit rate at a seasonality of 1."""

    visits_per_s: float = 50.0
    conversion: float = 0.08
    payment_failure: float = 0.03
    refund_rate: float = 0.03
    incidents: tuple[Incident, ...] = ()
    seed: int = 7
    start_ts: float = field(default_factory=time.time)
    #: the traffic curve runs this many seconds ahead of the event timestamps (see :meth:`at_hour`)
    clock_shift_s: float = 0.0
    rng: random.Random = field(init=False)
    late_buffer: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def at_hour(self, hour: float) -> Shop:
        """Run the traffic curve as if the shop's day were at ``hour`` (UTC) at the start.

        Event timestamps stay on the real clock; only the curve moves, so a test
        or a demo sees the same busy late morning at any time of day (at 04:00
        UTC the real curve gives a region a handful of paid orders a minute, and
        an outage to zero is within its noise).
        """
        if not 0.0 <= hour < 24.0:
            raise ValueError(f"hour must be in [0, 24), got {hour!r}")
        self.clock_shift_s = (hour * 3600.0 - self.start_ts % 86400.0) % 86400.0
        return self

    def _on(self, name: str, sim_min: float) -> Incident | None:
        return next((i for i in self.incidents if i.name == name and i.active(sim_min)), None)

    def tick(self, ts: float, dt: float) -> list[tuple[str, dict[str, Any] | bytes]]:
        """Events for the simulated interval [ts, ts + dt): (source, event) pairs; bytes are raw bad messages."""
        sim_min = (ts - self.start_ts) / 60
        rng = self.rng
        out: list[tuple[str, dict[str, Any] | bytes]] = []
        rate = self.visits_per_s * seasonality(ts + self.clock_shift_s) * dt
        spike = self._on("traffic_spike", sim_min)
        drift = self._on("conversion_drift", sim_min)
        conversion = self.conversion * (1 - 0.5 * drift.progress(sim_min) if drift else 1)
        n_visits = _poisson(rng, rate)
        n_bots = _poisson(rng, rate * 3) if spike else 0
        outage = self._on("payment_outage", sim_min)
        for k in range(n_visits + n_bots):
            t = ts + rng.random() * dt
            region, channel = _pick(rng, REGIONS), _pick(rng, CHANNELS)
            user = f"u{rng.randrange(200_000)}"
            out.append(("visits", {"event_id": uuid.UUID(int=rng.getrandbits(128)).hex, "ts": round(t * 1000),
                                   "user_id": user, "region": region, "channel": channel}))
            if k >= n_visits or rng.random() >= conversion:
                continue
            amount = round(rng.lognormvariate(5.0, 0.6), 2)
            order = f"o{rng.getrandbits(48):x}"
            common = {"order_id": order, "user_id": user, "region": region, "channel": channel, "amount": amount}
            out.append(("orders", {"event_id": order, "ts": round((t + 5) * 1000), "status": "created", **common}))
            failed = rng.random() < self.payment_failure or (outage and region == (outage.arg or "east"))
            out.append(("payments", {"event_id": order + "p", "ts": round((t + 20) * 1000),
                                     "status": "failed" if failed else "success", **common}))
            if not failed and rng.random() < self.refund_rate:
                out.append(("refunds", {"event_id": order + "r", "ts": round((t + 40) * 1000), **common}))
        if int(ts // 60) != int((ts + dt) // 60):      # one open-tickets sample per simulated minute
            out.append(("samples", {"kpi": "tickets_open", "ts": round((ts + dt) * 1000),
                                    "value": round(40 + 20 * seasonality(ts) + rng.gauss(0, 3))}))
        if self._on("late_events", sim_min):
            out = self._delay_some(ts, out)
        if self._on("malformed", sim_min):
            out.extend(self._malformed(ts))
        out += self._release_late(ts + dt)
        stopped = self._on("feed_stop", sim_min)
        if stopped:                      # that producer is down: what it would have sent is lost
            out = [(src, ev) for src, ev in out if src != (stopped.arg or "payments")]
        return out

    def _delay_some(self, ts: float, events: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
        kept = []
        for src, ev in events:
            if isinstance(ev, dict) and src != "samples" and self.rng.random() < 0.05:
                self.late_buffer.append((ts + self.rng.choice((60, 120, 180)), src, ev))
            else:
                kept.append((src, ev))
        return kept

    def _release_late(self, until: float) -> list[tuple[str, Any]]:
        due = [(src, ev) for at, src, ev in self.late_buffer if at <= until]
        self.late_buffer = [item for item in self.late_buffer if item[0] > until]
        self.rng.shuffle(due)
        return due

    def _malformed(self, ts: float) -> list[tuple[str, Any]]:
        t = round(ts * 1000)
        return [
            ("orders", b'{"event_id": "broken", "ts": '),
            ("orders", {"event_id": "no-time", "region": "east", "channel": "app", "amount": 10}),
            ("payments", {"event_id": "bad-amount", "ts": t, "status": "success", "amount": "12.5",
                          "region": "east", "channel": "app"}),
            ("payments", b'{"event_id": "nan", "ts": %d, "status": "success", "amount": NaN}' % t),
            ("samples", {"kpi": "no_such_kpi", "ts": t, "value": 1}),
            ("visits", b"[1, 2, 3]"),
        ]


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    threshold, k, p = math.exp(-lam), 0, rng.random()
    while p > threshold:
        k += 1
        p *= rng.random()
    return k


async def run(bootstrap: str, shop: Shop, *, speedup: float, duration_s: float | None, batch: int = 100,
              tick_s: float = 0.1, on_tick: Callable[[float, dict[str, int]], None] | None = None) -> dict[str, int]:
    """Produce the shop's events in (simulated) real time until ``duration_s`` of wall time passed."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_request_size=4 * 1024 * 1024,
                                request_timeout_ms=30_000)
    await producer.start()
    sent: dict[str, int] = {}
    wall0, sim = time.monotonic(), shop.start_ts
    try:
        while duration_s is None or time.monotonic() - wall0 < duration_s:
            dt = tick_s * speedup
            events = shop.tick(sim, dt)
            sim += dt
            await _send(producer, events, batch, sent)
            if on_tick:
                on_tick(sim, sent)
            lag = wall0 + (sim - shop.start_ts) / speedup - time.monotonic()
            if lag > 0:
                await asyncio.sleep(lag)
        await producer.flush()
    finally:
        await producer.stop()
    return sent


async def _send(producer: Any, events: list[tuple[str, Any]], batch: int, sent: dict[str, int]) -> None:
    by_topic: dict[str, list[Any]] = {}
    for src, ev in events:
        topic = TOPICS[src]
        if isinstance(ev, bytes):
            await producer.send(topic, ev)        # bad messages go alone, as a broken client would send them
            sent["malformed"] = sent.get("malformed", 0) + 1
            continue
        by_topic.setdefault(topic, []).append(ev)
        sent[src] = sent.get(src, 0) + 1
    for topic, evs in by_topic.items():
        for i in range(0, len(evs), batch):
            chunk = evs[i:i + batch]
            await producer.send(topic, orjson.dumps(chunk if batch > 1 else chunk[0]))
