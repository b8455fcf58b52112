#!/usr/bin/env node
// Upstream OIDC IdP peer built on oidc-provider, bound to 127.0.0.1.
//
//   node idp.mjs '<json options>'        (or env IDP_CONFIG='<json>')
//
// Options (all optional):
//   port            0 = ephemeral (default)
//   clients         [{client_id, client_secret, redirect_uris, token_endpoint_auth_method?,
//                     grant_types?, scope?}]   (default: one client, see below)
//   client_id, client_secret, redirect_uris, token_endpoint_auth_method
//                   shorthand for a single confidential client
//                   (defaults "upstream-client" / "upstream-secret" /
//                   ["http://127.0.0.1/callback"] / "client_secret_basic")
//   user            claims of the one user; default {sub:"alice", email:"alice@example.test",
//                   email_verified:true, name:"Alice Example", preferred_username:"alice"}
//   users           {"<sub>": {claims…}}: more users; POST /__idp/control {user:"<sub>"} picks
//                   who the next logins are (default: `user`). A `groups` claim is released
//                   with the `groups` scope.
//   idTokenClaims   true: the ID token carries the scopes' claims too (oidc-provider's
//                   conformIdTokenClaims off), as many IdPs do for groups
//   accessTokenGroups true: JWT access tokens carry the user's `groups` claim
//   deny            true: every login is refused → redirect back with error=access_denied
//   requirePkce     default true (S256 only)
//   accessTokenTTL, idTokenTTL, refreshTokenTTL, authorizationCodeTTL  seconds
//                   (defaults 3600, 3600, 86400, 60)
//   rotateRefreshToken  default true
//   strictOfflineAccess default false: refresh tokens for every refresh_token-capable client;
//                   true: only when offline_access was granted (which oidc-provider grants
//                   only when the authorization request also has prompt=consent)
//   resources       {"<resource indicator>": {scope:"mcp:tools …", accessTokenTTL?, audience?}}
//                   resource servers for which JWT access tokens are issued (RFC 8707).
//                   When absent, ANY resource indicator is accepted with scope
//                   `resourceScope` (default "mcp:tools") and audience = the indicator.
//   resourceScope   see above
//   revealTokens    true: each token response is also printed as an event
//                   {"event":"issued","grant_type",access_token,refresh_token,id_token}
//                   (for tests that look for the IdP's tokens where they must not be)
//
// When ready prints ONE line on stdout:
//   {"listening":port,"issuer":"http://127.0.0.1:port","clients":[…ids]}
// then one JSON line per notable event on stdout ({"event":"token",…}).
//
// Control endpoints (not part of OIDC, for tests):
//   GET  /__idp/stats    → {"requests":{"<route>":n,…},"tokens":{"<grant_type>":n},"logins":n,"denied":n,
//                           "tokenAuthMethods":{"client_secret_basic":n,…}, "last":{…}}
//   POST /__idp/control  JSON body {deny?:bool, accessTokenTTL?:seconds, user?:sub} → new settings
//   POST /__idp/reset    zero the counters
import http from 'node:http';
import crypto from 'node:crypto';
import Provider from 'oidc-provider';

let opts = {};
const raw = process.argv[2] ?? process.env.IDP_CONFIG;
if (raw) {
  try {
    opts = JSON.parse(raw);
  } catch (e) {
    process.stderr.write(`idp.mjs: bad JSON options: ${e.message}\n`);
    process.exit(2);
  }
}

const settings = {
  deny: !!opts.deny,
  accessTokenTTL: opts.accessTokenTTL ?? 3600,
};
const user = {
  sub: 'alice',
  email: 'alice@example.test',
  email_verified: true,
  name: 'Alice Example',
  preferred_username: 'alice',
  ...(opts.user || {}),
};
const users = { [user.sub]: user, ...(opts.users || {}) };
let current = user.sub; // who logs in next (POST /__idp/control {user})

