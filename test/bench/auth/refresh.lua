-- wrk script: refresh_token grants with rotating tokens (one Lua state: run wrk with -t1).
-- wrk ... -s refresh.lua URL -- <tokens file: one refresh token per line> <client_id>
-- A queue of refresh-token chains: each request takes the oldest token, each 200 answer
-- puts the rotated token back, so every chain stays valid. Needs more chains than -c.
local queue, head, tail = {}, 1, 0
local client_id
local first = true
ok, bad, empty = 0, 0, 0 -- globals: read by done() through thread:get()

function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then tail = tail + 1; queue[tail] = line end
  end
  client_id = args[2]
end

local function build(tok)
  return wrk.format("POST", "/oauth/token",
    { ["Content-Type"] = "application/x-www-form-urlencoded" },
    "grant_type=refresh_token&refresh_token=" .. tok .. "&client_id=" .. client_id)
end

function request()
  if first then -- wrk calls request() once to verify it; that one is never sent
    first = false
    return build(queue[head])
  end
  if head > tail then
    empty = empty + 1
    return build("exhausted")
  end
  local tok = queue[head]
  queue[head] = nil
  head = head + 1
  return build(tok)
end

function response(status, headers, body)
  if status == 200 then
    local tok = body:match('"refresh_token"%s*:%s*"([^"]+)"')
    if tok then
      ok = ok + 1
      tail = tail + 1
      queue[tail] = tok
      return
    end
  end
  bad = bad + 1
  if bad <= 3 then io.write(string.format("LUA-BAD %d %s\n", status, body:sub(1, 200))) end
end


local threads = {}
function setup(thread) table.insert(threads, thread) end

function done(summary, latency, requests)
  for _, t in ipairs(threads) do
    io.write(string.format("LUA ok=%d bad=%d%s\n", t:get("ok"), t:get("bad"),
      string.format(" empty=%d", t:get("empty"))))
  end
end
