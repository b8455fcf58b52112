/*
 * The upstream IdP client (see upstream.h). An operation (prepare or code
 * exchange) is a small state machine: wait for discovery, post the code to
 * the token endpoint, then (oidc) wait for the JWKS and verify the ID token,
 * or (oauth2) read userinfo. Discovery and JWKS are oidc.c's, shared by
 * every operation waiting for them and never cancelled by one of them; a
 * failed discovery is not cached, so the next operation tries again.
 */
#include "auth/idp/upstream.h"

#include <json-c/json.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "common/form.h"
#include "auth/crypto/jwt.h"
#include "auth/crypto/keyset.h"
#include "auth/idp/oidc.h"
#include "auth/store/store.h"
#include "common/clock.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "proxy/fetch.h"
#include "proxy/log.h"

#define UPSTREAM_JWKS_MIN_REFRESH_MS (10 * 1000)
#define UPSTREAM_JSON_DEPTH 16
/* A login after a failed discovery or key fetch tries again at once. */
#define UPSTREAM_RETRY_MS 0
/* The longest upstream token lifetime believed (a year). */
#define UPSTREAM_EXPIRES_IN_MAX_S (365LL * 24 * 3600)

enum upstream_step { STEP_DISCOVERY, STEP_TOKEN, STEP_JWKS, STEP_USERINFO };

struct upstream_op {
	struct upstream *u;
	bool exchange;
	enum upstream_step step;
	upstream_ready_cb ready;
	upstream_exchange_cb exchanged;
	void *arg;
	char *code;
	char *verifier;
	char *nonce;
	char *refresh_token; /* set: a refresh_token grant instead of a code exchange */
	struct fetch *fetch;
	struct store_upstream *tokens;
	bool jwks_retried;
	struct oidc_waiter wait;
	bool waited; /* the wait for this step is over */
	TAILQ_ENTRY(upstream_op) all_entry;
};
TAILQ_HEAD(upstream_ops, upstream_op);

struct upstream {
	const struct config *cfg;
	const struct upstream_provider *p;
	struct fetcher *fetcher;
	struct fetch_policy policy;
	struct oidc *oidc; /* type oidc */

	/* The endpoints: configured (oauth2) or discovered (borrowed from
	 * oidc); NULL until known. */
	const char *issuer;
	const char *authorization_endpoint;
	const char *token_endpoint;
	const char *userinfo_endpoint;
	bool secret_post; /* client_secret_post instead of _basic */
	struct upstream_ops ops;
};

static void upstream_advance(struct upstream_op *op);

struct upstream *
upstream_new(const struct config *cfg, const struct upstream_provider *p, struct fetcher *fetcher)
{
	struct upstream *u = xcalloc(1, sizeof *u);

	u->cfg = cfg;
	u->p = p;
	u->fetcher = fetcher;
	fetch_policy_init(&u->policy, false);
	u->policy.allow_http_loopback = cfg->eas.insecure_allow_http;
	if (cfg->outbound.timeout_ms > 0)
		u->policy.timeout_ms = cfg->outbound.timeout_ms;
	if (cfg->outbound.max_response_size > 0)
		u->policy.max_size = cfg->outbound.max_response_size;
	TAILQ_INIT(&u->ops);
	if (p->type == UPSTREAM_OIDC && p->issuer_url != NULL) {
		struct oidc_params op = { .log_name = p->name != NULL ? p->name : "upstream",
			.issuer = p->issuer_url,
			.endpoints = true,
			.policy = &u->policy,
			.min_refresh_ms = UPSTREAM_JWKS_MIN_REFRESH_MS,
			.retry_ms = UPSTREAM_RETRY_MS };

		u->oidc = oidc_new(fetcher, &op);
	} else {
		/* oauth2: the endpoints are the operator's own words. */
		u->authorization_endpoint = p->authorization_endpoint;
		u->token_endpoint = p->token_endpoint;
		u->userinfo_endpoint = p->userinfo_endpoint;
	}
	return u;
}

