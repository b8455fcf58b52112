// End to end: a real MCP client (the pinned TypeScript SDK) logs in through the proxy's
// embedded authorization server and works through it — with a Client ID Metadata Document
// (CIMD), with dynamic client registration (DCR), with DCR as the fallback when CIMD is off,
// over the legacy SSE transport, and across an access-token expiry (refresh, no new login);
// a CIMD document that breaks a rule makes the login fail with invalid_client.
// Peers, all on 127.0.0.1: server-everything (backend), oidc-provider (upstream IdP, logs
// "alice" in without a form), an HTTPS document host with a test CA (outbound.caFile).
// The browser part of the login is driven headlessly by HeadlessOAuthProvider.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  startProxy, startIdp, startDocHost, startBackend, getFreePort, request, loginAndConnect,
  clientMetadataDocument, decodeJwt, scrapeMetrics, sleep, SLOW, embeddedAS, idpSecrets,
} from './lib/harness.mjs';

const REDIRECT = 'http://127.0.0.1:33418/callback'; // the SDK client's; nothing listens there

/**
 * IdP + doc host + server-everything + the proxy (embedded AS, CIMD on unless cimd.enabled
 * is false). transport: the backend's ("streamable-http" or "sse"). Returns {proxy, idp,
 * docs, backend, mcpUrl, origin} once discovery answers and the guard answers 401.
 */
async function setup(t, { transport = 'streamable-http', cimd = {}, tokenLifespans } = {}) {
  const port = await getFreePort();
  const origin = `http://127.0.0.1:${port}`;
  const idp = await startIdp({ redirect_uris: [`${origin}/oauth/callback`] }, { t });
  const docs = await startDocHost({ t });
  const backend = await startBackend(transport, { t });
  const mcpUrl = `${origin}${transport === 'sse' ? '/sse' : '/mcp'}`;
  const proxy = await startProxy({
    server: { resourceUrl: mcpUrl },
    backend: { url: backend.url, transport },
    auth: { mode: 'embedded' },
    outbound: { caFile: docs.caFile },
    embeddedAuthServer: embeddedAS(origin, idp, {
      baselineClientScopes: ['openid', 'offline_access'],
      cimd: { enabled: true, insecureAllowLoopback: true, ...cimd },
      ...(tokenLifespans ? { tokenLifespans } : {}),
    }),
  }, { t, port, secrets: idpSecrets(idp) });

  // Served yet? Discovery answers and the guard answers 401 with RFC 9728 metadata.
  const d = await request(`${origin}/.well-known/oauth-authorization-server`);
  const g = await request(mcpUrl, {
    method: transport === 'sse' ? 'GET' : 'POST',
    headers: { accept: 'application/json, text/event-stream' },
    body: transport === 'sse' ? undefined : { jsonrpc: '2.0', id: 1, method: 'ping' },
  });
  assert.equal(d.status, 200, `AS discovery: ${d.body}`);
  assert.equal(g.status, 401, `${mcpUrl} without a token: ${g.body}`);
  assert.match(g.headers['www-authenticate'] || '', /resource_metadata=/);
  return { proxy, idp, docs, backend, mcpUrl, origin };
}

/** Put a valid document for the SDK client at path; → its URL (= client_id). */
async function publish(docs, path, extra = {}) {
  const url = docs.url(path);
  await docs.setDocument(path, clientMetadataDocument(url, [REDIRECT], extra));
  return url;
}

const pathOf = (u) => new URL(u).pathname;
const formOf = (e) => new URLSearchParams(e.requestBody || '');
const tokenRequests = (log, grant) => log.filter((e) => e.method === 'POST' && pathOf(e.url) === '/oauth/token'
  && formOf(e).get('grant_type') === grant);
const registrations = (log) => log.filter((e) => pathOf(e.url) === '/oauth/register');
const text = (r) => (r.content || []).filter((x) => x.type === 'text').map((x) => x.text).join('\n');

/** The discovery sequence every login starts with: 401 → RFC 9728 → RFC 8414. */
function assertDiscovery(log, mcpUrl) {
  assert.equal(log[0].url, mcpUrl, 'the first request is the MCP request itself');
  assert.equal(log[0].status, 401);
  assert.match(log[0].responseHeaders['www-authenticate'], /^Bearer .*resource_metadata="[^"]+"/);
  const prm = log.find((e) => pathOf(e.url).startsWith('/.well-known/oauth-protected-resource'));
  assert.ok(prm, 'protected-resource metadata was fetched');
  assert.equal(prm.status, 200);
  const asm = log.find((e) => pathOf(e.url).startsWith('/.well-known/oauth-authorization-server')
    || pathOf(e.url).startsWith('/.well-known/openid-configuration'));
  assert.ok(asm, 'authorization server metadata was fetched');
  assert.equal(asm.status, 200);
  assert.ok(log.indexOf(prm) < log.indexOf(asm), 'RFC 9728 before RFC 8414');
}

