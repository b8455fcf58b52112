// Forwarding MCP traffic (proxy/forward.c) with auth.mode none: what reaches the backend, what
// comes back, streaming, large bodies, limits, failures (502/504), the keep-alive pool, client
// aborts, and a real MCP session (SDK client ↔ proxy ↔ server-everything).
// Everything runs on 127.0.0.1 against the echo backend and server-everything.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import fs from 'node:fs';
import {
  startProxy, startEchoBackend, startBackend, connectClient, request, waitFor, sleep, getFreePort,
  scrapeMetrics, SLOW, SANITIZE,
} from './lib/harness.mjs';

/** A config forwarding to url with auth none; extra.server / extra.backend are merged. */
function cfg(url, extra = {}) {
  return {
    auth: { mode: 'none' },
    server: { ...(extra.server || {}) },
    backend: { url, ...(extra.backend || {}) },
  };
}

/** The echo object of an echo-backend answer (plain or JSON-RPC wrapped). */
function echoOf(r) {
  const j = r.json();
  return j.jsonrpc ? j.result : j;
}

/**
 * Send raw bytes, parse one response (Content-Length, chunked, or until close):
 * → {status, head (text), headers {lower: [values]}, body (Buffer), closed (bool: EOF seen)}.
 */
function rawRequest(port, text, { timeoutMs = 10000 } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1', () => sock.write(text));
    let buf = Buffer.alloc(0);
    let done = false;
    const timer = setTimeout(() => finish(new Error(`raw request timed out; got: ${buf.toString('latin1').slice(0, 300)}`)), timeoutMs);
    function parse(eof) {
      const i = buf.indexOf('\r\n\r\n');
      if (i < 0) return eof ? { error: new Error('EOF before the response head') } : null;
      const head = buf.subarray(0, i).toString('latin1');
      const lines = head.split('\r\n');
      const status = Number(lines[0].split(' ')[1]);
      const headers = {};
      for (const l of lines.slice(1)) {
        const c = l.indexOf(':');
        const k = l.slice(0, c).trim().toLowerCase();
        (headers[k] ||= []).push(l.slice(c + 1).trim());
      }
      let rest = buf.subarray(i + 4);
      if (headers['content-length']) {
        const n = Number(headers['content-length'][0]);
        if (rest.length >= n) return { status, head, headers, body: rest.subarray(0, n) };
        return eof ? { status, head, headers, body: rest, truncated: true } : null;
      }
      if ((headers['transfer-encoding'] || []).includes('chunked')) {
        const parts = [];
        for (;;) {
          const e = rest.indexOf('\r\n');
          if (e < 0) return eof ? { status, head, headers, body: Buffer.concat(parts), truncated: true } : null;
          const size = parseInt(rest.subarray(0, e).toString('latin1'), 16);
          if (size === 0) return { status, head, headers, body: Buffer.concat(parts) };
          if (rest.length < e + 2 + size + 2) return eof ? { status, head, headers, body: Buffer.concat(parts), truncated: true } : null;
          parts.push(rest.subarray(e + 2, e + 2 + size));
          rest = rest.subarray(e + 2 + size + 2);
        }
      }
      return eof ? { status, head, headers, body: rest } : null;
    }
    function finish(err, res) {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err); else resolve(res);
    }
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const r = parse(false);
      if (r) finish(null, { ...r, closed: false });
    });
    sock.on('end', () => {
      const r = parse(true);
      if (r.error) finish(r.error); else finish(null, { ...r, closed: true });
    });
    sock.on('error', (e) => finish(e));
  });
}

/**
 * GET (or method) url as a stream: → {status, headers, chunks:[{t, text}], text(), ended (Promise
 * of {t, complete}), close()}. Timestamps are Date.now() at the client.
 */
