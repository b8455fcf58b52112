// Two replicas of the proxy sharing one Redis (embeddedAuthServer.storage.type: redis), as
// behind one Kubernetes Service: a login started on one replica ends on the other; a token
// revoked on one is refused by the other within a second; a client registered (DCR) or
// resolved (CIMD) on one is usable on the other; restarting both loses nothing; two
// replicas refreshing one upstream token at once lose no rotation; with Redis away the AS
// answers 503 temporarily_unavailable while MCP traffic with valid tokens goes on, and when
// Redis is back logins work again without a restart; Redis never holds a token in clear
// nor a key without a TTL; an ACL user with a password works. With Sentinel (a master, a
// replica, one sentinel) a proxy follows a failover without a restart: the master killed,
// the replica promoted, logins and the refresh tokens issued before work. TLS to Redis
// with a test CA (tls.caCertSecretRef) works, and a proxy trusting another CA gets 503s.
//
// Both replicas have the same issuer and resource URL, the public URL of the "Service":
// http://127.0.0.1:<svc>, a port where nothing listens. The test talks to each replica on
// its own port and rewrites every URL of the issuer's origin (the IdP's redirect to
// <issuer>/oauth/callback) to the replica it picks, as a load balancer would.
//
// Everything is on 127.0.0.1: redis-server (Debian's; scripts/install-deps.sh --test) on a
// free port with its own data directory, the upstream IdP (oidc-provider), the echo backend
// (which shows the upstream token it received), the HTTPS document host for CIMD (test CA
// through outbound.caFile, cimd.insecureAllowLoopback).
//
// The Redis client and redis-server, the replicas' common config and the login helpers are
// in lib/redis.mjs and lib/login.mjs (sessions.test.mjs uses them too).
//
// This test never skips: a build that refuses storage.type redis fails every case, saying so.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  startProxy, startIdp, startEchoBackend, startDocHost, getFreePort, request,
  pkcePair, decodeJwt, clientMetadataDocument, logsContaining, sleep, waitFor, SLOW,
} from './lib/harness.mjs';
import { startRedis, str, sharedKeys, embeddedReplicaConfig, embeddedReplicaSecrets } from './lib/redis.mjs';
import { loginHelpers, CLIENT_REDIRECT } from './lib/login.mjs';

const PREFIX = 'mcp-it-replicas:';

// ---------------------------------------------------------------- the environment

const keys = sharedKeys();
const { signingKeyPem, encryptionKey } = keys;

/** Every token, code and secret the test saw: none may be in Redis or in a log line. */
const needles = new Map(); // value → what it is
function remember(what, ...values) {
  for (const v of values) if (typeof v === 'string' && v.length >= 8) needles.set(v, what);
}
remember('encryption key', encryptionKey);
// A line from the middle of the signing key's PEM (64 base64 characters of the key).
remember('signing key', signingKeyPem.split('\n').filter((l) => l && !l.startsWith('-----'))[1]);

/** The replica's config: both are the same but for their listeners. */
function replicaConfig(env, redis, { storage = {} } = {}) {
  return embeddedReplicaConfig({
    issuer: env.issuer, idp: env.idp, redis, keyPrefix: PREFIX, backendUrl: env.echo.url,
    caFile: env.docs.caFile, cimd: true, storage,
  });
}

function replicaSecrets(env, extra = {}) {
  return embeddedReplicaSecrets({ idp: env.idp, keys, extra });
}

/** Start one replica; a build that does not serve storage.type redis is a clear failure. */
async function startReplica(env, name, { redis = env.redis, storage, secrets } = {}) {
  try {
    const p = await startProxy(replicaConfig(env, redis, { storage }), { secrets: replicaSecrets(env, secrets) });
    p.name = name;
    return p;
  } catch (e) {
    const why = e.stderr || e.message;
    if (/storage\.type|redis/i.test(why) && /not served|not available|not supported/i.test(why)) {
      throw new Error(`replica ${name}: this build refuses embeddedAuthServer.storage.type redis `
        + `(the Redis backend has not landed), so replicas cannot be tested:\n${why}`);
    }
    throw e;
  }
}

let envPromise;
/** The shared environment, started once; every case awaits it (and fails if it failed). */
function getEnv() {
  envPromise ??= (async () => {
    const svc = await getFreePort(); // the "Service": nothing listens there
    const issuer = `http://127.0.0.1:${svc}`;
    const idp = await startIdp({ redirect_uris: [`${issuer}/oauth/callback`], revealTokens: true });
    const echo = await startEchoBackend();
    const docs = await startDocHost();
    const redis = await startRedis();
    const env = { issuer, idp, echo, docs, redis };
    [env.A, env.B] = await Promise.all([startReplica(env, 'A'), startReplica(env, 'B')]);
    return env;
  })();
  return envPromise;
}

// ---------------------------------------------------------------- OAuth and MCP helpers

// The IdP's tokens and ours, every code: remembered as needles.
const { browserLogin, token, login, register, registerOk, upstreamTokens } = loginHelpers({
  remember, clientName: 'replicas.test',
});

