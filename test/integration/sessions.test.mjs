// MCP sessions across replicas (server.peerListen): two replicas, each with its own
// server-everything, as behind one Kubernetes Service. A session initialized through A is
// used through B — tools/list, a progress-streaming tool call, the GET event stream and
// DELETE — and every one of them is served by A's backend (B's own backend has never heard
// of the session, and would answer 404). With A stopped, B answers 404 "Session not found"
// for it and a new initialize works. A forged peer request (no MAC, a wrong one, a replayed
// or stale one) is refused on the peer listener.
//
// Session ids are sealed with their owner (AES-256-GCM under a key from the peer secret),
// so this needs no Redis: the replicas share only the secret. auth.mode none keeps the test
// on the session routing; the owner runs its whole MCP chain (guard and policy included)
// on what a peer forwards, as it would for a client, and only the owner: with a tool policy
// and audit on both replicas, B decides, audits and filters nothing.
//
// The last case has the embedded AS on both replicas, on one Redis (lib/redis.mjs, one
// issuer and signing key, the login of lib/login.mjs): the client's bearer token is checked
// by the replica it reaches and again by the owner; a request without one gets its 401
// from the first replica and is never forwarded. The rest of the chain (the login
// session's upstream token, the tool policy, its audit and list filtering) runs on the
// owner only: the replica in front routes.
//
// Everything is on 127.0.0.1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startProxy, startBackend, startPySseBackend, startIdp, scrapeMetrics, getFreePort, sleep, waitFor } from './lib/harness.mjs';
import { startRedis, str, sharedKeys, embeddedReplicaConfig, embeddedReplicaSecrets } from './lib/redis.mjs';
import { loginHelpers } from './lib/login.mjs';

const SECRET = crypto.randomBytes(32).toString('base64');
const PV = '2025-06-18';
const ACCEPT = 'application/json, text/event-stream';

function replicaConfig(backend) {
  return {
    auth: { mode: 'none' },
    server: { peerListen: '127.0.0.1:0', peerSecretRef: { name: 'peer', key: 'secret' } },
    backend: { url: backend.url },
  };
}

/** A replica in front of its own server-everything; config(backend) → its config (the
 * peer secret is added to secrets). */
async function startReplica(name, t, { config = replicaConfig, secrets = {}, mode = 'streamable-http' } = {}) {
  const backend = mode === 'py-sse' ? await startPySseBackend({ t }) : await startBackend(mode, { t });
  const p = await startProxy(config(backend), {
    t, env: { POD_IP: '127.0.0.1' }, secrets: { ...secrets, peer: { secret: SECRET } },
    waitFor: ['mcp', 'diagnostics', 'peer'],
  });
  const l = p.logs().find((x) => x.msg === 'listening' && x.listener === 'peer');
  return Object.assign(p, { name, backend, peerPort: l.port, peerOrigin: `http://127.0.0.1:${l.port}` });
}

let rpc = 0;
/** POST one JSON-RPC message to replica's /mcp → the fetch Response. */
function post(replica, sid, method, params, { id = ++rpc, token } = {}) {
  const headers = { 'content-type': 'application/json', accept: ACCEPT, 'mcp-protocol-version': PV };
  if (sid) headers['mcp-session-id'] = sid;
  if (token) headers.authorization = `Bearer ${token}`;
  const body = id === null ? { jsonrpc: '2.0', method, params } : { jsonrpc: '2.0', id, method, params };
  return fetch(`${replica.origin}/mcp`, { method: 'POST', headers, body: JSON.stringify(body) });
}

/** The JSON-RPC messages of a response, JSON or an SSE stream read to its end; with
 * onEvent(msg, ms) called for each as it arrives. */
async function messages(res, onEvent = () => {}) {
  const t0 = Date.now();
  if (!(res.headers.get('content-type') || '').startsWith('text/event-stream')) {
    const j = await res.json();
    onEvent(j, 0);
    return [j];
  }
  const out = [];
  const dec = new TextDecoder();
  let buf = '';
  for await (const chunk of res.body) {
    buf += dec.decode(chunk, { stream: true });
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const data = ev.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join('\n');
      if (!data) continue;
      const m = JSON.parse(data);
      out.push(m);
      onEvent(m, Date.now() - t0);
    }
  }
  return out;
}

