// private_key_jwt CIMD clients through the real binary (RFC 7523 client assertions at
// /oauth/token). A ChatGPT-shaped client (its document says private_key_jwt, RS256 and a
// jwks_uri) logs in end to end: the code grant and a refresh with RS256 assertions, then
// tools/list on server-everything. An ES256 client with inline jwks logs in too; a document
// listing none and private_key_jwt may use either. Every wrong assertion is 401
// invalid_client naming the rule: none at all, wrong key, wrong aud, expired, exp too far
// ahead, replayed jti, alg none, HS256 keyed with the RSA public key, an unknown kid (one
// refetch of the jwks_uri, then refused without another). Discovery advertises the method
// and the algorithms, metrics count assertions by outcome, and no assertion reaches a log.
// Everything is on 127.0.0.1: the proxy, the upstream IdP, server-everything, and an HTTPS
// host for documents and JWKS with a test CA the proxy trusts through outbound.caFile.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import {
  startProxy, startIdp, startDocHost, startBackend, getFreePort, request, followAuthorization,
  CookieJar, pkcePair, connectClient, scrapeMetrics, embeddedAS, idpSecrets,
} from './lib/harness.mjs';

const REDIRECT = 'https://chatgpt.example/connector_platform_oauth_redirect';
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

let idp, docs, backend, proxy, origin, tokenUrl;
const seen = new Set(); // assertions, codes and tokens: none may appear in a log line

before(async () => {
  const port = await getFreePort();
  origin = `http://127.0.0.1:${port}`;
  tokenUrl = `${origin}/oauth/token`;
  idp = await startIdp({ redirect_uris: [`${origin}/oauth/callback`] });
  docs = await startDocHost();
  backend = await startBackend('streamable-http');
  proxy = await startProxy({
    server: { resourceUrl: `${origin}/mcp` },
    backend: { url: backend.url },
    auth: { mode: 'embedded' },
    outbound: { caFile: docs.caFile },
    embeddedAuthServer: embeddedAS(origin, idp, {
      baselineClientScopes: ['openid', 'offline_access'],
      cimd: { enabled: true, insecureAllowLoopback: true },
    }),
  }, { port, secrets: idpSecrets(idp) });
});

after(async () => {
  if (proxy) {
    const logs = JSON.stringify(await proxy.stop());
    for (const s of seen) assert.ok(!logs.includes(s), 'an assertion, code or token appeared in the logs');
  }
  await backend?.stop();
  await docs?.stop();
  await idp?.stop();
});

const now = () => Math.floor(Date.now() / 1000);
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');

/** A compact JWS of claims with header {alg, kid, typ: JWT}, signed as alg says. */
function sign(claims, { alg = 'RS256', kid, key, hmacKey } = {}) {
  const header = { alg, typ: 'JWT', ...(kid ? { kid } : {}) };
  const input = `${b64(header)}.${b64(claims)}`;
  let sig;
  if (alg === 'none') sig = Buffer.alloc(0);
  else if (alg === 'HS256') sig = crypto.createHmac('sha256', hmacKey).update(input).digest();
  else if (alg === 'ES256') sig = crypto.sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  else if (alg === 'PS256') sig = crypto.sign('sha256', Buffer.from(input), { key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 });
  else if (alg === 'EdDSA') sig = crypto.sign(null, Buffer.from(input), key);
  else sig = crypto.sign('sha256', Buffer.from(input), key);
  const jwt = `${input}.${sig.toString('base64url')}`;
  seen.add(jwt);
  return jwt;
}

/** A client: its keys, its document at path (private_key_jwt with jwks_uri or inline jwks). */
async function makeClient(path, { type = 'rsa', inline = false, extra = {}, moreKeys = [] } = {}) {
  const pair = type === 'rsa'
    ? crypto.generateKeyPairSync('rsa', { modulusLength: 2048 })
    : crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const kid = `${type}-${crypto.randomBytes(4).toString('hex')}`;
  const alg = type === 'rsa' ? 'RS256' : 'ES256';
  const jwk = { ...pair.publicKey.export({ format: 'jwk' }), kid, alg, use: 'sig' };
  const clientId = docs.url(path);
  const jwksPath = `${path.replace(/\.json$/, '')}-jwks.json`;
  const doc = {
    client_id: clientId,
    client_name: type === 'rsa' ? 'ChatGPT (test)' : 'ES256 inline client (test)',
    client_uri: 'https://chatgpt.example',
    redirect_uris: [REDIRECT],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    scope: 'openid offline_access',
    token_endpoint_auth_method: 'private_key_jwt',
    token_endpoint_auth_signing_alg: alg,
    ...(inline ? { jwks: { keys: [jwk, ...moreKeys] } } : { jwks_uri: docs.url(jwksPath) }),
    ...extra,
  };
  if (!inline) await docs.set(jwksPath, { json: { keys: [jwk, ...moreKeys] }, headers: { 'cache-control': 'max-age=300' } });
  await docs.setDocument(path, doc);
  const c = {
    clientId, kid, alg, key: pair.privateKey, publicKey: pair.publicKey, jwk, jwksPath, doc,
    claims: (over = {}) => ({
      iss: clientId, sub: clientId, aud: tokenUrl, iat: now(), exp: now() + 60,
      jti: crypto.randomUUID(), ...over,
    }),
    assertion: (over = {}, opts = {}) => sign(c.claims(over), { alg, kid, key: pair.privateKey, ...opts }),
  };
  return c;
}

