// Embedded authorization server, end to end against the real binary and a real
// upstream OIDC IdP (oidc-provider), everything on 127.0.0.1: discovery and JWKS,
// DCR, authorize → upstream login → callback → code → token, independent JWT
// verification with node's crypto, refresh rotation and reuse detection,
// revocation, and the error paths (upstream denial, code replay, wrong PKCE
// verifier, unknown client without a redirect).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import {
  startProxy, startIdp, getFreePort, request, followAuthorization, CookieJar, pkcePair, decodeJwt, embeddedAS, idpSecrets,
} from './lib/harness.mjs';

let idp;
let proxy;
let origin;
const CLIENT_REDIRECT = 'http://127.0.0.1:51234/cb';

before(async () => {
  const port = await getFreePort();
  idp = await startIdp({ redirect_uris: [`http://127.0.0.1:${port}/oauth/callback`] });
  proxy = await startProxy({
    server: { resourceUrl: '{{origin}}/mcp' },
    backend: { url: 'http://127.0.0.1:9' },
    auth: { mode: 'embedded' },
    embeddedAuthServer: embeddedAS('{{origin}}', idp, {
      name: 'test-idp',
      baselineClientScopes: ['openid'],
    }),
  }, { port, secrets: idpSecrets(idp) });
  origin = proxy.origin;
});

after(async () => {
  if (proxy) {
    const logs = await proxy.stop();
    // No token, code or secret ever reaches a log line.
    const text = JSON.stringify(logs);
    for (const s of seenSecrets) assert.ok(!text.includes(s), 'a secret value appeared in the logs');
  }
});

const seenSecrets = new Set();
function remember(...values) {
  for (const v of values) if (v) seenSecrets.add(v);
}

