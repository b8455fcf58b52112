-- wrk script: authorization_code exchanges, each code used once (run wrk with -t1).
-- wrk ... -s code.lua URL -- <codes file: one code per line> <client_id> <code_verifier> <redirect_uri> <resource>
-- wrk's own run always lasts -d, so its req/s is useless for a finite list: the script takes
-- the wall time itself (date +%s%N, twice: first request sent, last code answered), prints
-- "LUA ok=… bad=… sent=… elapsed_ms=…", then stops the thread. A code answered with anything
-- but 200 is bad. Requests sent after the list ran out (at most -c) name an unknown client
-- "exhausted": they are answered invalid_client, ignored here, counted by wrk as non-2xx.
local codes, n, idx = {}, 0, 0
local client_id, verifier, redirect_uri, resource
local first = true
ok, bad, sent, elapsed_ms = 0, 0, 0, 0 -- globals: read by done() through thread:get()
local t0

local function now_ms()
  local p = io.popen("date +%s%N")
  local s = p:read("*l")
  p:close()
  return tonumber(s) / 1e6
end

local function enc(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then n = n + 1; codes[n] = line end
  end
  client_id, verifier, redirect_uri, resource = args[2], args[3], enc(args[4]), enc(args[5])
end

local function build(code, cid)
  return wrk.format("POST", "/oauth/token",
    { ["Content-Type"] = "application/x-www-form-urlencoded" },
    "grant_type=authorization_code&code=" .. code .. "&redirect_uri=" .. redirect_uri ..
    "&client_id=" .. (cid or client_id) .. "&code_verifier=" .. verifier .. "&resource=" .. resource)
end

function request()
  if first then -- wrk calls request() once to verify it; that one is never sent
    first = false
    return build(codes[1])
  end
  if idx >= n then
    return build("exhausted", "exhausted") -- an unknown client: told apart by its error
  end
  if t0 == nil then t0 = now_ms() end
  idx = idx + 1
  sent = idx
  return build(codes[idx])
end

function response(status, headers, body)
  if ok + bad >= n or body:find('"invalid_client"', 1, true) then return end -- "exhausted"
  if status == 200 and body:find('"access_token"', 1, true) then
    ok = ok + 1
  else
    bad = bad + 1
    if bad <= 3 then io.write(string.format("LUA-BAD %d %s\n", status, body:sub(1, 200))) end
  end
  if ok + bad == n then
    elapsed_ms = now_ms() - t0
    wrk.thread:stop()
  end
end

local threads = {}
function setup(thread) table.insert(threads, thread) end

function done(summary, latency, requests)
  for _, t in ipairs(threads) do
    io.write(string.format("LUA ok=%d bad=%d sent=%d elapsed_ms=%.1f\n", t:get("ok"), t:get("bad"),
      t:get("sent"), t:get("elapsed_ms")))
  end
end
