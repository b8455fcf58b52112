/*
 * External-IdP token validation (see extidp.h). The discovery document and
 * keys are oidc.c's: every JWT check that needs fresher keys waits on its
 * fetch and is verified again when it lands; tokens with unknown kids are
 * refused while a fetch is not allowed yet. Introspection calls
 * are one per check (the guard caches what comes back). Everything the IdP
 * returns is untrusted input: parsed strictly and bounded.
 */
#include "auth/idp/extidp.h"

#include <json-c/json.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include "common/b64url.h"
#include "auth/crypto/jwt.h"
#include "auth/crypto/keyset.h"
#include "auth/idp/oidc.h"
#include "common/clock.h"
#include "common/form.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "proxy/fetch.h"
#include "proxy/log.h"
#include "proxy/metrics.h"

#define EXTIDP_SCOPE_MAX 64 /* entries of an "scp" array */

struct extidp_check {
	struct extidp *x;
	char *token;
	extidp_done_cb done;
	void *arg;
	struct oidc_waiter wait;         /* for keys */
	struct fetch *fetch;             /* introspection in flight */
	TAILQ_ENTRY(extidp_check) entry; /* x->checks */
};

TAILQ_HEAD(extidp_check_list, extidp_check);

struct extidp {
	const struct config *cfg;
	struct fetcher *fetcher;
	struct fetch_policy policy;
	char *issuer;
	char *audience;
	struct oidc *oidc;
	char *introspection_url; /* NULL: JWTs only */
	char *basic_auth;        /* "Authorization: Basic …" (a secret) */
	struct extidp_check_list checks;

	struct metric *m_fetch;
	struct metric *m_introspect;
};

struct extidp *
extidp_new(const struct config *cfg, struct fetcher *fetcher, char *err, size_t errlen)
{
	struct extidp *x;
	const char *iss = cfg->auth.oidc.issuer;
	struct oidc_params op = { .log_name = "external IdP",
		.issuer = iss,
		.jwks_url = cfg->auth.oidc.jwks_url,
		.min_refresh_ms = EXTIDP_JWKS_MIN_INTERVAL_MS,
		.retry_ms = EXTIDP_RETRY_MS };

	if (iss == NULL || cfg->auth.oidc.audience == NULL) {
		snprintf(err, errlen, "auth.oidc.issuer and auth.oidc.audience are required");
		return NULL;
	}
	if (fetcher == NULL) {
		snprintf(err, errlen, "the external IdP needs the outbound fetcher");
		return NULL;
	}
	if (cfg->auth.oidc.introspection_url != NULL &&
	    (cfg->auth.oidc.client_id == NULL || cfg->auth.oidc.client_secret.value == NULL)) {
		snprintf(err, errlen,
		    "auth.oidc.introspectionUrl needs auth.oidc.clientId and "
		    "auth.oidc.clientSecretRef");
		return NULL;
	}
	x = xcalloc(1, sizeof *x);
	x->cfg = cfg;
	x->fetcher = fetcher;
	fetch_policy_init(&x->policy, false);
	x->policy.allow_http_loopback = cfg->auth.oidc.insecure_allow_http;
	x->policy.timeout_ms = cfg->outbound.timeout_ms;
	x->policy.max_size = cfg->outbound.max_response_size;
	x->issuer = xstrdup(iss);
	x->audience = xstrdup(cfg->auth.oidc.audience);
	if (cfg->auth.oidc.introspection_url != NULL) {
		x->introspection_url = xstrdup(cfg->auth.oidc.introspection_url);
		x->basic_auth = form_basic_auth(cfg->auth.oidc.client_id,
		    cfg->auth.oidc.client_secret.value);
	}
	TAILQ_INIT(&x->checks);
	x->m_fetch = metrics_counter("mcp_proxy_extidp_key_fetches_total",
	    "Fetches of the external IdP's discovery document and JWKS, by outcome.", "outcome");
	op.policy = &x->policy;
	op.m_fetch = x->m_fetch;
	x->oidc = oidc_new(fetcher, &op);
	x->m_introspect = metrics_counter("mcp_proxy_extidp_introspections_total",
	    "RFC 7662 introspection calls to the external IdP, by outcome.", "outcome");
	return x;
}

static void
extidp_check_free(struct extidp_check *c)
{
	xfree_secret(c->token);
	free(c);
}

void
extidp_free(struct extidp *x)
{
	struct extidp_check *c;

	if (x == NULL)
		return;
	while ((c = TAILQ_FIRST(&x->checks)) != NULL)
		extidp_cancel(c);
	oidc_free(x->oidc);
	free(x->issuer);
	free(x->audience);
	free(x->introspection_url);
	xfree_secret(x->basic_auth);
	free(x);
}

