"""Lua scripts: each makes one multi-key change atomic where peers use separate commands.

They touch only keys and shapes peers already know, so peers see the same results as from
their own (non-atomic) command sequences.
"""

from __future__ import annotations

#: Replace one list entry only if it still holds the expected bytes (failure retry / remove
#: by index, which Ruby does with a bare LINDEX + LSET that can hit the wrong entry).
#: KEYS[1] list; ARGV[1] index, ARGV[2] expected bytes, ARGV[3] replacement ("" + ARGV[4]
#: removal marker means remove). Returns 1 on success, 0 when the entry moved.
SET_OR_REMOVE_AT = """
local current = redis.call('LINDEX', KEYS[1], ARGV[1])
if current ~= ARGV[2] then return 0 end
if ARGV[4] == '1' then
  redis.call('LSET', KEYS[1], ARGV[1], ARGV[3])
  redis.call('LREM', KEYS[1], 1, ARGV[3])
else
  redis.call('LSET', KEYS[1], ARGV[1], ARGV[3])
end
return 1
"""

#: Remove one exact queue item (dequeue by id or by args): LREM of its bytes, count 1.
#: Kept as a plain command; listed here so every wire operation has one home.

#: The worker's whole Redis side of one job cycle, in one round trip (resque_compat.worker.cycle sends it).
#: (1) finish the previous job: failure record + stat:failed (if it failed), stat:processed,
#: final status with its 24 h expiry, inflight cleared; or "release" it back to the head of its
#: queue (a tracked job's status back to waiting, no expiry); (2) when asked, LPOP our control
#: list and read pause-all-workers; (3) reserve: LPOP (reliable: LMOVE into our inflight list)
#: over the queues in priority order, or "adopt" the item a blocking BLMOVE put into our
#: inflight list (default mode: taken out of it, so the record and the removal are one step;
#: reliable: kept there), and SET worker:<id> to {"queue","run_at","payload"} with the item's
#: bytes verbatim (a non-JSON item is stored as a JSON string so the record stays
#: JSON). Going idle DELs worker:<id>. Recovery (ARGV[9] = per-worker processed count before
#: this finish): if the count already moved, the lost call ran; return what it reserved.
#: KEYS and ARGV are positional: protocol.cycle.CycleCall names each position and builds both
#: lists (keys_list(), argv()); End and Reserve are ARGV[1] and ARGV[6], Kind the reply's first
#: element (0 idle, 1 job + item + queue index, 2 paused, 3 control + command, 4 recovered + record).
#: Reserve "guard" (a forked child whose worker died): apply the finish only while worker:<id> still
#: holds ARGV[10] (no pruner took the job yet), then clear it; never reserve. An "ok" with ARGV[3]
#: set also DELs KEYS[9]: the attempt counter of a job with a retry policy that succeeded.
WORKER_CYCLE = """
local finish = ARGV[1]
local processed = -1
if ARGV[6] == 'guard' then
  local rec = redis.call('GET', KEYS[1])
  local tail = ARGV[10] .. '}'
  if not rec or string.sub(rec, -#tail) ~= tail then return {0, -1} end
end
if ARGV[9] ~= '' then
  if finish ~= '' and finish ~= 'release' then
    local cur = tonumber(redis.call('GET', KEYS[3]) or '0') or 0
    if cur == tonumber(ARGV[9]) + 1 then
      local rec = redis.call('GET', KEYS[1])
      if rec then return {4, cur, rec} end
      return {0, cur}
    end
  elseif finish == 'release' then
    if not redis.call('GET', KEYS[1]) then return {0, -1} end
  else
    local rec = redis.call('GET', KEYS[1])
    if rec then return {4, -1, rec} end
  end
end
if finish == 'release' then
  redis.call('LPUSH', KEYS[9], ARGV[2])
  if ARGV[8] == '1' then redis.call('DEL', KEYS[8]) end
  if ARGV[4] ~= '' then redis.call('SET', KEYS[11], ARGV[4]) end
elseif finish ~= '' then
  if finish == 'fail' then
    if ARGV[3] ~= '' then redis.call('SADD', KEYS[10], ARGV[3]) end
    redis.call('RPUSH', KEYS[9], ARGV[2])
    redis.call('INCRBY', KEYS[4], 1)
    redis.call('INCRBY', KEYS[5], 1)
  end
  if finish == 'ok' and ARGV[3] ~= '' then redis.call('DEL', KEYS[9]) end
  redis.call('INCRBY', KEYS[2], 1)
  processed = redis.call('INCRBY', KEYS[3], 1)
  if ARGV[4] ~= '' then redis.call('SET', KEYS[11], ARGV[4], 'EX', 86400) end
  if ARGV[8] == '1' then redis.call('DEL', KEYS[8]) end
end
if ARGV[5] == '1' then
  local cmd = redis.call('LPOP', KEYS[7])
  if cmd then
    if finish ~= '' then redis.call('DEL', KEYS[1]) end
    return {3, processed, cmd}
  end
  if ARGV[6] == '1' then
    local p = redis.call('GET', KEYS[6])
    if p and string.lower(string.match(p, '^%s*(.-)%s*$')) == 'true' then
      if finish ~= '' then redis.call('DEL', KEYS[1]) end
      return {2, processed}
    end
  end
end
local item = nil
local qjson = nil
local index = 0
if ARGV[6] == 'adopt' then
  if ARGV[8] == '1' then
    item = redis.call('LINDEX', KEYS[8], 0)
  else
    item = redis.call('LPOP', KEYS[8])
  end
  qjson = ARGV[11]
elseif ARGV[6] == '1' then
  for i = 12, #KEYS do
    if ARGV[8] == '1' then
      item = redis.call('LMOVE', KEYS[i], KEYS[8], 'LEFT', 'RIGHT')
    else
      item = redis.call('LPOP', KEYS[i])
    end
    if item then
      qjson = ARGV[i]
      index = i - 11
      break
    end
  end
end
if item then
  local payload = item
  local ok, value = pcall(cjson.decode, item)
  if not ok or type(value) ~= 'table' then payload = cjson.encode(item) end
  redis.call('SET', KEYS[1], '{"queue":' .. qjson .. ',"run_at":"' .. ARGV[7] .. '","payload":' .. payload .. '}')
  return {1, processed, item, index}
end
if finish ~= '' then redis.call('DEL', KEYS[1]) end
return {0, processed}
"""

