-- ours: POST /order/, alternating buy/sell, qty 10 @ 100.0: about every other order trades
wrk.method = "POST"
wrk.path = "/order/"
wrk.headers["Content-Type"] = "application/json"
local n = 0
request = function()
  n = n + 1
  local side = (n % 2 == 1) and 1 or -1
  return wrk.format(nil, nil, nil, string.format('{"quantity":10,"price":100.0,"side":%d}', side))
end
dofile("scripts/peer/done.lua")
