// The process and the HTTP front (main.c, proxy/server.c): listeners, /health, /ready,
// /metrics, command-line flags, graceful drain on SIGTERM, and the access log.
// Everything runs on 127.0.0.1 against the echo backend (test/peers/echo-backend.mjs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import {
  startProxy, runProxy, startEchoBackend, request, waitFor, sleep, getFreePort, scrapeMetrics,
  logsContaining, SLOW,
} from './lib/harness.mjs';

const NONE = { auth: { mode: 'none' } };

/** A config forwarding to url with auth none. */
function cfg(url, extra = {}) {
  return { ...NONE, ...extra, backend: { url, ...(extra.backend || {}) }, server: { ...(extra.server || {}) } };
}

/** Resolves when the proxy process has exited (stop() then only checks code and stderr). */
function exited(p) {
  return new Promise((resolve) => {
    if (p.exited()) resolve(p.exited());
    else p.proc.once('exit', () => resolve(p.exited()));
  });
}

/** A port on 127.0.0.1 where nothing listens (it was free a moment ago). */
async function deadUrl() {
  return `http://127.0.0.1:${await getFreePort()}`;
}

/**
 * GET url as a stream: → {status, headers, chunks:[{t, text}], text(), ended (Promise of
 * {t, error}), close()}. Timestamps are Date.now() at the client.
 */
function openStream(url, { headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { accept: 'text/event-stream', ...headers }, agent: false }, (res) => {
      const chunks = [];
      let endResolve;
      const ended = new Promise((r) => { endResolve = r; });
      res.setEncoding('utf8');
      res.on('data', (d) => chunks.push({ t: Date.now(), text: d }));
      res.on('end', () => endResolve({ t: Date.now(), error: null }));
      res.on('error', (e) => endResolve({ t: Date.now(), error: e }));
      res.on('close', () => endResolve({ t: Date.now(), error: res.complete ? null : new Error('aborted') }));
      resolve({
        status: res.statusCode,
        headers: res.headers,
        chunks,
        text: () => chunks.map((c) => c.text).join(''),
        ended,
        close: () => req.destroy(),
      });
    });
    req.on('error', reject);
  });
}

test('starts, reports both listeners with their ports, and answers /health on both', async (t) => {
  const echo = await startEchoBackend({ t });
  const p = await startProxy(cfg(echo.url), { t });
  const listening = p.logs().filter((l) => l.msg === 'listening');
  assert.deepEqual(listening.map((l) => l.listener).sort(), ['diagnostics', 'mcp']);
  for (const l of listening) {
    assert.ok(Number.isInteger(l.port) && l.port > 0, `port reported: ${JSON.stringify(l)}`);
    assert.match(l.addr, /^127\.0\.0\.1:\d+$/);
  }
  assert.notEqual(p.port, p.diagPort);
  for (const base of [p.origin, p.diagUrl]) {
    const r = await waitFor(async () => {
      const x = await request(`${base}/health`);
      return x.json().backend.reachable === true ? x : null;
    }, { message: `${base}/health reports a reachable backend` });
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type'], /^application\/json/);
    const j = r.json();
    assert.equal(j.status, 'ok');
    assert.equal(j.backend.url, echo.url);
    assert.equal(j.backend.reachable, true);
  }
  // /health is the proxy's own: the backend never sees it.
  const st = await echo.stats();
  assert.equal(st.byPath['/health'], undefined);
  const ready = await request(`${p.diagUrl}/ready`);
  assert.equal(ready.status, 200);
  await p.stop();
});

test('backend down: /health stays 200 with "degraded" and reachable false; /ready is 503', async (t) => {
  const p = await startProxy(cfg(await deadUrl(), { backend: { connectTimeout: '1s' } }), { t });
  for (const base of [p.origin, p.diagUrl]) {
    const r = await waitFor(async () => {
      const x = await request(`${base}/health`);
      return x.json().backend.checkedAt ? x : null;
    }, { message: 'a backend probe result' });
    assert.equal(r.status, 200, 'a sidecar must not be restarted because its neighbour is down');
    const j = r.json();
    assert.equal(j.status, 'degraded');
    assert.equal(j.backend.reachable, false);
    assert.equal(typeof j.backend.error, 'string');
  }
  const ready = await request(`${p.diagUrl}/ready`);
  assert.equal(ready.status, 503);
  assert.equal(ready.json().status, 'degraded');
  assert.ok(p.logs().some((l) => l.msg === 'backend unreachable' && l.level === 'warn'));
  await p.stop();
});

