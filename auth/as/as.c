/*
 * The embedded authorization server's assembly: keys, store, client
 * registry, upstream client and token engine, its routes on the HTTP front,
 * and the reply helpers its handler files share (see as_private.h). It
 * must never redirect to a URI it has not verified as the client's, never
 * put a secret in a log line, and never block the loop.
 */
#include "auth/as/as.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/as/as_private.h"
#include "auth/cimd/cimd.h"
#include "auth/cimd/cimd_jwks.h"
#include "auth/client/client.h"
#include "auth/registry/clients.h"
#include "auth/as/grant.h"
#include "auth/crypto/keyset.h"
#include "auth/store/store.h"
#include "auth/idp/upstream.h"
#include "common/ratelimit.h"
#include "common/xalloc.h"
#include "common/xevent.h"
#include "config/config.h"
#include "proxy/log.h"
#include "proxy/metrics.h"
#include "proxy/req.h"

#define AS_SWEEP_INTERVAL_S 60

static void
as_sweep(evutil_socket_t fd, short what, void *arg)
{
	struct as *as = arg;
	size_t n = store_sweep(as->store);

	if (n > 0)
		log_debug("store swept", LOG_I("expired", n));
}

/* The path of an absolute URL ("" for none), as a new string. */
static char *
as_url_path(const char *url)
{
	const char *p = strstr(url, "://");
	size_t n;

	if (p == NULL)
		return xstrdup("");
	p += 3;
	p += strcspn(p, "/?#");
	n = strcspn(p, "?#");
	while (n > 0 && p[n - 1] == '/')
		n--;
	return xstrndup(p, n);
}

static void
as_mount(struct as *as, const char *path, bool prefix, const char *label, req_handler_fn fn)
{
	req_route(&as->router, path, prefix, label, fn, as);
	if (*as->issuer_path != '\0') {
		char *p = xasprintf("%s%s", as->issuer_path, path);

		req_route(&as->router, p, false, label, fn, as);
		free(p);
	}
}

static int
as_load_keys(struct as *as, char *err, size_t errlen)
{
	const struct config *cfg = as->cfg;
	char kerr[160];

	as->keys = keyset_new();
	for (size_t i = 0; i < cfg->eas.n_signing_keys; i++) {
		const struct secret_ref *r = &cfg->eas.signing_keys[i];

		if (r->value == NULL ||
		    keyset_add_pem(as->keys, r->value, r->value_len, kerr, sizeof kerr) != 0) {
			snprintf(err, errlen, "embeddedAuthServer.signingKeySecretRefs[%zu]: %s", i,
			    r->value == NULL ? "secret not resolved" : kerr);
			return -1;
		}
	}
	if (cfg->eas.n_signing_keys == 0) {
		if (keyset_generate_es256(as->keys, kerr, sizeof kerr) != 0) {
			snprintf(err, errlen, "cannot generate a signing key: %s", kerr);
			return -1;
		}
		log_warn("no signingKeySecretRefs configured: using an ephemeral ES256 key; "
			 "every token this server issues dies with the process",
		    LOG_S("kid", keyset_key_kid(keyset_signing_key(as->keys))));
	}
	for (size_t i = 0; i < keyset_count(as->keys); i++) {
		const struct keyset_key *k = keyset_at(as->keys, i);

		log_info("signing key", LOG_S("kid", keyset_key_kid(k)),
		    LOG_S("alg", keyset_alg_name(keyset_key_alg(k))), LOG_B("active", i == 0));
	}
	return 0;
}

