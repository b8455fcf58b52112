#!/usr/bin/env node
// Echo backend for proxy tests, bound to 127.0.0.1.
//
//   node echo-backend.mjs [port]          (0 / absent = ephemeral)
// Ready line on stdout: {"listening":port}
//
// Any method, any path (except /__echo/*) answers 200 application/json:
//   {"method","url","path","query":{…},"headers":{…lower-case…},"rawHeaders":[…],
//    "bodyLength":n,"body":"<request body, utf8, first 64 KiB>","count":<request number>,
//    "connection":<connection number>,"httpVersion":"1.1"}
// If the request body is a JSON-RPC request ({"jsonrpc":"2.0","id":…}), the answer is
//   {"jsonrpc":"2.0","id":<same id>,"result":{…the echo object above…}}
// (a JSON-RPC batch gets an array of such answers).
// Query parameters change the answer:
//   delay=ms          wait before the response head
//   status=n          status code (default 200)
//   header=Name:Value response header (repeatable)
//   sse=N&interval=ms text/event-stream: N events `event: tick`, `id: i`,
//                     `data: {"i":i,"path":…}` one every interval ms (default 100), then end
//                     (sse=0 keeps the stream open, one event per interval, until the client goes)
//   size=bytes        body of exactly that many bytes ("x" repeated, application/octet-stream)
//   chunked=1         with size: no Content-Length, sent in 16 KiB chunks
//   hangup=1          destroy the socket without answering
//   hangupAfterHead=1 send the head, then destroy the socket
//   rawChunkSize=S    a chunked answer whose one chunk-size line is S as given (e.g. 0x5,
//                     +5, " 5"), then 5 bytes "hello", then the last chunk
// Control (never proxied in tests; call the echo backend directly):
//   GET  /__echo/stats  → {"requests":n,"connections":n,"byPath":{"/p":n},"inFlight":n,
//                          "openSse":n,"log":[{method,url,headers,bodyLength,ts}] (last 200)}
//   POST /__echo/reset  zero the counters
import http from 'node:http';

const port = Number(process.argv[2] ?? process.env.PORT ?? 0) || 0;
const stats = { requests: 0, connections: 0, byPath: {}, inFlight: 0, openSse: 0, log: [] };
let connSeq = 0;

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  if (url.pathname === '/__echo/stats') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(stats));
    return;
  }
  if (url.pathname === '/__echo/reset') {
    Object.assign(stats, { requests: 0, connections: 0, byPath: {}, log: [] });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
    return;
  }
  stats.requests += 1;
  stats.inFlight += 1;
  const count = stats.requests;
  stats.byPath[url.pathname] = (stats.byPath[url.pathname] || 0) + 1;
  res.on('close', () => { stats.inFlight -= 1; });

  const chunks = [];
  let bodyLength = 0;
  req.on('data', (c) => {
    bodyLength += c.length;
    if (bodyLength <= 65536) chunks.push(c);
  });
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8').slice(0, 65536);
    stats.log.push({ method: req.method, url: req.url, headers: req.headers, bodyLength, ts: Date.now() });
    if (stats.log.length > 200) stats.log.shift();
    const q = url.searchParams;
    const echo = {
      method: req.method,
      url: req.url,
      path: url.pathname,
      query: Object.fromEntries(q),
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      bodyLength,
      body,
      count,
      connection: req.socket.__id,
      httpVersion: req.httpVersion,
    };
    const extra = {};
    for (const h of q.getAll('header')) {
      const i = h.indexOf(':');
      if (i > 0) extra[h.slice(0, i).trim()] = h.slice(i + 1).trim();
    }
    const status = Number(q.get('status')) || 200;
    const go = () => {
      if (q.get('hangup') === '1') {
        req.socket.destroy();
        return;
      }
      if (q.has('rawChunkSize')) {
        // Written on the socket itself: node's http would frame the body its own way.
        const sock = req.socket;
        sock.write(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n${q.get('rawChunkSize')}\r\nhello\r\n0\r\n\r\n`);
        sock.end();
        return;
      }
      if (q.get('hangupAfterHead') === '1') {
        res.writeHead(status, { 'content-type': 'application/json', 'content-length': '1000', ...extra });
        res.flushHeaders();
        setTimeout(() => req.socket.destroy(), 20);
        return;
      }
      if (q.has('sse')) {
        const n = Number(q.get('sse'));
        const interval = Number(q.get('interval') ?? 100);
        res.writeHead(status, {
          'content-type': 'text/event-stream',
          'cache-control': 'no-cache',
          connection: 'keep-alive',
          ...extra,
        });
        res.flushHeaders();
        stats.openSse += 1;
        let i = 0;
        const timer = setInterval(() => {
          i += 1;
          res.write(`event: tick\nid: ${i}\ndata: ${JSON.stringify({ i, path: url.pathname, ts: Date.now() })}\n\n`);
          if (n > 0 && i >= n) {
            clearInterval(timer);
            res.end();
          }
        }, interval);
        res.on('close', () => {
          clearInterval(timer);
          stats.openSse -= 1;
        });
        return;
      }
      if (q.has('size')) {
        const size = Number(q.get('size'));
        const headers = { 'content-type': 'application/octet-stream', ...extra };
        if (q.get('chunked') !== '1') headers['content-length'] = String(size);
        res.writeHead(status, headers);
        const piece = Buffer.alloc(16384, 'x');
        let left = size;
        const pump = () => {
          while (left > 0) {
            const n = Math.min(left, piece.length);
            left -= n;
            if (!res.write(n === piece.length ? piece : piece.subarray(0, n))) {
              res.once('drain', pump);
              return;
            }
          }
          res.end();
        };
        pump();
        return;
      }
      let out = echo;
      try {
        const parsed = JSON.parse(body);
        const wrap = (m) => (m && m.jsonrpc === '2.0' && 'id' in m && m.method
          ? { jsonrpc: '2.0', id: m.id, result: echo } : null);
        if (Array.isArray(parsed)) {
          const answers = parsed.map(wrap).filter(Boolean);
          if (answers.length) out = answers;
        } else if (wrap(parsed)) {
          out = wrap(parsed);
        }
      } catch { /* not JSON */ }
      const text = JSON.stringify(out);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), ...extra });
      res.end(text);
    };
    const delay = Number(q.get('delay')) || 0;
    if (delay) setTimeout(go, delay);
    else go();
  });
});
server.on('connection', (s) => {
  stats.connections += 1;
  s.__id = ++connSeq;
});
server.listen({ host: '127.0.0.1', port }, () => {
  process.stdout.write(JSON.stringify({ listening: server.address().port }) + '\n');
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
if (process.env.PEER_EXIT_ON_STDIN_EOF === '1') {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}
