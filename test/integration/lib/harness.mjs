// Integration-test harness: starts the proxy binary and the peers, all on 127.0.0.1,
// and cleans everything up. See the API summary at each export.
//
// Every start*() accepts an optional `t` (node:test TestContext) in its options:
// with it, the resource is stopped in t.after(); without it, it is stopped by a
// file-level after() hook. Children are SIGKILLed if the test process exits, and
// peers also exit when their stdin closes (i.e. when this process dies).
import { spawn } from 'node:child_process';
import { after } from 'node:test';
import net from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { request, CookieJar, followAuthorization } from './http.mjs';
import { getTestCA } from './ca.mjs';

export { request, CookieJar, followAuthorization };
export { getTestCA, createTestCA, issueLeaf } from './ca.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
export const SOURCE_DIR = process.env.MCP_SOURCE_DIR || path.resolve(here, '../../..');
export const PEERS_DIR = path.join(SOURCE_DIR, 'test/peers');
export const PROXY_BIN = process.env.MCP_PROXY_BIN || '';
export const SANITIZE = process.env.MCP_SANITIZE === '1';
/** multiply timeouts by this under ASan/UBSan */
export const SLOW = SANITIZE ? 3 : 1;
export const SANITIZER_PATTERNS = [/ERROR: AddressSanitizer/, /ERROR: LeakSanitizer/, /runtime error:/,
  /SUMMARY: UndefinedBehaviorSanitizer/, /SUMMARY: AddressSanitizer/];

// ---------------------------------------------------------------- cleanup

const live = new Set(); // {stop(), kill()}
process.on('exit', () => {
  for (const r of live) {
    try { r.kill(); } catch { /* ignore */ }
  }
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(sig, () => {
    for (const r of live) {
      try { r.kill(); } catch { /* ignore */ }
    }
    process.exit(128 + (os.constants.signals[sig] || 15));
  });
}
after(async () => {
  const errors = [];
  for (const r of [...live].reverse()) {
    try { await r.stop(); } catch (e) { errors.push(e); }
  }
  if (errors.length) throw errors[0];
});

function track(resource, t) {
  live.add(resource);
  const origStop = resource.stop;
  let stopping;
  resource.stop = (...a) => {
    stopping ??= (async () => {
      try { return await origStop(...a); } finally { live.delete(resource); }
    })();
    return stopping;
  };
  if (t && typeof t.after === 'function') t.after(() => resource.stop());
  return resource;
}

const tmpDirs = [];
function mkTmp(prefix) {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tmpDirs.push(d);
  return d;
}
process.on('exit', () => {
  if (process.env.MCP_KEEP_TMP === '1') return;
  for (const d of tmpDirs) {
    try { fs.rmSync(d, { recursive: true, force: true }); } catch { /* ignore */ }
  }
});

// ---------------------------------------------------------------- helpers

/** The kernel's ephemeral range [lo, hi]: the source ports of outgoing connections and what
 *  a listen on port 0 gets. */
function ephemeralRange() {
  try {
    const [lo, hi] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (lo > 0 && hi >= lo) return [lo, hi];
  } catch { /* not Linux: below */ }
  return [32768, 60999];
}

function tryListen(port) {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.once('error', (e) => (e.code === 'EADDRINUSE' || e.code === 'EACCES' ? resolve(0) : reject(e)));
    s.listen({ host: '127.0.0.1', port }, () => {
      const got = s.address().port;
      s.close(() => resolve(got));
    });
  });
}

/** A TCP port that was free a moment ago on 127.0.0.1, below the kernel's ephemeral range:
 *  a port handed out before it is bound (a proxy's, when the IdP must know its redirect URI
 *  first) can then not be taken meanwhile as the source port of some outgoing connection (any
 *  test's, wrk's) — that made a start-up fail with "address already in use" now and then. */
