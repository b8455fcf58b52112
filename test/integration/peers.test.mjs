// Proves the test peers themselves work, without the proxy binary.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  startBackend, startEchoBackend, startIdp, startDocHost, connectClient, request,
  followAuthorization, CookieJar, pkcePair, decodeJwt, startReferenceServer, loginAndConnect, getTokens,
} from './lib/harness.mjs';

for (const mode of ['streamable-http', 'sse']) {
  test(`server-everything backend (${mode}) serves an SDK client on 127.0.0.1`, async (t) => {
    const backend = await startBackend(mode, { t });
    assert.match(backend.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const client = await connectClient({ url: backend.mcpUrl, transport: mode, t });
    assert.ok(client.getServerVersion()?.name, 'initialize returned serverInfo');
    const { tools } = await client.listTools();
    assert.ok(tools.some((x) => x.name === 'echo'), `echo tool listed: ${tools.map((x) => x.name)}`);
    const r = await client.callTool({ name: 'echo', arguments: { message: 'hello peers' } });
    assert.ok(JSON.stringify(r.content).includes('hello peers'), JSON.stringify(r));
    await client.close();
  });
}

test('echo backend reports headers, delays, streams SSE, sends large bodies, counts', async (t) => {
  const echo = await startEchoBackend({ t });
  const r = await request(`${echo.url}/x/y?z=1`, { method: 'POST', headers: { 'x-test': 'a' }, body: { jsonrpc: '2.0', id: 3, method: 'ping' } });
  assert.equal(r.status, 200);
  const j = r.json();
  assert.equal(j.id, 3);
  assert.equal(j.result.headers['x-test'], 'a');
  assert.equal(j.result.path, '/x/y');
  const t0 = Date.now();
  await request(`${echo.url}/slow?delay=200`);
  assert.ok(Date.now() - t0 >= 190);
  const sse = await request(`${echo.url}/events?sse=3&interval=20`);
  assert.equal(sse.headers['content-type'], 'text/event-stream');
  assert.equal(sse.body.match(/^event: tick$/gm).length, 3);
  const big = await request(`${echo.url}/big?size=1048576`);
  assert.equal(big.buffer.length, 1048576);
  const st = await echo.stats();
  assert.equal(st.requests, 4);
  assert.equal(st.byPath['/x/y'], 1);
});

test('IdP: discovery, headless code+PKCE login, refresh, denial, JWT for a resource, introspection', async (t) => {
  const redirect = 'http://127.0.0.1:45999/oauth/callback';
  const idp = await startIdp({ redirect_uris: [redirect], accessTokenTTL: 60 }, { t });
  const d = await idp.discovery();
  assert.equal(d.issuer, idp.issuer);
  assert.match(d.issuer, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.ok(d.code_challenge_methods_supported.includes('S256'));
  assert.ok(d.introspection_endpoint);
  const basic = 'Basic ' + Buffer.from(`${idp.clientId}:${idp.clientSecret}`).toString('base64');

  const login = async (extra = {}) => {
    const { verifier, challenge } = pkcePair();
    const u = new URL(d.authorization_endpoint);
    const params = {
      client_id: idp.clientId, redirect_uri: redirect, response_type: 'code',
      scope: 'openid email profile offline_access', state: 'st-1', nonce: 'n-1',
      code_challenge: challenge, code_challenge_method: 'S256', ...extra,
    };
    for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
    const res = await followAuthorization(u, { redirectUri: redirect, jar: new CookieJar() });
    return { res, verifier };
  };

  const { res, verifier } = await login();
  assert.equal(res.state, 'st-1');
  assert.equal(res.iss, idp.issuer);
  assert.ok(res.code, JSON.stringify(res.hops));
  const tok = await request(d.token_endpoint, {
    method: 'POST', headers: { authorization: basic },
    body: new URLSearchParams({ grant_type: 'authorization_code', code: res.code, redirect_uri: redirect, code_verifier: verifier }),
  });
  assert.equal(tok.status, 200, tok.body);
  const tokens = tok.json();
  assert.ok(tokens.access_token && tokens.refresh_token && tokens.id_token, tok.body);
  assert.equal(tokens.expires_in, 60);
  const idt = decodeJwt(tokens.id_token).payload;
  assert.equal(idt.sub, 'alice');

  const me = await request(d.userinfo_endpoint, { headers: { authorization: `Bearer ${tokens.access_token}` } });
  assert.equal(me.status, 200, me.body);
  assert.equal(me.json().sub, 'alice');
  assert.equal(me.json().email, 'alice@example.test');

  const ref = await request(d.token_endpoint, {
    method: 'POST', headers: { authorization: basic },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token }),
  });
  assert.equal(ref.status, 200, ref.body);
  assert.ok(ref.json().access_token);
  assert.notEqual(ref.json().access_token, tokens.access_token);

  // wrong PKCE verifier is refused
  const again = await login();
  const bad = await request(d.token_endpoint, {
    method: 'POST', headers: { authorization: basic },
    body: new URLSearchParams({ grant_type: 'authorization_code', code: again.res.code, redirect_uri: redirect, code_verifier: pkcePair().verifier }),
  });
  assert.equal(bad.status, 400);
  assert.equal(bad.json().error, 'invalid_grant');

  // resource indicator → JWT access token with that audience, introspectable
  const resource = 'http://127.0.0.1:45998/mcp';
  const withRes = await login({ resource, scope: 'openid offline_access mcp:tools', prompt: 'consent' });
  const jt = await request(d.token_endpoint, {
    method: 'POST', headers: { authorization: basic },
    body: new URLSearchParams({ grant_type: 'authorization_code', code: withRes.res.code, redirect_uri: redirect, code_verifier: withRes.verifier, resource }),
  });
  assert.equal(jt.status, 200, jt.body);
  const jwt = decodeJwt(jt.json().access_token);
  assert.equal(jwt.payload.aud, resource);
  assert.equal(jwt.payload.iss, idp.issuer);
  assert.equal(jwt.payload.sub, 'alice');
  assert.match(jwt.payload.scope, /mcp:tools/);
  assert.ok(jt.json().refresh_token, 'refresh token issued');
  assert.equal(jwt.header.typ, 'at+jwt');
  const intro = await request(d.introspection_endpoint, {
    method: 'POST', headers: { authorization: basic },
    body: new URLSearchParams({ token: ref.json().access_token }),
  });
  assert.equal(intro.status, 200, intro.body);
  assert.equal(intro.json().active, true);
  assert.equal(intro.json().sub, 'alice');
  const rotated = await request(d.introspection_endpoint, {
    method: 'POST', headers: { authorization: basic },
    body: new URLSearchParams({ token: tokens.refresh_token }),
  });
  assert.equal(rotated.json().active, false, 'refresh tokens rotate: the used one is dead');

  // denial mode at runtime
  await idp.control({ deny: true });
  const denied = await login();
  assert.equal(denied.res.error, 'access_denied');
  assert.equal(denied.res.state, 'st-1');
  await idp.control({ deny: false });

  const st = await idp.stats();
  assert.equal(st.tokens.authorization_code, 2);
  assert.equal(st.tokens.refresh_token, 1);
  assert.equal(st.denied, 1);
  assert.equal(st.tokenAuthMethods.client_secret_basic, 3);
});

