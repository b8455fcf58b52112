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

/* --- one grant in flight --- */

enum grant_kind { GRANT_CODE_ISSUE, GRANT_EXCHANGE, GRANT_REFRESH, GRANT_REVOKE };

struct grant_op {
	struct grant *g;
	enum grant_kind kind;
	union {
		grant_done_cb done;
		grant_revoked_cb revoked;
		grant_code_cb code;
	} cb;
	void *arg;
	struct store_op *sop;
	struct client *client; /* a reference */
	const char *auth_method;
	char *verifier;
	char *redirect_uri;
	char *resource;
	char *scope;
	char *client_id;  /* revoke: the revoking client */
	char *token;      /* revoke: the token (a secret) */
	char *secret_out; /* code issue: the code */
	char hash[65];
	struct store_code *code;       /* exchange: the redeemed code */
	struct store_refresh *refresh; /* refresh: the token's record */
	struct grant_result out;
	struct grant_error err;
};

static char *
grant_dup(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

static struct grant_op *
grant_op_new(struct grant *g, enum grant_kind kind, void *arg)
{
	struct grant_op *op = xcalloc(1, sizeof *op);

	op->g = g;
	op->kind = kind;
	op->arg = arg;
	return op;
}

static void
grant_op_free(struct grant_op *op)
{
	store_cancel(op->sop);
	client_unref(op->client);
	xfree_secret(op->verifier);
	free(op->redirect_uri);
	free(op->resource);
	free(op->scope);
	free(op->client_id);
	xfree_secret(op->token);
	xfree_secret(op->secret_out);
	store_code_free(op->code);
	store_refresh_free(op->refresh);
	grant_result_dispose(&op->out);
	free(op);
}

void
grant_cancel(struct grant_op *op)
{
	if (op != NULL)
		grant_op_free(op);
}

/* Answer with op->out or op->err, and free op. */
static void
grant_finish(struct grant_op *op, bool ok)
{
	op->sop = NULL;
	op->cb.done(ok ? &op->out : NULL, &op->err, op->arg);
	grant_op_free(op);
}

static void
grant_fail(struct grant_op *op, const char *code, int status, const char *desc)
{
	grant_set_error(&op->err, code, status, desc);
	grant_finish(op, false);
}

/* The store could not serve the verb: nothing was issued, retry later. */
static void
grant_fail_store(struct grant_op *op, enum store_status st)
{
	log_error("no token issued", LOG_S("store", store_status_text(st)));
	grant_fail(op, "temporarily_unavailable", 503,
	    st == STORE_FULL
		? "the authorization server cannot record more tokens right now; try again later"
		: "the authorization server's storage is unavailable right now; try again later");
}

/* A replayed code or refresh token: the verb revoked its family. */
static void
grant_note_replay(struct grant *g, const char *family, const char *what, const char *client_id)
{
	char id[13];

	log_token_id(family, strlen(family), id);
	log_warn("single-use credential replayed: its token family was revoked",
	    LOG_S("what", what), LOG_S("family", id), LOG_S("client_id", client_id));
	metrics_add(g->m_reuse, 1, what);
}

/* --- authorization codes --- */

static void
grant_code_put_done(struct store_result *res, void *arg)
{
	struct grant_op *op = arg;
	char *code = NULL;

	op->sop = NULL;
	if (res->status == STORE_OK) {
		code = op->secret_out;
		op->secret_out = NULL;
	} else {
		log_error("no authorization code issued",
		    LOG_S("store", store_status_text(res->status)));
	}
	op->cb.code(code, res->status, op->arg);
	grant_op_free(op);
}

struct grant_op *
grant_code_issue(struct grant *g, const struct store_pending *p, const char *tsid,
    const char *subject, grant_code_cb done, void *arg)
{
	struct grant_op *op = grant_op_new(g, GRANT_CODE_ISSUE, arg);
	struct store_code *c = xcalloc(1, sizeof *c);

	op->cb.code = done;
	c->client_id = xstrdup(p->client_id);
	c->redirect_uri = grant_dup(p->redirect_uri);
	c->redirect_uri_sent = p->redirect_uri_sent;
	c->code_challenge = grant_dup(p->code_challenge);
	c->scope = grant_dup(p->scope);
	c->resource = grant_dup(p->resource);
	c->tsid = grant_dup(tsid);
	c->subject = grant_dup(subject);
	c->family = random_token(16);
	op->secret_out = random_token(32);
	grant_hash(op->secret_out, op->hash);
	op->sop = store_code_put(g->store, op->hash, c, g->code_ms, grant_code_put_done, op);
	return op;
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

/* What issuing records: the access token (signed into op->out) and,
 * when allowed, a new refresh token of the family carrying the full
 * granted scope. -1: the token could not be signed (op->err set). */
static int
grant_prepare(struct grant_op *op, const char *grant_type, const char *subject,
    const char *at_scope, const char *granted_scope, const char *resource, const char *tsid,
    const char *family, struct store_issue *is, char **jti)
{
	struct grant *g = op->g;
	const struct client *client = op->client;
	char hash[65];

	memset(is, 0, sizeof *is);
	op->out.access_token = grant_access_token(g, client->client_id, subject, at_scope, tsid,
	    jti, &is->jti_exp);
	if (op->out.access_token == NULL) {
		grant_set_error(&op->err, "server_error", 500,
		    "the access token could not be signed");
		return -1;
	}
	(void)grant_type;
	is->family = family;
	is->jti = *jti;
	is->tsid = tsid;
	is->ttl_ms = g->refresh_ms;
	op->out.expires_in = g->access_ms / 1000;
	op->out.scope = xstrdup(at_scope != NULL ? at_scope : "");
	/* A refresh token for a client with the refresh_token grant that asked
	 * for offline_access or may have it (declared, or baseline): since the
	 * MCP authorization spec (2026-07-28) keeps offline_access out of the
	 * resource's challenge and scopes_supported, clients that take their
	 * scope from there no longer ask for it. */
	if ((scope_has(granted_scope, "offline_access") ||
		strlist_contains(&client->scopes, "offline_access")) &&
	    strlist_contains(&client->grant_types, "refresh_token")) {
		struct store_refresh *r = xcalloc(1, sizeof *r);

		op->out.refresh_token = random_token(32);
		r->family = xstrdup(family);
		r->client_id = xstrdup(client->client_id);
		r->scope = grant_dup(granted_scope);
		r->resource = grant_dup(resource);
		r->tsid = grant_dup(tsid);
		r->subject = xstrdup(subject);
		r->expires_at = clock_wall_s() + g->refresh_ms / 1000;
		grant_hash(op->out.refresh_token, hash);
		is->refresh_hash = xstrdup(hash);
		is->refresh = r;
	}
	return 0;
}

static void
grant_restored(struct store_result *res, void *arg)
{
	(void)res;
	(void)arg;
}

static void
grant_issued(struct store_result *res, void *arg)
{
	struct grant_op *op = arg;

	op->sop = NULL;
	switch (res->status) {
	case STORE_OK:
		metrics_add(op->g->m_issued, 1, "authorization_code");
		grant_finish(op, true);
		return;
	case STORE_REVOKED:
		grant_fail(op, "invalid_grant", 400, "the authorization has been revoked");
		return;
	default:
		/* Nothing was issued for it: the code stays usable, so that the
		 * client's retry is not taken for a replay. */
		store_code_restore(op->g->store, op->hash, op->code, op->g->code_ms, grant_restored,
		    NULL);
		op->code = NULL;
		grant_fail_store(op, res->status);
		return;
	}
}

/* The code is ours (spent in the store): check the request against it. */
static void
grant_exchange_redeemed(struct grant_op *op)
{
	struct grant *g = op->g;
	struct store_code *c = op->code;
	struct store_issue is;
	char *jti = NULL;

	if (strcmp(c->client_id, op->client->client_id) != 0) {
		grant_fail(op, "invalid_grant", 400,
		    "the authorization code was issued to another client");
		return;
	}
	if (!client_accepts_auth(op->client, op->auth_method)) {
		grant_fail(op, "invalid_client", 401,
		    op->client->token_endpoint_auth_method != NULL &&
			    strcmp(op->client->token_endpoint_auth_method, "private_key_jwt") == 0
			? "the client authenticates with private_key_jwt: client_assertion is "
			  "required"
			: "client authentication failed");
		return;
	}
	if (op->verifier == NULL) {
		grant_fail(op, "invalid_request", 400, "code_verifier is required (PKCE)");
		return;
	}
	if (pkce_verify(op->verifier, c->code_challenge) != 0) {
		grant_fail(op, "invalid_grant", 400,
		    "code_verifier does not match the code_challenge");
		return;
	}
	if (c->redirect_uri_sent || op->redirect_uri != NULL) {
		if (op->redirect_uri == NULL || strcmp(op->redirect_uri, c->redirect_uri) != 0) {
			grant_fail(op, "invalid_grant", 400,
			    "redirect_uri does not match the authorization request");
			return;
		}
	}
	if (op->resource != NULL && strcmp(op->resource, g->audience) != 0) {
		grant_fail(op, "invalid_target", 400,
		    "resource is not the MCP resource this server issues tokens for");
		return;
	}
	if (grant_prepare(op, "authorization_code", c->subject, c->scope, c->scope, c->resource,
		c->tsid, c->family, &is, &jti) != 0) {
		grant_finish(op, false);
		return;
	}
	op->sop = store_issue(g->store, &is, grant_issued, op);
	free((char *)is.refresh_hash);
	free(jti);
}

static void
grant_code_redeemed(struct store_result *res, void *arg)
{
	struct grant_op *op = arg;

	op->sop = NULL;
	switch (res->status) {
	case STORE_OK:
		op->code = res->code;
		res->code = NULL;
		grant_exchange_redeemed(op);
		return;
	case STORE_SPENT:
		grant_note_replay(op->g, res->family, "authorization_code", op->client->client_id);
		/* fall through */
	case STORE_NOT_FOUND:
		grant_fail(op, "invalid_grant", 400,
		    "the authorization code is invalid, expired or was already used");
		return;
	default:
		grant_fail_store(op, res->status);
		return;
	}
}

struct grant_op *
grant_exchange_code(struct grant *g, struct client *client, const char *auth_method,
    const char *code, const char *verifier, const char *redirect_uri, const char *resource,
    grant_done_cb done, void *arg)
{
	struct grant_op *op = grant_op_new(g, GRANT_EXCHANGE, arg);

	op->cb.done = done;
	client_ref(client);
	op->client = client;
	op->auth_method = auth_method;
	if (code == NULL) {
		grant_fail(op, "invalid_request", 400, "code is required");
		return NULL;
	}
	op->verifier = grant_dup(verifier);
	op->redirect_uri = grant_dup(redirect_uri);
	op->resource = grant_dup(resource);
	grant_hash(code, op->hash);
	/* A code is consumed before any other check so that two racing uses
	 * cannot both succeed. */
	op->sop = store_code_redeem(g->store, op->hash, g->refresh_ms, grant_code_redeemed, op);
	return op;
}

/* --- refresh tokens --- */

static void
grant_replay_revoked(struct store_result *res, void *arg)
{
	struct grant_op *op = arg;

	op->sop = NULL;
	if (res->status != STORE_OK)
		log_error("the replayed family could not be revoked in full",
		    LOG_S("store", store_status_text(res->status)));
	grant_fail(op, "invalid_grant", 400,
	    "the refresh token is invalid, expired, revoked or was already used");
}

static void
grant_rotated(struct store_result *res, void *arg)
{
	struct grant_op *op = arg;

	op->sop = NULL;
	switch (res->status) {
	case STORE_OK:
		metrics_add(op->g->m_issued, 1, "refresh_token");
		grant_finish(op, true);
		return;
	case STORE_SPENT:
		grant_note_replay(op->g, res->family, "refresh_token", op->client->client_id);
		/* fall through */
	case STORE_NOT_FOUND:
		grant_fail(op, "invalid_grant", 400,
		    "the refresh token is invalid, expired, revoked or was already used");
		return;
	case STORE_REVOKED:
		grant_fail(op, "invalid_grant", 400, "the refresh token has been revoked");
		return;
	default:
		grant_fail_store(op, res->status);
		return;
	}
}

static void
grant_refresh_got(struct store_result *res, void *arg)
{
	struct grant_op *op = arg;
	struct grant *g = op->g;
	struct store_refresh *r;
	struct store_issue is;
	char *jti = NULL;

	op->sop = NULL;
	if (res->status == STORE_SPENT) {
		/* Reuse of a rotated token: theft (RFC 9700 §4.14). */
		grant_note_replay(g, res->family, "refresh_token", op->client->client_id);
		op->sop = store_family_revoke(g->store, res->family, g->refresh_ms,
		    grant_replay_revoked, op);
		return;
	}
	if (res->status == STORE_NOT_FOUND) {
		grant_fail(op, "invalid_grant", 400,
		    "the refresh token is invalid, expired, revoked or was already used");
		return;
	}
	if (res->status != STORE_OK) {
		grant_fail_store(op, res->status);
		return;
	}
	r = op->refresh = res->refresh;
	res->refresh = NULL;
	/* Requests that are merely wrong (another client's token, a wider
	 * scope, another resource) are refused without consuming the token, so
	 * they cannot make its next legitimate use look like a replay. */
	if (strcmp(r->client_id, op->client->client_id) != 0) {
		grant_fail(op, "invalid_grant", 400,
		    "the refresh token was issued to another client");
		return;
	}
	if (op->scope != NULL) {
		struct strlist granted = { 0 };
		bool ok;

		scope_split(r->scope, &granted);
		ok = scope_subset(op->scope, &granted);
		strlist_dispose(&granted);
		if (!ok) {
			grant_fail(op, "invalid_scope", 400,
			    "scope exceeds the scope originally granted");
			return;
		}
	}
	if (op->resource != NULL && strcmp(op->resource, g->audience) != 0) {
		grant_fail(op, "invalid_target", 400,
		    "resource is not the MCP resource this server issues tokens for");
		return;
	}
	if (grant_prepare(op, "refresh_token", r->subject, op->scope != NULL ? op->scope : r->scope,
		r->scope, r->resource, r->tsid, r->family, &is, &jti) != 0) {
		grant_finish(op, false);
		return;
	}
	/* Spent, checked for its family's revocation and replaced in one step:
	 * two racing uses cannot both succeed. */
	op->sop = store_refresh_rotate(g->store, op->hash, &is, grant_rotated, op);
	free((char *)is.refresh_hash);
	free(jti);
}

struct grant_op *
grant_refresh(struct grant *g, struct client *client, const char *refresh_token, const char *scope,
    const char *resource, grant_done_cb done, void *arg)
{
	struct grant_op *op = grant_op_new(g, GRANT_REFRESH, arg);

	op->cb.done = done;
	client_ref(client);
	op->client = client;
	if (refresh_token == NULL) {
		grant_fail(op, "invalid_request", 400, "refresh_token is required");
		return NULL;
	}
	op->scope = grant_dup(scope);
	op->resource = grant_dup(resource);
	grant_hash(refresh_token, op->hash);
	op->sop = store_refresh_get(g->store, op->hash, grant_refresh_got, op);
	return op;
}

/* --- revocation --- */

static void
grant_revoke_finish(struct grant_op *op, int rc)
{
	op->sop = NULL;
	op->cb.revoked(rc, op->arg);
	grant_op_free(op);
}

static void
grant_jti_revoked_done(struct store_result *res, void *arg)
{
	grant_revoke_finish(arg, res->status == STORE_OK ? 0 : -1);
}

static void
grant_refresh_revoked(struct store_result *res, void *arg)
{
	struct grant_op *op = arg;
	struct grant *g = op->g;
	json_object *claims = NULL;
	struct jwt_expect ex = { .typ = "at+jwt", .iss = g->issuer, .leeway_s = 60 };
	const char *jti, *cid;
	char err[128];
	int64_t exp;

	op->sop = NULL;
	if (res->status == STORE_OK || res->status == STORE_FOREIGN) {
		grant_revoke_finish(op, 0);
		return;
	}
	if (res->status != STORE_NOT_FOUND) {
		grant_revoke_finish(op, -1);
		return;
	}
	/* Not a refresh token we know: maybe one of our access tokens. */
	if (strchr(op->token, '.') == NULL ||
	    jwt_verify(op->token, g->keys, &ex, &claims, err, sizeof err) != JWT_OK) {
		grant_revoke_finish(op, 0);
		return;
	}
	jti = jwt_claim_string(claims, "jti");
	cid = jwt_claim_string(claims, "client_id");
	if (jti != NULL && cid != NULL && strcmp(cid, op->client_id) == 0 &&
	    jwt_claim_int(claims, "exp", &exp) == 0)
		op->sop = store_jti_revoke(g->store, jti, exp, grant_jti_revoked_done, op);
	json_object_put(claims);
	if (op->sop == NULL)
		grant_revoke_finish(op, 0);
}

struct grant_op *
grant_revoke(struct grant *g, const char *client_id, const char *token, const char *hint,
    grant_revoked_cb done, void *arg)
{
	struct grant_op *op = grant_op_new(g, GRANT_REVOKE, arg);

	(void)hint; /* both kinds are tried, cheapest first, as RFC 7009 allows */
	op->cb.revoked = done;
	if (token == NULL) {
		grant_revoke_finish(op, 0);
		return NULL;
	}
	op->token = xstrdup(token);
	op->client_id = xstrdup(client_id);
	grant_hash(token, op->hash);
	op->sop = store_refresh_revoke(g->store, op->hash, client_id, g->refresh_ms,
	    grant_refresh_revoked, op);
	return op;
}

bool
grant_jti_revoked(struct grant *g, const char *jti)
{
	return store_jti_revoked(g->store, jti);
}
