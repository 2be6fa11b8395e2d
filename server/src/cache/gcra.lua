-- Rate limit steps, as one atomic GCRA pass (see limits.rs for the shape).
-- KEYS[i]: a bucket (at most once per call). ARGV[1]: '1' when the steps are
-- all-or-nothing. Then four values per step: the spacing of calls and the
-- burst (microseconds), the cost, and the mode (0: take the whole cost or
-- nothing, 1: take as much of the cost as fits, 2: look without taking).
-- Steps run in order and stop at the first one that lets nothing through.
-- Returns per step run: { allowed, when the next call (the whole cost, for a
-- refused mode 0) could go, in microseconds from now, remaining }.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local atomic = ARGV[1] == '1'
local out, writes = {}, {}
for i, key in ipairs(KEYS) do
  local b = 2 + (i - 1) * 4
  local interval, burst = tonumber(ARGV[b]), tonumber(ARGV[b + 1])
  local cost, mode = tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  local room = math.floor((now + burst - tat) / interval)
  if room < 0 then room = 0 end
  local allowed = math.min(room, cost)
  if mode == 0 and allowed < cost then allowed = 0 end
  local after = tat
  local remaining = room
  if mode ~= 2 then
    after = tat + allowed * interval
    remaining = room - allowed
    if allowed > 0 then
      writes[#writes + 1] = { key, after, after - now }
    end
  end
  local need = 1
  if mode == 0 and allowed == 0 then need = cost end
  local retry = after + need * interval - burst - now
  if retry < 0 then retry = 0 end
  out[i] = { allowed, retry, remaining }
  if allowed == 0 and cost > 0 then
    if atomic then writes = {} end
    break
  end
end
for _, w in ipairs(writes) do
  redis.call('SET', w[1], string.format('%.0f', w[2]), 'PX', math.floor(w[3] / 1000) + 1)
end
return out
