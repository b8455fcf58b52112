-- wrk script: POST /mcp tools/list (with the Mcp-Method header, which the policy checks against
-- the body and the benchmark's backend answers by), plus "Authorization: Bearer <token>":
-- wrk ... -s list.lua URL [-- <token>]
wrk.method = "POST"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["Mcp-Method"] = "tools/list"

function init(args)
  if args[1] and #args[1] > 0 then wrk.headers["Authorization"] = "Bearer " .. args[1] end
end
