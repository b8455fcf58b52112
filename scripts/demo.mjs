#!/usr/bin/env node
// The demo orchestrator behind scripts/demo.sh (README command 1). Everything on 127.0.0.1:
//
//   demo MCP server   test/peers/backend.mjs (server-everything, streamable HTTP), ephemeral port
//   demo IdP          test/peers/idp.mjs (oidc-provider; logs "alice" in without a form)
//   CIMD doc host     test/peers/doc-host.mjs: HTTPS with a CA generated into <state>/ca,
//                     serving the demo client's metadata document
//   the proxy         mcp-proxy-runner on 127.0.0.1:$MCP_DEMO_PORT (8080), diagnostics on
//                     $MCP_DEMO_DIAG_PORT (9464), auth.mode embedded, CIMD enabled
//
// It checks what the running build can do (discovery, RFC 9728 metadata, the 401 from the
// guard) and says plainly what does not work yet, writes <state>/demo.json for
// scripts/demo-client.mjs, prints the URLs and commands, and on Ctrl-C (SIGINT/SIGTERM)
// sends the proxy SIGTERM, then stops the peers, and reports every exit code.
//
// Environment: MCP_PROXY_BIN (required; demo.sh sets it), MCP_DEMO_PORT, MCP_DEMO_DIAG_PORT,
// MCP_DEMO_DIR (default <repo>/.demo).
import { spawn } from 'node:child_process';
import net from 'node:net';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { createTestCA } from '../test/integration/lib/ca.mjs';
import { request } from '../test/integration/lib/http.mjs';
import { clientMetadataDocument } from '../test/integration/lib/oauth-client.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PEERS = path.join(ROOT, 'test/peers');
const STATE = path.resolve(process.env.MCP_DEMO_DIR || path.join(ROOT, '.demo'));
const LOGS = path.join(STATE, 'logs');
const BIN = process.env.MCP_PROXY_BIN || path.join(ROOT, 'build/mcp-proxy-runner');
const PORT = Number(process.env.MCP_DEMO_PORT || 8080);
const DIAG_PORT = Number(process.env.MCP_DEMO_DIAG_PORT || 9464);
const CLIENT_REDIRECT = 'http://127.0.0.1:33418/callback'; // the scripted client's; nothing listens there
const DOC_PATH = '/demo/client-metadata.json';
const tty = process.stdout.isTTY;
const c = (code, s) => (tty ? `\x1b[${code}m${s}\x1b[0m` : s);
const bold = (s) => c('1', s);
const green = (s) => c('32', s);
const red = (s) => c('31', s);
const dim = (s) => c('2', s);
const rel = (p) => path.relative(process.cwd(), p) || '.';
// The pinned Node.js the demo runs on (scripts/install-node.sh), for the commands it prints.
const PINNED_NODE = fs.existsSync(path.join(ROOT, 'tools/node/bin/node')) ? path.join(ROOT, 'tools/node/bin/node') : null;

function fail(msg) {
  process.stderr.write(`${red('demo:')} ${msg}\n`);
  process.exit(1);
}

// ------------------------------------------------------------------ children

const children = []; // {name, proc, exited, exitPromise}