async function initialize(replica, { token } = {}) {
  const res = await post(replica, null, 'initialize', {
    protocolVersion: PV, capabilities: {}, clientInfo: { name: 'sessions.test', version: '0' },
  }, { token });
  assert.equal(res.status, 200, `initialize through ${replica.name}`);
  const sid = res.headers.get('mcp-session-id');
  const [m] = await messages(res);
  assert.ok(m.result?.serverInfo, JSON.stringify(m));
  const note = await post(replica, sid, 'notifications/initialized', undefined, { id: null, token });
  assert.equal(note.status, 202);
  await note.arrayBuffer();
  return sid;
}

/** HKDF + HMAC as a replica signs a peer request (proxy/peerauth.c). */
function peerSign({ method, target, time, nonce, sid = '' }, secret = SECRET) {
  const key = Buffer.from(crypto.hkdfSync('sha256', Buffer.from(secret), Buffer.alloc(0),
    Buffer.from('mcp-proxy peer request auth v1'), 32));
  return crypto.createHmac('sha256', key).update(`${method}\n${target}\n${time}\n${nonce}\n${sid}`).digest('hex');
}

test('a session initialized through A works through B: tools/list, progress, GET stream, DELETE — all on A\'s backend; A gone → 404 and a new initialize', async (t) => {
  const A = await startReplica('A', t);
  const B = await startReplica('B', t);

  const sid = await initialize(A);
  assert.match(sid, /^p1\.[A-Za-z0-9_-]+$/, 'the client sees a sealed session id');
  const backendIds = A.backend.stderr?.() ?? '';
  assert.ok(!backendIds.includes(sid), 'the backend never sees the sealed id');

  // tools/list through B
  let res = await post(B, sid, 'tools/list', {});
  assert.equal(res.status, 200, 'tools/list through B');
  assert.equal(res.headers.get('mcp-session-id') ?? sid, sid, 'the id the client holds stays the same');
  const [list] = await messages(res);
  assert.ok(list.result.tools.some((x) => x.name === 'trigger-long-running-operation'), JSON.stringify(list).slice(0, 300));

  // the same request straight to B's own backend: it does not know the session
  const direct = await fetch(`${B.backend.url}/mcp`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: ACCEPT, 'mcp-protocol-version': PV, 'mcp-session-id': sid },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
  });
  assert.ok(direct.status === 404 || direct.status === 400, `B's backend does not know the session (${direct.status})`);
  await direct.arrayBuffer();

  // progress streamed through B, event by event
  const progress = [];
  res = await post(B, sid, 'tools/call', {
    name: 'trigger-long-running-operation', arguments: { duration: 2, steps: 4 }, _meta: { progressToken: 'p' },
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/event-stream/);
  const msgs = await messages(res, (m, ms) => {
    if (m.method === 'notifications/progress') progress.push({ n: m.params.progress, ms });
  });
  assert.deepEqual(progress.map((x) => x.n), [1, 2, 3, 4]);
  assert.ok(progress.at(-1).ms - progress[0].ms >= 1000, `streamed, not buffered: ${JSON.stringify(progress)}`);
  assert.match(JSON.stringify(msgs.at(-1).result), /Long running operation completed/);

  // the GET event stream through B: opened on A's backend, open until we close it
  const ac = new AbortController();
  res = await fetch(`${B.origin}/mcp`, {
    headers: { accept: 'text/event-stream', 'mcp-session-id': sid, 'mcp-protocol-version': PV }, signal: ac.signal,
  });
  assert.equal(res.status, 200, 'GET stream through B');
  assert.match(res.headers.get('content-type'), /^text\/event-stream/);
  await sleep(200);
  let m = await scrapeMetrics(B.diagUrl);
  assert.equal(m.get('mcp_proxy_open_streams'), 1, 'B holds the stream open');
  m = await scrapeMetrics(A.diagUrl);
  assert.equal(m.get('mcp_proxy_open_streams'), 1, 'and so does A, its owner');
  ac.abort();
  await res.body?.cancel().catch(() => {});

  // DELETE through B ends the session on A's backend
  res = await fetch(`${B.origin}/mcp`, { method: 'DELETE', headers: { 'mcp-session-id': sid, 'mcp-protocol-version': PV } });
  assert.equal(res.status, 200, 'DELETE through B');
  await res.arrayBuffer();
  res = await post(A, sid, 'tools/list', {});
  assert.ok(res.status === 404 || res.status === 400, `the session is gone on its owner too (${res.status})`);
  await res.arrayBuffer();

  m = await scrapeMetrics(B.diagUrl);
  assert.ok(m.get('mcp_proxy_peer_requests_total{direction="out",outcome="ok"}') >= 4, m.text);
  assert.ok(m.get('mcp_proxy_peer_response_seconds_count') >= 4);
  m = await scrapeMetrics(A.diagUrl);
  assert.ok(m.get('mcp_proxy_peer_requests_total{direction="in",outcome="ok"}') >= 4, m.text);
  assert.ok(m.get('mcp_proxy_http_requests_total{listener="peer",method="DELETE",route="mcp",status="200"}') >= 1, m.text);

  // A's session, A stopped: B answers as a backend does for an unknown session
  const sid2 = await initialize(A);
  await A.stop();
  res = await post(B, sid2, 'tools/list', {}, { id: 7 });
  assert.equal(res.status, 404, 'owner gone → 404');
  assert.deepEqual(await res.json(), { jsonrpc: '2.0', id: 7, error: { code: -32001, message: 'Session not found' } });
  m = await scrapeMetrics(B.diagUrl);
  assert.equal(m.get('mcp_proxy_peer_requests_total{direction="out",outcome="owner_gone"}'), 1, m.text);
  assert.equal(m.get('mcp_proxy_peer_errors_total{kind="connect"}'), 1);
  // the client re-initializes, through B: a session of B's
  const sid3 = await initialize(B);
  res = await post(B, sid3, 'tools/list', {});
  assert.equal(res.status, 200);
  await res.arrayBuffer();

  // requests without a session, and ids that are not ours
  res = await post(B, null, 'tools/list', {});
  assert.ok(res.status === 400 || res.status === 404, `no session: B's backend answers itself (${res.status})`);
  await res.arrayBuffer();
  res = await post(B, 'p1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', 'tools/list', {}, { id: 8 });
  assert.equal(res.status, 404, 'a forged session id is an unknown session');
  assert.equal((await res.json()).error.message, 'Session not found');
  await B.stop();
});

