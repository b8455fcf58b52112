// Embedded authorization server, the parts as.test.mjs leaves out, each seen
// from the client's side (status, headers, error JSON) against the real binary
// and a real upstream IdP (oidc-provider), everything on 127.0.0.1:
//   - /oauth/register rate limit (token bucket → 429 + Retry-After) and capacity
//     (registration.maxClients → 503 temporarily_unavailable + Retry-After);
//   - confidential DCR clients (client_secret_basic / client_secret_post) through
//     a whole login, and refused without allowConfidentialClientRegistration;
//   - a `type: oauth2` upstream (explicit endpoints + userinfo, no discovery);
//   - an issuer with a path (http://127.0.0.1:<port>/tenant1): RFC 8414 path
//     insertion, endpoints under the path, a login through them;
//   - /oauth/token input hardening (repeated parameters, oversized body, bad grant
//     type, wrong method/content type), every error answered with no-store.
// Every proxy is started per test (its own rate-limit bucket and client store)
// and stopped by the harness, which fails the test on a non-zero exit or a
// sanitizer report.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import {
  startProxy, startIdp, getFreePort, request, followAuthorization, CookieJar, pkcePair, decodeJwt,
  scrapeMetrics, sleep, logsContaining, embeddedAS, idpSecrets,
} from './lib/harness.mjs';

const CLIENT_REDIRECT = 'http://127.0.0.1:51234/cb';
const TENANT = '/tenant1';

let idp;
// One MCP port per proxy, known before the IdP starts (its client's redirect_uris).
const ports = {};

before(async () => {
  for (const k of ['rate', 'cap', 'conf', 'noconf', 'oauth2', 'tenant', 'token', 'flood', 'logins']) ports[k] = await getFreePort();
  const redirects = Object.entries(ports).map(([k, p]) => (k === 'tenant'
    ? `http://127.0.0.1:${p}${TENANT}/oauth/callback`
    : `http://127.0.0.1:${p}/oauth/callback`));
  idp = await startIdp({ redirect_uris: redirects });
});

/** A proxy in embedded mode on ports[name], the test IdP as its oidc upstream unless
 *  `upstream` says otherwise; `eas` is merged into embeddedAuthServer. */
function startAs(t, name, { eas = {}, upstream } = {}) {
  return startProxy({
    server: { resourceUrl: '{{origin}}/mcp' },
    backend: { url: 'http://127.0.0.1:9' },
    auth: { mode: 'embedded' },
    embeddedAuthServer: embeddedAS('{{origin}}', idp, {
      name: 'test-idp',
      upstream,
      baselineClientScopes: ['openid'],
      ...eas,
    }),
  }, { t, port: ports[name], secrets: idpSecrets(idp) });
}