#: ``work --prefetch K`` (no fork): finish the job in hand as WORKER_CYCLE's "ok"/"fail" does
#: (failure record, stat:failed, stat:processed, final status, a retry policy's counter DEL),
#: then start the next: "next" takes it from the head of our in-flight list (the worker
#: already holds its bytes; default mode takes it out, reliable keeps it there as the job in
#: hand), "reserve" LMOVEs up to ARGV[8] items of the first non-empty queue (priority order)
#: into the in-flight list and starts the first, "none" starts nothing. Starting SETs
#: worker:<id> as WORKER_CYCLE does (default mode adds ``"prefetched":true``: the job is no
#: longer in the list, which a pruner must know even when the next item has the same bytes);
#: nothing left DELs it. The worker pipelines "next" calls
#: and reads their replies in bulk; a dead worker's list is a pruner's (``claim_job``).
#: KEYS: 1 worker:<id>, 2 stat:processed, 3 stat:processed:<id>, 4 stat:failed,
#:       5 stat:failed:<id>, 6 inflight list, 7 failure list / attempt counter (or any unused
#:       key), 8 failed_queues, 9 status key (or any unused key), 10.. queues (reserve only)
#: ARGV: 1 finish ("", "ok", "fail"), 2 failure bytes, 3 failure list name for failed_queues
#:       / "1" to DEL KEYS[7] on ok, 4 status bytes ("" none), 5 reliable ("1"), 6 run_at,
#:       7 start ("next", "reserve", "none"), 8 next: its queue as JSON / reserve: K,
#:       9.. reserve: the queues' names as JSON
#: Returns {started (1/0), per-worker processed count (-1: no finish), reserve: queue index,
#: the items moved...}.
PREFETCH_STEP = """
local processed = -1
local finish = ARGV[1]
local reliable = ARGV[5] == '1'
if finish ~= '' then
  if finish == 'fail' then
    if ARGV[3] ~= '' then redis.call('SADD', KEYS[8], ARGV[3]) end
    redis.call('RPUSH', KEYS[7], ARGV[2])
    redis.call('INCRBY', KEYS[4], 1)
    redis.call('INCRBY', KEYS[5], 1)
  elseif ARGV[3] ~= '' then
    redis.call('DEL', KEYS[7])
  end
  redis.call('INCRBY', KEYS[2], 1)
  processed = redis.call('INCRBY', KEYS[3], 1)
  if ARGV[4] ~= '' then redis.call('SET', KEYS[9], ARGV[4], 'EX', 86400) end
  if reliable then redis.call('LPOP', KEYS[6]) end
end
local function start(item, qjson)
  local payload = item
  local ok, value = pcall(cjson.decode, item)
  if not ok or type(value) ~= 'table' then payload = cjson.encode(item) end
  local mark = '}'
  if not reliable then mark = ',"prefetched":true}' end
  redis.call('SET', KEYS[1], '{"queue":' .. qjson .. ',"run_at":"' .. ARGV[6] .. '","payload":' .. payload .. mark)
end
if ARGV[7] == 'next' then
  local item
  if reliable then item = redis.call('LINDEX', KEYS[6], 0) else item = redis.call('LPOP', KEYS[6]) end
  if item then
    start(item, ARGV[8])
    return {1, processed}
  end
elseif ARGV[7] == 'reserve' then
  local k = tonumber(ARGV[8])
  for i = 10, #KEYS do
    local first = redis.call('LMOVE', KEYS[i], KEYS[6], 'LEFT', 'RIGHT')
    if first then
      local reply = {1, processed, i - 9, first}
      for _ = 2, k do
        local item = redis.call('LMOVE', KEYS[i], KEYS[6], 'LEFT', 'RIGHT')
        if not item then break end
        reply[#reply + 1] = item
      end
      start(first, ARGV[i - 1])
      if not reliable then redis.call('LPOP', KEYS[6]) end
      return reply
    end
  end
end
redis.call('DEL', KEYS[1])
return {0, processed}
"""