async function register(body = {}) {
  const res = await request(`${origin}/oauth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: {
      redirect_uris: [CLIENT_REDIRECT],
      grant_types: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_method: 'none',
      client_name: 'as.test',
      ...body,
    },
  });
  return res;
}

function authorizeUrl(params) {
  const u = new URL(`${origin}/oauth/authorize`);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) u.searchParams.set(k, v);
  return u.href;
}

async function login(clientId, { scope = 'openid offline_access', pkce = pkcePair(), state = crypto.randomBytes(8).toString('hex') } = {}) {
  const res = await followAuthorization(authorizeUrl({
    response_type: 'code', client_id: clientId, redirect_uri: CLIENT_REDIRECT, scope, state,
    code_challenge: pkce.challenge, code_challenge_method: 'S256', resource: `${origin}/mcp`,
  }), { redirectUri: CLIENT_REDIRECT, jar: new CookieJar() });
  return { ...res, pkce, sentState: state };
}

async function token(form) {
  const res = await request(`${origin}/oauth/token`, { method: 'POST', body: new URLSearchParams(form) });
  return { res, json: res.body ? JSON.parse(res.body) : undefined };
}

async function verifyJwt(jwt) {
  const jwks = await request(`${origin}/.well-known/jwks.json`);
  assert.equal(jwks.status, 200);
  assert.match(jwks.headers['cache-control'], /max-age=300/);
  const { header, payload } = decodeJwt(jwt);
  const jwk = jwks.json().keys.find((k) => k.kid === header.kid);
  assert.ok(jwk, 'the token kid is published');
  assert.equal(jwk.d, undefined, 'no private part is published');
  const key = crypto.createPublicKey({ key: jwk, format: 'jwk' });
  const [h, p, s] = jwt.split('.');
  const alg = header.alg;
  const ok = crypto.verify(alg.startsWith('RS') ? 'sha256' : alg === 'ES384' ? 'sha384' : 'sha256',
    Buffer.from(`${h}.${p}`), alg.startsWith('ES') ? { key, dsaEncoding: 'ieee-p1363' } : key,
    Buffer.from(s, 'base64url'));
  assert.ok(ok, 'the signature verifies against the published JWKS');
  return { header, payload };
}

test('/health reports the storage (memory: always reachable)', async () => {
  const res = await request(`${proxy.diagUrl}/health`);
  assert.equal(res.status, 200);
  const h = JSON.parse(res.body);
  assert.deepEqual(h.storage, { type: 'memory', reachable: true });
});

test('discovery documents and JWKS', async (t) => {
  for (const p of ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']) {
    const res = await request(`${origin}${p}`);
    assert.equal(res.status, 200);
    assert.match(res.headers['cache-control'], /public, max-age=3600/);
    assert.equal(res.headers['access-control-allow-origin'], '*');
    const m = res.json();
    assert.equal(m.issuer, origin);
    assert.equal(m.authorization_endpoint, `${origin}/oauth/authorize`);
    assert.equal(m.token_endpoint, `${origin}/oauth/token`);
    assert.equal(m.registration_endpoint, `${origin}/oauth/register`);
    assert.equal(m.revocation_endpoint, `${origin}/oauth/revoke`);
    assert.equal(m.jwks_uri, `${origin}/.well-known/jwks.json`);
    assert.deepEqual(m.response_types_supported, ['code']);
    assert.deepEqual(m.grant_types_supported, ['authorization_code', 'refresh_token']);
    assert.deepEqual(m.code_challenge_methods_supported, ['S256']);
    assert.deepEqual(m.token_endpoint_auth_methods_supported, ['none']);
    assert.equal(m.authorization_response_iss_parameter_supported, true);
    assert.ok(!('client_id_metadata_document_supported' in m), 'CIMD is off: the member is absent');
    if (p.includes('openid')) {
      assert.deepEqual(m.subject_types_supported, ['public']);
      assert.deepEqual(m.id_token_signing_alg_values_supported, ['ES256']);
    }
  }
  const wrong = await request(`${origin}/.well-known/oauth-authorization-server/other-tenant`);
  assert.equal(wrong.status, 404);
  const pre = await request(`${origin}/oauth/token`, { method: 'OPTIONS' });
  assert.equal(pre.status, 204);
  assert.equal(pre.headers['access-control-allow-origin'], '*');
});

test('DCR validation', async (t) => {
  let res = await register({ redirect_uris: ['http://evil.example/cb'] });
  assert.equal(res.status, 400);
  assert.equal(res.json().error, 'invalid_redirect_uri');
  res = await register({ token_endpoint_auth_method: 'client_secret_basic' });
  assert.equal(res.status, 400);
  assert.equal(res.json().error, 'invalid_client_metadata');
  res = await request(`${origin}/oauth/register`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{}' });
  assert.equal(res.status, 400);
  assert.equal(res.json().error, 'invalid_client_metadata');
  res = await register();
  assert.equal(res.status, 201);
  assert.equal(res.headers['cache-control'], 'no-store');
  const c = res.json();
  assert.match(c.client_id, /^[0-9a-f-]{36}$/);
  assert.equal(typeof c.client_id_issued_at, 'number');
  assert.equal(c.client_secret, undefined);
  assert.deepEqual(c.redirect_uris, [CLIENT_REDIRECT]);
});

test('full flow: register, login upstream, token, verify, refresh rotation, reuse, revoke', async (t) => {
  const client = (await register()).json();
  const r = await login(client.client_id);
  assert.equal(r.error, undefined, r.errorDescription);
  assert.ok(r.code);
  assert.equal(r.state, r.sentState);
  assert.equal(r.iss, origin);
  remember(r.code);
  // The last hop into the client is our 303 from the callback.
  assert.equal(r.hops[r.hops.length - 1].status, 303);

  const { res, json } = await token({
    grant_type: 'authorization_code', code: r.code, redirect_uri: CLIENT_REDIRECT,
    client_id: client.client_id, code_verifier: r.pkce.verifier, resource: `${origin}/mcp`,
  });
  assert.equal(res.status, 200, res.body);
  assert.equal(res.headers['cache-control'], 'no-store');
  assert.equal(res.headers['access-control-allow-origin'], '*');
  assert.equal(json.token_type, 'Bearer');
  assert.ok(json.expires_in > 0);
  assert.ok(json.refresh_token, 'offline_access granted: a refresh token');
  assert.match(json.scope, /offline_access/);
  remember(json.access_token, json.refresh_token);

  const { header, payload } = await verifyJwt(json.access_token);
  assert.equal(header.typ, 'at+jwt');
  assert.equal(payload.iss, origin);
  assert.equal(payload.aud, `${origin}/mcp`);
  assert.equal(payload.sub, 'alice');
  assert.equal(payload.client_id, client.client_id);
  assert.ok(payload.jti && payload.tsid && payload.exp > payload.iat);

  // Code replay: refused, and the tokens issued from the code are revoked.
  const replay = await token({
    grant_type: 'authorization_code', code: r.code, redirect_uri: CLIENT_REDIRECT,
    client_id: client.client_id, code_verifier: r.pkce.verifier,
  });
  assert.equal(replay.res.status, 400);
  assert.equal(replay.json.error, 'invalid_grant');
  const afterReplay = await token({ grant_type: 'refresh_token', refresh_token: json.refresh_token, client_id: client.client_id });
  assert.equal(afterReplay.json.error, 'invalid_grant', 'the family of a replayed code is revoked');

  // A fresh login for the refresh tests.
  const r2 = await login(client.client_id);
  const t2 = await token({
    grant_type: 'authorization_code', code: r2.code, redirect_uri: CLIENT_REDIRECT,
    client_id: client.client_id, code_verifier: r2.pkce.verifier,
  });
  assert.equal(t2.res.status, 200, t2.res.body);
  remember(t2.json.access_token, t2.json.refresh_token);

  // Rotation, narrowing the scope.
  const rot = await token({ grant_type: 'refresh_token', refresh_token: t2.json.refresh_token, client_id: client.client_id, scope: 'openid' });
  assert.equal(rot.res.status, 200, rot.res.body);
  assert.notEqual(rot.json.refresh_token, t2.json.refresh_token);
  assert.equal(rot.json.scope, 'openid');
  remember(rot.json.access_token, rot.json.refresh_token);
  // Widening beyond the grant is refused.
  const wide = await token({ grant_type: 'refresh_token', refresh_token: rot.json.refresh_token, client_id: client.client_id, scope: 'openid email profile offline_access' });
  assert.ok(wide.res.status === 200 || wide.json.error === 'invalid_scope');
  let current = wide.res.status === 200 ? wide.json.refresh_token : rot.json.refresh_token;
  remember(wide.json?.access_token, wide.json?.refresh_token);

  // Reuse of a rotated token: refused and the whole family revoked.
  const reuse = await token({ grant_type: 'refresh_token', refresh_token: t2.json.refresh_token, client_id: client.client_id });
  assert.equal(reuse.res.status, 400);
  assert.equal(reuse.json.error, 'invalid_grant');
  const dead = await token({ grant_type: 'refresh_token', refresh_token: current, client_id: client.client_id });
  assert.equal(dead.json.error, 'invalid_grant', 'the newest token of a reused family is revoked too');

  // Revocation of a refresh token.
  const r3 = await login(client.client_id);
  const t3 = await token({
    grant_type: 'authorization_code', code: r3.code, redirect_uri: CLIENT_REDIRECT,
    client_id: client.client_id, code_verifier: r3.pkce.verifier,
  });
  remember(t3.json.access_token, t3.json.refresh_token);
  let rv = await request(`${origin}/oauth/revoke`, { method: 'POST', body: new URLSearchParams({ token: t3.json.refresh_token, client_id: client.client_id }) });
  assert.equal(rv.status, 200);
  const afterRevoke = await token({ grant_type: 'refresh_token', refresh_token: t3.json.refresh_token, client_id: client.client_id });
  assert.equal(afterRevoke.json.error, 'invalid_grant');
  rv = await request(`${origin}/oauth/revoke`, { method: 'POST', body: new URLSearchParams({ token: 'no-such-token', client_id: client.client_id }) });
  assert.equal(rv.status, 200, 'unknown tokens are acknowledged');
  rv = await request(`${origin}/oauth/revoke`, { method: 'POST', body: new URLSearchParams({ token: t3.json.access_token, client_id: client.client_id }) });
  assert.equal(rv.status, 200);
});

test('wrong PKCE verifier and mismatched redirect_uri are invalid_grant', async (t) => {
  const client = (await register()).json();
  const r = await login(client.client_id);
  const bad = await token({
    grant_type: 'authorization_code', code: r.code, redirect_uri: CLIENT_REDIRECT,
    client_id: client.client_id, code_verifier: pkcePair().verifier,
  });
  assert.equal(bad.res.status, 400);
  assert.equal(bad.json.error, 'invalid_grant');
  assert.match(bad.json.error_description, /code_verifier/);
  const dup = await request(`${origin}/oauth/token`, {
    method: 'POST', body: 'grant_type=authorization_code&code=a&code=b&client_id=x',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
  assert.equal(dup.status, 400);
  assert.equal(dup.json().error, 'invalid_request');
});

test('unknown client and unregistered redirect_uri: a 400 page, never a redirect', async (t) => {
  const pkce = pkcePair();
  let res = await request(authorizeUrl({
    response_type: 'code', client_id: 'no-such-client', redirect_uri: 'https://evil.example/steal',
    code_challenge: pkce.challenge, code_challenge_method: 'S256', state: 's',
  }));
  assert.equal(res.status, 400);
  assert.equal(res.headers.location, undefined);
  assert.match(res.body, /invalid_client/);
  res = await request(authorizeUrl({
    response_type: 'code', client_id: 'no-such-client', code_challenge: pkce.challenge, code_challenge_method: 'S256',
  }), { headers: { accept: 'application/json' } });
  assert.equal(res.status, 400);
  assert.equal(res.json().error, 'invalid_client');

  const client = (await register()).json();
  res = await request(authorizeUrl({
    response_type: 'code', client_id: client.client_id, redirect_uri: 'https://evil.example/steal',
    code_challenge: pkce.challenge, code_challenge_method: 'S256',
  }));
  assert.equal(res.status, 400);
  assert.equal(res.headers.location, undefined);
  assert.match(res.body, /invalid_request/);

  // Loopback redirect on another port is fine (RFC 8252 §7.3); plain PKCE is redirected back.
  res = await request(authorizeUrl({
    response_type: 'code', client_id: client.client_id, redirect_uri: 'http://127.0.0.1:40000/cb',
    code_challenge: pkce.verifier, code_challenge_method: 'plain', state: 'xyz',
  }));
  assert.equal(res.status, 302);
  const loc = new URL(res.headers.location);
  assert.equal(loc.origin + loc.pathname, 'http://127.0.0.1:40000/cb');
  assert.equal(loc.searchParams.get('error'), 'invalid_request');
  assert.equal(loc.searchParams.get('state'), 'xyz');
  assert.equal(loc.searchParams.get('iss'), origin);

  // A callback with an unknown state is our own page, not a redirect.
  res = await request(`${origin}/oauth/callback?state=forged&code=x`);
  assert.equal(res.status, 400);
  assert.equal(res.headers.location, undefined);
});

test('upstream denial reaches the client as access_denied', async (t) => {
  const client = (await register()).json();
  await idp.control({ deny: true });
  try {
    const r = await login(client.client_id);
    assert.equal(r.error, 'access_denied');
    assert.equal(r.state, r.sentState);
    assert.equal(r.iss, origin);
    assert.equal(r.code, undefined);
  } finally {
    await idp.control({ deny: false });
  }
});