let rpcId = 0;
/** POST <replica>/mcp ping with the token → the response (the echo backend's JSON-RPC answer). */
function mcp(replica, accessToken, { timeoutMs } = {}) {
  rpcId += 1;
  return request(`${replica.origin}/mcp`, {
    method: 'POST',
    headers: { authorization: `Bearer ${accessToken}`, accept: 'application/json, text/event-stream' },
    body: { jsonrpc: '2.0', id: rpcId, method: 'ping' },
    timeoutMs,
  });
}

/** An MCP request that must pass: → the upstream token the backend received. */
async function mcpOk(replica, accessToken, what = '') {
  const res = await mcp(replica, accessToken);
  assert.equal(res.status, 200, `MCP on ${replica.name}${what ? ` (${what})` : ''}: ${res.status} ${res.body}`);
  const auth = res.json().result?.headers?.authorization;
  assert.match(auth || '', /^Bearer \S+$/, 'the backend got the upstream token');
  const upstream = auth.slice(7);
  remember('upstream access token', upstream);
  assert.notEqual(upstream, accessToken, 'the backend never sees our token');
  return upstream;
}

/** The replicas' log lines about upstream refreshes (for failure messages). */
function refreshLogs(...replicas) {
  return replicas.flatMap((p) => p.logs().filter((l) => /upstream token|refresh/i.test(l.msg || ''))
    .map((l) => `${p.name}: ${l.msg}${l.error ? ` (${l.error})` : ''}`));
}

function assertInvalidToken(res, what) {
  assert.equal(res.status, 401, `${what}: ${res.status} ${res.body}`);
  assert.match(res.headers['www-authenticate'] || '', /error="invalid_token"/, what);
}

async function health(replica) {
  const res = await request(`${replica.diagUrl}/health`);
  let json;
  try { json = JSON.parse(res.body); } catch { json = undefined; }
  return { res, json };
}

/** A 503 JSON temporarily_unavailable with a Retry-After, from an AS endpoint. */
function assertUnavailable(res, what) {
  assert.equal(res.status, 503, `${what}: ${res.status} ${res.body}`);
  assert.match(res.headers['content-type'] || '', /^application\/json/, `${what}: content-type`);
  assert.equal(JSON.parse(res.body).error, 'temporarily_unavailable', `${what}: ${res.body}`);
  assert.match(res.headers['retry-after'] || '', /^[1-9][0-9]*$/, `${what}: Retry-After (${res.headers['retry-after']})`);
}

// ---------------------------------------------------------------- the cases

test('authorize on A, callback on B, token on A, refresh on B, revoke on A: B refuses the token within 1 s', async () => {
  const env = await getEnv();
  const { A, B } = env;
  const clientId = await registerOk(A);
  const t1 = await login(env, { clientId, startOn: A, callbackOn: B, tokenOn: A });
  const claims = decodeJwt(t1.access_token).payload;
  assert.equal(claims.iss, env.issuer);
  assert.equal(claims.aud, `${env.issuer}/mcp`);
  await mcpOk(A, t1.access_token, 'token from A');
  await mcpOk(B, t1.access_token, 'token from A');

  const r = await token(B, { grant_type: 'refresh_token', refresh_token: t1.refresh_token, client_id: clientId });
  assert.equal(r.res.status, 200, `refresh on B: ${r.res.body}`);
  const t2 = r.json;
  assert.ok(t2.access_token && t2.refresh_token && t2.refresh_token !== t1.refresh_token, 'rotated');
  // B knows the new token (its cache holds it as allowed), A verifies it too.
  await mcpOk(B, t2.access_token, 'token refreshed on B');
  await mcpOk(A, t2.access_token, 'token refreshed on B');

  const rv = await request(`${A.origin}/oauth/revoke`, {
    method: 'POST', body: new URLSearchParams({ token: t2.access_token, client_id: clientId }),
  });
  assert.equal(rv.status, 200, `revoke on A: ${rv.body}`);
  const t0 = Date.now();
  assertInvalidToken(await mcp(A, t2.access_token), 'A, right after revoking');
  const deadline = t0 + (1000 + 500) * SLOW;
  let refusedAt;
  let last;
  while (Date.now() < deadline) {
    last = await mcp(B, t2.access_token);
    if (last.status === 401) {
      refusedAt = Date.now();
      break;
    }
    assert.equal(last.status, 200, `B before the revocation reached it: ${last.status} ${last.body}`);
    await sleep(25);
  }
  assert.ok(refusedAt, `B still accepted the revoked token after ${Date.now() - t0} ms (last: ${last?.status})`);
  assertInvalidToken(last, 'B after the revocation');
  assert.ok(refusedAt - t0 <= 1000 * SLOW + 250, `B refused it after ${refusedAt - t0} ms (limit 1 s)`);
  env.revoked = t2.access_token;
});