#: Give back the unstarted rest of a prefetched batch (stop, pause, a control check, a job
#: that needs its own scripts): the last ARGV[1] items of our in-flight list go back to the
#: head of their queue, in their order. KEYS: 1 inflight list, 2 the queue. Returns how many moved.
PREFETCH_RETURN = """
local n = 0
for _ = 1, tonumber(ARGV[1]) do
  if not redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT') then break end
  n = n + 1
end
return n
"""

#: Claim a dead worker's job, once: the record check, the requeue or the failure, and the
#: DEL of worker:<id> in one step, so of several pruners (or an orphan sweep) racing for the
#: same dead worker exactly one handles its job. The caller read worker:<id> and the head of
#: the in-flight list first and built the failure from them; if either changed meanwhile
#: (another pruner got there), nothing is written and the caller reads again.
#: A tracked job's status (KEYS[9], when it exists: php-resque writes nothing for an untracked
#: job) ends with it: ARGV[10] (waiting, no TTL) when requeued, ARGV[9] (failed, 24 h) when failed.
#: KEYS: 1 worker:<id>, 2 inflight list, 3 queue list (requeue target), 4 queues set,
#:       5 workers set, 6 failure list, 7 failed_queues, 8 stat:failed, 9 status key (or any
#:       unused key name when the job is not tracked)
#: ARGV: 1 mode ("dead": unregistering; "orphan": only in-flight items, only while the worker
#:       is not registered), 2 worker id, 3 expected record ("" none), 4 expected first
#:       in-flight item ("" none), 5 queue name, 6 failure bytes ("" none), 7 failure list name
#:       to SADD into failed_queues ("" none), 8 count the failure in stat:failed ("1"),
#:       9 failed status bytes ("" none), 10 waiting status bytes ("" none)
#: Returns {what, n}: what -1 changed (read again), 0 nothing to claim, 1 requeued n in-flight
#: items to the head of the queue, 2 failed. A ``--prefetch`` worker in default mode holds its
#: started job in worker:<id> only and the unstarted rest in the in-flight list: then the
#: caller passes the started job's failure too, and both happen (requeue the rest, fail it).
CLAIM_DEAD_WORKER = """
local dead = ARGV[1] == 'dead'
if dead then
  if (redis.call('GET', KEYS[1]) or '') ~= ARGV[3] then return {-1, 0} end
elseif redis.call('SISMEMBER', KEYS[5], ARGV[2]) == 1 then
  return {0, 0}
end
if (redis.call('LINDEX', KEYS[2], 0) or '') ~= ARGV[4] then return {-1, 0} end
if ARGV[4] ~= '' then
  local n = 0
  while redis.call('LMOVE', KEYS[2], KEYS[3], 'RIGHT', 'LEFT') do n = n + 1 end
  redis.call('SADD', KEYS[4], ARGV[5])
  if dead then redis.call('DEL', KEYS[1]) end
  if ARGV[10] ~= '' and redis.call('EXISTS', KEYS[9]) == 1 then redis.call('SET', KEYS[9], ARGV[10]) end
  if dead and ARGV[6] ~= '' then
    if ARGV[7] ~= '' then redis.call('SADD', KEYS[7], ARGV[7]) end
    redis.call('RPUSH', KEYS[6], ARGV[6])
    if ARGV[8] == '1' then redis.call('INCRBY', KEYS[8], 1) end
  end
  return {1, n}
end
if not dead or ARGV[3] == '' then return {0, 0} end
redis.call('DEL', KEYS[1])
if ARGV[6] == '' then return {0, 0} end
if ARGV[7] ~= '' then redis.call('SADD', KEYS[7], ARGV[7]) end
redis.call('RPUSH', KEYS[6], ARGV[6])
if ARGV[8] == '1' then redis.call('INCRBY', KEYS[8], 1) end
if ARGV[9] ~= '' and redis.call('EXISTS', KEYS[9]) == 1 then redis.call('SET', KEYS[9], ARGV[9], 'EX', 86400) end
return {2, 1}
"""

