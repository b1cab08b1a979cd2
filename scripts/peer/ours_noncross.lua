-- ours: POST /order/, buys 90..99, sells 101..110: never crossing (book grows)
math.randomseed(os.time())
wrk.method = "POST"
wrk.path = "/order/"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local side, price
  if math.random(2) == 1 then side = 1; price = 90 + math.random(0, 9) else side = -1; price = 101 + math.random(0, 9) end
  return wrk.format(nil, nil, nil, string.format('{"quantity":%d,"price":%d.0,"side":%d}', math.random(1, 100), price, side))
end
dofile("scripts/peer/done.lua")
