"""Lua scripts for the multi-key or check-and-set steps (dramatiq's dispatch.lua idea).

Keys touched: the async schedule ZSET (request id -> ms when it may next be dispatched)
and a function's concurrency ZSET (holder -> lease deadline ms). See broker/keys.py.
"""

from __future__ import annotations

# Take up to ARGV[3] due events and lease them until ARGV[1] + ARGV[2]; returns the
# deadline (the dispatch token every claim must present) followed by the ids.
DISPATCH = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local deadline = tonumber(ARGV[1]) + tonumber(ARGV[2])
local out = {tostring(deadline)}
for _, rid in ipairs(due) do
  redis.call('ZADD', KEYS[1], deadline, rid)
  out[#out + 1] = rid
end
return out
"""

# Claim dispatched events (ARGV[3..]) for a running job: only the dispatch whose token
# (ARGV[1]) still matches wins, so a re-dispatch after a lost job never runs an event
# twice at once. Claimed ones get the running lease ARGV[2]; returns the claimed ids.
CLAIM_MANY = """
local claimed = {}
for i = 3, #ARGV do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) == tonumber(ARGV[1]) then
    redis.call('ZADD', KEYS[1], tonumber(ARGV[2]), ARGV[i])
    claimed[#claimed + 1] = ARGV[i]
  end
end
return claimed
"""

# Take a concurrency slot: drop expired holders, refuse at the limit (ARGV[4] < 0 means
# unlimited). Returns the number of holders after acquiring, or -1 when throttled.
ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
local limit = tonumber(ARGV[4])
local held = redis.call('ZCARD', KEYS[1])
if limit >= 0 and held >= limit then
  return -1
end
redis.call('ZADD', KEYS[1], tonumber(ARGV[3]), ARGV[1])
return held + 1
"""