test('DCR on A, login with that client on B; refresh-token reuse is detected across replicas', async () => {
  const env = await getEnv();
  const { A, B } = env;
  const clientId = await registerOk(A);
  const t1 = await login(env, { clientId, startOn: B, callbackOn: B, tokenOn: B });
  assert.equal(decodeJwt(t1.access_token).payload.client_id, clientId);
  await mcpOk(A, t1.access_token);
  await mcpOk(B, t1.access_token);

  const r = await token(A, { grant_type: 'refresh_token', refresh_token: t1.refresh_token, client_id: clientId });
  assert.equal(r.res.status, 200, `refresh on A: ${r.res.body}`);
  const reuse = await token(B, { grant_type: 'refresh_token', refresh_token: t1.refresh_token, client_id: clientId });
  assert.equal(reuse.res.status, 400, `reusing the rotated refresh token on B: ${reuse.res.body}`);
  assert.equal(reuse.json.error, 'invalid_grant');
  const dead = await token(A, { grant_type: 'refresh_token', refresh_token: r.json.refresh_token, client_id: clientId });
  assert.equal(dead.res.status, 400, `the family's newest token after the reuse: ${dead.res.body}`);
  assert.equal(dead.json.error, 'invalid_grant');
  env.dcrClient = clientId;
});

test('a CIMD login started on A is finished on B', async () => {
  const env = await getEnv();
  const { A, B, docs } = env;
  const clientId = docs.url('/clients/replicas-client.json');
  await docs.setDocument('/clients/replicas-client.json', clientMetadataDocument(clientId, [CLIENT_REDIRECT]));
  const t1 = await login(env, { clientId, startOn: A, callbackOn: B, tokenOn: B });
  assert.equal(decodeJwt(t1.access_token).payload.client_id, clientId);
  await mcpOk(A, t1.access_token);
  await mcpOk(B, t1.access_token);
  const r = await token(A, { grant_type: 'refresh_token', refresh_token: t1.refresh_token, client_id: clientId });
  assert.equal(r.res.status, 200, `refresh of the CIMD client on A: ${r.res.body}`);
});

test('concurrent refreshes of one upstream token on A and B lose no rotation', async () => {
  const env = await getEnv();
  const { A, B, idp } = env;
  // The guard refreshes an upstream token 5 s before it expires: 7 s leaves 2 s of use.
  await idp.control({ accessTokenTTL: 7 });
  const problems = [];
  const tokenErrors = (from) => idp.events().filter((e) => e.event === 'token_error').slice(from);
  const errorCount = () => tokenErrors(0).length;
  const explain = (from) => `IdP token errors: ${JSON.stringify(tokenErrors(from))}; replica logs: `
    + `${JSON.stringify(refreshLogs(A, B))}`;
  try {
    const clientId = await registerOk(A);
    const t1 = await login(env, { clientId, startOn: A, callbackOn: B, tokenOn: A });
    const first = await mcpOk(A, t1.access_token, 'warm A');
    await mcpOk(B, t1.access_token, 'warm B');
    const refreshesBefore = (await idp.stats()).tokens.refresh_token || 0;

    for (let round = 1; round <= 2; round += 1) {
      await sleep(3000); // now inside the 5 s margin on both replicas
      const mark = errorCount();
      const [ra, rb] = await Promise.all([mcp(A, t1.access_token), mcp(B, t1.access_token)]);
      for (const [p, r] of [[A, ra], [B, rb]]) {
        if (r.status !== 200) problems.push(`round ${round} (A and B at once), ${p.name}: ${r.status} ${r.body}`);
        else remember('upstream access token', r.json().result.headers.authorization.slice(7));
      }
      if (tokenErrors(mark).length) problems.push(`round ${round}: the IdP refused a refresh (a rotation was lost): ${explain(mark)}`);
      if (ra.status === 200 && ra.json().result.headers.authorization === `Bearer ${first}`) {
        problems.push(`round ${round}: A sent the old upstream token`);
      }
    }
    // The session still works: the refresh token the store holds is the IdP's current one,
    // also for a replica whose local copy is older (B refreshes, then A).
    await sleep(3000);
    for (const p of [B, A]) {
      const mark = errorCount();
      const r = await mcp(p, t1.access_token);
      if (r.status !== 200) problems.push(`afterwards, ${p.name}: ${r.status} ${r.body}; ${explain(mark)}`);
    }
    const st = await idp.stats();
    if ((st.tokens.refresh_token || 0) - refreshesBefore < 3) {
      problems.push(`refreshes the IdP granted: ${(st.tokens.refresh_token || 0) - refreshesBefore} (3 rounds)`);
    }
    upstreamTokens(env);
  } finally {
    await idp.control({ accessTokenTTL: 3600 });
  }
  assert.deepEqual(problems, [], 'concurrent upstream refreshes');
});

test('restarting both replicas (same Redis) loses nothing', async () => {
  const env = await getEnv();
  assert.ok(env.dcrClient, 'the DCR case ran first and left a registered client');
  const clientId = await registerOk(env.A);
  const t1 = await login(env, { clientId, startOn: env.A, callbackOn: env.B, tokenOn: env.B });
  await mcpOk(env.A, t1.access_token, 'before the restart');

  await Promise.all([env.A.stop(), env.B.stop()]);
  [env.A, env.B] = await Promise.all([startReplica(env, 'A'), startReplica(env, 'B')]);
  const { A, B } = env;

  // Tokens issued before still verify (same signing key) and find their upstream tokens.
  await mcpOk(A, t1.access_token, 'access token from before the restart');
  await mcpOk(B, t1.access_token, 'access token from before the restart');
  if (env.revoked) assertInvalidToken(await mcp(B, env.revoked), 'a token revoked before the restart');
  const r = await token(B, { grant_type: 'refresh_token', refresh_token: t1.refresh_token, client_id: clientId });
  assert.equal(r.res.status, 200, `refresh token from before the restart: ${r.res.body}`);
  await mcpOk(A, r.json.access_token, 'refreshed after the restart');
  // The client registered in the DCR case still exists: a whole login with it.
  const t2 = await login(env, { clientId: env.dcrClient, startOn: A, callbackOn: B, tokenOn: A });
  await mcpOk(B, t2.access_token, 'the DCR client after the restart');
});

