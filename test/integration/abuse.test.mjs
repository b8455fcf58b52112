// What an unauthenticated client can do to the proxy, tried as an attacker would, on
// 127.0.0.1 against the real binary: the numbers a user would see. A stderr nobody reads
// (the proxy keeps answering, /health on the diagnostics port within 100 ms, drops are
// counted and reported), strict heads (header count 431, bare LF 400, absolute-form only
// for our own authority), bodies before authentication (a 401 from the head, 200 slow
// uploads cost little memory; the AS endpoints read at most 64 KiB), the connection cap
// (/health within 100 ms at it) and a login in progress through an authorize flood.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import http from 'node:http';
import fs from 'node:fs';
import {
  startProxy, startEchoBackend, startIdp, getFreePort, request, scrapeMetrics, SLOW, SANITIZE,
  followAuthorization, CookieJar, pkcePair, embeddedAS, idpSecrets,
} from './lib/harness.mjs';

/** A config forwarding to url without auth (for the front-end bounds). */
function noneCfg(url, server = {}) {
  return { auth: { mode: 'none' }, backend: { url }, server };
}

/**
 * Send raw bytes on a new connection to 127.0.0.1:port; → {status, text, closed} once the
 * peer closed or `ms` passed (status from the first response line, or 0).
 */
function raw(port, bytes, { ms = 3000 } = {}) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let text = '';
    let done = false;
    const finish = (closed) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      resolve({ status: m ? Number(m[1]) : 0, text, closed });
    };
    const timer = setTimeout(() => finish(false), ms * SLOW);
    s.on('connect', () => s.write(bytes));
    s.on('data', (d) => { text += d.toString('latin1'); });
    s.on('end', () => finish(true));
    s.on('close', () => finish(true));
    s.on('error', () => finish(true));
  });
}

/** GET url with a fresh connection; → {status, ms} (the time to the whole answer). */
function timedGet(url, { timeoutMs = 2000 } = {}) {
  const t0 = process.hrtime.bigint();
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, ms: Number(process.hrtime.bigint() - t0) / 1e6 }));
    });
    req.on('timeout', () => { req.destroy(); resolve({ status: 0, ms: timeoutMs }); });
    req.on('error', () => resolve({ status: 0, ms: Number(process.hrtime.bigint() - t0) / 1e6 }));
  });
}

/** The worst of n sequential /health timings on url. */
async function worstHealth(url, n) {
  let worst = 0;
  for (let i = 0; i < n; i += 1) {
    const r = await timedGet(`${url}/health`);
    assert.equal(r.status, 200, `/health answered ${r.status}`);
    worst = Math.max(worst, r.ms);
  }
  return worst;
}

test('a stderr nobody reads never stalls the proxy: /health answers in 100 ms, drops are counted and reported', async (t) => {
  const echo = await startEchoBackend({ t });
  const p = await startProxy(noneCfg(echo.url, { logQueueSize: '64KiB' }), { t });
  // Stop reading the proxy's stderr: the pipe (64 KiB) fills, then the queue.
  p.proc.stderr.pause();
  // Each request writes an access line (~300 bytes): 1500 are ~450 KB, far more than the
  // pipe and the queue hold. Before the queue, the proxy stopped after about 300.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  let ok = 0;
  const one = () => new Promise((resolve) => {
    const req = http.request(`${p.origin}/x`, { agent, method: 'GET', timeout: 5000 * SLOW }, (res) => {
      res.resume();
      res.on('end', () => { if (res.statusCode === 200) ok += 1; resolve(); });
    });
    req.on('timeout', () => { req.destroy(); resolve(); });
    req.on('error', () => resolve());
    req.end();
  });
  for (let i = 0; i < 1500; i += 8) await Promise.all(Array.from({ length: 8 }, one));
  agent.destroy();
  assert.equal(ok, 1504, `answered while stderr was blocked: ${ok} of 1504`);
  const worst = await worstHealth(p.diagUrl, 20);
  t.diagnostic(`/health worst ${worst.toFixed(1)} ms with stderr blocked`);
  assert.ok(worst < 100 * SLOW, `/health on the diagnostics port took ${worst.toFixed(1)} ms with stderr blocked`);
  const m = await scrapeMetrics(p.diagUrl);
  const dropped = m.get('mcp_proxy_log_dropped_total');
  assert.ok(dropped > 500, `mcp_proxy_log_dropped_total ${dropped}`);
  // Reading again: the queued lines come out whole, then the count of those dropped.
  p.proc.stderr.resume();
  const report = await p.waitForLog((l) => l.msg === 'log lines dropped: stderr was not read', { timeoutMs: 5000 });
  assert.ok(report.dropped > 500, JSON.stringify(report));
  assert.equal(report.level, 'warn');
  for (const line of p.stderr().split('\n').filter((l) => l.trim())) {
    assert.doesNotThrow(() => JSON.parse(line), `a log line is not JSON: ${line.slice(0, 200)}`);
  }
  await p.stop();
});

