// The legacy HTTP+SSE transport (backend.transport: sse) through the proxy, against
// server-everything in SSE mode (GET /sse, POST /message?sessionId=…): the SDK's
// SSEClientTransport works end to end, and the `event: endpoint` path is rewritten with
// server.publicPathPrefix, or with X-Forwarded-Prefix only when server.trustProxyHeaders;
// and a backend framed as the Python SDK's (CRLF line ends, ?session_id=); a tool policy in
// front of it. Everything runs on 127.0.0.1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import {
  startProxy, startBackend, startPySseBackend, connectClient, request, waitFor, scrapeMetrics,
} from './lib/harness.mjs';

function cfg(url, server = {}) {
  return { auth: { mode: 'none' }, server, backend: { url, transport: 'sse' } };
}

/** GET url and return the first SSE event block (text up to the blank line), then hang up. */
function firstEvent(url, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { accept: 'text/event-stream', ...headers }, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      const timer = setTimeout(() => { req.destroy(); reject(new Error(`no event within 5 s: ${JSON.stringify(text)}`)); }, 5000);
      res.on('data', (d) => {
        text += d;
        const i = text.indexOf('\n\n');
        if (i >= 0) {
          clearTimeout(timer);
          req.destroy();
          resolve({ status: res.statusCode, headers: res.headers, event: text.slice(0, i) });
        }
      });
    });
    req.on('error', (e) => { if (e.code !== 'ECONNRESET') reject(e); });
  });
}

/** The data line of an endpoint event block. */
function endpointData(block) {
  assert.match(block, /^event: endpoint$/m, block);
  return /^data: ?(.*)$/m.exec(block)[1];
}

/**
 * A minimal path-stripping front proxy on 127.0.0.1 (what an ingress with a path prefix does):
 * /prefix/… → target/…; anything else 404. → {url, close()}
 */
function startPrefixFront(prefix, target, t) {
  const server = http.createServer((req, res) => {
    if (!req.url.startsWith(prefix + '/')) {
      res.writeHead(404).end();
      return;
    }
    const u = new URL(target);
    const up = http.request({
      host: u.hostname, port: u.port, method: req.method, path: req.url.slice(prefix.length),
      headers: { ...req.headers, host: u.host }, agent: false,
    }, (ur) => {
      res.writeHead(ur.statusCode, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    res.on('close', () => up.destroy());
    req.pipe(up);
  });
  return new Promise((resolve) => {
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      const front = { url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }) };
      t.after(() => front.close());
      resolve(front);
    });
  });
}

test('SDK SSEClientTransport through the proxy: initialize, tools/list, tools/call', async (t) => {
  const backend = await startBackend('sse', { t });
  const p = await startProxy(cfg(backend.url), { t });
  const client = await connectClient({ url: `${p.origin}/sse`, transport: 'sse', t });
  assert.ok(client.getServerVersion()?.name, 'initialize returned serverInfo');
  const { tools } = await client.listTools();
  assert.ok(tools.some((x) => x.name === 'echo'), tools.map((x) => x.name).join());
  const r = await client.callTool({ name: 'echo', arguments: { message: 'legacy sse ✓' } });
  assert.ok(JSON.stringify(r.content).includes('legacy sse ✓'), JSON.stringify(r));
  const m = await scrapeMetrics(p.diagUrl);
  assert.equal(m.get('mcp_proxy_open_streams'), 1, 'the GET /sse stream is open');
  assert.ok(m.get('mcp_proxy_http_requests_total{listener="mcp",method="POST",route="mcp",status="202"}') >= 3, m.text);
  await client.close();
  await waitFor(async () => (await scrapeMetrics(p.diagUrl)).get('mcp_proxy_open_streams') === 0, { message: 'stream closed' });
  await p.stop();
});

test('without a prefix the endpoint event keeps the backend path', async (t) => {
  const backend = await startBackend('sse', { t });
  const p = await startProxy(cfg(backend.url), { t });
  const e = await firstEvent(`${p.origin}/sse`);
  assert.equal(e.status, 200);
  assert.match(e.headers['content-type'], /^text\/event-stream/);
  assert.match(endpointData(e.event), /^\/message\?sessionId=[0-9a-f-]+$/);
  await p.stop();
});

test('server.publicPathPrefix is put in front of the endpoint path', async (t) => {
  const backend = await startBackend('sse', { t });
  const p = await startProxy(cfg(backend.url, { publicPathPrefix: '/team-a' }), { t });
  const e = await firstEvent(`${p.origin}/sse`);
  assert.match(endpointData(e.event), /^\/team-a\/message\?sessionId=[0-9a-f-]+$/);
  // Without trustProxyHeaders, a client's X-Forwarded-Prefix changes nothing.
  const spoofed = await firstEvent(`${p.origin}/sse`, { 'x-forwarded-prefix': '/evil' });
  assert.match(endpointData(spoofed.event), /^\/team-a\/message\?sessionId=/);
  await p.stop();
});