test('Redis holds no token in clear and no key without a TTL', async () => {
  const env = await getEnv();
  upstreamTokens(env);
  assert.ok([...needles.values()].some((w) => w.startsWith('upstream')), 'the IdP revealed its tokens');
  assert.ok([...needles.values()].includes('our token'), 'the cases above issued tokens');
  // For a JWT the signature is what makes a bearer credential of it: look for it alone too.
  const search = new Map(needles);
  for (const [v, what] of needles) {
    const parts = v.split('.');
    if (parts.length === 3 && parts[2].length >= 16) search.set(parts[2], `${what} (JWT signature)`);
  }
  const c = await env.redis.client();
  try {
    const keys = [];
    let cursor = '0';
    do {
      const [next, batch] = await c.cmd('SCAN', cursor, 'COUNT', 1000);
      cursor = str(next);
      keys.push(...batch);
    } while (cursor !== '0');
    assert.ok(keys.length > 0, 'Redis holds keys');
    const problems = [];
    const types = {};
    for (const key of keys) {
      const k = str(key);
      if (!k.startsWith(PREFIX)) problems.push(`key ${JSON.stringify(k)} is not under keyPrefix ${PREFIX}`);
      const type = str(await c.cmd('TYPE', key));
      types[type] = (types[type] || 0) + 1;
      let value;
      switch (type) {
        case 'string': value = [await c.cmd('GET', key)]; break;
        case 'hash': value = await c.cmd('HGETALL', key); break;
        case 'set': value = await c.cmd('SMEMBERS', key); break;
        case 'zset': value = await c.cmd('ZRANGE', key, 0, -1, 'WITHSCORES'); break;
        case 'list': value = await c.cmd('LRANGE', key, 0, -1); break;
        case 'stream': value = [JSON.stringify((await c.cmd('XRANGE', key, '-', '+')).map(String))]; break;
        case 'none': continue; // expired meanwhile
        default: value = []; problems.push(`key ${k}: unexpected type ${type}`);
      }
      const pttl = await c.cmd('PTTL', key);
      if (pttl === -2) continue; // expired meanwhile
      if (!(pttl > 0)) problems.push(`key ${k} (${type}) has no TTL (PTTL ${pttl})`);
      const text = [k, ...value.map((v) => (v === null ? '' : str(v)))].join('\n');
      for (const [needle, what] of search) {
        if (text.includes(needle)) problems.push(`key ${k} (${type}) holds a ${what} in clear`);
      }
    }
    assert.deepEqual(problems, [], `${keys.length} keys (${JSON.stringify(types)})`);
  } finally {
    c.close();
  }
  for (const p of [env.A, env.B]) {
    assert.deepEqual(logsContaining(p.logs(), [...needles.keys()]).map((l) => l.msg), [],
      `replica ${p.name} logged a token or a key`);
  }
});

