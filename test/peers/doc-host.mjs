#!/usr/bin/env node
// HTTPS document host (client metadata documents for CIMD tests), bound to 127.0.0.1.
//
//   node doc-host.mjs '{"certFile":"…/leaf.pem","keyFile":"…/leaf.key","port":0,"controlPort":0,"http":false}'
//   (or env DOC_HOST_CONFIG='<json>')
//
// Two listeners (three with "http":true):
//   data    HTTPS on 127.0.0.1:<port>: serves the documents. Connections and requests
//           are counted here, so a test can prove "the host saw no connection".
//   control plain HTTP on 127.0.0.1:<controlPort>: tests set documents and read counters
//           without touching the data listener's counters.
//   http    optional plain-HTTP data listener serving the same documents (to test that an
//           http:// client_id is refused); counted separately.
// Ready line on stdout: {"listening":port,"controlPort":n,"httpPort":n|null}
//
// Control API (JSON bodies):
//   PUT    /docs?path=/x/client.json   body: a document spec (below) → {"ok":true}
//   DELETE /docs?path=/x/client.json   remove one;  DELETE /docs  remove all
//   GET    /stats  → {connections:{https,http,tlsErrors}, requests:{"/path":n},
//                     connectionsByPath:{"/path":n}, notModified:{"/path":n},
//                     log:[{listener,path,method,headers,ts}] (last 200)}
//   POST   /reset  zero the counters (documents stay)
// Document spec (every field optional except one of body/json):
//   json          any JSON value, served serialised (default content-type application/json)
//   body          a raw string body instead of json
//   status        HTTP status (default 200)
//   contentType   Content-Type (default "application/json"; null = omit the header)
//   delayMs       wait before sending the response head
//   bodyDelayMs   send the head, then wait, then the body (slow body)
//   headers       extra response headers {name: value} (e.g. Cache-Control, Location)
//   etag          ETag value (with quotes, e.g. "\"v1\""); If-None-Match match → 304
//   lastModified  Last-Modified value; If-Modified-Since equal → 304
//   oversizeBytes pad the JSON body (an extra "_pad" member) to this many bytes
//   chunked       true: no Content-Length (chunked transfer encoding)
//   hangup        true: destroy the socket without answering
// Unknown paths answer 404 {"error":"not_found"}.
import https from 'node:https';
import http from 'node:http';
import fs from 'node:fs';

let opts = {};
const raw = process.argv[2] ?? process.env.DOC_HOST_CONFIG;
if (raw) opts = JSON.parse(raw);
if (!opts.certFile || !opts.keyFile) {
  process.stderr.write('doc-host.mjs: certFile and keyFile are required\n');
  process.exit(2);
}

const docs = new Map();
const stats = {
  connections: { https: 0, http: 0, tlsErrors: 0 },
  requests: {},
  connectionsByPath: {},
  notModified: {},
  log: [],
};
let connSeq = 0;

function bodyFor(spec) {
  if (spec.body !== undefined) return Buffer.from(String(spec.body));
  let text = JSON.stringify(spec.json ?? {});
  if (spec.oversizeBytes && text.length < spec.oversizeBytes) {
    const base = spec.json && typeof spec.json === 'object' && !Array.isArray(spec.json) ? spec.json : {};
    const skeleton = JSON.stringify({ ...base, _pad: '' });
    text = JSON.stringify({ ...base, _pad: 'x'.repeat(Math.max(0, spec.oversizeBytes - skeleton.length)) });
  }
  return Buffer.from(text);
}

