-- POST /orders/batch with BATCH orders a request (default 10), each as
-- ../shared/bench/post_cross.lua makes them: random side, prices 95..105,
-- so about half cross and trade. `BATCH=1` posts single orders to
-- /order/ instead, for a side-by-side figure:
--   BATCH=10 wrk -t1 -c32 -d10s -s scripts/wrk_batch.lua http://127.0.0.1:8000
math.randomseed(os.time())
local batch = tonumber(os.getenv("BATCH") or "10")
wrk.method = "POST"
wrk.path = (batch == 1) and "/order/" or "/orders/batch"
wrk.headers["Content-Type"] = "application/json"

local function order()
  local side = (math.random(2) == 1) and 1 or -1
  return string.format('{"quantity":%d,"price":%d.0,"side":%d}',
    math.random(1, 100), 95 + math.random(0, 10), side)
end

request = function()
  if batch == 1 then
    return wrk.format(nil, nil, nil, order())
  end
  local orders = {}
  for i = 1, batch do orders[i] = order() end
  return wrk.format(nil, nil, nil, '{"orders":[' .. table.concat(orders, ",") .. ']}')
end

-- Every answer must be a 200: a refused batch would inflate the figure.
local non200 = 0
response = function(status)
  if status ~= 200 then non200 = non200 + 1 end
end
done = function(summary, latency, requests)
  io.write(string.format("orders per request %d, orders/s %.0f, non-200 answers seen by thread 1: %d\n",
    batch, summary.requests / (summary.duration / 1e6) * batch, non200))
end