#: Release the ``pruning_dead_workers_in_progress`` lock only if we still hold it (compare and
#: delete), so a lock another pruner took after ours expired is left alone; Ruby's ``SET NX
#: EX`` acquisition is unchanged. KEYS: 1 the lock; ARGV: 1 our worker id. Returns 1 if released.
RELEASE_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

#: resque-retry's ``before_perform_retry``: ``SETNX -1`` + ``INCR`` the attempt counter, with
#: ``@expire_retry_key_after``'s EXPIRE (base delay of this attempt + ARGV[2]); the retry stops
#: being pending (HDEL from our index) as it starts to run.
#: KEYS: 1 attempt counter, 2 pending-retry index. ARGV: 1 retry name, 2 expire_after ("" none),
#: 3.. base delay of each retry (the last one past the end). Returns {attempt (0 = first run), the
#: pending-retry entry that brought this run ("" none): it names a tracked job's php status when the
#: delayed item (rebuilt by any scheduler as {class,args}) no longer carries the payload's id}.
RETRY_BEGIN = """
redis.call('SETNX', KEYS[1], '-1')
local n = redis.call('INCR', KEYS[1])
if ARGV[2] ~= '' then
  local delay = 0
  if #ARGV > 2 then delay = tonumber(ARGV[math.min(n + 3, #ARGV)]) or 0 end
  redis.call('EXPIRE', KEYS[1], math.max(1, math.floor(delay + tonumber(ARGV[2]))))
end
local entry = redis.call('HGET', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return {n, entry or ''}
"""