void
extidp_cancel(struct extidp_check *c)
{
	if (c == NULL)
		return;
	fetch_cancel(c->fetch);
	oidc_unwait(c->x->oidc, &c->wait);
	TAILQ_REMOVE(&c->x->checks, c, entry);
	extidp_check_free(c);
}

/* Report the result and free the check. */
static void
extidp_finish(struct extidp_check *c, const struct extidp_result *res)
{
	extidp_done_cb done = c->done;
	void *arg = c->arg;

	TAILQ_REMOVE(&c->x->checks, c, entry);
	extidp_check_free(c);
	done(res, arg);
}

static void
extidp_fail(struct extidp_check *c, enum extidp_outcome outcome, const char *reason,
    const char *desc)
{
	struct extidp_result res = { .outcome = outcome, .reason = reason, .description = desc };

	extidp_finish(c, &res);
}

/* The scopes of a token: "scope" (string) or "scp" (Okta, Entra: array). */
static char *
extidp_scope(json_object *o)
{
	const char *s = jwt_claim_string(o, "scope"), *v[EXTIDP_SCOPE_MAX];
	size_t len = 1;
	char *out;
	int n;

	if (s != NULL)
		return xstrdup(s);
	if ((s = jwt_claim_string(o, "scp")) != NULL)
		return xstrdup(s);
	if ((n = jwt_claim_strings(o, "scp", v, EXTIDP_SCOPE_MAX)) <= 0)
		return NULL;
	for (int i = 0; i < n; i++)
		len += strlen(v[i]) + 1;
	out = xcalloc(1, len);
	for (int i = 0; i < n; i++) {
		if (i > 0)
			strcat(out, " ");
		strcat(out, v[i]);
	}
	return out;
}

static void
extidp_claims_from_json(json_object *o, struct tokencache_claims *c)
{
	const char *s;
	int64_t exp;

	memset(c, 0, sizeof *c);
	if ((s = jwt_claim_string(o, "sub")) != NULL)
		c->sub = xstrdup(s);
	c->scope = extidp_scope(o);
	if ((s = jwt_claim_string(o, "jti")) != NULL)
		c->jti = xstrdup(s);
	if ((s = jwt_claim_string(o, "client_id")) != NULL ||
	    (s = jwt_claim_string(o, "azp")) != NULL)
		c->client_id = xstrdup(s);
	if (jwt_claim_int(o, "exp", &exp) == 0)
		c->exp = exp;
	/* For the MCP authorization rules (groups, roles...); bounded. */
	if ((s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN)) != NULL &&
	    strlen(s) <= TOKENCACHE_CLAIMS_MAX)
		c->claims_json = xstrdup(s);
}

/* The kid of a compact JWS header, copied into buf; false if none. */
static bool
extidp_token_kid(const char *token, char *buf, size_t buflen)
{
	const char *dot = strchr(token, '.'), *kid;
	unsigned char *raw = NULL;
	json_object *hdr = NULL;
	size_t rawlen;
	bool ok = false;

	if (dot == NULL || b64url_decode(token, (size_t)(dot - token), &raw, &rawlen) != 0)
		goto out;
	if ((hdr = jwt_json_parse((const char *)raw, rawlen)) == NULL)
		goto out;
	if ((kid = jwt_claim_string(hdr, "kid")) == NULL || strlen(kid) >= buflen)
		goto out;
	snprintf(buf, buflen, "%s", kid);
	ok = true;
out:
	json_object_put(hdr);
	free(raw);
	return ok;
}

/* Verify a JWT with the keys at hand; *unknown_kid when fresher keys
 * might help. */
static void
extidp_verify_jwt(struct extidp *x, const char *token, struct extidp_result *res,
    struct tokencache_claims *claims, bool *unknown_kid)
{
	struct jwt_expect ex = { .iss = x->issuer,
		.aud = x->audience,
		.leeway_s = EXTIDP_LEEWAY_S };
	const struct keyset *keys = oidc_keys(x->oidc);
	json_object *o = NULL;
	enum jwt_err e;
	char err[160], kid[KEYSET_KID_MAX + 1];

