#!/usr/bin/env node
// MCP backend peer: @modelcontextprotocol/server-everything, bound to 127.0.0.1.
//
//   node backend.mjs [streamable-http|sse] [port]
//
// server-everything has no host option and calls express app.listen(PORT) on
// all interfaces, so before importing it we patch net.Server.prototype.listen
// to force host 127.0.0.1. Port 0 means ephemeral. When the server listens we
// print ONE line on stdout: {"listening":<port>,"mode":"...","path":"/mcp"|"/sse"}.
// Everything server-everything prints (it uses console.log too) goes to stderr.
//
// Endpoints: streamable-http: POST/GET/DELETE /mcp
//            sse:             GET /sse (event stream), POST /message?sessionId=…
import net from 'node:net';

const modeArg = (process.argv[2] || 'streamable-http').toLowerCase();
const portArg = process.argv[3] ?? process.env.PORT ?? '0';
const modes = {
  'streamable-http': 'streamableHttp.js',
  streamablehttp: 'streamableHttp.js',
  http: 'streamableHttp.js',
  sse: 'sse.js',
};
const file = modes[modeArg];
if (!file) {
  process.stderr.write(`backend.mjs: unknown mode ${modeArg} (streamable-http|sse)\n`);
  process.exit(2);
}
const mode = file === 'sse.js' ? 'sse' : 'streamable-http';

// Keep stdout for our single JSON line.
const toStderr = (...a) => process.stderr.write(a.map(String).join(' ') + '\n');
console.log = toStderr;
console.info = toStderr;

const origListen = net.Server.prototype.listen;
let announced = false;
net.Server.prototype.listen = function patchedListen(...args) {
  // Normalise every form (port[, host][, backlog][, cb] | options[, cb]) to
  // options with host 127.0.0.1.
  let cb;
  if (typeof args[args.length - 1] === 'function') cb = args.pop();
  let opts;
  if (args.length && typeof args[0] === 'object' && args[0] !== null) {
    opts = { ...args[0] };
  } else {
    opts = { port: args[0] === undefined ? 0 : Number(args[0]) };
  }
  opts.host = '127.0.0.1';
  if (opts.path) delete opts.path;
  this.once('listening', () => {
    if (announced) return;
    announced = true;
    const port = this.address().port;
    process.stdout.write(JSON.stringify({ listening: port, mode, path: mode === 'sse' ? '/sse' : '/mcp' }) + '\n');
  });
  return origListen.call(this, opts, cb);
};

process.env.PORT = String(Number(portArg) || 0);
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
if (process.env.PEER_EXIT_ON_STDIN_EOF === '1') {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}

await import(`@modelcontextprotocol/server-everything/dist/transports/${file}`);