#: The finish of a failed job that has a retry policy, instead of the cycle's: in one step, the
#: retry (RPUSH queue:<q> + SADD queues, or resque-scheduler's RPUSH delayed:<ts> + SADD
#: timestamps:<item> + ZADD delayed_queue_schedule) with resque-retry's suppression key and our
#: pending-retry entry, or the give-up (DEL counter and suppression key); the failure record
#: when there is one to keep; stat:failed / stat:processed (Ruby counts every failed attempt);
#: the php status; worker:<id> (and the reliable in-flight list) cleared. Guarded like the
#: cycle's "guard" mode: applied only while worker:<id> still holds the item, so a call whose
#: reply was lost, or a job a pruner already took, is never applied twice.
#: KEYS: 1 worker:<id>, 2 stat:processed, 3 stat:processed:<id>, 4 stat:failed, 5 stat:failed:<id>,
#:       6 inflight list, 7 status key, 8 attempt counter, 9 suppressed failure key,
#:       10 retry list, 11 retry set, 12 delayed_queue_schedule, 13 failure list, 14 failed_queues,
#:       15 pending-retry index
#: ARGV: 1 the reserved item, 2 mode ("now", "later", "give-up"), 3 retry bytes, 4 retry set
#:       member, 5 timestamp, 6 suppressed failure ("" none), 7 its TTL, 8 failure to record
#:       ("" none), 9 failure list name for failed_queues ("" none), 10 status bytes ("" none),
#:       11 status TTL ("" none), 12 reliable ("1"), 13 retry name, 14 pending-retry entry
#: Returns {applied (1/0), per-worker processed count}.
RETRY_FINISH = """
local rec = redis.call('GET', KEYS[1])
local tail = ARGV[1] .. '}'
if not rec or string.sub(rec, -#tail) ~= tail then
  return {0, tonumber(redis.call('GET', KEYS[3]) or '0') or 0}
end
if ARGV[2] == 'give-up' then
  redis.call('DEL', KEYS[8], KEYS[9])
  redis.call('HDEL', KEYS[15], ARGV[13])
else
  redis.call('SETNX', KEYS[8], '-1')
  redis.call('RPUSH', KEYS[10], ARGV[3])
  redis.call('SADD', KEYS[11], ARGV[4])
  if ARGV[2] == 'later' then redis.call('ZADD', KEYS[12], ARGV[5], ARGV[5]) end
  if ARGV[6] ~= '' then redis.call('SET', KEYS[9], ARGV[6], 'EX', ARGV[7]) end
  redis.call('HSET', KEYS[15], ARGV[13], ARGV[14])
end
if ARGV[8] ~= '' then
  if ARGV[9] ~= '' then redis.call('SADD', KEYS[14], ARGV[9]) end
  redis.call('RPUSH', KEYS[13], ARGV[8])
end
redis.call('INCRBY', KEYS[4], 1)
redis.call('INCRBY', KEYS[5], 1)
redis.call('INCRBY', KEYS[2], 1)
local processed = redis.call('INCRBY', KEYS[3], 1)
if ARGV[10] ~= '' then
  if ARGV[11] ~= '' then
    redis.call('SET', KEYS[7], ARGV[10], 'EX', ARGV[11])
  else
    redis.call('SET', KEYS[7], ARGV[10])
  end
end
if ARGV[12] == '1' then redis.call('DEL', KEYS[6]) end
redis.call('DEL', KEYS[1])
return {1, processed}
"""

#: The history sampler (resque_compat.history): one sample into every tier it is due in.
#: KEYS[1] the state hash, KEYS[2..] the tier lists; ARGV[1] the sample, ARGV[2] the TTL, then
#: per tier its field name, the sample's bucket and the cap. A tier takes the sample only when
#: its bucket is newer than the last one recorded, so one sample per step, even with racing samplers.
RECORD_SAMPLE = """
local recorded = 0
for i = 2, #KEYS do
  local a = 3 + (i - 2) * 3
  local field, bucket, cap = ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local last = tonumber(redis.call('HGET', KEYS[1], field) or '')
  if last == nil or bucket > last then
    redis.call('LPUSH', KEYS[i], ARGV[1])
    redis.call('LTRIM', KEYS[i], 0, cap - 1)
    redis.call('HSET', KEYS[1], field, bucket)
    recorded = recorded + 1
  end
  redis.call('EXPIRE', KEYS[i], ARGV[2])
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return recorded
"""

#: Steer one pending retry (``resque-compat retries``, the dashboard): take its item out of
#: resque-scheduler's layout (LREM delayed:<ts>, SREM timestamps:<item>, and DEL + ZREM the
#: timestamp once empty) or out of its queue, then either push it to its queue now ("now") or
#: give up: DEL the attempt counter and suppression key and record the failure. Only while the
#: index entry is still the one the caller read; returns 0 when it changed or the item is gone
#: (a scheduler or a worker took it first), 1 when done.
#: KEYS: 1 pending-retry index, 2 delayed list, 3 timestamps set, 4 delayed_queue_schedule,
#:       5 queue list, 6 queues set, 7 attempt counter, 8 suppressed failure key, 9 failure list,
#:       10 failed_queues
#: ARGV: 1 retry name, 2 expected entry bytes, 3 action ("now", "give-up"), 4 where ("queue",
#:       "delayed"), 5 stored item bytes, 6 queue payload bytes, 7 timestamp, 8 timestamps member,
#:       9 queue name, 10 failure bytes ("" none), 11 failure list name for failed_queues ("" none)
RETRY_STEER = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
if ARGV[4] == 'delayed' then
  if redis.call('LREM', KEYS[2], 1, ARGV[5]) == 0 then return 0 end
  redis.call('SREM', KEYS[3], ARGV[8])
  if redis.call('LLEN', KEYS[2]) == 0 then
    redis.call('DEL', KEYS[2])
    redis.call('ZREM', KEYS[4], ARGV[7])
  end
  if ARGV[3] == 'now' then
    redis.call('SADD', KEYS[6], ARGV[9])
    redis.call('RPUSH', KEYS[5], ARGV[6])
  end