/** An open legacy SSE stream (GET /sse on replica): next() → the next event's {event, data}. */
async function sseStream(replica, t) {
  const ac = new AbortController();
  const res = await fetch(`${replica.origin}/sse`, { headers: { accept: 'text/event-stream' }, signal: ac.signal });
  assert.equal(res.status, 200, `GET /sse on ${replica.name}`);
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  t.after(() => ac.abort());
  return {
    async next(ms = 10000) {
      const end = Date.now() + ms;
      for (;;) {
        const i = buf.indexOf('\n\n');
        if (i >= 0) {
          const ev = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const field = (k) => ev.split('\n').filter((l) => l.startsWith(`${k}:`)).map((l) => l.slice(k.length + 1).trim()).join('\n');
          return { event: field('event') || 'message', data: field('data') };
        }
        if (Date.now() > end) throw new Error('no event in time');
        const { value, done } = await reader.read();
        if (done) throw new Error('the stream ended');
        buf = (buf + dec.decode(value, { stream: true })).replace(/\r\n/g, '\n'); // CRLF events too
      }
    },
    close: () => ac.abort(),
  };
}

/** Two legacy SSE replicas (backend mode 'sse' or 'py-sse'), the stream open on A:
 * {A, B, stream, ep (its endpoint event), postB(msg) → the status of a POST of msg through B}. */
