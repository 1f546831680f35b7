-- Events in batches of BATCH for units that were assigned beforehand
-- (ev-0 … ev-(UNITS-1)); the metric is continuous, so every event counts.
local counter = 0
function init(args)
  batch = tonumber(os.getenv("BATCH") or "1000")
  units = tonumber(os.getenv("UNITS") or "10000")
end
request = function()
  local parts = {}
  for i = 1, batch do
    counter = counter + 1
    parts[i] = string.format('{"unit_id":"ev-%d","value":1.5}', (counter * 7919) % units)
  end
  return wrk.format("POST", nil, nil, '{"events":[' .. table.concat(parts, ",") .. ']}')
end