test('a request with more than server.maxHeaderCount (100) header fields gets 431', async (t) => {
  const echo = await startEchoBackend({ t });
  const p = await startProxy(noneCfg(echo.url), { t });
  const head = (n) => {
    let s = 'GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\n';
    for (let i = 1; i < n; i += 1) s += `X-H${i}: v\r\n`;
    return `${s}Connection: close\r\n\r\n`;
  };
  // 99 + Host + Connection = 101 fields; 98 + 2 = 100 pass.
  assert.equal((await raw(p.port, head(99))).status, 200);
  const r = await raw(p.port, head(100));
  assert.equal(r.status, 431);
  assert.match(r.text, /"error":"request_header_fields_too_large","error_description":"too many header fields"/);
  // 10,000 headers (the attack in issue 16): refused, not forwarded.
  const big = await raw(p.port, head(10000));
  assert.equal(big.status, 431);
  const m = await scrapeMetrics(p.diagUrl);
  assert.equal(m.get('mcp_proxy_http_requests_total{listener="mcp",method="-",route="refused",status="431"}'), 2);
  await p.stop();
});

test('bare LF line endings are refused on the MCP listener (400) and CRLF works', async (t) => {
  const echo = await startEchoBackend({ t });
  const p = await startProxy(noneCfg(echo.url), { t });
  for (const bytes of [
    'GET /x HTTP/1.1\nHost: 127.0.0.1\n\n',
    'GET /x HTTP/1.1\r\nHost: 127.0.0.1\n\r\n',
    'GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\n\n',
  ]) {
    const r = await raw(p.port, bytes);
    assert.equal(r.status, 400, JSON.stringify(bytes));
    assert.match(r.text, /bare LF/);
    assert.match(r.text, /Connection: close/);
  }
  assert.equal((await raw(p.port, 'GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n')).status, 200);
  await p.stop();
});

test('absolute-form targets are served only when their authority is ours', async (t) => {
  const echo = await startEchoBackend({ t });
  const p = await startProxy(noneCfg(echo.url, { resourceUrl: 'https://mcp.example.com/mcp' }), { t });
  const get = (target) => raw(p.port, `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${p.port}\r\nConnection: close\r\n\r\n`);
  // Ours: the bound address, server.resourceUrl's authority (default port of its scheme).
  assert.equal((await get(`http://127.0.0.1:${p.port}/x`)).status, 200);
  assert.equal((await get('https://MCP.example.com/x')).status, 200);
  assert.equal((await get('https://mcp.example.com:443/x')).status, 200);
  // Not ours: refused before any handler, never forwarded as if for us.
  for (const target of ['http://evil.example/x', `http://127.0.0.2:${p.port}/x`,
    'http://mcp.example.com/x', 'https://mcp.example.com:8443/x', `http://u@127.0.0.1:${p.port}/x`]) {
    const r = await get(target);
    assert.equal(r.status, 400, target);
    assert.match(r.text, /an absolute-form request target must name this server/);
  }
  await p.stop();
});

// ------------------------------------------------------------ bodies before authentication

/** The proxy with the embedded AS in front of the echo backend, and the real test IdP. */
async function embedded(t, server = {}) {
  const port = await getFreePort();
  const origin = `http://127.0.0.1:${port}`;
  const idp = await startIdp({ redirect_uris: [`${origin}/oauth/callback`] }, { t });
  const echo = await startEchoBackend({ t });
  const proxy = await startProxy({
    server: { resourceUrl: `${origin}/mcp`, ...server },
    backend: { url: echo.url },
    auth: { mode: 'embedded' },
    embeddedAuthServer: embeddedAS(origin, idp),
  }, { t, port, secrets: idpSecrets(idp) });
  return { proxy, echo, origin };
}

/** VmRSS of a process in bytes. */
function rss(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]) * 1024;
}

/**
 * Open a connection, send head, then body bytes: `first` at once, then `step` every 50 ms
 * until the proxy closes. → {status, ms (to the first response byte), closed, text}.
 */
