#!/usr/bin/env node
// Benchmarks of the auth side of mcp-proxy-runner, all on 127.0.0.1, run by hand (not in ctest).
// Start it through run.sh (CPU pinning, wrk/nginx check); directly:
//
//   MCP_PROXY_BIN=build-bench/mcp-proxy-runner node test/bench/auth/auth-bench.mjs [tokens] [cimd] [guard] [policy]
//
//   tokens  AS token issuance: logins through the IdP (authorize → IdP → callback → code), then
//           the /oauth/token code exchange alone (pre-collected codes, each once: wrk + code.lua,
//           and a node driver over NODE_CODES of them as a cross-check), then refresh_token
//           grants (rotating chains: wrk + refresh.lua, and a node driver, one worker per chain).
//   cimd    /oauth/authorize for a cached CIMD client (wrk; 302 counts as success), then CIMD_N
//           distinct client URLs at once against a doc host answering after CIMD_DELAY ms, with
//           GET /health (diagnostics listener) sampled every 10 ms by health_probe.py.
//   guard   POST /mcp with a bearer token: guard on (embedded AS) vs auth none vs nginx, to an
//           nginx `return 200` backend, interleaved rounds of wrk.
//   policy  the same tools/call with the guard, with 20 `authorization` rules (the matching one
//           last) vs without the section, and a tools/list whose six-tool answer the policy
//           filters to three (list.lua): the MCP-level check's cost (target ≤ 10 %).
//   storage POST /mcp with the guard on, the AS's state in memory vs on a local redis-server,
//           interleaved rounds (target: redis ≥ 0.95× memory: the hot path never waits for it).
//   STORAGE=redis runs the other modes with their AS on Redis (tokens: code exchanges and
//           refresh grants per second with Redis).
//
// Knobs (environment): DURATION=10 CONNS=32 ROUNDS=3 CHAINS=50 CODES=8000 NODE_CODES=2000 LOGIN_CONC=16
//   CIMD_N=1000 CIMD_DELAY=200 PROXY_CPU=0 (taskset -pc for the proxies and front nginx; ""=none)
//   OUT=<file> (JSON results; default /tmp/auth-bench-<time>.json)
//   PERF=1: perf record -g the proxy during the CIMD burst and one extra guard-on/off run each
//   CALLGRIND=1 (policy): the proxies run under valgrind's callgrind, and each round reports the
//     instructions the proxy executed per request (user space, counted: the same on a loaded
//     host) instead of CPU time; throughput is then callgrind's, not the proxy's
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import crypto from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import {
  startProxy, startIdp, startDocHost, getFreePort, request, followAuthorization, CookieJar, pkcePair,
  sleep, PROXY_BIN,
} from '../../integration/lib/harness.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const num = (k, d) => (process.env[k] !== undefined && process.env[k] !== '' ? Number(process.env[k]) : d);
const DURATION = num('DURATION', 10);
const CONNS = num('CONNS', 32);
const ROUNDS = num('ROUNDS', 3);
const CHAINS = num('CHAINS', 50);
const CODES = num('CODES', 8000);
const NODE_CODES = num('NODE_CODES', 2000);
const LOGIN_CONC = num('LOGIN_CONC', 16);
const CIMD_N = num('CIMD_N', 1000);
const CIMD_DELAY = num('CIMD_DELAY', 200);
const STORAGE = process.env.STORAGE || 'memory';
const PROXY_CPU = process.env.PROXY_CPU ?? (os.cpus().length >= 2 ? '0' : '');
const OUT = process.env.OUT || `/tmp/auth-bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
const CLIENT_REDIRECT = 'http://127.0.0.1:51299/cb';
const WORK = fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-auth-bench-'));
const results = { machine: {}, params: { DURATION, CONNS, ROUNDS, CHAINS, CODES, LOGIN_CONC, CIMD_N, CIMD_DELAY, PROXY_CPU, STORAGE } };
const children = [];
process.on('exit', () => {
  // nginx masters get SIGTERM: they stop their workers (SIGKILL would orphan them)
  for (const c of children) try { c.kill(c.nginx ? 'SIGTERM' : 'SIGKILL'); } catch { /* gone */ }
  if (process.env.KEEP !== '1') fs.rmSync(WORK, { recursive: true, force: true });
});

const say = (...a) => console.log(...a);
const load = () => fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

// ------------------------------------------------------------------ helpers

function pin(pid) {
  if (PROXY_CPU !== '') execFileSync('taskset', ['-pc', PROXY_CPU, String(pid)], { stdio: 'ignore' });
}

function pct(arr, p) {
  if (!arr.length) return NaN;
  const s = [...arr].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))];
}
const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : String(x));
const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : String(x));
const median = (a) => pct(a, 0.5);

function toMs(v) {
  if (!v) return NaN;
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(v);
  if (!m) return NaN;
  return Number(m[1]) * { us: 0.001, ms: 1, s: 1000, m: 60000 }[m[2]];
}

/** CPU use from now: → () => {proxyCpu, driverCpu (% of one CPU over the interval), proxyCpuS
 *  (seconds of CPU the process ran)}; /proc/<pid>/schedstat, nanoseconds. */
function procCpuNs(pid) {
  return Number(fs.readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]);
}
/** [user, system] CPU seconds of pid (clock ticks of /proc/pid/stat, 10 ms each). */
function procUserSys(pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return [Number(rest[11]) / 100, Number(rest[12]) / 100];
}
function cpuStart(pid) {
  const t0 = performance.now();
  const p0 = procCpuNs(pid);
  const us0 = procUserSys(pid);
  const d0 = process.cpuUsage();
  return () => {
    const s = (performance.now() - t0) / 1000;
    const d = process.cpuUsage(d0);
    const proxyCpuS = (procCpuNs(pid) - p0) / 1e9;
    const us1 = procUserSys(pid);
    return { proxyCpu: (proxyCpuS / s) * 100, driverCpu: ((d.user + d.system) / 1e6 / s) * 100, proxyCpuS, proxyUserS: us1[0] - us0[0], proxySysS: us1[1] - us0[1] };
  };
}

/** CALLGRIND=1: zero pid's callgrind counters now; the returned function dumps them and gives
 *  the instructions executed since (callgrind_control, the "totals:" line of the new dump),
 *  kept as /tmp/auth-bench-callgrind-<label>.out for callgrind_annotate. */
function instrStart(pid, label) {
  execFileSync('callgrind_control', ['-z', String(pid)], { stdio: 'ignore' });
  return () => {
    const before = new Set(fs.readdirSync(WORK));
    execFileSync('callgrind_control', ['-d', String(pid)], { stdio: 'ignore' });
    const dump = fs.readdirSync(WORK).find((f) => f.startsWith(`callgrind.${pid}`) && !before.has(f));
    const m = dump && /^totals: (\d+)/m.exec(fs.readFileSync(path.join(WORK, dump), 'utf8'));
    if (!m) throw new Error(`no callgrind dump of ${pid}`);
    fs.renameSync(path.join(WORK, dump), `/tmp/auth-bench-callgrind-${label}.out`);
    return Number(m[1]);
  };
}

/** Resolve when child p has exited (at once if it already has), or after ms. */
function exited(p, ms) {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  return new Promise((r) => {
    const t = setTimeout(r, ms);
    p.on('exit', () => { clearTimeout(t); r(); });
  });
}

/** PERF=1: perf record -g on pid until stop() into /tmp/auth-bench-perf-<label>.data; the report goes to /tmp/auth-bench-perf-<label>.txt
 *  (symbols above PERF_LIMIT percent, default 1.5). */
function perfStart(pid, label) {
  if (process.env.PERF !== '1') return async () => undefined;
  const data = `/tmp/auth-bench-perf-${label}.data`;
  const p = spawn('perf', ['record', '-g', '-F', '2000', '-p', String(pid), '-o', data], { stdio: 'ignore' });
  children.push(p);
  // and the system calls it makes, counted apart (perf stat, no sampling)
  const calls = ['read', 'readv', 'write', 'writev', 'recvfrom', 'sendto', 'sendmsg', 'epoll_wait', 'epoll_ctl', 'ioctl', 'accept4', 'close'];
  const scFile = `/tmp/auth-bench-syscalls-${label}.txt`;
  const st = spawn('perf', ['stat', '-o', scFile, '-e', calls.map((c) => `syscalls:sys_enter_${c}`).join(','), '-p', String(pid)], { stdio: 'ignore' });
  children.push(st);
  return async () => {
    for (const x of [p, st]) {
      x.kill('SIGINT');
      await exited(x, 60000);
    }
    const file = `/tmp/auth-bench-perf-${label}.txt`;
    const rep = spawnSync('perf', ['report', '-i', data, '--stdio', '--no-children', '--percent-limit', process.env.PERF_LIMIT || '1.5', '-g', 'none'], { encoding: 'utf8', maxBuffer: 1 << 26, timeout: 300000 });
    fs.writeFileSync(file, rep.stdout);
    say(`  perf (${label}): ${file}`);
    return file;
  };
}

/** Run wrk; → {rps, requests, p50, p90, p99 (ms), non2xx, socketErrors, lua[], raw}. */
function wrk(args) {
  const r = spawnSync('wrk', args, { encoding: 'utf8', timeout: 600000 });
  const out = (r.stdout || '') + (r.stderr || '');
  if (r.status !== 0) throw new Error(`wrk ${args.join(' ')} failed: ${out}`);
  const g = (re) => (re.exec(out) || [])[1];
  return {
    rps: Number(g(/Requests\/sec:\s+([\d.]+)/)),
    requests: Number(g(/(\d+) requests in/)),
    p50: toMs(g(/^\s+50%\s+(\S+)/m)),
    p90: toMs(g(/^\s+90%\s+(\S+)/m)),
    p99: toMs(g(/^\s+99%\s+(\S+)/m)),
    non2xx: Number(g(/Non-2xx or 3xx responses: (\d+)/) ?? 0),
    socketErrors: g(/Socket errors: (.*)/) ?? '',
    lua: out.match(/^LUA[ -].*$/gm) || [],
    raw: out,
  };
}

/** Run fn(i) for i in [0,n) with conc workers; → {out (in completion order), errors}. */
async function pool(n, conc, fn) {
  let i = 0;
  const out = [];
  const errors = [];
  await Promise.all(Array.from({ length: Math.min(conc, n) }, async () => {
    while (i < n) {
      const k = i++;
      try { out.push(await fn(k)); } catch (e) { errors.push(e.message.slice(0, 300)); }
    }
  }));
  return { out, errors };
}

function countBy(arr) {
  const m = {};
  for (const x of arr) m[x] = (m[x] || 0) + 1;
  return m;
}

/** startProxy with server.logLevel warn: the "listening" lines are info, so the ports are fixed
 *  up front and readiness is GET /health on both. → the harness's proxy, diagPort/diagUrl set. */
const CALLGRIND = process.env.CALLGRIND === '1';
async function startQuiet(config, opts = {}) {
  const port = opts.port || await getFreePort();
  if (opts.callgrind) {
    opts = { ...opts, wrap: ['valgrind', '--tool=callgrind', '--dump-instr=no', '--compress-strings=no', `--callgrind-out-file=${path.join(WORK, 'callgrind.%p')}`], timeoutMs: 60000 };
  }
  const dport = await getFreePort();
  config.server = { ...(config.server || {}), logLevel: 'warn', listen: `127.0.0.1:${port}`, diagnosticsListen: `127.0.0.1:${dport}` };
  const proxy = await startProxy(config, { ...opts, port, waitFor: [] });
  children.push(proxy.proc); // killed at exit, also when a benchmark throws
  for (let i = 0; ; i++) {
    try {
      const [a, b] = await Promise.all([request(`${proxy.origin}/health`, { timeoutMs: 500 }), request(`http://127.0.0.1:${dport}/health`, { timeoutMs: 500 })]);
      if (a.status === 200 && b.status === 200) break;
    } catch (e) {
      if (proxy.exited() || i > (opts.callgrind ? 1200 : 200)) throw new Error(`proxy not ready: ${e.message}\n${proxy.stderr()}`);
    }
    await sleep(50);
  }
  proxy.diagPort = dport;
  proxy.diagUrl = `http://127.0.0.1:${dport}`;
  pin(proxy.proc.pid);
  return proxy;
}