async function legacyPair(t, mode, extra = {}) {
  const sseConfig = (backend) => ({ ...replicaConfig(backend), backend: { url: backend.url, transport: 'sse' }, ...extra });
  const A = await startReplica('A', t, { config: sseConfig, mode });
  const B = await startReplica('B', t, { config: sseConfig, mode });
  const stream = await sseStream(A, t);
  const ep = await stream.next();
  assert.equal(ep.event, 'endpoint');
  const postB = async (msg) => {
    const r = await fetch(`${B.origin}${ep.data}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(msg) });
    await r.arrayBuffer();
    return r.status;
  };
  return { A, B, stream, ep, postB };
}

test('legacy SSE (backend.transport sse): the stream on A, the messages through B — the sessionId in the endpoint URL is sealed with its owner, the list filtered by A\'s policy on A\'s stream; A gone → 404', async (t) => {
  const policy = { authorization: { defaultDecision: 'allow', rules: [{ operations: ['tools/call:get-env'], deny: {} }] } };
  const { A, B, stream, ep, postB } = await legacyPair(t, 'sse', policy);
  assert.match(ep.data, /^\/message\?sessionId=p1\.[A-Za-z0-9_-]+$/, 'the client sees a sealed session id');
  const answer = async (id) => {
    for (;;) {
      const e = await stream.next();
      if (e.event === 'message' && JSON.parse(e.data).id === id) return JSON.parse(e.data);
    }
  };
  assert.equal(await postB({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2024-11-05', capabilities: {}, clientInfo: { name: 'sessions.test', version: '0' } } }), 202);
  assert.ok((await answer(1)).result.serverInfo, 'initialize answered on A\'s stream');
  assert.equal(await postB({ jsonrpc: '2.0', method: 'notifications/initialized' }), 202);
  assert.equal(await postB({ jsonrpc: '2.0', id: 2, method: 'tools/list' }), 202);
  const list = await answer(2);
  assert.ok(list.result.tools.some((x) => x.name === 'echo'), JSON.stringify(list).slice(0, 200));
  assert.ok(!list.result.tools.some((x) => x.name === 'get-env'), 'filtered on A\'s stream (B only routed the POST)');
  assert.equal(await postB({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'echo', arguments: { message: 'legacy across replicas' } } }), 202);
  assert.match(JSON.stringify((await answer(3)).result), /legacy across replicas/);

  let m = await scrapeMetrics(B.diagUrl);
  assert.ok(m.get('mcp_proxy_peer_requests_total{direction="out",outcome="ok"}') >= 4, m.text);
  m = await scrapeMetrics(A.diagUrl);
  assert.ok(m.get('mcp_proxy_peer_requests_total{direction="in",outcome="ok"}') >= 4, m.text);
  // (B's own backend is never asked: it would hold such a POST unanswered, as the SDK's
  // SSE transport does for a session it does not know)
  // a sessionId that is not sealed by us is a session nobody knows
  const forged = await fetch(`${B.origin}/message?sessionId=p1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"jsonrpc":"2.0","id":9,"method":"tools/list"}' });
  assert.equal(forged.status, 404);
  await forged.arrayBuffer();

  stream.close();
  await A.stop();
  assert.equal(await postB({ jsonrpc: '2.0', id: 4, method: 'tools/list' }), 404, 'owner gone → 404');
  await B.stop();
});

test('legacy SSE framed as the Python SDK\'s (CRLF, /messages/?session_id=): its session_id is sealed and routed to the owner too', async (t) => {
  const { A, B, stream, ep, postB } = await legacyPair(t, 'py-sse');
  assert.match(ep.data, /^\/messages\/\?session_id=p1\.[A-Za-z0-9_-]+$/, 'the client sees a sealed session id');
  assert.equal(await postB({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { message: 'python across replicas' } } }), 202);
  for (;;) {
    const e = await stream.next();
    if (e.event !== 'message') continue;
    assert.match(e.data, /python across replicas/, 'answered on A\'s stream (B\'s backend never knew the session)');
    break;
  }
  const m = await scrapeMetrics(B.diagUrl);
  assert.ok(m.get('mcp_proxy_peer_requests_total{direction="out",outcome="ok"}') >= 1, m.text);
  stream.close();
  await A.stop();
  assert.equal(await postB({ jsonrpc: '2.0', id: 2, method: 'tools/list' }), 404, 'owner gone → 404');
  await B.stop();
});