test('doc-host serves documents over HTTPS trusted via the test CA, counts requests, honours ETag', async (t) => {
  const host = await startDocHost({ t });
  assert.match(host.origin, /^https:\/\/127\.0\.0\.1:\d+$/);
  const url = await host.setDocument('/clients/a.json', { client_id: 'x' }, { etag: '"v1"', headers: { 'cache-control': 'max-age=60' } });
  assert.equal((await host.stats()).connections.https, 0, 'the control channel does not count');

  const r = await request(url, { caFile: host.caFile });
  assert.equal(r.status, 200);
  assert.deepEqual(r.json(), { client_id: 'x' });
  assert.equal(r.headers['cache-control'], 'max-age=60');
  const r2 = await request(url.replace('127.0.0.1', 'localhost'), { caFile: host.caFile });
  assert.equal(r2.status, 200);
  const nm = await request(url, { caFile: host.caFile, headers: { 'if-none-match': '"v1"' } });
  assert.equal(nm.status, 304);
  await assert.rejects(request(url), /self[- ]signed|unable to verify|certificate/i);
  assert.equal((await request(host.url('/missing'), { caFile: host.caFile })).status, 404);

  await host.set('/big.json', { json: { client_id: 'big' }, oversizeBytes: 10000 });
  const big = await request(host.url('/big.json'), { caFile: host.caFile });
  assert.equal(big.buffer.length, 10000);
  assert.equal(big.json().client_id, 'big');

  const st = await host.stats();
  assert.equal(st.requests['/clients/a.json'], 3);
  assert.equal(st.notModified['/clients/a.json'], 1);
  assert.equal(st.connections.https, 6);
  assert.equal(st.connections.tlsErrors, 1);
  await host.reset();
  assert.equal((await host.stats()).connections.https, 0);
});

test('loginAndConnect: headless SDK OAuth login against the SDK reference server (DCR)', async (t) => {
  const ref = await startReferenceServer({ t });
  const fetchLog = [];
  const client = await loginAndConnect({ mcpUrl: ref.mcpUrl, fetchLog, t });
  const r = await client.callTool({ name: 'echo', arguments: { message: 'authorized' } });
  assert.equal(r.content[0].text, 'Echo: authorized');
  assert.ok(client.oauth.tokens().access_token);
  assert.ok(client.oauth.registered.client_id, 'dynamically registered');
  assert.ok(client.oauth.lastAuthorization.code);
  const seq = fetchLog.map((e) => `${e.method} ${new URL(e.url).pathname} ${e.status}`);
  if (process.env.MCP_TEST_VERBOSE === '1') t.diagnostic(seq.join('\n'));
  // The SDK's request order (recorded for the C team; see the harness report).
  // (the authorization request itself is made by the headless follower, between
  // /register and the second discovery; finishAuth() discovers again before /token)
  assert.deepEqual(seq.slice(0, 8), [
    'POST /mcp 401',
    'GET /.well-known/oauth-protected-resource/mcp 200',
    'GET /.well-known/oauth-authorization-server 200',
    'POST /register 201',
    'GET /.well-known/oauth-protected-resource/mcp 200',
    'GET /.well-known/oauth-authorization-server 200',
    'POST /token 200',
    'POST /mcp 200',
  ]);
  assert.equal(new URL(client.oauth.lastAuthorization.hops[0].url).pathname, '/authorize');
  const tokenReq = fetchLog.find((e) => e.url.endsWith('/token'));
  // token_endpoint_auth_method "none" was registered (and echoed by DCR), so the SDK sends
  // client_id in the form body and no Authorization header.
  assert.equal(tokenReq.requestHeaders.authorization, undefined);
  assert.match(tokenReq.requestBody, /(^|&)client_id=/);
  assert.match(tokenReq.requestBody, /(^|&)code_verifier=/);
  assert.match(tokenReq.requestBody, /(^|&)resource=/);
  await client.close();

  const { tokens } = await getTokens({ mcpUrl: ref.mcpUrl });
  assert.ok(tokens.access_token);
});
