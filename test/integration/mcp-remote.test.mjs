// mcp-remote (the stdio bridge Claude Desktop uses for remote servers) logs in through the
// proxy's embedded AS and speaks MCP through it, driven headless: the test reads the
// authorization URL it prints on stderr instead of a browser opening, follows it through the
// test IdP to mcp-remote's own callback listener, then writes JSON-RPC on its stdin.
// By default mcp-remote registers (DCR); with --client-metadata-url it uses CIMD.
// Peers, all on 127.0.0.1: server-everything, oidc-provider, the HTTPS document host.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  startProxy, startIdp, startDocHost, startBackend, getFreePort, request, followAuthorization,
  clientMetadataDocument, PEERS_DIR, SLOW, embeddedAS, idpSecrets,
} from './lib/harness.mjs';

const BRIDGE = path.join(PEERS_DIR, 'node_modules/mcp-remote/dist/proxy.js');

async function setup(t) {
  const port = await getFreePort();
  const origin = `http://127.0.0.1:${port}`;
  const idp = await startIdp({ redirect_uris: [`${origin}/oauth/callback`] }, { t });
  const docs = await startDocHost({ t });
  const backend = await startBackend('streamable-http', { t });
  const proxy = await startProxy({
    server: { resourceUrl: `${origin}/mcp` },
    backend: { url: backend.url },
    auth: { mode: 'embedded' },
    outbound: { caFile: docs.caFile },
    embeddedAuthServer: embeddedAS(origin, idp, {
      baselineClientScopes: ['openid', 'offline_access'],
      cimd: { enabled: true, insecureAllowLoopback: true },
    }),
  }, { t, port, secrets: idpSecrets(idp) });
  return { proxy, idp, docs, mcpUrl: `${origin}/mcp` };
}

/**
 * Start mcp-remote for mcpUrl with a callback listener on 127.0.0.1:callbackPort and its
 * token store in a fresh directory. → { child, authUrl (a promise), rpc(msg) → reply, stderr() }.
 */
function startBridge(t, mcpUrl, callbackPort, extraArgs = []) {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-remote-'));
  const child = spawn(process.execPath, [BRIDGE, mcpUrl, String(callbackPort), '--host', '127.0.0.1', ...extraArgs], {
    env: { ...process.env, HOME: home, MCP_REMOTE_CONFIG_DIR: path.join(home, 'auth'), BROWSER: 'true', DISPLAY: '' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let err = '';
  let out = '';
  const waiting = new Map();
  let resolveUrl;
  const authUrl = new Promise((r) => { resolveUrl = r; });
  child.stderr.on('data', (d) => {
    err += d;
    const m = err.match(/Please authorize this client by visiting:\s*(\S+)/);
    if (m) resolveUrl(m[1]);
  });
  child.stdout.on('data', (d) => {
    out += d;
    let nl;
    while ((nl = out.indexOf('\n')) >= 0) {
      const line = out.slice(0, nl);
      out = out.slice(nl + 1);
      if (!line.trim()) continue;
      const msg = JSON.parse(line);
      if (msg.id !== undefined && waiting.has(msg.id)) {
        waiting.get(msg.id)(msg);
        waiting.delete(msg.id);
      }
    }
  });
  t.after(() => {
    child.kill('SIGTERM');
    fs.rmSync(home, { recursive: true, force: true });
  });
  const rpc = (msg, timeoutMs = 30000 * SLOW) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer to ${msg.method} from mcp-remote; its stderr:\n${err}`)), timeoutMs);
    waiting.set(msg.id, (m) => { clearTimeout(timer); resolve(m); });
    child.stdin.write(`${JSON.stringify(msg)}\n`);
  });
  return { child, authUrl, rpc, stderr: () => err };
}

/** Log in through the printed URL (the IdP logs alice in) and talk MCP through the bridge. */
async function loginAndUse(bridge, callbackPort) {
  // initialize starts the connection; the 401 makes mcp-remote print the authorization URL.
  const init = bridge.rpc({
    jsonrpc: '2.0', id: 1, method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'test', version: '1' } },
  }, 60000 * SLOW);
  const url = await Promise.race([bridge.authUrl,
    new Promise((_, rej) => setTimeout(() => rej(new Error(`no authorization URL; stderr:\n${bridge.stderr()}`)), 30000 * SLOW))]);
  const redirectUri = `http://127.0.0.1:${callbackPort}/oauth/callback`;
  const flow = await followAuthorization(url, { redirectUri });
  assert.ok(flow.code, `a code came back: ${flow.location}`);
  // Deliver the code to mcp-remote's callback listener, as the browser would.
  const cb = await request(flow.location);
  assert.equal(cb.status, 200, `mcp-remote's callback: ${cb.body}`);
  const r = await init;
  assert.ok(r.result?.serverInfo?.name, `initialize through mcp-remote: ${JSON.stringify(r)}`);
  bridge.child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' })}\n`);
  const list = await bridge.rpc({ jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} });
  const names = (list.result?.tools || []).map((x) => x.name);
  assert.ok(names.includes('echo'), `tools/list through mcp-remote: ${JSON.stringify(list).slice(0, 300)}`);
  const call = await bridge.rpc({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'echo', arguments: { message: 'via mcp-remote' } } });
  assert.match(JSON.stringify(call.result), /Echo: via mcp-remote/);
  return new URL(url);
}

test('mcp-remote registers (DCR), logs in and calls a tool', async (t) => {
  const { proxy, idp, mcpUrl } = await setup(t);
  const callbackPort = await getFreePort();
  const bridge = startBridge(t, mcpUrl, callbackPort);
  const authz = await loginAndUse(bridge, callbackPort);
  assert.equal(authz.origin + authz.pathname, `${proxy.origin}/oauth/authorize`);
  assert.doesNotMatch(authz.searchParams.get('client_id'), /^https:/, 'a registered client_id, not a URL');
  assert.equal(authz.searchParams.get('code_challenge_method'), 'S256');
  assert.equal((await idp.stats()).logins, 1);
});

test('mcp-remote with --client-metadata-url logs in through CIMD without registering', async (t) => {
  const { proxy, idp, docs, mcpUrl } = await setup(t);
  const callbackPort = await getFreePort();
  const clientId = docs.url('/clients/mcp-remote.json');
  await docs.setDocument('/clients/mcp-remote.json', clientMetadataDocument(clientId,
    [`http://127.0.0.1:${callbackPort}/oauth/callback`, `http://localhost:${callbackPort}/oauth/callback`],
    { client_name: 'mcp-remote (test)' }));
  const bridge = startBridge(t, mcpUrl, callbackPort, ['--client-metadata-url', clientId]);
  const authz = await loginAndUse(bridge, callbackPort);
  assert.equal(authz.searchParams.get('client_id'), clientId);
  assert.ok((await docs.stats()).requests['/clients/mcp-remote.json'] >= 1, 'the AS fetched the document');
  const reg = await request(`${proxy.diagUrl}/metrics`);
  assert.doesNotMatch(reg.body, /route="oauth_register"[^\n]*status="201"/, 'no registration');
  assert.equal((await idp.stats()).logins, 1);
});