function openStream(url, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers: { accept: 'text/event-stream', ...headers }, agent: false }, (res) => {
      const chunks = [];
      let endResolve;
      const ended = new Promise((r) => { endResolve = r; });
      res.setEncoding('utf8');
      res.on('data', (d) => chunks.push({ t: Date.now(), text: d }));
      res.on('end', () => endResolve({ t: Date.now(), complete: true }));
      res.on('close', () => endResolve({ t: Date.now(), complete: res.complete }));
      res.on('error', () => endResolve({ t: Date.now(), complete: false }));
      resolve({
        status: res.statusCode,
        headers: res.headers,
        chunks,
        res,
        text: () => chunks.map((c) => c.text).join(''),
        ended,
        close: () => req.destroy(),
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** SSE events with the client time each event's last byte arrived: [{t, event, id, data}]. */
function sseEvents(chunks) {
  const out = [];
  let pending = '';
  for (const c of chunks) {
    pending += c.text;
    let i;
    while ((i = pending.indexOf('\n\n')) >= 0) {
      const block = pending.slice(0, i);
      pending = pending.slice(i + 2);
      const ev = { t: c.t };
      for (const line of block.split('\n')) {
        const m = /^(\w+): ?(.*)$/.exec(line);
        if (m) ev[m[1]] = m[1] === 'data' && ev.data !== undefined ? `${ev.data}\n${m[2]}` : m[2];
      }
      out.push(ev);
    }
  }
  return out;
}

function vmRssKiB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]);
}

// ---------------------------------------------------------------- what reaches the backend

test('path, query, method and body reach the backend unchanged (POST, GET, DELETE, OPTIONS, PUT, PATCH, HEAD)', async (t) => {
  const echo = await startEchoBackend({ t });
  const p = await startProxy(cfg(echo.url), { t });
  const body = JSON.stringify({ jsonrpc: '2.0', id: 'req-1', method: 'tools/list', params: { q: 'ü €' } });
  const post = await request(`${p.origin}/mcp/a%20b/c?x=1&y=%2F%3F&z=&x=2`, {
    method: 'POST', body, headers: { 'content-type': 'application/json' },
  });
  assert.equal(post.status, 200);
  assert.equal(post.json().id, 'req-1', 'the JSON-RPC answer comes back');
  const e = echoOf(post);
  assert.equal(e.method, 'POST');
  assert.equal(e.url, '/mcp/a%20b/c?x=1&y=%2F%3F&z=&x=2', 'path and query byte for byte');
  assert.equal(e.body, body);
  assert.equal(e.bodyLength, Buffer.byteLength(body));
  assert.equal(e.httpVersion, '1.1');
  for (const method of ['GET', 'DELETE', 'OPTIONS', 'PUT', 'PATCH']) {
    const r = await request(`${p.origin}/mcp?m=${method}`, { method });
    assert.equal(r.status, 200, method);
    assert.equal(echoOf(r).method, method);
    assert.equal(echoOf(r).url, `/mcp?m=${method}`);
  }
  const head = await request(`${p.origin}/mcp?m=HEAD`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.body, '');
  assert.equal((await echo.stats()).log.at(-1).method, 'HEAD');
  // Backend status codes pass through with their bodies.
  const s = await request(`${p.origin}/mcp?status=404`);
  assert.equal(s.status, 404);
  assert.equal(echoOf(s).path, '/mcp');
  await p.stop();
});

test('backend.url with a path prefix: the path is appended to it', async (t) => {
  const echo = await startEchoBackend({ t });
  const p = await startProxy(cfg(`${echo.url}/base/`), { t });
  const r = await request(`${p.origin}/mcp?a=1`);
  assert.equal(echoOf(r).url, '/base/mcp?a=1');
  await p.stop();
});