test('the peer listener refuses forged requests: no MAC, a wrong one, another secret, a replay, a stale time', async (t) => {
  const A = await startReplica('A', t);
  const sid = await initialize(A);
  const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
  const send = (headers) => fetch(`${A.peerOrigin}/mcp`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: ACCEPT, 'mcp-protocol-version': PV, 'mcp-session-id': sid, ...headers },
    body,
  });
  const now = () => String(Math.floor(Date.now() / 1000));
  const signed = (o = {}) => {
    const time = o.time ?? now();
    const nonce = o.nonce ?? crypto.randomBytes(16).toString('hex');
    return {
      'mcp-peer-time': time, 'mcp-peer-nonce': nonce,
      'mcp-peer-auth': peerSign({ method: 'POST', target: '/mcp', time, nonce, sid }, o.secret),
    };
  };
  const refused = async (res, what, status = 403) => {
    assert.equal(res.status, status, what);
    const j = await res.json();
    assert.equal(j.error, 'forbidden', what);
  };

  await refused(await send({}), 'no MAC');
  const good = signed();
  await refused(await send({ ...good, 'mcp-peer-auth': '0'.repeat(64) }), 'a wrong MAC');
  await refused(await send(signed({ secret: crypto.randomBytes(32).toString('base64') })), 'another secret');
  await refused(await send({ ...good, 'mcp-peer-nonce': crypto.randomBytes(16).toString('hex') }), 'another nonce under the MAC');
  await refused(await send(signed({ time: String(Math.floor(Date.now() / 1000) - 120) })), 'a stale time');

  // the genuine request passes once; the same bytes again are a replay
  let res = await send(good);
  assert.equal(res.status, 200, 'a correctly signed request');
  const [list] = await messages(res);
  assert.ok(list.result.tools.length > 0);
  await refused(await send(good), 'a replay');

  const m = await scrapeMetrics(A.diagUrl);
  for (const [outcome, n] of [['missing', 1], ['bad_mac', 3], ['stale', 1], ['replay', 1], ['ok', 1]]) {
    assert.equal(m.get(`mcp_proxy_peer_requests_total{direction="in",outcome="${outcome}"}`), n, `${outcome}: ${m.text}`);
  }
  // The MCP listener ignores peer headers: a client cannot reach the peer path through it.
  res = await post(A, sid, 'tools/list', {});
  assert.equal(res.status, 200);
  await res.arrayBuffer();
  await A.stop();
});

/** The sum of the samples whose "name{labels}" starts with prefix. */
const total = (m, prefix) => [...m].reduce((n, [k, v]) => (k.startsWith(prefix) ? n + v : n), 0);

