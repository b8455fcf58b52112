// The seed user guide ("Enable CIMD on the embedded authorization server",
// test/integration/data/seed-guide-cimd.txt, a verbatim copy) as a newcomer
// follows it: both of its MCPExternalAuthConfig manifests ("Enable CIMD" and
// "Complete example"), taken from the guide's text and mounted unchanged with
// their Secret, pass --check-config, print with the secret redacted, start,
// and the guide's "Verify the configuration" command prints
// "client_id_metadata_document_supported": true.
//
// The guide's text lost the YAML indentation (every line is at column 0), so
// the manifests are rebuilt from the nesting of ToolHive's schema (the only
// thing lost) and must equal the hand-indented copies in data/ byte for byte.
//
// Only the proxy's own settings come from the environment, as in a pod:
// listeners on 127.0.0.1:0 (the guide's port-forward target is the proxy's
// MCP port) and a loopback backend port that nothing listens on.
// server.resourceUrl is not set: it is derived from the issuer. Nothing here
// leaves 127.0.0.1 (the upstream IdP's discovery is lazy: no login happens).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  PROXY_BIN, SOURCE_DIR, SLOW, SANITIZER_PATTERNS, getFreePort, parseJsonLines, waitFor, request,
} from './lib/harness.mjs';

const DATA = path.join(SOURCE_DIR, 'test/integration/data');
const GUIDE = fs.readFileSync(path.join(DATA, 'seed-guide-cimd.txt'), 'utf8');

// ToolHive's MCPExternalAuthConfig, as far as the guide's examples go: a key
// maps to its children (an object), to LIST_OF(item schema) or to a scalar.
const SCALAR = null;
const LIST_OF = (item) => ({ list: item });
const SCHEMA = {
  apiVersion: SCALAR,
  kind: SCALAR,
  metadata: { name: SCALAR, namespace: SCALAR },
  spec: {
    type: SCALAR,
    embeddedAuthServer: {
      issuer: SCALAR,
      upstreamProviders: LIST_OF({
        name: SCALAR,
        type: SCALAR,
        oidcConfig: {
          issuerUrl: SCALAR,
          clientId: SCALAR,
          clientSecretRef: { name: SCALAR, key: SCALAR },
        },
      }),
      baselineClientScopes: LIST_OF(SCALAR),
      cimd: { enabled: SCALAR, cacheMaxSize: SCALAR, cacheFallbackTtl: SCALAR },
    },
  },
};

const YAML_LINE = /^(- )?([A-Za-z][A-Za-z0-9]*):( .*)?$|^- [^\s:]+$/;

/** The manifests of the guide text as written: from each "apiVersion:" line to the last YAML-shaped line. */
function extractManifests(text) {
  const lines = text.split('\n');
  const out = [];
  for (let i = 0; i < lines.length; i += 1) {
    if (!lines[i].startsWith('apiVersion: ')) continue;
    const m = [];
    while (i < lines.length && YAML_LINE.test(lines[i])) m.push(lines[i++]);
    out.push(m);
  }
  return out;
}

/**
 * Re-indent flat YAML lines by the schema: each key goes into the innermost open
 * mapping that has it (two spaces per level, list items "- " two spaces in, as
 * ToolHive's docs write them). Throws on a key the schema does not place.
 */
function reindent(flat) {
  // stack entries: {schema, indent} of open mappings; list: {item, indent} of an open list
  const stack = [{ schema: SCHEMA, indent: 0 }];
  const out = [];
  for (const line of flat) {
    const m = /^(- )?([^:\s]+)(?::( .*)?)?$/.exec(line);
    const dash = Boolean(m[1]);
    const key = m[2];
    const isKey = line.includes(':');
    let top;
    for (;;) {
      top = stack[stack.length - 1];
      if (top.list !== undefined && dash) break;
      if (top.schema && isKey && !dash && Object.hasOwn(top.schema, key)) break;
      if (stack.length === 1) throw new Error(`schema has no place for line "${line}"`);
      stack.pop();
    }
    if (top.list !== undefined) {
      // a new list item: "- scalar" or "- key: ..." opening the item's mapping
      out.push(`${' '.repeat(top.indent)}${line}`);
      if (top.list === SCALAR) continue;
      if (!Object.hasOwn(top.list, key)) throw new Error(`list item has no key "${key}": "${line}"`);
      const itemIndent = top.indent + 2;
      stack.push({ schema: top.list, indent: itemIndent });
      if (m[3] === undefined) pushChild(stack, top.list[key], itemIndent + 2);
      continue;
    }
    out.push(`${' '.repeat(top.indent)}${line}`);
    if (m[3] === undefined) pushChild(stack, top.schema[key], top.indent + 2);
  }
  return `${out.join('\n')}\n`;
}

function pushChild(stack, child, indent) {
  if (child && child.list !== undefined) stack.push({ list: child.list, indent });
  else if (child) stack.push({ schema: child, indent });
  else throw new Error('a scalar key without a value');
}

function cleanEnv(extra) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('MCP_PROXY_')) env[k] = v;
  return { ...env, ...extra };
}

function checkNoSanitizer(stderr) {
  const bad = stderr.split('\n').filter((l) => SANITIZER_PATTERNS.some((re) => re.test(l)));
  assert.deepEqual(bad, [], `sanitizer report:\n${stderr}`);
}

const manifests = extractManifests(GUIDE);