const clients = (opts.clients || [{
  client_id: opts.client_id || 'upstream-client',
  client_secret: opts.client_secret || 'upstream-secret',
  redirect_uris: opts.redirect_uris || ['http://127.0.0.1/callback'],
  token_endpoint_auth_method: opts.token_endpoint_auth_method || 'client_secret_basic',
}]).map((c) => ({
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
  ...c,
}));

const stats = { requests: {}, tokens: {}, logins: 0, denied: 0, tokenAuthMethods: {}, last: {} };
const emit = (ev) => process.stdout.write(JSON.stringify(ev) + '\n');

// Signing keys generated per run.
const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
rsa.kid = 'rs-' + crypto.randomBytes(4).toString('hex');
rsa.alg = 'RS256';
rsa.use = 'sig';
ec.kid = 'es-' + crypto.randomBytes(4).toString('hex');
ec.alg = 'ES256';
ec.use = 'sig';

const resourceScope = opts.resourceScope || 'mcp:tools';
function resourceInfo(indicator) {
  const conf = opts.resources ? opts.resources[indicator] : { scope: resourceScope };
  if (!conf) return undefined;
  return {
    scope: conf.scope ?? resourceScope,
    audience: conf.audience ?? indicator,
    accessTokenTTL: conf.accessTokenTTL ?? settings.accessTokenTTL,
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg: 'RS256' } },
  };
}