static void
upstream_op_free(struct upstream_op *op)
{
	struct upstream *u = op->u;

	if (u->oidc != NULL)
		oidc_unwait(u->oidc, &op->wait);
	TAILQ_REMOVE(&u->ops, op, all_entry);
	fetch_cancel(op->fetch);
	xfree_secret(op->code);
	xfree_secret(op->verifier);
	xfree_secret(op->nonce);
	xfree_secret(op->refresh_token);
	store_upstream_free(op->tokens);
	free(op);
}

void
upstream_free(struct upstream *u)
{
	struct upstream_op *op;

	if (u == NULL)
		return;
	while ((op = TAILQ_FIRST(&u->ops)) != NULL)
		upstream_op_free(op);
	oidc_free(u->oidc);
	free(u);
}

void
upstream_cancel(struct upstream_op *op)
{
	if (op != NULL)
		upstream_op_free(op);
}

const char *
upstream_issuer(const struct upstream *u)
{
	return u->issuer;
}

/* Finish an operation: call its callback once and free it. */
static void
upstream_finish(struct upstream_op *op, const char *error)
{
	struct store_upstream *tokens = op->tokens;

	op->tokens = NULL;
	if (op->exchange) {
		upstream_exchange_cb cb = op->exchanged;
		void *arg = op->arg;

		if (error != NULL) {
			store_upstream_free(tokens);
			tokens = NULL;
		}
		upstream_op_free(op);
		cb(tokens, error, arg);
	} else {
		upstream_ready_cb cb = op->ready;
		void *arg = op->arg;

		store_upstream_free(tokens);
		upstream_op_free(op);
		cb(error, arg);
	}
}

