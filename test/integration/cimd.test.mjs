// CIMD through the real binary: discovery advertises client_id_metadata_document_supported
// only when cimd.enabled; a client_id URL whose document is unusable gets our own 400
// invalid_client page (never a redirect) naming the rule; 50 concurrent authorizations of one
// client make one request to its host; a cached document is not fetched again; a document
// that answers after 6 s fails after about 5 s while /health keeps answering at once.
// Everything is on 127.0.0.1: the proxy, the upstream IdP, and an HTTPS document host with a
// test CA the proxy trusts through outbound.caFile.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  startProxy, startIdp, startDocHost, startEchoBackend, request, getFreePort, pkcePair,
  scrapeMetrics, SLOW, embeddedAS, idpSecrets,
} from './lib/harness.mjs';

/** Start the IdP, the doc host, a backend and the proxy with cimd settings merged in. */
async function setup(t, cimd = {}) {
  const port = await getFreePort();
  const origin = `http://127.0.0.1:${port}`;
  const idp = await startIdp({ redirect_uris: [`${origin}/oauth/callback`] }, { t });
  const docs = await startDocHost({ t });
  const echo = await startEchoBackend({ t });
  const proxy = await startProxy({
    server: { resourceUrl: `${origin}/mcp` },
    backend: { url: echo.url },
    auth: { mode: 'embedded' },
    outbound: { caFile: docs.caFile },
    embeddedAuthServer: embeddedAS(origin, idp, {
      name: 'default',
      cimd: { enabled: true, insecureAllowLoopback: true, ...cimd },
    }),
  }, { t, port, secrets: idpSecrets(idp) });
  return { proxy, idp, docs };
}

/** A valid VS Code-shaped document for url. */
function documentFor(url, extra = {}) {
  return {
    client_id: url,
    client_name: 'Visual Studio Code (test)',
    grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
    redirect_uris: ['http://127.0.0.1:33418/', 'https://vscode.dev/redirect'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
    ...extra,
  };
}

/** GET /oauth/authorize for clientId, asking for a JSON error body. */
function authorize(proxy, clientId, { redirectUri = 'http://127.0.0.1:33418/', timeoutMs } = {}) {
  const { challenge } = pkcePair();
  const u = new URL(`${proxy.origin}/oauth/authorize`);
  const params = {
    client_id: clientId, redirect_uri: redirectUri, response_type: 'code', state: 'st',
    code_challenge: challenge, code_challenge_method: 'S256',
  };
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  return request(u.href, { headers: { accept: 'application/json' }, timeoutMs });
}

function assertInvalidClient(res, descriptionPart) {
  assert.equal(res.status, 400, res.body);
  assert.equal(res.headers.location, undefined, 'an untrusted client is never redirected');
  const j = JSON.parse(res.body);
  assert.equal(j.error, 'invalid_client');
  assert.ok(j.error_description.includes(descriptionPart),
    `"${j.error_description}" should mention "${descriptionPart}"`);
}

test('discovery advertises CIMD only when enabled', async (t) => {
  const on = await setup(t);
  for (const p of ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']) {
    const r = await request(on.proxy.origin + p);
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json().client_id_metadata_document_supported, true, p);
  }
  const off = await setup(t, { enabled: false });
  const r = await request(off.proxy.origin + '/.well-known/oauth-authorization-server');
  assert.equal(r.status, 200);
  assert.notEqual(r.json().client_id_metadata_document_supported, true);
  // Disabled: a URL client_id is an unknown client, and nothing is fetched.
  const url = await off.docs.setDocument('/off/client.json', documentFor(off.docs.url('/off/client.json')));
  const res = await authorize(off.proxy, url);
  assert.equal(res.status, 400);
  assert.equal(res.headers.location, undefined);
  assert.equal(JSON.parse(res.body).error, 'invalid_client');
  assert.equal((await off.docs.stats()).requests['/off/client.json'] ?? 0, 0);
});

