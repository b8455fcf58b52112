// The bearer guard in front of the MCP endpoint, against the real binary, the real upstream
// IdP (oidc-provider) and the echo backend (which reports the headers it received), all on
// 127.0.0.1: RFC 9728 metadata (both paths, CORS, caching), the 401 challenge text, forged
// and garbage tokens, a full login through the embedded AS after which the backend sees the
// upstream IdP's token (never ours, never the client's cookies), revocation, and the
// upstream token's expiry (transparent single refresh; refresh failure → 401).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import {
  startProxy, startIdp, startEchoBackend, getFreePort, request, followAuthorization, CookieJar,
  pkcePair, decodeJwt, sleep, SLOW, embeddedAS, idpSecrets,
} from './lib/harness.mjs';

const CLIENT_REDIRECT = 'http://127.0.0.1:51235/cb';
// No offline_access: a refresh token is no resource requirement (MCP authorization
// 2026-07-28); the AS metadata still lists it.
const DEFAULT_SCOPES = 'openid profile email';

/** IdP + echo backend + proxy (embedded AS). Returns {proxy, idp, echo, origin, mcpUrl, ready}. */
async function setup({ idpOpts = {}, auth = {}, eas = {}, t } = {}) {
  const port = await getFreePort();
  const origin = `http://127.0.0.1:${port}`;
  const idp = await startIdp({ redirect_uris: [`${origin}/oauth/callback`], ...idpOpts }, { t });
  const echo = await startEchoBackend({ t });
  const proxy = await startProxy({
    server: { resourceUrl: `${origin}/mcp` },
    backend: { url: echo.url },
    auth: { mode: 'embedded', ...auth },
    embeddedAuthServer: embeddedAS(origin, idp, {
      baselineClientScopes: ['openid', 'offline_access'],
      ...eas,
    }),
  }, { t, port, secrets: idpSecrets(idp) });
  const probe = await request(`${origin}/mcp`, { method: 'POST', body: { jsonrpc: '2.0', id: 1, method: 'ping' } });
  const ready = probe.status === 401 && /resource_metadata=/.test(probe.headers['www-authenticate'] || '');
  return { proxy, idp, echo, origin, mcpUrl: `${origin}/mcp`, ready, probe };
}

/** The guard must answer an anonymous POST /mcp with a 401 challenge. */
function assertReady(env) {
  assert.ok(env.ready, `no bearer challenge for POST /mcp without a token: ${env.probe.status}`);
}

/** DCR + authorize (through the IdP) + code exchange → our token response. */
async function login(origin, { scope = 'openid offline_access' } = {}) {
  const reg = await request(`${origin}/oauth/register`, {
    method: 'POST',
    body: {
      redirect_uris: [CLIENT_REDIRECT], grant_types: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_method: 'none', client_name: 'guard.test',
    },
  });
  assert.equal(reg.status, 201, reg.body);
  const clientId = reg.json().client_id;
  const pkce = pkcePair();
  const u = new URL(`${origin}/oauth/authorize`);
  const params = {
    response_type: 'code', client_id: clientId, redirect_uri: CLIENT_REDIRECT, scope,
    state: crypto.randomBytes(8).toString('hex'), code_challenge: pkce.challenge,
    code_challenge_method: 'S256', resource: `${origin}/mcp`,
  };
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  const res = await followAuthorization(u.href, { redirectUri: CLIENT_REDIRECT, jar: new CookieJar() });
  assert.ok(res.code, JSON.stringify(res.hops ?? res));
  const tok = await request(`${origin}/oauth/token`, {
    method: 'POST',
    body: new URLSearchParams({
      grant_type: 'authorization_code', code: res.code, redirect_uri: CLIENT_REDIRECT,
      code_verifier: pkce.verifier, client_id: clientId, resource: `${origin}/mcp`,
    }),
  });
  assert.equal(tok.status, 200, tok.body);
  return { ...tok.json(), clientId };
}

const ping = (id = 1) => ({ jsonrpc: '2.0', id, method: 'ping' });