test('with a tool policy and audit on both replicas: through B every call is decided, audited and its list filtered once, by the owner A; B only routes', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-sessions-audit-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const withPolicy = (name) => ({
    config: (backend) => ({
      ...replicaConfig(backend),
      authorization: { defaultDecision: 'allow', rules: [{ operations: ['tools/call:get-env'], deny: {} }] },
      audit: { enabled: true, path: path.join(dir, `${name}.log`) },
    }),
  });
  const lines = (name) => {
    const f = path.join(dir, `${name}.log`);
    return fs.existsSync(f) ? fs.readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
  };
  const [A, B] = await Promise.all([startReplica('A', t, withPolicy('A')), startReplica('B', t, withPolicy('B'))]);
  const sid = await initialize(A);

  let res = await post(B, sid, 'tools/list', {}, { id: 501 });
  assert.equal(res.status, 200, 'tools/list through B');
  const [list] = await messages(res);
  const names = list.result.tools.map((x) => x.name);
  assert.ok(names.includes('echo') && !names.includes('get-env'), `filtered by the policy: ${names}`);
  res = await post(B, sid, 'tools/call', { name: 'echo', arguments: { message: 'once' } }, { id: 502 });
  assert.equal(res.status, 200, 'an allowed call through B');
  assert.match(JSON.stringify((await messages(res)).at(-1).result), /Echo: once/);
  res = await post(B, sid, 'tools/call', { name: 'get-env', arguments: {} }, { id: 503 });
  assert.equal(res.status, 403, 'a denied call through B');
  const denied = await res.json();
  assert.equal(denied.id, 503);
  assert.equal(denied.error.code, -32003, JSON.stringify(denied));

  // A's audit has each operation once; B, which only routed them, has none and decided none.
  let a;
  await waitFor(() => [501, 502, 503].every((id) => (a = lines('A')).some((l) => l.jsonrpc_id === id)),
    { message: 'A\'s audit lines' });
  for (const [id, method, decision, outcome] of [[501, 'tools/list', 'allow', 'success'],
    [502, 'tools/call', 'allow', 'success'], [503, 'tools/call', 'deny', 'denied']]) {
    const mine = a.filter((l) => l.jsonrpc_id === id);
    assert.equal(mine.length, 1, `one audit line for ${id}: ${JSON.stringify(mine)}`);
    assert.deepEqual([mine[0].method, mine[0].decision, mine[0].outcome], [method, decision, outcome], JSON.stringify(mine[0]));
  }
  const mA = await scrapeMetrics(A.diagUrl);
  const mB = await scrapeMetrics(B.diagUrl);
  assert.equal(mA.get('mcp_proxy_mcp_requests_total{decision="deny",method="tools/call"}'), 1, mA.text);
  assert.equal(total(mB, 'mcp_proxy_mcp_requests_total'), 0, `B decided nothing:\n${mB.text}`);
  assert.equal(mB.get('mcp_proxy_peer_requests_total{direction="out",outcome="ok"}'), 3, mB.text);
  await sleep(200); // a line B wrote (it must not) would be out by now
  assert.deepEqual(lines('B'), [], 'B\'s audit stays empty');
  await B.stop();
  await A.stop();
});