/** One redis-server for the benchmarks (STORAGE=redis, the storage mode), on 127.0.0.1. */
let redisPort;
async function redisStart() {
  if (redisPort) return redisPort;
  const port = await getFreePort();
  const dir = fs.mkdtempSync(path.join(WORK, 'redis-'));
  const p = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  children.push(p);
  for (let i = 0; spawnSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' }).stdout.trim() !== 'PONG'; i++) {
    if (i > 100) throw new Error(`redis-server did not start on port ${port}`);
    await sleep(50);
  }
  redisPort = port;
  return port;
}

let stackNo = 0;
/** storage.type redis for one AS (its own key prefix on the shared server), with the signing
 *  and encryption keys it needs: [config fragment, secrets]. */
async function redisStorage() {
  const port = await redisStart();
  const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  stackNo += 1;
  return [{
    signingKeySecretRefs: [{ name: 'signing', key: 'key.pem' }],
    storage: { type: 'redis', redis: { addr: `127.0.0.1:${port}`, keyPrefix: `bench${stackNo}:`, encryptionKeySecretRef: { name: 'redis', key: 'encryption-key' } } },
  }, {
    signing: { 'key.pem': privateKey.export({ type: 'pkcs8', format: 'pem' }) },
    redis: { 'encryption-key': crypto.randomBytes(32).toString('base64') },
  }];
}

/** The embedded AS in front of backendUrl, with its IdP (and a doc host for CIMD); storage
 *  'redis' (default: the STORAGE knob) keeps its state on the benchmarks' redis-server. */
