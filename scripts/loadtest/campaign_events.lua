-- Campaign events in batches of BATCH for recipients sent beforehand
-- (rc-0 … rc-(RECIPIENTS-1)), as an email provider's webhooks deliver
-- them: opens and clicks, every other one with an idempotency key (unique
-- per thread and event, so none is a duplicate).
local counter = 0
local threads = {}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end
function init(args)
  batch = tonumber(os.getenv("BATCH") or "1000")
  recipients = tonumber(os.getenv("RECIPIENTS") or "10000")
end
request = function()
  local parts = {}
  for i = 1, batch do
    counter = counter + 1
    local r = (counter * 7919) % recipients
    local typ = (counter % 3 == 0) and "click" or "open"
    if counter % 2 == 0 then
      parts[i] = string.format('{"recipient":"rc-%d","type":"%s","idempotency_key":"k-%d-%d"}', r, typ, tid, counter)
    else
      parts[i] = string.format('{"recipient":"rc-%d","type":"%s"}', r, typ)
    end
  end
  return wrk.format("POST", nil, nil, '{"events":[' .. table.concat(parts, ",") .. ']}')
end