function serve(listener) {
  return (req, res) => {
    const url = new URL(req.url, 'https://127.0.0.1');
    const p = url.pathname;
    stats.requests[p] = (stats.requests[p] || 0) + 1;
    const sock = req.socket;
    sock.__seenPaths = sock.__seenPaths || new Set();
    if (!sock.__seenPaths.has(p)) {
      sock.__seenPaths.add(p);
      stats.connectionsByPath[p] = (stats.connectionsByPath[p] || 0) + 1;
    }
    stats.log.push({ listener, conn: sock.__id, path: p, query: url.search, method: req.method, headers: req.headers, ts: Date.now() });
    if (stats.log.length > 200) stats.log.shift();

    const spec = docs.get(p);
    if (!spec) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"error":"not_found"}');
      return;
    }
    if (spec.hangup) {
      sock.destroy();
      return;
    }
    const respond = () => {
      const headers = { ...(spec.headers || {}) };
      if (spec.contentType !== null) headers['content-type'] = spec.contentType ?? 'application/json';
      if (spec.etag) headers.etag = spec.etag;
      if (spec.lastModified) headers['last-modified'] = spec.lastModified;
      const inm = req.headers['if-none-match'];
      const ims = req.headers['if-modified-since'];
      const etagHit = spec.etag && inm && inm.split(',').map((s) => s.trim().replace(/^W\//, ''))
        .some((t) => t === '*' || t === spec.etag.replace(/^W\//, ''));
      const lmHit = !inm && spec.lastModified && ims && ims === spec.lastModified;
      if ((spec.status ?? 200) === 200 && (etagHit || lmHit)) {
        stats.notModified[p] = (stats.notModified[p] || 0) + 1;
        delete headers['content-type'];
        res.writeHead(304, headers);
        res.end();
        return;
      }
      const body = bodyFor(spec);
      if (!spec.chunked) headers['content-length'] = String(body.length);
      res.writeHead(spec.status ?? 200, headers);
      if (req.method === 'HEAD') {
        res.end();
        return;
      }
      if (spec.bodyDelayMs) {
        res.flushHeaders();
        setTimeout(() => res.end(body), spec.bodyDelayMs);
      } else {
        res.end(body);
      }
    };
    if (spec.delayMs) setTimeout(respond, spec.delayMs);
    else respond();
  };
}

const tlsServer = https.createServer({
  cert: fs.readFileSync(opts.certFile),
  key: fs.readFileSync(opts.keyFile),
}, serve('https'));
tlsServer.on('connection', (s) => { stats.connections.https += 1; s.__id = ++connSeq; });
tlsServer.on('tlsClientError', () => { stats.connections.tlsErrors += 1; });
// secureConnection sockets are TLSSockets wrapping the counted TCP socket.
tlsServer.on('secureConnection', (s) => { s.__id = ++connSeq; });

let plainServer = null;
if (opts.http) {
  plainServer = http.createServer(serve('http'));
  plainServer.on('connection', (s) => { stats.connections.http += 1; s.__id = ++connSeq; });
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString()));
    req.on('error', reject);
  });
}

const control = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  const send = (code, obj) => {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify(obj));
  };
  try {
    if (url.pathname === '/docs' && req.method === 'PUT') {
      const p = url.searchParams.get('path');
      if (!p || !p.startsWith('/')) return send(400, { error: 'path query parameter required' });
      docs.set(p, JSON.parse(await readBody(req)));
      return send(200, { ok: true });
    }
    if (url.pathname === '/docs' && req.method === 'DELETE') {
      const p = url.searchParams.get('path');
      if (p) docs.delete(p); else docs.clear();
      return send(200, { ok: true });
    }
    if (url.pathname === '/docs' && req.method === 'GET') {
      return send(200, Object.fromEntries(docs));
    }
    if (url.pathname === '/stats') return send(200, stats);
    if (url.pathname === '/reset' && req.method === 'POST') {
      stats.connections = { https: 0, http: 0, tlsErrors: 0 };
      stats.requests = {};
      stats.connectionsByPath = {};
      stats.notModified = {};
      stats.log = [];
      return send(200, { ok: true });
    }
    return send(404, { error: 'unknown control endpoint' });
  } catch (e) {
    return send(400, { error: String(e.message || e) });
  }
});

const listen = (srv, port) => new Promise((resolve, reject) => {
  srv.once('error', reject);
  srv.listen({ host: '127.0.0.1', port: Number(port) || 0 }, () => resolve(srv.address().port));
});

const port = await listen(tlsServer, opts.port);
const controlPort = await listen(control, opts.controlPort);
const httpPort = plainServer ? await listen(plainServer, opts.httpPort) : null;
process.stdout.write(JSON.stringify({ listening: port, controlPort, httpPort }) + '\n');

for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
if (process.env.PEER_EXIT_ON_STDIN_EOF === '1') {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}
