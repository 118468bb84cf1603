"""Moving due delayed items onto their queues: atomic, in bounded batches.

Design: one Lua script per batch does the whole move (pick the first due timestamp, take up
to N items off ``delayed:<ts>``, SREM each item's ``timestamps:`` member, SADD ``queues`` +
RPUSH ``queue:<q>`` the job, and DEL/ZREM the timestamp once its list is empty). Lua runs
atomically, so schedulers racing on the same items (ours, Ruby's WATCH/MULTI loop, php-resque's
LPOP loop, node-resque's LPOP loop) can each take an item at most once and none is left half
moved: nothing is lost or doubled, even when a scheduler dies between two batches.

The queue job is built *inside* the script by string handling rather than ``cjson``:
``cjson.encode`` would reorder keys, turn ``[]`` into ``{}`` and reformat numbers. The item is
first validated with ``cjson.decode`` (so the scanner only ever sees well-formed JSON); then a
small scanner splits its top-level members into raw substrings, tracking strings, escapes and
nesting, and the job is assembled as ``{"class":<raw>,"args":<raw>}``: the bytes of class and
args travel untouched. This is what Ruby pushes for its own items (same encoder), keeps
php-resque-scheduler's wrapped ``[ {...} ]`` args as a PHP worker expects, and drops the
``queue`` member that node-resque puts in the middle. The alternative (pop into an in-flight
list, re-encode in Python, push in a second step) needs crash recovery for the in-flight list
and an owner for it across restarts; the single script needs neither.

An item that is not a JSON object with a string ``class`` and a string ``queue`` cannot be
enqueued by any peer; it is moved to ``<ns>compat:delayed:rejected`` (a list, never read by
peers) instead of being dropped, and counted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from resque_compat.protocol import Keys

DEFAULT_BATCH = 100

#: Shared Lua: validate an item, split its members, build the queue job, push it.
_LIB = r"""
local function str_end(s, i)
  local p = i + 1
  while true do
    local q = string.find(s, '["\\]', p)
    if not q then return nil end
    if string.byte(s, q) == 92 then p = q + 2 else return q end
  end
end

local function skip_ws(s, p)
  return string.find(s, '[^ \t\r\n]', p)
end

local function value_end(s, i)
  local c = string.byte(s, i)
  if c == 34 then return str_end(s, i) end
  if c == 123 or c == 91 then
    local depth, p = 1, i + 1
    while true do
      local q = string.find(s, '["{}%[%]]', p)
      if not q then return nil end
      local b = string.byte(s, q)
      if b == 34 then
        local e = str_end(s, q)
        if not e then return nil end
        p = e + 1
      elseif b == 123 or b == 91 then
        depth = depth + 1
        p = q + 1
      else
        depth = depth - 1
        if depth == 0 then return q end
        p = q + 1
      end
    end
  end
  local q = string.find(s, '[,}%]%s]', i)
  if not q then return nil end
  return q - 1
end

-- top-level members of a JSON object as raw substrings, or nil
local function members(s)
  local ok, decoded = pcall(cjson.decode, s)
  if not ok or type(decoded) ~= 'table' then return nil end
  local i = skip_ws(s, 1)
  if not i or string.byte(s, i) ~= 123 then return nil end
  local out = {}
  i = skip_ws(s, i + 1)
  if i and string.byte(s, i) == 125 then return out end
  while i do
    if string.byte(s, i) ~= 34 then return nil end
    local kend = str_end(s, i)
    if not kend then return nil end
    local okk, key = pcall(cjson.decode, string.sub(s, i, kend))
    if not okk then return nil end
    i = skip_ws(s, kend + 1)
    if not i or string.byte(s, i) ~= 58 then return nil end
    i = skip_ws(s, i + 1)
    if not i then return nil end
    local vend = value_end(s, i)
    if not vend then return nil end
    out[key] = string.sub(s, i, vend)
    i = skip_ws(s, vend + 1)
    if not i then return nil end
    local c = string.byte(s, i)
    if c == 125 then return out end
    if c ~= 44 then return nil end
    i = skip_ws(s, i + 1)
  end
  return nil
end

-- push one delayed item to its queue; returns 1 moved, 0 rejected
local function move_item(prefix, member, item, queues_key, rejected_key)
  redis.call('SREM', prefix .. 'timestamps:' .. item, member)
  local m = members(item)
  local klass = m and m['class']
  local queue_raw = m and m['queue']
  local queue = nil
  if queue_raw and string.byte(queue_raw, 1) == 34 then
    local okq, q = pcall(cjson.decode, queue_raw)
    if okq and type(q) == 'string' and q ~= '' then queue = q end
  end
  if not klass or string.byte(klass, 1) ~= 34 or not queue then
    redis.call('RPUSH', rejected_key, item)
    return 0
  end
  local args = m['args']
  if not args or args == 'null' or args == '{}' then
    args = '[]'
  elseif string.byte(args, 1) ~= 91 then
    args = '[' .. args .. ']'
  end
  redis.call('SADD', queues_key, queue)
  redis.call('RPUSH', prefix .. 'queue:' .. queue, '{"class":' .. klass .. ',"args":' .. args .. '}')
  return 1