test('MCP headers pass both ways: Mcp-Session-Id, MCP-Protocol-Version, Last-Event-ID, Accept, Content-Type', async (t) => {
  const echo = await startEchoBackend({ t });
  const p = await startProxy(cfg(echo.url), { t });
  const r = await request(
    `${p.origin}/mcp?header=Mcp-Session-Id:sess-42&header=MCP-Protocol-Version:2025-06-18&header=X-Backend-Note:yes`,
    {
      method: 'POST',
      body: '{"jsonrpc":"2.0","id":1,"method":"ping"}',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-session-id': 'sess-41',
        'mcp-protocol-version': '2025-06-18',
        'last-event-id': 'ev-7',
        'x-custom-app': 'kept',
      },
    },
  );
  assert.equal(r.status, 200);
  const h = echoOf(r).headers;
  assert.equal(h['mcp-session-id'], 'sess-41');
  assert.equal(h['mcp-protocol-version'], '2025-06-18');
  assert.equal(h['last-event-id'], 'ev-7');
  assert.equal(h.accept, 'application/json, text/event-stream');
  assert.equal(h['content-type'], 'application/json');
  assert.equal(h['x-custom-app'], 'kept');
  assert.equal(r.headers['mcp-session-id'], 'sess-42');
  assert.equal(r.headers['mcp-protocol-version'], '2025-06-18');
  assert.equal(r.headers['x-backend-note'], 'yes');
  assert.equal(r.headers['content-type'], 'application/json');
  assert.match(r.headers['x-request-id'], /^[0-9a-f]+$/);
  await p.stop();
});

test('hop-by-hop request headers, Authorization and Proxy-Authorization are not forwarded', async (t) => {
  const echo = await startEchoBackend({ t });
  const p = await startProxy(cfg(echo.url), { t });
  const body = '{"jsonrpc":"2.0","id":9,"method":"ping"}';
  const r = await rawRequest(p.port, [
    'POST /mcp?hop=1 HTTP/1.1',
    'Host: front.example:8443',
    'Connection: x-custom, x-other',
    'X-Custom: must-not-pass',
    'X-Other: must-not-pass',
    'Keep-Alive: timeout=5',
    'TE: trailers',
    'Trailer: X-Trail',
    'Upgrade: websocket',
    'Proxy-Authorization: Basic cHJveHk6c2VjcmV0',
    'Proxy-Connection: keep-alive',
    'Authorization: Bearer client-token-never-forwarded',
    'X-Passes: yes',
    'Content-Type: application/json',
    `Content-Length: ${body.length}`,
    '', body,
  ].join('\r\n'));
  assert.equal(r.status, 200);
  const e = JSON.parse(r.body.toString()).result;
  const names = e.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
  for (const hop of ['connection', 'x-custom', 'x-other', 'keep-alive', 'te', 'trailer', 'upgrade',
    'proxy-authorization', 'proxy-connection', 'authorization']) {
    assert.ok(!names.includes(hop), `${hop} reached the backend: ${names}`);
  }
  assert.equal(e.headers['x-passes'], 'yes');
  assert.equal(e.body, body);
  assert.equal(e.headers['content-length'], String(body.length));
  assert.ok(!JSON.stringify(e).includes('client-token-never-forwarded'));
  await p.stop();
});

test('hop-by-hop response headers are not passed to the client', async (t) => {
  const echo = await startEchoBackend({ t });
  const p = await startProxy(cfg(echo.url), { t });
  const q = ['Keep-Alive:timeout%3D5', 'Proxy-Authenticate:Basic', 'Upgrade:h2c', 'Proxy-Connection:keep-alive', 'X-Stays:1']
    .map((h) => `header=${h}`).join('&');
  const r = await rawRequest(p.port, `GET /mcp?${q} HTTP/1.1\r\nHost: x\r\n\r\n`);
  assert.equal(r.status, 200);
  for (const hop of ['keep-alive', 'proxy-authenticate', 'upgrade', 'proxy-connection']) {
    assert.equal(r.headers[hop], undefined, `${hop} passed to the client:\n${r.head}`);
  }
  assert.deepEqual(r.headers['x-stays'], ['1']);
  assert.equal(r.headers['transfer-encoding'], undefined);
  assert.deepEqual(r.headers['content-length'], [String(r.body.length)]);
  await p.stop();
});

