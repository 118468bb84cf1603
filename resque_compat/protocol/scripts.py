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
