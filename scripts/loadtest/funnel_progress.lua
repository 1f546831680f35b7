-- Funnel progress, one unit a call: each unit (thread id + number) reaches
-- landing, then signup 100 units later, then checkout 100 more units later,
-- so that a unit's earlier steps are stored before its next one is sent
-- (wrk keeps 16 requests of a thread in flight at once).
local counter = 0
local threads = {}
local steps = {"landing", "signup", "checkout"}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end
request = function()
  local step = counter % 3
  local unit = math.floor(counter / 3) - 100 * step
  counter = counter + 1
  if unit < 0 then
    step, unit = 0, math.floor(counter / 3) + 1000000
  end
  local body = string.format('{"unit_id":"f-%d-%d","step":"%s"}', tid, unit, steps[step + 1])
  return wrk.format("POST", nil, nil, body)
end
