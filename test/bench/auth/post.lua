-- wrk script: POST /mcp with a JSON-RPC body (the same request as test/bench/bench.sh),
-- plus "Authorization: Bearer <token>" when a token is given:
-- wrk ... -s post.lua URL [-- <token>]
wrk.method = "POST"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"

function init(args)
  if args[1] and #args[1] > 0 then wrk.headers["Authorization"] = "Bearer " .. args[1] end
end