export async function getFreePort() {
  const [lo] = ephemeralRange();
  const base = 10000;
  if (lo - base >= 1000) {
    for (let i = 0; i < 100; i++) {
      const port = await tryListen(base + crypto.randomInt(lo - base));
      if (port) return port;
    }
  }
  return tryListen(0);
}

/** Split text into lines and JSON.parse those that are JSON objects; others are skipped. */
export function parseJsonLines(text) {
  const out = [];
  for (const line of String(text).split('\n')) {
    const s = line.trim();
    if (!s.startsWith('{')) continue;
    try { out.push(JSON.parse(s)); } catch { /* not JSON */ }
  }
  return out;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** promise's value, or `fallback` after ms (the timer is cleared, so it never holds the loop). */
function within(promise, ms, fallback = null) {
  let timer;
  return Promise.race([
    promise,
    new Promise((r) => { timer = setTimeout(() => r(fallback), ms); }),
  ]).finally(() => clearTimeout(timer));
}

/** Poll fn() until it returns a truthy value (returned) or timeoutMs passes (throws). */
export async function waitFor(fn, { timeoutMs = 5000, intervalMs = 50, message = 'condition' } = {}) {
  const end = Date.now() + timeoutMs * SLOW;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) { last = e; }
    if (Date.now() > end) throw new Error(`timed out waiting for ${message} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await sleep(intervalMs);
  }
}

function substitute(value, vars) {
  if (typeof value === 'string') return value.replace(/\{\{(\w+)\}\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
  if (Array.isArray(value)) return value.map((v) => substitute(v, vars));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, vars)]));
  }
  return value;
}

/** Write {secretName: {key: value}} as <dir>/<secretName>/<key> (a Kubernetes Secret mount). */
export function writeSecrets(secrets = {}, dir = mkTmp('mcp-secrets-')) {
  for (const [name, keys] of Object.entries(secrets)) {
    fs.mkdirSync(path.join(dir, name), { recursive: true });
    for (const [key, value] of Object.entries(keys)) fs.writeFileSync(path.join(dir, name, key), String(value));
  }
  return dir;
}

function sanitizerFindings(text) {
  return text.split('\n').filter((l) => SANITIZER_PATTERNS.some((re) => re.test(l)));
}

// ---------------------------------------------------------------- the proxy

/**
 * startProxy(config, {env, secrets, args, t, port, waitFor, timeoutMs, secretsDir}) → Promise<proxy>
 *   config: object, or function ({port, origin}) → object. Strings may contain {{port}} and
 *     {{origin}} (= http://127.0.0.1:<port>), replaced before writing. server.listen defaults
 *     to "127.0.0.1:<port>" and server.diagnosticsListen to "127.0.0.1:0".
 *   secrets: {secretName: {key: value}} written under a temp MCP_PROXY_SECRETS_DIR (always set).
 *   env: extra environment for the binary. args: extra argv after --config <file>.
 *   wrap: a command line to run the binary under (e.g. ['prlimit', '--nofile=256', '--']);
 *     proc is then that command, which must exec the binary (prlimit does).
 *   port: use this MCP port (e.g. from getFreePort(), when a peer such as the IdP must know the
 *     proxy's callback URL before the proxy starts); no EADDRINUSE retry then.
 *   waitFor: listeners to wait for (default ["mcp","diagnostics"]; omitted ones whose
 *     listen address is "" are skipped). Start-up timeout 10 s (×3 under sanitizers).
 * proxy = {port, diagPort, origin ("http://127.0.0.1:<port>"), mcpUrl (server.resourceUrl or
 *   origin+"/mcp"), diagUrl, config (as written), configFile, secretsDir, proc,
 *   logs() → parsed stderr JSON lines so far, stderr() → raw text, stdout() → raw text,
 *   waitForLog(pred, {timeoutMs}) → the first log line matching pred,
 *   stop({signal="SIGTERM", expectCode=0, timeoutMs}) → Promise<logs[]>:
 *     signals, waits, asserts the exit code and that stderr has no sanitizer report;
 *     idempotent; a proxy that already exited is only checked.}
 */
export async function startProxy(config, opts = {}) {
  if (!PROXY_BIN) throw new Error('MCP_PROXY_BIN is not set (run through ctest, or export it)');
  let lastErr;
  for (let attempt = 0; attempt < 2; attempt += 1) {
    try {
      return await startProxyOnce(config, opts);
    } catch (e) {
      lastErr = e;
      if (!e.addressInUse || opts.port) throw e;
    }
  }
  throw lastErr;
}

async function startProxyOnce(configIn, { env = {}, secrets, args = [], t, waitFor: wanted, timeoutMs = 10000, secretsDir, port: fixedPort, wrap = [] } = {}) {
  const port = fixedPort || await getFreePort();
  const origin = `http://127.0.0.1:${port}`;
  let config = typeof configIn === 'function' ? configIn({ port, origin }) : structuredClone(configIn ?? {});
  config = substitute(config, { port, origin });
  config.server = { listen: `127.0.0.1:${port}`, diagnosticsListen: '127.0.0.1:0', ...(config.server || {}) };
  const dir = mkTmp('mcp-proxy-');
  const configFile = path.join(dir, 'config.json');
  fs.writeFileSync(configFile, JSON.stringify(config, null, 2));
  const sdir = secretsDir || writeSecrets(secrets || {}, path.join(dir, 'secrets'));
  fs.mkdirSync(sdir, { recursive: true });

  const want = wanted || ['mcp', 'diagnostics'].filter((l) => !(l === 'diagnostics' && config.server.diagnosticsListen === ''));
  const argv = [...wrap, PROXY_BIN, '--config', configFile, ...args];
  const proc = spawn(argv[0], argv.slice(1), {
    cwd: SOURCE_DIR,
    env: { ...process.env, MCP_PROXY_SECRETS_DIR: sdir, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout = '';
  let logLines = [];
  let partial = '';
  const listeners = {};
  const waiters = new Set();
  proc.stderr.setEncoding('utf8');
  proc.stdout.setEncoding('utf8');
  proc.stdout.on('data', (d) => { stdout += d; });
  proc.stderr.on('data', (d) => {
    stderr += d;
    partial += d;
    const lines = partial.split('\n');
    partial = lines.pop();
    for (const l of parseJsonLines(lines.join('\n'))) {
      logLines.push(l);
      if (l.msg === 'listening' && l.listener) listeners[l.listener] = l;
      for (const w of waiters) w();
    }
  });
  let exited = null;
  const exitPromise = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      exited = { code, signal };
      for (const w of waiters) w();
      resolve(exited);
    });
  });
  const closedPromise = new Promise((resolve) => proc.on('close', resolve));
  proc.on('error', (e) => { stderr += `\n[spawn error] ${e.message}\n`; });

  const deadline = timeoutMs * SLOW;
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      waiters.delete(check);
      proc.kill('SIGKILL');
      reject(new Error(`proxy did not report listeners ${want.join(',')} within ${deadline} ms; stderr:\n${stderr}`));
    }, deadline);
    function check() {
      if (want.every((l) => listeners[l])) {
        clearTimeout(timer);
        waiters.delete(check);
        resolve();
      } else if (exited) {
        clearTimeout(timer);
        waiters.delete(check);
        closedPromise.then(() => {
          const e = new Error(`proxy exited during start-up (code ${exited.code}, signal ${exited.signal}); stderr:\n${stderr}`);
          e.addressInUse = /EADDRINUSE|address already in use/i.test(stderr);
          e.stderr = stderr;
          reject(e);
        });
      }
    }
    waiters.add(check);
    check();
  });

  const diagPort = listeners.diagnostics?.port;
  const proxy = {
    port: listeners.mcp?.port ?? port,
    diagPort,
    origin,
    mcpUrl: config.server.resourceUrl || `${origin}/mcp`,
    diagUrl: diagPort ? `http://127.0.0.1:${diagPort}` : undefined,
    config,
    configFile,
    secretsDir: sdir,
    proc,
    logs: () => logLines.slice(),
    stderr: () => stderr,
    stdout: () => stdout,
    exited: () => exited,
    waitForLog(pred, { timeoutMs: ms = 5000 } = {}) {
      return waitFor(() => logLines.find(pred), { timeoutMs: ms, message: 'a matching proxy log line' });
    },
    kill() { if (!exited) proc.kill('SIGKILL'); },
    async stop({ signal = 'SIGTERM', expectCode = 0, timeoutMs: ms = 10000 } = {}) {
      if (!exited) proc.kill(signal);
      const limit = ms * SLOW;
      const res = await within(exitPromise, limit);
      if (!res) {
        proc.kill('SIGKILL');
        await exitPromise;
        throw new Error(`proxy did not exit within ${limit} ms after ${signal}; stderr:\n${stderr}`);
      }
      await within(closedPromise, 2000);
      if (partial.trim()) {
        logLines.push(...parseJsonLines(partial));
        partial = '';
      }
      const findings = sanitizerFindings(stderr);
      if (findings.length) {
        throw new Error(`sanitizer report in proxy stderr:\n${findings.join('\n')}\n--- full stderr:\n${stderr}`);
      }
      if (expectCode !== null && (res.code !== expectCode || res.signal)) {
        throw new Error(`proxy exit code ${res.code} signal ${res.signal}, expected ${expectCode}; stderr:\n${stderr}`);
      }
      return logLines.slice();
    },
  };
  return track(proxy, t);
}