async function startAs({ cimd, backendUrl = 'http://127.0.0.1:9', extra = {}, storage = STORAGE, callgrind = false } = {}) {
  const port = await getFreePort();
  const origin = `http://127.0.0.1:${port}`;
  const idp = await startIdp({ redirect_uris: [`${origin}/oauth/callback`] });
  const docs = cimd ? await startDocHost() : undefined;
  const [storageCfg, storageSecrets] = storage === 'redis' ? await redisStorage() : [{}, {}];
  const proxy = await startQuiet({
    server: { resourceUrl: `${origin}/mcp` },
    backend: { url: backendUrl },
    auth: { mode: 'embedded' },
    ...(docs ? { outbound: { caFile: docs.caFile } } : {}),
    embeddedAuthServer: {
      issuer: origin,
      insecureAllowHTTP: true,
      upstreamProviders: [{
        name: 'idp',
        type: 'oidc',
        oidcConfig: { issuerUrl: idp.issuer, clientId: idp.clientId, clientSecretRef: { name: 'idp', key: 'client_secret' } },
      }],
      baselineClientScopes: ['openid', 'offline_access'],
      // one driver address makes every request: the per-address limits (issue 16) are off or
      // at their ceiling, so that what is measured is the AS and not its limiter
      rateLimit: { requestsPerMinute: 0, loginsPerClient: 10000, loginsPerAddress: 10000 },
      ...(cimd ? { cimd: { enabled: true, insecureAllowLoopback: true, ...cimd } } : {}),
      ...storageCfg,
    },
    ...extra,
  }, { port, callgrind, secrets: { idp: { client_secret: idp.clientSecret }, ...storageSecrets } });
  return { proxy, idp, docs, origin };
}

async function registerClient(origin) {
  const r = await request(`${origin}/oauth/register`, {
    method: 'POST',
    body: {
      redirect_uris: [CLIENT_REDIRECT], grant_types: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_method: 'none', client_name: 'auth-bench',
    },
  });
  if (r.status !== 201) throw new Error(`register: ${r.status} ${r.body}`);
  return r.json().client_id;
}

/** One login: authorize → IdP (auto-login) → callback → code; hop times split by who answered. */
async function login(origin, clientId, pkce) {
  const u = new URL(`${origin}/oauth/authorize`);
  const params = {
    response_type: 'code', client_id: clientId, redirect_uri: CLIENT_REDIRECT, scope: 'openid offline_access',
    state: crypto.randomBytes(8).toString('hex'), code_challenge: pkce.challenge, code_challenge_method: 'S256',
    resource: `${origin}/mcp`,
  };
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  const t0 = performance.now();
  let last = t0;
  const parts = { authorize: 0, idp: 0, callback: 0 };
  const res = await followAuthorization(u.href, {
    redirectUri: CLIENT_REDIRECT,
    jar: new CookieJar(),
    onHop(h) {
      const now = performance.now();
      const d = now - last;
      last = now;
      const p = new URL(h.url);
      if (p.origin !== origin) parts.idp += d;
      else if (p.pathname === '/oauth/authorize') parts.authorize += d;
      else if (p.pathname === '/oauth/callback') parts.callback += d;
      else parts.idp += d;
    },
  });
  if (!res.code) throw new Error(`login: no code (${res.error} ${res.errorDescription})`);
  return { code: res.code, ms: performance.now() - t0, parts };
}

async function exchange(origin, clientId, pkce, code) {
  const r = await request(`${origin}/oauth/token`, {
    method: 'POST',
    body: new URLSearchParams({
      grant_type: 'authorization_code', code, redirect_uri: CLIENT_REDIRECT, client_id: clientId,
      code_verifier: pkce.verifier, resource: `${origin}/mcp`,
    }),
  });
  if (r.status !== 200) throw new Error(`token: ${r.status} ${r.body}`);
  return r.json();
}

function machine() {
  const cpu = (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/) || [])[1];
  const v = (cmd, args) => {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    return ((r.stdout || '') + (r.stderr || '')).split('\n')[0].trim();
  };
  results.machine = {
    date: new Date().toISOString(), nproc: os.cpus().length, cpu, kernel: os.release(),
    proxy: `${PROXY_BIN} (${v(PROXY_BIN, ['--version'])})`, nginx: v('nginx', ['-v']), wrk: v('wrk', ['--version']).split(' ').slice(0, 2).join(' '),
    node: process.version,
  };
  say(`# machine: ${results.machine.nproc} CPUs, ${cpu}, ${os.release()}; ${results.machine.date}`);
  say(`# ${results.machine.proxy}; ${results.machine.nginx}; ${results.machine.wrk}; node ${process.version}`);
  say(`# proxies pinned to CPU ${PROXY_CPU || '(none)'}; this driver, wrk, the IdP, doc host and backends run where run.sh put them`);
}

// ------------------------------------------------------------------ 1. tokens