async function mcp(mcpUrl, token, { headers = {}, id = 1 } = {}) {
  return request(mcpUrl, {
    method: 'POST',
    headers: { ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}), ...headers },
    body: ping(id),
  });
}

function assertInvalidToken(res, what) {
  assert.equal(res.status, 401, `${what}: ${res.status} ${res.body}`);
  assert.match(res.headers['www-authenticate'] || '', /^Bearer resource_metadata="[^"]+", scope="[^"]+", error="invalid_token", error_description="(?:[^"\\]|\\.)+"$/, what);
}

// ------------------------------------------------------------------ shared proxy

let env;
before(async () => { env = await setup(); });
after(async () => {
  if (env?.proxy) {
    const logs = await env.proxy.stop();
    const text = JSON.stringify(logs);
    for (const s of secrets) assert.ok(!text.includes(s), 'a token appeared in the logs');
  }
});
const secrets = new Set();

test('protected resource metadata: both paths, CORS, caching; other resources 404', async (t) => {
  assertReady(env);
  const { origin } = env;
  for (const p of ['/.well-known/oauth-protected-resource/mcp', '/.well-known/oauth-protected-resource']) {
    const res = await request(`${origin}${p}`, { headers: { origin: 'https://app.example' } });
    assert.equal(res.status, 200, p);
    assert.match(res.headers['content-type'], /^application\/json/);
    assert.equal(res.headers['access-control-allow-origin'], '*');
    assert.equal(res.headers['cache-control'], 'public, max-age=3600');
    assert.deepEqual(res.json(), {
      resource: `${origin}/mcp`,
      authorization_servers: [origin],
      bearer_methods_supported: ['header'],
      scopes_supported: DEFAULT_SCOPES.split(' '),
    });
  }
  const pre = await request(`${origin}/.well-known/oauth-protected-resource/mcp`, {
    method: 'OPTIONS',
    headers: { origin: 'https://app.example', 'access-control-request-method': 'GET', 'access-control-request-headers': 'mcp-protocol-version' },
  });
  assert.equal(pre.status, 204);
  assert.equal(pre.headers['access-control-allow-origin'], '*');
  assert.match(pre.headers['access-control-allow-methods'], /GET/);
  assert.match(pre.headers['access-control-allow-headers'], /MCP-Protocol-Version/i);
  const other = await request(`${origin}/.well-known/oauth-protected-resource/other`);
  assert.equal(other.status, 404);
  const post = await request(`${origin}/.well-known/oauth-protected-resource`, { method: 'POST', body: {} });
  assert.equal(post.status, 405);
});

test('401 without a token: the exact challenge, a JSON-RPC error, nothing forwarded', async (t) => {
  assertReady(env);
  const { origin, mcpUrl, echo } = env;
  await echo.reset();
  const res = await mcp(mcpUrl, undefined, { id: 42 });
  assert.equal(res.status, 401);
  assert.equal(res.headers['www-authenticate'],
    `Bearer resource_metadata="${origin}/.well-known/oauth-protected-resource/mcp", scope="${DEFAULT_SCOPES}"`);
  assert.equal(res.headers['cache-control'], 'no-store');
  const body = res.json();
  assert.equal(body.jsonrpc, '2.0');
  assert.equal(body.id, 42);
  assert.equal(body.error.code, -32001);
  // not JSON-RPC: the OAuth error shape
  const get = await request(mcpUrl, { headers: { accept: 'text/event-stream' } });
  assert.equal(get.status, 401);
  assert.deepEqual(get.json(), { error: 'unauthorized', error_description: 'an access token is required' });
  assert.equal((await echo.stats()).requests, 0);
});