test('backend going away later turns /health degraded and /ready 503 (periodic probe)', async (t) => {
  const echo = await startEchoBackend({ t });
  const p = await startProxy(cfg(echo.url, { backend: { connectTimeout: '1s' } }), { t });
  await waitFor(async () => (await request(`${p.diagUrl}/ready`)).status === 200, { message: 'ready' });
  await echo.stop();
  const r = await waitFor(async () => {
    const x = await request(`${p.diagUrl}/health`);
    return x.json().status === 'degraded' ? x : null;
  }, { timeoutMs: 12000, message: 'degraded after the backend stopped' });
  assert.equal(r.status, 200);
  assert.equal((await request(`${p.diagUrl}/ready`)).status, 503);
  await p.stop();
});

test('/metrics is Prometheus text with request counters; unknown diagnostics paths are 404 JSON', async (t) => {
  const echo = await startEchoBackend({ t });
  const p = await startProxy(cfg(echo.url), { t });
  assert.equal((await request(`${p.origin}/mcp`, { method: 'POST', body: { jsonrpc: '2.0', id: 1, method: 'ping' } })).status, 200);
  const nf = await request(`${p.diagUrl}/no-such-thing`);
  assert.equal(nf.status, 404);
  assert.deepEqual(nf.json(), { error: 'not_found' });
  assert.equal((await echo.stats()).byPath['/no-such-thing'], undefined, 'diagnostics port forwards nothing');

  const r = await request(`${p.diagUrl}/metrics`);
  assert.equal(r.status, 200);
  assert.match(r.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  assert.match(r.body, /^# TYPE mcp_proxy_http_requests_total counter$/m);
  assert.match(r.body, /^# HELP mcp_proxy_http_requests_total /m);
  // Every sample line is "name{labels} value" with a numeric value.
  for (const line of r.body.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    assert.match(line, /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? -?[0-9.e+-]+$|^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? [+-]?Inf$/, line);
  }
  const m = await scrapeMetrics(p.diagUrl);
  assert.equal(m.get('mcp_proxy_http_requests_total{listener="mcp",method="POST",route="mcp",status="200"}'), 1);
  assert.equal(m.get('mcp_proxy_http_requests_total{listener="diagnostics",method="GET",route="not_found",status="404"}'), 1);
  assert.ok(m.has('mcp_proxy_http_request_duration_seconds_count{listener="mcp",route="mcp"}'));
  // The diagnostics port serves neither /ready nor /metrics on the MCP port: those are forwarded.
  await request(`${p.origin}/metrics`);
  assert.equal((await echo.stats()).byPath['/metrics'], 1, '/metrics on the MCP port goes to the backend');
  await p.stop();
});

test('--help, --version, and a bad flag', async () => {
  const h = await runProxy(['--help']);
  assert.equal(h.code, 0);
  assert.match(h.stdout, /^Usage: mcp-proxy-runner/);
  assert.match(h.stdout, /--check-config/);
  assert.match(h.stdout, /--print-config/);
  const v = await runProxy(['--version']);
  assert.equal(v.code, 0);
  assert.match(v.stdout, /^mcp-proxy-runner \d+\.\d+\.\d+/);
  const bad = await runProxy(['--no-such-flag']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /Usage:/);
});

test('--check-config: valid → 0; invalid → 2 with one located line per problem', async () => {
  const ok = await runProxy(['--check-config'], { config: 'backend:\n  url: "http://127.0.0.1:1"\nauth:\n  mode: none\n' });
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /configuration OK/);

  const yaml = [
    'server:',
    '  listen: "127.0.0.1:0"',
    '  headerTimeout: 10 parsecs',
    'backend:',
    '  url: "http://127.0.0.1:1"',
    'auth:',
    '  mode: none',
    '  bogus: 1',
    '',
  ].join('\n');
  const bad = await runProxy(['--check-config'], { config: yaml });
  assert.equal(bad.code, 2);
  const lines = bad.stderr.trim().split('\n');
  const dur = lines.find((l) => l.includes('server.headerTimeout'));
  const unk = lines.find((l) => l.includes('auth.bogus'));
  assert.match(dur ?? '', /config\.yaml:3:\d+: server\.headerTimeout: .*duration/, bad.stderr);
  assert.match(unk ?? '', /config\.yaml:8:3: auth\.bogus: unknown key/, bad.stderr);
  assert.doesNotMatch(bad.stdout, /configuration OK/);
});

test('--print-config prints the effective config with secrets redacted', async () => {
  const secret = 'TOPSECRET-' + Math.random().toString(36).slice(2);
  const r = await runProxy(['--print-config'], {
    config: { backend: { url: 'http://127.0.0.1:1' }, auth: { mode: 'none', oidc: { clientSecretRef: { name: 'idp', key: 'secret' } } } },
    secrets: { idp: { secret } },
    env: { MCP_PROXY_BACKEND_CONNECTTIMEOUT: '2s' },
  });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /url: "http:\/\/127\.0\.0\.1:1"/);
  assert.match(r.stdout, /connectTimeout: 2s/, 'the environment wins over the file');
  assert.match(r.stdout, /clientSecretRef: .*redacted/);
  assert.ok(!r.stdout.includes(secret), 'secret value printed');
  assert.ok(!r.stderr.includes(secret), 'secret value on stderr');
});

test('SIGTERM during a slow request: it completes with 200, then the process exits 0', async (t) => {
  const echo = await startEchoBackend({ t });
  const p = await startProxy(cfg(echo.url), { t });
  let exitAt = null;
  p.proc.once('exit', () => { exitAt = Date.now(); });
  const pending = request(`${p.origin}/slow?delay=1500`, { method: 'POST', body: { jsonrpc: '2.0', id: 5, method: 'ping' } })
    .then((r) => ({ r, at: Date.now() }));
  await waitFor(async () => (await echo.stats()).inFlight === 1, { message: 'the request reached the backend' });
  const sentAt = Date.now();
  p.proc.kill('SIGTERM');
  await sleep(200);
  assert.equal(exitAt, null, 'the process waits for the in-flight request');
  // The listeners are closed while draining: new connections are refused.
  await assert.rejects(request(`${p.origin}/health`, { timeoutMs: 2000 }), /ECONNREFUSED|socket hang up|ECONNRESET/);
  const { r, at } = await pending;
  assert.equal(r.status, 200);
  assert.equal(r.json().id, 5);
  assert.ok(at - sentAt >= 1000, `the request was not cut short (${at - sentAt} ms)`);
  await exited(p);
  await p.stop();
  assert.ok(exitAt >= at - 50, 'exit after the reply');
  assert.ok(exitAt - at < 2000 * SLOW, `exit promptly after the last request (${exitAt - at} ms)`);
  const logs = p.logs();
  assert.ok(logs.some((l) => l.msg === 'draining'));
  assert.ok(logs.some((l) => l.msg === 'access' && l.path === '/slow' && l.status === 200));
});

test('SIGTERM with an open SSE stream: the stream ends and the process exits 0 promptly', async (t) => {
  const echo = await startEchoBackend({ t });
  const p = await startProxy(cfg(echo.url, { server: { drainTimeout: '30s' } }), { t });
  const s = await openStream(`${p.origin}/events?sse=0&interval=100`);
  assert.equal(s.status, 200);
  await waitFor(() => s.chunks.length >= 2, { message: 'events flowing' });
  const t0 = Date.now();
  p.proc.kill('SIGTERM');
  const end = await s.ended;
  assert.ok(end.t - t0 < 3000 * SLOW, `stream ended ${end.t - t0} ms after SIGTERM`);
  await exited(p);
  assert.ok(Date.now() - t0 < 3000 * SLOW, `process exited ${Date.now() - t0} ms after SIGTERM (drainTimeout 30s)`);
  // The stream ended at an event boundary, not mid-event.
  assert.match(s.text(), /\n\n$/);
  await p.stop();
  // The backend sees its stream closed too.
  await waitFor(async () => (await echo.stats()).openSse === 0, { message: 'backend stream closed' });
});

test('drainTimeout bounds the wait for a request that would take longer', async (t) => {
  const echo = await startEchoBackend({ t });
  const p = await startProxy(cfg(echo.url, { server: { drainTimeout: '500ms' } }), { t });
  const pending = request(`${p.origin}/slow?delay=5000`).catch((e) => e);
  await waitFor(async () => (await echo.stats()).inFlight === 1, { message: 'the request reached the backend' });
  const t0 = Date.now();
  await p.stop({ timeoutMs: 4000 });
  const took = Date.now() - t0;
  assert.ok(took >= 400 && took < 3000 * SLOW, `exit after about drainTimeout (${took} ms)`);
  await pending;
});

test('access log: one JSON line per request with method, path without query, status, bytes, duration_ms, request_id; no Authorization value', async (t) => {
  const echo = await startEchoBackend({ t });
  const p = await startProxy(cfg(echo.url), { t });
  const token = 'tok-' + Math.random().toString(36).slice(2) + '-SECRET';
  const r = await request(`${p.origin}/some/path?code=abc123&state=xyz`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
    body: { jsonrpc: '2.0', id: 1, method: 'ping' },
  });
  assert.equal(r.status, 200);
  const rid = r.headers['x-request-id'];
  assert.match(rid, /^[0-9a-f]{16,32}$/);
  const line = await p.waitForLog((l) => l.msg === 'access' && l.request_id === rid);
  assert.equal(line.level, 'info');
  assert.match(line.ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/);
  assert.equal(line.method, 'POST');
  assert.equal(line.path, '/some/path', 'query string (codes, states) never logged');
  assert.equal(line.status, 200);
  assert.equal(line.bytes, Buffer.byteLength(r.body));
  assert.equal(typeof line.duration_ms, 'number');
  assert.ok(line.duration_ms >= 0);
  // A client-chosen, well-formed X-Request-Id is kept; a malformed one is replaced.
  const r2 = await request(`${p.origin}/x`, { headers: { 'x-request-id': 'abc-123_DEF.4' } });
  assert.equal(r2.headers['x-request-id'], 'abc-123_DEF.4');
  const r3 = await request(`${p.origin}/x`, { headers: { 'x-request-id': 'bad id"{}' } });
  assert.notEqual(r3.headers['x-request-id'], 'bad id"{}');
  await p.waitForLog((l) => l.msg === 'access' && l.request_id === r3.headers['x-request-id']);
  // Errors are logged too, and still without the token.
  const dead = await startProxy(cfg(await deadUrl()), { t });
  const e = await request(`${dead.origin}/mcp`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(e.status, 502);
  await dead.waitForLog((l) => l.msg === 'access' && l.status === 502);
  await dead.stop();
  await p.stop();
  for (const proxy of [p, dead]) {
    assert.deepEqual(logsContaining(proxy.logs(), token), []);
    assert.ok(!proxy.stderr().includes(token), 'token in raw stderr');
  }
  // Every stderr line is a JSON object.
  for (const l of p.stderr().split('\n').filter(Boolean)) assert.doesNotThrow(() => JSON.parse(l), l);
});

test('a client that disconnects while its request waits does not disturb the proxy', async (t) => {
  const echo = await startEchoBackend({ t });
  const p = await startProxy(cfg(echo.url), { t });
  await new Promise((resolve) => {
    const sock = net.connect(p.port, '127.0.0.1', () => {
      sock.write('GET /slow?delay=500 HTTP/1.1\r\nHost: x\r\n\r\n');
      setTimeout(() => { sock.destroy(); resolve(); }, 100);
    });
  });
  // The close is noticed at once (the connection's read event stays on while the request
  // waits): the access log says 499 before the backend would have answered.
  const line = await p.waitForLog((l) => l.msg === 'access' && l.path === '/slow');
  assert.equal(line.status, 499);
  assert.ok(line.duration_ms < 450, `noticed after ${line.duration_ms} ms`);
  const r = await request(`${p.origin}/after`);
  assert.equal(r.status, 200);
  await p.stop();
});

// ---------------------------------------------------------------- the HTTP/1.1 front end

/** Write raw bytes (or [bytes, pause ms, bytes, …]), collect until EOF or timeoutMs: → {text, closed, ms}. */
function rawExchange(port, parts, { timeoutMs = 5000 } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const sock = net.connect(port, '127.0.0.1');
    let text = '';
    let done = false;
    const finish = (closed) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ text, closed, ms: Date.now() - t0 });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    sock.setEncoding('latin1');
    sock.on('data', (d) => { text += d; });
    sock.on('end', () => finish(true));
    sock.on('error', (e) => (done ? null : (e.code === 'ECONNRESET' || e.code === 'EPIPE' ? finish(true) : reject(e))));
    sock.on('connect', async () => {
      for (const p of Array.isArray(parts) ? parts : [parts]) {
        if (typeof p === 'number') await sleep(p);
        else if (!sock.destroyed) sock.write(p);
      }
    });
  });
}