async function benchTokens() {
  say(`\n== 1. AS token issuance (load average before: ${load()})`);
  const { origin, proxy } = await startAs();
  const clientId = await registerClient(origin);
  const pkce = pkcePair();
  const nLogins = CODES + 2 * CHAINS;
  // warm-up: a few logins (IdP JIT, discovery)
  await pool(10, 2, () => login(origin, clientId, pkce));
  const t0 = performance.now();
  const { out: logins, errors } = await pool(nLogins, LOGIN_CONC, () => login(origin, clientId, pkce));
  const wall = (performance.now() - t0) / 1000;
  const L = {
    logins: logins.length, errors: errors.length, errorSamples: [...new Set(errors)].slice(0, 3), concurrency: LOGIN_CONC,
    wall_s: wall, per_s: logins.length / wall,
    total_p50: pct(logins.map((x) => x.ms), 0.5), total_p99: pct(logins.map((x) => x.ms), 0.99),
    authorize_p50: pct(logins.map((x) => x.parts.authorize), 0.5), authorize_p99: pct(logins.map((x) => x.parts.authorize), 0.99),
    idp_p50: pct(logins.map((x) => x.parts.idp), 0.5), idp_p99: pct(logins.map((x) => x.parts.idp), 0.99),
    callback_p50: pct(logins.map((x) => x.parts.callback), 0.5), callback_p99: pct(logins.map((x) => x.parts.callback), 0.99),
  };
  results.logins = L;
  say(`logins (authorize → IdP auto-login → callback → code), ${LOGIN_CONC} concurrent: ${L.logins} in ${f1(wall)} s = ${f1(L.per_s)}/s, errors ${L.errors}`);
  say(`  per login p50 ${f1(L.total_p50)} ms, p99 ${f1(L.total_p99)} ms; of which our /oauth/authorize hop p50 ${f2(L.authorize_p50)} p99 ${f2(L.authorize_p99)} ms,`);
  say(`  IdP hops p50 ${f1(L.idp_p50)} p99 ${f1(L.idp_p99)} ms, our /oauth/callback (incl. the IdP code exchange) p50 ${f1(L.callback_p50)} p99 ${f1(L.callback_p99)} ms`);
  if (errors.length) say(`  login errors: ${L.errorSamples.join(' | ')}`);

  const codes = logins.map((x) => x.code);
  const chainCodes = codes.splice(0, 2 * CHAINS);
  // code exchange alone, each code once: wrk + code.lua (it times itself), then the node driver
  const wrkCodes = codes.splice(0, Math.max(0, codes.length - NODE_CODES));
  if (wrkCodes.length) {
    const codesFile = path.join(WORK, 'codes.txt');
    fs.writeFileSync(codesFile, wrkCodes.join('\n') + '\n');
    const cc = cpuStart(proxy.proc.pid);
    const w = wrk(['-t1', `-c${CONNS}`, `-d${Math.ceil(wrkCodes.length / 4000) + 2}s`, '--latency', '-s', path.join(HERE, 'code.lua'),
      `${origin}/oauth/token`, '--', codesFile, clientId, pkce.verifier, CLIENT_REDIRECT, `${origin}/mcp`]);
    const ccr = cc();
    const m = /ok=(\d+) bad=(\d+) sent=(\d+) elapsed_ms=([\d.]+)/.exec(w.lua.join(' ')) || [];
    const okN = Number(m[1]);
    const elapsed = Number(m[4]) / 1000;
    results.codeExchangeWrk = { codes: wrkCodes.length, conns: CONNS, ok: okN, bad: Number(m[2]), elapsed_s: elapsed, per_s: okN / elapsed, p50: w.p50, p99: w.p99, non2xx: w.non2xx, socketErrors: w.socketErrors, proxyCpuUsPerCode: (ccr.proxyCpuS * 1e6) / okN };
    say(`code exchange alone (wrk -t1 -c${CONNS} + code.lua, ${wrkCodes.length} codes each once, ${f2(elapsed)} s): ${f1(okN / elapsed)}/s, p50 ${f2(w.p50)} ms, p99 ${f2(w.p99)} ms; ${w.lua.join(' ')}; after the list ran out: ${w.non2xx} × 400 ${w.socketErrors} proxy CPU ${f1((ccr.proxyCpuS * 1e6) / okN)} µs per code`);
  }
  // node driver: CONNS workers on keep-alive connections (a cross-check; it may be driver-bound)
  let agent = new http.Agent({ keepAlive: true, maxSockets: Math.max(CONNS, CHAINS) });
  const u = new URL(`${origin}/oauth/token`);
  const post = (body) => new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent,
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) } }, (res) => {
      let b = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { b += c; });
      res.on('end', () => resolve({ status: res.statusCode, body: b }));
    });
    req.on('error', reject);
    req.end(body);
  });
  const enc = encodeURIComponent;
  await post('grant_type=refresh_token&refresh_token=warm-up&client_id=x'); // open a connection
  let cpu = cpuStart(proxy.proc.pid);
  let lat = [];
  let bad = 0;
  let next = 0;
  let ts = performance.now();
  await Promise.all(Array.from({ length: CONNS }, async () => {
    while (next < codes.length) {
      const code = codes[next++];
      const a = performance.now();
      try {
        const res = await post(`grant_type=authorization_code&code=${code}&redirect_uri=${enc(CLIENT_REDIRECT)}&client_id=${clientId}`
          + `&code_verifier=${pkce.verifier}&resource=${enc(`${origin}/mcp`)}`);
        lat.push(performance.now() - a);
        if (res.status !== 200 || !res.body.includes('"access_token"')) bad++;
      } catch { bad++; }
    }
  }));
  let el = (performance.now() - ts) / 1000;
  let c = cpu();
  results.codeExchangeNode = { codes: codes.length, conns: CONNS, duration_s: el, per_s: lat.length / el, p50: pct(lat, 0.5), p99: pct(lat, 0.99), bad, ...c };
  say(`code exchange alone (node driver, ${CONNS} keep-alive workers, ${codes.length} codes each once, ${f2(el)} s): ${f1(lat.length / el)}/s, p50 ${f2(pct(lat, 0.5))} ms, p99 ${f2(pct(lat, 0.99))} ms, failed ${bad}; CPU proxy ${f1(c.proxyCpu)}%, driver ${f1(c.driverCpu)}%`);

  // chains: exchange 2*CHAINS codes → refresh tokens; half for wrk, half for the node driver
  const toks = [];
  for (const c of chainCodes) toks.push((await exchange(origin, clientId, pkce, c)).refresh_token);
  if (toks.some((t) => !t)) throw new Error('a code exchange gave no refresh token');
  const tokFile = path.join(WORK, 'refresh.txt');
  fs.writeFileSync(tokFile, toks.slice(0, CHAINS).join('\n') + '\n');
  const rc = Math.min(CONNS, CHAINS - 2);
  const cw = cpuStart(proxy.proc.pid);
  const r = wrk(['-t1', `-c${rc}`, `-d${DURATION}s`, '--latency', '-s', path.join(HERE, 'refresh.lua'), `${origin}/oauth/token`,
    '--', tokFile, clientId]);
  const cwr = cw();
  results.refreshWrk = { chains: CHAINS, conns: rc, duration: DURATION, rps: r.rps, requests: r.requests, p50: r.p50, p99: r.p99, non2xx: r.non2xx, socketErrors: r.socketErrors, lua: r.lua, proxyCpu: cwr.proxyCpu, proxyCpuUsPerGrant: (cwr.proxyCpuS * 1e6) / r.requests };
  say(`refresh grants (wrk -t1 -c${rc} -d${DURATION}s, ${CHAINS} rotating chains): ${f1(r.rps)} req/s, p50 ${f2(r.p50)} ms, p99 ${f2(r.p99)} ms, non-2xx ${r.non2xx} ${r.socketErrors} ${r.lua.join(' ')}; CPU proxy ${f1(cwr.proxyCpu)}%, ${f1((cwr.proxyCpuS * 1e6) / r.requests)} µs per grant`);

  // node driver: one worker per chain, keep-alive, DURATION seconds (fresh connections: the
  // proxy closed the idle ones meanwhile)
  agent.destroy();
  agent = new http.Agent({ keepAlive: true, maxSockets: CHAINS });
  lat = [];
  bad = 0;
  let firstBad;
  cpu = cpuStart(proxy.proc.pid);
  const end = performance.now() + DURATION * 1000;
  ts = performance.now();
  await Promise.all(toks.slice(CHAINS).map(async (tok0) => {
    let tok = tok0;
    while (performance.now() < end) {
      const a = performance.now();
      let res;
      try {
        res = await post(`grant_type=refresh_token&refresh_token=${tok}&client_id=${clientId}`);
      } catch (e) { bad++; firstBad ??= String(e.message || e); return; } // the chain ends (its token may be spent)
      lat.push(performance.now() - a);
      if (res.status !== 200) { bad++; firstBad ??= `${res.status} ${res.body}`; return; }
      tok = JSON.parse(res.body).refresh_token;
    }
  }));
  el = (performance.now() - ts) / 1000;
  c = cpu();
  agent.destroy();
  results.refreshNode = { workers: CHAINS, duration_s: el, grants: lat.length, per_s: lat.length / el, p50: pct(lat, 0.5), p99: pct(lat, 0.99), bad, ...c };
  say(`refresh grants (node driver, ${CHAINS} workers each with its own chain, ${f1(el)} s): ${f1(lat.length / el)}/s, p50 ${f2(pct(lat, 0.5))} ms, p99 ${f2(pct(lat, 0.99))} ms, failed ${bad}${firstBad ? ` (first: ${firstBad.slice(0, 200)})` : ''}; CPU proxy ${f1(c.proxyCpu)}%, driver ${f1(c.driverCpu)}%`);
}

// ------------------------------------------------------------------ 2. CIMD

function documentFor(url) {
  return {
    client_id: url, client_name: 'auth-bench CIMD client',
    grant_types: ['authorization_code', 'refresh_token'], redirect_uris: ['http://127.0.0.1:33418/'],
    response_types: ['code'], token_endpoint_auth_method: 'none',
  };
}