test('with a tool policy: every message is decided on its POST (a refused call never reaches the server) and list answers are filtered on the GET /sse stream', async (t) => {
  const backend = await startBackend('sse', { t });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-sse-audit-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const auditFile = path.join(dir, 'audit.log');
  const p = await startProxy({
    ...cfg(backend.url),
    authorization: { defaultDecision: 'allow', rules: [{ operations: ['tools/call:get-env'], deny: {} }], maxBatchSize: 300 },
    audit: { enabled: true, path: auditFile },
  }, { t });
  const client = await connectClient({ url: `${p.origin}/sse`, transport: 'sse', t });
  for (let i = 0; i < 3; i++) { // each answer on the stream is filtered, and then forgotten
    const { tools } = await client.listTools();
    const names = tools.map((x) => x.name);
    assert.ok(names.includes('echo') && !names.includes('get-env'), `list ${i}: ${names.join()}`);
  }
  const r = await client.callTool({ name: 'echo', arguments: { message: 'allowed' } });
  assert.ok(JSON.stringify(r.content).includes('allowed'));
  await assert.rejects(client.callTool({ name: 'get-env', arguments: {} }), /403|forbidden/i,
    'the refused call fails on its POST');
  const m = await scrapeMetrics(p.diagUrl);
  assert.equal(m.get('mcp_proxy_mcp_requests_total{decision="deny",method="tools/call"}'), 1, m.text);
  assert.equal(m.get('mcp_proxy_http_requests_total{listener="mcp",method="POST",route="mcp",status="403"}'), 1, m.text);
  // A list request for a session with no open stream here is not asked for: nothing would filter its answer.
  const orphan = await request(`${p.origin}/message?sessionId=00000000-0000-0000-0000-000000000000`, {
    method: 'POST', body: { jsonrpc: '2.0', id: 77, method: 'tools/list' },
  });
  assert.equal(orphan.status, 404, orphan.body);
  assert.equal(orphan.json().id, 77);
  assert.equal(orphan.json().error.data.error, 'no_stream', orphan.body);
  // At most 256 list requests of one session wait for their answer on its stream: a batch of
  // 257 on an open stream is refused whole, none forwarded.
  const raw = await new Promise((resolve, reject) => {
    const req = http.get(`${p.origin}/sse`, { headers: { accept: 'text/event-stream' }, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        text += d;
        const m = /data: (\/message\?sessionId=[^\r\n]+)/.exec(text);
        if (m) { res.removeAllListeners('data'); resolve({ req, path: m[1] }); }
      });
    });
    req.on('error', reject);
  });
  t.after(() => raw.req.destroy());
  const batch = Array.from({ length: 257 }, (_, i) => ({ jsonrpc: '2.0', id: 1000 + i, method: 'tools/list' }));
  const backendCalls = async () => (await scrapeMetrics(p.diagUrl)).get('mcp_proxy_backend_response_seconds_count');
  const before = await backendCalls();
  const many = await request(`${p.origin}${raw.path}`, { method: 'POST', body: batch });
  assert.equal(many.status, 429, many.body);
  assert.equal(many.json().error.data.error, 'too_many_lists', many.body);
  assert.equal(await backendCalls(), before, 'refused whole: the server saw none of it');
  // 256 pass the bound (this server answers a batch with its own 400, on the POST: nothing
  // comes on the stream, so the 256 keep waiting, README) and the next list waits over it
  const full = await request(`${p.origin}${raw.path}`, { method: 'POST', body: batch.slice(0, 256) });
  assert.notEqual(full.status, 429, full.body);
  assert.equal(await backendCalls(), before + 1, 'the batch of 256 reached the server');
  const next = await request(`${p.origin}${raw.path}`, { method: 'POST', body: { jsonrpc: '2.0', id: 2000, method: 'tools/list' } });
  assert.equal(next.status, 429, next.body);
  raw.req.destroy();
  let lines = [];
  await waitFor(() => (lines = fs.readFileSync(auditFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)))
    .some((l) => l.jsonrpc_id === 77), { message: 'the audit lines' });
  const calls = lines.filter((l) => l.method === 'tools/call');
  // the answers come on the stream: the POST's own outcome is unknown
  assert.deepEqual(calls.map((l) => [l.name, l.decision, l.outcome]),
    [['echo', 'allow', 'unknown'], ['get-env', 'deny', 'denied']], JSON.stringify(calls));
  assert.deepEqual(lines.filter((l) => l.jsonrpc_id === 77).map((l) => l.outcome), ['not_run']);
  await client.close();
  await p.stop();
});

test('an SDK client behind a path-prefix front reaches the server through the rewritten endpoint', async (t) => {
  const backend = await startBackend('sse', { t });
  const p = await startProxy(cfg(backend.url, { publicPathPrefix: '/team-a' }), { t });
  const front = await startPrefixFront('/team-a', p.origin, t);
  const client = await connectClient({ url: `${front.url}/team-a/sse`, transport: 'sse', t });
  const r = await client.callTool({ name: 'echo', arguments: { message: 'via /team-a' } });
  assert.ok(JSON.stringify(r.content).includes('via /team-a'));
  // The POSTs went through the front to the proxy's /message (prefix stripped by the front).
  const access = p.logs().filter((l) => l.msg === 'access' && l.method === 'POST');
  assert.ok(access.length >= 2 && access.every((l) => l.path === '/message'), JSON.stringify(access));
  await client.close();
  await p.stop();
});