/**
 * runProxy(args, {config, env, secrets, timeoutMs=10000, allowSanitizer=false}) →
 *   Promise<{code, signal, stdout, stderr, logs}>
 * Runs the binary to completion (e.g. --check-config, --print-config, a bad config).
 * With `config` (object), "--config <file>" is prepended to args. Rejects on a sanitizer report.
 */
export async function runProxy(args = [], { config, env = {}, secrets, timeoutMs = 10000, allowSanitizer = false, input } = {}) {
  if (!PROXY_BIN) throw new Error('MCP_PROXY_BIN is not set');
  const dir = mkTmp('mcp-run-');
  const sdir = writeSecrets(secrets || {}, path.join(dir, 'secrets'));
  const argv = [...args];
  let configFile;
  if (config !== undefined) {
    configFile = path.join(dir, typeof config === 'string' ? 'config.yaml' : 'config.json');
    fs.writeFileSync(configFile, typeof config === 'string' ? config : JSON.stringify(config, null, 2));
    argv.unshift('--config', configFile);
  }
  const proc = spawn(PROXY_BIN, argv, {
    cwd: SOURCE_DIR,
    env: { ...process.env, MCP_PROXY_SECRETS_DIR: sdir, ...env },
    stdio: [input !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  });
  if (input !== undefined) proc.stdin.end(input);
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d) => { stdout += d; });
  proc.stderr.on('data', (d) => { stderr += d; });
  const limit = timeoutMs * SLOW;
  const timer = setTimeout(() => proc.kill('SIGKILL'), limit);
  const [code, signal] = await new Promise((resolve) => proc.on('close', (c, s) => resolve([c, s])));
  clearTimeout(timer);
  if (signal === 'SIGKILL') throw new Error(`proxy ${argv.join(' ')} did not finish within ${limit} ms; stderr:\n${stderr}`);
  const findings = sanitizerFindings(stderr);
  if (findings.length && !allowSanitizer) throw new Error(`sanitizer report:\n${findings.join('\n')}\n--- stderr:\n${stderr}`);
  return { code, signal, stdout, stderr, logs: parseJsonLines(stderr), configFile };
}

