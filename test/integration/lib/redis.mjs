// Redis for the integration tests, and the embedded AS of several replicas on one Redis
// (embeddedAuthServer.storage.type: redis): a small RESP2 client, redis-server started on
// 127.0.0.1 (Debian's; scripts/install-deps.sh --test), and the config and secrets of a
// replica that shares its issuer, signing key and encryption key with the others.
//
// Every redis-server started here is stopped in an after() hook registered when this
// module is loaded, i.e. after the harness's (which stops the proxies first): import the
// harness before, or through, this module. A redis-server still running when the process
// exits is SIGKILLed.
import { after } from 'node:test';
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { getFreePort, waitFor, embeddedAS, idpSecrets } from './harness.mjs';

// ---------------------------------------------------------------- a small Redis client (RESP2)

function parseResp(buf, i) {
  if (i >= buf.length) return null;
  const nl = buf.indexOf('\r\n', i);
  if (nl < 0) return null;
  const type = String.fromCharCode(buf[i]);
  const line = buf.toString('utf8', i + 1, nl);
  const next = nl + 2;
  switch (type) {
    case '+': return { value: line, end: next };
    case '-': return { value: Object.assign(new Error(line), { redis: true }), end: next };
    case ':': return { value: Number(line), end: next };
    case '$': {
      const n = Number(line);
      if (n < 0) return { value: null, end: next };
      if (buf.length < next + n + 2) return null;
      return { value: buf.subarray(next, next + n), end: next + n + 2 };
    }
    case '*': {
      const n = Number(line);
      if (n < 0) return { value: null, end: next };
      const arr = [];
      let j = next;
      for (let k = 0; k < n; k += 1) {
        const r = parseResp(buf, j);
        if (!r) return null;
        arr.push(r.value);
        j = r.end;
      }
      return { value: arr, end: j };
    }
    default: throw new Error(`RESP: unexpected type byte ${JSON.stringify(type)}`);
  }
}

/** RedisClient.connect(port, {user, password}) → client; client.cmd(...args) → reply
 * (bulk strings as Buffers, errors rejected); client.close(). */
export class RedisClient {
  static async connect(port, { user, password, tls: tlsOpts } = {}) {
    // with tls: {ca}, TLS that verifies the server's certificate (IP SAN 127.0.0.1)
    const sock = tlsOpts ? tls.connect({ host: '127.0.0.1', port, ca: tlsOpts.ca })
      : net.connect({ host: '127.0.0.1', port });
    await new Promise((resolve, reject) => {
      sock.once(tlsOpts ? 'secureConnect' : 'connect', resolve);
      sock.once('error', reject);
    });
    const c = new RedisClient(sock);
    if (password !== undefined) await c.cmd(...(user ? ['AUTH', user, password] : ['AUTH', password]));
    return c;
  }

  constructor(sock) {
    this.sock = sock;
    this.buf = Buffer.alloc(0);
    this.queue = [];
    sock.on('data', (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      while (this.queue.length) {
        const r = parseResp(this.buf, 0);
        if (!r) break;
        this.buf = this.buf.subarray(r.end);
        const q = this.queue.shift();
        if (r.value instanceof Error) q.reject(r.value);
        else q.resolve(r.value);
      }
    });
    const fail = (e) => {
      for (const q of this.queue.splice(0)) q.reject(e || new Error('redis connection closed'));
    };
    sock.on('error', fail);
    sock.on('close', () => fail());
  }

  cmd(...args) {
    const parts = [Buffer.from(`*${args.length}\r\n`)];
    for (const a of args) {
      const b = Buffer.isBuffer(a) ? a : Buffer.from(String(a));
      parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ resolve, reject });
      this.sock.write(Buffer.concat(parts));
    });
  }

  close() { this.sock.destroy(); }
}

/** A reply as a string (bulk strings come as Buffers). */
export const str = (v) => (Buffer.isBuffer(v) ? v.toString('utf8') : v);

