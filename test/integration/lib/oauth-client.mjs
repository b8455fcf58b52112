// The MCP client side of the integration tests and the demo: the pinned SDK
// (test/peers/node_modules/@modelcontextprotocol/sdk), a headless OAuth provider that
// drives the browser part of the login by following redirects with a cookie jar, and
// loginAndConnect/getTokens/connectClient. It does NOT import node:test, so scripts
// (scripts/demo.mjs, scripts/demo-client.mjs) can use it; harness.mjs re-exports all of it.
//
// MCP_SOURCE_DIR (default: three levels up from here) locates test/peers.
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { CookieJar, followAuthorization } from './http.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const SOURCE_DIR = process.env.MCP_SOURCE_DIR || path.resolve(here, '../../..');
const PEERS_DIR = path.join(SOURCE_DIR, 'test/peers');

/** A client metadata document (CIMD) for clientId (= its own URL) and redirect URIs. */
export function clientMetadataDocument(clientId, redirectUris, extra = {}) {
  return {
    client_id: clientId,
    client_name: 'mcp-proxy-runner test client',
    redirect_uris: [].concat(redirectUris),
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
    ...extra,
  };
}

// ---------------------------------------------------------------- MCP client (SDK)

let sdkPromise;
/** Loads @modelcontextprotocol/sdk from test/peers/node_modules (ESM build). */
export function sdk() {
  sdkPromise ??= (async () => {
    const base = path.join(PEERS_DIR, 'node_modules/@modelcontextprotocol/sdk/dist/esm');
    if (!fs.existsSync(base)) throw new Error(`SDK not installed at ${base}: run (cd test/peers && npm ci)`);
    const load = (p) => import(pathToFileURL(path.join(base, p)).href);
    const [client, streamable, sse, auth] = await Promise.all([
      load('client/index.js'), load('client/streamableHttp.js'), load('client/sse.js'), load('client/auth.js'),
    ]);
    return {
      Client: client.Client,
      StreamableHTTPClientTransport: streamable.StreamableHTTPClientTransport,
      SSEClientTransport: sse.SSEClientTransport,
      UnauthorizedError: auth.UnauthorizedError,
      auth: auth.auth,
      authModule: auth,
    };
  })();
  return sdkPromise;
}

/**
 * A fetch that records every request: recordingFetch(log) → fetch; log gets
 * {method, url, status, requestHeaders, requestBody (string/form bodies), responseHeaders} entries (status null on network error).
 */
export function recordingFetch(log, baseFetch = globalThis.fetch) {
  return async (input, init = {}) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const entry = {
      method: init.method || (typeof input === 'object' && input.method) || 'GET',
      url: String(url),
      requestHeaders: Object.fromEntries(new Headers(init.headers || {}).entries()),
      requestBody: typeof init.body === 'string' || init.body instanceof URLSearchParams ? String(init.body) : undefined,
      status: null,
    };
    log.push(entry);
    const res = await baseFetch(input, init);
    entry.status = res.status;
    entry.responseHeaders = Object.fromEntries(res.headers.entries());
    return res;
  };
}

/**
 * HeadlessOAuthProvider — an OAuthClientProvider for the SDK whose
 * redirectToAuthorization(url) follows the authorization URL with manual redirects and a
 * cookie jar (through the AS and the upstream IdP) until the Location reaches redirectUrl,
 * and keeps the code in .pendingCode (nothing listens on redirectUrl).
 * new HeadlessOAuthProvider({redirectUrl="http://127.0.0.1:33418/callback", clientMetadataUrl,
 *   clientMetadata (overrides), clientInformation (pre-registered), jar, ca, caFile, scope,
 *   onHop (called with each redirect hop {url,status,location} of the authorization flow)})
 * Fields for tests: tokenHistory (every saveTokens), authorizationUrls, lastAuthorization
 * (followAuthorization result), pendingCode, registered (saveClientInformation value).
 */