	*unknown_kid = false;
	memset(res, 0, sizeof *res);
	e = jwt_verify(token, keys, &ex, &o, err, sizeof err);
	if (e == JWT_OK) {
		extidp_claims_from_json(o, claims);
		json_object_put(o);
		res->outcome = EXTIDP_ACTIVE;
		res->reason = "ok";
		res->description = "";
		res->claims = claims;
		res->cache_until = claims->exp;
		return;
	}
	if (e == JWT_ERR_KID && extidp_token_kid(token, kid, sizeof kid) &&
	    (keys == NULL || keyset_find(keys, kid) == NULL))
		*unknown_kid = true;
	res->outcome = EXTIDP_INVALID;
	res->reason = jwt_err_name(e);
	switch (e) {
	case JWT_ERR_EXPIRED:
		res->description = "the access token has expired";
		break;
	case JWT_ERR_AUDIENCE:
		res->description = "the access token is not meant for this resource";
		break;
	case JWT_ERR_ISSUER:
		res->description = "the access token was issued by another issuer";
		break;
	case JWT_ERR_SIGNATURE:
		res->description = "the access token's signature is invalid";
		break;
	case JWT_ERR_KID:
		res->description = "the access token is not signed by a known key";
		break;
	case JWT_ERR_NOT_YET_VALID:
		res->description = "the access token is not valid yet";
		break;
	case JWT_ERR_ALG:
		res->description = "the access token's signing algorithm is not accepted";
		break;
	default:
		res->description = "the access token is invalid";
		break;
	}
}

/* Verify c's JWT now and report; the keys are as fresh as they get. */
static void
extidp_conclude_jwt(struct extidp_check *c)
{
	struct extidp *x = c->x;
	struct tokencache_claims claims = { 0 };
	struct extidp_result res;
	bool unknown;

	if (oidc_keys(x->oidc) == NULL) {
		extidp_fail(c, EXTIDP_UNAVAILABLE, "keys_unavailable",
		    "the identity provider's signing keys are unavailable");
		return;
	}
	extidp_verify_jwt(x, c->token, &res, &claims, &unknown);
	extidp_finish(c, &res);
	tokencache_claims_dispose(&claims);
}

/* The key fetch c waited for is over. */
static void
extidp_keys_done(void *arg)
{
	extidp_conclude_jwt(arg);
}

/* --- introspection --- */

enum extidp_outcome
extidp_parse_introspection(const char *body, size_t len, const char *issuer, const char *audience,
    int64_t now, struct tokencache_claims *claims, const char **reason, const char **desc)
{
	json_object *o, *v, *e;
	const char *s;
	int64_t t;
	enum extidp_outcome out = EXTIDP_INVALID;

	memset(claims, 0, sizeof *claims);
	*reason = "bad_introspection";
	*desc = "the identity provider's introspection answer is malformed";
	if ((o = jwt_json_parse(body, len)) == NULL)
		return EXTIDP_UNAVAILABLE;
	if (!json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, "active", &v) ||
	    !json_object_is_type(v, json_type_boolean)) {
		out = EXTIDP_UNAVAILABLE;
		goto out;
	}
	if (!json_object_get_boolean(v)) {
		*reason = "inactive";
		*desc = "the access token is not active";
		goto out;
	}
	if ((s = jwt_claim_string(o, "token_type")) != NULL && strcasecmp(s, "Bearer") != 0 &&
	    strcmp(s, "access_token") != 0 &&
	    strcmp(s, "urn:ietf:params:oauth:token-type:access_token") != 0) {
		*reason = "bad_token_type";
		*desc = "the token is not a bearer access token";
		goto out;
	}
	if (json_object_object_get_ex(o, "exp", &v)) {
		if (jwt_claim_int(o, "exp", &t) != 0)
			goto out;
		if (now >= t + EXTIDP_LEEWAY_S) {
			*reason = "expired";
			*desc = "the access token has expired";
			goto out;
		}
	}
	if (json_object_object_get_ex(o, "nbf", &v)) {
		if (jwt_claim_int(o, "nbf", &t) != 0)
			goto out;
		if (t > now + EXTIDP_LEEWAY_S) {
			*reason = "not_yet_valid";
			*desc = "the access token is not valid yet";
			goto out;
		}
	}
	if (issuer != NULL && (s = jwt_claim_string(o, "iss")) != NULL && strcmp(s, issuer) != 0) {
		*reason = "bad_issuer";
		*desc = "the access token was issued by another issuer";
		goto out;
	}
	/* RFC 7662 makes aud optional and IdPs leave it out for tokens not
	 * bound to a resource: then the IdP's word that the token is active
	 * is all there is. An aud that names others is refused. */
	if (audience != NULL && json_object_object_get_ex(o, "aud", &v)) {
		bool found = false;

		if (json_object_is_type(v, json_type_string)) {
			found = strcmp(json_object_get_string(v), audience) == 0;
		} else if (json_object_is_type(v, json_type_array)) {
			for (size_t i = 0; i < json_object_array_length(v) && !found; i++) {
				e = json_object_array_get_idx(v, i);
				found = json_object_is_type(e, json_type_string) &&
				    strcmp(json_object_get_string(e), audience) == 0;
			}
		}
		if (!found) {
			*reason = "bad_audience";
			*desc = "the access token is not meant for this resource";
			goto out;
		}
	}
	extidp_claims_from_json(o, claims);
	*reason = "ok";
	*desc = "";
	out = EXTIDP_ACTIVE;