function authorizeUrl(origin, clientId) {
  const u = new URL(`${origin}/oauth/authorize`);
  const params = {
    client_id: clientId, redirect_uri: 'http://127.0.0.1:33418/', response_type: 'code', state: 'st',
    code_challenge: pkcePair().challenge, code_challenge_method: 'S256',
  };
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  return u.href;
}

function startProbe(port) {
  const p = spawn('python3', [path.join(HERE, 'health_probe.py'), String(port), '10', '120'], { stdio: ['pipe', 'pipe', 'inherit'] });
  children.push(p);
  let out = '';
  p.stdout.setEncoding('utf8');
  p.stdout.on('data', (d) => { out += d; });
  const ready = new Promise((resolve) => { const t = setInterval(() => { if (out.includes('ready')) { clearInterval(t); resolve(); } }, 10); });
  const done = new Promise((resolve) => p.on('close', () => resolve(JSON.parse(out.trim().split('\n').pop()))));
  return { ready, stop: () => { p.stdin.end(); return done; } };
}

async function burst(proxy, docs, prefix, n, conc) {
  const urls = [];
  for (let i = 0; i < n; i++) {
    const p = `/${prefix}/${i}.json`;
    urls.push(await docs.set(p, { json: documentFor(docs.url(p)), delayMs: CIMD_DELAY }));
  }
  await docs.reset();
  const probe = startProbe(proxy.diagPort);
  await probe.ready;
  await sleep(300);
  const t0 = performance.now();
  const { out, errors } = await pool(n, conc, async (i) => {
    const a = performance.now();
    const r = await request(authorizeUrl(proxy.origin, urls[i]), { headers: { accept: 'application/json' }, timeoutMs: 30000 });
    const ms = performance.now() - a;
    let why = '';
    if (r.status !== 302) try { why = JSON.parse(r.body).error_description; } catch { why = r.body.slice(0, 100); }
    return { status: r.status, ms, at: performance.now() - t0, why };
  });
  const wall = performance.now() - t0;
  await sleep(300);
  const health = await probe.stop();
  const ok = out.filter((x) => x.status === 302);
  const st = await docs.stats();
  const docRequests = Object.entries(st.requests).filter(([k]) => k.startsWith(`/${prefix}/`)).reduce((s, [, v]) => s + v, 0);
  return {
    n, conc, wall_ms: wall, ok: ok.length, statuses: countBy(out.map((x) => x.status)), errors: errors.length,
    errorSamples: [...new Set(errors)].slice(0, 3), reasons: countBy(out.filter((x) => x.why).map((x) => x.why)),
    ok_p50: pct(ok.map((x) => x.ms), 0.5), ok_p99: pct(ok.map((x) => x.ms), 0.99),
    fail_p99: pct(out.filter((x) => x.status !== 302).map((x) => x.ms), 0.99),
    last_ok_ms: Math.max(0, ...ok.map((x) => x.at)),
    docRequests, docConnections: st.connections.https, health,
  };
}

function sayBurst(label, b) {
  say(`${label}: ${b.n} authorize requests, ${b.conc} at once: wall ${f1(b.wall_ms)} ms; 302: ${b.ok} (p50 ${f1(b.ok_p50)} ms, p99 ${f1(b.ok_p99)} ms, last at ${f1(b.last_ok_ms)} ms); statuses ${JSON.stringify(b.statuses)}; client errors ${b.errors} ${b.errorSamples.join(' | ')}`);
  for (const [k, v] of Object.entries(b.reasons)) say(`    ${v} × "${k}"`);
  say(`  doc host: ${b.docRequests} document requests, ${b.docConnections} TLS connections; GET /health (diagnostics port, every 10 ms): ${b.health.samples} samples, p50 ${b.health.p50_ms} ms, p99 ${b.health.p99_ms} ms, max ${b.health.max_ms} ms, errors ${b.health.errors}`);
  if (b.health.over_50ms.length) say(`  /health samples over 50 ms [t s, ms]: ${JSON.stringify(b.health.over_50ms.slice(0, 10))}`);
}

async function benchCimd() {
  say(`\n== 2. CIMD (load average before: ${load()})`);
  const cacheMaxSize = Math.max(2000, 3 * CIMD_N + 10);
  const { proxy, docs } = await startAs({ cimd: { cacheMaxSize } });
  // (a) cached client
  const url = await docs.set('/a/client.json', { json: documentFor(docs.url('/a/client.json')) });
  const au = authorizeUrl(proxy.origin, url);
  const first = await request(au);
  if (first.status !== 302) throw new Error(`first CIMD authorize: ${first.status} ${first.body}`);
  const ca = cpuStart(proxy.proc.pid);
  const wa = wrk(['-t1', `-c${CONNS}`, `-d${DURATION}s`, '--latency', au]);
  const car = ca();
  const fetched = (await docs.stats()).requests['/a/client.json'];
  results.cimdCached = { conns: CONNS, duration: DURATION, rps: wa.rps, requests: wa.requests, p50: wa.p50, p99: wa.p99, non2xx: wa.non2xx, socketErrors: wa.socketErrors, docFetches: fetched, proxyCpu: car.proxyCpu, proxyCpuUsPerReq: (car.proxyCpuS * 1e6) / wa.requests };
  say(`(a) /oauth/authorize, cached CIMD client → 302 (wrk -t1 -c${CONNS} -d${DURATION}s): ${f1(wa.rps)} req/s, p50 ${f2(wa.p50)} ms, p99 ${f2(wa.p99)} ms, errors (4xx/5xx) ${wa.non2xx} ${wa.socketErrors}; document fetched ${fetched} time(s); CPU proxy ${f1(car.proxyCpu)}%, ${f1((car.proxyCpuS * 1e6) / wa.requests)} µs per request`);
  // (b) CIMD_N distinct clients at once; (b2) the same count with at most 250 in flight
  say(`(b) cimd.cacheMaxSize ${cacheMaxSize}, doc host delayMs ${CIMD_DELAY}`);
  const stopPerf = perfStart(proxy.proc.pid, 'cimd-burst');
  const b = await burst(proxy, docs, 'b', CIMD_N, CIMD_N);
  await stopPerf();
  sayBurst('(b) all at once', b);
  const b2 = await burst(proxy, docs, 'c', CIMD_N, 250);
  sayBurst('(b2) ≤ 250 in flight (under the resolver cap)', b2);
  results.cimdBurst = b;
  results.cimdBurst250 = b2;
}

// ------------------------------------------------------------------ 3. guard

function nginxStart(name, body, cpu) {
  const dir = path.join(WORK, name);
  fs.mkdirSync(path.join(dir, 'logs'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'tmp'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'nginx.conf'), `worker_processes 1;
worker_rlimit_nofile 65536;
pid ${dir}/nginx.pid;
error_log ${dir}/logs/error.log warn;
events { worker_connections 30000; }
http {
	access_log off;
	client_body_temp_path ${dir}/tmp/body;
	proxy_temp_path ${dir}/tmp/proxy;
	fastcgi_temp_path ${dir}/tmp/fastcgi;
	uwsgi_temp_path ${dir}/tmp/uwsgi;
	scgi_temp_path ${dir}/tmp/scgi;
	keepalive_requests 10000000;
	keepalive_timeout 300s;
${body}
}
`);
  const nginx = fs.existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : 'nginx';
  const argv = [nginx, '-p', dir, '-c', path.join(dir, 'nginx.conf'), '-g', 'daemon off;'];
  const p = cpu !== '' ? spawn('taskset', ['-c', cpu, ...argv], { stdio: 'ignore' }) : spawn(argv[0], argv.slice(1), { stdio: 'ignore' });
  p.nginx = true;
  children.push(p);
  return p;
}