const server = http.createServer();
server.listen({ host: '127.0.0.1', port: Number(opts.port) || 0 }, () => {
  const port = server.address().port;
  const issuer = `http://127.0.0.1:${port}`;

  const provider = new Provider(issuer, {
    clients,
    jwks: { keys: [rsa, ec] },
    cookies: { keys: [crypto.randomBytes(16).toString('hex')] },
    scopes: ['openid', 'offline_access', 'profile', 'email', 'groups'],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username'],
      groups: ['groups'],
    },
    conformIdTokenClaims: !opts.idTokenClaims,
    extraTokenClaims: async (_ctx, token) => (opts.accessTokenGroups && token.kind === 'AccessToken'
      ? { groups: (users[token.accountId] || user).groups ?? [] } : undefined),
    findAccount: (_ctx, id) => ({
      accountId: id,
      claims: () => ({ ...(users[id] || user), sub: id }),
    }),
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    pkce: { required: () => opts.requirePkce !== false },
    features: {
      devInteractions: { enabled: false },
      introspection: { enabled: true },
      revocation: { enabled: true },
      userinfo: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: (_ctx, _client, oneOf) => oneOf,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, indicator) => {
          const info = resourceInfo(indicator);
          if (!info) throw new Provider.errors.InvalidTarget();
          return info;
        },
      },
    },
    ttl: {
      AccessToken: () => settings.accessTokenTTL,
      IdToken: opts.idTokenTTL ?? 3600,
      RefreshToken: opts.refreshTokenTTL ?? 86400,
      AuthorizationCode: opts.authorizationCodeTTL ?? 60,
      Interaction: 600,
      Session: 86400,
      Grant: 86400,
    },
    rotateRefreshToken: opts.rotateRefreshToken ?? true,
    // oidc-provider drops offline_access unless the request has prompt=consent (OIDC Core
    // §11); real IdPs differ. By default refresh tokens are issued to every client allowed the
    // refresh_token grant, offline_access or not; strictOfflineAccess:true restores the rule.
    issueRefreshToken: async (_ctx, client, code) => client.grantTypeAllowed('refresh_token')
      && (code.scopes.has('offline_access') || !opts.strictOfflineAccess),
    expiresWithSession: async () => false,
    renderError: async (ctx, out) => {
      ctx.type = 'json';
      ctx.body = out;
    },
  });

  provider.on('grant.success', (ctx) => {
    const gt = ctx.oidc.params?.grant_type || 'unknown';
    stats.tokens[gt] = (stats.tokens[gt] || 0) + 1;
    const method = ctx.oidc.client?.clientAuthMethod;
    stats.tokenAuthMethods[method] = (stats.tokenAuthMethods[method] || 0) + 1;
    stats.last.token = { grant_type: gt, client_id: ctx.oidc.client?.clientId, auth: method };
    emit({ event: 'token', grant_type: gt, client_id: ctx.oidc.client?.clientId, auth: method });
    if (opts.revealTokens && ctx.body && typeof ctx.body === 'object') {
      const { access_token, refresh_token, id_token } = ctx.body;
      emit({ event: 'issued', grant_type: gt, access_token, refresh_token, id_token });
    }
  });
  provider.on('grant.error', (ctx, err) => {
    emit({ event: 'token_error', grant_type: ctx.oidc?.params?.grant_type, error: err.error, description: err.error_description });
  });
  provider.on('authorization.error', (ctx, err) => {
    emit({ event: 'authorization_error', error: err.error, description: err.error_description });
  });
  provider.on('server_error', (ctx, err) => {
    emit({ event: 'server_error', message: String(err?.stack || err) });
  });

  const callback = provider.callback();

  async function interaction(req, res) {
    const details = await provider.interactionDetails(req, res);
    const { prompt, params, session } = details;
    let result;
    if (prompt.name === 'login') {
      if (settings.deny) {
        stats.denied += 1;
        emit({ event: 'login_denied', client_id: params.client_id });
        result = { error: 'access_denied', error_description: 'login refused by test IdP' };
      } else {
        stats.logins += 1;
        emit({ event: 'login', sub: current, client_id: params.client_id });
        result = { login: { accountId: current } };
      }
    } else if (prompt.name === 'consent') {
      let grant;
      if (details.grantId) grant = await provider.Grant.find(details.grantId);
      if (!grant) grant = new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
      const d = prompt.details || {};
      if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
      if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
      if (d.missingResourceScopes) {
        for (const [indicator, scopes] of Object.entries(d.missingResourceScopes)) {
          grant.addResourceScope(indicator, scopes.join(' '));
        }
      }
      const grantId = await grant.save();
      result = { consent: { grantId } };
    } else {
      result = { error: 'access_denied', error_description: `unsupported prompt ${prompt.name}` };
    }
    await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
  }

  function readJson(req) {
    return new Promise((resolve) => {
      let b = '';
      req.on('data', (c) => { b += c; });
      req.on('end', () => {
        try { resolve(b ? JSON.parse(b) : {}); } catch { resolve({}); }
      });
    });
  }

  server.on('request', async (req, res) => {
    const path = req.url.split('?')[0];
    const route = path.startsWith('/interaction/') ? '/interaction' : path;
    if (!path.startsWith('/__idp/')) stats.requests[route] = (stats.requests[route] || 0) + 1;
    try {
      if (path.startsWith('/interaction/')) {
        await interaction(req, res);
      } else if (path === '/__idp/stats') {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ ...stats, settings }));
      } else if (path === '/__idp/control' && req.method === 'POST') {
        const body = await readJson(req);
        if ('deny' in body) settings.deny = !!body.deny;
        if ('accessTokenTTL' in body) settings.accessTokenTTL = Number(body.accessTokenTTL);
        if (typeof body.user === 'string' && users[body.user]) current = body.user;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ ...settings, user: current }));
      } else if (path === '/__idp/reset' && req.method === 'POST') {
        stats.requests = {}; stats.tokens = {}; stats.logins = 0; stats.denied = 0;
        stats.tokenAuthMethods = {}; stats.last = {};
        res.end('{}');
      } else {
        callback(req, res);
      }
    } catch (e) {
      emit({ event: 'handler_error', message: String(e?.stack || e) });
      if (!res.headersSent) {
        res.statusCode = 500;
        res.setHeader('content-type', 'application/json');
      }
      res.end(JSON.stringify({ error: 'server_error', error_description: String(e?.message || e) }));
    }
  });

  process.stdout.write(JSON.stringify({ listening: port, issuer, clients: clients.map((c) => c.client_id) }) + '\n');
});

for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
if (process.env.PEER_EXIT_ON_STDIN_EOF === '1') {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}