elseif ARGV[3] == 'now' then
  return 0
elseif redis.call('LREM', KEYS[5], 1, ARGV[5]) == 0 then
  return 0
end
redis.call('HDEL', KEYS[1], ARGV[1])
if ARGV[3] == 'give-up' then
  redis.call('DEL', KEYS[7], KEYS[8])
  if ARGV[10] ~= '' then
    if ARGV[11] ~= '' then redis.call('SADD', KEYS[10], ARGV[11]) end
    redis.call('RPUSH', KEYS[9], ARGV[10])
  end
end
return 1
"""


# -- resque-scheduler: delayed items and the master lock --------------------------------------
# (resque_compat.scheduler.mover, .delayed, .lock; every key in KEYS, computed by the caller)

#: Shared Lua of the two move scripts: validate an item, split its top-level members into raw
#: substrings (a scanner tracking strings, escapes and nesting, after ``cjson.decode`` proved
#: it well formed), build ``{"class":<raw>,"args":<raw>}`` and push it. See
#: :mod:`resque_compat.scheduler.mover` for why the job is not re-encoded with cjson.
_DELAYED_LIB = r"""
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

-- push one delayed item to its queue; returns 1 moved, 0 rejected. The caller named the
-- item's keys: stamps (its timestamps: set), dest (queue:<want>); want is the queue it read
-- from the item ('' none); an item whose queue reads otherwise here is kept aside, not moved.
local function move_item(member, item, stamps, dest, want, queues_key, rejected_key)
  redis.call('SREM', stamps, member)
  local m = members(item)
  local klass = m and m['class']
  local queue_raw = m and m['queue']
  local queue = nil
  if queue_raw and string.byte(queue_raw, 1) == 34 then
    local okq, q = pcall(cjson.decode, queue_raw)
    if okq and type(q) == 'string' and q ~= '' then queue = q end
  end
  if not klass or string.byte(klass, 1) ~= 34 or not queue or queue ~= want then
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
  redis.call('RPUSH', dest, '{"class":' .. klass .. ',"args":' .. args .. '}')
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

#: Move the head of one ``delayed:<ts>`` list, as far as it still holds items the caller read:
#: each item at most once however many schedulers race (the LTRIM is atomic with the pushes).
#: KEYS: 1 delayed_queue_schedule, 2 queues, 3 compat:delayed:rejected, 4 delayed:<ts>, then per
#:       item i: 3+2i its timestamps:<item> set, 4+2i queue:<its queue> (or the rejected list)
#: ARGV: 1 the schedule member <ts>, 2 delayed:<ts> (the timestamps: sets' member), 3 how many
#:       items of the new head to return, then per item i: 2+2i the item's bytes, 3+2i its
#:       queue name ("" when it has none)
#: Returns {moved, rejected, taken from the head, items left in the list, the new head...}
#: (the next batch's items, saving a read); taken 0 with items left means another scheduler
#: moved what the caller read: the head returned is what to try next.
MOVE_DELAYED_BATCH = (
    _DELAYED_LIB
    + r"""
local list = KEYS[4]
local n = (#ARGV - 3) / 2
local index = {}
for i = n, 1, -1 do index[ARGV[2 + 2 * i]] = i end
local head = {}
if n > 0 then head = redis.call('LRANGE', list, 0, n - 1) end
local moved, rejected, taken = 0, 0, 0
for _, item in ipairs(head) do
  local i = index[item]
  if not i then break end
  taken = taken + 1
  if move_item(ARGV[2], item, KEYS[3 + 2 * i], KEYS[4 + 2 * i], ARGV[3 + 2 * i], KEYS[2], KEYS[3]) == 1 then
    moved = moved + 1
  else
    rejected = rejected + 1
  end
end
if taken > 0 then redis.call('LTRIM', list, taken, -1) end
forget_if_empty(list, KEYS[1], ARGV[1])
local out = {moved, rejected, taken, redis.call('LLEN', list)}
if out[4] > 0 and tonumber(ARGV[3]) > 0 then
  for _, item in ipairs(redis.call('LRANGE', list, 0, tonumber(ARGV[3]) - 1)) do out[#out + 1] = item end
end
return out
"""
)

