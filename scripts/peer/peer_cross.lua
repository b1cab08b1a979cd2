-- peer: POST /orders, alternating Buy/Sell, qty 10 @ 100: about every other order trades
wrk.method = "POST"
wrk.path = "/orders"
wrk.headers["Content-Type"] = "application/json"
local n = 0
request = function()
  n = n + 1
  local side = (n % 2 == 1) and "Buy" or "Sell"
  return wrk.format(nil, nil, nil, string.format('{"side":"%s","order_type":"Limit","price":100,"quantity":10,"symbol":"BTC-USD"}', side))
end
dofile("scripts/peer/done.lua")