// ---------------------------------------------------------------- redis-server

const redisProcs = new Set();
/** Every redis-server started here and not stopped yet. */
export const redisServers = new Set();
const redisDirs = new Set(); // the data dirs startRedis made
process.on('exit', () => { for (const p of redisProcs) try { p.kill('SIGKILL'); } catch { /* ignore */ } });

function redisServerBinary() {
  const r = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    throw new Error('redis-server is not installed (scripts/install-deps.sh --test installs Debian\'s): '
      + (r.error?.message || r.stderr));
  }
  return 'redis-server';
}

/**
 * startRedis({port, dir, args, appendonly, replicaOf, tls, sentinel}) →
 *   {port, dir, proc, log(), exited(), stop({signal}), client(opts)}.
 * Listens on 127.0.0.1 only; data (the append-only file) in dir, which survives stop() so
 * that a redis started again on the same port and dir has the same data; a dir made here is
 * removed when the test file ends (kept with REDIS_TEST_KEEP set).
 * replicaOf: a master's port (this one is its replica).
 * tls: {cert, key, ca} (files): TLS only (--port 0, --tls-port), clients not authenticated;
 *   client() then speaks TLS trusting ca.
 * sentinel: {masterName, masterPort, downAfterMs, failoverTimeoutMs}: a sentinel (quorum
 *   1) watching that master, its config (which it rewrites) in dir.
 */