struct as *
as_new(struct event_base *base, struct evdns_base *dns, const struct config *cfg,
    const struct req_router *router, struct fetcher *fetcher, char *err, size_t errlen)
{
	struct as *as = xcalloc(1, sizeof *as);
	const struct upstream_provider *p;
	char *cb_path;
	size_t n;
	struct timeval tv = { AS_SWEEP_INTERVAL_S, 0 };

	as->base = base;
	as->cfg = cfg;
	as->router = *router;
	as->fetcher = fetcher;
	if (cfg->eas.issuer == NULL || cfg->eas.n_upstream_providers != 1) {
		snprintf(err, errlen,
		    "embeddedAuthServer needs an issuer and exactly one "
		    "upstream provider");
		goto fail;
	}
	p = &cfg->eas.upstream_providers[0];
	n = strlen(cfg->eas.issuer);
	while (n > 0 && cfg->eas.issuer[n - 1] == '/')
		n--;
	as->issuer = xstrndup(cfg->eas.issuer, n);
	as->issuer_path = as_url_path(as->issuer);
	as->audience = xstrdup(
	    cfg->server.resource_url != NULL ? cfg->server.resource_url : as->issuer);
	if (as_load_keys(as, err, errlen) != 0)
		goto fail;

	if (cfg->eas.authorization_endpoint_base_url != NULL) {
		const char *b = cfg->eas.authorization_endpoint_base_url;

		n = strlen(b);
		while (n > 0 && b[n - 1] == '/')
			n--;
		as->authorize_url = xasprintf("%.*s/oauth/authorize", (int)n, b);
	} else {
		as->authorize_url = xasprintf("%s/oauth/authorize", as->issuer);
	}
	as->token_url = xasprintf("%s/oauth/token", as->issuer);
	as->register_url = xasprintf("%s/oauth/register", as->issuer);
	as->revoke_url = xasprintf("%s/oauth/revoke", as->issuer);
	as->jwks_url = xasprintf("%s/.well-known/jwks.json", as->issuer);

	if ((as->store = store_new(cfg, base, dns, err, errlen)) == NULL)
		goto fail;
	if (cfg->eas.cimd.enabled) {
		as->cimd = cimd_new(base, fetcher, cfg);
		as->jwks = cimd_jwks_new(fetcher, cfg);
	}
	as->clients = clients_new(cfg, as->store, as->cimd);
	as->upstream = upstream_new(cfg, p, fetcher);
	as->grant = grant_new(cfg, as->store, as->keys, as->issuer, as->audience);
	for (int i = 0; i < AS_N_LIMITS; i++)
		as->limits[i] = ratelimit_new(cfg->eas.rate_limit.per_minute / 60.0,
		    cfg->eas.rate_limit.burst, cfg->eas.rate_limit.max_addresses);
	/* N logins per pending-login lifetime: at most about 2N in progress. */
	as->logins_client = ratelimit_new(cfg->eas.rate_limit.logins_per_client /
		(AS_PENDING_TTL_MS / 1000.0),
	    cfg->eas.rate_limit.logins_per_client, cfg->eas.rate_limit.max_addresses);
	as->logins_address = ratelimit_new(cfg->eas.rate_limit.logins_per_address /
		(AS_PENDING_TTL_MS / 1000.0),
	    cfg->eas.rate_limit.logins_per_address, cfg->eas.rate_limit.max_addresses);
	as->m_limited = metrics_counter("mcp_proxy_rate_limited_total",
	    "Authorization server requests refused by a rate limit (429/503), by limit.", "limit");
	as->m_authorize = metrics_counter("mcp_oauth_authorize_total",
	    "Authorization requests by outcome.", "outcome");
	as->m_callback = metrics_counter("mcp_oauth_callback_total",
	    "Upstream callbacks by outcome.", "outcome");
	as->m_assertion = metrics_counter("mcp_oauth_client_assertions_total",
	    "private_key_jwt client assertions at the token endpoint by outcome (ok, missing, "
	    "invalid, unknown_kid, replayed, keys_unavailable, replay_table_full).",
	    "outcome");

	discovery_build(as);
	as->jwks_json = keyset_jwks_json(as->keys);

	req_route(router, "/.well-known/oauth-authorization-server", true, "oauth_metadata",
	    discovery_handle_metadata, as);
	req_route(router, "/.well-known/openid-configuration", true, "oidc_metadata",
	    discovery_handle_oidc, as);
	if (*as->issuer_path != '\0') {
		char *a = xasprintf("%s/.well-known/oauth-authorization-server", as->issuer_path);
		char *o = xasprintf("%s/.well-known/openid-configuration", as->issuer_path);

		req_route(router, a, false, "oauth_metadata", discovery_handle_metadata, as);
		req_route(router, o, false, "oidc_metadata", discovery_handle_oidc, as);
		free(a);
		free(o);
	}
	as_mount(as, "/.well-known/jwks.json", false, "jwks", discovery_handle_jwks);
	as_mount(as, "/oauth/authorize", false, "oauth_authorize", authorize_handle);
	as_mount(as, "/oauth/callback", false, "oauth_callback", callback_handle);
	as_mount(as, "/oauth/token", false, "oauth_token", token_handle);
	as_mount(as, "/oauth/register", false, "oauth_register", register_handle);
	as_mount(as, "/oauth/revoke", false, "oauth_revoke", revoke_handle);
	/* The upstream may be told to come back somewhere else (redirectUri). */
	cb_path = as_url_path(p->redirect_uri != NULL ? p->redirect_uri : "");
	if (*cb_path != '\0' && strcmp(cb_path, "/oauth/callback") != 0) {
		req_route(router, cb_path, false, "oauth_callback", callback_handle, as);
	}
	free(cb_path);

	as->sweep = xevent_new(base, -1, EV_PERSIST, as_sweep, as);
	event_add(as->sweep, &tv);
	log_info("authorization server ready", LOG_S("issuer", as->issuer),
	    LOG_S("upstream", p->name), LOG_B("cimd", cfg->eas.cimd.enabled),
	    LOG_B("confidential_clients", cfg->eas.allow_confidential_client_registration));
	return as;
fail:
	as_free(as);
	return NULL;
}

