// Small HTTP(S) client for tests (no redirects followed, custom CA, raw access).
//
//   request(url, {method, headers, body, ca, caFile, timeoutMs, jar}) →
//     Promise<{status, headers, body (string), buffer, json() , setCookie:[…]}>
//     body may be a string, Buffer, URLSearchParams (sent as form) or a plain object (sent as JSON).
//     ca: PEM string(s) trusted for https; caFile: path of a PEM file. jar: a CookieJar.
//   new CookieJar() — browser-like: cookies keyed by host name (not port), path-matched,
//     Max-Age/Expires honoured. jar.header(url) → "a=b; c=d"; jar.store(url, setCookieHeaders);
//     jar.all() → [{host,name,value,path}].
//   followAuthorization(url, {redirectUri, jar, ca, caFile, maxHops=30, onHop}) →
//     Promise<{code, state, iss, error, errorDescription, location, hops:[{url,status,location}]}>
//     GETs url and follows 3xx Location headers by hand, carrying the cookie jar, until a
//     Location starts with redirectUri (origin + path; nothing is ever requested there).
//     A non-redirect answer before that rejects with an Error whose .response and .hops are set.
import http from 'node:http';
import https from 'node:https';
import fs from 'node:fs';

export function request(url, { method = 'GET', headers = {}, body, ca, caFile, timeoutMs = 15000, jar, localAddress } = {}) {
  const u = new URL(url);
  const h = { ...headers };
  let payload;
  if (body !== undefined && body !== null) {
    if (body instanceof URLSearchParams) {
      payload = Buffer.from(body.toString());
      h['content-type'] ??= 'application/x-www-form-urlencoded';
    } else if (Buffer.isBuffer(body) || typeof body === 'string') {
      payload = Buffer.from(body);
    } else {
      payload = Buffer.from(JSON.stringify(body));
      h['content-type'] ??= 'application/json';
    }
    h['content-length'] = String(payload.length);
  }
  if (jar) {
    const c = jar.header(u);
    if (c) h.cookie = c;
  }
  const lib = u.protocol === 'https:' ? https : http;
  const options = { method, headers: h, agent: false };
  if (localAddress) options.localAddress = localAddress; // another loopback source, e.g. 127.0.0.2
  if (u.protocol === 'https:') {
    if (caFile) options.ca = fs.readFileSync(caFile);
    if (ca) options.ca = ca;
  }
  return new Promise((resolve, reject) => {
    const req = lib.request(u, options, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const buffer = Buffer.concat(chunks);
        const setCookie = res.headers['set-cookie'] || [];
        if (jar && setCookie.length) jar.store(u, setCookie);
        const text = buffer.toString('utf8');
        resolve({
          status: res.statusCode,
          headers: res.headers,
          body: text,
          buffer,
          setCookie,
          json() { return JSON.parse(text); },
        });
      });
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`timeout after ${timeoutMs} ms: ${method} ${url}`)));
    req.on('error', reject);
    if (payload) req.write(payload);
    req.end();
  });
}

export class CookieJar {
  constructor() { this.cookies = []; }

  store(url, setCookieHeaders) {
    const u = new URL(url);
    for (const line of [].concat(setCookieHeaders)) {
      const parts = line.split(';').map((s) => s.trim());
      const [nv, ...attrs] = parts;
      const eq = nv.indexOf('=');
      if (eq <= 0) continue;
      const name = nv.slice(0, eq);
      const value = nv.slice(eq + 1);
      let path = u.pathname.replace(/\/[^/]*$/, '') || '/';
      let expires = Infinity;
      for (const a of attrs) {
        const i = a.indexOf('=');
        const k = (i < 0 ? a : a.slice(0, i)).toLowerCase();
        const v = i < 0 ? '' : a.slice(i + 1);
        if (k === 'path' && v.startsWith('/')) path = v;
        else if (k === 'max-age') expires = Date.now() + Number(v) * 1000;
        else if (k === 'expires' && expires === Infinity) expires = Date.parse(v);
      }
      this.cookies = this.cookies.filter((c) => !(c.host === u.hostname && c.name === name && c.path === path));
      if (expires > Date.now()) this.cookies.push({ host: u.hostname, name, value, path, expires });
    }
  }

  header(url) {
    const u = new URL(url);
    const now = Date.now();
    return this.cookies
      .filter((c) => c.host === u.hostname && c.expires > now
        && (u.pathname === c.path || u.pathname.startsWith(c.path.endsWith('/') ? c.path : c.path + '/')))
      .sort((a, b) => b.path.length - a.path.length)
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }

  all() { return this.cookies.map(({ host, name, value, path }) => ({ host, name, value, path })); }
}

function matchesRedirect(location, redirectUri) {
  const a = new URL(location);
  const b = new URL(redirectUri);
  return a.origin === b.origin && a.pathname === b.pathname;
}

export async function followAuthorization(url, { redirectUri, jar = new CookieJar(), ca, caFile, maxHops = 30, onHop } = {}) {
  if (!redirectUri) throw new Error('followAuthorization: redirectUri is required');
  const hops = [];
  let current = String(url);
  for (let i = 0; i < maxHops; i += 1) {
    const res = await request(current, { jar, ca, caFile });
    const location = res.headers.location ? new URL(res.headers.location, current).href : undefined;
    hops.push({ url: current, status: res.status, location });
    onHop?.(hops[hops.length - 1], res);
    if (res.status >= 300 && res.status < 400 && location) {
      if (matchesRedirect(location, redirectUri)) {
        const q = new URL(location).searchParams;
        return {
          code: q.get('code') ?? undefined,
          state: q.get('state') ?? undefined,
          iss: q.get('iss') ?? undefined,
          error: q.get('error') ?? undefined,
          errorDescription: q.get('error_description') ?? undefined,
          location,
          hops,
          jar,
        };
      }
      current = location;
      continue;
    }
    const err = new Error(`authorization flow stopped at ${current}: HTTP ${res.status} ${res.body.slice(0, 500)}`);
    err.response = res;
    err.hops = hops;
    throw err;
  }
  const err = new Error(`authorization flow: more than ${maxHops} redirects`);
  err.hops = hops;
  throw err;
}