test('Redis away: AS endpoints 503 temporarily_unavailable, MCP goes on, /ready stays 200; Redis back: logins work', async () => {
  const env = await getEnv();
  const { A, B } = env;
  const clientId = await registerOk(A);
  const t1 = await login(env, { clientId, startOn: A, callbackOn: B, tokenOn: A });
  // Both replicas have seen the session (its upstream tokens are in their local copies).
  await mcpOk(A, t1.access_token, 'before Redis goes');
  await mcpOk(B, t1.access_token, 'before Redis goes');
  for (const p of [A, B]) {
    const h = await health(p);
    assert.equal(h.res.status, 200);
    assert.equal(h.json?.storage?.reachable, true, `${p.name} /health with Redis up: ${h.res.body}`);
  }

  // A login that reaches its callback while Redis is away.
  const halfway = await browserLogin(env, { clientId, startOn: A, callbackOn: B, stopAtCallback: true });
  assert.ok(halfway.callbackUrl, 'the IdP sent the browser to the callback');

  // Every expectation while Redis is away is checked and reported together.
  const problems = [];
  const soft = async (what, fn) => {
    try { await fn(); } catch (e) { problems.push(`${what}: ${e.message.split('\n')[0]}`); }
  };

  await env.redis.stop();
  for (const p of [A, B]) {
    await soft(`${p.name} /health`, async () => {
      const h = await waitFor(async () => {
        const x = await health(p);
        return x.json?.storage?.reachable === false ? x : null;
      }, { timeoutMs: 10000, message: `${p.name} /health reporting storage.reachable false` });
      assert.equal(h.res.status, 200, 'liveness stays 200');
      assert.equal(h.json.status, 'degraded', `${p.name} /health: ${h.res.body}`);
    });
    await soft(`${p.name} /ready`, async () => {
      const ready = await request(`${p.diagUrl}/ready`);
      assert.equal(ready.status, 200, `${p.name} /ready with Redis away: ${ready.body}`);
    });
  }

  for (const p of [A, B]) {
    // MCP requests with tokens that verify locally keep flowing.
    await soft(`${p.name} MCP with a valid token`, async () => {
      for (let i = 0; i < 3; i += 1) await mcpOk(p, t1.access_token, 'Redis away');
    });
    // Revocations already known stay in force.
    if (env.revoked) {
      await soft(`${p.name} MCP with a revoked token`, async () => {
        assertInvalidToken(await mcp(p, env.revoked), `${p.name}: a revoked token, Redis away`);
      });
    }
    // Discovery needs no store.
    await soft(`${p.name} discovery`, async () => {
      assert.equal((await request(`${p.origin}/.well-known/oauth-authorization-server`)).status, 200);
    });
    // The AS endpoints that need the store.
    await soft(`${p.name} POST /oauth/token (refresh_token)`, async () => {
      assertUnavailable((await token(p, { grant_type: 'refresh_token', refresh_token: t1.refresh_token, client_id: clientId })).res, 'refresh');
    });
    await soft(`${p.name} POST /oauth/register`, async () => { assertUnavailable(await register(p), 'register'); });
    if (p === B) {
      await soft('B GET /oauth/callback', async () => {
        assertUnavailable(await request(halfway.callbackUrl, { jar: halfway.jar, headers: { accept: 'application/json' } }), 'callback');
      });
    }
    await soft(`${p.name} POST /oauth/revoke`, async () => {
      assertUnavailable(await request(`${p.origin}/oauth/revoke`, {
        method: 'POST', body: new URLSearchParams({ token: t1.refresh_token, client_id: clientId }),
      }), 'revoke');
    });
    // /oauth/authorize: the 503 JSON, or (the client being known) the same error sent to
    // the client's redirect_uri as RFC 6749 §4.1.2.1 has it; never a login that cannot end.
    await soft(`${p.name} GET /oauth/authorize`, async () => {
      const { challenge } = pkcePair();
      const u = new URL(`${p.origin}/oauth/authorize`);
      for (const [k, v] of Object.entries({
        response_type: 'code', client_id: clientId, redirect_uri: CLIENT_REDIRECT, state: 's', scope: 'openid',
        code_challenge: challenge, code_challenge_method: 'S256', resource: `${env.issuer}/mcp`,
      })) u.searchParams.set(k, v);
      const az = await request(u.href, { headers: { accept: 'application/json' } });
      if (az.status === 302 && az.headers.location?.startsWith(CLIENT_REDIRECT)) {
        const loc = new URL(az.headers.location);
        assert.equal(loc.searchParams.get('error'), 'temporarily_unavailable', `authorize: ${az.headers.location}`);
      } else {
        assertUnavailable(az, `authorize (${az.status} ${az.headers.location || ''})`);
      }
    });
  }

  env.redis = await startRedis({ port: env.redis.port, dir: env.redis.dir });
  for (const p of [A, B]) {
    await soft(`${p.name} /health once Redis is back`, async () => {
      await waitFor(async () => (await health(p)).json?.storage?.reachable === true,
        { timeoutMs: 30000, message: `${p.name} /health reporting storage.reachable true again` });
      assert.equal((await health(p)).json.status, 'ok');
    });
  }
  await soft('the refresh token refused while Redis was away, once it is back', async () => {
    const r = await token(B, { grant_type: 'refresh_token', refresh_token: t1.refresh_token, client_id: clientId });
    assert.equal(r.res.status, 200, `refresh on B: ${r.res.body}`);
  });
  await soft('the callback refused while Redis was away, once it is back (the login was not spent)', async () => {
    const cb = await request(halfway.callbackUrl, { jar: halfway.jar });
    assert.equal(cb.status, 303, `callback on B: ${cb.status} ${cb.body.slice(0, 300)}`);
    const code = new URL(cb.headers.location).searchParams.get('code');
    assert.ok(code, `a code: ${cb.headers.location}`);
    remember('authorization code', code);
    const r = await token(A, {
      grant_type: 'authorization_code', code, redirect_uri: CLIENT_REDIRECT, client_id: clientId,
      code_verifier: halfway.pkce.verifier, resource: `${env.issuer}/mcp`,
    });
    assert.equal(r.res.status, 200, `code exchange on A: ${r.res.body}`);
  });
  await soft('a whole login once Redis is back', async () => {
    const t2 = await login(env, { clientId: await registerOk(B), startOn: B, callbackOn: A, tokenOn: B });
    await mcpOk(A, t2.access_token, 'a login after Redis came back');
  });
  assert.deepEqual(problems, [], 'Redis away, then back');
});