test('the guide holds two manifests; rebuilt, they are the hand-indented copies byte for byte', () => {
  assert.equal(manifests.length, 2, 'the "Enable CIMD" and "Complete example" manifests');
  assert.ok(manifests.every((m) => m.every((l) => !l.startsWith(' '))), 'the guide text has no indentation left');
  assert.equal(reindent(manifests[0]), fs.readFileSync(path.join(DATA, 'seed-enable-cimd.yaml'), 'utf8'));
  assert.equal(reindent(manifests[1]), fs.readFileSync(path.join(DATA, 'seed-complete-example.yaml'), 'utf8'));
});

for (const [i, label, secretName] of [[0, 'Enable CIMD', 'github-client-secret'], [1, 'Complete example', 'google-oauth-secret']]) {
  test(`seed guide "${label}" manifest: --check-config, --print-config, start, Verify`, async (t) => {
    assert.ok(PROXY_BIN, 'MCP_PROXY_BIN is set (run through ctest)');
    const yaml = reindent(manifests[i]);
    assert.match(yaml, new RegExp(`name: ${secretName}\\n\\s+key: client_secret\\n`));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-seed-'));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'my-embedded-auth-server.yaml');
    fs.writeFileSync(file, yaml);
    // The Secret as Kubernetes mounts it: <secretsDir>/<name>/<key>.
    const secret = `seed-test-secret-${process.pid}-${i}`;
    const secrets = path.join(dir, 'secrets');
    fs.mkdirSync(path.join(secrets, secretName), { recursive: true });
    fs.writeFileSync(path.join(secrets, secretName, 'client_secret'), `${secret}\n`);
    const run = (args) => spawnSync(PROXY_BIN, ['--config', file, ...args], {
      encoding: 'utf8', timeout: 20000 * SLOW, env: cleanEnv({ MCP_PROXY_SECRETS_DIR: secrets }),
    });

    const check = run(['--check-config']);
    checkNoSanitizer(check.stderr);
    assert.equal(check.status, 0, `--check-config:\n${check.stdout}${check.stderr}`);
    assert.equal(check.stdout, `configuration OK: ${file}\n`);

    const print = run(['--print-config']);
    checkNoSanitizer(print.stderr);
    assert.equal(print.status, 0, print.stderr);
    assert.match(print.stdout, /\n {2}resourceUrl: "https:\/\/auth\.example\.com\/mcp" {2}# derived: embeddedAuthServer\.issuer \+ "\/mcp"/);
    assert.match(print.stdout, new RegExp(`clientSecretRef: \\{name: "${secretName}", key: "client_secret"\\} {2}# value: <redacted>`));
    assert.match(print.stdout, /\n {4}enabled: true\n/);
    assert.ok(!print.stdout.includes(secret) && !print.stderr.includes(secret), 'the secret is never printed');

    // Start it as the pod would, listeners on loopback.
    const backendPort = await getFreePort();
    const proc = spawn(PROXY_BIN, ['--config', file], {
      env: cleanEnv({
        MCP_PROXY_SECRETS_DIR: secrets,
        MCP_PROXY_SERVER_LISTEN: '127.0.0.1:0',
        MCP_PROXY_SERVER_DIAGNOSTICSLISTEN: '127.0.0.1:0',
        MCP_PROXY_BACKEND_URL: `http://127.0.0.1:${backendPort}`,
      }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let exited = null;
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (d) => { stderr += d; });
    const exit = new Promise((resolve) => proc.on('close', (code, signal) => { exited = { code, signal }; resolve(exited); }));
    t.after(() => { if (!exited) proc.kill('SIGKILL'); });
    const logs = () => parseJsonLines(stderr);
    const port = await waitFor(() => {
      if (exited) throw new Error(`proxy exited (${JSON.stringify(exited)}):\n${stderr}`);
      const l = logs().filter((x) => x.msg === 'listening');
      return l.some((x) => x.listener === 'diagnostics') && l.find((x) => x.listener === 'mcp')?.port;
    }, { timeoutMs: 10000, message: 'the listening log lines' });

    const derived = logs().filter((l) => l.msg === 'server.resourceUrl derived from embeddedAuthServer.issuer');
    assert.equal(derived.length, 1, stderr);
    assert.equal(derived[0].resourceUrl, 'https://auth.example.com/mcp');
    assert.equal(derived[0].level, 'info');

    // The guide's Verify step, word for word but for the port.
    const verify = spawnSync('bash', ['-o', 'pipefail', '-c',
      `curl -s http://127.0.0.1:${port}/.well-known/oauth-authorization-server | \\\n` +
      'python3 -m json.tool | grep client_id_metadata_document'], { encoding: 'utf8', timeout: 20000 });
    assert.equal(verify.status, 0, `verify: ${verify.stderr}`);
    assert.equal(verify.stdout.trim(), '"client_id_metadata_document_supported": true');

    // The derived resource URL is what the proxy protects and announces.
    const prm = await request(`http://127.0.0.1:${port}/.well-known/oauth-protected-resource/mcp`);
    assert.equal(prm.status, 200);
    assert.equal(JSON.parse(prm.body).resource, 'https://auth.example.com/mcp');
    const mcp = await request(`http://127.0.0.1:${port}/mcp`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"jsonrpc":"2.0","id":1,"method":"ping"}',
    });
    assert.equal(mcp.status, 401);
    assert.match(mcp.headers['www-authenticate'],
      /resource_metadata="https:\/\/auth\.example\.com\/\.well-known\/oauth-protected-resource\/mcp"/);

    proc.kill('SIGTERM');
    const res = await exit;
    checkNoSanitizer(stderr);
    assert.deepEqual(res, { code: 0, signal: null }, stderr);
    assert.ok(!stderr.includes(secret), 'the secret is never logged');
  });
}