test('pipelined requests are answered in order on one connection; HTTP/1.0 closes after its answer', async (t) => {
  const echo = await startEchoBackend({ t });
  const p = await startProxy(cfg(echo.url), { t });
  const r = await rawExchange(p.port, 'GET /one HTTP/1.1\r\nHost: x\r\n\r\n'
    + 'POST /two HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nabc'
    + 'GET /three HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  assert.ok(r.closed, 'closed after Connection: close');
  const heads = [...r.text.matchAll(/HTTP\/1\.1 \d+ [^\r]*/g)].map((m) => m[0]);
  assert.deepEqual(heads, ['HTTP/1.1 200 OK', 'HTTP/1.1 200 OK', 'HTTP/1.1 200 OK']);
  const paths = [...r.text.matchAll(/"path":"([^"]+)"/g)].map((m) => m[1]);
  assert.deepEqual(paths, ['/one', '/two', '/three']);
  assert.match(r.text, /"body":"abc"/);
  const old = await rawExchange(p.port, 'GET /old HTTP/1.0\r\n\r\n');
  assert.ok(old.closed);
  assert.match(old.text, /^HTTP\/1\.0 200 OK\r\n/);
  assert.match(old.text, /\r\nConnection: close\r\n/i);
  await p.stop();
});

test('malformed requests get JSON 400/431/501 and are never forwarded; Expect: 100-continue is answered', async (t) => {
  const echo = await startEchoBackend({ t });
  const p = await startProxy(cfg(echo.url, { server: { maxHeaderSize: '4KiB' } }), { t });
  const cases = [
    ['GET /a HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n', 400, 'bad_request'],
    ['POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n', 400, 'bad_request'],
    ['POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd', 400, 'bad_request'],
    ['POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n', 501, 'not_implemented'],
    [`GET /a HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(5000)}\r\n\r\n`, 431, 'request_header_fields_too_large'],
    ['GET /a HTTP/1.1\r\n\r\n', 400, 'bad_request'],
  ];
  for (const [raw, status, error] of cases) {
    const r = await rawExchange(p.port, raw);
    assert.match(r.text, new RegExp(`^HTTP/1\\.1 ${status} `), raw.slice(0, 60));
    assert.equal(JSON.parse(r.text.slice(r.text.indexOf('\r\n\r\n') + 4)).error, error);
    assert.ok(r.closed, 'the connection closes after a refused request');
  }
  assert.equal((await echo.stats()).byPath['/a'], undefined, 'a refused request reached the backend');
  const c = await rawExchange(p.port, ['POST /c HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n', 300, 'hello'], { timeoutMs: 1500 });
  assert.match(c.text, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK\r\n/);
  assert.match(c.text, /"body":"hello"/);
  await p.stop();
});

test('headerTimeout is a deadline for the whole request, not an inactivity timer', async (t) => {
  const echo = await startEchoBackend({ t });
  const p = await startProxy(cfg(echo.url, { server: { headerTimeout: '1s' } }), { t });
  // One header byte every 200 ms would keep an inactivity timer alive forever.
  const drip = ['G'];
  for (const ch of 'ET /slow-loris HTTP/1.1\r\nHost: x\r\nX-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaa') drip.push(200, ch);
  const r = await rawExchange(p.port, drip, { timeoutMs: 8000 });
  assert.ok(r.closed, 'the connection was closed');
  assert.ok(r.ms >= 900 && r.ms < 2500 * SLOW, `closed after ${r.ms} ms (headerTimeout 1 s)`);
  assert.equal((await echo.stats()).byPath['/slow-loris'], undefined);
  await p.stop();
});