// ---------------------------------------------------------------- peers

/**
 * spawnPeer(script, args, {env, t, timeoutMs}) → Promise<{info (the ready JSON line), port, proc,
 *   events() (later stdout JSON lines), stderr(), stop()}>
 * script is a file name in test/peers (e.g. "echo-backend.mjs").
 */
export async function spawnPeer(script, args = [], opts = {}) {
  // A peer that is not ready in time is started once more: in one of ten full CI runs
  // an oidc-provider process printed its start-up warning and then nothing for 45 s,
  // which no local reproduction (many starts, ~0.4 s each) has shown again.
  try {
    return await spawnPeerOnce(script, args, opts);
  } catch (e) {
    if (!e.notReady) throw e;
    process.stderr.write(`harness: ${e.message}\nharness: starting ${script} once more\n`);
    return spawnPeerOnce(script, args, opts);
  }
}

async function spawnPeerOnce(script, args = [], { env = {}, t, timeoutMs = 30000 } = {}) {
  const proc = spawn(process.execPath, [path.join(PEERS_DIR, script), ...args.map(String)], {
    cwd: PEERS_DIR,
    env: { ...process.env, ...env, PEER_EXIT_ON_STDIN_EOF: '1', NODE_OPTIONS: '' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  let out = '';
  const events = [];
  let info;
  let exited = null;
  proc.stderr.setEncoding('utf8');
  proc.stdout.setEncoding('utf8');
  proc.stderr.on('data', (d) => { stderr += d; });
  const exitPromise = new Promise((resolve) => proc.on('exit', (code, signal) => { exited = { code, signal }; resolve(exited); }));
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      const e = new Error(`peer ${script} not ready within ${timeoutMs} ms; stdout so far: ${JSON.stringify(out)}; stderr:\n${stderr}`);
      e.notReady = true;
      reject(e);
    }, timeoutMs);
    proc.stdout.on('data', (d) => {
      out += d;
      const lines = out.split('\n');
      out = lines.pop();
      for (const l of parseJsonLines(lines.join('\n'))) {
        if (!info && 'listening' in l) {
          info = l;
          clearTimeout(timer);
          resolve();
        } else {
          events.push(l);
        }
      }
    });
    exitPromise.then((e) => {
      if (!info) {
        clearTimeout(timer);
        reject(new Error(`peer ${script} exited (code ${e.code}, signal ${e.signal}) before ready; stderr:\n${stderr}`));
      }
    });
  });
  const peer = {
    info,
    port: info.listening,
    proc,
    events: () => events.slice(),
    stderr: () => stderr,
    kill() { if (!exited) proc.kill('SIGKILL'); },
    async stop() {
      if (!exited) {
        proc.kill('SIGTERM');
        const r = await within(exitPromise, 5000);
        if (!r) {
          proc.kill('SIGKILL');
          await exitPromise;
        }
      }
    },
  };
  return track(peer, t);
}