export class HeadlessOAuthProvider {
  constructor({ redirectUrl = 'http://127.0.0.1:33418/callback', clientMetadataUrl, clientMetadata = {},
    clientInformation, jar, ca, caFile, scope, onHop } = {}) {
    this._redirectUrl = redirectUrl;
    this.clientMetadataUrl = clientMetadataUrl;
    this._clientMetadata = {
      client_name: 'mcp-proxy-runner headless test client',
      redirect_uris: [redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      ...(scope ? { scope } : {}),
      ...clientMetadata,
    };
    this._clientInformation = clientInformation;
    this._tokens = undefined;
    this._verifier = undefined;
    this._state = undefined;
    this.jar = jar || new CookieJar();
    this.ca = ca;
    this.caFile = caFile;
    this.onHop = onHop;
    this.tokenHistory = [];
    this.authorizationUrls = [];
    this.lastAuthorization = undefined;
    this.pendingCode = undefined;
    this.registered = undefined;
  }

  get redirectUrl() { return this._redirectUrl; }

  get clientMetadata() { return this._clientMetadata; }

  state() {
    this._state = crypto.randomBytes(16).toString('base64url');
    return this._state;
  }

  clientInformation() { return this._clientInformation; }

  saveClientInformation(info) {
    this._clientInformation = info;
    this.registered = info;
  }

  tokens() { return this._tokens; }

  saveTokens(tokens) {
    this._tokens = tokens;
    this.tokenHistory.push(tokens);
  }

  saveCodeVerifier(v) { this._verifier = v; }

  codeVerifier() {
    if (!this._verifier) throw new Error('no code verifier saved');
    return this._verifier;
  }

  invalidateCredentials(scope) {
    if (scope === 'all' || scope === 'client') this._clientInformation = undefined;
    if (scope === 'all' || scope === 'tokens') this._tokens = undefined;
    if (scope === 'all' || scope === 'verifier') this._verifier = undefined;
  }

  async redirectToAuthorization(url) {
    this.authorizationUrls.push(String(url));
    this.pendingCode = undefined;
    let result;
    try {
      result = await followAuthorization(url, {
        redirectUri: this._redirectUrl, jar: this.jar, ca: this.ca, caFile: this.caFile, onHop: this.onHop,
      });
    } catch (e) {
      throw authorizationPageError(e);
    }
    this.lastAuthorization = result;
    if (result.error) {
      const e = new Error(`authorization failed: ${result.error} ${result.errorDescription || ''}`.trim());
      e.authorization = result;
      throw e;
    }
    if (this._state && result.state !== this._state) {
      const e = new Error(`authorization response state mismatch: sent ${this._state}, got ${result.state}`);
      e.authorization = result;
      throw e;
    }
    if (!result.code) {
      const e = new Error(`authorization response has no code: ${result.location}`);
      e.authorization = result;
      throw e;
    }
    this.pendingCode = result.code;
  }
}

const HTML_ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'", '#x27': "'", apos: "'" };
const unescapeHtml = (s) => s.replace(/&(amp|lt|gt|quot|#39|#x27|apos);/g, (m, k) => HTML_ENTITIES[k]);

/**
 * The flow stopped on a page instead of a redirect (e.g. the AS's 400 page for a client it
 * cannot trust): an Error whose message names the page and the OAuth error shown on it
 * (JSON {error, error_description}, or an HTML page with elements id="error" and
 * id="error_description"), keeping .response, .hops, .oauthError and .cause.
 */
function authorizationPageError(e) {
  const res = e.response;
  if (!res) return e;
  let oauthError;
  try {
    const j = JSON.parse(res.body);
    if (j && typeof j.error === 'string') oauthError = { error: j.error, error_description: j.error_description };
  } catch {
    const err = /id="error"[^>]*>([^<]*)</.exec(res.body);
    const desc = /id="error_description"[^>]*>([^<]*)</.exec(res.body);
    if (err) oauthError = { error: unescapeHtml(err[1]), error_description: desc ? unescapeHtml(desc[1]) : undefined };
  }
  const last = e.hops?.[e.hops.length - 1]?.url;
  const where = last ? (() => { const u = new URL(last); return u.origin + u.pathname; })() : 'the authorization URL';
  const what = oauthError
    ? `${oauthError.error}${oauthError.error_description ? `: ${oauthError.error_description}` : ''}`
    : res.body.slice(0, 300);
  const out = new Error(`authorization failed at ${where}: HTTP ${res.status} ${what}`, { cause: e });
  out.response = res;
  out.hops = e.hops;
  out.oauthError = oauthError;
  return out;
}

function makeTransport(S, transport, mcpUrl, provider, fetchFn, requestInit) {
  const o = { authProvider: provider };
  if (fetchFn) o.fetch = fetchFn;
  if (requestInit) o.requestInit = requestInit;
  if (transport === 'sse') return new S.SSEClientTransport(new URL(mcpUrl), o);
  return new S.StreamableHTTPClientTransport(new URL(mcpUrl), o);
}

/**
 * loginAndConnect({mcpUrl, transport="streamable-http"|"sse", clientMetadataUrl, redirectUrl,
 *   caFile, ca, provider, fetchLog, requestInit, clientInfo, baseFetch, t}) → Promise<Client>
 * (baseFetch: the fetch under the recording one, default globalThis.fetch.)
 * Connects an SDK Client to mcpUrl with OAuth: the first connect gets 401, the SDK discovers
 * (RFC 9728 → RFC 8414), registers (DCR) or uses clientMetadataUrl as client_id (CIMD, when the
 * AS advertises client_id_metadata_document_supported), and calls redirectToAuthorization; the
 * HeadlessOAuthProvider follows it to the code; then transport.finishAuth(code) exchanges it and
 * a new transport + Client connect with the token.
 * The returned Client has extra fields: .oauth (the provider: tokens(), tokenHistory,
 * lastAuthorization, registered …), .mcpTransport, .fetchLog (every HTTP request the SDK made,
 * if fetchLog was given or not: always recorded).
 * Errors from the authorization flow propagate (err.authorization / err.hops / err.response).
 */
export async function loginAndConnect({ mcpUrl, transport = 'streamable-http', clientMetadataUrl, redirectUrl,
  caFile, ca, provider, fetchLog = [], requestInit, clientInfo = { name: 'mcp-proxy-runner-test', version: '0.0.0' },
  baseFetch,
  t } = {}) {
  const S = await sdk();
  const p = provider || new HeadlessOAuthProvider({ redirectUrl, clientMetadataUrl, caFile, ca });
  const fetchFn = recordingFetch(fetchLog, baseFetch);
  let tr = makeTransport(S, transport, mcpUrl, p, fetchFn, requestInit);
  let client = new S.Client(clientInfo);
  let needAuth = false;
  try {
    await client.connect(tr);
  } catch (e) {
    if (!(e instanceof S.UnauthorizedError) || !p.pendingCode) throw e;
    needAuth = true;
  }
  if (needAuth) {
    await tr.finishAuth(p.pendingCode);
    try { await client.close(); } catch { /* ignore */ }
    tr = makeTransport(S, transport, mcpUrl, p, fetchFn, requestInit);
    client = new S.Client(clientInfo);
    await client.connect(tr);
  }
  client.oauth = p;
  client.mcpTransport = tr;
  client.fetchLog = fetchLog;
  if (t && typeof t.after === 'function') t.after(async () => { try { await client.close(); } catch { /* ignore */ } });
  return client;
}

/**
 * getTokens({mcpUrl, clientMetadataUrl, redirectUrl, caFile, provider, fetchLog}) → Promise<{tokens, provider}>
 * Runs only the SDK's auth() (discovery, registration/CIMD, headless authorization, code
 * exchange) without an MCP session; for tests that then craft raw HTTP requests.
 */
export async function getTokens({ mcpUrl, clientMetadataUrl, redirectUrl, caFile, ca, provider, fetchLog = [], scope, resourceMetadataUrl } = {}) {
  const S = await sdk();
  const p = provider || new HeadlessOAuthProvider({ redirectUrl, clientMetadataUrl, caFile, ca });
  const fetchFn = recordingFetch(fetchLog);
  const opts = { serverUrl: mcpUrl, fetchFn, scope, resourceMetadataUrl: resourceMetadataUrl ? new URL(resourceMetadataUrl) : undefined };
  let r = await S.auth(p, opts);
  if (r === 'REDIRECT') {
    if (!p.pendingCode) throw new Error('authorization produced no code');
    r = await S.auth(p, { ...opts, authorizationCode: p.pendingCode });
  }
  if (r !== 'AUTHORIZED') throw new Error(`auth() returned ${r}`);
  return { tokens: p.tokens(), provider: p, fetchLog };
}

/** Connect an SDK Client without auth (e.g. directly to a backend). → Promise<Client> */
export async function connectClient({ url, transport = 'streamable-http', headers, t,
  clientInfo = { name: 'mcp-proxy-runner-test', version: '0.0.0' } } = {}) {
  const S = await sdk();
  const requestInit = headers ? { headers } : undefined;
  const tr = transport === 'sse'
    ? new S.SSEClientTransport(new URL(url), { requestInit, eventSourceInit: headers ? { fetch: (u, i) => fetch(u, { ...i, headers: { ...(i?.headers || {}), ...headers } }) } : undefined })
    : new S.StreamableHTTPClientTransport(new URL(url), { requestInit });
  const client = new S.Client(clientInfo);
  await client.connect(tr);
  if (t && typeof t.after === 'function') t.after(async () => { try { await client.close(); } catch { /* ignore */ } });
  return client;
}