/** Log in as clientId through the proxy and the upstream IdP: → {code, pkce}. */
async function login(clientId) {
  const pkce = pkcePair();
  const u = new URL(`${origin}/oauth/authorize`);
  const q = {
    response_type: 'code', client_id: clientId, redirect_uri: REDIRECT, scope: 'openid offline_access',
    state: crypto.randomBytes(8).toString('hex'), code_challenge: pkce.challenge,
    code_challenge_method: 'S256', resource: `${origin}/mcp`,
  };
  for (const [k, v] of Object.entries(q)) u.searchParams.set(k, v);
  const r = await followAuthorization(u.href, { redirectUri: REDIRECT, jar: new CookieJar() });
  assert.equal(r.error, undefined, r.errorDescription);
  assert.ok(r.code);
  seen.add(r.code);
  return { code: r.code, pkce };
}

async function token(form) {
  const body = new URLSearchParams(Object.entries(form).filter(([, v]) => v !== undefined));
  const res = await request(tokenUrl, { method: 'POST', body });
  const json = res.body ? JSON.parse(res.body) : undefined;
  if (json?.access_token) seen.add(json.access_token);
  if (json?.refresh_token) seen.add(json.refresh_token);
  return { res, json };
}

const codeForm = ({ code, pkce }, extra = {}) => ({
  grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: pkce.verifier, ...extra,
});
const withAssertion = (assertion, extra = {}) => ({ client_assertion_type: ASSERTION_TYPE, client_assertion: assertion, ...extra });

function assertInvalidClient({ res, json }, part) {
  assert.equal(res.status, 401, res.body);
  assert.equal(res.headers['cache-control'], 'no-store');
  assert.equal(json.error, 'invalid_client');
  assert.ok(json.error_description.includes(part), `"${json.error_description}" should mention "${part}"`);
}

const jwksRequests = async (c) => (await docs.stats()).requests[c.jwksPath] ?? 0;

test('discovery advertises private_key_jwt and its algorithms when CIMD is on', async () => {
  for (const p of ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']) {
    const m = (await request(origin + p)).json();
    assert.deepEqual(m.token_endpoint_auth_methods_supported, ['none', 'private_key_jwt'], p);
    assert.deepEqual(m.token_endpoint_auth_signing_alg_values_supported, ['RS256', 'PS256', 'ES256', 'EdDSA'], p);
    assert.deepEqual(m.revocation_endpoint_auth_methods_supported, ['none', 'private_key_jwt'], p);
    assert.equal(m.client_id_metadata_document_supported, true);
  }
});

