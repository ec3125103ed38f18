"""The Redis :class:`~alerting.store.Store` (redis.asyncio); every key starts with ``prefix`` (``kpimon:``).

Layout::

    {p}alerts            hash  fingerprint -> AlertState JSON
    {p}hist:{series}     zset  window_start -> "window_start|value"     (trimmed to the retention)
    {p}seen:{kpi}        hash  series labels JSON -> last observed (absence rules with missing_after)
    {p}incidents         hash  incident id -> IncidentRecord JSON     (the history, alerting.history)
    {p}incidents:t       zset  incident id -> starts_at               (trimmed to keep_s and cap on every write)
    {p}incidents:ack     hash  incident id -> {"by", "at"} JSON       (HSETNX: the first ack wins)
    {p}points:{kpi}      zset  window_start -> JSON [start, value, lower, upper]  (the total series, trimmed)
    {p}marker:{key}      string  a flag with a TTL (digest sent / being sent, alerting.digest_job)
    {p}newest            hash  series -> start of its newest window (revisions of older ones are history)
    {p}groups            hash  group key -> GroupState JSON
    {p}silences, {p}acks hash  id / fingerprint -> JSON
    {p}rules             hash  "kpi/rule" -> published rule spec JSON
    {p}overrides         hash  "kpi/rule" -> override fields JSON;  {p}overrides:version  counter
    {p}audit, {p}deliveries   list  newest first, capped
    {p}feedback          hash  "fingerprint|incident" -> "seq|record JSON" (kept: the review reads it later)
    {p}feedback:id       hash  "fingerprint|incident" -> "verdict\nreason" (what makes a submission the same)
    {p}feedback:log      zset  seq -> "seq|record JSON": writes in order, for the workers (capped)
    {p}feedback:seq      counter
    {p}notes             hash  "fingerprint|incident" -> calendar note JSON ("expected" occasions); {p}notes:version
    {p}outbox:due        zset  id -> next attempt time, or lease expiry while claimed (wall clock)
    {p}outbox:e:{id}     hash  payload, receiver, state, attempts, reason, token, stream, seq, ...
                               (TTL once finished)
    {p}outbox:s:{stream} zset  seq -> id: pending entries of one group on one channel, in queue order
    {p}outbox:c:{chan}   zset  created_at -> id: pending entries per channel (depth and oldest-age gauges)
    {p}outbox:channels   set   channels that had pending entries;  {p}outbox:seq  counter

Outbox state changes are Lua scripts so a claim, a lease check and its write are one atomic step.

Run Redis with AOF persistence (``appendonly yes``, ``appendfsync everysec``): this is the durable part of the
outbox, silences, acks and overrides. The client has explicit timeouts and retries a failed command once on a new
connection (a restarted Redis leaves dead pooled connections); errors beyond that reach the caller, which counts
them (:class:`alerting.health.StoreHealth`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, cast

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from alerting.acks import Ack
from alerting.history import CAP, KEEP_S, IncidentRecord, incident_id, with_ack
from alerting.lifecycle import AlertState
from alerting.silences import Silence
from alerting.store import (
    FEEDBACK_LOG_LIMIT,
    Claim,
    EntryState,
    OutboxRecord,
    RuleKey,
    StoreError,
    feedback_key,
)

__all__ = ["RedisStore"]

_LOG_LIMIT = 10_000
_DONE_TTL_S = 14 * 86400  # finished entries are kept so a re-enqueue of the same id stays a no-op

_DELETE_IF = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
return redis.call('HDEL', KEYS[1], ARGV[1])
"""
_NOTE_WINDOW = """
local before = redis.call('HGET', KEYS[1], ARGV[1])
if (not before) or tonumber(before) < tonumber(ARGV[2]) then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return before
"""
# Write one incident and trim the history in one step: by age (start before ARGV[4]) and by count (ARGV[5]).
_RECORD_INCIDENT = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[4])
local over = redis.call('ZCARD', KEYS[2]) - #old - tonumber(ARGV[5])
if over > 0 then
  for _, id in ipairs(redis.call('ZRANGE', KEYS[2], #old, #old + over - 1)) do old[#old + 1] = id end
end
for _, id in ipairs(old) do
  redis.call('HDEL', KEYS[1], id)
  redis.call('HDEL', KEYS[3], id)
  redis.call('ZREM', KEYS[2], id)
end
return #old
"""
_ENQUEUE = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local seq = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[2], 'id', ARGV[1], 'receiver', ARGV[2], 'payload', ARGV[3], 'created_at', ARGV[4],
           'next_at', ARGV[5], 'attempts', '0', 'state', 'pending', 'reason', '', 'token', '',
           'stream', ARGV[6], 'seq', seq)
redis.call('ZADD', KEYS[1], ARGV[5], ARGV[1])
if ARGV[6] ~= '' then redis.call('ZADD', ARGV[7] .. 's:' .. ARGV[6], seq, ARGV[1]) end
redis.call('ZADD', ARGV[7] .. 'c:' .. ARGV[2], ARGV[4], ARGV[1])
redis.call('SADD', ARGV[7] .. 'channels', ARGV[2])
return 1
"""
# Only the head of its stream (the oldest entry not yet delivered or dropped) may be claimed, so nothing newer
# of a group and channel is sent while an older one is pending or in flight. An entry found waiting behind its
# head is moved to the head's due time, so waiting entries cannot fill the scan and starve other streams' heads;
# _FINISH makes the next entry of the stream due again at its own time.
_CLAIM = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[6]))
local out = {}
local n = 0
for _, id in ipairs(ids) do
  if n >= tonumber(ARGV[3]) then break end
  local key = ARGV[5] .. 'e:' .. id
  local stream = redis.call('HGET', key, 'stream') or ''
  local head = true
  if stream ~= '' then
    local first = redis.call('ZRANGE', ARGV[5] .. 's:' .. stream, 0, 0)
    head = first[1] == nil or first[1] == id
    if not head then
      local at = redis.call('ZSCORE', KEYS[1], first[1])
      if at then redis.call('ZADD', KEYS[1], at, id) end
    end
  end
  if head then
    n = n + 1
    local token = ARGV[4] .. ':' .. n
    redis.call('ZADD', KEYS[1], ARGV[2], id)
    redis.call('HSET', key, 'token', token)
    out[#out + 1] = token
    out[#out + 1] = redis.call('HGET', key, 'id') or id
    out[#out + 1] = redis.call('HGET', key, 'receiver') or ''
    out[#out + 1] = redis.call('HGET', key, 'payload') or ''
    out[#out + 1] = redis.call('HGET', key, 'created_at') or '0'
    out[#out + 1] = redis.call('HGET', key, 'next_at') or '0'
    out[#out + 1] = redis.call('HGET', key, 'attempts') or '0'
    out[#out + 1] = redis.call('HGET', key, 'reason') or ''
    out[#out + 1] = stream
    out[#out + 1] = redis.call('HGET', key, 'seq') or '0'
  end
end
return out
"""
_RESCHEDULE = """
if redis.call('HGET', KEYS[2], 'token') ~= ARGV[2] then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('HSET', KEYS[2], 'next_at', ARGV[3], 'attempts', ARGV[4], 'reason', ARGV[5], 'token', '')
return 1
"""
_RENEW = """
if redis.call('HGET', KEYS[2], 'token') ~= ARGV[2] then return 0 end
return redis.call('ZADD', KEYS[1], 'XX', 'CH', ARGV[3], ARGV[1]) + 1
"""
_FINISH = """
local held = redis.call('HGET', KEYS[2], 'token')
if held ~= ARGV[2] then
  -- already finished in this state (a retry after the reply to the first finish was lost): done, not lost
  if held == '' and redis.call('HGET', KEYS[2], 'state') == ARGV[3]
     and redis.call('HGET', KEYS[2], 'done_by') == ARGV[2] then return 1 end
  return 0
end
redis.call('ZREM', KEYS[1], ARGV[1])
local stream = redis.call('HGET', KEYS[2], 'stream') or ''
if stream ~= '' then
  redis.call('ZREM', ARGV[7] .. 's:' .. stream, ARGV[1])
  local nxt = redis.call('ZRANGE', ARGV[7] .. 's:' .. stream, 0, 0)[1]
  if nxt then
    local at = redis.call('HGET', ARGV[7] .. 'e:' .. nxt, 'next_at')
    if at and redis.call('ZSCORE', KEYS[1], nxt) then redis.call('ZADD', KEYS[1], at, nxt) end
  end
end
redis.call('ZREM', ARGV[7] .. 'c:' .. (redis.call('HGET', KEYS[2], 'receiver') or ''), ARGV[1])
redis.call('HSET', KEYS[2], 'state', ARGV[3], 'attempts', ARGV[4], 'reason', ARGV[5], 'token', '', 'done_by', ARGV[2])
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[6]))
return 1
"""
# Feedback lands once: the same identity is a no-op, a changed one is written only over the identity the caller
# read (compare-and-set), with its audit entry and its place in the log, in one step.
_FEEDBACK = """
local current = redis.call('HGET', KEYS[2], ARGV[1]) or ''
if current == ARGV[2] then return 0 end
if current ~= ARGV[3] then return -1 end
local seq = redis.call('INCR', KEYS[4])
local value = seq .. '|' .. ARGV[4]
redis.call('HSET', KEYS[1], ARGV[1], value)
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], seq, value)
redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -(tonumber(ARGV[6]) + 1))
redis.call('LPUSH', KEYS[5], ARGV[5])
redis.call('LTRIM', KEYS[5], 0, tonumber(ARGV[7]) - 1)
return seq
"""
_STATS = """
local out = {}
for _, channel in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local key = ARGV[1] .. 'c:' .. channel
  local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if first[1] == nil then
    redis.call('SREM', KEYS[1], channel)
  else
    out[#out + 1] = channel
    out[#out + 1] = redis.call('ZCARD', key)
    out[#out + 1] = first[2]
  end
end
return out
"""


def _key(key: RuleKey) -> str:
    return f"{key[0]}/{key[1]}"


def _unkey(text: str) -> RuleKey:
    kpi, _, rule = text.partition("/")
    return kpi, rule


def _feedback(value: str) -> dict[str, Any]:
    seq, _, raw = value.partition("|")
    record: dict[str, Any] = json.loads(raw)
    return {**record, "seq": int(seq)}


def _record(fields: Mapping[str, str]) -> OutboxRecord:
    state = fields.get("state", "pending")
    return OutboxRecord(
        id=fields["id"],
        receiver=fields["receiver"],
        payload=fields["payload"],
        created_at=float(fields["created_at"]),
        next_at=float(fields["next_at"]),
        attempts=int(fields["attempts"]),
        state=cast(EntryState, state),
        reason=fields.get("reason", ""),
        stream=fields.get("stream", ""),
        seq=int(fields.get("seq") or 0),
    )


class RedisStore:
    """Store over one Redis database. ``RedisStore.from_url("redis://localhost:6379/0")``; a client passed in
    directly must use ``decode_responses=True``."""

    def __init__(self, client: aioredis.Redis, prefix: str = "kpimon:") -> None:
        self.redis = client
        self.p = prefix
        self._enqueue = client.register_script(_ENQUEUE)
        self._claim = client.register_script(_CLAIM)
        self._reschedule = client.register_script(_RESCHEDULE)
        self._finish = client.register_script(_FINISH)
        self._renew = client.register_script(_RENEW)
        self._stats = client.register_script(_STATS)
        self._delete_if = client.register_script(_DELETE_IF)
        self._note_window = client.register_script(_NOTE_WINDOW)
        self._record_incident = client.register_script(_RECORD_INCIDENT)
        self._feedback = client.register_script(_FEEDBACK)

    @classmethod
    def from_url(cls, url: str, prefix: str = "kpimon:", *, timeout_s: float = 2.0) -> RedisStore:
        """Connect lazily: decoded responses, ``timeout_s`` for connecting and for every reply, one retry."""
        client = aioredis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 1),
            retry_on_error=[RedisConnectionError, RedisTimeoutError],
            health_check_interval=30,
        )
        return cls(client, prefix)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.redis.aclose()

    async def ping(self) -> None:
        """Raise :class:`StoreError` with a clear message when Redis is unreachable."""
        try:
            await self.redis.ping()
        except (RedisError, OSError) as exc:
            raise StoreError(f"cannot reach Redis: {exc}") from exc

    # alert states ---------------------------------------------------------------------------------------
    async def get_alert(self, fingerprint: str) -> AlertState | None:
        raw = await self.redis.hget(self.p + "alerts", fingerprint)
        return None if raw is None else AlertState.from_dict(json.loads(raw))

    async def put_alert(self, state: AlertState) -> None:
        await self.redis.hset(self.p + "alerts", state.fingerprint, json.dumps(state.to_dict()))

    async def delete_alert(self, fingerprint: str, *, if_unchanged: AlertState | None = None) -> bool:
        if if_unchanged is None:
            return bool(await self.redis.hdel(self.p + "alerts", fingerprint))
        expected = json.dumps(if_unchanged.to_dict())
        return bool(await self._delete_if(keys=[self.p + "alerts"], args=[fingerprint, expected]))

    async def list_alerts(self) -> list[AlertState]:
        raw = await self.redis.hgetall(self.p + "alerts")
        return [AlertState.from_dict(json.loads(v)) for v in raw.values()]

    # incident history ------------------------------------------------------------------------------------
    async def record_incident(self, record: IncidentRecord, *, keep_s: float = KEEP_S, cap: int = CAP) -> None:
        keys = [self.p + "incidents", self.p + "incidents:t", self.p + "incidents:ack"]
        args: list[str | float] = [record.id, json.dumps(record.to_dict()), record.starts_at,
                                   repr(record.starts_at - keep_s), cap]
        await self._record_incident(keys=keys, args=args)

    async def ack_incident(self, fingerprint: str, starts_at: float, by: str, at: float) -> bool:
        key = incident_id(fingerprint, starts_at)
        return bool(await self.redis.hsetnx(self.p + "incidents:ack", key, json.dumps({"by": by, "at": at})))

    async def list_incidents(self, since: float = float("-inf"), until: float = float("inf")) -> list[IncidentRecord]:
        low = "-inf" if since == float("-inf") else repr(since)
        high = "+inf" if until == float("inf") else f"({until!r}"
        ids = cast("list[str]", await self.redis.zrangebyscore(self.p + "incidents:t", low, high))
        if not ids:
            return []
        raw = cast("list[str | None]", await self.redis.hmget(self.p + "incidents", ids))
        acks = cast("list[str | None]", await self.redis.hmget(self.p + "incidents:ack", ids))
        return [with_ack(IncidentRecord.from_dict(json.loads(r)), None if a is None else json.loads(a))
                for r, a in zip(raw, acks, strict=True) if r is not None]

    async def record_point(
        self, kpi: str, window_start: float, value: float, lower: float | None, upper: float | None, keep_s: float
    ) -> None:
        key = f"{self.p}points:{kpi}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(key, window_start, window_start)  # a revised window replaces its point
            pipe.zadd(key, {json.dumps([window_start, value, lower, upper]): window_start})
            pipe.zremrangebyscore(key, "-inf", f"({window_start - keep_s}")
            pipe.expire(key, int(keep_s) + 3600)
            await pipe.execute()

    async def list_points(
        self, kpi: str, since: float, until: float
    ) -> list[tuple[float, float, float | None, float | None]]:
        raw = cast("list[str]", await self.redis.zrangebyscore(f"{self.p}points:{kpi}", repr(since), f"({until!r}"))
        out = []
        for item in raw:
            ws, value, lower, upper = json.loads(item)
            out.append((float(ws), float(value), lower, upper))
        return out

    async def get_marker(self, key: str) -> str | None:
        return cast("str | None", await self.redis.get(f"{self.p}marker:{key}"))

    async def set_marker(self, key: str, value: str, *, now: float, ttl_s: float, only_new: bool) -> bool:
        del now  # Redis expires it on its own clock
        done = await self.redis.set(f"{self.p}marker:{key}", value, ex=max(1, round(ttl_s)), nx=only_new)
        return bool(done)

    # history ----------------------------------------------------------------------------------------------
    async def record_value(self, series: str, window_start: float, value: float, retain_s: float) -> None:
        key = f"{self.p}hist:{series}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(key, window_start, window_start)  # a revised window replaces its value
            pipe.zadd(key, {f"{window_start!r}|{value!r}": window_start})
            pipe.zremrangebyscore(key, "-inf", f"({window_start - retain_s}")
            pipe.expire(key, int(retain_s) + 3600)
            await pipe.execute()

    async def get_value(self, series: str, window_start: float) -> float | None:
        key = f"{self.p}hist:{series}"
        found = cast("list[str]", await self.redis.zrangebyscore(key, window_start, window_start))
        return float(found[-1].rpartition("|")[2]) if found else None

    async def note_window(self, series: str, window_start: float) -> float | None:
        before = await self._note_window(keys=[self.p + "newest"], args=[series, repr(window_start)])
        return None if before is None else float(before)

    async def touch_series(self, kpi: str, labels: str, at: float) -> None:
        await self.redis.hset(f"{self.p}seen:{kpi}", labels, repr(at))

    async def seen_series(self, kpi: str) -> dict[str, float]:
        raw = cast("dict[str, str]", await self.redis.hgetall(f"{self.p}seen:{kpi}"))
        return {k: float(v) for k, v in raw.items()}

    async def put_source(self, source: str, record: Mapping[str, Any]) -> None:
        await self.redis.hset(self.p + "sources", source, json.dumps(dict(record)))

    async def list_sources(self) -> dict[str, dict[str, Any]]:
        raw = cast("dict[str, str]", await self.redis.hgetall(self.p + "sources"))
        return {k: json.loads(v) for k, v in raw.items()}

    # groups -------------------------------------------------------------------------------------------------
    async def list_groups(self) -> list[dict[str, Any]]:
        raw = await self.redis.hgetall(self.p + "groups")
        return [json.loads(v) for v in raw.values()]

    async def create_group(self, key: str, data: Mapping[str, Any]) -> dict[str, Any]:
        await self.redis.hsetnx(self.p + "groups", key, json.dumps(dict(data)))
        raw = await self.redis.hget(self.p + "groups", key)
        result: dict[str, Any] = json.loads(raw) if raw is not None else dict(data)
        return result

    async def put_group(self, key: str, data: Mapping[str, Any]) -> None:
        await self.redis.hset(self.p + "groups", key, json.dumps(dict(data)))

    async def delete_group(self, key: str) -> None:
        await self.redis.hdel(self.p + "groups", key)

    # silences and acks ------------------------------------------------------------------------------------
    async def put_silence(self, silence: Silence) -> None:
        await self.redis.hset(self.p + "silences", silence.id, json.dumps(silence.to_dict()))

    async def delete_silence(self, silence_id: str) -> bool:
        return bool(await self.redis.hdel(self.p + "silences", silence_id))

    async def list_silences(self) -> list[Silence]:
        raw = await self.redis.hgetall(self.p + "silences")
        return [Silence.from_dict(json.loads(v)) for v in raw.values()]

    async def put_ack(self, ack: Ack) -> None:
        await self.redis.hset(self.p + "acks", ack.fingerprint, json.dumps(ack.to_dict()))

    async def delete_ack(self, fingerprint: str) -> None:
        await self.redis.hdel(self.p + "acks", fingerprint)

    async def list_acks(self) -> list[Ack]:
        raw = await self.redis.hgetall(self.p + "acks")
        return [Ack.from_dict(json.loads(v)) for v in raw.values()]

    # rules and overrides ---------------------------------------------------------------------------------
    async def publish_rules(self, rules: Mapping[RuleKey, Mapping[str, Any]]) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.p + "rules")
            if rules:
                pipe.hset(self.p + "rules", mapping={_key(k): json.dumps(dict(v)) for k, v in rules.items()})
            await pipe.execute()

    async def get_rules(self) -> dict[RuleKey, dict[str, Any]]:
        raw = cast("dict[str, str]", await self.redis.hgetall(self.p + "rules"))
        return {_unkey(k): json.loads(v) for k, v in raw.items()}

    async def get_overrides(self) -> dict[RuleKey, dict[str, Any]]:
        raw = cast("dict[str, str]", await self.redis.hgetall(self.p + "overrides"))
        return {_unkey(k): json.loads(v) for k, v in raw.items()}

    async def overrides_version(self) -> int:
        return int(await self.redis.get(self.p + "overrides:version") or 0)

    async def set_override(
        self, key: RuleKey, fields: Mapping[str, Any], audit: Sequence[Mapping[str, Any]]
    ) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            if fields:
                pipe.hset(self.p + "overrides", _key(key), json.dumps(dict(fields)))
            else:
                pipe.hdel(self.p + "overrides", _key(key))
            for entry in reversed(audit):  # newest first, fields of one change in order
                pipe.lpush(self.p + "audit", json.dumps(dict(entry)))
            pipe.ltrim(self.p + "audit", 0, _LOG_LIMIT - 1)
            pipe.incr(self.p + "overrides:version")
            await pipe.execute()

    # feedback -------------------------------------------------------------------------------------------
    async def get_feedback(self, fingerprint: str, incident: float) -> dict[str, Any] | None:
        raw = await self.redis.hget(self.p + "feedback", feedback_key(fingerprint, incident))
        return None if raw is None else _feedback(cast(str, raw))

    async def put_feedback(
        self, record: Mapping[str, Any], audit: Mapping[str, Any], *, expect: str, identity: str
    ) -> int:
        p = self.p
        keys = [p + "feedback", p + "feedback:id", p + "feedback:log", p + "feedback:seq", p + "audit"]
        args: list[str | int] = [feedback_key(record["fingerprint"], record["incident"]), identity, expect,
                                 json.dumps(dict(record)), json.dumps(dict(audit)), FEEDBACK_LOG_LIMIT, _LOG_LIMIT]
        return int(await self._feedback(keys=keys, args=args))

    async def list_feedback(self) -> list[dict[str, Any]]:
        raw = await self.redis.hvals(self.p + "feedback")
        return sorted((_feedback(v) for v in cast("list[str]", raw)), key=lambda r: r["seq"])

    async def feedback_since(self, seq: int, limit: int = 100) -> list[dict[str, Any]]:
        raw = await self.redis.zrangebyscore(self.p + "feedback:log", f"({seq}", "+inf", start=0, num=limit)
        return [_feedback(v) for v in cast("list[str]", raw)]

    async def put_calendar_note(self, key: str, note: Mapping[str, Any] | None) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            if note is None:
                pipe.hdel(self.p + "notes", key)
            else:
                pipe.hset(self.p + "notes", key, json.dumps(dict(note)))
            pipe.incr(self.p + "notes:version")
            await pipe.execute()

    async def list_calendar_notes(self) -> list[dict[str, Any]]:
        raw = cast("dict[str, str]", await self.redis.hgetall(self.p + "notes"))
        return [json.loads(v) for _, v in sorted(raw.items())]

    async def calendar_notes_version(self) -> int:
        return int(await self.redis.get(self.p + "notes:version") or 0)

    async def append_audit(self, entry: Mapping[str, Any]) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lpush(self.p + "audit", json.dumps(dict(entry)))
            pipe.ltrim(self.p + "audit", 0, _LOG_LIMIT - 1)
            await pipe.execute()

    async def list_audit(self, limit: int = 100, kind: str | None = None) -> list[dict[str, Any]]:
        raw = await self.redis.lrange(self.p + "audit", 0, -1 if kind else limit - 1)
        entries = [json.loads(v) for v in raw]
        return [e for e in entries if kind is None or e.get("kind") == kind][:limit]

    # outbox -------------------------------------------------------------------------------------------------
    def _entry_key(self, entry_id: str) -> str:
        return f"{self.p}outbox:e:{entry_id}"

    async def enqueue(self, record: OutboxRecord) -> bool:
        keys = [self.p + "outbox:due", self._entry_key(record.id), self.p + "outbox:seq"]
        args: list[str | float] = [
            record.id,
            record.receiver,
            record.payload,
            record.created_at,
            record.next_at,
            record.stream,
            self.p + "outbox:",
        ]
        return bool(await self._enqueue(keys=keys, args=args))

    async def claim(self, now: float, lease_s: float, limit: int) -> list[Claim]:
        token = uuid.uuid4().hex
        scan = max(10 * limit, 500)  # due entries waiting behind their stream's head are skipped
        args: list[str | float] = [now, now + lease_s, limit, token, self.p + "outbox:", scan]
        flat = await self._claim(keys=[self.p + "outbox:due"], args=args)
        claims = []
        for i in range(0, len(flat), 10):
            tok, eid, receiver, payload, created, next_at, attempts, reason, stream, seq = flat[i : i + 10]
            record = OutboxRecord(
                eid, receiver, payload, float(created), float(next_at), int(attempts), "pending", reason,
                stream, int(seq),
            )  # fmt: skip
            claims.append(Claim(record, tok))
        return claims

    async def reschedule(self, entry_id: str, token: str, next_at: float, attempts: int, reason: str) -> bool:
        keys = [self.p + "outbox:due", self._entry_key(entry_id)]
        args: list[str | float] = [entry_id, token, next_at, attempts, reason]
        return bool(await self._reschedule(keys=keys, args=args))

    async def renew(self, entry_id: str, token: str, until: float) -> bool:
        keys = [self.p + "outbox:due", self._entry_key(entry_id)]
        return bool(await self._renew(keys=keys, args=[entry_id, token, until]))

    async def finish(self, entry_id: str, token: str, state: EntryState, attempts: int, reason: str) -> bool:
        keys = [self.p + "outbox:due", self._entry_key(entry_id)]
        args: list[str | float] = [entry_id, token, state, attempts, reason, _DONE_TTL_S, self.p + "outbox:"]
        return bool(await self._finish(keys=keys, args=args))

    async def stream_after(self, stream: str, seq: int) -> list[OutboxRecord]:
        ids = cast("list[str]", await self.redis.zrangebyscore(f"{self.p}outbox:s:{stream}", f"({seq}", "+inf"))
        records = [await self.get_entry(i) for i in ids]
        return [r for r in records if r is not None and r.state == "pending"]

    async def outbox_stats(self) -> dict[str, tuple[int, float]]:
        flat = await self._stats(keys=[self.p + "outbox:channels"], args=[self.p + "outbox:"])
        return {flat[i]: (int(flat[i + 1]), float(flat[i + 2])) for i in range(0, len(flat), 3)}

    async def get_entry(self, entry_id: str) -> OutboxRecord | None:
        fields = cast("dict[str, str]", await self.redis.hgetall(self._entry_key(entry_id)))
        return _record(fields) if fields else None

    async def pending_entries(self) -> list[OutboxRecord]:
        ids = cast("list[str]", await self.redis.zrange(self.p + "outbox:due", 0, -1))
        records = [await self.get_entry(i) for i in ids]
        return [r for r in records if r is not None]

    async def log_delivery(self, entry: Mapping[str, Any]) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lpush(self.p + "deliveries", json.dumps(dict(entry)))
            pipe.ltrim(self.p + "deliveries", 0, _LOG_LIMIT - 1)
            await pipe.execute()

    async def list_deliveries(self, limit: int = 100) -> list[dict[str, Any]]:
        return [json.loads(v) for v in await self.redis.lrange(self.p + "deliveries", 0, limit - 1)]