/** An nginx answering every request with one small JSON-RPC result (the MCP backend of the
 *  guard, policy and storage modes): {port, url}. */
async function okBackend(name) {
  const port = await getFreePort();
  nginxStart(name, `	server {
		listen 127.0.0.1:${port} backlog=4096;
		location / {
			default_type application/json;
			return 200 '{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"ok"}]}}';
		}
	}`, '');
  await waitPort(port);
  return { port, url: `http://127.0.0.1:${port}` };
}

async function waitPort(port) {
  for (let i = 0; i < 200; i++) {
    try { await request(`http://127.0.0.1:${port}/`, { timeoutMs: 500 }); return; } catch { await sleep(50); }
  }
  throw new Error(`nothing on port ${port}`);
}

async function benchGuard() {
  say(`\n== 3. Guard overhead (load average before: ${load()})`);
  const { port: pb, url: backend } = await okBackend('backend');
  const pn = await getFreePort();
  const front = nginxStart('front', `	upstream be { server 127.0.0.1:${pb}; keepalive 64; }
	server {
		listen 127.0.0.1:${pn} backlog=4096;
		location / {
			proxy_pass http://be;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_buffering off;
			proxy_read_timeout 1h;
		}
	}`, PROXY_CPU);
  await waitPort(pn);
  const { origin, proxy: guardProxy } = await startAs({ backendUrl: backend });
  const clientId = await registerClient(origin);
  const pkce = pkcePair();
  const tok = await exchange(origin, clientId, pkce, (await login(origin, clientId, pkce)).code);
  const off = await startQuiet({ backend: { url: backend }, auth: { mode: 'none' } });
  const targets = { 'guard-on': `${origin}/mcp`, 'guard-off': `${off.origin}/mcp`, nginx: `http://127.0.0.1:${pn}/mcp` };
  const frontWorker = Number(spawnSync('pgrep', ['-P', String(front.pid)], { encoding: 'utf8' }).stdout.trim().split('\n')[0]);
  const pids = { 'guard-on': guardProxy.proc.pid, 'guard-off': off.proc.pid, nginx: frontWorker };
  // sanity: the guard answers 401 without the token and 200 with it
  const body = { jsonrpc: '2.0', id: 1, method: 'ping' };
  const anon = await request(targets['guard-on'], { method: 'POST', body });
  const authd = await request(targets['guard-on'], { method: 'POST', body, headers: { authorization: `Bearer ${tok.access_token}` } });
  say(`guard check: without token ${anon.status}, with token ${authd.status}`);
  if (anon.status !== 401 || authd.status !== 200) throw new Error('guard not behaving: ' + authd.body);
  const lua = path.join(HERE, 'post.lua');
  for (const [, u] of Object.entries(targets)) wrk(['-t1', `-c${CONNS}`, '-d2s', '-s', lua, u, '--', tok.access_token]);
  const rows = [];
  for (let r = 1; r <= ROUNDS; r++) {
    for (const [name, u] of Object.entries(targets)) {
      const cs = cpuStart(pids[name]);
      const w = wrk(['-t1', `-c${CONNS}`, `-d${DURATION}s`, '--latency', '-s', lua, u, '--', tok.access_token]);
      const c = cs();
      const us = (c.proxyCpuS * 1e6) / w.requests;
      const user = (c.proxyUserS * 1e6) / w.requests, sys = (c.proxySysS * 1e6) / w.requests;
      rows.push({ round: r, target: name, rps: w.rps, p50: w.p50, p99: w.p99, non2xx: w.non2xx, socketErrors: w.socketErrors, cpu: c.proxyCpu, cpuUsPerReq: us, userUsPerReq: user, sysUsPerReq: sys });
      say(`round ${r} ${name.padEnd(9)} ${f1(w.rps).padStart(9)} req/s  p50 ${f2(w.p50)} ms  p99 ${f2(w.p99)} ms  CPU ${f1(c.proxyCpu)}% = ${f2(us)} µs/req (user ${f2(user)} sys ${f2(sys)})  non-2xx ${w.non2xx} ${w.socketErrors}`);
    }
  }
  const med = {};
  for (const name of Object.keys(targets)) {
    const mine = rows.filter((x) => x.target === name);
    med[name] = { rps: median(mine.map((x) => x.rps)), p50: median(mine.map((x) => x.p50)), p99: median(mine.map((x) => x.p99)), cpuUsPerReq: median(mine.map((x) => x.cpuUsPerReq)), userUsPerReq: median(mine.map((x) => x.userUsPerReq)), sysUsPerReq: median(mine.map((x) => x.sysUsPerReq)) };
  }
  const ratios = {
    onOff_rps: med['guard-on'].rps / med['guard-off'].rps, onOff_p99: med['guard-on'].p99 / med['guard-off'].p99,
    offNginx_rps: med['guard-off'].rps / med.nginx.rps, offNginx_p99: med['guard-off'].p99 / med.nginx.p99,
    onNginx_rps: med['guard-on'].rps / med.nginx.rps, onNginx_p99: med['guard-on'].p99 / med.nginx.p99,
    onOff_cpu: med['guard-on'].cpuUsPerReq / med['guard-off'].cpuUsPerReq, offNginx_cpu: med['guard-off'].cpuUsPerReq / med.nginx.cpuUsPerReq,
  };
  // the same ratios round by round (the targets of one round ran back to back on the same
  // host state), then their median: steadier on a shared host whose speed drifts
  const paired = (a, b, k) => median([...Array(ROUNDS).keys()].map((i) => {
    const x = rows.find((r) => r.round === i + 1 && r.target === a), y = rows.find((r) => r.round === i + 1 && r.target === b);
    return x[k] / y[k];
  }));
  ratios.paired = { onOff_rps: paired('guard-on', 'guard-off', 'rps'), onOff_p99: paired('guard-on', 'guard-off', 'p99'),
    onNginx_rps: paired('guard-on', 'nginx', 'rps'), offNginx_rps: paired('guard-off', 'nginx', 'rps') };
  results.guard = { conns: CONNS, duration: DURATION, rounds: ROUNDS, rows, median: med, ratios };
  say(`medians of ${ROUNDS} × ${DURATION} s, wrk -t1 -c${CONNS}:`);
  for (const [n, m] of Object.entries(med)) say(`  ${n.padEnd(9)} ${f1(m.rps).padStart(9)} req/s  p50 ${f2(m.p50)} ms  p99 ${f2(m.p99)} ms  ${f2(m.cpuUsPerReq)} CPU µs/req (user ${f2(m.userUsPerReq)} sys ${f2(m.sysUsPerReq)})`);
  say(`  guard-on/guard-off: throughput ${f2(ratios.onOff_rps)}× (guard cost ${f1((1 - ratios.onOff_rps) * 100)}%; target ≤ 10%), p99 ${f2(ratios.onOff_p99)}×`);
  say(`  round by round (median of ${ROUNDS} paired ratios): guard-on/guard-off throughput ${f2(ratios.paired.onOff_rps)}× (guard cost ${f1((1 - ratios.paired.onOff_rps) * 100)}%), p99 ${f2(ratios.paired.onOff_p99)}×; guard-on/nginx ${f2(ratios.paired.onNginx_rps)}×, guard-off/nginx ${f2(ratios.paired.offNginx_rps)}×`);
  say(`  CPU per request: guard-on/guard-off ${f2(ratios.onOff_cpu)}× (the guard adds ${f1((ratios.onOff_cpu - 1) * 100)}% CPU per request), guard-off/nginx ${f2(ratios.offNginx_cpu)}×`);
  for (const name of ['guard-on', 'guard-off']) {
    const stop = perfStart(pids[name], name);
    if (process.env.PERF === '1') say(`  perf run ${name}: ${wrk(['-t1', `-c${CONNS}`, `-d${DURATION}s`, '-s', lua, targets[name], '--', tok.access_token]).requests} requests`);
    await stop();
  }
  say(`  us (guard-off)/nginx: throughput ${f2(ratios.offNginx_rps)}×, p99 ${f2(ratios.offNginx_p99)}×; us (guard-on)/nginx: throughput ${f2(ratios.onNginx_rps)}×, p99 ${f2(ratios.onNginx_p99)}×`);
}