test('clients that leave while their verbs wait for a stalled Redis do no harm', async () => {
  const env = await getEnv();
  const redis = await startRedis({ appendonly: false });
  const [C, D] = await Promise.all([startReplica(env, 'C', { redis }), startReplica(env, 'D', { redis })]);
  try {
    const clientId = await registerOk(C);
    const t1 = await login(env, { clientId, startOn: C, callbackOn: C, tokenOn: C });
    await mcpOk(C, t1.access_token, 'before Redis stalls');
    // Redis stops answering (SIGSTOP: the connections stay up, replies never come), and every
    // kind of verb is left waiting by a client that gives up: a registration (the shared rate
    // bucket), a refresh (the DCR client's lookup), an authorization (the same), and an MCP
    // request on D, which has not seen the session (its upstream tokens are fetched).
    redis.proc.kill('SIGSTOP');
    const gaveUp = await Promise.allSettled([
      request(`${C.origin}/oauth/register`, { method: 'POST', body: { redirect_uris: [CLIENT_REDIRECT], client_name: 'leaves', token_endpoint_auth_method: 'none' }, timeoutMs: 300 }),
      request(`${C.origin}/oauth/token`, { method: 'POST', body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: t1.refresh_token, client_id: clientId }), timeoutMs: 300 }),
      request(`${C.origin}/oauth/authorize?response_type=code&client_id=${clientId}&redirect_uri=${encodeURIComponent(CLIENT_REDIRECT)}&code_challenge=${'a'.repeat(43)}&code_challenge_method=S256&state=x`, { timeoutMs: 300 }),
      request(`${D.origin}/mcp`, { method: 'POST', body: { jsonrpc: '2.0', id: 1, method: 'ping' }, headers: { authorization: `Bearer ${t1.access_token}` }, timeoutMs: 300 }),
    ]);
    assert.ok(gaveUp.every((r) => r.status === 'rejected'), `every request waited for Redis: ${JSON.stringify(gaveUp.map((r) => r.value?.status))}`);
    redis.proc.kill('SIGCONT');
    // The replies for the verbs nobody waits for any more arrive (or their read timeout
    // passes) and are dropped; both replicas go on serving.
    await waitFor(async () => (await health(C)).json?.storage?.reachable && (await health(D)).json?.storage?.reachable,
      { timeoutMs: 15000, message: 'both replicas reach Redis again' });
    await registerOk(C);
    await mcpOk(D, t1.access_token, 'after Redis came back');
    const t2 = await token(D, { grant_type: 'refresh_token', refresh_token: t1.refresh_token, client_id: clientId });
    assert.equal(t2.res.status, 200, `refresh after the stall: ${t2.res.body}`);
  } finally {
    redis.proc.kill('SIGCONT');
    await Promise.all([C.stop(), D.stop()]); // asserts a clean exit, no sanitizer report
    await redis.stop();
  }
});

test('an ACL user with a password (aclUserConfig)', async () => {
  const env = await getEnv();
  const prefix = 'mcp-it-acl:';
  const password = crypto.randomBytes(12).toString('hex');
  const redis = await startRedis({
    appendonly: false,
    // exactly the permissions the README names for an operator's user
    args: ['--user', 'default', 'off', '--user', 'mcpproxy', 'on', `>${password}`, `~${prefix}*`, `&${prefix}revoked`,
      '+@read', '+@write', '+@scripting', '+@pubsub', '+ping', '+select', '+role'],
  });
  try {
    const anon = await redis.client();
    await assert.rejects(anon.cmd('PING'), /NOAUTH|NOPERM|auth/i, 'the default user is off');
    anon.close();
    const secrets = { 'redis-user': { username: 'mcpproxy', password } };
    const storage = {
      keyPrefix: prefix,
      aclUserConfig: {
        usernameSecretRef: { name: 'redis-user', key: 'username' },
        passwordSecretRef: { name: 'redis-user', key: 'password' },
      },
    };
    const p = await startReplica(env, 'ACL', { redis, storage, secrets });
    try {
      const clientId = await registerOk(p);
      const t1 = await login(env, { clientId, startOn: p, callbackOn: p, tokenOn: p });
      await mcpOk(p, t1.access_token, 'through the ACL user');
      assert.equal((await health(p)).json?.storage?.reachable, true);
      const c = await redis.client({ user: 'mcpproxy', password });
      const [, keys] = await c.cmd('SCAN', 0, 'COUNT', 1000);
      c.close();
      assert.ok(keys.length > 0 && keys.every((k) => str(k).startsWith(prefix)), keys.map(str).join(' '));
      assert.ok(!p.stderr().includes(password), 'the password is never logged');
    } finally {
      await p.stop();
    }
  } finally {
    await redis.stop();
  }
});

// ---------------------------------------------------------------- Sentinel and TLS

/** A field of INFO <section> on redis r, as a string (undefined if absent). */
async function redisInfo(r, section, field) {
  const c = await r.client();
  try {
    const text = str(await c.cmd('INFO', section));
    return text.split('\r\n').find((l) => l.startsWith(`${field}:`))?.slice(field.length + 1);
  } finally {
    c.close();
  }
}

/** SENTINEL REPLICAS <name> on the sentinel: does it list the replica on port as healthy
 * (flags exactly "slave", master-link-status ok)? Only then has it one to promote. */