/** echo and get-sum through the proxy. */
async function assertTools(client) {
  const { tools } = await client.listTools();
  const names = tools.map((x) => x.name);
  for (const n of ['echo', 'get-sum', 'trigger-long-running-operation']) assert.ok(names.includes(n), `${n} in ${names}`);
  assert.equal(text(await client.callTool({ name: 'echo', arguments: { message: 'hello through the proxy' } })),
    'Echo: hello through the proxy');
  assert.match(text(await client.callTool({ name: 'get-sum', arguments: { a: 2, b: 40 } })), /\b42\b/);
}

test('CIMD: the SDK client logs in without registering and uses tools, progress, resources and prompts', async (t) => {
  const { proxy, idp, docs, mcpUrl } = await setup(t);
  const clientId = await publish(docs, '/clients/e2e-client.json');
  const fetchLog = [];
  const client = await loginAndConnect({ mcpUrl, clientMetadataUrl: clientId, caFile: docs.caFile, fetchLog, t });

  // The login: 401, discovery with the CIMD flag, no registration, one authorization with the
  // metadata URL as client_id, one upstream login, one code exchange.
  assertDiscovery(fetchLog, mcpUrl);
  const asm = fetchLog.find((e) => pathOf(e.url).startsWith('/.well-known/oauth-authorization-server'));
  assert.ok(asm);
  assert.deepEqual(registrations(fetchLog), [], 'no request to /oauth/register');
  assert.equal(client.oauth.registered?.client_id, clientId, 'the SDK used the metadata URL as client_id');
  assert.equal(client.oauth.authorizationUrls.length, 1);
  const authz = new URL(client.oauth.authorizationUrls[0]);
  assert.equal(authz.origin + authz.pathname, `${proxy.origin}/oauth/authorize`);
  assert.equal(authz.searchParams.get('client_id'), clientId);
  assert.equal(authz.searchParams.get('code_challenge_method'), 'S256');
  assert.equal(authz.searchParams.get('resource'), mcpUrl);
  const codeExchanges = tokenRequests(fetchLog, 'authorization_code');
  assert.equal(codeExchanges.length, 1);
  assert.equal(codeExchanges[0].status, 200);
  assert.equal(formOf(codeExchanges[0]).get('client_id'), clientId);
  assert.equal((await idp.stats()).logins, 1, 'one upstream login');
  assert.ok((await docs.stats()).requests['/clients/e2e-client.json'] >= 1, 'the AS fetched the document');
  const tokens = client.oauth.tokens();
  assert.ok(tokens.access_token && tokens.refresh_token, 'access and refresh token');
  const at = decodeJwt(tokens.access_token).payload;
  assert.equal(at.iss, proxy.origin);
  assert.ok([].concat(at.aud).includes(mcpUrl), `aud ${JSON.stringify(at.aud)} names the resource`);
  assert.equal(at.client_id ?? clientId, clientId);

  // initialize happened (connect), then the MCP surface.
  assert.ok(client.getServerVersion()?.name, 'initialize returned serverInfo');
  await assertTools(client);

  // A tool that streams progress notifications through the proxy.
  const progress = [];
  const long = await client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 2, steps: 4 } },
    undefined, { onprogress: (p) => progress.push(p), timeout: 30000 * SLOW });
  assert.match(text(long), /Long running operation completed/);
  assert.ok(progress.length >= 3, `progress notifications: ${JSON.stringify(progress)}`);
  assert.deepEqual(progress.map((p) => p.progress), [...progress.keys()].map((i) => i + 1), 'in order');
  assert.equal(progress[progress.length - 1].progress, 4);
  assert.equal(progress[0].total, 4);

  const { resources } = await client.listResources();
  assert.ok(resources.length > 0, 'resources listed');
  const doc = resources.find((r) => r.mimeType?.startsWith('text/')) || resources[0];
  const read = await client.readResource({ uri: doc.uri });
  assert.equal(read.contents[0].uri, doc.uri);
  assert.ok((read.contents[0].text || read.contents[0].blob || '').length > 0, 'resource content');

  const { prompts } = await client.listPrompts();
  const simple = prompts.find((p) => !(p.arguments || []).some((a) => a.required));
  assert.ok(simple, `a prompt without required arguments in ${prompts.map((p) => p.name)}`);
  const got = await client.getPrompt({ name: simple.name, arguments: {} });
  assert.ok(got.messages.length > 0, 'prompt messages');

  // No further logins were needed, and the proxy counted the CIMD fetch.
  assert.equal(client.oauth.authorizationUrls.length, 1);
  assert.equal((await idp.stats()).logins, 1);
  const m = await scrapeMetrics(proxy.diagUrl);
  assert.ok(m.get('mcp_proxy_cimd_fetch_total{outcome="ok"}') >= 1, 'mcp_proxy_cimd_fetch_total{outcome="ok"}');
  await client.close();
});