// ------------------------------------------------------------------ 4. policy

/** 20 rules: 19 that do not match a tools/call of echo, the one that allows it last. */
function policyRules() {
  const rules = [];
  for (let i = 0; i < 19; i += 1) rules.push({ operations: [`tools/call:admin-${i}-*`, `prompts/get:p${i}`], allow: { scopes: ['mcp:admin'], claims: { groups: ['admins'] } } });
  rules.push({ operations: ['tools/list', 'tools/call:echo', 'tools/call:get-*'], allow: { scopes: ['openid'] } });
  return rules;
}

/** The tools/list answer of the policy benchmark's backend: 3 tools the benchmark's user may
 * call and 3 that rules[0..2] keep for admins (the policy drops them from the list). */
function policyToolList() {
  const tool = (name) => ({ name, description: `The ${name} tool: does what its name says, for the benchmark.`, inputSchema: { type: 'object', properties: { message: { type: 'string', description: 'what to send' } }, required: ['message'] } });
  return { jsonrpc: '2.0', id: 1, result: { tools: ['echo', 'get-sum', 'get-time', 'admin-0-reset', 'admin-1-drop', 'admin-2-purge'].map(tool) } };
}

async function benchPolicy() {
  say(`\n== 4. Policy overhead: 20 rules vs none, both with the guard, tools/call and tools/list (load average before: ${load()})`);
  const pb = await getFreePort();
  // one backend for both: tools/list (told by the Mcp-Method header list.lua sends) gets a list of
  // six tools, anything else the fixed tools/call answer
  nginxStart('policy-backend', `	server {
		listen 127.0.0.1:${pb} backlog=4096;
		location / {
			default_type application/json;
			if ($http_mcp_method = "tools/list") {
				return 200 '${JSON.stringify(policyToolList())}';
			}
			return 200 '{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"ok"}]}}';
		}
	}`, '');
  await waitPort(pb);
  const backend = `http://127.0.0.1:${pb}`;
  const stacks = {
    'policy-off': await startAs({ backendUrl: backend, callgrind: CALLGRIND }),
    'policy-on': await startAs({ backendUrl: backend, callgrind: CALLGRIND, extra: { authorization: { defaultDecision: 'deny', rules: policyRules() } } }),
  };
  const tokens = {};
  for (const [name, st] of Object.entries(stacks)) {
    const clientId = await registerClient(st.origin);
    const pkce = pkcePair();
    tokens[name] = (await exchange(st.origin, clientId, pkce, (await login(st.origin, clientId, pkce)).code)).access_token;
  }
  const rpc = (name, body, headers = {}) => request(`${stacks[name].origin}/mcp`, { method: 'POST', headers: { authorization: `Bearer ${tokens[name]}`, accept: 'application/json, text/event-stream', ...headers }, body });
  const call = (name, tool) => rpc(name, { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: tool, arguments: {} } });
  const allowed = await call('policy-on', 'echo'), denied = await call('policy-on', 'admin-3-x');
  const listOf = async (name) => JSON.parse((await rpc(name, { jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }, { 'mcp-method': 'tools/list' })).body).result.tools.map((t) => t.name).join(',');
  const listOn = await listOf('policy-on'), listOff = await listOf('policy-off');
  say(`policy check: echo ${allowed.status}, admin-3-x ${denied.status}; tools/list with the policy: ${listOn}; without: ${listOff}`);
  if (allowed.status !== 200 || denied.status !== 403) throw new Error(`policy not behaving: ${allowed.status} ${denied.status}`);
  if (listOn !== 'echo,get-sum,get-time' || listOff.split(',').length !== 6) throw new Error(`list filter not behaving: ${listOn} / ${listOff}`);
  const ops = { 'tools/call': path.join(HERE, 'post.lua'), 'tools/list': path.join(HERE, 'list.lua') };
  for (const lua of Object.values(ops)) for (const name of Object.keys(stacks)) wrk(['-t1', `-c${CONNS}`, '-d2s', '-s', lua, `${stacks[name].origin}/mcp`, '--', tokens[name]]);
  const rows = [];
  for (let r = 1; r <= ROUNDS; r++) {
    for (const [op, lua] of Object.entries(ops)) {
      for (const name of Object.keys(stacks)) {
        const pid = stacks[name].proxy.proc.pid;
        const cs = cpuStart(pid), is = CALLGRIND ? instrStart(pid, `${op.replace('/', '-')}-${name}-${r}`) : undefined;
        const w = wrk(['-t1', `-c${CONNS}`, `-d${DURATION}s`, '--latency', '-s', lua, `${stacks[name].origin}/mcp`, '--', tokens[name]]);
        const c = cs();
        const us = (c.proxyCpuS * 1e6) / w.requests, ir = is ? is() / w.requests : undefined;
        rows.push({ round: r, op, target: name, rps: w.rps, p50: w.p50, p99: w.p99, cpu: c.proxyCpu, cpuUsPerReq: us, instrPerReq: ir, non2xx: w.non2xx });
        say(`round ${r} ${op} ${name.padEnd(10)} ${f1(w.rps).padStart(9)} req/s  p50 ${f2(w.p50)} ms  p99 ${f2(w.p99)} ms  CPU ${f1(c.proxyCpu)}% = ${f2(us)} µs/req${ir ? `  ${Math.round(ir)} instructions/req` : ''}  non-2xx ${w.non2xx}`);
      }
    }
  }
  const summary = {};
  say(`medians of ${ROUNDS} × ${DURATION} s, wrk -t1 -c${CONNS}:`);
  for (const op of Object.keys(ops)) {
    const med = {};
    for (const name of Object.keys(stacks)) {
      const mine = rows.filter((x) => x.op === op && x.target === name);
      med[name] = { rps: median(mine.map((x) => x.rps)), p50: median(mine.map((x) => x.p50)), p99: median(mine.map((x) => x.p99)), cpuUsPerReq: median(mine.map((x) => x.cpuUsPerReq)) };
    }
    const row = (r, name) => rows.find((x) => x.round === r && x.op === op && x.target === name);
    const byRound = [...Array(ROUNDS).keys()].map((i) => row(i + 1, 'policy-on').rps / row(i + 1, 'policy-off').rps);
    const cpuByRound = [...Array(ROUNDS).keys()].map((i) => row(i + 1, 'policy-on').cpuUsPerReq / row(i + 1, 'policy-off').cpuUsPerReq);
    const paired = median(byRound);
    summary[op] = { median: med, paired, byRound, cpuByRound, ...(CALLGRIND ? { instrPerReq: Object.fromEntries(Object.keys(stacks).map((name) => [name, median(rows.filter((x) => x.op === op && x.target === name).map((x) => x.instrPerReq))])) } : {}) };
    if (CALLGRIND) {
      const irOf = (name) => median(rows.filter((x) => x.op === op && x.target === name).map((x) => x.instrPerReq));
      say(`  ${op}: instructions per request (callgrind, medians) policy-on ${Math.round(irOf('policy-on'))} vs policy-off ${Math.round(irOf('policy-off'))}: ${f2(irOf('policy-on') / irOf('policy-off'))}× (target ≤ 1.10×)`);
    }
    say(`  ${op}: policy-on/policy-off throughput ${f2(med['policy-on'].rps / med['policy-off'].rps)}× by medians (policy cost ${f1((1 - med['policy-on'].rps / med['policy-off'].rps) * 100)}%; target ≤ 10%), round by round ${f2(paired)}× (${byRound.map(f2).join(', ')}); p99 ${f2(med['policy-on'].p99 / med['policy-off'].p99)}× (${f2(med['policy-on'].p99)} vs ${f2(med['policy-off'].p99)} ms); CPU per request ${f2(med['policy-on'].cpuUsPerReq)} vs ${f2(med['policy-off'].cpuUsPerReq)} µs (${f2(med['policy-on'].cpuUsPerReq / med['policy-off'].cpuUsPerReq)}×; round by round ${cpuByRound.map(f2).join(', ')})`);
  }
  results.policy = { conns: CONNS, duration: DURATION, rounds: ROUNDS, rows, summary };
  for (const name of Object.keys(stacks)) {
    const stop = perfStart(stacks[name].proxy.proc.pid, `${name}-list`);
    if (process.env.PERF === '1') say(`  perf run ${name} tools/list: ${wrk(['-t1', `-c${CONNS}`, `-d${DURATION}s`, '-s', ops['tools/list'], `${stacks[name].origin}/mcp`, '--', tokens[name]]).requests} requests`);
    await stop();
  }
}

