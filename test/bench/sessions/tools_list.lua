-- wrk: POST tools/list in the session named by $SID (keep-alive).
wrk.method = "POST"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/list"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["Mcp-Protocol-Version"] = "2025-06-18"
wrk.headers["Mcp-Session-Id"] = os.getenv("SID")
-- TOKEN: the bearer token (AUTH=1 in run.sh)
local token = os.getenv("TOKEN")
if token ~= nil and token ~= "" then
	wrk.headers["Authorization"] = "Bearer " .. token
end
-- THINK=<ms>: each connection waits that long between requests (a paced load).
local think = tonumber(os.getenv("THINK") or "")
if think ~= nil and think > 0 then
	function delay() return think end
end