/**
 * startBackend(mode="streamable-http"|"sse", {t, port}) → {port, url (origin), mcpUrl
 *   (url+"/mcp" or url+"/sse"), mode, stderr(), stop()}  — server-everything on 127.0.0.1.
 *   SSE mode: GET /sse, POST /message?sessionId=…
 */
export async function startBackend(mode = 'streamable-http', { t, port = 0 } = {}) {
  const peer = await spawnPeer('backend.mjs', [mode, port], { t });
  const url = `http://127.0.0.1:${peer.port}`;
  return Object.assign(peer, { url, mode: peer.info.mode, mcpUrl: url + peer.info.path });
}

/**
 * embeddedAS(issuer, idp, opts) → the embeddedAuthServer block of a test proxy that federates
 *   its logins to idp (startIdp()'s): the issuer, plain HTTP allowed (loopback only), one OIDC
 *   upstream whose client secret is the "idp" Secret's (idpSecrets(idp)). opts: name (the
 *   upstream's, default 'idp'), oidc (more oidcConfig keys), upstream (another upstream
 *   instead), and any more embeddedAuthServer keys (baselineClientScopes, cimd, storage, …).
 */
export function embeddedAS(issuer, idp, { name = 'idp', oidc = {}, upstream, ...more } = {}) {
  return {
    issuer,
    insecureAllowHTTP: true,
    upstreamProviders: [upstream ?? {
      name,
      type: 'oidc',
      oidcConfig: {
        issuerUrl: idp.issuer,
        clientId: idp.clientId,
        clientSecretRef: { name: 'idp', key: 'client_secret' },
        ...oidc,
      },
    }],
    ...more,
  };
}

