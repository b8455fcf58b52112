// External-IdP mode (auth.mode oidc): no embedded AS; the guard validates tokens that an
// operator's IdP issued. The IdP is oidc-provider on 127.0.0.1 issuing JWT access tokens
// for resource indicators (RFC 8707) and opaque ones otherwise, with RFC 7662
// introspection. JWT for our audience → forwarded (without any credential); wrong audience
// → 401; opaque token → introspected (client_secret_basic) and forwarded, the answer
// cached; inactive (revoked, garbage) → 401; the JWKS is discovered and fetched once.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import {
  startProxy, startIdp, startEchoBackend, getFreePort, request, followAuthorization, CookieJar,
  pkcePair, decodeJwt,
} from './lib/harness.mjs';

const REDIRECT = 'http://127.0.0.1:45997/cb'; // the IdP client's; nothing listens there

let idp;
let echo;
let proxy;
let origin;
let mcpUrl;
let ready;
let probeStatus;
let discovery;
const secrets = new Set();

before(async () => {
  const port = await getFreePort();
  origin = `http://127.0.0.1:${port}`;
  mcpUrl = `${origin}/mcp`;
  idp = await startIdp({ redirect_uris: [REDIRECT] });
  echo = await startEchoBackend();
  discovery = await idp.discovery();
  proxy = await startProxy({
    server: { resourceUrl: mcpUrl },
    backend: { url: echo.url },
    auth: {
      mode: 'oidc',
      oidc: {
        issuer: idp.issuer,
        audience: mcpUrl,
        introspectionUrl: discovery.introspection_endpoint,
        clientId: idp.clientId,
        clientSecretRef: { name: 'idp', key: 'client_secret' },
        introspectionCacheTtl: '30s',
        insecureAllowHTTP: true,
      },
    },
  }, { port, secrets: { idp: { client_secret: idp.clientSecret } } });
  const probe = await request(mcpUrl, { method: 'POST', body: { jsonrpc: '2.0', id: 1, method: 'ping' } });
  probeStatus = probe.status;
  ready = probe.status === 401 && /resource_metadata=/.test(probe.headers['www-authenticate'] || '');
});

after(async () => {
  if (proxy) {
    const logs = await proxy.stop();
    const text = JSON.stringify(logs);
    for (const s of secrets) assert.ok(!text.includes(s), 'a token appeared in the logs');
  }
});

/** The guard must answer an anonymous POST /mcp with a 401 challenge. */
function assertReady() {
  assert.ok(ready, `no bearer challenge for POST /mcp without a token: ${probeStatus}`);
}

const basic = () => 'Basic ' + Buffer.from(`${idp.clientId}:${idp.clientSecret}`).toString('base64');

/** Log alice in at the IdP directly; with resource → a JWT for it, else an opaque token. */
async function idpToken({ resource, scope = resource ? 'openid mcp:tools' : 'openid' } = {}) {
  const { verifier, challenge } = pkcePair();
  const u = new URL(discovery.authorization_endpoint);
  const params = {
    client_id: idp.clientId, redirect_uri: REDIRECT, response_type: 'code', scope,
    state: crypto.randomBytes(6).toString('hex'), code_challenge: challenge,
    code_challenge_method: 'S256', ...(resource ? { resource } : {}),
  };
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  const res = await followAuthorization(u, { redirectUri: REDIRECT, jar: new CookieJar() });
  assert.ok(res.code, JSON.stringify(res.hops ?? res));
  const tok = await request(discovery.token_endpoint, {
    method: 'POST',
    headers: { authorization: basic() },
    body: new URLSearchParams({
      grant_type: 'authorization_code', code: res.code, redirect_uri: REDIRECT, code_verifier: verifier,
      ...(resource ? { resource } : {}),
    }),
  });
  assert.equal(tok.status, 200, tok.body);
  const at = tok.json().access_token;
  secrets.add(at);
  return at;
}

const mcp = (token, headers = {}) => request(mcpUrl, {
  method: 'POST',
  headers: { authorization: `Bearer ${token}`, ...headers },
  body: { jsonrpc: '2.0', id: 5, method: 'ping' },
});

function assertInvalidToken(res, what) {
  assert.equal(res.status, 401, `${what}: ${res.status} ${res.body}`);
  assert.match(res.headers['www-authenticate'] || '', /error="invalid_token"/, what);
  assert.ok(res.headers['www-authenticate'].startsWith(`Bearer resource_metadata="${origin}/.well-known/oauth-protected-resource/mcp"`));
}

