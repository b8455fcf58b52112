#!/usr/bin/env node
// For the sessions bench with AUTH=1: log the IdP peer's user in (authorization code with
// PKCE, the IdP's own login and consent pages followed as a browser would) and print a JWT
// access token for the resource, on one line. Everything on 127.0.0.1.
//
//   node token.mjs <issuer> <resource> <client_id> <client_secret> <redirect_uri>
import crypto from 'node:crypto';
import { request, CookieJar, followAuthorization } from '../../integration/lib/http.mjs';

const [issuer, resource, clientId, clientSecret, redirectUri] = process.argv.slice(2);
const b64url = (b) => b.toString('base64url');
const verifier = b64url(crypto.randomBytes(32));
const challenge = b64url(crypto.createHash('sha256').update(verifier).digest());
const discovery = (await request(`${issuer}/.well-known/openid-configuration`)).json();
const u = new URL(discovery.authorization_endpoint);
for (const [k, v] of Object.entries({
  client_id: clientId, redirect_uri: redirectUri, response_type: 'code', scope: 'openid mcp:tools',
  state: b64url(crypto.randomBytes(6)), code_challenge: challenge, code_challenge_method: 'S256', resource,
})) u.searchParams.set(k, v);
const got = await followAuthorization(u, { redirectUri, jar: new CookieJar() });
if (!got.code) throw new Error(`no code: ${JSON.stringify(got.hops ?? got)}`);
const tok = await request(discovery.token_endpoint, {
  method: 'POST',
  headers: { authorization: 'Basic ' + Buffer.from(`${clientId}:${clientSecret}`).toString('base64') },
  body: new URLSearchParams({ grant_type: 'authorization_code', code: got.code, redirect_uri: redirectUri, code_verifier: verifier, resource }),
});
if (tok.status !== 200) throw new Error(`token: ${tok.status} ${tok.body}`);
process.stdout.write(`${tok.json().access_token}\n`);