function upload(port, head, { first = 0, step = 0, ms = 5000 } = {}) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const t0 = Date.now();
    let text = '';
    let firstByte = null;
    let timer = null;
    let done = false;
    const finish = (closed) => {
      if (done) return;
      done = true;
      clearInterval(timer);
      clearTimeout(deadline);
      s.destroy();
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      resolve({ status: m ? Number(m[1]) : 0, ms: firstByte ?? ms, closed, text });
    };
    const deadline = setTimeout(() => finish(false), ms * SLOW);
    s.on('connect', () => {
      s.write(head);
      if (first) s.write(Buffer.alloc(first, 0x61));
      if (step) timer = setInterval(() => { if (!s.destroyed) s.write(Buffer.alloc(step, 0x61)); }, 50);
    });
    s.on('data', (d) => { if (firstByte === null) firstByte = Date.now() - t0; text += d.toString('latin1'); });
    s.on('end', () => finish(true));
    s.on('close', () => finish(true));
    s.on('error', () => finish(true));
  });
}

test('a POST /mcp without a token gets its 401 from the head: the body is not read, the connection closes', async (t) => {
  const { proxy } = await embedded(t);
  const head = 'POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 8000000\r\n\r\n';
  const r = await upload(proxy.port, head, { first: 1000 });
  assert.equal(r.status, 401, r.text.slice(0, 300));
  assert.ok(r.ms < 500 * SLOW, `401 after ${r.ms} ms`);
  assert.match(r.text, /WWW-Authenticate: Bearer resource_metadata="[^"]+"/i);
  assert.match(r.text, /Connection: close/);
  assert.ok(r.closed, 'the proxy closed the connection after the 401');
  // A bad token and a chunked body: the same.
  const bad = await upload(proxy.port, 'POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer abc.def.ghi\r\nTransfer-Encoding: chunked\r\n\r\n1000\r\n', { first: 100 });
  assert.equal(bad.status, 401);
  assert.match(bad.text, /error="invalid_token"/);
  // Expect: 100-continue gets no 100: the 401 comes instead.
  const cont = await upload(proxy.port, 'POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n');
  assert.equal(cont.status, 401);
  assert.doesNotMatch(cont.text, /100 Continue/);
  await proxy.stop();
});

test('200 slow unauthenticated 8 MB uploads: every one gets 401 at once and RSS grows by less than 20 MB', async (t) => {
  const { proxy } = await embedded(t);
  const before = rss(proxy.proc.pid);
  let peak = before;
  const sampler = setInterval(() => { peak = Math.max(peak, rss(proxy.proc.pid)); }, 20);
  const head = 'POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 8000000\r\n\r\n';
  const results = await Promise.all(Array.from({ length: 200 }, () => upload(proxy.port, head, { first: 64 * 1024, step: 16 * 1024, ms: 8000 })));
  clearInterval(sampler);
  peak = Math.max(peak, rss(proxy.proc.pid));
  const statuses = results.map((r) => r.status);
  assert.deepEqual([...new Set(statuses)], [401], `statuses: ${JSON.stringify(statuses.slice(0, 20))}`);
  const worst = Math.max(...results.map((r) => r.ms));
  assert.ok(worst < 2000 * SLOW, `slowest 401 after ${worst} ms`);
  assert.ok(results.every((r) => r.closed), 'every connection was closed by the proxy');
  const grew = (peak - before) / 1048576;
  t.diagnostic(`RSS ${(before / 1048576).toFixed(1)} MB → peak ${(peak / 1048576).toFixed(1)} MB; slowest 401 ${worst} ms`);
  // ASan's quarantine keeps freed memory out of reuse: a looser bound there.
  const bound = SANITIZE ? 80 : 20;
  assert.ok(grew < bound, `RSS grew by ${grew.toFixed(1)} MB (from ${(before / 1048576).toFixed(1)} MB)`);
  await proxy.stop();
});