#: Move one exact item now (resque-web's "Queue now" for one job).
#: KEYS: 1 schedule, 2 queues, 3 rejected, 4 delayed:<ts>, 5 timestamps:<item>, 6 queue:<q>
#: ARGV: 1 <ts>, 2 delayed:<ts>, 3 the item's bytes, 4 its queue name ("" none)
#: Returns 1 when it was still there and moved (0 when another scheduler took it first).
MOVE_DELAYED_ITEM = (
    _DELAYED_LIB
    + r"""
if redis.call('LREM', KEYS[4], 1, ARGV[3]) == 0 then return 0 end
local moved = move_item(ARGV[2], ARGV[3], KEYS[5], KEYS[6], ARGV[4], KEYS[2], KEYS[3])
forget_if_empty(KEYS[4], KEYS[1], ARGV[1])
return moved
"""
)

#: LREM every copy of one item at one timestamp, drop its timestamps: member, and forget the
#: timestamp when its list is now empty.
#: KEYS: 1 schedule, 2 delayed:<ts>, 3 timestamps:<item>. ARGV: 1 <ts>, 2 delayed:<ts>, 3 the item.
REMOVE_DELAYED_ITEM = """
local n = redis.call('LREM', KEYS[2], 0, ARGV[3])
redis.call('SREM', KEYS[3], ARGV[2])
if redis.call('LLEN', KEYS[2]) == 0 then
  redis.call('DEL', KEYS[2])
  redis.call('ZREM', KEYS[1], ARGV[1])
end
return n
"""

#: The scheduler master lock: GET == me -> EXPIRE; returns 1 when the lock is (still) ours.
#: KEYS: 1 the lock. ARGV: 1 our value, 2 TTL seconds.
RENEW_MASTER_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

#: GET == me -> DEL; never deletes another scheduler's lock. KEYS: 1 the lock. ARGV: 1 our value.
RELEASE_MASTER_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


# -- failure lists in bulk (the dashboard's "Retry all" and "Clear retried", resque_compat.web.bulk) --

#: One batch of "Retry all". KEYS: 1 failure list, 2 queues set, 3.. the batch's queue lists.
#: ARGV: 1..2 the batch's first and last index (read with one LRANGE), then groups of (index,
#: expected bytes, marked bytes, queue name, KEYS index of its queue list, payload). Each entry
#: still holding its expected bytes is replaced by its marked copy (``retried_at`` set) and its
#: payload pushed back, as Ruby's ``requeue`` does. Returns one 1/0 per group.
RETRY_BATCH = """
local first, last = tonumber(ARGV[1]), tonumber(ARGV[2])
local current = redis.call('LRANGE', KEYS[1], first, last)
local out = {}
for i = 3, #ARGV, 6 do
  local index = tonumber(ARGV[i])
  if current[index - first + 1] == ARGV[i + 1] then
    redis.call('LSET', KEYS[1], index, ARGV[i + 2])
    redis.call('SADD', KEYS[2], ARGV[i + 3])
    redis.call('RPUSH', KEYS[tonumber(ARGV[i + 4])], ARGV[i + 5])
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
"""

#: One batch of "Clear retried". KEYS: 1 failure list. ARGV: 1 the task's removal marker, 2..3
#: the batch's first and last index, then pairs (index, expected bytes): each entry still holding
#: its bytes becomes the marker (one LREM at the end removes them all, so indexes do not shift
#: while the walk goes on). Returns how many were marked.
MARK_BATCH = """
local first, last = tonumber(ARGV[2]), tonumber(ARGV[3])
local current = redis.call('LRANGE', KEYS[1], first, last)
local marked = 0
for i = 4, #ARGV, 2 do
  local index = tonumber(ARGV[i])
  if current[index - first + 1] == ARGV[i + 1] then
    redis.call('LSET', KEYS[1], index, ARGV[1])
    marked = marked + 1
  end
end
return marked
"""