void
as_free(struct as *as)
{
	if (as == NULL)
		return;
	if (as->sweep != NULL)
		event_free(as->sweep);
	upstream_free(as->upstream);
	clients_free(as->clients);
	if (as->cimd != NULL)
		cimd_free(as->cimd);
	cimd_jwks_free(as->jwks);
	grant_free(as->grant);
	store_free(as->store);
	for (int i = 0; i < AS_N_LIMITS; i++)
		ratelimit_free(as->limits[i]);
	ratelimit_free(as->logins_client);
	ratelimit_free(as->logins_address);
	keyset_free(as->keys);
	free(as->issuer);
	free(as->issuer_path);
	free(as->audience);
	free(as->authorize_url);
	free(as->token_url);
	free(as->register_url);
	free(as->revoke_url);
	free(as->jwks_url);
	free(as->metadata_json);
	free(as->oidc_json);
	free(as->jwks_json);
	free(as);
}

const char *
as_issuer(const struct as *as)
{
	return as->issuer;
}

const char *
as_audience(const struct as *as)
{
	return as->audience;
}

const struct keyset *
as_keyset(const struct as *as)
{
	return as->keys;
}

bool
as_storage_health(struct json_object *o, void *arg)
{
	struct as *as = arg;
	struct store_health h;

	store_health(as->store, &h);
	json_object_object_add(o, "type", json_object_new_string(h.type));
	json_object_object_add(o, "reachable", json_object_new_boolean(h.reachable));
	if (h.detail != NULL)
		json_object_object_add(o, "error", json_object_new_string(h.detail));
	return h.reachable;
}

struct store *
as_store(struct as *as)
{
	return as->store;
}

struct upstream *
as_upstream(struct as *as)
{
	return as->upstream;
}

bool
as_token_revoked(struct as *as, const char *jti)
{
	return grant_jti_revoked(as->grant, jti);
}

/* --- helpers for the handler files --- */

