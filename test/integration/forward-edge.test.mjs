// Edge cases of the data plane found while benchmarking and reviewing forward.c,
// each a regression test: hop-by-hop response headers named by the backend's
// Connection header, quiet event streams outliving the inactivity timeout,
// no replay of a non-idempotent request, and safe X-Forwarded-Prefix values.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startProxy, startEchoBackend, startBackend, request } from './lib/harness.mjs';

const cfg = (url, extra = {}) => ({
  auth: { mode: 'none' },
  server: { ...(extra.server || {}) },
  backend: { url, ...(extra.backend || {}) },
});

test('response headers named in the backend\'s Connection header are not passed on', async (t) => {
  const echo = await startEchoBackend({ t });
  const p = await startProxy(cfg(echo.url), { t });
  const r = await request(`${p.origin}/mcp?header=Connection:x-hop&header=X-Hop:secret-internal&header=X-Stays:1`);
  assert.equal(r.status, 200);
  assert.equal(r.headers['x-hop'], undefined, 'X-Hop (listed in Connection) passed to the client');
  assert.equal(r.headers['x-stays'], '1');
  await p.stop();
});

test('an event stream quiet for longer than server.headerTimeout stays open; keep-alive idle still times out after it', async (t) => {
  const echo = await startEchoBackend({ t });
  const p = await startProxy(cfg(echo.url, { server: { headerTimeout: '1s', idleTimeout: '1s' } }), { t });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const t0 = Date.now();
  const result = await new Promise((resolve) => {
    let n = 0;
    const req = http.get(`${p.origin}/mcp?sse=2&interval=1500`, { agent }, (res) => {
      res.on('data', () => { n += 1; });
      res.on('end', () => resolve({ endedAt: Date.now() - t0, n, socket: req.socket }));
      res.on('close', () => resolve({ closedAt: Date.now() - t0, n }));
    });
  });
  assert.ok(result.endedAt >= 2500, `stream ended after ${result.endedAt ?? result.closedAt} ms with ${result.n} chunks (events every 1.5 s, headerTimeout 1 s)`);
  assert.ok(result.n >= 2);
  // The same keep-alive connection, now idle, is closed by server.idleTimeout.
  const sock = result.socket;
  const closedIdle = await new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), 4000);
    sock.once('close', () => { clearTimeout(timer); resolve(true); });
  });
  assert.ok(closedIdle, 'an idle keep-alive connection after a stream was not closed by the inactivity timeout');
  agent.destroy();
  await p.stop();
});

test('a POST the backend received and then dropped is not sent a second time', async (t) => {
  const echo = await startEchoBackend({ t });
  const p = await startProxy(cfg(echo.url), { t });
  for (let i = 0; i < 3; i++) await request(`${p.origin}/warm`); // pool a connection
  await echo.reset();
  const r = await request(`${p.origin}/mcp?hangup=1`, { method: 'POST', body: { jsonrpc: '2.0', id: 1, method: 'tools/call' } });
  assert.equal(r.status, 502);
  assert.equal((await echo.stats()).byPath['/mcp'], 1, 'a tools/call was delivered twice to the backend');
  await p.stop();
});

test('a trusted X-Forwarded-Prefix cannot turn the SSE endpoint into another origin or climb out', async (t) => {
  const backend = await startBackend('sse', { t });
  const p = await startProxy({
    auth: { mode: 'none' },
    server: { trustProxyHeaders: true, publicPathPrefix: '/fallback' },
    backend: { url: backend.url, transport: 'sse' },
  }, { t });
  for (const bad of ['//evil.example', '/a//evil', '/../admin', '/./x', '/x/..']) {
    const block = await new Promise((resolve, reject) => {
      const req = http.get(`${p.origin}/sse`, { headers: { 'x-forwarded-prefix': bad }, agent: false }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => { text += d; if (text.includes('\n\n')) { req.destroy(); resolve(text); } });
      });
      req.on('error', (e) => { if (e.code !== 'ECONNRESET') reject(e); });
    });
    const data = /^data: ?(.*)$/m.exec(block)[1];
    assert.ok(data.startsWith('/fallback/message?'), `prefix ${bad} gave ${data}`);
  }
  await p.stop();
});

test('a backend chunk size with 0x, a sign or a leading space ends the reply before that chunk; a plain hex one passes', async (t) => {
  const echo = await startEchoBackend({ t });
  const p = await startProxy({ backend: { url: echo.url }, auth: { mode: 'none' } }, { t });
  const ok = await request(`${p.origin}/mcp?rawChunkSize=5`);
  assert.equal(ok.status, 200);
  assert.equal(ok.body, 'hello');
  for (const size of ['0x5', '+5', ' 5', '-5']) {
    let outcome;
    try {
      const r = await request(`${p.origin}/mcp?rawChunkSize=${encodeURIComponent(size)}`);
      outcome = `${r.status} ${r.body}`;
    } catch (e) {
      outcome = `cut short: ${e.message}`;
    }
    // The head went out before the body did: the proxy ends the reply there,
    // and the chunk the malformed size line announced never reaches the client.
    assert.doesNotMatch(outcome, /hello/, `chunk size ${JSON.stringify(size)} was accepted: ${outcome}`);
  }
});

test('a backend response head with a NUL byte is a 502, and the proxy keeps serving', async (t) => {
  const net = await import('node:net');
  let head = 'HTTP/1.1 200 OK\r\nX-A: b\0c\r\nContent-Length: 2\r\n\r\nok';
  const backend = net.createServer((s) => {
    s.once('data', () => s.end(head));
  });
  await new Promise((resolve) => backend.listen(0, '127.0.0.1', resolve));
  t.after(() => backend.close());
  const p = await startProxy(cfg(`http://127.0.0.1:${backend.address().port}`), { t });
  const bad = await request(`${p.origin}/mcp`);
  assert.equal(bad.status, 502);
  head = 'HTTP/1.1 200 OK\r\nX-A: bc\r\nContent-Length: 2\r\n\r\nok';
  const good = await request(`${p.origin}/mcp`);
  assert.equal(good.status, 200);
  assert.equal(good.body, 'ok');
  await p.stop();
});