test('X-Forwarded-For/-Proto/-Host are set; client-sent ones are ignored unless server.trustProxyHeaders', async (t) => {
  const echo = await startEchoBackend({ t });
  const spoof = { 'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.example' };
  const p = await startProxy(cfg(echo.url), { t });
  let h = echoOf(await request(`${p.origin}/mcp`, { headers: spoof })).headers;
  assert.equal(h['x-forwarded-for'], '127.0.0.1');
  assert.equal(h['x-forwarded-proto'], 'http');
  assert.equal(h['x-forwarded-host'], `127.0.0.1:${p.port}`);
  h = echoOf(await request(`${p.origin}/mcp`)).headers;
  assert.equal(h['x-forwarded-for'], '127.0.0.1');
  assert.equal(h['x-forwarded-host'], `127.0.0.1:${p.port}`);
  // The backend's Host is the backend's own authority.
  assert.equal(h.host, `127.0.0.1:${echo.port}`);
  await p.stop();

  const trusted = await startProxy(cfg(echo.url, { server: { trustProxyHeaders: true } }), { t });
  h = echoOf(await request(`${trusted.origin}/mcp`, { headers: spoof })).headers;
  assert.equal(h['x-forwarded-for'], '203.0.113.9, 127.0.0.1', 'our peer is appended');
  assert.equal(h['x-forwarded-proto'], 'https');
  assert.equal(h['x-forwarded-host'], 'evil.example');
  h = echoOf(await request(`${trusted.origin}/mcp`)).headers;
  assert.equal(h['x-forwarded-for'], '127.0.0.1');
  assert.equal(h['x-forwarded-proto'], 'http');
  await trusted.stop();
});

// ---------------------------------------------------------------- streaming

test('SSE events are streamed as they come, not in one burst', async (t) => {
  const echo = await startEchoBackend({ t });
  const p = await startProxy(cfg(echo.url), { t });
  const s = await openStream(`${p.origin}/mcp?sse=5&interval=200`);
  assert.equal(s.status, 200);
  assert.match(s.headers['content-type'], /^text\/event-stream/);
  assert.equal(s.headers['x-accel-buffering'], 'no');
  const end = await s.ended;
  assert.ok(end.complete, 'the stream ended cleanly');
  const evs = sseEvents(s.chunks);
  assert.deepEqual(evs.map((e) => e.id), ['1', '2', '3', '4', '5']);
  assert.ok(evs.every((e) => e.event === 'tick'));
  const spread = evs.at(-1).t - evs[0].t;
  assert.ok(spread >= 600, `events arrived spread over time (first→last ${spread} ms, sent 800 ms apart)`);
  // Each event arrives close to when the backend sent it.
  for (const e of evs) {
    const lag = e.t - JSON.parse(e.data).ts;
    assert.ok(lag < 150 * SLOW, `event ${e.id} lagged ${lag} ms`);
  }
  await p.stop();
});

test('a POST answered with an SSE stream (Streamable HTTP) streams too', async (t) => {
  const echo = await startEchoBackend({ t });
  const p = await startProxy(cfg(echo.url), { t });
  const s = await openStream(`${p.origin}/mcp?sse=3&interval=250`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: '{"jsonrpc":"2.0","id":1,"method":"tools/call"}',
  });
  await s.ended;
  const evs = sseEvents(s.chunks);
  assert.equal(evs.length, 3);
  assert.ok(evs[2].t - evs[0].t >= 350, `spread ${evs[2].t - evs[0].t} ms`);
  await p.stop();
});

test('a held-open GET stream outlives 2× server.headerTimeout while events flow', async (t) => {
  const echo = await startEchoBackend({ t });
  const p = await startProxy(cfg(echo.url, { server: { headerTimeout: '1s' } }), { t });
  const s = await openStream(`${p.origin}/mcp?sse=0&interval=200`);
  assert.equal(s.status, 200);
  let ended = false;
  s.ended.then(() => { ended = true; });
  await sleep(2600);
  assert.equal(ended, false, 'stream cut while events were flowing');
  const n = sseEvents(s.chunks).length;
  assert.ok(n >= 10, `events kept arriving (${n})`);
  const m = await scrapeMetrics(p.diagUrl);
  assert.equal(m.get('mcp_proxy_open_streams'), 1);
  s.close();
  await waitFor(async () => (await echo.stats()).openSse === 0, { message: 'backend stream closed' });
  await waitFor(async () => (await scrapeMetrics(p.diagUrl)).get('mcp_proxy_open_streams') === 0, { message: 'open_streams back to 0' });
  await p.stop();
});

