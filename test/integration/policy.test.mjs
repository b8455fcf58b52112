// MCP-aware authorization against the real binary, the real upstream IdP (oidc-provider, two
// users with different groups released in the ID token) and server-everything, all on
// 127.0.0.1: allowed and denied tool calls, filtered tools/list (SSE), step-up (403 insufficient_scope, then a token with
// the scope passes), a batch with a denied member, malformed bodies (400, never forwarded),
// Mcp-Method/Mcp-Name header checks, the audit file line by line, and the metrics.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import {
  startProxy, startIdp, startBackend, startEchoBackend, getFreePort, request, followAuthorization,
  CookieJar, pkcePair, scrapeMetrics, waitFor, decodeJwt, embeddedAS, idpSecrets,
} from './lib/harness.mjs';

const CLIENT_REDIRECT = 'http://127.0.0.1:51236/cb';
const RULES = [
  { operations: ['tools/list', 'tools/call:echo', 'prompts/*', 'resources/*'], allow: { scopes: ['mcp:read'] } },
  { operations: ['tools/call:get-env'], deny: { claims: { groups: ['staff'] } } },
  { operations: ['tools/call:*'], allow: { scopes: ['mcp:admin'], claims: { groups: ['admins'] } } },
];

let env;
const tokens = new Set();

before(async () => {
  const port = await getFreePort();
  const origin = `http://127.0.0.1:${port}`;
  const idp = await startIdp({
    redirect_uris: [`${origin}/oauth/callback`],
    idTokenClaims: true,
    user: { sub: 'alice', groups: ['staff'] },
    users: { bob: { sub: 'bob', groups: ['staff', 'admins'], email: 'bob@example.test' } },
  });
  const backend = await startBackend('streamable-http');
  const auditFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-audit-')), 'audit.log');
  const proxy = await startProxy({
    server: { resourceUrl: `${origin}/mcp` },
    backend: { url: backend.url },
    auth: { mode: 'embedded' },
    embeddedAuthServer: embeddedAS(origin, idp, {
      oidc: { scopes: ['openid', 'offline_access', 'groups'] },
      baselineClientScopes: ['openid', 'offline_access'],
      scopesSupported: ['openid', 'offline_access', 'mcp:read', 'mcp:admin'],
    }),
    authorization: { defaultDecision: 'deny', rules: RULES },
    audit: { enabled: true, path: auditFile, includeArguments: true, maxArgumentsSize: '64B' },
  }, { port, secrets: idpSecrets(idp) });
  env = { idp, backend, proxy, origin, mcpUrl: `${origin}/mcp`, auditFile };
});

after(async () => {
  if (!env?.proxy) return;
  const logs = await env.proxy.stop();
  const text = JSON.stringify(logs) + fs.readFileSync(env.auditFile, 'utf8');
  for (const s of tokens) assert.ok(!text.includes(s), 'a token appeared in the logs or the audit file');
});

/** DCR + authorize as `user` (through the IdP) + code exchange → {access_token, clientId}. */
async function login(user, scope) {
  await env.idp.control({ user });
  const { origin } = env;
  const reg = await request(`${origin}/oauth/register`, {
    method: 'POST',
    body: {
      redirect_uris: [CLIENT_REDIRECT], grant_types: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_method: 'none', client_name: `policy.test ${user}`,
    },
  });
  assert.equal(reg.status, 201, reg.body);
  const clientId = reg.json().client_id;
  const pkce = pkcePair();
  const u = new URL(`${origin}/oauth/authorize`);
  const params = {
    response_type: 'code', client_id: clientId, redirect_uri: CLIENT_REDIRECT, scope,
    state: crypto.randomBytes(8).toString('hex'), code_challenge: pkce.challenge,
    code_challenge_method: 'S256', resource: env.mcpUrl,
  };
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  const res = await followAuthorization(u.href, { redirectUri: CLIENT_REDIRECT, jar: new CookieJar() });
  assert.ok(res.code, JSON.stringify(res.hops ?? res));
  const tok = await request(`${origin}/oauth/token`, {
    method: 'POST',
    body: new URLSearchParams({
      grant_type: 'authorization_code', code: res.code, redirect_uri: CLIENT_REDIRECT,
      code_verifier: pkce.verifier, client_id: clientId, resource: env.mcpUrl,
    }),
  });
  assert.equal(tok.status, 200, tok.body);
  const t = tok.json();
  tokens.add(t.access_token);
  if (t.refresh_token) tokens.add(t.refresh_token);
  return { token: t.access_token, scope: t.scope, clientId };
}