test('a ChatGPT-shaped client: code grant and refresh with RS256 assertions, then tools/list', async (t) => {
  const c = await makeClient('/chatgpt/oauth/client.json');
  const r = await login(c.clientId);
  // client_id may be left out: the assertion's iss names the client.
  const x = await token(codeForm(r, withAssertion(c.assertion())));
  assert.equal(x.res.status, 200, x.res.body);
  assert.equal(x.json.token_type, 'Bearer');
  assert.ok(x.json.refresh_token);
  assert.equal(await jwksRequests(c), 1, 'the jwks_uri was fetched once');

  // Refresh, this time naming client_id too and with aud = the issuer.
  const y = await token({
    grant_type: 'refresh_token', refresh_token: x.json.refresh_token, client_id: c.clientId,
    ...withAssertion(c.assertion({ aud: origin })),
  });
  assert.equal(y.res.status, 200, y.res.body);
  assert.notEqual(y.json.refresh_token, x.json.refresh_token, 'rotated');
  assert.equal(await jwksRequests(c), 1, 'the cached keys were used (Cache-Control: max-age=300)');

  const mcp = await connectClient({ url: `${origin}/mcp`, headers: { authorization: `Bearer ${y.json.access_token}` }, t });
  const tools = await mcp.listTools();
  assert.ok(tools.tools.some((tool) => tool.name === 'echo'), 'server-everything lists its echo tool');

  // Revocation authenticates the client the same way.
  const rv = await request(`${origin}/oauth/revoke`, {
    method: 'POST',
    body: new URLSearchParams({ token: y.json.refresh_token, ...withAssertion(c.assertion()) }),
  });
  assert.equal(rv.status, 200, rv.body);
  const gone = await token({ grant_type: 'refresh_token', refresh_token: y.json.refresh_token, ...withAssertion(c.assertion()) });
  assert.equal(gone.res.status, 400, gone.res.body);
  assert.equal(gone.json.error, 'invalid_grant');
  const badRevoke = await request(`${origin}/oauth/revoke`, {
    method: 'POST',
    body: new URLSearchParams({ token: 'x', ...withAssertion(c.assertion({ aud: 'https://elsewhere.example' })) }),
  });
  assert.equal(badRevoke.status, 401, badRevoke.body);
  assert.equal(badRevoke.json().error, 'invalid_client');
  // Without an assertion a private_key_jwt client cannot revoke either.
  const noAssertion = await request(`${origin}/oauth/revoke`, {
    method: 'POST', body: new URLSearchParams({ token: 'x', client_id: c.clientId }),
  });
  assert.equal(noAssertion.status, 401, noAssertion.body);
  assert.match(noAssertion.json().error_description, /client_assertion is required/);
});

test('every wrong assertion is 401 invalid_client naming the rule; the refresh token survives', async () => {
  const c = await makeClient('/chatgpt2/oauth/client.json');
  const r = await login(c.clientId);

  // No assertion at the code grant: refused (the code was issued to a private_key_jwt client).
  assertInvalidClient(await token(codeForm(r, { client_id: c.clientId })), 'client_assertion is required');
  const r2 = await login(c.clientId);
  const x = await token(codeForm(r2, withAssertion(c.assertion())));
  assert.equal(x.res.status, 200, x.res.body);
  const rt = x.json.refresh_token;
  const refresh = (extra) => token({ grant_type: 'refresh_token', refresh_token: rt, ...extra });

  assertInvalidClient(await refresh({ client_id: c.clientId }), 'client_assertion is required');
  const other = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  assertInvalidClient(await refresh(withAssertion(c.assertion({}, { key: other.privateKey }))),
    'signature does not verify');
  assertInvalidClient(await refresh(withAssertion(c.assertion({ aud: `${origin}/oauth/authorize` }))),
    'aud names neither the token endpoint nor the issuer');
  assertInvalidClient(await refresh(withAssertion(c.assertion({ exp: now() - 600, iat: now() - 900 }))),
    'expired');
  assertInvalidClient(await refresh(withAssertion(c.assertion({ exp: now() + 3600 }))),
    'exp is more than 300 s ahead');
  const { exp, ...noExp } = c.claims();
  assertInvalidClient(await refresh(withAssertion(sign(noExp, { kid: c.kid, key: c.key }))), 'exp');
  assertInvalidClient(await refresh(withAssertion(c.assertion({ sub: 'https://someone.example/else' }))),
    'client_assertion');
  assertInvalidClient(await refresh(withAssertion(sign(c.claims(), { alg: 'none', kid: c.kid }))),
    'alg none is not allowed');
  const publicPem = c.publicKey.export({ type: 'spki', format: 'pem' });
  assertInvalidClient(await refresh(withAssertion(sign(c.claims(), { alg: 'HS256', kid: c.kid, hmacKey: publicPem }))),
    'alg HS256 is not allowed');
  assertInvalidClient(await refresh({ client_assertion_type: 'urn:other', client_assertion: c.assertion() }),
    'client_assertion_type must be');
  assertInvalidClient(await refresh(withAssertion(c.assertion(), { client_id: docs.url('/someone/else.json') })),
    'client_id does not match');
  assertInvalidClient(await refresh(withAssertion('a'.repeat(9000))), 'longer than 8192');
  assertInvalidClient(await refresh(withAssertion(c.assertion({ iss: 'a-dcr-client-id', sub: 'a-dcr-client-id' }))),
    'private_key_jwt is only for client ID metadata document clients');
  // One authentication method, not two (RFC 6749 §2.3).
  const two = await refresh(withAssertion(c.assertion(), { client_secret: 'x' }));
  assert.equal(two.res.status, 400, two.res.body);
  assert.equal(two.json.error, 'invalid_request');
  assert.equal(two.json.error_description, 'use one client authentication method, not several');
  const basic = await request(tokenUrl, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: rt, ...withAssertion(c.assertion()) }),
  });
  assert.equal(basic.status, 400, basic.body);
  assert.equal(basic.json().error, 'invalid_request');
  // The token's alg must be its key's (the JWK says RS256).
  assertInvalidClient(await refresh(withAssertion(c.assertion({}, { alg: 'PS256' }))), 'does not match key');

  // Replay: the same jti twice.
  const once = c.assertion();
  const ok = await refresh(withAssertion(once));
  assert.equal(ok.res.status, 200, ok.res.body);
  const rt2 = ok.json.refresh_token;
  const replay = await token({ grant_type: 'refresh_token', refresh_token: rt2, ...withAssertion(once) });
  assertInvalidClient(replay, 'already used');

  // Unknown kid: one refetch of the jwks_uri, then refused; the next one fetches nothing.
  const before = await jwksRequests(c);
  assertInvalidClient(await token({ grant_type: 'refresh_token', refresh_token: rt2, ...withAssertion(c.assertion({}, { kid: 'rotated-away' })) }),
    'no key at the client\'s jwks_uri has the kid');
  assert.equal(await jwksRequests(c), before + 1, 'one refetch');
  const again = await token({ grant_type: 'refresh_token', refresh_token: rt2, ...withAssertion(c.assertion({}, { kid: 'rotated-away-2' })) });
  assertInvalidClient(again, 'refetched less than 60 s ago');
  assert.equal(await jwksRequests(c), before + 1, 'no second refetch within a minute');

  // The refresh token was never spent by a refused request.
  const last = await token({ grant_type: 'refresh_token', refresh_token: rt2, ...withAssertion(c.assertion()) });
  assert.equal(last.res.status, 200, last.res.body);

  const m = await scrapeMetrics(proxy.diagUrl);
  for (const outcome of ['ok', 'invalid', 'replayed', 'unknown_kid', 'missing']) {
    assert.ok((m.get(`mcp_oauth_client_assertions_total{outcome="${outcome}"}`) ?? 0) >= 1, outcome);
  }
});

