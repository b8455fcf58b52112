#!/usr/bin/env node
// Reference OAuth-protected MCP server built only from @modelcontextprotocol/sdk pieces
// (mcpAuthRouter + the SDK's DemoInMemoryAuthProvider + requireBearerAuth), bound to
// 127.0.0.1. It lets the harness's headless login (loginAndConnect) be tested without our
// binary, and shows the C team what the SDK's own server side answers.
//
//   node reference-as.mjs [port]
// Ready line on stdout: {"listening":port,"mcpUrl":"http://127.0.0.1:<port>/mcp"}
// Then one line per HTTP request: {"event":"request","method":…,"path":…,"status":…}
//
// Routes: /.well-known/oauth-protected-resource/mcp, /.well-known/oauth-authorization-server,
// /authorize (approves at once, no login), /token, /register, /revoke, and POST /mcp
// (stateless streamable HTTP, one tool "echo") behind a bearer check.
// This server does NOT advertise client_id_metadata_document_supported (no CIMD).
import express from 'express';
import { mcpAuthRouter, getOAuthProtectedResourceMetadataUrl } from '@modelcontextprotocol/sdk/server/auth/router.js';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { DemoInMemoryAuthProvider } from '@modelcontextprotocol/sdk/examples/server/demoInMemoryOAuthProvider.js';
import { z } from 'zod';

const port = Number(process.argv[2] ?? 0) || 0;
const emit = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const app = express();
app.use((req, res, next) => {
  res.on('finish', () => emit({ event: 'request', method: req.method, path: req.path, status: res.statusCode }));
  next();
});

const server = app.listen(port, '127.0.0.1', () => {
  const origin = `http://127.0.0.1:${server.address().port}`;
  const mcpUrl = new URL('/mcp', origin);
  const provider = new DemoInMemoryAuthProvider();
  app.use(mcpAuthRouter({
    provider,
    issuerUrl: new URL(origin),
    resourceServerUrl: mcpUrl,
    scopesSupported: ['mcp:tools'],
  }));
  const bearer = requireBearerAuth({ verifier: provider, resourceMetadataUrl: getOAuthProtectedResourceMetadataUrl(mcpUrl) });
  app.post('/mcp', bearer, express.json(), async (req, res) => {
    const mcp = new McpServer({ name: 'reference-protected', version: '0.0.0' });
    mcp.registerTool('echo', { description: 'echo', inputSchema: { message: z.string() } },
      async ({ message }) => ({ content: [{ type: 'text', text: `Echo: ${message}` }] }));
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.on('close', () => { transport.close(); mcp.close(); });
    await mcp.connect(transport);
    await transport.handleRequest(req, res, req.body);
  });
  app.get('/mcp', bearer, (_req, res) => res.status(405).set('allow', 'POST').end());
  emit({ listening: server.address().port, mcpUrl: mcpUrl.href });
});

for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
if (process.env.PEER_EXIT_ON_STDIN_EOF === '1') {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}