async function sentinelKnowsReplica(sentinel, masterName, port) {
  const c = await sentinel.client();
  try {
    const replicas = await c.cmd('SENTINEL', 'REPLICAS', masterName);
    return replicas.some((flat) => {
      const f = {};
      for (let i = 0; i + 1 < flat.length; i += 2) f[str(flat[i])] = str(flat[i + 1]);
      return f.port === String(port) && f.flags === 'slave' && f['master-link-status'] === 'ok';
    });
  } finally {
    c.close();
  }
}

/** SENTINEL get-master-addr-by-name → "host:port" (or null). */
async function sentinelMaster(sentinel, masterName) {
  const c = await sentinel.client();
  try {
    const a = await c.cmd('SENTINEL', 'get-master-addr-by-name', masterName);
    return a ? `${str(a[0])}:${str(a[1])}` : null;
  } finally {
    c.close();
  }
}

/** In dir: a test CA (ca.pem), another CA (other.pem), a server certificate for 127.0.0.1
 * (IP SAN) signed by the first (srv.pem, srv.key); openssl CLI, P-256, one day. */
function makeTestCerts(dir) {
  const run = (...args) => {
    const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    if (r.error || r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.error?.message || r.stderr}`);
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  run('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=mcp-it test CA');
  run('req', '-x509', ...ec, '-keyout', 'other.key', '-out', 'other.pem', '-days', '1', '-subj', '/CN=mcp-it other CA');
  run('req', ...ec, '-keyout', 'srv.key', '-out', 'srv.csr', '-subj', '/CN=redis');
  fs.writeFileSync(path.join(dir, 'ext'), 'subjectAltName=IP:127.0.0.1\n');
  run('x509', '-req', '-in', 'srv.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
    '-out', 'srv.pem', '-days', '1', '-extfile', 'ext');
  return {
    ca: path.join(dir, 'ca.pem'), other: path.join(dir, 'other.pem'),
    cert: path.join(dir, 'srv.pem'), key: path.join(dir, 'srv.key'),
  };
}

/**
 * The cleanup of a case: stop each of these (proxies and redis-servers) that was started.
 * A proxy's stop() fails on a sanitizer report or a bad exit: that error is rethrown when
 * the case itself passed (ok), and only printed when the case failed, so that it does not
 * hide the case's own error.
 */
async function stopAll(ok, ...things) {
  let first;
  for (const x of things) {
    if (!x) continue;
    try { await x.stop(); } catch (e) { first ??= e; }
  }
  if (first && ok) throw first;
  if (first) console.error(`cleanup after a failed case: ${first.stack || first}`);
}

test('Sentinel: the master is killed, the sentinel promotes the replica, logins and refreshes go on without a restart', async (t) => {
  const env = await getEnv();
  const masterName = 'mcp-it';
  let master;
  let replica;
  let sentinel;
  let p;
  let ok = false;
  try {
    // no 5 s wait before the replica's first (diskless) sync
    master = await startRedis({ appendonly: false, args: ['--repl-diskless-sync-delay', '0'] });
    replica = await startRedis({ appendonly: false, replicaOf: master.port });
    await waitFor(async () => (await redisInfo(replica, 'replication', 'master_link_status')) === 'up',
      { timeoutMs: 10000, message: 'the replica\'s master_link_status:up' });
    // Started once the replica is linked: the sentinel learns of it from the master's first INFO.
    sentinel = await startRedis({
      sentinel: { masterName, masterPort: master.port, downAfterMs: 1000, failoverTimeoutMs: 5000 },
    });
    assert.equal(await sentinelMaster(sentinel, masterName), `127.0.0.1:${master.port}`);

    p = await startReplica(env, 'S', {
      redis: master,
      storage: {
        addr: undefined, // sentinelConfig instead
        keyPrefix: 'mcp-it-sentinel:',
        sentinelConfig: { masterName, sentinelAddrs: [`127.0.0.1:${sentinel.port}`] },
      },
    });
    const logs = () => JSON.stringify(p.logs().filter((l) => /store|redis|sentinel/i.test(`${l.msg} ${l.store || ''}`))
      .map((l) => `${l.msg}${l.error ? ` (${l.error})` : ''}${l.port ? ` port ${l.port}` : ''}`));

    const clientId = await registerOk(p);
    const t1 = await login(env, { clientId, startOn: p, callbackOn: p, tokenOn: p });
    await mcpOk(p, t1.access_token, 'before the failover');
    const h = await health(p);
    assert.equal(h.json?.storage?.reachable, true, `/health before the failover: ${h.res.body}`);

    // Everything written so far is on the replica before the master goes: its offset has
    // reached the master's (WAIT on a connection of ours would not do: it waits only for
    // that connection's own writes, and we wrote nothing). And the sentinel lists the
    // replica as healthy, or it would have none to promote.
    const written = Number(await redisInfo(master, 'replication', 'master_repl_offset'));
    assert.ok(written > 0, `the master's replication offset after the login: ${written}`);
    await waitFor(async () => Number(await redisInfo(replica, 'replication', 'slave_repl_offset')) >= written,
      { timeoutMs: 10000, message: `the replica's slave_repl_offset reaching the master's ${written}` });
    await waitFor(() => sentinelKnowsReplica(sentinel, masterName, replica.port),
      { timeoutMs: 20000, message: `SENTINEL REPLICAS ${masterName} listing 127.0.0.1:${replica.port} as a healthy replica` });
    const keysOf = async (r) => {
      const c = await r.client();
      try {
        return (await c.cmd('KEYS', 'mcp-it-sentinel:*')).map(str).sort();
      } finally {
        c.close();
      }
    };
    const masterKeys = await keysOf(master);
    assert.ok(masterKeys.length > 0, 'the proxy wrote keys');
    assert.deepEqual(await keysOf(replica), masterKeys, 'the replica holds the proxy\'s keys');

    const killedAt = Date.now();
    await master.stop({ signal: 'SIGKILL' });
    await waitFor(async () => (await sentinelMaster(sentinel, masterName)) === `127.0.0.1:${replica.port}`,
      { timeoutMs: 30000, intervalMs: 100, message: `the sentinel promoting 127.0.0.1:${replica.port}` });
    const promotedAt = Date.now();
    assert.equal(await redisInfo(replica, 'replication', 'role'), 'master', 'the promoted replica says it is master');

    // The same proxy, not restarted, finds the new master: a registration (a write) works.
    let last;
    await waitFor(async () => {
      last = await register(p);
      return last.status === 201;
    }, { timeoutMs: 20000, intervalMs: 200, message: 'DCR on the proxy after the failover' })
      .catch((e) => { throw new Error(`${e.message}; last: ${last?.status} ${last?.body}; proxy: ${logs()}`); });
    const backAt = Date.now();
    t.diagnostic(`master killed → promoted ${promotedAt - killedAt} ms → proxy writing ${backAt - promotedAt} ms later`);
    assert.equal((await health(p)).json?.storage?.reachable, true, '/health after the failover');

    // The session from before the failover: its refresh token (replicated) still works.
    const r = await token(p, { grant_type: 'refresh_token', refresh_token: t1.refresh_token, client_id: clientId });
    assert.equal(r.res.status, 200, `refresh of the token issued before the failover: ${r.res.body}; proxy: ${logs()}`);
    await mcpOk(p, r.json.access_token, 'refreshed after the failover');
    await mcpOk(p, t1.access_token, 'access token from before the failover');
    // A new login, with the client registered before the failover.
    const t2 = await login(env, { clientId, startOn: p, callbackOn: p, tokenOn: p });
    await mcpOk(p, t2.access_token, 'a login after the failover');
    assert.ok(p.logs().some((l) => /store failover|store connected/.test(l.msg || '')), `the proxy logged the move: ${logs()}`);
    ok = true;
  } finally {
    await stopAll(ok, p, sentinel, replica, master);
  }
});

