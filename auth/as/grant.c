/*
 * The token engine (see grant.h). Security notes: codes and refresh tokens
 * are 256-bit CSPRNG values stored under their SHA-256, so a store dump
 * yields nothing usable; a code or refresh token is consumed before any
 * other check so that two racing uses cannot both succeed, and a second use
 * is treated as theft (RFC 9700 §4.13/§4.14): the family is revoked.
 */
#include "auth/as/grant.h"

#include <json-c/json.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/client/client.h"
#include "auth/crypto/jwt.h"
#include "auth/crypto/keyset.h"
#include "auth/crypto/pkce.h"
#include "common/random.h"
#include "auth/store/store.h"
#include "common/clock.h"
#include "common/scope.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "proxy/log.h"
#include "proxy/metrics.h"

struct grant {
	const struct config *cfg;
	struct store *store;
	const struct keyset *keys;
	char *issuer;
	char *audience;
	int64_t access_ms;
	int64_t refresh_ms;
	int64_t code_ms;
	struct metric *m_issued;
	struct metric *m_reuse;
};

struct grant *
grant_new(const struct config *cfg, struct store *st, const struct keyset *keys, const char *issuer,
    const char *audience)
{
	struct grant *g = xcalloc(1, sizeof *g);

	g->cfg = cfg;
	g->store = st;
	g->keys = keys;
	g->issuer = xstrdup(issuer);
	g->audience = xstrdup(audience != NULL ? audience : issuer);
	g->access_ms = cfg->eas.token_lifespans.access_token_ms > 0
	    ? cfg->eas.token_lifespans.access_token_ms
	    : 3600 * 1000;
	g->refresh_ms = cfg->eas.token_lifespans.refresh_token_ms > 0
	    ? cfg->eas.token_lifespans.refresh_token_ms
	    : 7 * 86400 * 1000LL;
	g->code_ms = cfg->eas.token_lifespans.auth_code_ms > 0
	    ? cfg->eas.token_lifespans.auth_code_ms
	    : 600 * 1000;
	g->m_issued = metrics_counter("mcp_oauth_tokens_issued_total",
	    "Access tokens issued by the embedded authorization server, by grant type.",
	    "grant_type");
	g->m_reuse = metrics_counter("mcp_oauth_token_reuse_total",
	    "Replayed authorization codes or refresh tokens (their family was revoked).", "kind");
	return g;
}

void
grant_free(struct grant *g)
{
	if (g == NULL)
		return;
	free(g->issuer);
	free(g->audience);
	free(g);
}

void
grant_result_dispose(struct grant_result *r)
{
	xfree_secret(r->access_token);
	xfree_secret(r->refresh_token);
	free(r->scope);
	memset(r, 0, sizeof *r);
}