export async function startRedis({ port, dir, args = [], appendonly = true, replicaOf, tls: tlsFiles, sentinel } = {}) {
  const bin = redisServerBinary();
  const p = port || await getFreePort();
  const d = dir || fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-redis-'));
  if (!dir) redisDirs.add(d);
  let argv;
  if (sentinel) {
    const conf = path.join(d, 'sentinel.conf');
    const m = sentinel.masterName;
    fs.writeFileSync(conf, [
      `port ${p}`, 'bind 127.0.0.1', `dir ${d}`, 'logfile ""', 'sentinel resolve-hostnames no',
      `sentinel monitor ${m} 127.0.0.1 ${sentinel.masterPort} 1`,
      `sentinel down-after-milliseconds ${m} ${sentinel.downAfterMs ?? 1000}`,
      `sentinel failover-timeout ${m} ${sentinel.failoverTimeoutMs ?? 5000}`,
      '',
    ].join('\n'));
    argv = [conf, '--sentinel', ...args];
  } else {
    argv = [
      ...(tlsFiles
        ? ['--port', '0', '--tls-port', String(p), '--tls-cert-file', tlsFiles.cert, '--tls-key-file', tlsFiles.key,
          '--tls-ca-cert-file', tlsFiles.ca, '--tls-auth-clients', 'no']
        : ['--port', String(p)]),
      '--bind', '127.0.0.1', '--protected-mode', 'yes', '--dir', d,
      '--save', '', '--daemonize', 'no', '--logfile', '',
      ...(appendonly ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']),
      ...(replicaOf ? ['--replicaof', '127.0.0.1', String(replicaOf)] : []),
      ...args,
    ];
  }
  const proc = spawn(bin, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  redisProcs.add(proc);
  let log = '';
  proc.stdout.setEncoding('utf8');
  proc.stderr.setEncoding('utf8');
  proc.stdout.on('data', (s) => { log += s; });
  proc.stderr.on('data', (s) => { log += s; });
  let exited = null;
  const exitP = new Promise((resolve) => proc.on('exit', (code, signal) => {
    exited = { code, signal };
    redisProcs.delete(proc);
    resolve(exited);
  }));
  await waitFor(async () => {
    if (exited) throw new Error(`redis-server exited (${JSON.stringify(exited)}): ${log}`);
    return (sentinel ? /\+monitor master/ : /Ready to accept connections/).test(log);
  }, { timeoutMs: 10000, message: `redis-server${sentinel ? ' --sentinel' : ''} ready on 127.0.0.1:${p}` });
  const r = {
    port: p,
    dir: d,
    proc,
    log: () => log,
    exited: () => exited,
    client: (o) => RedisClient.connect(p, tlsFiles ? { tls: { ca: fs.readFileSync(tlsFiles.ca) }, ...o } : o),
    /** SIGTERM (then SIGKILL after 10 s), or signal: 'SIGKILL' (a crash: nothing saved). */
    async stop({ signal = 'SIGTERM' } = {}) {
      if (!exited) proc.kill(signal);
      let timer;
      const res = await Promise.race([exitP, new Promise((resolve) => { timer = setTimeout(resolve, 10000, null); })]);
      clearTimeout(timer);
      if (!res) {
        proc.kill('SIGKILL');
        await exitP;
      }
      redisServers.delete(r);
    },
  };
  redisServers.add(r);
  return r;
}

after(async () => {
  for (const r of [...redisServers]) await r.stop();
  // the data dirs made here outlive stop() (a restart finds its data) until the file's end
  if (!process.env.REDIS_TEST_KEEP) for (const d of redisDirs) fs.rmSync(d, { recursive: true, force: true });
});

// ---------------------------------------------------------------- replicas on one Redis

/** The keys every replica shares: {signingKeyPem (EC P-256, PKCS#8), encryptionKey (32
 * random bytes, base64)}, fresh on each call. */
export function sharedKeys() {
  return {
    signingKeyPem: crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' })
      .privateKey.export({ type: 'pkcs8', format: 'pem' }),
    encryptionKey: crypto.randomBytes(32).toString('base64'),
  };
}

/**
 * The config of one replica, the same for all of them but for their listeners:
 * embeddedReplicaConfig({issuer, idp, redis, keyPrefix, backendUrl, caFile, cimd, server,
 *   storage}) → the config object.
 * issuer: the shared issuer (and resource URL <issuer>/mcp, unless server.resourceUrl);
 * idp: startIdp()'s upstream IdP (its client secret in the "idp" secret); redis:
 * startRedis()'s (storage.redis.addr); keyPrefix; backendUrl; caFile: outbound.caFile
 * (optional); cimd: cimd.enabled with insecureAllowLoopback; server: more server.* keys;
 * storage: more (or overriding) storage.redis.* keys.
 * The secrets it names are embeddedReplicaSecrets()'s.
 */
export function embeddedReplicaConfig({ issuer, idp, redis, keyPrefix, backendUrl, caFile, cimd = false,
  server = {}, storage = {} }) {
  return {
    server: { resourceUrl: `${issuer}/mcp`, ...server },
    backend: { url: backendUrl },
    auth: { mode: 'embedded' },
    ...(caFile ? { outbound: { caFile } } : {}),
    embeddedAuthServer: embeddedAS(issuer, idp, {
      baselineClientScopes: ['openid', 'offline_access'],
      ...(cimd ? { cimd: { enabled: true, insecureAllowLoopback: true } } : {}),
      signingKeySecretRefs: [{ name: 'signing', key: 'private.pem' }],
      storage: {
        type: 'redis',
        redis: {
          addr: `127.0.0.1:${redis.port}`,
          keyPrefix,
          encryptionKeySecretRef: { name: 'redis', key: 'encryption_key' },
          dialTimeout: '1s',
          readTimeout: '1s',
          writeTimeout: '1s',
          ...storage,
        },
      },
    }),
  };
}

/** The secrets of embeddedReplicaConfig(): embeddedReplicaSecrets({idp, keys, extra}),
 * keys as sharedKeys() returns them, extra more secrets. */
export function embeddedReplicaSecrets({ idp, keys, extra = {} }) {
  return {
    ...idpSecrets(idp),
    signing: { 'private.pem': keys.signingKeyPem },
    redis: { encryption_key: keys.encryptionKey },
    ...extra,
  };
}
