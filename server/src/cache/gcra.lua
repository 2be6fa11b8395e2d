-- Passes of rate limit steps, as one atomic script run (see limits.rs for
-- the shape): the passes of every call waiting at once, one round trip.
-- KEYS: the buckets named by the passes, each once.
-- ARGV[1]: the number of passes. Then, per pass: '1' when its steps are
-- all-or-nothing, its number of steps, and five values per step: the index
-- of its bucket in KEYS, the spacing of calls and the burst (microseconds),
-- the cost, and the mode (0: take the whole cost or nothing, 1: take as much
-- of the cost as fits, 2: look without taking). A bucket is named at most
-- once per pass; later passes see what earlier ones took. A pass's steps
-- run in order and stop at the first one that lets nothing through.
-- Returns one flat list: per pass, the number of steps run, then three
-- values per step run: allowed, when the next call (the whole cost, for a
-- refused mode 0) could go, in microseconds from now, and remaining.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tats, dirty = {}, {}
local out, n = {}, 0
local a = 2
for _ = 1, tonumber(ARGV[1]) do
  local atomic = ARGV[a] == '1'
  local steps = tonumber(ARGV[a + 1])
  a = a + 2
  local count_at = n + 1
  n = n + 1
  local ran, writes = 0, {}
  for i = 1, steps do
    local b = tonumber(ARGV[a])
    local interval, burst = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
    local cost, mode = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
    a = a + 5
    local tat = tats[b]
    if tat == nil then
      tat = tonumber(redis.call('GET', KEYS[b])) or 0
      tats[b] = tat
    end
    if tat < now then tat = now end
    local room = math.floor((now + burst - tat) / interval)
    if room < 0 then room = 0 end
    local allowed = math.min(room, cost)
    if mode == 0 and allowed < cost then allowed = 0 end
    local after, remaining = tat, room
    if mode ~= 2 then
      after = tat + allowed * interval
      remaining = room - allowed
      if allowed > 0 then
        writes[#writes + 1] = b
        writes[#writes + 1] = after
      end
    end
    local need = 1
    if mode == 0 and allowed == 0 then need = cost end
    local retry = after + need * interval - burst - now
    if retry < 0 then retry = 0 end
    out[n + 1], out[n + 2], out[n + 3] = allowed, retry, remaining
    n = n + 3
    ran = i
    if allowed == 0 and cost > 0 then
      if atomic then writes = {} end
      a = a + 5 * (steps - i)
      break
    end
  end
  out[count_at] = ran
  for w = 1, #writes, 2 do
    tats[writes[w]] = writes[w + 1]
    dirty[writes[w]] = true
  end
end
for b in pairs(dirty) do
  local tat = tats[b]
  -- A whole number below 2^53: Redis writes it out in full.
  redis.call('SET', KEYS[b], tat, 'PX', math.floor((tat - now) / 1000) + 1)
end
return out
