-- wrk script: orgs.get with an API key, the key and organization from the
-- environment (KEY, ORG). Answers other than 200 are counted by wrk; JSON-RPC
-- errors are counted here and printed at the end.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("KEY")
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"orgs.get","params":{"orgId":"' .. os.getenv("ORG") .. '"}}'

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  errors = 0
end

function response(status, headers, body)
  if string.find(body, '"error"', 1, true) then
    errors = errors + 1
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do
    total = total + t:get("errors")
  end
  io.write(string.format("rpc_errors=%d requests=%d rps=%.0f p50_ms=%.2f p99_ms=%.2f\n",
    total, summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