/** The JSON-RPC messages of a response (JSON, or SSE data events). */
function messages(res) {
  const ct = res.headers['content-type'] || '';
  if (ct.startsWith('text/event-stream')) {
    return res.body.split(/\r?\n\r?\n/).map((ev) => ev.split(/\r?\n/).filter((l) => l.startsWith('data:'))
      .map((l) => l.slice(5).trimStart()).join('\n')).filter(Boolean).map((d) => JSON.parse(d));
  }
  return res.body ? [JSON.parse(res.body)] : [];
}

/** A session for who: initialize + notifications/initialized → rpc(body, headers). */
async function session(who) {
  const base = {
    authorization: `Bearer ${who.token}`,
    accept: 'application/json, text/event-stream',
    'content-type': 'application/json',
  };
  const init = await request(env.mcpUrl, {
    method: 'POST', headers: base,
    body: { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'policy.test', version: '1' } } },
  });
  assert.equal(init.status, 200, init.body);
  const sid = init.headers['mcp-session-id'];
  assert.ok(sid, 'a session id');
  const headers = { ...base, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' };
  const n = await request(env.mcpUrl, { method: 'POST', headers, body: { jsonrpc: '2.0', method: 'notifications/initialized' } });
  assert.equal(n.status, 202, n.body);
  return (body, extra = {}) => request(env.mcpUrl, {
    method: 'POST', headers: { ...headers, ...extra }, body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

const call = (id, name, args = {}) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });

function auditLines() {
  return fs.readFileSync(env.auditFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

async function backendResponses() {
  const m = await scrapeMetrics(`http://127.0.0.1:${env.proxy.diagPort}`);
  return m.get('mcp_proxy_backend_response_seconds_count') ?? 0;
}

let alice;
let aliceRpc;

test('alice (staff, mcp:read): tools/list and echo pass, other tools are denied with the request id', async () => {
  alice = await login('alice', 'openid offline_access mcp:read');
  aliceRpc = await session(alice);

  const list = await aliceRpc({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
  assert.equal(list.status, 200, list.body);
  assert.match(list.headers['content-type'], /^text\/event-stream/);
  // filtered: alice may call echo only (get-sum: default deny, get-env: denied by rule)
  assert.deepEqual(messages(list)[0].result.tools.map((x) => x.name), ['echo']);

  const echo = await aliceRpc(call(2, 'echo', { message: 'hello policy' }));
  assert.equal(echo.status, 200, echo.body);
  const em = messages(echo).find((x) => x.id === 2);
  assert.match(JSON.stringify(em.result), /hello policy/);

  const before = await backendResponses();
  const sum = await aliceRpc(call('s-3', 'get-sum', { a: 1, b: 2 }));
  assert.equal(sum.status, 403, sum.body);
  assert.equal(sum.headers['www-authenticate'], undefined);
  const err = JSON.parse(sum.body);
  assert.equal(err.jsonrpc, '2.0');
  assert.equal(err.id, 's-3');
  assert.equal(err.error.code, -32003);
  assert.equal(err.error.message, 'tools/call:get-sum is not allowed');
  assert.equal(err.error.data.error, 'forbidden');

  const envCall = await aliceRpc(call(4, 'get-env'));
  assert.equal(envCall.status, 403, envCall.body);
  assert.equal(JSON.parse(envCall.body).id, 4);
  assert.equal(await backendResponses(), before, 'denied calls never reached the backend');
});

test('bob (admins) with mcp:read only: step-up 403 names the scope; with mcp:admin the call passes', async () => {
  const bob = await login('bob', 'openid offline_access mcp:read');
  const rpc = await session(bob);
  const r = await rpc(call(7, 'get-sum', { a: 1, b: 2 }));
  assert.equal(r.status, 403, r.body);
  assert.equal(r.headers['www-authenticate'],
    `Bearer error="insufficient_scope", scope="mcp:admin", resource_metadata="${env.origin}/.well-known/oauth-protected-resource/mcp"`);
  const body = JSON.parse(r.body);
  assert.equal(body.id, 7);
  assert.equal(body.error.data.error, 'insufficient_scope');
  assert.equal(body.error.data.scope, 'mcp:admin');

  // a tool bob could use after a step-up stays listed; a denied one does not
  const names = messages(await rpc({ jsonrpc: '2.0', id: 'l', method: 'tools/list' }))[0].result.tools.map((x) => x.name);
  assert.ok(names.includes('echo') && names.includes('get-sum') && !names.includes('get-env'), names.join());
  const prompts = await rpc({ jsonrpc: '2.0', id: 'p', method: 'prompts/list' });
  assert.equal(prompts.status, 200, prompts.body);
  assert.ok(messages(prompts)[0].result.prompts.length > 0, 'prompts/* is allowed: nothing hidden');

  const bob2 = await login('bob', 'openid offline_access mcp:read mcp:admin');
  assert.match(bob2.scope, /mcp:admin/);
  const rpc2 = await session(bob2);
  const ok = await rpc2(call(8, 'get-sum', { a: 1, b: 2 }));
  assert.equal(ok.status, 200, ok.body);
  assert.match(JSON.stringify(messages(ok).find((x) => x.id === 8).result), /3/);
  // bob is staff too: get-env is denied by its rule before the admin rule is reached
  const envCall = await rpc2(call(9, 'get-env'));
  assert.equal(envCall.status, 403, envCall.body);

  // the same list answer for alice again, after bob's (the list cache keeps what it decided
  // per principal: alice's answer must not be bob's)
  const again = await aliceRpc({ jsonrpc: '2.0', id: 'alice-again-42', method: 'tools/list' });
  assert.equal(again.status, 200, again.body);
  assert.deepEqual(messages(again)[0].result.tools.map((x) => x.name), ['echo']);
  assert.equal(messages(again)[0].id, 'alice-again-42');
});

test('a batch with a denied member is refused whole, each request answered by id', async () => {
  const before = await backendResponses();
  const r = await aliceRpc([call(20, 'echo', { message: 'x' }), call(21, 'get-sum', { a: 1, b: 1 }),
    { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 1 } }]);
  assert.equal(r.status, 403, r.body);
  const arr = JSON.parse(r.body);
  assert.equal(arr.length, 2);
  assert.deepEqual(arr.map((x) => x.id), [20, 21]);
  assert.equal(arr[0].error.data.error, 'batch_refused');
  assert.equal(arr[1].error.data.error, 'forbidden');
  assert.equal(await backendResponses(), before, 'no member of the batch reached the backend');
});

test('malformed, oversized-depth and invalid JSON-RPC bodies: 400, never forwarded', async () => {
  const before = await backendResponses();
  const cases = [
    ['{"jsonrpc":"2.0","id":1,"method":"tools/call"', -32700],
    ['{"jsonrpc":"2.0","id":1,"method":"tools/list"} trailing', -32700],
    ['[]', -32600],
    ['{"id":1,"method":"tools/list"}', -32600],
    ['{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo\\u0000x"}}', -32600],
    ['{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}', -32600],
    [JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: { a: JSON.parse('['.repeat(40) + ']'.repeat(40)) } }), -32700],
  ];
  for (const [body, code] of cases) {
    const r = await aliceRpc(body);
    assert.equal(r.status, 400, `${body}: ${r.status} ${r.body}`);
    const e = JSON.parse(r.body);
    assert.equal(e.id, null);
    assert.equal(e.error.code, code, body);
  }
  assert.equal(await backendResponses(), before);
});

test('Mcp-Method / Mcp-Name headers must name the body\'s operation', async () => {
  const bad = await aliceRpc(call(30, 'echo', { message: 'x' }), { 'mcp-method': 'tools/call', 'mcp-name': 'get-sum' });
  assert.equal(bad.status, 400, bad.body);
  assert.match(JSON.parse(bad.body).error.message, /Mcp-Name header does not match/);
  const bad2 = await aliceRpc(call(31, 'echo', { message: 'x' }), { 'mcp-method': 'tools/list' });
  assert.equal(bad2.status, 400, bad2.body);
  const ok = await aliceRpc(call(32, 'echo', { message: 'x' }), { 'mcp-method': 'tools/call', 'mcp-name': 'echo' });
  assert.equal(ok.status, 200, ok.body);
});

test('audit lines, field by field; metrics by method and decision', async () => {
  let lines = [];
  await waitFor(() => (lines = auditLines()).some((l) => l.jsonrpc_id === 32), { message: 'the last audit line' });
  const find = (pred, what) => {
    const l = lines.find(pred);
    assert.ok(l, `${what}: ${JSON.stringify(lines, null, 1)}`);
    return l;
  };
  const echo = find((l) => l.jsonrpc_id === 2, 'echo');
  assert.match(echo.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.match(echo.request_id, /^[0-9a-f]{16,}$/);
  assert.equal(echo.subject, 'alice');
  assert.equal(echo.client_id, alice.clientId);
  assert.equal(echo.method, 'tools/call');
  assert.equal(echo.name, 'echo');
  assert.equal(echo.decision, 'allow');
  assert.equal(echo.rule, 'rules[0]');
  assert.equal(echo.outcome, 'success');
  assert.equal(typeof echo.duration_ms, 'number');
  assert.deepEqual(echo.arguments, { message: 'hello policy' });

  const sum = find((l) => l.jsonrpc_id === 's-3', 'denied get-sum');
  assert.deepEqual([sum.subject, sum.name, sum.decision, sum.rule, sum.outcome], ['alice', 'get-sum', 'deny', 'default', 'denied']);
  const getEnv = find((l) => l.jsonrpc_id === 4 && l.subject === 'alice', 'denied get-env');
  assert.deepEqual([getEnv.decision, getEnv.rule], ['deny', 'rules[1]']);
  const step = find((l) => l.jsonrpc_id === 7, 'step-up');
  assert.deepEqual([step.subject, step.decision, step.rule, step.outcome], ['bob', 'step_up', 'rules[2]', 'denied']);
  const sum8 = find((l) => l.jsonrpc_id === 8, 'admin get-sum');
  assert.deepEqual([sum8.subject, sum8.decision, sum8.rule, sum8.outcome], ['bob', 'allow', 'rules[2]', 'success']);
  const init = find((l) => l.method === 'initialize' && l.subject === 'alice', 'initialize');
  assert.deepEqual([init.decision, init.rule, init.outcome], ['allow', 'always', 'success']);
  const note = find((l) => l.method === 'notifications/initialized', 'notification');
  assert.equal(note.jsonrpc_id, null);
  assert.equal(note.outcome, 'success');
  const b20 = find((l) => l.jsonrpc_id === 20, 'batch member');
  assert.deepEqual([b20.decision, b20.outcome], ['allow', 'not_run']);
  const b21 = find((l) => l.jsonrpc_id === 21, 'batch member');
  assert.deepEqual([b21.decision, b21.outcome], ['deny', 'denied']);
  const bad = find((l) => l.decision === 'invalid', 'malformed body');
  assert.equal(bad.method, null);
  assert.equal(bad.outcome, 'rejected');
  assert.equal(lines.filter((l) => l.decision === 'invalid').length, 9);
  for (const l of lines) {
    for (const k of ['time', 'request_id', 'subject', 'client_id', 'method', 'name', 'decision', 'rule', 'outcome', 'duration_ms']) {
      assert.ok(k in l, `${k} in ${JSON.stringify(l)}`);
    }
  }
  // arguments are capped at maxArgumentsSize
  const big = await aliceRpc(call(40, 'echo', { message: 'y'.repeat(200) }));
  assert.equal(big.status, 200);
  await waitFor(() => (lines = auditLines()).some((l) => l.jsonrpc_id === 40), { message: 'the capped line' });
  const capped = lines.find((l) => l.jsonrpc_id === 40);
  assert.equal(capped.arguments_truncated, true);
  assert.equal(capped.arguments.length, 64);

  const m = await scrapeMetrics(`http://127.0.0.1:${env.proxy.diagPort}`);
  assert.ok(m.get('mcp_proxy_mcp_requests_total{decision="allow",method="tools/call"}') >= 3, m.text);
  assert.ok(m.get('mcp_proxy_mcp_requests_total{decision="deny",method="tools/call"}') >= 3, m.text);
  assert.equal(m.get('mcp_proxy_mcp_requests_total{decision="step_up",method="tools/call"}'), 1);
  assert.ok(m.get('mcp_proxy_mcp_requests_total{decision="allow",method="initialize"}') >= 3);
  assert.equal(m.get('mcp_proxy_mcp_requests_total{decision="invalid",method="none"}'), 7);
});

test('external IdP (auth.mode oidc): the rules read the access token\'s own claims', async (t) => {
  const REDIRECT = 'http://127.0.0.1:45998/cb';
  const port = await getFreePort();
  const mcpUrl = `http://127.0.0.1:${port}/mcp`;
  const idp = await startIdp({
    redirect_uris: [REDIRECT], accessTokenGroups: true,
    user: { sub: 'alice', groups: ['staff'] },
    users: { bob: { sub: 'bob', groups: ['admins'] } },
  }, { t });
  const echo = await startEchoBackend({ t });
  const discovery = await idp.discovery();
  const proxy = await startProxy({
    server: { resourceUrl: mcpUrl },
    backend: { url: echo.url },
    auth: { mode: 'oidc', oidc: { issuer: idp.issuer, audience: mcpUrl, insecureAllowHTTP: true } },
    authorization: { rules: [{ operations: ['tools/call:*'], allow: { claims: { groups: ['admins'] } } }] },
  }, { t, port });
  const tokenFor = async (user) => {
    await idp.control({ user });
    const { verifier, challenge } = pkcePair();
    const u = new URL(discovery.authorization_endpoint);
    const params = {
      client_id: idp.clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'openid mcp:tools',
      state: crypto.randomBytes(6).toString('hex'), code_challenge: challenge,
      code_challenge_method: 'S256', resource: mcpUrl,
    };
    for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
    const res = await followAuthorization(u, { redirectUri: REDIRECT, jar: new CookieJar() });
    assert.ok(res.code, JSON.stringify(res.hops ?? res));
    const tok = await request(discovery.token_endpoint, {
      method: 'POST',
      headers: { authorization: 'Basic ' + Buffer.from(`${idp.clientId}:${idp.clientSecret}`).toString('base64') },
      body: new URLSearchParams({
        grant_type: 'authorization_code', code: res.code, redirect_uri: REDIRECT, code_verifier: verifier, resource: mcpUrl,
      }),
    });
    assert.equal(tok.status, 200, tok.body);
    tokens.add(tok.json().access_token);
    return tok.json().access_token;
  };
  const aliceAt = await tokenFor('alice');
  assert.deepEqual(decodeJwt(aliceAt).payload.groups, ['staff']);
  const bobAt = await tokenFor('bob');
  const callAs = (at) => request(mcpUrl, {
    method: 'POST', headers: { authorization: `Bearer ${at}` }, body: call(1, 'anything'),
  });
  const a = await callAs(aliceAt);
  assert.equal(a.status, 403, a.body);
  assert.equal(JSON.parse(a.body).error.data.error, 'forbidden');
  const b = await callAs(bobAt);
  assert.equal(b.status, 200, b.body);
  assert.equal(b.json().id, 1);
  // the backend got the body as sent
  assert.deepEqual(JSON.parse(b.json().result.body), call(1, 'anything'));
  // twice: the second time from the verified-token cache, claims kept with it
  assert.equal((await callAs(bobAt)).status, 200);
  assert.equal((await callAs(aliceAt)).status, 403);
  await proxy.stop();
});

test('JSON list replies are filtered too (auth.mode none), cursors pass; a list that is not JSON is cut', async (t) => {
  // a backend answering tools/list as one JSON body with a Content-Length
  const backend = http.createServer((req, res) => {
    let b = '';
    req.on('data', (c) => { b += c; });
    req.on('end', () => {
      const m = JSON.parse(b);
      const body = req.url.includes('broken') ? '{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"secret"}' + ' '.repeat(10)
        : JSON.stringify({ jsonrpc: '2.0', id: m.id, result: { tools: [{ name: 'ok-1' }, { name: 'secret' }, { name: 'ok-2' }], nextCursor: 'page-2' } });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  await new Promise((r) => backend.listen(0, '127.0.0.1', r));
  t.after(() => backend.close());
  const proxy = await startProxy({
    backend: { url: `http://127.0.0.1:${backend.address().port}` },
    auth: { mode: 'none' },
    authorization: { defaultDecision: 'deny', rules: [{ operations: ['tools/list', 'tools/call:ok-*'], allow: {} }] },
  }, { t });
  const r = await request(`${proxy.origin}/mcp`, { method: 'POST', body: { jsonrpc: '2.0', id: 'l1', method: 'tools/list', params: { cursor: 'page-1' } } });
  assert.equal(r.status, 200, r.body);
  // a JSON answer of a known length goes out whole, with the filtered body's length
  assert.equal(r.headers['transfer-encoding'], undefined);
  assert.equal(r.headers['content-length'], String(Buffer.byteLength(r.body)));
  assert.deepEqual(r.json(), { jsonrpc: '2.0', id: 'l1', result: { tools: [{ name: 'ok-1' }, { name: 'ok-2' }], nextCursor: 'page-2' } });
  // the same answer under other ids (from the list cache: the bytes but the id are the same)
  for (const id of [7, 1234567890, 'a-much-longer-id-than-before', 'l1']) {
    const again = await request(`${proxy.origin}/mcp`, { method: 'POST', body: { jsonrpc: '2.0', id, method: 'tools/list', params: { cursor: 'page-1' } } });
    assert.deepEqual(again.json(), { jsonrpc: '2.0', id, result: { tools: [{ name: 'ok-1' }, { name: 'ok-2' }], nextCursor: 'page-2' } });
  }
  await assert.rejects(
    request(`${proxy.origin}/broken/mcp`, { method: 'POST', body: { jsonrpc: '2.0', id: 1, method: 'tools/list' } }),
    'a list reply that cannot be filtered is cut, not sent');
  await proxy.stop();
});