test('the metadata names the external issuer', async (t) => {
  assertReady();
  const res = await request(`${origin}/.well-known/oauth-protected-resource/mcp`);
  assert.equal(res.status, 200);
  assert.deepEqual(res.json(), {
    resource: mcpUrl, authorization_servers: [idp.issuer], bearer_methods_supported: ['header'],
  });
  const none = await request(mcpUrl, { method: 'POST', body: {} });
  assert.equal(none.headers['www-authenticate'], `Bearer resource_metadata="${origin}/.well-known/oauth-protected-resource/mcp"`);
});

test('a JWT for our audience is forwarded, with no credential; the JWKS is discovered once', async (t) => {
  assertReady();
  await idp.reset();
  await echo.reset();
  const at = await idpToken({ resource: mcpUrl });
  assert.equal(at.split('.').length, 3);
  assert.equal(decodeJwt(at).payload.aud, mcpUrl);
  const res = await mcp(at, { cookie: 'sid=1' });
  assert.equal(res.status, 200, res.body);
  const seen = res.json().result.headers;
  assert.equal(seen.authorization, undefined, 'the IdP token is not passed on');
  assert.equal(seen.cookie, undefined);
  for (let i = 0; i < 3; i++) assert.equal((await mcp(at)).status, 200);
  const st = await idp.stats();
  const jwksPath = new URL(discovery.jwks_uri).pathname;
  assert.equal(st.requests['/.well-known/openid-configuration'], 1, JSON.stringify(st.requests));
  assert.equal(st.requests[jwksPath], 1, JSON.stringify(st.requests));
  assert.equal(st.requests[new URL(discovery.introspection_endpoint).pathname] ?? 0, 0, 'JWTs are not introspected');
});

test('a JWT for another audience, from another key, or expired-looking garbage: 401', async (t) => {
  assertReady();
  await echo.reset();
  const other = await idpToken({ resource: 'http://127.0.0.1:45996/other' });
  assertInvalidToken(await mcp(other), 'wrong audience');

  // Right iss/aud, signed by a key the IdP never published (kid unknown → one JWKS refetch
  // at most, then refused; a second such token does not refetch within 30 s).
  const key = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const forge = (kid) => {
    const input = `${b64({ alg: 'ES256', typ: 'at+jwt', kid })}.${b64({ iss: idp.issuer, aud: mcpUrl, sub: 'mallory', exp: now + 300, iat: now })}`;
    return `${input}.${crypto.sign('sha256', Buffer.from(input), { key: key.privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
  };
  await idp.reset();
  assertInvalidToken(await mcp(forge('rotated-1')), 'unknown kid');
  assertInvalidToken(await mcp(forge('rotated-2')), 'unknown kid again');
  const jwksPath = new URL(discovery.jwks_uri).pathname;
  assert.ok(((await idp.stats()).requests[jwksPath] ?? 0) <= 1, 'unknown kids do not hammer the JWKS endpoint');
  assertInvalidToken(await mcp(`${b64({ alg: 'none' })}.${b64({ iss: idp.issuer, aud: mcpUrl })}.`), 'alg none');
  assert.equal((await echo.stats()).requests, 0);
});

test('an opaque token is introspected (client_secret_basic), forwarded, and the answer cached', async (t) => {
  assertReady();
  await echo.reset();
  const at = await idpToken();
  assert.equal(at.split('.').length, 1, 'opaque');
  await idp.reset();
  const res = await mcp(at);
  assert.equal(res.status, 200, res.body);
  assert.equal(res.json().result.headers.authorization, undefined);
  assert.equal((await mcp(at)).status, 200);
  const st = await idp.stats();
  assert.equal(st.requests[new URL(discovery.introspection_endpoint).pathname], 1, 'cached after the first introspection');
});

test('inactive opaque tokens (revoked at the IdP, unknown): 401', async (t) => {
  assertReady();
  await echo.reset();
  const at = await idpToken();
  const rev = await request(discovery.revocation_endpoint, {
    method: 'POST', headers: { authorization: basic() }, body: new URLSearchParams({ token: at }),
  });
  assert.equal(rev.status, 200, rev.body);
  const res = await mcp(at);
  assertInvalidToken(res, 'revoked');
  assert.match(res.headers['www-authenticate'], /not active/);
  assertInvalidToken(await mcp(crypto.randomBytes(32).toString('base64url')), 'unknown opaque');
  assert.equal((await echo.stats()).requests, 0);
});