test('with the embedded AS on one Redis: a session initialized through A with a token works through B with the same token (on A\'s backend); without a token B answers 401 itself', async (t) => {
  // One issuer (the "Service": nothing listens there), one signing key, one Redis.
  const issuer = `http://127.0.0.1:${await getFreePort()}`;
  const [idp, redis] = await Promise.all([
    startIdp({ redirect_uris: [`${issuer}/oauth/callback`] }, { t }),
    startRedis({ appendonly: false }),
  ]);
  const keys = sharedKeys();
  const embedded = {
    config: (backend) => embeddedReplicaConfig({
      issuer, idp, redis, keyPrefix: 'mcp-it-sessions:', backendUrl: backend.url,
      server: { peerListen: '127.0.0.1:0', peerSecretRef: { name: 'peer', key: 'secret' } },
    }),
    secrets: embeddedReplicaSecrets({ idp, keys }),
  };
  const [A, B] = await Promise.all([startReplica('A', t, embedded), startReplica('B', t, embedded)]);
  const { login, registerOk } = loginHelpers({ clientName: 'sessions.test' });
  const env = { issuer, idp };
  const { access_token: token } = await login(env, { clientId: await registerOk(A), startOn: A, callbackOn: A, tokenOn: A });

  let res = await post(A, null, 'initialize', {
    protocolVersion: PV, capabilities: {}, clientInfo: { name: 'sessions.test', version: '0' },
  });
  assert.equal(res.status, 401, 'initialize without a token');
  await res.arrayBuffer();
  const sid = await initialize(A, { token });
  assert.match(sid, /^p1\./);

  // tools/list and tools/call through B, the token checked by B and again by A; the login
  // session (its upstream tokens, HMGET in Redis: nothing else uses it) only A looks up,
  // and A has it from the login
  const rc = await redis.client();
  const hmgets = async () => Number(/cmdstat_hmget:calls=(\d+)/.exec(str(await rc.cmd('INFO', 'commandstats')))?.[1] ?? 0);
  const hmgetsBefore = await hmgets();
  res = await post(B, sid, 'tools/list', {}, { token });
  assert.equal(res.status, 200, 'tools/list through B with the token');
  const [list] = await messages(res);
  assert.ok(list.result.tools.some((x) => x.name === 'echo'), JSON.stringify(list).slice(0, 300));
  res = await post(B, sid, 'tools/call', { name: 'echo', arguments: { message: 'via B' } }, { token });
  assert.equal(res.status, 200, 'tools/call through B with the token');
  const call = (await messages(res)).at(-1);
  assert.match(JSON.stringify(call.result), /Echo: via B/, JSON.stringify(call));
  // served by A's backend: B's own backend does not know the session
  const direct = await fetch(`${B.backend.url}/mcp`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: ACCEPT, 'mcp-protocol-version': PV, 'mcp-session-id': sid },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
  });
  assert.ok(direct.status === 404 || direct.status === 400, `B's backend does not know the session (${direct.status})`);
  await direct.arrayBuffer();
  let mA = await scrapeMetrics(A.diagUrl);
  let mB = await scrapeMetrics(B.diagUrl);
  assert.equal(mB.get('mcp_proxy_peer_requests_total{direction="out",outcome="ok"}'), 2, mB.text);
  assert.equal(mA.get('mcp_proxy_peer_requests_total{direction="in",outcome="ok"}'), 2, mA.text);
  assert.equal(await hmgets(), hmgetsBefore, 'B did not look the login session up');
  rc.close();

  // The same request through B without a token: B's 401, never forwarded.
  const before = {
    aPeerIn: total(mA, 'mcp_proxy_peer_requests_total{direction="in"'),
    aPeerHttp: total(mA, 'mcp_proxy_http_requests_total{listener="peer"'),
    aBackend: total(mA, 'mcp_proxy_backend_response_seconds_count'),
    bPeerOut: total(mB, 'mcp_proxy_peer_requests_total{direction="out"'),
    bBackend: total(mB, 'mcp_proxy_backend_response_seconds_count'),
  };
  res = await post(B, sid, 'tools/list', {});
  assert.equal(res.status, 401, 'tools/list through B without a token');
  assert.match(res.headers.get('www-authenticate') || '', /^Bearer /);
  await res.arrayBuffer();
  res = await post(B, sid, 'tools/list', {}, { token: `${token.slice(0, -4)}AAAA` });
  assert.equal(res.status, 401, 'tools/list through B with a forged token');
  assert.match(res.headers.get('www-authenticate') || '', /error="invalid_token"/);
  await res.arrayBuffer();
  mA = await scrapeMetrics(A.diagUrl);
  mB = await scrapeMetrics(B.diagUrl);
  const after = {
    aPeerIn: total(mA, 'mcp_proxy_peer_requests_total{direction="in"'),
    aPeerHttp: total(mA, 'mcp_proxy_http_requests_total{listener="peer"'),
    aBackend: total(mA, 'mcp_proxy_backend_response_seconds_count'),
    bPeerOut: total(mB, 'mcp_proxy_peer_requests_total{direction="out"'),
    bBackend: total(mB, 'mcp_proxy_backend_response_seconds_count'),
  };
  assert.deepEqual(after, before, 'the 401s are B\'s own: nothing reached A or either backend');
  assert.ok(before.aPeerHttp >= 2 && before.aBackend >= 2, `the counters count: ${JSON.stringify(before)}`);

  // The second hop checks the token too: a correctly signed peer request without one.
  const time = String(Math.floor(Date.now() / 1000));
  const nonce = crypto.randomBytes(16).toString('hex');
  res = await fetch(`${A.peerOrigin}/mcp`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json', accept: ACCEPT, 'mcp-protocol-version': PV, 'mcp-session-id': sid,
      'mcp-peer-time': time, 'mcp-peer-nonce': nonce,
      'mcp-peer-auth': peerSign({ method: 'POST', target: '/mcp', time, nonce, sid }),
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
  });
  assert.equal(res.status, 401, 'A\'s peer listener, a valid MAC but no token');
  await res.arrayBuffer();
  mA = await scrapeMetrics(A.diagUrl);
  assert.equal(total(mA, 'mcp_proxy_backend_response_seconds_count'), before.aBackend, 'A\'s backend did not see it');

  // and the session still works through B with the token
  res = await post(B, sid, 'tools/list', {}, { token });
  assert.equal(res.status, 200);
  await res.arrayBuffer();
  await B.stop();
  await A.stop();
  await redis.stop();
});