const char *
as_client_address(struct as *as, struct req *sr, char *buf, size_t len)
{
	const char *xff = as->cfg->server.trust_proxy_headers ? as_header(sr, "X-Forwarded-For")
							      : NULL;
	const char *last, *end;

	if (xff == NULL)
		return req_peer(sr);
	last = strrchr(xff, ',');
	last = last != NULL ? last + 1 : xff;
	while (*last == ' ' || *last == '\t')
		last++;
	for (end = last + strlen(last); end > last && (end[-1] == ' ' || end[-1] == '\t');)
		end--;
	if (end == last || (size_t)(end - last) >= len)
		return req_peer(sr);
	memcpy(buf, last, (size_t)(end - last));
	buf[end - last] = '\0';
	return buf;
}

void
as_too_many(struct as *as, struct req *sr, bool page, int retry_after_s, const char *limit,
    const char *desc)
{
	char ra[16];

	metrics_add(as->m_limited, 1, limit);
	snprintf(ra, sizeof ra, "%d", retry_after_s);
	req_add_header(sr, "Retry-After", ra);
	if (page)
		as_error_page(sr, 429, "too_many_requests", desc);
	else
		req_reply_oauth_error(sr, 429, "too_many_requests", desc);
}

bool
as_rate_ok(struct as *as, struct req *sr, enum as_limit which)
{
	static const char *const names[AS_N_LIMITS] = { "authorize", "token", "register",
		"revoke" };
	char buf[64];
	int retry;

	if (ratelimit_take(as->limits[which], as_client_address(as, sr, buf, sizeof buf), &retry))
		return true;
	as_too_many(as, sr, which == AS_LIMIT_AUTHORIZE, retry, names[which],
	    "too many requests from your address; retry later");
	return false;
}

const char *
as_method(struct req *sr)
{
	return req_method_name(sr);
}

const char *
as_header(struct req *sr, const char *name)
{
	return req_header(sr, name);
}

void
as_cors(struct req *sr)
{
	req_add_header(sr, "Access-Control-Allow-Origin", "*");
}

bool
as_post_start(struct as *as, struct req *sr, enum as_limit which)
{
	if (as_preflight(sr, "POST, OPTIONS"))
		return false;
	as_cors(sr);
	if (strcmp(as_method(sr), "POST") != 0) {
		req_add_header(sr, "Allow", "POST, OPTIONS");
		req_reply_oauth_error(sr, 405, "invalid_request", "use POST");
		return false;
	}
	return as_rate_ok(as, sr, which);
}

bool
as_preflight(struct req *sr, const char *methods)
{
	if (strcmp(as_method(sr), "OPTIONS") != 0)
		return false;
	as_cors(sr);
	req_add_header(sr, "Access-Control-Allow-Methods", methods);
	req_add_header(sr, "Access-Control-Allow-Headers",
	    "Authorization, Content-Type, MCP-Protocol-Version");
	req_add_header(sr, "Access-Control-Max-Age", "86400");
	req_reply(sr, 204, NULL, NULL, 0);
	return true;
}

char *
as_read_body(struct req *sr, size_t max, size_t *len)
{
	struct evbuffer *in = req_body(sr);
	size_t n;
	char *s;

	*len = 0;
	if (req_gone(sr))
		return NULL;
	n = evbuffer_get_length(in);
	if (n > max)
		return NULL;
	s = xmalloc(n + 1);
	evbuffer_copyout(in, s, n);
	s[n] = '\0';
	*len = n;
	return s;
}

