-- Single-unit assignment of NEW units: every request carries a unit id never
-- seen before (thread id + counter), so every request stores an assignment.
local counter = 0
local threads = {}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end
function init(args)
  prefix = os.getenv("UNIT_PREFIX") or "u"
end
request = function()
  counter = counter + 1
  local body = string.format('{"unit_id":"%s-%d-%d"}', prefix, tid, counter)
  return wrk.format("POST", nil, nil, body)
end