for (const chunked of [false, true]) {
  test(`a 5 MB response ${chunked ? 'with chunked encoding' : 'with Content-Length'} arrives complete and byte-exact`, async (t) => {
    const echo = await startEchoBackend({ t });
    const p = await startProxy(cfg(echo.url), { t });
    const size = 5 * 1024 * 1024 + 17;
    const r = await request(`${p.origin}/big?size=${size}${chunked ? '&chunked=1' : ''}`, { timeoutMs: 30000 });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'application/octet-stream');
    assert.equal(r.buffer.length, size);
    assert.ok(r.buffer.equals(Buffer.alloc(size, 'x')), 'bytes differ');
    if (!chunked) assert.equal(r.headers['content-length'], String(size));
    // The connection stays usable (message boundary kept): a second one on the pool.
    const again = await request(`${p.origin}/small?size=10`);
    assert.equal(again.body, 'xxxxxxxxxx');
    await p.stop();
  });
}

test('backpressure: a client that stops reading does not make the proxy buffer the response', async (t) => {
  const echo = await startEchoBackend({ t });
  const p = await startProxy(cfg(echo.url), { t });
  const size = 96 * 1024 * 1024;
  const before = vmRssKiB(p.proc.pid);
  const s = await openStream(`${p.origin}/huge?size=${size}`);
  let peak = before;
  if (!s.chunks.length) await new Promise((resolve) => s.res.once('data', resolve));
  s.res.pause();
  for (let i = 0; i < 10; i++) {
    await sleep(150);
    peak = Math.max(peak, vmRssKiB(p.proc.pid));
  }
  const grew = peak - before;
  // (ASan keeps freed chunks in quarantine, so allow it more; buffering 96 MiB still fails.)
  assert.ok(grew < (SANITIZE ? 48 : 24) * 1024, `proxy RSS grew by ${grew} KiB while the client was paused (response ${size >> 20} MiB)`);
  s.res.resume();
  await s.ended;
  const got = s.chunks.reduce((n, c) => n + c.text.length, 0);
  assert.equal(got, size, 'every byte arrived after resuming');
  await p.stop();
});

// ---------------------------------------------------------------- limits and failures

test('a request body over server.maxBodySize is refused with 413 and never forwarded', async (t) => {
  const echo = await startEchoBackend({ t });
  const p = await startProxy(cfg(echo.url, { server: { maxBodySize: '1KiB' } }), { t });
  const ok = await request(`${p.origin}/mcp`, { method: 'POST', body: 'a'.repeat(1024), headers: { 'content-type': 'text/plain' } });
  assert.equal(ok.status, 200);
  assert.equal(echoOf(ok).bodyLength, 1024);
  const big = await request(`${p.origin}/mcp?too=big`, { method: 'POST', body: 'a'.repeat(1025), headers: { 'content-type': 'text/plain' } });
  assert.equal(big.status, 413);
  assert.match(big.headers['content-type'], /^application\/json/);
  assert.deepEqual(big.json(), { error: 'request_too_large', error_description: 'request body exceeds the limit of 1024 bytes' });
  const chunked = await rawRequest(p.port, `POST /mcp?too=chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n${'b'.repeat(2048)}\r\n0\r\n\r\n`);
  assert.equal(chunked.status, 413);
  assert.equal(JSON.parse(chunked.body.toString()).error, 'request_too_large');
  assert.equal(chunked.headers.connection[0], 'close');
  // The declared length alone is refused before any body byte is sent (no 100-continue).
  const declared = await rawRequest(p.port, 'POST /mcp?too=declared HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n');
  assert.equal(declared.status, 413);
  assert.doesNotMatch(declared.head, /100 Continue/);
  const st = await echo.stats();
  assert.ok(!st.log.some((l) => l.url.includes('too=')), 'an oversized body reached the backend');
  // The proxy keeps serving.
  assert.equal((await request(`${p.origin}/mcp`)).status, 200);
  await p.stop();
});