static json_object *
upstream_parse_json(const char *body, size_t len)
{
	struct json_tokener *tok = json_tokener_new_ex(UPSTREAM_JSON_DEPTH);
	json_object *o;

	if (tok == NULL)
		return NULL;
	o = json_tokener_parse_ex(tok, body, (int)len);
	if (o != NULL &&
	    (json_tokener_get_error(tok) != json_tokener_success ||
		!json_object_is_type(o, json_type_object))) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

static const char *
upstream_json_string(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* The discovery or key fetch op waited for is over. */
static void
upstream_wait_done(void *arg)
{
	struct upstream_op *op = arg;

	upstream_advance(op);
}

/* Wait for oidc unless op has just done so; true: op waits, and advances
 * again when the fetch is over. */
static bool
upstream_wait(struct upstream_op *op, enum oidc_need need)
{
	if (op->waited) {
		op->waited = false;
		return false;
	}
	if (!oidc_wait(op->u->oidc, need, &op->wait, upstream_wait_done, op))
		return false;
	op->waited = true;
	return true;
}

/* Adopt the discovered endpoints; false (op finished) when there are none. */
static bool
upstream_discovered(struct upstream_op *op)
{
	struct upstream *u = op->u;
	const struct oidc_endpoints *ep = oidc_endpoints(u->oidc);

	if (ep == NULL) {
		upstream_finish(op, oidc_error(u->oidc));
		return false;
	}
	u->issuer = ep->issuer;
	u->authorization_endpoint = ep->authorization_endpoint;
	u->token_endpoint = ep->token_endpoint;
	u->userinfo_endpoint = ep->userinfo_endpoint;
	u->secret_post = ep->secret_post;
	return true;
}

static void
upstream_get_json(struct upstream *u, const char *url, fetch_done_cb cb, void *arg,
    struct fetch **slot, const char *auth)
{
	const char *headers[3] = { "Accept: application/json", auth, NULL };
	struct fetch_request r = { .method = "GET",
		.url = url,
		.headers = headers,
		.policy = &u->policy,
		.policy_name = "trusted" };

	*slot = fetch_start(u->fetcher, &r, cb, arg);
}

/* Verify the ID token; on success fill op->tokens' subject and claims. */
static enum jwt_err
upstream_verify_id_token(struct upstream_op *op, const char **why)
{
	struct upstream *u = op->u;
	struct jwt_expect ex = { .iss = u->issuer, .aud = u->p->client_id, .leeway_s = 60 };
	json_object *claims = NULL;
	const char *nonce, *sub, *azp, *auds[8];
	enum jwt_err e;
	char err[128];
	int n;

	e = jwt_verify(op->tokens->id_token, oidc_keys(u->oidc), &ex, &claims, err, sizeof err);
	if (e != JWT_OK) {
		log_warn("upstream ID token rejected", LOG_S("reason", jwt_err_name(e)),
		    LOG_S("error", err));
		*why = "the identity provider's ID token is invalid";
		return e;
	}
	nonce = jwt_claim_string(claims, "nonce");
	if (nonce == NULL || strlen(nonce) != strlen(op->nonce) ||
	    CRYPTO_memcmp(nonce, op->nonce, strlen(op->nonce)) != 0) {
		*why = "the identity provider's ID token has the wrong nonce";
		e = JWT_ERR_CLAIM;
		goto out;
	}
	n = jwt_claim_strings(claims, "aud", auds, 8);
	azp = jwt_claim_string(claims, "azp");
	if (n > 1 && (azp == NULL || strcmp(azp, u->p->client_id) != 0)) {
		*why = "the identity provider's ID token names another authorized party";
		e = JWT_ERR_AUDIENCE;
		goto out;
	}
	sub = jwt_claim_string(claims, u->p->subject_claim != NULL ? u->p->subject_claim : "sub");
	if (sub == NULL || *sub == '\0' || strlen(sub) > 255) {
		*why = "the identity provider's ID token has no usable subject";
		e = JWT_ERR_CLAIM;
		goto out;
	}
	op->tokens->subject = xstrdup(sub);
	op->tokens->claims_json = xstrdup(
	    json_object_to_json_string_ext(claims, JSON_C_TO_STRING_PLAIN));
out:
	json_object_put(claims);
	return e;
}

static void
upstream_userinfo_done(const struct fetch_result *res, void *arg)
{
	struct upstream_op *op = arg;
	json_object *doc = NULL, *v = NULL;
	const char *claim = op->u->p->subject_claim != NULL ? op->u->p->subject_claim : "sub";
	char num[32];
	const char *sub = NULL;

	op->fetch = NULL;
	if (res->error != FETCH_OK || res->status != 200 ||
	    (doc = upstream_parse_json(res->body, res->body_len)) == NULL) {
		log_warn("upstream userinfo failed", LOG_I("status", res->status),
		    LOG_S("error", res->error_text));
		upstream_finish(op, "the identity provider's userinfo request failed");
		return;
	}
	if (!json_object_object_get_ex(doc, claim, &v) &&
	    !json_object_object_get_ex(doc, "sub", &v))
		json_object_object_get_ex(doc, "id", &v);
	if (v != NULL && json_object_is_type(v, json_type_string)) {
		sub = json_object_get_string(v);
	} else if (v != NULL && json_object_is_type(v, json_type_int)) {
		snprintf(num, sizeof num, "%lld", (long long)json_object_get_int64(v));
		sub = num;
	}
	if (sub == NULL || *sub == '\0' || strlen(sub) > 255) {
		json_object_put(doc);
		upstream_finish(op, "the identity provider's userinfo names no user");
		return;
	}
	op->tokens->subject = xstrdup(sub);
	op->tokens->claims_json = xstrdup(
	    json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN));
	json_object_put(doc);
	upstream_finish(op, NULL);
}

static void
upstream_token_done(const struct fetch_result *res, void *arg)
{
	struct upstream_op *op = arg;
	json_object *doc = NULL, *v;
	const char *at, *tt;

	op->fetch = NULL;
	if (res->error != FETCH_OK) {
		log_warn("upstream token request failed", LOG_S("error", res->error_text));
		upstream_finish(op, "the identity provider could not be reached");
		return;
	}
	doc = upstream_parse_json(res->body, res->body_len);
	if (res->status != 200 || doc == NULL) {
		const char *e = doc != NULL ? upstream_json_string(doc, "error") : NULL;

		log_warn("upstream token request refused", LOG_I("status", res->status),
		    LOG_S("error", e != NULL ? e : "(no error code)"));
		json_object_put(doc);
		upstream_finish(op,
		    op->refresh_token != NULL
			? "the identity provider refused the refresh token"
			: "the identity provider refused the authorization code");
		return;
	}
	at = upstream_json_string(doc, "access_token");
	tt = upstream_json_string(doc, "token_type");
	if (at == NULL || (tt != NULL && strcasecmp(tt, "bearer") != 0)) {
		json_object_put(doc);
		upstream_finish(op, "the identity provider's token response is malformed");
		return;
	}
	op->tokens = xcalloc(1, sizeof *op->tokens);
	op->tokens->access_token = xstrdup(at);
	if (upstream_json_string(doc, "refresh_token") != NULL)
		op->tokens->refresh_token = xstrdup(upstream_json_string(doc, "refresh_token"));
	if (upstream_json_string(doc, "id_token") != NULL)
		op->tokens->id_token = xstrdup(upstream_json_string(doc, "id_token"));
	if (json_object_object_get_ex(doc, "expires_in", &v) &&
	    json_object_is_type(v, json_type_int) && json_object_get_int64(v) > 0) {
		/* Any int64 is valid JSON: clamp before adding to the clock. */
		int64_t ttl = json_object_get_int64(v);

		op->tokens->expires_at = clock_wall_s() +
		    (ttl < UPSTREAM_EXPIRES_IN_MAX_S ? ttl : UPSTREAM_EXPIRES_IN_MAX_S);
	}
	json_object_put(doc);
	if (op->refresh_token != NULL) {
		/* A refresh yields new tokens for the same login; the caller keeps
		 * the identity (and the old refresh token when none came back). */
		upstream_finish(op, NULL);
		return;
	}
	if (op->u->p->type == UPSTREAM_OIDC) {
		if (op->tokens->id_token == NULL) {
			upstream_finish(op, "the identity provider returned no ID token");
			return;
		}
		op->step = STEP_JWKS;
	} else {
		op->step = STEP_USERINFO;
	}
	upstream_advance(op);
}

static void
upstream_post_token(struct upstream_op *op)
{
	struct upstream *u = op->u;
	const struct upstream_provider *p = u->p;
	struct form_builder fb = { 0 };
	char *body, *auth = NULL;
	const char *headers[4] = { "Accept: application/json",
		"Content-Type: application/x-www-form-urlencoded", NULL, NULL };
	struct fetch_request r = { .method = "POST",
		.url = u->token_endpoint,
		.headers = headers,
		.policy = &u->policy,
		.policy_name = "trusted" };

	if (op->refresh_token != NULL) {
		form_add(&fb, "grant_type", "refresh_token");
		form_add(&fb, "refresh_token", op->refresh_token);
	} else {
		form_add(&fb, "grant_type", "authorization_code");
		form_add(&fb, "code", op->code);
		form_add(&fb, "redirect_uri", p->redirect_uri);
		form_add(&fb, "code_verifier", op->verifier);
	}
	if (p->client_secret.value == NULL || u->secret_post) {
		form_add(&fb, "client_id", p->client_id);
		form_add(&fb, "client_secret", p->client_secret.value);
	} else {
		auth = form_basic_auth(p->client_id, p->client_secret.value);
		headers[2] = auth;
	}
	body = form_finish(&fb);
	r.body = body;
	r.body_len = strlen(body);
	op->fetch = fetch_start(u->fetcher, &r, upstream_token_done, op);
	xfree_secret(body);
	xfree_secret(auth);
}

/* Move an operation on from its current step. */
static void
upstream_advance(struct upstream_op *op)
{
	struct upstream *u = op->u;
	const char *why;
	enum jwt_err e;
	char *auth;

	switch (op->step) {
	case STEP_DISCOVERY:
		if (u->oidc != NULL && u->token_endpoint == NULL) {
			if (upstream_wait(op, OIDC_DISCOVERY))
				return;
			if (!upstream_discovered(op))
				return;
		}
		if (!op->exchange) {
			upstream_finish(op, NULL);
			return;
		}
		op->step = STEP_TOKEN;
		upstream_post_token(op);
		return;
	case STEP_TOKEN:
		return;
	case STEP_JWKS:
		if (upstream_wait(op, op->jwks_retried ? OIDC_FRESH_KEYS : OIDC_KEYS))
			return;
		if (oidc_keys(u->oidc) == NULL) {
			upstream_finish(op, "the identity provider's signing keys are unavailable");
			return;
		}
		e = upstream_verify_id_token(op, &why);
		if (e == JWT_ERR_KID && !op->jwks_retried) {
			/* The IdP may have rotated its keys: fetch them again once
			 * (when oidc allows it). */
			op->jwks_retried = true;
			upstream_advance(op);
			return;
		}
		upstream_finish(op, e == JWT_OK ? NULL : why);
		return;
	case STEP_USERINFO:
		if (u->userinfo_endpoint == NULL) {
			upstream_finish(op, "no userinfo endpoint is configured for the provider");
			return;
		}
		auth = xasprintf("Authorization: Bearer %s", op->tokens->access_token);
		upstream_get_json(u, u->userinfo_endpoint, upstream_userinfo_done, op, &op->fetch,
		    auth);
		xfree_secret(auth);
		return;
	}
}

static struct upstream_op *
upstream_op_new(struct upstream *u, bool exchange, void *arg)
{
	struct upstream_op *op = xcalloc(1, sizeof *op);

	op->u = u;
	op->exchange = exchange;
	op->arg = arg;
	op->step = STEP_DISCOVERY;
	TAILQ_INSERT_TAIL(&u->ops, op, all_entry);
	return op;
}

struct upstream_op *
upstream_prepare(struct upstream *u, upstream_ready_cb done, void *arg)
{
	struct upstream_op *op;

	if (u->token_endpoint != NULL) {
		done(NULL, arg);
		return NULL;
	}
	op = upstream_op_new(u, false, arg);
	op->ready = done;
	upstream_advance(op);
	return op;
}

struct upstream_op *
upstream_exchange(struct upstream *u, const char *code, const char *verifier, const char *nonce,
    upstream_exchange_cb done, void *arg)
{
	struct upstream_op *op = upstream_op_new(u, true, arg);

	op->exchanged = done;
	op->code = xstrdup(code);
	op->verifier = xstrdup(verifier);
	op->nonce = nonce != NULL ? xstrdup(nonce) : xstrdup("");
	upstream_advance(op);
	return op;
}

struct upstream_op *
upstream_refresh(struct upstream *u, const char *refresh_token, upstream_exchange_cb done,
    void *arg)
{
	struct upstream_op *op = upstream_op_new(u, true, arg);

	op->exchanged = done;
	op->refresh_token = xstrdup(refresh_token);
	upstream_advance(op);
	return op;
}

char *
upstream_authorize_url(struct upstream *u, const char *state, const char *challenge,
    const char *nonce)
{
	const struct upstream_provider *p = u->p;
	struct form_builder fb = { 0 };
	char *q, *url, *scope = strlist_join(&p->scopes);

	form_add(&fb, "response_type", "code");
	form_add(&fb, "client_id", p->client_id);
	form_add(&fb, "redirect_uri", p->redirect_uri);
	if (*scope != '\0')
		form_add(&fb, "scope", scope);
	form_add(&fb, "state", state);
	form_add(&fb, "code_challenge", challenge);
	form_add(&fb, "code_challenge_method", "S256");
	if (p->type == UPSTREAM_OIDC)
		form_add(&fb, "nonce", nonce);
	q = form_finish(&fb);
	url = xasprintf("%s%c%s", u->authorization_endpoint,
	    strchr(u->authorization_endpoint, '?') != NULL ? '&' : '?', q);
	free(q);
	free(scope);
	return url;
}
