-- peer: POST /orders, same order stream as ours_noncross.lua in the peer's body format
math.randomseed(os.time())
wrk.method = "POST"
wrk.path = "/orders"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local side, price
  if math.random(2) == 1 then side = "Buy"; price = 90 + math.random(0, 9) else side = "Sell"; price = 101 + math.random(0, 9) end
  return wrk.format(nil, nil, nil, string.format('{"side":"%s","order_type":"Limit","price":%d,"quantity":%d,"symbol":"BTC-USD"}', side, price, math.random(1, 100)))
end
dofile("scripts/peer/done.lua")