test('a client closing while its request waits for the backend head cancels the backend request', async (t) => {
  const echo = await startEchoBackend({ t });
  const p = await startProxy(cfg(echo.url), { t });
  const sock = net.connect(p.port, '127.0.0.1');
  await new Promise((resolve) => sock.once('connect', resolve));
  sock.write('POST /mcp?delay=3000 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}');
  await waitFor(async () => (await echo.stats()).inFlight === 1, { message: 'the request reached the backend' });
  const t0 = Date.now();
  sock.destroy();
  await waitFor(async () => (await echo.stats()).inFlight === 0, { timeoutMs: 2500, intervalMs: 50, message: 'backend request cancelled' });
  assert.ok(Date.now() - t0 < 1500 * SLOW, `the backend connection closed ${Date.now() - t0} ms after the client left`);
  const line = await p.waitForLog((l) => l.msg === 'access' && l.path === '/mcp' && l.status === 499);
  assert.ok(line.duration_ms < 2000, `logged as abandoned after ${line.duration_ms} ms`);
  // The proxy keeps serving.
  assert.equal((await request(`${p.origin}/mcp`)).status, 200);
  await p.stop();
});

test('backend down → 502 with a JSON body', async (t) => {
  const url = `http://127.0.0.1:${await getFreePort()}`;
  const p = await startProxy(cfg(url), { t });
  const r = await request(`${p.origin}/mcp`, { headers: { accept: 'application/json' } });
  assert.equal(r.status, 502);
  assert.match(r.headers['content-type'], /^application\/json/);
  const j = r.json();
  assert.equal(j.error, 'bad_gateway');
  assert.match(j.error_description, /connect/i);
  assert.match(r.headers['x-request-id'], /^[0-9a-f]+$/);
  await p.stop();
});

test('backend hangs up without answering → 502; after the head → the client sees a truncated reply', async (t) => {
  const echo = await startEchoBackend({ t });
  const p = await startProxy(cfg(echo.url), { t });
  const r = await request(`${p.origin}/mcp?hangup=1`);
  assert.equal(r.status, 502);
  assert.equal(r.json().error, 'bad_gateway');
  // Content-Length 1000 promised, 0 bytes sent, then the backend closes: the proxy must not
  // pretend the reply is complete — it closes the client connection too.
  const t2 = await rawRequest(p.port, 'GET /mcp?hangupAfterHead=1 HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.equal(t2.status, 200);
  assert.deepEqual(t2.headers['content-length'], ['1000']);
  assert.ok(t2.truncated && t2.closed, 'the client connection was closed short of Content-Length');
  assert.equal((await request(`${p.origin}/mcp`)).status, 200, 'the proxy keeps serving');
  await p.stop();
});

test('backend.responseTimeout → 504 with a JSON body, at about the configured time', async (t) => {
  const echo = await startEchoBackend({ t });
  const p = await startProxy(cfg(echo.url, { backend: { responseTimeout: '500ms' } }), { t });
  const t0 = Date.now();
  const r = await request(`${p.origin}/mcp?delay=2000`);
  const took = Date.now() - t0;
  assert.equal(r.status, 504);
  assert.equal(r.json().error, 'gateway_timeout');
  assert.ok(took >= 450 && took < 1800, `504 after ${took} ms`);
  // A streaming answer whose head comes in time is not cut by the response timeout.
  const s = await openStream(`${p.origin}/mcp?sse=4&interval=300`);
  assert.equal(s.status, 200);
  assert.ok((await s.ended).complete);
  assert.equal(sseEvents(s.chunks).length, 4);
  await p.stop();
});

test('502/504 answer a JSON-RPC request with a JSON-RPC error carrying its id', async (t) => {
  const echo = await startEchoBackend({ t });
  const p = await startProxy(cfg(echo.url, { backend: { responseTimeout: '500ms' } }), { t });
  for (const id of [7, 'req-abc', 0]) {
    const r = await request(`${p.origin}/mcp?delay=2000`, { method: 'POST', body: { jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'x' } } });
    assert.equal(r.status, 504);
    assert.match(r.headers['content-type'], /^application\/json/);
    const j = r.json();
    assert.equal(j.jsonrpc, '2.0');
    assert.equal(j.id, id);
    assert.equal(typeof j.error.code, 'number');
    assert.match(j.error.message, /did not answer in time/);
  }
  // A JSON body that is not JSON-RPC gets the plain error shape.
  const plain = await request(`${p.origin}/mcp?delay=2000`, { method: 'POST', body: { hello: 1 } });
  assert.equal(plain.status, 504);
  assert.equal(plain.json().error, 'gateway_timeout');
  const dead = await startProxy(cfg(`http://127.0.0.1:${await getFreePort()}`), { t });
  const d = await request(`${dead.origin}/mcp`, { method: 'POST', body: { jsonrpc: '2.0', id: 'x-1', method: 'initialize' } });
  assert.equal(d.status, 502);
  assert.equal(d.json().jsonrpc, '2.0');
  assert.equal(d.json().id, 'x-1');
  await dead.stop();
  await p.stop(); // under ASan: no report (the id parse must not read past the body)
});