void
grant_hash(const char *secret, char out[65])
{
	unsigned char md[32];
	unsigned int n = 0;

	EVP_Digest(secret, strlen(secret), md, &n, EVP_sha256(), NULL);
	for (size_t i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void
grant_set_error(struct grant_error *err, const char *code, int status, const char *desc)
{
	err->error = code;
	err->status = status;
	snprintf(err->desc, sizeof err->desc, "%s", desc);
}

static char *
grant_dup(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

char *
grant_code_issue(struct grant *g, const struct store_pending *p, const char *tsid,
    const char *subject)
{
	struct store_code *c = xcalloc(1, sizeof *c);
	char *code = random_token(32), hash[65];

	client_ref(p->client);
	c->client = p->client;
	c->redirect_uri = grant_dup(p->redirect_uri);
	c->redirect_uri_sent = p->redirect_uri_sent;
	c->code_challenge = grant_dup(p->code_challenge);
	c->scope = grant_dup(p->scope);
	c->resource = grant_dup(p->resource);
	c->tsid = grant_dup(tsid);
	c->subject = grant_dup(subject);
	c->family = random_token(16);
	grant_hash(code, hash);
	if (!store_code_put(g->store, hash, c, g->code_ms)) {
		log_error("the store is full: no authorization code issued");
		xfree_secret(code);
		return NULL;
	}
	return code;
}

/* Sign an RFC 9068 access token; returns it and its jti/exp. */
static char *
grant_access_token(struct grant *g, const char *client_id, const char *subject, const char *scope,
    const char *tsid, char **jti_out, int64_t *exp_out)
{
	json_object *claims = json_object_new_object();
	int64_t now = clock_wall_s(), exp = now + g->access_ms / 1000;
	char *jti = random_uuid_v4(), *token, err[128];

	json_object_object_add(claims, "iss", json_object_new_string(g->issuer));
	json_object_object_add(claims, "sub", json_object_new_string(subject));
	json_object_object_add(claims, "aud", json_object_new_string(g->audience));
	json_object_object_add(claims, "exp", json_object_new_int64(exp));
	json_object_object_add(claims, "iat", json_object_new_int64(now));
	json_object_object_add(claims, "nbf", json_object_new_int64(now));
	json_object_object_add(claims, "jti", json_object_new_string(jti));
	json_object_object_add(claims, "client_id", json_object_new_string(client_id));
	json_object_object_add(claims, "scope", json_object_new_string(scope != NULL ? scope : ""));
	if (tsid != NULL)
		json_object_object_add(claims, "tsid", json_object_new_string(tsid));
	token = jwt_sign(keyset_signing_key(g->keys), "at+jwt", claims, err, sizeof err);
	json_object_put(claims);
	if (token == NULL) {
		log_error("cannot sign an access token", LOG_S("error", err));
		free(jti);
		return NULL;
	}
	*jti_out = jti;
	*exp_out = exp;
	return token;
}

/* The store refused a record: nothing is issued, the client may retry. */
static void
grant_store_full(struct grant_result *out, struct grant_error *err)
{
	log_error("the store is full: no token issued");
	grant_result_dispose(out);
	memset(out, 0, sizeof *out);
	grant_set_error(err, "temporarily_unavailable", 503,
	    "the authorization server cannot record more tokens right now; try again later");
}

/* A replayed code or refresh token: revoke what was issued from it. */
static void
grant_revoke_replayed(struct grant *g, const char *family, const char *what, const char *client_id)
{
	char id[13];

	log_token_id(family, strlen(family), id);
	log_warn("single-use credential replayed: revoking its token family", LOG_S("what", what),
	    LOG_S("family", id), LOG_S("client_id", client_id));
	if (!store_family_revoke(g->store, family, g->refresh_ms))
		log_error("the store is full: the replayed family could not be revoked in full",
		    LOG_S("family", id));
	metrics_add(g->m_reuse, 1, what);
}

/* Issue an access token (scope at_scope) and, when allowed, a new refresh
 * token of the family carrying the full granted scope. */
static int
grant_issue(struct grant *g, const char *grant_type, const struct client *client,
    const char *subject, const char *at_scope, const char *granted_scope, const char *resource,
    const char *tsid, const char *family, struct grant_result *out, struct grant_error *err)
{
	char *jti = NULL, hash[65];
	int64_t exp = 0;

	memset(out, 0, sizeof *out);
	out->access_token = grant_access_token(g, client->client_id, subject, at_scope, tsid, &jti,
	    &exp);
	if (out->access_token == NULL) {
		grant_set_error(err, "server_error", 500, "the access token could not be signed");
		return -1;
	}
	if (!store_family_add_jti(g->store, family, jti, exp, g->refresh_ms)) {
		/* A token we could not revoke later is not issued. */
		free(jti);
		grant_store_full(out, err);
		return -1;
	}
	free(jti);
	out->expires_in = g->access_ms / 1000;
	out->scope = xstrdup(at_scope != NULL ? at_scope : "");
	/* A refresh token for a client with the refresh_token grant that asked
	 * for offline_access or may have it (declared, or baseline): since the
	 * MCP authorization spec (2026-07-28) keeps offline_access out of the
	 * resource's challenge and scopes_supported, clients that take their
	 * scope from there no longer ask for it. */
	if ((scope_has(granted_scope, "offline_access") ||
		strlist_contains(&client->scopes, "offline_access")) &&
	    strlist_contains(&client->grant_types, "refresh_token")) {
		struct store_refresh *r = xcalloc(1, sizeof *r);

		out->refresh_token = random_token(32);
		r->family = xstrdup(family);
		r->client_id = xstrdup(client->client_id);
		r->scope = grant_dup(granted_scope);
		r->resource = grant_dup(resource);
		r->tsid = grant_dup(tsid);
		r->subject = xstrdup(subject);
		r->expires_at = clock_wall_s() + g->refresh_ms / 1000;
		grant_hash(out->refresh_token, hash);
		if (!store_refresh_put(g->store, hash, r, g->refresh_ms)) {
			grant_store_full(out, err);
			return -1;
		}
		if (tsid != NULL)
			store_upstream_touch(g->store, tsid, g->refresh_ms);
	}
	metrics_add(g->m_issued, 1, grant_type);
	return 0;
}

int
grant_exchange_code(struct grant *g, const char *client_id, const char *auth_method,
    const char *code, const char *verifier, const char *redirect_uri, const char *resource,
    struct grant_result *out, struct grant_error *err)
{
	struct store_code *c = NULL;
	char hash[65], *replayed = NULL;
	int rc = -1;

	memset(out, 0, sizeof *out);
	if (code == NULL) {
		grant_set_error(err, "invalid_request", 400, "code is required");
		goto out;
	}
	grant_hash(code, hash);
	c = store_code_take(g->store, hash, &replayed);
	if (c == NULL) {
		if (replayed != NULL)
			grant_revoke_replayed(g, replayed, "authorization_code", client_id);
		grant_set_error(err, "invalid_grant", 400,
		    "the authorization code is invalid, expired or was already used");
		goto out;
	}
	if (strcmp(c->client->client_id, client_id) != 0) {
		grant_set_error(err, "invalid_grant", 400,
		    "the authorization code was issued to another client");
		goto out;
	}
	if (!client_accepts_auth(c->client, auth_method)) {
		grant_set_error(err, "invalid_client", 401,
		    c->client->token_endpoint_auth_method != NULL &&
			    strcmp(c->client->token_endpoint_auth_method, "private_key_jwt") == 0
			? "the client authenticates with private_key_jwt: client_assertion is "
			  "required"
			: "client authentication failed");
		goto out;
	}
	if (verifier == NULL) {
		grant_set_error(err, "invalid_request", 400, "code_verifier is required (PKCE)");
		goto out;
	}
	if (pkce_verify(verifier, c->code_challenge) != 0) {
		grant_set_error(err, "invalid_grant", 400,
		    "code_verifier does not match the code_challenge");
		goto out;
	}
	if (c->redirect_uri_sent || redirect_uri != NULL) {
		if (redirect_uri == NULL || strcmp(redirect_uri, c->redirect_uri) != 0) {
			grant_set_error(err, "invalid_grant", 400,
			    "redirect_uri does not match the authorization request");
			goto out;
		}
	}
	if (resource != NULL && strcmp(resource, g->audience) != 0) {
		grant_set_error(err, "invalid_target", 400,
		    "resource is not the MCP resource this server issues tokens for");
		goto out;
	}
	rc = grant_issue(g, "authorization_code", c->client, c->subject, c->scope, c->scope,
	    c->resource, c->tsid, c->family, out, err);
	/* Nothing was issued for it: the code stays usable (replacing its own
	 * tombstone always fits). */
	if (rc != 0 && err->status == 503 && store_code_put(g->store, hash, c, g->code_ms))
		c = NULL;
out:
	free(replayed);
	store_code_free(c);
	return rc;
}

int
grant_refresh(struct grant *g, const struct client *client, const char *refresh_token,
    const char *scope, const char *resource, struct grant_result *out, struct grant_error *err)
{
	const struct store_refresh *peek;
	struct store_refresh *r = NULL;
	char hash[65], *replayed = NULL;
	int rc = -1;

	memset(out, 0, sizeof *out);
	if (refresh_token == NULL) {
		grant_set_error(err, "invalid_request", 400, "refresh_token is required");
		goto out;
	}
	grant_hash(refresh_token, hash);
	/* Requests that are merely wrong (another client's token, a wider
	 * scope, another resource) are refused without consuming the token, so
	 * they cannot make its next legitimate use look like a replay. */
	peek = store_refresh_get(g->store, hash);
	if (peek != NULL && strcmp(peek->client_id, client->client_id) != 0) {
		grant_set_error(err, "invalid_grant", 400,
		    "the refresh token was issued to another client");
		goto out;
	}
	if (peek != NULL && scope != NULL) {
		struct strlist granted = { 0 };
		bool ok;

		scope_split(peek->scope, &granted);
		ok = scope_subset(scope, &granted);
		strlist_dispose(&granted);
		if (!ok) {
			grant_set_error(err, "invalid_scope", 400,
			    "scope exceeds the scope originally granted");
			goto out;
		}
	}
	if (peek != NULL && resource != NULL && strcmp(resource, g->audience) != 0) {
		grant_set_error(err, "invalid_target", 400,
		    "resource is not the MCP resource this server issues tokens for");
		goto out;
	}
	r = store_refresh_take(g->store, hash, &replayed);
	if (r == NULL) {
		if (replayed != NULL)
			grant_revoke_replayed(g, replayed, "refresh_token", client->client_id);
		grant_set_error(err, "invalid_grant", 400,
		    "the refresh token is invalid, expired, revoked or was already used");
		goto out;
	}
	if (store_family_revoked(g->store, r->family)) {
		grant_set_error(err, "invalid_grant", 400, "the refresh token has been revoked");
		goto out;
	}
	rc = grant_issue(g, "refresh_token", client, r->subject, scope != NULL ? scope : r->scope,
	    r->scope, r->resource, r->tsid, r->family, out, err);
	/* Nothing was issued for it: the token stays usable, so that the
	 * client's retry is not taken for a replay. */
	if (rc != 0 && err->status == 503) {
		int64_t left_ms = (r->expires_at - clock_wall_s()) * 1000;

		if (left_ms > 0 && store_refresh_put(g->store, hash, r, left_ms))
			r = NULL;
	}
out:
	free(replayed);
	store_refresh_free(r);
	return rc;
}

int
grant_revoke(struct grant *g, const char *client_id, const char *token, const char *hint)
{
	const struct store_refresh *peek;
	struct store_refresh *r;
	json_object *claims = NULL;
	struct jwt_expect ex = { .typ = "at+jwt", .iss = g->issuer, .leeway_s = 60 };
	const char *jti, *cid;
	char hash[65], err[128];
	int64_t exp;
	int rc = 0;

	(void)hint; /* both kinds are tried, cheapest first, as RFC 7009 allows */
	if (token == NULL)
		return 0;
	grant_hash(token, hash);
	if ((peek = store_refresh_get(g->store, hash)) != NULL) {
		if (strcmp(peek->client_id, client_id) != 0)
			return 0;
		if ((r = store_refresh_take(g->store, hash, NULL)) != NULL) {
			if (!store_family_revoke(g->store, r->family, g->refresh_ms))
				rc = -1;
			store_refresh_free(r);
		}
		return rc;
	}
	if (strchr(token, '.') == NULL ||
	    jwt_verify(token, g->keys, &ex, &claims, err, sizeof err) != JWT_OK)
		return 0;
	jti = jwt_claim_string(claims, "jti");
	cid = jwt_claim_string(claims, "client_id");
	if (jti != NULL && cid != NULL && strcmp(cid, client_id) == 0 &&
	    jwt_claim_int(claims, "exp", &exp) == 0 && !store_jti_revoke(g->store, jti, exp))
		rc = -1;
	json_object_put(claims);
	return rc;
}

bool
grant_jti_revoked(struct grant *g, const char *jti)
{
	return store_jti_revoked(g->store, jti);
}