/** The secrets embeddedAS() names: idpSecrets(idp) → {idp: {client_secret}}. */
export function idpSecrets(idp) {
  return { idp: { client_secret: idp.clientSecret } };
}

/**
 * startPySseBackend({t, port}) → {port, url, mcpUrl (url+"/sse"), stop()} — a legacy SSE
 *   backend framed as the Python SDK's (CRLF, /messages/?session_id=…): test/peers/py-sse-backend.mjs.
 */
export async function startPySseBackend({ t, port = 0 } = {}) {
  const peer = await spawnPeer('py-sse-backend.mjs', [port], { t });
  const url = `http://127.0.0.1:${peer.port}`;
  return Object.assign(peer, { url, mode: 'sse', mcpUrl: url + '/sse' });
}

/**
 * startEchoBackend({t, port}) → {port, url, stats() → GET /__echo/stats, reset(), stop()}
 *   See test/peers/echo-backend.mjs for query parameters (delay, sse, size, status, …).
 */
export async function startEchoBackend({ t, port = 0 } = {}) {
  const peer = await spawnPeer('echo-backend.mjs', [port], { t });
  const url = `http://127.0.0.1:${peer.port}`;
  return Object.assign(peer, {
    url,
    stats: async () => (await request(`${url}/__echo/stats`)).json(),
    reset: async () => { await request(`${url}/__echo/reset`, { method: 'POST' }); },
  });
}

/**
 * startIdp(opts, {t}) → {port, issuer, url, clientId, clientSecret, redirectUris, discovery()
 *   → openid-configuration JSON, stats(), control({deny, accessTokenTTL}), reset(),
 *   events() (stdout event lines: login, login_denied, token, token_error …), stop()}
 * opts: see test/peers/idp.mjs (client_id, client_secret, redirect_uris, deny,
 *   accessTokenTTL, refreshTokenTTL, requirePkce, resources, user, …).
 */
export async function startIdp(opts = {}, { t } = {}) {
  const o = {
    client_id: 'upstream-client',
    client_secret: 'upstream-secret-' + crypto.randomBytes(8).toString('hex'),
    ...opts,
  };
  const peer = await spawnPeer('idp.mjs', [JSON.stringify(o)], { t });
  const url = peer.info.issuer;
  return Object.assign(peer, {
    issuer: url,
    url,
    clientId: o.clients ? o.clients[0].client_id : o.client_id,
    clientSecret: o.clients ? o.clients[0].client_secret : o.client_secret,
    redirectUris: o.clients ? o.clients[0].redirect_uris : (o.redirect_uris || ['http://127.0.0.1/callback']),
    discovery: async () => (await request(`${url}/.well-known/openid-configuration`)).json(),
    stats: async () => (await request(`${url}/__idp/stats`)).json(),
    control: async (settings) => (await request(`${url}/__idp/control`, { method: 'POST', body: settings })).json(),
    reset: async () => { await request(`${url}/__idp/reset`, { method: 'POST' }); },
  });
}

/**
 * startDocHost({t, http=false, ca}) → {port, origin ("https://127.0.0.1:<port>"),
 *   url(path) → origin+path, controlUrl, httpPort, httpOrigin, ca (the test CA object:
 *   caFile, ca, certFile, keyFile, dir), caFile,
 *   set(path, spec) — spec as in test/peers/doc-host.mjs ({json, status, contentType, delayMs,
 *     headers, etag, lastModified, oversizeBytes, chunked, hangup, body, bodyDelayMs});
 *     a spec without json/body keys is taken as the JSON document itself
 *   setDocument(path, json, extra) — shorthand for set(path, {json, ...extra})
 *   remove(path), clear(), stats() → {connections:{https,http,tlsErrors}, requests,
 *   connectionsByPath, notModified, log}, reset(), stop()}
 * The TLS certificate covers 127.0.0.1, ::1 and localhost and is signed by the test CA.
 */