test('an unusable document is invalid_client with the rule, never a redirect', async (t) => {
  const { proxy, docs } = await setup(t);
  const cases = [
    ['/bad/mismatch.json', (u) => ({ json: documentFor(u + 'x') }), 'client_id does not match'],
    ['/bad/secret.json', (u) => ({ json: documentFor(u, { token_endpoint_auth_method: 'client_secret_basic' }) }),
      'shared secret'],
    ['/bad/grants.json', (u) => ({ json: documentFor(u, { grant_types: ['client_credentials'] }) }),
      'grant_types must include authorization_code'],
    ['/bad/response.json', (u) => ({ json: documentFor(u, { response_types: ['token'] }) }),
      'response_types must be exactly'],
    ['/bad/redirects.json', (u) => ({ json: documentFor(u, { redirect_uris: [] }) }), 'redirect_uris'],
    ['/bad/scheme.json', (u) => ({ json: documentFor(u, { redirect_uris: ['vscode://cb'] }) }), 'redirect_uris[0]'],
    ['/bad/404.json', null, 'HTTP status 404'],
    ['/bad/html.json', () => ({ body: '<html></html>', contentType: 'text/html' }), 'is not JSON'],
    ['/bad/big.json', (u) => ({ json: documentFor(u), oversizeBytes: 8000 }), 'too large (limit 5120 bytes)'],
    ['/bad/redirect.json', () => ({ status: 302, headers: { location: 'https://127.0.0.1/x' }, json: {} }),
      'redirect refused'],
  ];
  for (const [path, spec, why] of cases) {
    const url = docs.url(path);
    if (spec) await docs.set(path, spec(url));
    assertInvalidClient(await authorize(proxy, url), why);
  }
  // URL rules are checked before any fetch.
  const before = (await docs.stats()).connections.https;
  assertInvalidClient(await authorize(proxy, docs.url('/')), 'path');
  assertInvalidClient(await authorize(proxy, docs.url('/a/../b.json')), '..');
  assertInvalidClient(await authorize(proxy, docs.url('/c.json#frag')), 'fragment');
  assertInvalidClient(await authorize(proxy, docs.httpOrigin ? docs.httpOrigin + '/c.json'
    : docs.url('/c.json').replace('https:', 'http:')), 'https');
  assert.equal((await docs.stats()).connections.https, before, 'no connection for a refused URL');

  // One warning per failure, with the host and the reason, never the document.
  const warns = proxy.logs().filter((l) => l.msg === 'cimd: client metadata document refused');
  assert.ok(warns.length >= cases.length, JSON.stringify(warns));
  assert.ok(warns.every((l) => l.host && l.reason));
  assert.ok(!proxy.stderr().includes('Visual Studio Code (test)'), 'documents are never logged');
});

test('50 concurrent authorizations share one fetch; the cache answers the next', async (t) => {
  const { proxy, docs } = await setup(t);
  const url = docs.url('/vscode/client-metadata.json');
  await docs.set('/vscode/client-metadata.json', { json: documentFor(url), delayMs: 1000 });
  const answers = await Promise.all(Array.from({ length: 50 }, () => authorize(proxy, url)));
  for (const r of answers) {
    assert.equal(r.status, 302, r.body);
    assert.ok(!r.headers.location.startsWith('http://127.0.0.1:33418/?error'), r.headers.location);
  }
  assert.equal((await docs.stats()).requests['/vscode/client-metadata.json'], 1);
  const again = await authorize(proxy, url);
  assert.equal(again.status, 302);
  assert.equal((await docs.stats()).requests['/vscode/client-metadata.json'], 1);
  const m = await scrapeMetrics(proxy.diagUrl);
  assert.equal(m.get('mcp_proxy_cimd_fetch_total{outcome="ok"}'), 1);
  assert.ok(m.get('mcp_proxy_cimd_cache_total{result="hit"}') >= 1);
  assert.equal(m.get('mcp_proxy_cimd_cache_total{result="miss"}') + m.get('mcp_proxy_cimd_cache_total{result="hit"}'), 51);
});

test('a document answering after 6 s fails after about 5 s; /health stays fast', async (t) => {
  const { proxy, docs } = await setup(t);
  const url = docs.url('/slow/client.json');
  await docs.set('/slow/client.json', { json: documentFor(url), delayMs: 6000 });
  const t0 = Date.now();
  const pending = authorize(proxy, url, { timeoutMs: 20000 * SLOW });
  for (let i = 0; i < 5; i++) {
    await new Promise((r) => setTimeout(r, 500));
    const h0 = Date.now();
    const h = await request(`${proxy.origin}/health`);
    assert.equal(h.status, 200);
    assert.ok(Date.now() - h0 < 500 * SLOW, '/health is not held up by the fetch');
  }
  const res = await pending;
  const took = Date.now() - t0;
  assertInvalidClient(res, 'client metadata document fetch timed out after 5s');
  assert.ok(took >= 4500 && took < 5900 * SLOW, `failed after ${took} ms`);
});