test('a rotated key is picked up by the one refetch', async () => {
  const c = await makeClient('/rotating/client.json');
  const r = await login(c.clientId);
  const x = await token(codeForm(r, withAssertion(c.assertion())));
  assert.equal(x.res.status, 200, x.res.body);
  const next = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...next.publicKey.export({ format: 'jwk' }), kid: 'next', alg: 'RS256', use: 'sig' };
  await docs.set(c.jwksPath, { json: { keys: [jwk] }, headers: { 'cache-control': 'max-age=300' } });
  const y = await token({
    grant_type: 'refresh_token', refresh_token: x.json.refresh_token,
    ...withAssertion(c.assertion({}, { kid: 'next', key: next.privateKey })),
  });
  assert.equal(y.res.status, 200, y.res.body);
});

test('an ES256 client with inline jwks', async () => {
  // A second, PS256 key: valid, but not the document's token_endpoint_auth_signing_alg.
  const ps = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const psJwk = { ...ps.publicKey.export({ format: 'jwk' }), kid: 'ps', alg: 'PS256', use: 'sig' };
  const c = await makeClient('/es256/client.json', { type: 'ec', inline: true, moreKeys: [psJwk] });
  const r = await login(c.clientId);
  const x = await token(codeForm(r, withAssertion(c.assertion())));
  assert.equal(x.res.status, 200, x.res.body);
  const y = await token({ grant_type: 'refresh_token', refresh_token: x.json.refresh_token, ...withAssertion(c.assertion()) });
  assert.equal(y.res.status, 200, y.res.body);
  assertInvalidClient(await token({ grant_type: 'refresh_token', refresh_token: y.json.refresh_token, ...withAssertion(c.assertion({}, { kid: 'nope' })) }),
    'no key in the client\'s jwks has the kid');
  assertInvalidClient(await token({ grant_type: 'refresh_token', refresh_token: y.json.refresh_token, ...withAssertion(c.assertion({}, { alg: 'PS256', kid: 'ps', key: ps.privateKey })) }),
    'not signed with the client\'s token_endpoint_auth_signing_alg ES256');
});