// ------------------------------------------------------------------ 5. storage

/** POST /mcp with the guard on, the AS's state in memory vs in Redis, interleaved rounds: the
 *  hot path must not wait for Redis (target: redis ≥ 0.95× memory). */
async function benchStorage() {
  say(`\n== 5. Guard-on POST /mcp, storage memory vs redis (load average before: ${load()})`);
  const { url: backend } = await okBackend('storage-backend');
  const stacks = {
    memory: await startAs({ backendUrl: backend, storage: 'memory' }),
    redis: await startAs({ backendUrl: backend, storage: 'redis' }),
  };
  const tokens = {};
  for (const [name, st] of Object.entries(stacks)) {
    const clientId = await registerClient(st.origin);
    const pkce = pkcePair();
    tokens[name] = (await exchange(st.origin, clientId, pkce, (await login(st.origin, clientId, pkce)).code)).access_token;
    const r = await request(`${st.origin}/mcp`, { method: 'POST', body: { jsonrpc: '2.0', id: 1, method: 'ping' }, headers: { authorization: `Bearer ${tokens[name]}` } });
    if (r.status !== 200) throw new Error(`${name}: the guard answered ${r.status}`);
  }
  const lua = path.join(HERE, 'post.lua');
  for (const name of Object.keys(stacks)) wrk(['-t1', `-c${CONNS}`, '-d2s', '-s', lua, `${stacks[name].origin}/mcp`, '--', tokens[name]]);
  const rows = [];
  for (let r = 1; r <= ROUNDS; r++) {
    // the order alternates by round: neither backend always runs on the host as the other left it
    for (const name of r % 2 ? Object.keys(stacks) : Object.keys(stacks).reverse()) {
      const cs = cpuStart(stacks[name].proxy.proc.pid);
      const w = wrk(['-t1', `-c${CONNS}`, `-d${DURATION}s`, '--latency', '-s', lua, `${stacks[name].origin}/mcp`, '--', tokens[name]]);
      const c = cs();
      const us = (c.proxyCpuS * 1e6) / w.requests;
      rows.push({ round: r, target: name, rps: w.rps, p99: w.p99, cpuUsPerReq: us, non2xx: w.non2xx });
      say(`round ${r} ${name.padEnd(7)} ${f1(w.rps).padStart(9)} req/s  p99 ${f2(w.p99)} ms  ${f2(us)} CPU µs/req  non-2xx ${w.non2xx}`);
    }
  }
  const med = {};
  for (const name of Object.keys(stacks)) {
    const mine = rows.filter((x) => x.target === name);
    med[name] = { rps: median(mine.map((x) => x.rps)), p99: median(mine.map((x) => x.p99)), cpuUsPerReq: median(mine.map((x) => x.cpuUsPerReq)) };
  }
  const paired = median([...Array(ROUNDS).keys()].map((i) => rows.find((x) => x.round === i + 1 && x.target === 'redis').rps / rows.find((x) => x.round === i + 1 && x.target === 'memory').rps));
  results.storage = { conns: CONNS, duration: DURATION, rounds: ROUNDS, rows, median: med, paired };
  for (const name of Object.keys(stacks)) {
    const stop = perfStart(stacks[name].proxy.proc.pid, `storage-${name}`);
    if (process.env.PERF === '1') say(`  perf run ${name}: ${wrk(['-t1', `-c${CONNS}`, `-d${DURATION}s`, '-s', lua, `${stacks[name].origin}/mcp`, '--', tokens[name]]).requests} requests`);
    await stop();
  }
  say(`medians of ${ROUNDS} × ${DURATION} s, wrk -t1 -c${CONNS}, POST /mcp with a bearer token:`);
  say(`  redis/memory: throughput ${f2(med.redis.rps / med.memory.rps)}× (target ≥ 0.95×), round by round ${f2(paired)}×; p99 ${f2(med.redis.p99 / med.memory.p99)}×; CPU per request ${f2(med.redis.cpuUsPerReq)} vs ${f2(med.memory.cpuUsPerReq)} µs`);
}

// ------------------------------------------------------------------ main

const which = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const all = which.length === 0;
machine();
try {
  if (all || which.includes('tokens')) await benchTokens();
  if (all || which.includes('cimd')) await benchCimd();
  if (all || which.includes('guard')) await benchGuard();
  if (all || which.includes('policy')) await benchPolicy();
  if (all || which.includes('storage')) await benchStorage();
} finally {
  fs.writeFileSync(OUT, JSON.stringify(results, null, 2));
  say(`\n# load average at the end: ${load()}; results: ${OUT}`);
}
process.exit(0);