int
as_read_params(struct req *sr, bool allow_query, size_t max, struct form *f, char *err,
    size_t errlen)
{
	const char *method = as_method(sr), *ct, *q;
	char *body;
	size_t len;
	int rc;

	memset(f, 0, sizeof *f);
	if (req_gone(sr)) {
		snprintf(err, errlen, "the client is gone");
		return -1;
	}
	if (allow_query && strcmp(method, "GET") == 0) {
		q = req_query(sr);
		if (q == NULL)
			return 0;
		if (strlen(q) > max) {
			snprintf(err, errlen, "the query string is too long");
			return -1;
		}
		return form_parse(f, q, strlen(q), err, errlen);
	}
	if (strcmp(method, "POST") != 0) {
		snprintf(err, errlen, "method %s is not allowed", method);
		return -1;
	}
	ct = as_header(sr, "Content-Type");
	if (ct == NULL || strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0 ||
	    (ct[33] != '\0' && ct[33] != ';' && ct[33] != ' ')) {
		snprintf(err, errlen, "the body must be application/x-www-form-urlencoded");
		return -1;
	}
	if ((body = as_read_body(sr, max, &len)) == NULL) {
		snprintf(err, errlen, "the request body exceeds %zu bytes", max);
		return -1;
	}
	rc = form_parse(f, body, len, err, errlen);
	xfree_secret(body);
	return rc;
}

static void
as_html_escape(struct evbuffer *b, const char *s)
{
	for (; s != NULL && *s != '\0'; s++) {
		switch (*s) {
		case '<':
			evbuffer_add(b, "&lt;", 4);
			break;
		case '>':
			evbuffer_add(b, "&gt;", 4);
			break;
		case '&':
			evbuffer_add(b, "&amp;", 5);
			break;
		case '"':
			evbuffer_add(b, "&quot;", 6);
			break;
		case '\'':
			evbuffer_add(b, "&#39;", 5);
			break;
		default:
			evbuffer_add(b, s, 1);
		}
	}
}

void
as_error_page(struct req *sr, int status, const char *error, const char *desc)
{
	const char *accept = as_header(sr, "Accept");
	struct evbuffer *b;
	size_t n;
	char *html;

	if (accept != NULL && strstr(accept, "application/json") != NULL &&
	    strstr(accept, "text/html") == NULL) {
		req_reply_oauth_error(sr, status, error, desc);
		return;
	}
	b = xevbuffer_new();
	evbuffer_add_printf(b,
	    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
	    "<title>Authorization error</title></head>\n<body>\n<h1>Authorization error</h1>\n"
	    "<p>The authorization request cannot be completed. You were not redirected because "
	    "the application or its redirect address could not be verified.</p>\n"
	    "<p><strong>error:</strong> <code id=\"error\">");
	as_html_escape(b, error);
	evbuffer_add_printf(b,
	    "</code></p>\n<p><strong>error_description:</strong> "
	    "<span id=\"error_description\">");
	as_html_escape(b, desc);
	evbuffer_add_printf(b, "</span></p>\n</body></html>\n");
	n = evbuffer_get_length(b);
	html = xmalloc(n);
	evbuffer_remove(b, html, n);
	evbuffer_free(b);
	req_add_header(sr, "Cache-Control", "no-store");
	req_add_header(sr, "Content-Security-Policy", "default-src 'none'");
	req_add_header(sr, "X-Frame-Options", "DENY");
	req_reply(sr, status, "text/html; charset=utf-8", html, n);
	free(html);
}

void
as_redirect(struct req *sr, int status, const char *uri, struct form_builder *fb)
{
	char *q = form_finish(fb), *loc;

	loc = xasprintf("%s%s%s", uri, *q == '\0' ? "" : strchr(uri, '?') != NULL ? "&" : "?", q);
	req_add_header(sr, "Location", loc);
	req_add_header(sr, "Cache-Control", "no-store");
	req_reply(sr, status, NULL, NULL, 0);
	xfree_secret(loc);
	xfree_secret(q);
}

void
as_redirect_error(struct as *as, struct req *sr, const char *redirect_uri, const char *state,
    const char *error, const char *desc)
{
	struct form_builder fb = { 0 };

	form_add(&fb, "error", error);
	form_add(&fb, "error_description", desc);
	form_add(&fb, "state", state);
	form_add(&fb, "iss", as->issuer);
	as_redirect(sr, 302, redirect_uri, &fb);
}