/** The AS as a client sees it: base = issuer (endpoints live under it). */
function asClient(base, origin = base) {
  const c = {
    base,
    register(body = {}) {
      return request(`${base}/oauth/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: {
          redirect_uris: [CLIENT_REDIRECT],
          grant_types: ['authorization_code', 'refresh_token'],
          token_endpoint_auth_method: 'none',
          client_name: 'as-extra.test',
          ...body,
        },
      });
    },
    authorizeUrl(params) {
      const u = new URL(`${base}/oauth/authorize`);
      for (const [k, v] of Object.entries(params)) if (v !== undefined) u.searchParams.set(k, v);
      return u.href;
    },
    async login(clientId, { scope = 'openid offline_access', pkce = pkcePair() } = {}) {
      const state = crypto.randomBytes(8).toString('hex');
      const res = await followAuthorization(c.authorizeUrl({
        response_type: 'code', client_id: clientId, redirect_uri: CLIENT_REDIRECT, scope, state,
        code_challenge: pkce.challenge, code_challenge_method: 'S256', resource: `${origin}/mcp`,
      }), { redirectUri: CLIENT_REDIRECT, jar: new CookieJar() });
      return { ...res, pkce, sentState: state };
    },
    async token(form, headers = {}) {
      const clean = Object.fromEntries(Object.entries(form).filter(([, v]) => v !== undefined));
      const res = await request(`${base}/oauth/token`, { method: 'POST', body: new URLSearchParams(clean), headers });
      let json;
      try { json = res.body ? JSON.parse(res.body) : undefined; } catch { json = undefined; }
      return { res, json };
    },
  };
  return c;
}

/** The RFC 6749 §2.3.1 Basic credentials: form-urlencoded id and secret. */
function basic(id, secret) {
  const enc = (s) => encodeURIComponent(s).replace(/%20/g, '+');
  return `Basic ${Buffer.from(`${enc(id)}:${enc(secret)}`).toString('base64')}`;
}

/** An OAuth error answer: status, JSON `error`, and never cacheable. */
function assertOAuthError(res, status, error, what = '') {
  assert.equal(res.status, status, `${what}: ${res.body}`);
  assert.match(res.headers['content-type'] || '', /^application\/json/, what);
  assert.equal(res.headers['cache-control'], 'no-store', `${what}: Cache-Control`);
  const j = JSON.parse(res.body);
  assert.equal(j.error, error, `${what}: ${res.body}`);
  return j;
}

// ------------------------------------------------------------------ 1. rate limit

test('registration rate limit: the 4th registration of a burst of 3 is 429 with Retry-After; after it, one succeeds again', async (t) => {
  const proxy = await startAs(t, 'rate', { eas: { registration: { ratePerSecond: 1, burst: 3 } } });
  const as = asClient(proxy.origin);

  // The bucket starts full: the burst goes through.
  const ids = [];
  for (let i = 0; i < 3; i += 1) {
    const res = await as.register();
    assert.equal(res.status, 201, `registration ${i + 1} of the burst: ${res.body}`);
    ids.push(res.json().client_id);
  }
  assert.equal(new Set(ids).size, 3);

  // Then it is empty: 429, told when to come back, and nothing registered.
  let retryAfter;
  for (let i = 0; i < 2; i += 1) {
    const res = await as.register();
    const j = assertOAuthError(res, 429, 'too_many_requests', `registration ${4 + i}`);
    assert.match(j.error_description, /rate limited/);
    assert.equal(res.headers['access-control-allow-origin'], '*');
    assert.match(res.headers['retry-after'] ?? '', /^[0-9]+$/, 'Retry-After is delay-seconds');
    retryAfter = Number(res.headers['retry-after']);
    assert.ok(retryAfter >= 1, `Retry-After ${retryAfter} >= 1`);
    assert.ok(retryAfter <= 2, `Retry-After ${retryAfter}: one token at 1/s takes at most a second`);
  }

  // After Retry-After seconds a registration succeeds, and the sustained rate holds
  // (the next one right after it is limited again).
  await sleep(retryAfter * 1000 + 50);
  const again = await as.register();
  assert.equal(again.status, 201, again.body);
  assert.equal(again.headers['cache-control'], 'no-store');
  assert.ok(again.json().client_id && !ids.includes(again.json().client_id));
  const limited = await as.register();
  assertOAuthError(limited, 429, 'too_many_requests', 'right after the refilled token');

  // A limited request is refused before anything else is read: even a malformed one.
  const bad = await request(`${proxy.origin}/oauth/register`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' });
  assert.equal(bad.status, 429);
});

// ------------------------------------------------------- 1b. per-address limits

/** Run fn n times, at most `width` at once; the results in order. */
async function pool(n, width, fn) {
  const out = new Array(n);
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < n) { const i = next++; out[i] = await fn(i); }
  }));
  return out;
}

test('a flood of /oauth/authorize from one address is cut with 429 + Retry-After, and a login in progress from another address completes', async (t) => {
  const proxy = await startAs(t, 'flood');
  const as = asClient(proxy.origin);
  const reg = await as.register();
  assert.equal(reg.status, 201, reg.body);
  const clientId = reg.json().client_id;
  const pkce = pkcePair();
  const params = (state) => ({
    response_type: 'code', client_id: clientId, redirect_uri: CLIENT_REDIRECT, scope: 'openid offline_access',
    state, code_challenge: pkce.challenge, code_challenge_method: 'S256', resource: `${proxy.origin}/mcp`,
  });
  // The victim's login is in progress: sent to the IdP, not back yet.
  const jar = new CookieJar();
  const first = await request(as.authorizeUrl(params('victim')), { jar });
  assert.equal(first.status, 302, first.body);
  const toIdp = new URL(first.headers.location, proxy.origin).href;
  // 2000 authorize requests for the same public client from 127.0.0.2 (defaults:
  // 600/min, burst 120 per address): most are refused before any login starts.
  const t0 = Date.now();
  const statuses = await pool(2000, 50, async (i) => {
    const r = await request(as.authorizeUrl(params(`flood-${i}`)), { localAddress: '127.0.0.2', headers: { accept: 'application/json' } });
    if (r.status === 429) {
      assert.match(r.headers['retry-after'] ?? '', /^[1-9][0-9]*$/, 'Retry-After');
      assert.equal(JSON.parse(r.body).error, 'too_many_requests');
    }
    return r.status;
  });
  const limited = statuses.filter((s) => s === 429).length;
  // What may pass: the burst, and 10/s for as long as the flood took.
  const allowed = 120 + Math.ceil(((Date.now() - t0) / 1000) * 10) + 1;
  assert.ok(limited >= 2000 - allowed, `only ${limited} of 2000 were limited (${allowed} may pass)`);
  assert.ok(statuses.filter((s) => s === 302).length >= 100, 'the burst went through');
  // The victim's address was not limited, and its login completes.
  const done = await followAuthorization(toIdp, { redirectUri: CLIENT_REDIRECT, jar });
  assert.equal(done.error, undefined, done.errorDescription);
  assert.equal(done.state, 'victim');
  const { res } = await as.token({
    grant_type: 'authorization_code', code: done.code, redirect_uri: CLIENT_REDIRECT, client_id: clientId,
    code_verifier: pkce.verifier, resource: `${proxy.origin}/mcp`,
  });
  assert.equal(res.status, 200, res.body);
  const m = await scrapeMetrics(proxy.diagUrl);
  assert.ok((m.get('mcp_proxy_rate_limited_total{limit="authorize"}') ?? 0) >= limited, 'metric counts the 429s');
  // The token endpoint has its own bucket per address: OAuth JSON 429.
  await pool(130, 10, () => as.token({ grant_type: 'refresh_token', refresh_token: 'x', client_id: clientId }));
  const tooMany = await as.token({ grant_type: 'refresh_token', refresh_token: 'x', client_id: clientId });
  assertOAuthError(tooMany.res, 429, 'too_many_requests', 'token endpoint');
  assert.ok(Number(tooMany.res.headers['retry-after']) >= 1);
});

test('logins started per client_id are bounded (loginsPerClient): beyond it the client is told temporarily_unavailable, other clients go on', async (t) => {
  const proxy = await startAs(t, 'logins', { eas: { rateLimit: { loginsPerClient: 3 } } });
  const as = asClient(proxy.origin);
  const a = (await as.register()).json().client_id;
  const b = (await as.register()).json().client_id;
  const pkce = pkcePair();
  const start = (clientId, state) => request(as.authorizeUrl({
    response_type: 'code', client_id: clientId, redirect_uri: CLIENT_REDIRECT, scope: 'openid', state,
    code_challenge: pkce.challenge, code_challenge_method: 'S256',
  }));
  for (let i = 0; i < 3; i += 1) {
    const r = await start(a, `a${i}`);
    assert.equal(r.status, 302);
    assert.ok(!r.headers.location.startsWith(CLIENT_REDIRECT), `login ${i} went to the IdP`);
  }
  const refused = await start(a, 'a3');
  assert.equal(refused.status, 302);
  const q = new URL(refused.headers.location).searchParams;
  assert.ok(refused.headers.location.startsWith(CLIENT_REDIRECT), refused.headers.location);
  assert.equal(q.get('error'), 'temporarily_unavailable');
  assert.equal(q.get('state'), 'a3');
  const other = await start(b, 'b0');
  assert.ok(!other.headers.location.startsWith(CLIENT_REDIRECT), 'another client is not limited');
  const m = await scrapeMetrics(proxy.diagUrl);
  assert.equal(m.get('mcp_proxy_rate_limited_total{limit="logins_per_client"}'), 1);
});

// ------------------------------------------------------------------ 2. capacity

// The eviction rule (auth/registry/clients.c clients_add, auth/store/store_memory.c
// store_client_evict_idle, CLIENTS_EVICT_GRACE_MS in auth/registry/clients.h): when the
// registry holds registration.maxClients clients, a new registration evicts the
// client whose last use (registration, or any lookup by /oauth/authorize,
// /oauth/token, /oauth/revoke) is the oldest — but only if that last use is at
// least 60 s ago; a client used in the last 60 s is never evicted. If no client
// can be evicted the registration is 503 temporarily_unavailable with
// Retry-After: 60 and nothing changes. Eviction counts in
// mcp_oauth_dcr_clients_evicted_total. The eviction itself (after 60 s idle,
// longest-unused first) needs the monotonic clock to move by a minute, which the
// binary cannot be told to fake; it is not exercised here, only the refusal.
test('registration capacity: with maxClients 2 and both clients recent, a 3rd registration is 503 temporarily_unavailable with Retry-After', async (t) => {
  const proxy = await startAs(t, 'cap', { eas: { registration: { maxClients: 2 } } });
  const as = asClient(proxy.origin);

  const a = await as.register();
  const b = await as.register();
  assert.equal(a.status, 201, a.body);
  assert.equal(b.status, 201, b.body);

  const full = await as.register();
  const j = assertOAuthError(full, 503, 'temporarily_unavailable', '3rd registration');
  assert.match(j.error_description, /full/);
  assert.equal(full.headers['retry-after'], '60');
  assert.equal(full.headers['access-control-allow-origin'], '*');

  // Using a client does not make room; the refusal repeats and evicts nobody.
  const pkce = pkcePair();
  const auth = await request(as.authorizeUrl({
    response_type: 'code', client_id: a.json().client_id, redirect_uri: CLIENT_REDIRECT,
    code_challenge: pkce.challenge, code_challenge_method: 'S256', state: 's', scope: 'openid',
  }));
  assert.equal(auth.status, 302, auth.body);
  assert.ok(auth.headers.location.startsWith(idp.issuer), 'the first client is still known: off to the IdP');
  assertOAuthError(await as.register(), 503, 'temporarily_unavailable', '4th registration');

  // Both registered clients are still there, and a whole login works with the second.
  const r = await as.login(b.json().client_id);
  assert.equal(r.error, undefined, r.errorDescription);
  const tok = await as.token({
    grant_type: 'authorization_code', code: r.code, redirect_uri: CLIENT_REDIRECT,
    client_id: b.json().client_id, code_verifier: r.pkce.verifier,
  });
  assert.equal(tok.res.status, 200, tok.res.body);

  const m = await scrapeMetrics(proxy.diagUrl);
  assert.equal(m.get('mcp_oauth_dcr_clients_evicted_total') ?? 0, 0, 'nobody was evicted');

  const logs = await proxy.stop();
  assert.ok(logs.some((l) => l.msg === 'client registration refused: registry full' && l.max_clients === 2),
    'the refusal is logged with the limit');
});

// ------------------------------------------------------------------ 3. confidential clients

test('confidential clients: discovery, registration with a secret, Basic and post authentication through a login', async (t) => {
  const proxy = await startAs(t, 'conf', { eas: { allowConfidentialClientRegistration: true } });
  const as = asClient(proxy.origin);
  const secrets = [];

  const disc = (await request(`${proxy.origin}/.well-known/oauth-authorization-server`)).json();
  assert.deepEqual(disc.token_endpoint_auth_methods_supported, ['none', 'client_secret_basic', 'client_secret_post']);
  assert.deepEqual(disc.revocation_endpoint_auth_methods_supported, ['none', 'client_secret_basic', 'client_secret_post']);

  // --- client_secret_basic
  let reg = await as.register({ token_endpoint_auth_method: 'client_secret_basic' });
  assert.equal(reg.status, 201, reg.body);
  assert.equal(reg.headers['cache-control'], 'no-store');
  const cb = reg.json();
  assert.equal(cb.token_endpoint_auth_method, 'client_secret_basic');
  assert.equal(typeof cb.client_secret, 'string');
  assert.ok(cb.client_secret.length >= 32, 'a long random secret');
  assert.equal(cb.client_secret_expires_at, 0);
  secrets.push(cb.client_secret);

  let r = await as.login(cb.client_id);
  assert.equal(r.error, undefined, r.errorDescription);
  assert.ok(r.code);
  const codeForm = {
    grant_type: 'authorization_code', code: r.code, redirect_uri: CLIENT_REDIRECT, code_verifier: r.pkce.verifier,
  };

  // Wrong secret over Basic: 401 invalid_client with a Basic challenge (the code is not spent).
  let x = await as.token(codeForm, { authorization: basic(cb.client_id, 'not-the-secret') });
  assertOAuthError(x.res, 401, 'invalid_client', 'wrong Basic secret');
  assert.match(x.res.headers['www-authenticate'] ?? '', /^Basic\b/i);
  // No credentials at all for a confidential client: 401 invalid_client.
  x = await as.token({ ...codeForm, client_id: cb.client_id });
  assertOAuthError(x.res, 401, 'invalid_client', 'confidential client without a secret');
  // The right secret by the wrong method (registered basic, sent post): refused.
  x = await as.token({ ...codeForm, client_id: cb.client_id, client_secret: cb.client_secret });
  assertOAuthError(x.res, 401, 'invalid_client', 'basic client using client_secret_post');
  // Two methods at once: invalid_request.
  x = await as.token({ ...codeForm, client_secret: cb.client_secret }, { authorization: basic(cb.client_id, cb.client_secret) });
  assertOAuthError(x.res, 400, 'invalid_request', 'Basic and client_secret together');
  // A form client_id that disagrees with the Basic one: invalid_request.
  x = await as.token({ ...codeForm, client_id: 'someone-else' }, { authorization: basic(cb.client_id, cb.client_secret) });
  assertOAuthError(x.res, 400, 'invalid_request', 'client_id differs from Basic');

  // The right secret over Basic: 200 with tokens for alice.
  x = await as.token(codeForm, { authorization: basic(cb.client_id, cb.client_secret) });
  assert.equal(x.res.status, 200, x.res.body);
  assert.equal(x.res.headers['cache-control'], 'no-store');
  assert.equal(x.json.token_type, 'Bearer');
  let p = decodeJwt(x.json.access_token).payload;
  assert.equal(p.sub, 'alice');
  assert.equal(p.client_id, cb.client_id);
  assert.ok(x.json.refresh_token);
  secrets.push(x.json.access_token, x.json.refresh_token);

  // Refresh needs the client's authentication too.
  let rf = await as.token({ grant_type: 'refresh_token', refresh_token: x.json.refresh_token, client_id: cb.client_id });
  assertOAuthError(rf.res, 401, 'invalid_client', 'refresh without the secret');
  rf = await as.token({ grant_type: 'refresh_token', refresh_token: x.json.refresh_token }, { authorization: basic(cb.client_id, 'wrong') });
  assertOAuthError(rf.res, 401, 'invalid_client', 'refresh with a wrong secret');
  assert.match(rf.res.headers['www-authenticate'] ?? '', /^Basic\b/i);
  rf = await as.token({ grant_type: 'refresh_token', refresh_token: x.json.refresh_token }, { authorization: basic(cb.client_id, cb.client_secret) });
  assert.equal(rf.res.status, 200, rf.res.body);
  assert.notEqual(rf.json.refresh_token, x.json.refresh_token);
  secrets.push(rf.json.access_token, rf.json.refresh_token);

  // --- client_secret_post
  reg = await as.register({ token_endpoint_auth_method: 'client_secret_post' });
  assert.equal(reg.status, 201, reg.body);
  const cp = reg.json();
  assert.equal(cp.token_endpoint_auth_method, 'client_secret_post');
  assert.ok(cp.client_secret && cp.client_secret !== cb.client_secret);
  secrets.push(cp.client_secret);

  r = await as.login(cp.client_id);
  assert.equal(r.error, undefined, r.errorDescription);
  const postForm = {
    grant_type: 'authorization_code', code: r.code, redirect_uri: CLIENT_REDIRECT,
    code_verifier: r.pkce.verifier, client_id: cp.client_id,
  };
  x = await as.token({ ...postForm, client_secret: 'not-the-secret' });
  assertOAuthError(x.res, 401, 'invalid_client', 'wrong post secret');
  // Another client's secret is not this client's.
  x = await as.token({ ...postForm, client_secret: cb.client_secret });
  assertOAuthError(x.res, 401, 'invalid_client', "another client's secret");
  // The right secret over Basic for a client registered for post: refused.
  x = await as.token({ ...postForm, client_id: undefined }, { authorization: basic(cp.client_id, cp.client_secret) });
  assertOAuthError(x.res, 401, 'invalid_client', 'post client using Basic');
  x = await as.token({ ...postForm, client_secret: cp.client_secret });
  assert.equal(x.res.status, 200, x.res.body);
  p = decodeJwt(x.json.access_token).payload;
  assert.equal(p.sub, 'alice');
  assert.equal(p.client_id, cp.client_id);
  secrets.push(x.json.access_token, x.json.refresh_token);

  // A public client on the same server still works and must not send a secret.
  const pub = (await as.register()).json();
  assert.equal(pub.client_secret, undefined);
  r = await as.login(pub.client_id);
  x = await as.token({
    grant_type: 'authorization_code', code: r.code, redirect_uri: CLIENT_REDIRECT,
    code_verifier: r.pkce.verifier, client_id: pub.client_id, client_secret: 'anything',
  });
  assertOAuthError(x.res, 401, 'invalid_client', 'public client sending a secret');

  // Secrets and tokens never reach a log line.
  const logs = await proxy.stop();
  assert.deepEqual(logsContaining(logs, secrets.filter(Boolean)), [], 'a secret appeared in the logs');
});

test('without allowConfidentialClientRegistration, discovery lists only none and a secret method is invalid_client_metadata', async (t) => {
  const proxy = await startAs(t, 'noconf');
  const as = asClient(proxy.origin);
  const disc = (await request(`${proxy.origin}/.well-known/oauth-authorization-server`)).json();
  assert.deepEqual(disc.token_endpoint_auth_methods_supported, ['none']);
  for (const method of ['client_secret_basic', 'client_secret_post']) {
    const res = await as.register({ token_endpoint_auth_method: method });
    const j = assertOAuthError(res, 400, 'invalid_client_metadata', method);
    assert.match(j.error_description, new RegExp(method));
    assert.equal(res.json().client_secret, undefined);
  }
  // An unknown method is refused too (with the list of what is allowed).
  const res = await as.register({ token_endpoint_auth_method: 'private_key_jwt' });
  assertOAuthError(res, 400, 'invalid_client_metadata', 'private_key_jwt');
});

// ------------------------------------------------------------------ 4. oauth2 upstream

test('type: oauth2 upstream (explicit endpoints, userinfo): a whole login gives a token for the IdP user', async (t) => {
  const d = await idp.discovery();
  assert.ok(d.authorization_endpoint && d.token_endpoint && d.userinfo_endpoint);
  const before = await idp.stats();
  const proxy = await startAs(t, 'oauth2', {
    upstream: {
      name: 'plain-oauth2',
      type: 'oauth2',
      oauth2Config: {
        authorizationEndpoint: d.authorization_endpoint,
        tokenEndpoint: d.token_endpoint,
        userInfo: { endpointUrl: d.userinfo_endpoint },
        clientId: idp.clientId,
        clientSecretRef: { name: 'idp', key: 'client_secret' },
        scopes: ['openid'],
      },
    },
  });
  const as = asClient(proxy.origin);
  const client = (await as.register()).json();
  const r = await as.login(client.client_id);
  assert.equal(r.error, undefined, r.errorDescription);
  assert.ok(r.code);
  assert.equal(r.state, r.sentState);
  assert.equal(r.iss, proxy.origin);
  // The browser went to the configured authorization endpoint with our callback.
  const up = new URL(r.hops.find((h) => h.location?.startsWith(d.authorization_endpoint)).location);
  assert.equal(up.searchParams.get('client_id'), idp.clientId);
  assert.equal(up.searchParams.get('redirect_uri'), `${proxy.origin}/oauth/callback`);
  assert.equal(up.searchParams.get('scope'), 'openid');

  const x = await as.token({
    grant_type: 'authorization_code', code: r.code, redirect_uri: CLIENT_REDIRECT,
    client_id: client.client_id, code_verifier: r.pkce.verifier,
  });
  assert.equal(x.res.status, 200, x.res.body);
  const { payload } = decodeJwt(x.json.access_token);
  assert.equal(payload.sub, 'alice');
  assert.equal(payload.iss, proxy.origin);
  assert.equal(payload.aud, `${proxy.origin}/mcp`);

  // The user came from the userinfo endpoint, the code went to the token endpoint,
  // and no discovery document was read.
  const after = await idp.stats();
  const delta = (route) => (after.requests[route] || 0) - (before.requests[route] || 0);
  const ui = new URL(d.userinfo_endpoint).pathname;
  const te = new URL(d.token_endpoint).pathname;
  assert.ok(delta(ui) >= 1, `userinfo called (${JSON.stringify(after.requests)})`);
  assert.ok(delta(te) >= 1, 'token endpoint called');
  assert.equal(delta('/.well-known/openid-configuration'), 0, 'oauth2 does no discovery');
});

// ------------------------------------------------------------------ 5. issuer with a path

test('an issuer with a path: discovery by path insertion, endpoints under the path, and a login through them', async (t) => {
  const proxy = await startAs(t, 'tenant', { eas: { issuer: `{{origin}}${TENANT}` } });
  const origin = proxy.origin;
  const issuer = `${origin}${TENANT}`;

  for (const p of [
    `/.well-known/oauth-authorization-server${TENANT}`, // RFC 8414 §3.1
    `/.well-known/openid-configuration${TENANT}`,
    `${TENANT}/.well-known/openid-configuration`, // OIDC Discovery §4
    `${TENANT}/.well-known/oauth-authorization-server`,
  ]) {
    const res = await request(`${origin}${p}`);
    assert.equal(res.status, 200, `${p}: ${res.body}`);
    const m = res.json();
    assert.equal(m.issuer, issuer, p);
    assert.equal(m.authorization_endpoint, `${issuer}/oauth/authorize`);
    assert.equal(m.token_endpoint, `${issuer}/oauth/token`);
    assert.equal(m.registration_endpoint, `${issuer}/oauth/register`);
    assert.equal(m.revocation_endpoint, `${issuer}/oauth/revoke`);
    assert.equal(m.jwks_uri, `${issuer}/.well-known/jwks.json`);
  }
  assert.equal((await request(`${origin}/.well-known/oauth-authorization-server/tenant2`)).status, 404);

  // The protected resource names this issuer, so a client finds the AS from a 401.
  const prm = await request(`${origin}/.well-known/oauth-protected-resource/mcp`);
  assert.equal(prm.status, 200, prm.body);
  assert.deepEqual(prm.json().authorization_servers, [issuer]);

  const jwks = await request(`${issuer}/.well-known/jwks.json`);
  assert.equal(jwks.status, 200);
  assert.ok(jwks.json().keys.length >= 1);

  // A login through the advertised endpoints: register, authorize → IdP →
  // <issuer>/oauth/callback → code with iss = the issuer, token.
  const as = asClient(issuer, origin);
  const reg = await as.register();
  assert.equal(reg.status, 201, reg.body);
  const client = reg.json();
  const r = await as.login(client.client_id);
  assert.equal(r.error, undefined, r.errorDescription);
  assert.ok(r.code);
  assert.equal(r.iss, issuer);
  assert.ok(r.hops.some((h) => h.url.startsWith(`${issuer}/oauth/callback?`)), 'the IdP came back to <issuer>/oauth/callback');
  const up = new URL(r.hops.find((h) => h.location?.startsWith(idp.issuer)).location);
  assert.equal(up.searchParams.get('redirect_uri'), `${issuer}/oauth/callback`);

  const x = await as.token({
    grant_type: 'authorization_code', code: r.code, redirect_uri: CLIENT_REDIRECT,
    client_id: client.client_id, code_verifier: r.pkce.verifier,
  });
  assert.equal(x.res.status, 200, x.res.body);
  const { payload } = decodeJwt(x.json.access_token);
  assert.equal(payload.iss, issuer);
  assert.equal(payload.sub, 'alice');
  assert.equal(payload.aud, `${origin}/mcp`);

  // The guard accepts that token (no 401; the backend is down, so 502), and refuses none.
  const noTok = await request(`${origin}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: { jsonrpc: '2.0', id: 1, method: 'ping' } });
  assert.equal(noTok.status, 401);
  const withTok = await request(`${origin}/mcp`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${x.json.access_token}` },
    body: { jsonrpc: '2.0', id: 1, method: 'ping' },
  });
  assert.notEqual(withTok.status, 401, withTok.body);
  assert.equal(withTok.status, 502, withTok.body);

  // Refresh and revoke under the path too.
  const rf = await as.token({ grant_type: 'refresh_token', refresh_token: x.json.refresh_token, client_id: client.client_id });
  assert.equal(rf.res.status, 200, rf.res.body);
  const rv = await request(`${issuer}/oauth/revoke`, { method: 'POST', body: new URLSearchParams({ token: rf.json.refresh_token, client_id: client.client_id }) });
  assert.equal(rv.status, 200);
  const dead = await as.token({ grant_type: 'refresh_token', refresh_token: rf.json.refresh_token, client_id: client.client_id });
  assertOAuthError(dead.res, 400, 'invalid_grant', 'revoked refresh token');
});

// ------------------------------------------------------------------ 6. /oauth/token hardening

test('/oauth/token input hardening: repeated parameters, oversized body, grant types, methods; every error no-store', async (t) => {
  const proxy = await startAs(t, 'token');
  const as = asClient(proxy.origin);
  const client = (await as.register()).json();
  const url = `${proxy.origin}/oauth/token`;
  const form = { 'content-type': 'application/x-www-form-urlencoded' };
  const post = (body, headers = form) => request(url, { method: 'POST', body, headers });

  // Repeated parameters (RFC 6749 §3.2: parameters must not be included more than once).
  for (const body of [
    `grant_type=authorization_code&grant_type=refresh_token&client_id=${client.client_id}&code=a`,
    `grant_type=authorization_code&client_id=${client.client_id}&client_id=${client.client_id}&code=a`,
    `grant_type=refresh_token&client_id=${client.client_id}&refresh_token=a&refresh_token=b`,
    `grant_type=authorization_code&client_id=${client.client_id}&code=a&code_verifier=x&code_verifier=x`,
  ]) {
    const j = assertOAuthError(await post(body), 400, 'invalid_request', body);
    assert.match(j.error_description, /repeated/, body);
  }

  // A body over the 16 KiB form limit.
  const big = `grant_type=authorization_code&client_id=${client.client_id}&code=${'a'.repeat(16 * 1024)}`;
  let res = await post(big);
  assert.ok(res.status === 400 || res.status === 413, `oversized form: ${res.status}`);
  let j = assertOAuthError(res, res.status, 'invalid_request', 'oversized form');
  assert.match(j.error_description, /exceeds/);

  // Unsupported, missing and empty grant types.
  for (const gt of ['password', 'client_credentials', 'urn:ietf:params:oauth:grant-type:device_code', 'implicit']) {
    res = await post(new URLSearchParams({ grant_type: gt, client_id: client.client_id }).toString());
    assertOAuthError(res, 400, 'unsupported_grant_type', `grant_type=${gt}`);
  }
  for (const body of [`client_id=${client.client_id}`, `grant_type=&client_id=${client.client_id}`]) {
    j = assertOAuthError(await post(body), 400, 'invalid_request', body);
    assert.match(j.error_description, /grant_type is required/);
  }

  // Other methods: 405 with Allow.
  for (const method of ['GET', 'PUT', 'DELETE']) {
    res = await request(`${url}?grant_type=authorization_code&client_id=${client.client_id}&code=a`, { method });
    assertOAuthError(res, 405, 'invalid_request', method);
    assert.equal(res.headers.allow, 'POST, OPTIONS', method);
  }

  // Not a form.
  res = await request(url, { method: 'POST', body: { grant_type: 'authorization_code', client_id: client.client_id } });
  j = assertOAuthError(res, 400, 'invalid_request', 'JSON body');
  assert.match(j.error_description, /x-www-form-urlencoded/);
  res = await request(url, { method: 'POST', body: 'grant_type=refresh_token', headers: {} });
  assertOAuthError(res, 400, 'invalid_request', 'no Content-Type');

  // Bad or missing client identification.
  assertOAuthError(await post('grant_type=authorization_code&code=a'), 401, 'invalid_client', 'no client_id');
  assertOAuthError(await post(`grant_type=authorization_code&code=a&client_id=no-such-client`), 401, 'invalid_client', 'unknown client');
  res = await post('grant_type=authorization_code&code=a', { ...form, authorization: 'Basic !!!not-base64' });
  assertOAuthError(res, 401, 'invalid_client', 'malformed Basic');
  assert.match(res.headers['www-authenticate'] ?? '', /^Basic\b/i, 'a 401 to an Authorization header carries the Basic challenge');
  res = await post('grant_type=authorization_code&code=a', { ...form, authorization: basic('no-such-client', 'x') });
  assertOAuthError(res, 401, 'invalid_client', 'unknown client over Basic');
  assert.match(res.headers['www-authenticate'] ?? '', /^Basic\b/i);

  // Malformed percent-encoding and a code that does not exist.
  res = await post(`grant_type=authorization_code&client_id=${client.client_id}&code=%zz`);
  assert.ok(res.status === 400, res.body);
  assert.equal(res.headers['cache-control'], 'no-store');
  j = assertOAuthError(await post(`grant_type=authorization_code&client_id=${client.client_id}&code=nope&code_verifier=${'v'.repeat(43)}&redirect_uri=${encodeURIComponent(CLIENT_REDIRECT)}`),
    400, 'invalid_grant', 'unknown code');

  // The proxy is still fine after all of that.
  res = await request(`${proxy.origin}/health`);
  assert.equal(res.status, 200);
});