out:
	json_object_put(o);
	return out;
}

static void
extidp_introspect_done(const struct fetch_result *fr, void *arg)
{
	struct extidp_check *c = arg;
	struct extidp *x = c->x;
	struct tokencache_claims claims = { 0 };
	struct extidp_result res = { 0 };
	int64_t now = clock_wall_s(), ttl_s = x->cfg->auth.oidc.introspection_cache_ttl_ms / 1000;

	c->fetch = NULL;
	if (fr->error != FETCH_OK || fr->status != 200) {
		metrics_add(x->m_introspect, 1, "error");
		log_warn("introspection failed", LOG_S("url", x->introspection_url),
		    LOG_S("error",
			fr->error != FETCH_OK ? fr->error_text : "unexpected HTTP status"),
		    LOG_I("status", fr->status));
		extidp_fail(c, EXTIDP_UNAVAILABLE, "introspection_failed",
		    "the identity provider could not check the access token");
		return;
	}
	res.outcome = extidp_parse_introspection(fr->body, fr->body_len, x->issuer, x->audience,
	    now, &claims, &res.reason, &res.description);
	metrics_add(x->m_introspect, 1,
	    res.outcome == EXTIDP_ACTIVE        ? "active"
		: res.outcome == EXTIDP_INVALID ? "inactive"
						: "error");
	if (res.outcome == EXTIDP_UNAVAILABLE)
		log_warn("introspection answer malformed", LOG_S("url", x->introspection_url));
	if (res.outcome == EXTIDP_ACTIVE) {
		res.claims = &claims;
		/* Briefly, and never past the token's exp (tokencache clamps). */
		res.cache_until = now + ttl_s;
	}
	extidp_finish(c, &res);
	tokencache_claims_dispose(&claims);
}

static void
extidp_introspect(struct extidp_check *c)
{
	struct extidp *x = c->x;
	const char *headers[4] = { "Content-Type: application/x-www-form-urlencoded",
		"Accept: application/json", x->basic_auth, NULL };
	char *enc = form_encode(c->token);
	char *body = xasprintf("token=%s&token_type_hint=access_token", enc);
	struct fetch_request r = { .method = "POST",
		.url = x->introspection_url,
		.headers = headers,
		.body = body,
		.body_len = strlen(body),
		.policy = &x->policy,
		.policy_name = "trusted" };

	c->fetch = fetch_start(x->fetcher, &r, extidp_introspect_done, c);
	xfree_secret(enc);
	xfree_secret(body);
}

/* --- entry --- */

/* A compact JWS has exactly two dots; anything else is opaque to us. */
static bool
extidp_looks_like_jwt(const char *token)
{
	const char *d1 = strchr(token, '.'), *d2;

	return d1 != NULL && (d2 = strchr(d1 + 1, '.')) != NULL && strchr(d2 + 1, '.') == NULL;
}

struct extidp_check *
extidp_check(struct extidp *x, const char *token, extidp_done_cb done, void *arg)
{
	struct extidp_check *c = xcalloc(1, sizeof *c);
	struct tokencache_claims claims = { 0 };
	struct extidp_result res;
	bool unknown;

	c->x = x;
	c->token = xstrdup(token);
	c->done = done;
	c->arg = arg;
	TAILQ_INSERT_TAIL(&x->checks, c, entry);
	if (!extidp_looks_like_jwt(token)) {
		if (x->introspection_url == NULL) {
			extidp_fail(c, EXTIDP_INVALID, "malformed",
			    "the access token is malformed");
			return NULL;
		}
		extidp_introspect(c);
		return c;
	}
	extidp_verify_jwt(x, token, &res, &claims, &unknown);
	/* Fresher keys might know this kid: wait for them, when allowed. */
	if (!unknown ||
	    !oidc_wait(x->oidc, oidc_keys(x->oidc) == NULL ? OIDC_KEYS : OIDC_FRESH_KEYS, &c->wait,
		extidp_keys_done, c)) {
		if (unknown && oidc_keys(x->oidc) == NULL)
			extidp_fail(c, EXTIDP_UNAVAILABLE, "keys_unavailable",
			    "the identity provider's signing keys are unavailable");
		else
			extidp_finish(c, &res);
		tokencache_claims_dispose(&claims);
		return NULL;
	}
	return c;
}
