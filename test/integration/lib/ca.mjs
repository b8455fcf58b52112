// Test certificate authority for loopback HTTPS peers, made with the openssl CLI.
//
//   createTestCA({dir?}) → Promise<{dir, caFile, caKeyFile, certFile, keyFile, ca, cert, key}>
//     A fresh CA (CN "mcp-proxy-runner test CA") and a leaf certificate for
//     127.0.0.1 / ::1 / localhost (SAN IP:127.0.0.1, IP:::1, DNS:localhost),
//     EC P-256, valid 2 days. Files: ca.pem, ca.key, leaf.pem, leaf.key in dir
//     (default: a new mkdtemp dir under os.tmpdir()). ca/cert/key are the PEM strings.
//   getTestCA() → the same, generated once per process (cached) and removed at exit.
//   issueLeaf(ca, {dir, name, sans:["IP:127.0.0.1",…], cn}) → {certFile, keyFile, cert, key}
//     another leaf signed by the CA (e.g. a cert for the wrong name).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const run = promisify(execFile);
const openssl = (args, cwd) => run('openssl', args, { cwd });

export async function issueLeaf(ca, { dir = ca.dir, name = 'leaf2', cn = 'localhost',
  sans = ['IP:127.0.0.1', 'IP:::1', 'DNS:localhost'], days = 2 } = {}) {
  const keyFile = path.join(dir, `${name}.key`);
  const csrFile = path.join(dir, `${name}.csr`);
  const certFile = path.join(dir, `${name}.pem`);
  const extFile = path.join(dir, `${name}.ext`);
  fs.writeFileSync(extFile, [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage=serverAuth',
    `subjectAltName=${sans.join(',')}`,
    'subjectKeyIdentifier=hash',
    'authorityKeyIdentifier=keyid,issuer',
    '',
  ].join('\n'));
  await openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', keyFile, '-out', csrFile, '-subj', `/CN=${cn}`]);
  await openssl(['x509', '-req', '-in', csrFile, '-CA', ca.caFile, '-CAkey', ca.caKeyFile,
    '-CAcreateserial', '-out', certFile, '-days', String(days), '-sha256', '-extfile', extFile]);
  return { certFile, keyFile, cert: fs.readFileSync(certFile, 'utf8'), key: fs.readFileSync(keyFile, 'utf8') };
}

export async function createTestCA({ dir } = {}) {
  dir = dir || fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-test-ca-'));
  fs.mkdirSync(dir, { recursive: true });
  const caFile = path.join(dir, 'ca.pem');
  const caKeyFile = path.join(dir, 'ca.key');
  await openssl(['req', '-x509', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', caKeyFile, '-out', caFile, '-days', '2', '-sha256',
    '-subj', '/CN=mcp-proxy-runner test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    '-addext', 'subjectKeyIdentifier=hash']);
  const ca = { dir, caFile, caKeyFile, ca: fs.readFileSync(caFile, 'utf8') };
  const leaf = await issueLeaf(ca, { dir, name: 'leaf' });
  return { ...ca, ...leaf };
}

let cached;
export function getTestCA() {
  if (!cached) {
    cached = createTestCA();
    cached.then((ca) => {
      process.once('exit', () => {
        try { fs.rmSync(ca.dir, { recursive: true, force: true }); } catch { /* ignore */ }
      });
    }, () => {});
  }
  return cached;
}
