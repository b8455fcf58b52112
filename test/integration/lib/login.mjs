// Logins through the embedded AS of replicas that share one issuer, as behind one
// Kubernetes Service. The issuer (env.issuer) is the public URL of the "Service", a port on
// 127.0.0.1 where nothing listens; the helpers talk to each replica on its own port
// (replica.origin) and rewrite every URL of the issuer's origin (the IdP's redirect to
// <issuer>/oauth/callback) to the replica they pick, as a load balancer would.
//
// loginHelpers({remember, clientName}) → {browserLogin, token, login, register, registerOk,
//   upstreamTokens}
// remember(what, ...values) is called with every code and token the helpers see (ours and,
// with an IdP started with revealTokens, the IdP's), e.g. to check later that none of
// them is in Redis or in a log line; clientName is the client_name of register().
// env = {issuer, idp (startIdp()'s, its redirect_uris [<issuer>/oauth/callback])};
// a replica = a startProxy() result with a name.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { request, CookieJar, pkcePair } from './harness.mjs';

/** The client's redirect_uri: nothing listens there (the code is read off the redirect). */
export const CLIENT_REDIRECT = 'http://127.0.0.1:51236/cb';

/** url with the issuer's origin replaced by replica's (what the Service would route). */
export function via(env, url, replica) {
  const u = new URL(url);
  if (u.origin !== env.issuer) return u.href;
  return replica.origin + u.pathname + u.search;
}

export function loginHelpers({ remember = () => {}, clientName = 'mcp-it' } = {}) {
  /** The IdP's tokens so far (the "issued" events of revealTokens), remembered. */
  function upstreamTokens(env) {
    const out = [];
    for (const e of env.idp.events()) {
      if (e.event !== 'issued') continue;
      for (const k of ['access_token', 'refresh_token', 'id_token']) {
        if (e[k]) {
          out.push(e[k]);
          remember(`upstream ${k}`, e[k]);
        }
      }
    }
    return out;
  }

  /**
   * The browser part of a login: GET <startOn>/oauth/authorize, follow redirects (through the
   * IdP) with a cookie jar; the IdP's redirect to <issuer>/oauth/callback goes to callbackOn.
   * → {code, state, iss, error, hops, callbackUrl}
   */
  async function browserLogin(env, { clientId, startOn, callbackOn, scope = 'openid offline_access',
    redirectUri = CLIENT_REDIRECT, pkce = pkcePair(), stopAtCallback = false }) {
    const state = crypto.randomBytes(8).toString('hex');
    const u = new URL(`${startOn.origin}/oauth/authorize`);
    const params = {
      response_type: 'code', client_id: clientId, redirect_uri: redirectUri, scope, state,
      code_challenge: pkce.challenge, code_challenge_method: 'S256', resource: `${env.issuer}/mcp`,
    };
    for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
    const jar = new CookieJar();
    const hops = [];
    let current = u.href;
    let callbackUrl;
    for (let i = 0; i < 30; i += 1) {
      const res = await request(current, { jar });
      const location = res.headers.location ? new URL(res.headers.location, current).href : undefined;
      hops.push({ url: current, status: res.status, location });
      if (res.status < 300 || res.status >= 400 || !location) {
        const e = new Error(`login stopped at ${current}: HTTP ${res.status} ${res.body.slice(0, 400)}`);
        e.response = res;
        e.hops = hops;
        throw e;
      }
      const loc = new URL(location);
      const want = new URL(redirectUri);
      if (loc.origin === want.origin && loc.pathname === want.pathname) {
        const q = loc.searchParams;
        assert.equal(q.get('state'), state, 'state comes back');
        if (q.get('code')) remember('authorization code', q.get('code'));
        return {
          code: q.get('code') ?? undefined, iss: q.get('iss') ?? undefined, error: q.get('error') ?? undefined,
          errorDescription: q.get('error_description') ?? undefined, hops, callbackUrl, pkce, redirectUri,
        };
      }
      current = via(env, location, callbackOn);
      if (new URL(location).origin === env.issuer) {
        callbackUrl = current;
        if (stopAtCallback) return { callbackUrl, jar, hops, pkce, state };
      }
    }
    throw new Error(`login: too many redirects: ${JSON.stringify(hops)}`);
  }

  /** POST <replica>/oauth/token → {res, json}; tokens in the answer are remembered. */
  async function token(replica, form) {
    const res = await request(`${replica.origin}/oauth/token`, { method: 'POST', body: new URLSearchParams(form) });
    let json;
    try { json = JSON.parse(res.body); } catch { json = undefined; }
    if (json) remember('our token', json.access_token, json.refresh_token, json.id_token);
    return { res, json };
  }

  /** A whole login: authorize on startOn, callback on callbackOn, code exchange on tokenOn.
   * → the token response's JSON and clientId. */
  async function login(env, { clientId, startOn, callbackOn, tokenOn }) {
    const r = await browserLogin(env, { clientId, startOn, callbackOn });
    assert.equal(r.error, undefined, `login: ${r.error} ${r.errorDescription}`);
    assert.ok(r.code, 'a code');
    assert.equal(r.iss, env.issuer, 'iss is the shared issuer');
    assert.ok(r.callbackUrl?.startsWith(`${callbackOn.origin}/oauth/callback?`),
      `the callback went to replica ${callbackOn.name}: ${r.callbackUrl}`);
    const { res, json } = await token(tokenOn, {
      grant_type: 'authorization_code', code: r.code, redirect_uri: CLIENT_REDIRECT, client_id: clientId,
      code_verifier: r.pkce.verifier, resource: `${env.issuer}/mcp`,
    });
    assert.equal(res.status, 200, `code exchange on ${tokenOn.name}: ${res.body}`);
    assert.ok(json.access_token && json.refresh_token, 'access and refresh token');
    upstreamTokens(env);
    return { ...json, clientId };
  }

  /** POST <replica>/oauth/register (DCR, a public client for CLIENT_REDIRECT) → the response. */
  async function register(replica, extra = {}) {
    const res = await request(`${replica.origin}/oauth/register`, {
      method: 'POST',
      body: {
        redirect_uris: [CLIENT_REDIRECT], grant_types: ['authorization_code', 'refresh_token'],
        token_endpoint_auth_method: 'none', client_name: clientName, ...extra,
      },
    });
    return res;
  }

  /** A registration that must pass → its client_id. */
  async function registerOk(replica) {
    const res = await register(replica);
    assert.equal(res.status, 201, `DCR on ${replica.name}: ${res.body}`);
    return res.json().client_id;
  }

  return { browserLogin, token, login, register, registerOk, upstreamTokens };
}