test('keep-alive pool: sequential requests reuse few backend connections', async (t) => {
  const echo = await startEchoBackend({ t });
  const p = await startProxy(cfg(echo.url), { t });
  const conns = new Set();
  for (let i = 0; i < 40; i++) {
    const r = await request(`${p.origin}/mcp?i=${i}`, { method: 'POST', body: { jsonrpc: '2.0', id: i, method: 'ping' } });
    assert.equal(r.json().id, i);
    conns.add(r.json().result.connection);
  }
  assert.ok(conns.size <= 2, `40 sequential requests used ${conns.size} backend connections`);
  const m = await scrapeMetrics(p.diagUrl);
  assert.ok(m.get('mcp_proxy_backend_idle_connections') >= 1);
  // Parallel requests open more connections, then those are pooled as well.
  const par = await Promise.all(Array.from({ length: 8 }, (_, i) => request(`${p.origin}/mcp?delay=150&p=${i}`)));
  assert.ok(par.every((r) => r.status === 200));
  const after = new Set();
  for (let i = 0; i < 16; i++) after.add(echoOf(await request(`${p.origin}/mcp?again=${i}`)).connection);
  const parConns = new Set(par.map((r) => echoOf(r).connection));
  assert.ok([...after].every((c) => parConns.has(c) || conns.has(c)), 'later requests reuse pooled connections');
  await p.stop();
});

test('a client aborting mid-stream closes the backend stream; the proxy keeps serving without leaks', async (t) => {
  const echo = await startEchoBackend({ t });
  const p = await startProxy(cfg(echo.url), { t });
  for (let round = 0; round < 3; round++) {
    const streams = await Promise.all(Array.from({ length: 4 }, () => openStream(`${p.origin}/mcp?sse=0&interval=50`)));
    await waitFor(() => streams.every((s) => s.chunks.length >= 2), { message: 'events flowing' });
    assert.equal((await echo.stats()).openSse, 4);
    for (const s of streams) s.close();
    await waitFor(async () => (await echo.stats()).openSse === 0, { message: 'backend streams closed after the client aborts' });
  }
  // An abort during a large Content-Length body as well.
  const big = await openStream(`${p.origin}/big?size=${32 * 1024 * 1024}`);
  await new Promise((r) => big.res.once('data', r));
  big.close();
  await waitFor(async () => (await echo.stats()).inFlight === 0, { message: 'backend body transfer ended' });
  const r = await request(`${p.origin}/mcp`, { method: 'POST', body: { jsonrpc: '2.0', id: 1, method: 'ping' } });
  assert.equal(r.status, 200);
  await waitFor(async () => (await scrapeMetrics(p.diagUrl)).get('mcp_proxy_open_streams') === 0, { message: 'no stream left open' });
  // stop() asserts exit 0 and no sanitizer (leak) report.
  await p.stop();
});