test('TLS to Redis with a test CA (tls.caCertSecretRef); a proxy trusting another CA gets 503s', async (t) => {
  const env = await getEnv();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-redis-tls-'));
  const certs = makeTestCerts(dir);
  const prefix = 'mcp-it-tls:';
  let redis;
  let good;
  let bad;
  let ok = false;
  try {
    redis = await startRedis({ appendonly: false, tls: certs });
    const c = await redis.client();
    assert.equal(str(await c.cmd('PING')), 'PONG', 'TLS PING with the test CA');
    c.close();

    const tlsStorage = (file) => ({
      keyPrefix: prefix,
      tls: { caCertSecretRef: { name: 'redis-tls', key: 'ca.crt' } },
      secrets: { 'redis-tls': { 'ca.crt': fs.readFileSync(file, 'utf8') } },
    });
    const start = (name, file) => {
      const { secrets, ...storage } = tlsStorage(file);
      return startReplica(env, name, { redis, storage, secrets });
    };

    good = await start('TLS', certs.ca);
    const clientId = await registerOk(good);
    const t1 = await login(env, { clientId, startOn: good, callbackOn: good, tokenOn: good });
    await mcpOk(good, t1.access_token, 'through TLS to Redis');
    const h = await health(good);
    assert.equal(h.json?.storage?.reachable, true, `/health: ${h.res.body}`);
    const c2 = await redis.client();
    try {
      const keys = (await c2.cmd('KEYS', '*')).map(str); // a handful of keys
      assert.ok(keys.length > 0 && keys.every((k) => k.startsWith(prefix)), `keys over TLS: ${keys.join(' ')}`);
    } finally {
      c2.close();
    }

    bad = await start('TLS-other-CA', certs.other);
    const hb = await waitFor(async () => {
      const x = await health(bad);
      return x.json?.storage?.reachable === false && /TLS|certificate/i.test(x.json.storage.error || '') ? x : null;
    }, { timeoutMs: 10000, message: '/health saying storage unreachable, a TLS reason' });
    assert.equal(hb.res.status, 200, 'liveness stays 200');
    assert.equal(hb.json.status, 'degraded', `/health: ${hb.res.body}`);
    assertUnavailable(await register(bad), 'DCR with a Redis whose certificate is not trusted');
    assertUnavailable((await token(bad, { grant_type: 'refresh_token', refresh_token: t1.refresh_token, client_id: clientId })).res,
      'refresh with a Redis whose certificate is not trusted');
    t.diagnostic(`other CA: ${hb.json.storage.error}`);
    ok = true;
  } finally {
    await stopAll(ok, bad, good, redis);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