test('access token expiry: the SDK refreshes after a 401 and carries on without a new login', async (t) => {
  const { idp, docs, mcpUrl } = await setup(t, {
    tokenLifespans: { accessTokenLifespan: '1m', refreshTokenLifespan: '1h', authCodeLifespan: '1m' },
  });
  const clientId = await publish(docs, '/clients/expiry.json');
  const fetchLog = [];
  const client = await loginAndConnect({ mcpUrl, clientMetadataUrl: clientId, caFile: docs.caFile, fetchLog, t });
  assert.match(text(await client.callTool({ name: 'echo', arguments: { message: 'before' } })), /before/);
  const first = client.oauth.tokens();
  const { exp, iat } = decodeJwt(first.access_token).payload;
  assert.ok(exp - iat <= 60, `lifetime ${exp - iat} s`);

  // Wait until the proxy itself refuses the first token (its leeway decides when).
  const sessionId = client.mcpTransport.sessionId;
  const stillAccepted = async () => (await request(mcpUrl, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${first.access_token}`, accept: 'application/json, text/event-stream',
      'mcp-session-id': sessionId, 'mcp-protocol-version': client.mcpTransport.protocolVersion || '2025-06-18',
    },
    body: { jsonrpc: '2.0', id: 'probe', method: 'ping' },
  })).status !== 401;
  const deadline = (exp + 20) * 1000; // exp + the guard's 5 s leeway + margin
  await sleep(Math.max(0, exp * 1000 - Date.now()));
  while (await stillAccepted()) {
    if (Date.now() > deadline) assert.fail(`the proxy still accepts an access token ${Math.round(Date.now() / 1000 - exp)} s after exp`);
    await sleep(1000);
  }
  const rejectedAfter = Math.round(Date.now() / 1000 - exp);
  t.diagnostic(`the proxy refused the expired token ${rejectedAfter} s after exp`);

  // The same client keeps working: 401 invalid_token → refresh_token grant → retry.
  const loginsBefore = (await idp.stats()).logins;
  assert.match(text(await client.callTool({ name: 'echo', arguments: { message: 'after expiry' } })), /after expiry/);
  const refreshes = tokenRequests(fetchLog, 'refresh_token');
  assert.equal(refreshes.length, 1, 'one refresh_token grant');
  assert.equal(refreshes[0].status, 200);
  assert.equal(formOf(refreshes[0]).get('client_id'), clientId);
  const expired401 = fetchLog.filter((e) => e.url === mcpUrl && e.status === 401);
  assert.ok(expired401.length >= 2, 'the login 401 and the expiry 401');
  assert.match(expired401[expired401.length - 1].responseHeaders['www-authenticate'], /error="invalid_token"/);
  assert.equal(client.oauth.authorizationUrls.length, 1, 'no second authorization');
  assert.equal((await idp.stats()).logins, loginsBefore, 'no second upstream login');
  const second = client.oauth.tokens();
  assert.notEqual(second.access_token, first.access_token);
  assert.ok(decodeJwt(second.access_token).payload.exp > exp);
  assert.match(text(await client.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } })), /\b3\b/);
  await client.close();
});

test('DCR: a client without a metadata URL registers through /oauth/register and works', async (t) => {
  const { idp, mcpUrl } = await setup(t);
  const fetchLog = [];
  const client = await loginAndConnect({ mcpUrl, fetchLog, t });
  assertDiscovery(fetchLog, mcpUrl);
  const regs = registrations(fetchLog);
  assert.equal(regs.length, 1, 'one registration');
  assert.equal(regs[0].status, 201);
  const clientId = client.oauth.registered.client_id;
  assert.ok(clientId && !clientId.startsWith('https://'), `registered client_id ${clientId}`);
  assert.equal(new URL(client.oauth.authorizationUrls[0]).searchParams.get('client_id'), clientId);
  assert.equal(formOf(tokenRequests(fetchLog, 'authorization_code')[0]).get('client_id'), clientId);
  assert.equal((await idp.stats()).logins, 1);
  await assertTools(client);
  await client.close();
});

test('CIMD disabled: the same CIMD-capable client falls back to DCR and works', async (t) => {
  const { docs, mcpUrl, origin } = await setup(t, { cimd: { enabled: false } });
  const disc = (await request(`${origin}/.well-known/oauth-authorization-server`)).json();
  assert.notEqual(disc.client_id_metadata_document_supported, true, 'not advertised');
  const clientId = await publish(docs, '/clients/fallback.json');
  const fetchLog = [];
  const client = await loginAndConnect({ mcpUrl, clientMetadataUrl: clientId, caFile: docs.caFile, fetchLog, t });
  assert.equal(registrations(fetchLog).length, 1, 'fell back to /oauth/register');
  assert.notEqual(client.oauth.registered.client_id, clientId);
  assert.equal((await docs.stats()).requests['/clients/fallback.json'] ?? 0, 0, 'the document was never fetched');
  await assertTools(client);
  await client.close();
});

test('legacy SSE transport: login and tools through the proxy (backend.transport sse)', async (t) => {
  const { idp, docs, mcpUrl } = await setup(t, { transport: 'sse' });
  const clientId = await publish(docs, '/clients/sse.json');
  const fetchLog = [];
  const client = await loginAndConnect({ mcpUrl, transport: 'sse', clientMetadataUrl: clientId, caFile: docs.caFile, fetchLog, t });
  assert.equal(fetchLog[0].url, mcpUrl);
  assert.equal(fetchLog[0].status, 401);
  assert.deepEqual(registrations(fetchLog), []);
  assert.equal((await idp.stats()).logins, 1);
  await assertTools(client);
  // Messages go to the rewritten endpoint on the proxy: POST /message?sessionId=…
  const posts = fetchLog.filter((e) => e.method === 'POST' && pathOf(e.url) === '/message');
  assert.ok(posts.length >= 3, `POST /message seen: ${posts.length}`);
  assert.ok(posts.every((e) => new URL(e.url).origin === new URL(mcpUrl).origin && new URL(e.url).searchParams.get('sessionId')));
  assert.ok(posts.every((e) => e.requestHeaders.authorization?.startsWith('Bearer ')), 'messages carry the token');
  // With server-everything in SSE mode the SDK client misses the last progress notification
  // (also when connected to it directly, without the proxy): expect all but the last.
  const progress = [];
  await client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 2, steps: 4 } },
    undefined, { onprogress: (p) => progress.push(p), timeout: 30000 * SLOW });
  assert.ok(progress.length >= 3, JSON.stringify(progress));
  assert.deepEqual(progress.slice(0, 3).map((p) => p.progress), [1, 2, 3]);
  await client.close();
});

test('a CIMD document with a shared-secret auth method: invalid_client, and the SDK reports it', async (t) => {
  const { proxy, idp, docs, mcpUrl } = await setup(t);
  const clientId = await publish(docs, '/clients/bad-auth.json', { token_endpoint_auth_method: 'client_secret_basic' });
  const fetchLog = [];
  const err = await loginAndConnect({ mcpUrl, clientMetadataUrl: clientId, caFile: docs.caFile, fetchLog, t })
    .then(() => null, (e) => e);
  assert.ok(err, 'the login fails');
  assert.equal(err.message, `authorization failed at ${proxy.origin}/oauth/authorize: HTTP 400 invalid_client: `
    + 'client metadata document token_endpoint_auth_method client_secret_basic uses a shared secret; '
    + 'CIMD clients use none or private_key_jwt');
  assert.equal(err.oauthError.error, 'invalid_client');
  assert.equal(err.response.headers.location, undefined, 'the AS showed the error itself, no redirect');
  assert.equal((await idp.stats()).logins, 0, 'never sent to the IdP');
  assert.deepEqual(tokenRequests(fetchLog, 'authorization_code'), []);
  const warn = await proxy.waitForLog((l) => l.msg === 'cimd: client metadata document refused');
  assert.equal(warn.host, '127.0.0.1');
  assert.match(warn.reason, /shared secret/);
  const m = await scrapeMetrics(proxy.diagUrl);
  assert.ok(m.get('mcp_proxy_cimd_fetch_total{outcome="invalid"}') >= 1, 'mcp_proxy_cimd_fetch_total{outcome="invalid"}');
});
