#!/usr/bin/env node
// A scripted MCP client for the demo (scripts/demo.sh): the real MCP TypeScript SDK
// (test/peers) logs in through the proxy's embedded authorization server with a Client ID
// Metadata Document (CIMD) and calls a tool, printing every step:
//   401 → discovery (RFC 9728, RFC 8414) → authorize → IdP login → callback → token →
//   initialize → tools/list → tools/call echo "hello" → result
// The browser part of the login is driven headlessly (redirects followed with a cookie jar;
// the demo IdP logs "alice" in without a form).
//
//   node scripts/demo-client.mjs [--dcr] [--url MCP_URL] [--client-metadata-url URL]
//                                [--ca-file PEM] [--message TEXT]
// Defaults come from the running demo's state file (.demo/demo.json, or $MCP_DEMO_DIR/demo.json).
// --dcr: no metadata URL, so the client registers through /oauth/register instead (DCR).
// Exit status 0 when the tool call returned the message, 1 otherwise.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HeadlessOAuthProvider, loginAndConnect } from '../test/integration/lib/oauth-client.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const STATE = path.resolve(process.env.MCP_DEMO_DIR || path.join(ROOT, '.demo'));
const tty = process.stdout.isTTY;
const c = (code, s) => (tty ? `\x1b[${code}m${s}\x1b[0m` : s);
const bold = (s) => c('1', s);
const dim = (s) => c('2', s);
const green = (s) => c('32', s);
const red = (s) => c('31', s);

function usage(msg) {
  if (msg) process.stderr.write(`demo-client: ${msg}\n`);
  process.stderr.write('usage: node scripts/demo-client.mjs [--dcr] [--url MCP_URL] [--client-metadata-url URL] [--ca-file PEM] [--message TEXT]\n');
  process.exit(2);
}

const args = process.argv.slice(2);
const opt = {};
for (let i = 0; i < args.length; i += 1) {
  const a = args[i];
  const val = () => { if (i + 1 >= args.length) usage(`${a} needs a value`); i += 1; return args[i]; };
  if (a === '--dcr') opt.dcr = true;
  else if (a === '--url') opt.url = val();
  else if (a === '--client-metadata-url') opt.clientMetadataUrl = val();
  else if (a === '--ca-file') opt.caFile = val();
  else if (a === '--message') opt.message = val();
  else if (a === '-h' || a === '--help') usage();
  else usage(`unknown argument ${a}`);
}
let demo = {};
const stateFile = path.join(STATE, 'demo.json');
if (fs.existsSync(stateFile)) demo = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
const mcpUrl = opt.url || demo.mcpUrl;
if (!mcpUrl) usage(`no MCP URL: start the demo first (./scripts/demo.sh writes ${path.relative(process.cwd(), stateFile)}) or pass --url`);
const clientMetadataUrl = opt.dcr ? undefined : (opt.clientMetadataUrl || demo.clientMetadataUrl);
const caFile = opt.caFile || demo.caFile;
const redirectUrl = demo.clientRedirectUrl || 'http://127.0.0.1:33418/callback';
const message = opt.message || 'hello';
const mcpOrigin = new URL(mcpUrl).origin;

let n = 0;
const step = (title, detail = '') => {
  n += 1;
  process.stdout.write(`${bold(`${String(n).padStart(2)}.`)} ${bold(title)}${detail ? ` ${detail}` : ''}\n`);
};
const more = (s) => process.stdout.write(`     ${dim(s)}\n`);
const short = (u) => {
  const x = new URL(u);
  const q = x.search.length > 70 ? `${x.search.slice(0, 67)}...` : x.search;
  return (x.origin === mcpOrigin ? '' : x.origin) + x.pathname + q;
};

// ---- every HTTP request the SDK makes, explained
let sawUnauthorized = false;
const seenDiscovery = new Set();
async function explainingFetch(input, init = {}) {
  const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
  const method = init.method || 'GET';
  let res;
  try {
    res = await fetch(input, init);
  } catch (e) {
    step(`${method} ${short(url)}`, red(`failed: ${e.cause?.message || e.message}`));
    throw e;
  }
  const p = url.pathname;
  const json = async () => { try { return await res.clone().json(); } catch { return undefined; } };
  if (url.href.startsWith(mcpUrl) && res.status === 401 && !sawUnauthorized) {
    sawUnauthorized = true;
    step(`${method} ${short(url)} without a token`, `→ ${res.status} Unauthorized`);
    more(`WWW-Authenticate: ${res.headers.get('www-authenticate')}`);
  } else if (url.href.startsWith(mcpUrl) && res.status === 401) {
    step(`${method} ${short(url)}`, red(`→ 401 again: ${res.headers.get('www-authenticate')}`));
  } else if (url.href.startsWith(mcpUrl) && res.status >= 400) {
    step(`${method} ${short(url)}`, red(`→ ${res.status} ${(await res.clone().text()).slice(0, 300)}`));
  } else if (p.startsWith('/.well-known/') && seenDiscovery.has(p)) {
    // the SDK discovers again before the code exchange: nothing new to show
  } else if (p.startsWith('/.well-known/oauth-protected-resource')) {
    seenDiscovery.add(p);
    const j = await json();
    step('discovery: protected-resource metadata (RFC 9728)', `GET ${short(url)} → ${res.status}`);
    if (j) more(`resource ${j.resource}; authorization_servers ${JSON.stringify(j.authorization_servers)}; scopes ${JSON.stringify(j.scopes_supported)}`);
  } else if (p.startsWith('/.well-known/oauth-authorization-server') || p.startsWith('/.well-known/openid-configuration')) {
    seenDiscovery.add(p);
    const j = await json();
    step('discovery: authorization server metadata (RFC 8414)', `GET ${short(url)} → ${res.status}`);
    if (j) {
      more(`issuer ${j.issuer}; client_id_metadata_document_supported: ${j.client_id_metadata_document_supported}`);
      if (clientMetadataUrl && j.client_id_metadata_document_supported === true) {
        more(`→ CIMD: client_id = ${clientMetadataUrl} (no registration; the AS fetches that document)`);
      } else if (clientMetadataUrl) {
        more('→ CIMD not advertised: the SDK falls back to dynamic client registration');
      }
    }
  } else if (p.endsWith('/oauth/register') || p.endsWith('/register')) {
    const j = await json();
    step('dynamic client registration (DCR)', `POST ${short(url)} → ${res.status}`);
    if (j) more(j.client_id ? `client_id ${j.client_id}` : JSON.stringify(j));
  } else if (p.endsWith('/oauth/token') || p.endsWith('/token')) {
    const form = new URLSearchParams(typeof init.body === 'string' ? init.body : init.body instanceof URLSearchParams ? init.body.toString() : '');
    const j = await json();
    step(`token: grant_type=${form.get('grant_type')}`, `POST ${short(url)} → ${res.status}`);
    if (j?.access_token) more(`access_token (${j.token_type}, expires_in ${j.expires_in} s)${j.refresh_token ? ' + refresh_token' : ''}; scope ${j.scope ?? '-'}`);
    else if (j) more(red(`${j.error}: ${j.error_description}`));
  }
  return res;
}