function startChild(name, cmd, args, { env = {}, detached = false, onStdoutLine, onStderrLine } = {}) {
  const logFile = fs.createWriteStream(path.join(LOGS, `${name}.log`), { flags: 'w' });
  const proc = spawn(cmd, args, {
    cwd: name === 'proxy' ? ROOT : PEERS,
    env: { ...process.env, NODE_OPTIONS: '', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
    // The proxy gets its own process group so a terminal Ctrl-C reaches only us and we
    // can send it exactly one SIGTERM, in order.
    detached,
  });
  const child = { name, proc, exited: null, stderrTail: [] };
  child.exitPromise = new Promise((resolve) => {
    proc.on('exit', (code, signal) => { child.exited = { code, signal }; resolve(child.exited); });
  });
  child.closed = new Promise((resolve) => proc.on('close', resolve));
  proc.on('error', (e) => { child.spawnError = e; });
  const lines = (stream, cb, tail) => {
    let buf = '';
    stream.setEncoding('utf8');
    stream.on('data', (d) => {
      logFile.write(d);
      buf += d;
      const parts = buf.split('\n');
      buf = parts.pop();
      for (const l of parts) {
        if (tail) { tail.push(l); if (tail.length > 30) tail.shift(); }
        cb?.(l);
      }
    });
  };
  lines(proc.stdout, onStdoutLine);
  lines(proc.stderr, onStderrLine, child.stderrTail);
  proc.on('close', () => logFile.end());
  children.push(child);
  return child;
}

/** Start a test/peers script and wait for its one ready JSON line ({"listening":port,…}). */
function startPeer(name, script, args) {
  return new Promise((resolve, reject) => {
    let ready = false;
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 20 s; see ${rel(path.join(LOGS, name + '.log'))}`)), 20000);
    const child = startChild(name, process.execPath, [path.join(PEERS, script), ...args], {
      env: { PEER_EXIT_ON_STDIN_EOF: '1' }, // peers exit when we die, whatever way
      onStdoutLine: (l) => {
        if (ready || !l.startsWith('{')) return;
        try {
          const info = JSON.parse(l);
          if ('listening' in info) {
            ready = true;
            child.info = info;
            clearTimeout(timer);
            resolve(child);
          }
        } catch { /* not JSON */ }
      },
    });
    child.exitPromise.then((e) => {
      clearTimeout(timer);
      if (!ready) reject(new Error(`${name} exited (code ${e.code}, signal ${e.signal}) before it was ready:\n${child.stderrTail.join('\n')}`));
    });
  });
}

// A compact rendering of the proxy's JSON log lines for the terminal (the full lines are in
// <state>/logs/proxy.log).
let quietProxy = true; // until the banner is out, only warnings and errors are echoed
function showProxyLine(line) {
  let o;
  try { o = JSON.parse(line); } catch { if (line.trim()) process.stdout.write(`${dim('proxy |')} ${line}\n`); return; }
  if (o.level === 'debug') return;
  if (quietProxy && o.level === 'info') return;
  const { ts, level, msg, ...rest } = o;
  const fields = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ');
  const lv = level === 'error' ? red(level) : level === 'warn' ? c('33', level) : level;
  process.stdout.write(`${dim('proxy |')} ${lv} ${bold(msg)} ${dim(fields)}\n`);
}

// ------------------------------------------------------------------ shutdown

let shuttingDown = false;
async function shutdown(reason, exitCode = 0) {
  if (shuttingDown) return;
  shuttingDown = true;
  quietProxy = true;
  process.stdout.write(`\n${bold('demo: stopping')} (${reason})\n`);
  let ok = exitCode === 0;
  const report = (child, res, expected) => {
    const how = res.signal ? `signal ${res.signal}` : `exit code ${res.code}`;
    const good = expected(res);
    if (!good) ok = false;
    process.stdout.write(`  ${good ? green('✔') : red('✘')} ${child.name} stopped: ${how}\n`);
  };
  // The proxy first, with SIGTERM, so it drains while its peers are still up.
  const proxy = children.find((ch) => ch.name === 'proxy');
  const order = [proxy, ...children.filter((ch) => ch !== proxy).reverse()].filter(Boolean);
  for (const child of order) {
    if (child.exited) {
      report(child, child.exited, (r) => child.name !== 'proxy' || (r.code === 0 && !r.signal));
      continue;
    }
    child.proc.kill('SIGTERM');
    const limit = child.name === 'proxy' ? 15000 : 5000;
    let timer;
    const res = await Promise.race([child.exitPromise,
      new Promise((r) => { timer = setTimeout(() => r(null), limit); })]);
    clearTimeout(timer);
    if (!res) {
      child.proc.kill('SIGKILL');
      const r = await child.exitPromise;
      process.stdout.write(`  ${red('✘')} ${child.name} did not stop within ${limit / 1000} s after SIGTERM; killed (${r.signal})\n`);
      ok = false;
      continue;
    }
    // peers exit 0 on SIGTERM; node reports a SIGTERM death as signal when it had no handler
    report(child, res, (r) => r.code === 0 || (child.name !== 'proxy' && r.signal === 'SIGTERM'));
  }
  process.stdout.write(`logs: ${rel(LOGS)}/\n`);
  process.exit(ok ? exitCode : (exitCode || 1));
}

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => { shutdown(sig); });
process.on('exit', () => {
  for (const ch of children) if (!ch.exited) { try { ch.proc.kill('SIGKILL'); } catch { /* gone */ } }
});

// ------------------------------------------------------------------ helpers

function portFree(port) {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', (e) => resolve(e.code || String(e)));
    s.listen({ host: '127.0.0.1', port, exclusive: true }, () => s.close(() => resolve(null)));
  });
}

async function probe(url, opts = {}) {
  try {
    return await request(url, { timeoutMs: 5000, ...opts });
  } catch (e) {
    return { status: 0, error: e.message, headers: {}, body: '' };
  }
}

function yamlQuote(s) { return JSON.stringify(String(s)); }

// ------------------------------------------------------------------ main

async function main() {
  if (!fs.existsSync(BIN)) fail(`no proxy binary at ${BIN} (run ./scripts/demo.sh, which builds it, or set MCP_PROXY_BIN)`);
  if (!fs.existsSync(path.join(PEERS, 'node_modules/@modelcontextprotocol/server-everything'))) {
    fail('test/peers/node_modules is missing: run ./scripts/demo.sh (or: cd test/peers && npm ci)');
  }
  for (const [what, port, env] of [['MCP', PORT, 'MCP_DEMO_PORT'], ['diagnostics', DIAG_PORT, 'MCP_DEMO_DIAG_PORT']]) {
    if (!Number.isInteger(port) || port < 1 || port > 65535) fail(`${env}=${process.env[env]} is not a port number`);
    const err = await portFree(port);
    if (err) {
      fail(`127.0.0.1:${port} (the proxy's ${what} port) is not free (${err}); something else listens there.\n`
        + `      Stop it, or choose another port: ${env}=${port + 1} ./scripts/demo.sh`);
    }
  }
  if (PORT === DIAG_PORT) fail('MCP_DEMO_PORT and MCP_DEMO_DIAG_PORT must differ');

  fs.rmSync(STATE, { recursive: true, force: true });
  fs.mkdirSync(LOGS, { recursive: true });
  fs.writeFileSync(path.join(STATE, '.gitignore'), '*\n'); // nothing in here belongs in git

  process.stdout.write(dim('demo: generating a local CA for the HTTPS document host ...\n'));
  const ca = await createTestCA({ dir: path.join(STATE, 'ca') });

  const origin = `http://127.0.0.1:${PORT}`;
  const mcpUrl = `${origin}/mcp`;
  const callback = `${origin}/oauth/callback`;
  const idpClientId = 'mcp-proxy-demo';
  const idpSecret = crypto.randomBytes(18).toString('base64url');

  process.stdout.write(dim('demo: starting the demo MCP server, IdP and document host ...\n'));
  const [backend, idp, docs] = await Promise.all([
    startPeer('backend', 'backend.mjs', ['streamable-http', '0']),
    startPeer('idp', 'idp.mjs', [JSON.stringify({
      client_id: idpClientId,
      client_secret: idpSecret,
      redirect_uris: [callback, `http://localhost:${PORT}/oauth/callback`],
    })]),
    startPeer('doc-host', 'doc-host.mjs', [JSON.stringify({ certFile: ca.certFile, keyFile: ca.keyFile })]),
  ]);
  const backendUrl = `http://127.0.0.1:${backend.info.listening}`;
  const idpIssuer = idp.info.issuer;
  const docOrigin = `https://127.0.0.1:${docs.info.listening}`;
  const clientMetadataUrl = docOrigin + DOC_PATH;
  const doc = clientMetadataDocument(clientMetadataUrl, [CLIENT_REDIRECT], {
    client_name: 'mcp-proxy-runner demo client',
    client_uri: docOrigin + '/demo/',
  });
  const put = await request(`http://127.0.0.1:${docs.info.controlPort}/docs?path=${encodeURIComponent(DOC_PATH)}`,
    { method: 'PUT', body: { json: doc, headers: { 'Cache-Control': 'max-age=300' } } });
  if (put.status !== 200) throw new Error(`doc-host refused the demo document: ${put.status} ${put.body}`);

  const secretsDir = path.join(STATE, 'secrets');
  fs.mkdirSync(path.join(secretsDir, 'idp'), { recursive: true, mode: 0o700 });
  fs.writeFileSync(path.join(secretsDir, 'idp', 'client_secret'), idpSecret, { mode: 0o600 });
  const configFile = path.join(STATE, 'proxy.yaml');
  fs.writeFileSync(configFile, `# Written by scripts/demo.mjs; regenerated on every run.
server:
  listen: "127.0.0.1:${PORT}"
  diagnosticsListen: "127.0.0.1:${DIAG_PORT}"
  resourceUrl: ${yamlQuote(mcpUrl)}
  drainTimeout: 5s
backend:
  url: ${yamlQuote(backendUrl)}          # the demo MCP server (server-everything)
  transport: streamable-http
auth:
  mode: embedded
outbound:
  caFile: ${yamlQuote(ca.caFile)}   # trusts the demo document host's CA (plus the system CAs)
embeddedAuthServer:
  issuer: ${yamlQuote(origin)}
  insecureAllowHTTP: true            # demo only: http issuer and http IdP on loopback
  upstreamProviders:
    - name: demo-idp
      type: oidc
      oidcConfig:
        issuerUrl: ${yamlQuote(idpIssuer)}
        clientId: ${yamlQuote(idpClientId)}
        clientSecretRef:
          name: idp
          key: client_secret
  baselineClientScopes: [openid, offline_access]
  cimd:
    enabled: true
    cacheMaxSize: 256
    cacheFallbackTtl: '5m'
    insecureAllowLoopback: true      # demo only: the document host is on 127.0.0.1
  tokenLifespans:
    accessTokenLifespan: '1h'
    refreshTokenLifespan: '168h'
    authCodeLifespan: '10m'
`);

  // ---- the proxy
  process.stdout.write(dim(`demo: starting ${rel(BIN)} --config ${rel(configFile)} ...\n`));
  const listening = {};
  let startedResolve;
  const started = new Promise((r) => { startedResolve = r; });
  const proxy = startChild('proxy', BIN, ['--config', configFile], {
    env: { MCP_PROXY_SECRETS_DIR: secretsDir },
    detached: true,
    onStderrLine: (l) => {
      showProxyLine(l);
      try {
        const o = JSON.parse(l);
        if (o.msg === 'listening' && o.listener) listening[o.listener] = o;
        if (listening.mcp && listening.diagnostics) startedResolve(true);
      } catch { /* not JSON */ }
    },
  });
  proxy.exitPromise.then(() => startedResolve(false));
  let timer;
  const up = await Promise.race([started, new Promise((r) => { timer = setTimeout(() => r(null), 10000); })]);
  clearTimeout(timer);
  if (!up) {
    await proxy.closed.catch(() => {});
    const why = proxy.exited ? `exited (code ${proxy.exited.code}, signal ${proxy.exited.signal})` : 'did not report its listeners within 10 s';
    process.stderr.write(`${red('demo: the proxy ' + why)}; its last output:\n${proxy.stderrTail.join('\n')}\n`);
    await shutdown('the proxy did not start', 1);
    return;
  }

  // ---- what does this build do?
  const diagUrl = `http://127.0.0.1:${DIAG_PORT}`;
  const discoveryUrl = `${origin}/.well-known/oauth-authorization-server`;
  const prmUrl = `${origin}/.well-known/oauth-protected-resource/mcp`;
  const status = [];
  const ok = (s) => status.push(`  ${green('✔')} ${s}`);
  const no = (s) => status.push(`  ${red('✘ NOT YET')} ${s}`);
  const disc = await probe(discoveryUrl);
  let discJson;
  try { discJson = disc.status === 200 ? disc.json() : undefined; } catch { /* not JSON */ }
  if (discJson?.client_id_metadata_document_supported === true) {
    ok(`AS discovery advertises "client_id_metadata_document_supported": true (${discoveryUrl})`);
  } else if (discJson) {
    no(`AS discovery answers but does not advertise client_id_metadata_document_supported (CIMD)`);
  } else {
    no(`embedded authorization server: GET ${discoveryUrl} → ${disc.status || disc.error} ${(disc.body || '').slice(0, 160)}`);
  }
  const prm = await probe(prmUrl);
  if (prm.status === 200) ok(`protected-resource metadata (RFC 9728): ${prmUrl}`);
  else no(`protected-resource metadata (RFC 9728): GET ${prmUrl} → ${prm.status || prm.error} ${(prm.body || '').slice(0, 160)}`);
  const anon = await probe(mcpUrl, {
    method: 'POST',
    headers: { accept: 'application/json, text/event-stream' },
    body: { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'demo-probe', version: '0' } } },
  });
  const wwwAuth = anon.headers['www-authenticate'];
  if (anon.status === 401 && /resource_metadata=/.test(wwwAuth || '')) ok(`bearer guard: POST ${mcpUrl} without a token → 401, WWW-Authenticate: ${wwwAuth}`);
  else no(`bearer guard: POST ${mcpUrl} without a token → ${anon.status || anon.error} ${(anon.body || '').slice(0, 200)} (expected 401 with resource_metadata)`);
  const health = await probe(`${diagUrl}/health`);
  let healthJson;
  try { healthJson = health.json(); } catch { /* not JSON */ }
  if (health.status === 200 && healthJson?.status !== 'degraded') ok(`proxy health ${diagUrl}/health: ${healthJson?.status ?? health.body}`);
  else no(`proxy health ${diagUrl}/health → ${health.status || health.error} ${health.body}`);
  const allGood = status.every((s) => !s.includes('NOT YET'));

  const demoJson = {
    mcpUrl, origin, discoveryUrl, protectedResourceMetadataUrl: prmUrl, diagUrl,
    clientMetadataUrl, clientRedirectUrl: CLIENT_REDIRECT, caFile: ca.caFile,
    backendUrl, idpIssuer, configFile, logs: LOGS, pid: process.pid, ready: allGood,
  };
  fs.writeFileSync(path.join(STATE, 'demo.json'), JSON.stringify(demoJson, null, 2) + '\n');

  const curlHost = PORT === 8080 ? 'localhost:8080' : `localhost:${PORT}`;
  const out = [
    '',
    bold('mcp-proxy-runner demo') + ' — everything listens on 127.0.0.1; Ctrl-C stops it all',
    '',
    `  MCP URL (give it to your MCP client)  ${bold(mcpUrl)}`,
    `  AS discovery                          ${discoveryUrl}`,
    `  protected-resource metadata           ${prmUrl}`,
    `  metrics / health                      ${diagUrl}/metrics   ${diagUrl}/health`,
    '',
    `  demo MCP server (server-everything)   ${backend.info.path ? backendUrl + backend.info.path : backendUrl}  (reached only through the proxy)`,
    `  demo IdP (oidc-provider)              ${idpIssuer}  (logs you in as "alice" without a form)`,
    `  demo client metadata document (CIMD)  ${clientMetadataUrl}`,
    `                                        (HTTPS with the demo CA ${rel(ca.caFile)})`,
    `  proxy config / state / logs           ${rel(configFile)}   ${rel(STATE)}/   ${rel(LOGS)}/`,
    '',
    bold('Check that CIMD is advertised') + ' (the guide\'s "Verify the configuration" step):',
    `  curl -s http://${curlHost}/.well-known/oauth-authorization-server | python3 -m json.tool | grep client_id_metadata_document`,
    '',
    bold('Log in with a scripted MCP client (CIMD) and call a tool') + ' (401 → discovery → authorize → IdP login → token → initialize → tools/list → tools/call echo):',
    `  ${PINNED_NODE ? rel(PINNED_NODE) : 'node'} ${rel(path.join(ROOT, 'scripts/demo-client.mjs'))}`,
    '',
    bold('What this build does:'),
    ...status,
    '',
  ];
  if (!allGood) {
    out.push(red('Some pieces are not in this build yet (see ✘ above): the login and the MCP traffic through the proxy'),
      red('will fail at that point; demo-client.mjs shows where.'), '');
  }
  out.push(dim('Proxy log lines follow (full JSON in the log file). Ctrl-C to stop.'), '');
  process.stdout.write(out.join('\n') + '\n');
  quietProxy = false;

  // A child that dies on its own ends the demo.
  for (const ch of children) {
    ch.exitPromise.then((e) => {
      if (!shuttingDown) {
        process.stderr.write(`${red(`demo: ${ch.name} exited unexpectedly (code ${e.code}, signal ${e.signal})`)}\n${ch.stderrTail.slice(-10).join('\n')}\n`);
        shutdown(`${ch.name} exited`, 1);
      }
    });
  }
}

main().catch((e) => {
  process.stderr.write(`${red('demo:')} ${e.stack || e.message}\n`);
  shutdown('start-up failed', 1);
});