export async function startDocHost({ t, http = false, ca } = {}) {
  const theCa = ca || await getTestCA();
  const peer = await spawnPeer('doc-host.mjs', [JSON.stringify({ certFile: theCa.certFile, keyFile: theCa.keyFile, http })], { t });
  const origin = `https://127.0.0.1:${peer.port}`;
  const controlUrl = `http://127.0.0.1:${peer.info.controlPort}`;
  const SPEC_KEYS = ['json', 'body'];
  const host = Object.assign(peer, {
    origin,
    url: (p) => origin + p,
    controlUrl,
    httpPort: peer.info.httpPort,
    httpOrigin: peer.info.httpPort ? `http://127.0.0.1:${peer.info.httpPort}` : undefined,
    ca: theCa,
    caFile: theCa.caFile,
    async set(p, spec) {
      const s = spec && typeof spec === 'object' && SPEC_KEYS.some((k) => k in spec) ? spec : { json: spec };
      const r = await request(`${controlUrl}/docs?path=${encodeURIComponent(p)}`, { method: 'PUT', body: s });
      if (r.status !== 200) throw new Error(`doc-host set ${p}: ${r.status} ${r.body}`);
      return origin + p;
    },
    setDocument: (p, json, extra = {}) => host.set(p, { ...extra, json }),
    remove: async (p) => { await request(`${controlUrl}/docs?path=${encodeURIComponent(p)}`, { method: 'DELETE' }); },
    clear: async () => { await request(`${controlUrl}/docs`, { method: 'DELETE' }); },
    stats: async () => (await request(`${controlUrl}/stats`)).json(),
    reset: async () => { await request(`${controlUrl}/reset`, { method: 'POST' }); },
  });
  return host;
}

/**
 * startReferenceServer({t}) → {port, url, mcpUrl, events(), stop()}
 *   An OAuth-protected MCP server made only of SDK parts (test/peers/reference-as.mjs):
 *   its AS approves at once (no IdP, no login) and supports DCR but not CIMD.
 */
export async function startReferenceServer({ t, port = 0 } = {}) {
  const peer = await spawnPeer('reference-as.mjs', [port], { t });
  return Object.assign(peer, { url: `http://127.0.0.1:${peer.port}`, mcpUrl: peer.info.mcpUrl });
}

export {
  clientMetadataDocument, sdk, recordingFetch, HeadlessOAuthProvider, loginAndConnect, getTokens, connectClient,
} from './oauth-client.mjs';

/** PKCE pair: {verifier, challenge} (S256). */
export function pkcePair() {
  const verifier = crypto.randomBytes(32).toString('base64url');
  const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
  return { verifier, challenge };
}

/** Decode a JWT's header and payload without verifying. */
export function decodeJwt(token) {
  const [h, p] = String(token).split('.');
  return {
    header: JSON.parse(Buffer.from(h, 'base64url').toString()),
    payload: JSON.parse(Buffer.from(p, 'base64url').toString()),
  };
}

/** Assert-free scan: log lines (objects) whose JSON text contains any of the given secrets. */
export function logsContaining(logLines, secrets) {
  const needles = [].concat(secrets).filter(Boolean).map(String);
  return logLines.filter((l) => {
    const s = typeof l === 'string' ? l : JSON.stringify(l);
    return needles.some((n) => s.includes(n));
  });
}

/** Fetch a proxy's Prometheus metrics text and parse samples: → Map("name{labels}" → number). */
export async function scrapeMetrics(diagUrl) {
  const r = await request(`${diagUrl}/metrics`);
  const m = new Map();
  for (const line of r.body.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  m.text = r.body;
  return m;
}