// ---- the authorization redirects (what a browser would show)
let inIdp = false;
function onHop(hop) {
  const u = new URL(hop.url);
  const to = hop.location ? ` → ${hop.status} to ${short(hop.location)}` : ` → ${hop.status}`;
  if (u.origin === mcpOrigin && u.pathname.endsWith('/oauth/authorize')) {
    step('authorize (browser)', `GET ${short(hop.url)}`);
    more(`client_id=${u.searchParams.get('client_id')}  code_challenge_method=${u.searchParams.get('code_challenge_method')}  resource=${u.searchParams.get('resource')}`);
    more(`${hop.status}${hop.location ? ` → redirect to the upstream IdP ${new URL(hop.location).origin}` : ''}`);
  } else if (u.origin === mcpOrigin && u.pathname.endsWith('/oauth/callback')) {
    step('callback from the IdP', `GET ${short(hop.url)}${to.replace(/code=[^&]+/, 'code=…')}`);
    if (hop.location) more(`→ back to the client (${new URL(hop.location).origin}${new URL(hop.location).pathname}) with our authorization code`);
  } else {
    const path = u.pathname.length > 24 ? `${u.pathname.slice(0, 21)}...` : u.pathname;
    if (!inIdp) step('IdP login', `at ${u.origin} (the demo IdP signs "alice" in without a form)`);
    inIdp = true;
    more(`GET ${path}${hop.location ? ` → ${hop.status}${new URL(hop.location).origin === u.origin ? '' : ` to ${new URL(hop.location).origin}${new URL(hop.location).pathname}`}` : ` → ${hop.status}`}`);
    return;
  }
  inIdp = false;
}

async function main() {
  process.stdout.write(`${bold('MCP server')} ${mcpUrl}\n${bold('client')} ${clientMetadataUrl ? `CIMD, client_id ${clientMetadataUrl}` : 'no metadata URL: dynamic client registration'}\n\n`);
  const provider = new HeadlessOAuthProvider({
    redirectUrl,
    clientMetadataUrl,
    caFile,
    onHop,
    clientMetadata: { client_name: 'mcp-proxy-runner demo client (DCR)' },
  });
  let client;
  try {
    client = await loginAndConnect({
      mcpUrl,
      provider,
      baseFetch: explainingFetch,
      clientInfo: { name: 'mcp-proxy-runner-demo-client', version: '1.0.0' },
    });
  } catch (e) {
    const body = e.response ? ` — HTTP ${e.response.status} ${e.response.body.slice(0, 300)}` : '';
    process.stdout.write(`\n${red('login/connect failed:')} ${e.message}${body && !e.message.includes(e.response.body.slice(0, 40)) ? body : ''}\n`);
    if (/\b501\b|not_implemented/.test(`${e.message} ${body}`)) {
      process.stdout.write(red('This proxy build has no bearer-token guard / authorization server yet (see the demo\'s "What this build does").\n'));
    }
    process.exit(1);
  }
  const v = client.getServerVersion();
  step('initialize', `→ server ${v?.name} ${v?.version}, protocol ${client.mcpTransport.protocolVersion ?? '(negotiated)'}`);
  const { tools } = await client.listTools();
  step('tools/list', `→ ${tools.length} tools`);
  more(tools.map((t) => t.name).join(', '));
  const r = await client.callTool({ name: 'echo', arguments: { message } });
  const text = (r.content || []).filter((x) => x.type === 'text').map((x) => x.text).join(' ');
  step(`tools/call echo ${JSON.stringify({ message })}`, `→ ${JSON.stringify(text)}`);
  await client.close();
  if (!text.includes(message)) {
    process.stdout.write(`\n${red('unexpected tool result:')} ${JSON.stringify(r)}\n`);
    process.exit(1);
  }
  process.stdout.write(`\n${green('✔ logged in through the proxy and called a tool')} (user "alice" at the demo IdP; `
    + `${clientMetadataUrl ? 'client identified by its metadata document, no registration' : 'client registered with DCR'})\n`);
}

main().catch((e) => {
  process.stdout.write(`\n${red('failed:')} ${e.stack || e.message}\n`);
  process.exit(1);
});
