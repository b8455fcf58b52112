#!/usr/bin/env node
// A legacy HTTP+SSE MCP backend framed as the Python MCP SDK's SseServerTransport
// frames it (sse-starlette underneath), bound to 127.0.0.1: CRLF line ends, the
// endpoint `/messages/?session_id=<32 hex>`, comment pings. Enough MCP for the tests:
// initialize, tools/list (one tool, echo), tools/call echo.
//
//   node py-sse-backend.mjs [port]          (0 / absent = ephemeral)
// Ready line on stdout: {"listening":port,"mode":"sse","path":"/sse"}
//
//   GET  /sse                          the event stream; first event: endpoint
//   POST /messages/?session_id=<hex>   202 "Accepted", the answer on that session's stream;
//                                      an unknown session → 404 "Could not find session"
import crypto from 'node:crypto';
import http from 'node:http';

const port = Number(process.argv[2] ?? process.env.PORT ?? 0) || 0;
const streams = new Map(); // session id → response
const event = (name, data) => `event: ${name}\r\ndata: ${data}\r\n\r\n`;

function answer(msg) {
  if (msg.method === 'initialize') {
    return { protocolVersion: '2024-11-05', capabilities: { tools: {} }, serverInfo: { name: 'py-sse-backend', version: '0' } };
  }
  if (msg.method === 'tools/list') {
    return { tools: [{ name: 'echo', description: 'Echoes back the input', inputSchema: { type: 'object', properties: { message: { type: 'string' } } } }] };
  }
  if (msg.method === 'tools/call' && msg.params?.name === 'echo') {
    return { content: [{ type: 'text', text: `Echo: ${msg.params.arguments?.message ?? ''}` }] };
  }
  return null;
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  if (req.method === 'GET' && url.pathname === '/sse') {
    const id = crypto.randomBytes(16).toString('hex');
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive' });
    res.write(event('endpoint', `/messages/?session_id=${id}`));
    streams.set(id, res);
    const ping = setInterval(() => res.write(`: ping - ${new Date().toISOString()}\r\n\r\n`), 1000);
    res.on('close', () => { clearInterval(ping); streams.delete(id); });
    return;
  }
  if (req.method === 'POST' && url.pathname === '/messages/') {
    const stream = streams.get(url.searchParams.get('session_id') ?? '');
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      if (!stream) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('Could not find session');
        return;
      }
      let msg;
      try { msg = JSON.parse(body); } catch { res.writeHead(400).end('Could not parse message'); return; }
      res.writeHead(202, { 'content-type': 'text/plain' }).end('Accepted');
      if (msg.id === undefined) return; // a notification
      const result = answer(msg);
      const reply = result ? { jsonrpc: '2.0', id: msg.id, result } : { jsonrpc: '2.0', id: msg.id, error: { code: -32601, message: 'Method not found' } };
      stream.write(event('message', JSON.stringify(reply)));
    });
    return;
  }
  res.writeHead(404).end('Not Found');
});

server.listen({ host: '127.0.0.1', port }, () => {
  process.stdout.write(JSON.stringify({ listening: server.address().port, mode: 'sse', path: '/sse' }) + '\n');
});
if (process.env.PEER_EXIT_ON_STDIN_EOF === '1') {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}
process.on('SIGTERM', () => process.exit(0));