end

local function forget_if_empty(list, schedule_key, ts)
  if redis.call('LLEN', list) == 0 then
    redis.call('DEL', list)
    redis.call('ZREM', schedule_key, ts)
    return 1
  end
  return 0
end
"""

#: KEYS: schedule zset, queues set, rejected list. ARGV: prefix, now, batch, [timestamp].
#: Returns {timestamp or '', moved, rejected, items left at that timestamp}.
_MOVE_BATCH = (
    _LIB
    + r"""
local prefix, batch = ARGV[1], tonumber(ARGV[3])
local ts = ARGV[4]
if not ts or ts == '' then
  local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, 1)
  if #due == 0 then return {'', 0, 0, 0} end
  ts = due[1]
end
local member = 'delayed:' .. ts
local list = prefix .. member
local items = redis.call('LRANGE', list, 0, batch - 1)
if #items > 0 then redis.call('LTRIM', list, #items, -1) end
local moved, rejected = 0, 0
for _, item in ipairs(items) do
  if move_item(prefix, member, item, KEYS[2], KEYS[3]) == 1 then moved = moved + 1 else rejected = rejected + 1 end
end
forget_if_empty(list, KEYS[1], ts)
return {ts, moved, rejected, redis.call('LLEN', list)}
"""
)

#: Move one exact item now. KEYS: schedule, queues, rejected. ARGV: prefix, timestamp, item.
#: Returns 1 when it was still there and moved (0 when another scheduler took it first).
_MOVE_ITEM = (
    _LIB
    + r"""
local prefix, ts, item = ARGV[1], ARGV[2], ARGV[3]
local member = 'delayed:' .. ts
local list = prefix .. member
if redis.call('LREM', list, 1, item) == 0 then return 0 end
local moved = move_item(prefix, member, item, KEYS[2], KEYS[3])
forget_if_empty(list, KEYS[1], ts)
return moved
"""
)


@dataclass
class MoveResult:
    """What one :meth:`Mover.move_due` call did."""

    moved: int = 0
    rejected: int = 0
    batches: int = 0
    timestamps: int = 0

    def __iadd__(self, other: MoveResult) -> MoveResult:
        self.moved += other.moved
        self.rejected += other.rejected
        self.batches += other.batches
        self.timestamps += other.timestamps
        return self


class Mover:
    """Moves due delayed items. Safe to run in any number of processes at once."""

    def __init__(self, client: redis.Redis, keys: Keys, batch: int = DEFAULT_BATCH) -> None:
        if batch < 1:
            raise ValueError("batch size must be at least 1")
        self.redis = client
        self.keys = keys
        self.batch = batch
        self._move_batch = client.register_script(_MOVE_BATCH)
        self._move_item = client.register_script(_MOVE_ITEM)

    @property
    def rejected_key(self) -> str:
        return self.keys.key("compat:delayed:rejected")

    def _keys(self) -> list[str]:
        return [self.keys.delayed_schedule, self.keys.queues, self.rejected_key]

    def move_batch(
        self, now: float | None = None, timestamp: int | str | None = None
    ) -> tuple[str | None, int, int, int]:
        """One atomic batch: ``(timestamp, moved, rejected, left)``; timestamp None when nothing is due."""
        at = int(time.time() if now is None else now)
        ts, moved, rejected, left = self._move_batch(
            keys=self._keys(),
            args=[self.keys.prefix, at, self.batch, "" if timestamp is None else str(timestamp)],
        )
        ts_text = ts.decode() if isinstance(ts, bytes) else str(ts)
        return (ts_text or None, int(moved), int(rejected), int(left))

    def move_due(
        self, now: float | None = None, *, should_stop: object = None, max_batches: int | None = None
    ) -> MoveResult:
        """Move everything due at ``now`` (default: the current time), batch by batch.

        ``should_stop`` (a callable) is checked between batches: a shutdown request stops after
        the batch in hand, which is complete by construction.
        """
        result = MoveResult()
        last_ts: str | None = None
        while max_batches is None or result.batches < max_batches:
            if callable(should_stop) and should_stop():
                break
            ts, moved, rejected, _left = self.move_batch(now)
            if ts is None:
                break
            result.batches += 1
            result.moved += moved
            result.rejected += rejected
            if ts != last_ts:
                result.timestamps += 1
                last_ts = ts
        return result

    def move_timestamp(self, timestamp: int) -> MoveResult:
        """Move every item at one timestamp now, due or not (resque-web's "Queue now")."""
        result = MoveResult(timestamps=1)
        while True:
            _, moved, rejected, left = self.move_batch(timestamp=timestamp)
            result.batches += 1
            result.moved += moved
            result.rejected += rejected
            if left == 0 or moved + rejected == 0:
                return result

    def move_item(self, timestamp: int, item: bytes) -> bool:
        """Move one exact item (its stored bytes) now; False when it is no longer there."""
        return bool(self._move_item(keys=self._keys(), args=[self.keys.prefix, timestamp, item]))


__all__ = ["DEFAULT_BATCH", "MoveResult", "Mover"]