test('X-Forwarded-Prefix is used only with server.trustProxyHeaders, and only when it is a safe path', async (t) => {
  const backend = await startBackend('sse', { t });
  const untrusted = await startProxy(cfg(backend.url), { t });
  let e = await firstEvent(`${untrusted.origin}/sse`, { 'x-forwarded-prefix': '/evil' });
  assert.match(endpointData(e.event), /^\/message\?sessionId=/);
  await untrusted.stop();

  const p = await startProxy(cfg(backend.url, { trustProxyHeaders: true, publicPathPrefix: '/fallback' }), { t });
  e = await firstEvent(`${p.origin}/sse`, { 'x-forwarded-prefix': '/team-b/' });
  assert.match(endpointData(e.event), /^\/team-b\/message\?sessionId=/, 'trailing slash not doubled');
  e = await firstEvent(`${p.origin}/sse`, { 'x-forwarded-prefix': '/team-c' });
  assert.match(endpointData(e.event), /^\/team-c\/message\?sessionId=/);
  for (const bad of ['https://evil.example', '/a b', '/x"y', '/a?b', '/a#b', 'team-d', `/${'a'.repeat(300)}`]) {
    e = await firstEvent(`${p.origin}/sse`, { 'x-forwarded-prefix': bad });
    const data = endpointData(e.event);
    assert.match(data, /^\/fallback\/message\?sessionId=/, `unsafe prefix ${JSON.stringify(bad)} gave ${data}`);
  }
  e = await firstEvent(`${p.origin}/sse`);
  assert.match(endpointData(e.event), /^\/fallback\/message\?sessionId=/);
  await p.stop();
});

test('a streamable-http backend transport never rewrites event streams', async (t) => {
  const backend = await startBackend('sse', { t });
  const p = await startProxy({ auth: { mode: 'none' }, server: { publicPathPrefix: '/team-a' }, backend: { url: backend.url } }, { t });
  const e = await firstEvent(`${p.origin}/sse`);
  assert.match(endpointData(e.event), /^\/message\?sessionId=/);
  await p.stop();
});

test('a POST the SSE backend never answers → 504 after backend.responseTimeout', async (t) => {
  // server-everything's POST /message never answers an unknown session (a peer quirk we use here).
  const backend = await startBackend('sse', { t });
  const p = await startProxy({ ...cfg(backend.url), backend: { url: backend.url, transport: 'sse', responseTimeout: '500ms' } }, { t });
  const r = await request(`${p.origin}/message?sessionId=00000000-0000-0000-0000-000000000000`, {
    method: 'POST', body: 'hello', headers: { 'content-type': 'text/plain' },
  });
  assert.equal(r.status, 504);
  assert.equal(r.json().error, 'gateway_timeout');
  await p.stop();
});

test('a backend framed as the Python SDK\'s (CRLF line ends, /messages/?session_id=): the endpoint event comes at once, rewritten; an SDK client works', async (t) => {
  const backend = await startPySseBackend({ t });
  const p = await startProxy(cfg(backend.url, { publicPathPrefix: '/team-a' }), { t });
  // Raw bytes: the endpoint event is rewritten (LF line ends), the later events pass as
  // they came (CRLF), and nothing waits for 16 KiB of stream to pile up first.
  const raw = await new Promise((resolve, reject) => {
    const req = http.get(`${p.origin}/sse`, { headers: { accept: 'text/event-stream' }, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      const timer = setTimeout(() => { req.destroy(); reject(new Error(`no ping within 5 s: ${JSON.stringify(text)}`)); }, 5000);
      res.on('data', (d) => {
        text += d;
        if (text.includes(': ping')) { clearTimeout(timer); req.destroy(); resolve(text); }
      });
    });
    req.on('error', (e) => { if (e.code !== 'ECONNRESET') reject(e); });
  });
  assert.match(raw, /^event: endpoint\ndata: \/team-a\/messages\/\?session_id=[0-9a-f]{32}\n\n: ping - [^\r\n]+\r\n\r\n/, JSON.stringify(raw));

  const front = await startPrefixFront('/team-a', p.origin, t);
  const client = await connectClient({ url: `${front.url}/team-a/sse`, transport: 'sse', t });
  assert.equal(client.getServerVersion()?.name, 'py-sse-backend');
  const { tools } = await client.listTools();
  assert.deepEqual(tools.map((x) => x.name), ['echo']);
  const r = await client.callTool({ name: 'echo', arguments: { message: 'crlf ✓' } });
  assert.match(JSON.stringify(r.content), /crlf ✓/);
  await client.close();
  await p.stop();
});