test('the AS endpoints read at most server.maxEndpointBodySize (64 KiB): 413 from the declared length or the bytes', async (t) => {
  const { proxy } = await embedded(t);
  // A 1 MiB registration: 413 from its head, nothing read.
  const big = await upload(proxy.port, 'POST /oauth/register HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n');
  assert.equal(big.status, 413);
  assert.ok(big.ms < 500 * SLOW, `413 after ${big.ms} ms`);
  assert.match(big.text, /"error":"request_too_large","error_description":"request body exceeds the limit of 65536 bytes"/);
  assert.ok(big.closed);
  // Chunked: 413 once the bytes pass 64 KiB, while the client is still sending.
  const chunk = `4000\r\n${'a'.repeat(0x4000)}\r\n`;
  const chunked = await upload(proxy.port, `POST /oauth/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n${chunk.repeat(5)}`);
  assert.equal(chunked.status, 413);
  // Under the limit the endpoint itself answers (here: a registration that is not JSON).
  const small = await request(`${proxy.origin}/oauth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: 'x'.repeat(60 * 1024) });
  assert.equal(small.status, 400);
  // What is forwarded keeps server.maxBodySize: a 1 MiB body is read (and gets its 401).
  const fwd = await request(proxy.mcpUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: 'x'.repeat(1024 * 1024) });
  assert.equal(fwd.status, 401);
  await proxy.stop();
});

// ------------------------------------------------------------ connections

/** Open a connection and wait until it is established (the kernel's, not yet ours). */
function connectIdle(port) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.on('error', reject);
  });
}

/** Send one keep-alive request on socket s; → its status (0 if none within ms). */
function onSocket(s, path, ms = 3000) {
  return new Promise((resolve) => {
    let text = '';
    const timer = setTimeout(() => { s.off('data', onData); resolve(0); }, ms * SLOW);
    function onData(d) {
      text += d.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})[\s\S]*?\r\n\r\n/.exec(text);
      const len = /content-length: (\d+)/i.exec(text);
      if (m && len && text.length >= m[0].length + Number(len[1])) {
        clearTimeout(timer);
        s.off('data', onData);
        resolve(Number(m[1]));
      }
    }
    s.on('data', onData);
    s.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  });
}

test('at server.maxConnections the MCP listener waits; open connections and /health on the diagnostics port keep answering', async (t) => {
  const echo = await startEchoBackend({ t });
  const p = await startProxy(noneCfg(echo.url, { maxConnections: 20 }), { t });
  const limits = await p.waitForLog((l) => l.msg === 'connection limits');
  assert.equal(limits.max_connections, 20);
  const held = [];
  for (let i = 0; i < 20; i += 1) held.push(await connectIdle(p.port));
  // Five more: the kernel completes their handshakes, the proxy does not take them.
  const waiting = [];
  for (let i = 0; i < 5; i += 1) waiting.push(await connectIdle(p.port));
  const line = await p.waitForLog((l) => l.msg === 'not accepting connections for a while');
  assert.equal(line.reason, 'max_connections');
  assert.equal(line.listener, 'mcp');
  const worst = await worstHealth(p.diagUrl, 20);
  t.diagnostic(`/health worst ${worst.toFixed(1)} ms at the connection cap`);
  assert.ok(worst < 100 * SLOW, `/health on the diagnostics port took ${worst.toFixed(1)} ms at the cap`);
  // The connections it has are served.
  assert.equal(await onSocket(held[0], '/x'), 200);
  // A waiting one gets no answer while the cap holds...
  assert.equal(await onSocket(waiting[0], '/x', 300), 0);
  const m = await scrapeMetrics(p.diagUrl);
  assert.equal(m.get('mcp_proxy_accept_paused_total{listener="mcp",reason="max_connections"}'), 1);
  assert.equal(m.get('mcp_proxy_accept_paused{listener="mcp"}'), 1);
  // ...and is served as soon as held ones close.
  for (const s of held.slice(10)) s.destroy();
  assert.equal(await onSocket(waiting[0], '/x'), 200);
  for (const s of [...held, ...waiting]) s.destroy();
  assert.equal(p.logs().filter((l) => l.msg === 'not accepting connections for a while').length, 1, 'one line per episode');
  assert.equal(p.stderr().split('\n').filter((l) => l.trim() && !l.trim().startsWith('{')).length, 0, 'every stderr line is JSON');
  await p.stop();
});

// ------------------------------------------------------------ the AS under a flood

/** n GETs of url from localAddress over 16 keep-alive connections; → Map(status → count) and one 429. */
async function flood(url, n, localAddress) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16, localAddress });
  const counts = new Map();
  let sample = null;
  const one = () => new Promise((resolve) => {
    const req = http.get(url, { agent, headers: { accept: 'application/json' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => {
        counts.set(res.statusCode, (counts.get(res.statusCode) || 0) + 1);
        if (res.statusCode === 429 && !sample) sample = { headers: res.headers, body };
        resolve();
      });
    });
    req.on('error', () => { counts.set(0, (counts.get(0) || 0) + 1); resolve(); });
  });
  for (let i = 0; i < n; i += 64) await Promise.all(Array.from({ length: Math.min(64, n - i) }, one));
  agent.destroy();
  return { counts, sample };
}

test('a login in progress survives 11,000 /oauth/authorize requests from another address; 429s carry Retry-After', async (t) => {
  const { proxy, origin } = await embedded(t);
  const redirect = 'http://127.0.0.1:51299/cb';
  const reg = await request(`${origin}/oauth/register`, {
    method: 'POST',
    body: { redirect_uris: [redirect], token_endpoint_auth_method: 'none', grant_types: ['authorization_code'], client_name: 'abuse.test' },
  });
  assert.equal(reg.status, 201, reg.body);
  const clientId = reg.json().client_id;
  const authorizeUrl = (state, challenge) => {
    const u = new URL(`${origin}/oauth/authorize`);
    for (const [k, v] of Object.entries({
      response_type: 'code', client_id: clientId, redirect_uri: redirect, scope: 'openid',
      state, code_challenge: challenge, code_challenge_method: 'S256',
    })) u.searchParams.set(k, v);
    return u.href;
  };
  // The victim's login starts: the proxy holds it while the browser is at the IdP.
  const pkce = pkcePair();
  const start = await request(authorizeUrl('victim', pkce.challenge));
  assert.equal(start.status, 302, start.body);
  const atIdp = start.headers.location;
  // The flood, from 127.0.0.2: each request that got through would hold a login too.
  const t0 = Date.now();
  const { counts, sample } = await flood(authorizeUrl('x', pkcePair().challenge), 11000, '127.0.0.2');
  t.diagnostic(`flood: ${JSON.stringify([...counts])} in ${Date.now() - t0} ms`);
  assert.ok((counts.get(429) || 0) > 10000, JSON.stringify([...counts]));
  assert.ok((counts.get(302) || 0) <= 400, `${counts.get(302)} logins started by the flood`);
  assert.match(sample.headers['retry-after'], /^[1-9]\d*$/);
  const err = JSON.parse(sample.body);
  assert.equal(err.error, 'too_many_requests');
  assert.equal(typeof err.error_description, 'string');
  // The victim, on 127.0.0.1, is not limited and finishes the login it began.
  const res = await followAuthorization(atIdp, { redirectUri: redirect, jar: new CookieJar() });
  assert.ok(res.code, JSON.stringify(res.hops ?? res));
  assert.equal(res.state, 'victim');
  const tok = await request(`${origin}/oauth/token`, {
    method: 'POST',
    body: new URLSearchParams({ grant_type: 'authorization_code', code: res.code, redirect_uri: redirect, code_verifier: pkce.verifier, client_id: clientId }),
  });
  assert.equal(tok.status, 200, tok.body);
  const m = await scrapeMetrics(proxy.diagUrl);
  assert.equal(m.get('mcp_proxy_rate_limited_total{limit="authorize"}'), counts.get(429));
  await proxy.stop();
});

/** CPU seconds (user + system) the process has used. */
function cpuSeconds(pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
}

test('with a 256-descriptor limit the cap is lowered to fit it; 150 clients at the cap cost no CPU and /health answers', async (t) => {
  const echo = await startEchoBackend({ t });
  const p = await startProxy(noneCfg(echo.url), { t, wrap: ['prlimit', '--nofile=256:256', '--'] });
  const lowered = await p.waitForLog((l) => l.msg === 'server.maxConnections lowered to fit the file descriptor limit');
  assert.equal(lowered.fd_limit, 256);
  assert.equal(lowered.max_connections, 64); // (256 - 128) / 2
  const socks = [];
  for (let i = 0; i < 150; i += 1) socks.push(await connectIdle(p.port));
  await p.waitForLog((l) => l.msg === 'not accepting connections for a while');
  // At the cap with 86 clients waiting in the backlog: the loop sleeps (before, a proxy out
  // of descriptors spun at 99 % CPU on a failing accept()).
  const c0 = cpuSeconds(p.proc.pid);
  await new Promise((r) => setTimeout(r, 1000));
  const used = cpuSeconds(p.proc.pid) - c0;
  t.diagnostic(`CPU at the cap: ${(used * 100).toFixed(1)} % of a core`);
  assert.ok(used < 0.1 * SLOW, `the proxy used ${used} s of CPU in 1 s at the cap`);
  const worst = await worstHealth(p.diagUrl, 10);
  assert.ok(worst < 100 * SLOW, `/health took ${worst.toFixed(1)} ms`);
  // The connections it took are served; those waiting are taken as the others go.
  assert.equal(await onSocket(socks[0], '/x'), 200);
  for (const s of socks.slice(0, 100)) s.destroy();
  assert.equal(await onSocket(socks[149], '/x'), 200);
  for (const s of socks) s.destroy();
  assert.equal(p.stderr().split('\n').filter((l) => l.trim() && !l.trim().startsWith('{')).length, 0, 'every stderr line is JSON');
  await p.stop();
});