test('a document listing none and private_key_jwt is accepted either way', async () => {
  const c = await makeClient('/both/client.json', {
    extra: { token_endpoint_auth_methods_supported: ['none', 'private_key_jwt'] },
  });
  const r = await login(c.clientId);
  const x = await token(codeForm(r, { client_id: c.clientId }));
  assert.equal(x.res.status, 200, x.res.body);
  const y = await token({ grant_type: 'refresh_token', refresh_token: x.json.refresh_token, ...withAssertion(c.assertion()) });
  assert.equal(y.res.status, 200, y.res.body);
  const z = await token({ grant_type: 'refresh_token', refresh_token: y.json.refresh_token, client_id: c.clientId });
  assert.equal(z.res.status, 200, z.res.body);
  // Revocation by client_id alone (none) works for it, and the token is gone.
  const rv = await request(`${origin}/oauth/revoke`, {
    method: 'POST', body: new URLSearchParams({ token: z.json.refresh_token, client_id: c.clientId }),
  });
  assert.equal(rv.status, 200, rv.body);
  const gone = await token({ grant_type: 'refresh_token', refresh_token: z.json.refresh_token, client_id: c.clientId });
  assert.equal(gone.json.error, 'invalid_grant');
});

test('a CIMD client whose document now fails is invalid_client at the refresh grant', async () => {
  const c = await makeClient('/nostore/client.json', {
    extra: { token_endpoint_auth_methods_supported: ['none', 'private_key_jwt'] },
  });
  await docs.setDocument('/nostore/client.json', c.doc, { headers: { 'cache-control': 'no-store' } });
  const r = await login(c.clientId);
  const x = await token(codeForm(r, { client_id: c.clientId }));
  assert.equal(x.res.status, 200, x.res.body);
  const { client_name: _, ...nameless } = c.doc;
  await docs.setDocument('/nostore/client.json', nameless, { headers: { 'cache-control': 'no-store' } });
  for (const form of [{ client_id: c.clientId }, withAssertion(c.assertion())]) {
    assertInvalidClient(await token({ grant_type: 'refresh_token', refresh_token: x.json.refresh_token, ...form }),
      'the client\'s metadata document could not be validated: client metadata document has no client_name');
  }
  // Fixed again: the same refresh token works (it was never spent).
  await docs.setDocument('/nostore/client.json', c.doc, { headers: { 'cache-control': 'no-store' } });
  const y = await token({ grant_type: 'refresh_token', refresh_token: x.json.refresh_token, client_id: c.clientId });
  assert.equal(y.res.status, 200, y.res.body);
});

test('documents with key material or without keys are refused at /oauth/authorize', async () => {
  const pair = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const priv = pair.privateKey.export({ format: 'jwk' });
  const base = (url) => ({
    client_id: url, client_name: 'bad (test)', redirect_uris: [REDIRECT], token_endpoint_auth_method: 'private_key_jwt',
  });
  const cases = [
    ['/bad/private.json', (u) => ({ ...base(u), jwks: { keys: [{ ...priv, kid: 'k' }] } }), 'private key material (a JWK with "d")'],
    ['/bad/oct.json', (u) => ({ ...base(u), jwks: { keys: [{ kty: 'oct', k: 'c2VjcmV0', kid: 'k' }] } }), 'symmetric key (kty oct)'],
    ['/bad/nokeys.json', (u) => base(u), 'private_key_jwt needs jwks_uri or jwks'],
    ['/bad/noname.json', (u) => ({ ...base(u), client_name: undefined, jwks_uri: docs.url('/k.json') }), 'has no client_name'],
    ['/bad/secretjwt.json', (u) => ({ ...base(u), token_endpoint_auth_method: 'client_secret_jwt' }), 'uses a shared secret'],
  ];
  for (const [path, mk, why] of cases) {
    const url = docs.url(path);
    await docs.setDocument(path, JSON.parse(JSON.stringify(mk(url))));
    const { challenge } = pkcePair();
    const u = new URL(`${origin}/oauth/authorize`);
    for (const [k, v] of Object.entries({ response_type: 'code', client_id: url, redirect_uri: REDIRECT, code_challenge: challenge, code_challenge_method: 'S256' })) u.searchParams.set(k, v);
    const res = await request(u.href, { headers: { accept: 'application/json' } });
    assert.equal(res.status, 400, res.body);
    assert.equal(res.headers.location, undefined);
    const j = JSON.parse(res.body);
    assert.equal(j.error, 'invalid_client');
    assert.ok(j.error_description.includes(why), `${path}: "${j.error_description}" should mention "${why}"`);
  }
});