test('metrics count requests and backend errors by kind', async (t) => {
  const echo = await startEchoBackend({ t });
  const p = await startProxy(cfg(echo.url, { backend: { responseTimeout: '300ms' } }), { t });
  assert.equal((await request(`${p.origin}/mcp`)).status, 200);
  assert.equal((await request(`${p.origin}/mcp?hangup=1`)).status, 502);
  assert.equal((await request(`${p.origin}/mcp?delay=1000`)).status, 504);
  await echo.stop();
  assert.equal((await request(`${p.origin}/mcp`)).status, 502);
  const m = await scrapeMetrics(p.diagUrl);
  assert.equal(m.get('mcp_proxy_http_requests_total{listener="mcp",method="GET",route="mcp",status="200"}'), 1);
  assert.equal(m.get('mcp_proxy_http_requests_total{listener="mcp",method="GET",route="mcp",status="502"}'), 2);
  assert.equal(m.get('mcp_proxy_http_requests_total{listener="mcp",method="GET",route="mcp",status="504"}'), 1);
  assert.equal(m.get('mcp_proxy_backend_errors_total{kind="closed"}'), 1);
  assert.equal(m.get('mcp_proxy_backend_errors_total{kind="response_timeout"}'), 1);
  assert.equal(m.get('mcp_proxy_backend_errors_total{kind="connect"}'), 1);
  assert.ok(m.get('mcp_proxy_backend_response_seconds_count') >= 1);
  const warn = p.logs().filter((l) => l.msg === 'backend error').map((l) => l.kind).sort();
  assert.deepEqual(warn, ['closed', 'connect', 'response_timeout']);
  await p.stop();
});

// ---------------------------------------------------------------- a real MCP session

test('real MCP through the proxy: initialize, tools/list, tools/call, progress streamed, DELETE session', async (t) => {
  const backend = await startBackend('streamable-http', { t });
  const p = await startProxy(cfg(backend.url), { t });
  const client = await connectClient({ url: p.mcpUrl, t });
  assert.ok(client.getServerVersion()?.name, 'initialize returned serverInfo');
  const sessionId = client.transport.sessionId;
  assert.ok(sessionId, 'the Mcp-Session-Id header came back through the proxy');

  const { tools } = await client.listTools();
  const names = tools.map((x) => x.name);
  assert.ok(names.includes('echo'), names.join());
  assert.ok(names.includes('trigger-long-running-operation'), names.join());

  const r = await client.callTool({ name: 'echo', arguments: { message: 'through the proxy ✓' } });
  assert.ok(JSON.stringify(r.content).includes('through the proxy ✓'), JSON.stringify(r));

  const progress = [];
  const done = await client.callTool(
    { name: 'trigger-long-running-operation', arguments: { duration: 2, steps: 4 } },
    undefined,
    { onprogress: (pr) => progress.push({ t: Date.now(), progress: pr.progress }), timeout: 20000 },
  );
  assert.match(JSON.stringify(done.content), /Long running operation completed/);
  assert.deepEqual(progress.map((x) => x.progress), [1, 2, 3, 4]);
  const spread = progress.at(-1).t - progress[0].t;
  assert.ok(spread >= 1000, `progress notifications arrived spread over time (${spread} ms for 3 × 500 ms)`);

  await client.transport.terminateSession();
  const after = await request(`${p.mcpUrl}`, {
    method: 'POST',
    headers: { 'mcp-session-id': sessionId, accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' },
    body: { jsonrpc: '2.0', id: 99, method: 'tools/list' },
  });
  assert.ok(after.status === 404 || after.status === 400, `terminated session refused by the backend (${after.status})`);
  await client.close();
  const m = await scrapeMetrics(p.diagUrl);
  assert.ok(m.get('mcp_proxy_http_requests_total{listener="mcp",method="DELETE",route="mcp",status="200"}') >= 1, m.text);
  assert.ok(m.get('mcp_proxy_http_requests_total{listener="mcp",method="POST",route="mcp",status="200"}') >= 4);
  await p.stop();
});