test('forged and garbage tokens: 401 invalid_token, backend untouched, proxy unharmed', async (t) => {
  assertReady(env);
  const { origin, mcpUrl, echo } = env;
  await echo.reset();
  const jwks = (await request(`${origin}/.well-known/jwks.json`)).json();
  const kid = jwks.keys[0].kid;
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    iss: origin, aud: `${origin}/mcp`, sub: 'alice', exp: now + 300, iat: now,
    jti: 'forged', scope: 'openid offline_access', tsid: 'x',
  };
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const hs = (hdr, secret) => {
    const input = `${b64(hdr)}.${b64(claims)}`;
    return `${input}.${crypto.createHmac('sha256', secret).update(input).digest('base64url')}`;
  };
  const own = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const signEs = (hdr, body) => {
    const input = `${b64(hdr)}.${b64(body)}`;
    return `${input}.${crypto.sign('sha256', Buffer.from(input), { key: own.privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
  };
  const cases = {
    'alg none': `${b64({ alg: 'none', typ: 'at+jwt', kid })}.${b64(claims)}.`,
    'HS256 keyed with our JWKS': hs({ alg: 'HS256', typ: 'at+jwt', kid }, JSON.stringify(jwks.keys[0])),
    'our kid, another key': signEs({ alg: 'ES256', typ: 'at+jwt', kid }, claims),
    'unknown kid': signEs({ alg: 'ES256', typ: 'at+jwt', kid: 'nope' }, claims),
    'no kid': signEs({ alg: 'ES256', typ: 'at+jwt' }, claims),
    truncated: 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0',
    'not base64url': 'a+b/c.d+e/f.g+h/',
    'not JSON': 'Zm9v.YmFy.YmF6',
    opaque: crypto.randomBytes(32).toString('hex'),
  };
  for (const [what, tok] of Object.entries(cases)) {
    secrets.add(tok);
    assertInvalidToken(await mcp(mcpUrl, tok), what);
  }
  for (const [what, authz] of Object.entries({
    'Basic scheme': 'Basic dXNlcjpwYXNz',
    'two spaces': 'Bearer  abc',
    'not token68': 'Bearer abc def',
    '64 KiB': `Bearer ${'e'.repeat(64 * 1024)}`,
  })) {
    assertInvalidToken(await request(mcpUrl, { method: 'POST', headers: { authorization: authz }, body: ping() }), what);
  }
  assert.equal((await echo.stats()).requests, 0, 'nothing reached the backend');
  const health = await request(`${origin}/health`);
  assert.equal(health.status, 200);
});

test('after login the backend sees the upstream token, never ours, never cookies; revocation bites', async (t) => {
  assertReady(env);
  const { origin, mcpUrl, echo, idp } = env;
  const tokens = await login(origin);
  secrets.add(tokens.access_token);
  secrets.add(tokens.refresh_token);
  const ours = decodeJwt(tokens.access_token);
  assert.equal(ours.header.typ, 'at+jwt');
  assert.ok(ours.payload.tsid, 'our token names the session');
  await echo.reset();
  const res = await mcp(mcpUrl, tokens.access_token, {
    id: 9,
    headers: { cookie: 'session=browser-secret', 'proxy-authorization': 'Basic cDpx', 'x-custom': 'kept' },
  });
  assert.equal(res.status, 200, res.body);
  const seen = res.json().result.headers;
  assert.equal(seen['x-custom'], 'kept');
  assert.equal(seen.cookie, undefined, 'cookies are stripped');
  assert.equal(seen['proxy-authorization'], undefined);
  assert.match(seen.authorization, /^Bearer \S+$/);
  const upstream = seen.authorization.slice(7);
  secrets.add(upstream);
  assert.notEqual(upstream, tokens.access_token, 'our access token is never passed through');
  assert.ok(!seen.authorization.includes(tokens.access_token));
  // It is the IdP's token for alice: the IdP's userinfo accepts it.
  const d = await idp.discovery();
  const me = await request(d.userinfo_endpoint, { headers: { authorization: seen.authorization } });
  assert.equal(me.status, 200, me.body);
  assert.equal(me.json().sub, 'alice');

  // Cached verification: many requests, same answer.
  for (let i = 0; i < 5; i++) assert.equal((await mcp(mcpUrl, tokens.access_token)).status, 200);

  // Revoked (RFC 7009) → 401 on the very next request, cache or not.
  const rev = await request(`${origin}/oauth/revoke`, {
    method: 'POST',
    body: new URLSearchParams({ token: tokens.access_token, client_id: tokens.clientId, token_type_hint: 'access_token' }),
  });
  assert.equal(rev.status, 200, rev.body);
  const after = await mcp(mcpUrl, tokens.access_token);
  assertInvalidToken(after, 'revoked');
  assert.match(after.headers['www-authenticate'], /revoked/);
});

// ------------------------------------------------------------------ separate proxies

test('auth.upstreamTokenHeader and requiredScopes (403 insufficient_scope)', async (t) => {
  const e = await setup({ t, auth: { upstreamTokenHeader: 'X-Upstream-Token', requiredScopes: ['openid'] } });
  assertReady(e);
  const tokens = await login(e.origin);
  const res = await mcp(e.mcpUrl, tokens.access_token);
  assert.equal(res.status, 200, res.body);
  const seen = res.json().result.headers;
  assert.equal(seen.authorization, undefined);
  assert.ok(seen['x-upstream-token'] && !seen['x-upstream-token'].startsWith('Bearer '));
  assert.notEqual(seen['x-upstream-token'], tokens.access_token);
  await e.proxy.stop();

  const s = await setup({ t, auth: { requiredScopes: ['admin'] }, eas: { baselineClientScopes: ['openid', 'offline_access'] } });
  assertReady(s);
  const weak = await login(s.origin);
  const denied = await mcp(s.mcpUrl, weak.access_token);
  assert.equal(denied.status, 403);
  assert.equal(denied.headers['www-authenticate'],
    `Bearer resource_metadata="${s.origin}/.well-known/oauth-protected-resource/mcp", scope="admin", error="insufficient_scope", error_description="the access token lacks the scope admin"`);
  assert.equal((await s.echo.stats()).requests, 0);
});

test('embeddedAuthServer.disableUpstreamTokenInjection: no credential reaches the backend', async (t) => {
  const e = await setup({ t, eas: { disableUpstreamTokenInjection: true } });
  assertReady(e);
  const tokens = await login(e.origin);
  const res = await mcp(e.mcpUrl, tokens.access_token, { headers: { cookie: 'a=b' } });
  assert.equal(res.status, 200, res.body);
  const seen = res.json().result.headers;
  assert.equal(seen.authorization, undefined);
  assert.equal(seen.cookie, undefined);
});

test('upstream token expiry: one transparent refresh for concurrent requests', async (t) => {
  const e = await setup({ t, idpOpts: { accessTokenTTL: 7 } });
  assertReady(e);
  const tokens = await login(e.origin);
  const first = await mcp(e.mcpUrl, tokens.access_token);
  assert.equal(first.status, 200, first.body);
  const before = first.json().result.headers.authorization;
  await e.idp.control({ accessTokenTTL: 3600 });
  await sleep(3000); // the guard refreshes 5 s before expiry
  await e.idp.reset();
  const all = await Promise.all([1, 2, 3, 4, 5].map((i) => mcp(e.mcpUrl, tokens.access_token, { id: i })));
  for (const r of all) assert.equal(r.status, 200, r.body);
  const after = new Set(all.map((r) => r.json().result.headers.authorization));
  assert.equal(after.size, 1, 'every waiter got the same refreshed token');
  assert.notEqual([...after][0], before);
  assert.equal((await e.idp.stats()).tokens.refresh_token, 1, 'exactly one refresh at the IdP');
});

test('upstream refresh failure: 401 invalid_token so the client logs in again', async (t) => {
  const e = await setup({ t, idpOpts: { accessTokenTTL: 6, refreshTokenTTL: 7 } });
  assertReady(e);
  const tokens = await login(e.origin);
  assert.equal((await mcp(e.mcpUrl, tokens.access_token)).status, 200);
  await sleep(8000 * Math.min(SLOW, 1));
  const res = await mcp(e.mcpUrl, tokens.access_token);
  assertInvalidToken(res, 'refresh failed');
  assert.match(res.headers['www-authenticate'], /sign in again/);
  assert.equal((await e.echo.stats()).requests, 1);
});
