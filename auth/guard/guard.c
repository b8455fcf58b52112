/*
 * The bearer guard (see guard.h). Most requests are decided synchronously:
 * a token found in the verified-token cache (or verified on the spot) is
 * checked against the revocation list and the required scopes, and the
 * request is forwarded at once. Two things make a request wait, always
 * holding a reference on its req and listed in g->reqs so that
 * guard_free() and the client's disappearance (abort callback) can undo
 * it: an external-IdP check that needs the network (JWKS, introspection),
 * and an upstream token refresh. Refreshes are single-flight per session
 * (tsid): the first request starts it, later ones queue on it, and the
 * completion forwards or rejects every waiter still there.
 *
 * Security notes: the client's Authorization (ours or the IdP's token)
 * never reaches the backend (forward.c drops it and Proxy-*; we ask it to
 * drop Cookie); the only credential the backend sees is the upstream
 * token we inject. A token is never logged, only log_token_id().
 */
#include "auth/guard/guard.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include "auth/idp/extidp.h"
#include "auth/crypto/jwt.h"
#include "auth/guard/prm.h"
#include "auth/store/store.h"
#include "common/clock.h"
#include "common/scope.h"
#include "common/xalloc.h"
#include "common/xevent.h"
#include "config/config.h"
#include "proxy/log.h"
#include "proxy/metrics.h"
#include "proxy/req.h"

#define GUARD_MALFORMED_TEXT \
	"the Authorization header must be the word Bearer, one space and the token"

struct guard_refresh;

/* A request waiting for an IdP check or an upstream refresh. */
struct guard_req {
	struct guard *g;
	struct req *sr;                  /* a reference */
	char *token;                     /* oidc: to cache the result */
	struct extidp_check *check;      /* oidc check in flight */
	struct store_op *sop;            /* the session's upstream tokens being fetched */
	struct guard_refresh *refresh;   /* queued on this refresh */
	struct tokencache_claims claims; /* refresh waiters: for the next hop */
	TAILQ_ENTRY(guard_req) entry;    /* g->reqs */
	TAILQ_ENTRY(guard_req) wait;     /* refresh->waiters */
};

TAILQ_HEAD(guard_req_list, guard_req);

/* One upstream refresh in flight for a session. */
struct guard_refresh {
	struct guard *g;
	char *tsid;
	char session_id[13]; /* log_token_id(tsid), for logs */
	void *handle;
	struct store_upstream *old; /* the tokens being refreshed */
	uint64_t version;           /* theirs in the store (compare-and-swap) */
	struct store_op *sop;       /* the lease, the new tokens being stored, a re-read */
	struct event *poll;         /* another replica holds the lease: look again */
	int64_t deadline_ms;        /* of the wait for another replica's refresh */
	bool unavailable;           /* the store could not be asked: 503, not 401 */
	char *access;               /* the token for the waiters, once known */
	char *session_claims;
	struct guard_req_list waiters;
	TAILQ_ENTRY(guard_refresh) entry;
};

TAILQ_HEAD(guard_refresh_list, guard_refresh);

struct guard {
	struct event_base *base;
	const struct config *cfg;
	req_pass_fn next; /* an allowed request goes on here */
	void *next_arg;
	const struct prm *prm;
	bool embedded;
	struct guard_as_ops ops;
	char *issuer;
	const char *audience;
	struct tokencache *cache;
	struct tokencache_claims scratch; /* the claims of a token verified but not cached */
	struct extidp *extidp;
	struct guard_req_list reqs;
	struct guard_refresh_list refreshes;

	struct metric *m_decisions;
	struct metric *m_cache;
	struct metric *m_refresh;
};

static void guard_pass(struct guard *g, struct req *sr, const struct tokencache_claims *claims);

/* --- pure parts --- */

/* RFC 7235 token68 characters (the trailing '=' padding is handled apart),
 * as a table built once: every byte of every bearer token meets it. */
static unsigned char guard_token68_chars[256];

static void
guard_token68_init(void)
{
	static const char set[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				  "0123456789-._~+/";

	if (guard_token68_chars['A'])
		return;
	for (const char *p = set; *p != '\0'; p++)
		guard_token68_chars[(unsigned char)*p] = 1;
}

enum guard_auth
guard_split_authorization(const char *value, const char **token, size_t *len)
{
	size_t n;

	*token = NULL;
	*len = 0;
	if (value == NULL)
		return GUARD_AUTH_MISSING;
	n = strnlen(value, GUARD_TOKEN_MAX + 8);
	if (n > GUARD_TOKEN_MAX + 7)
		return GUARD_AUTH_TOO_LARGE;
	if (n < 8 || strncasecmp(value, "Bearer ", 7) != 0)
		return GUARD_AUTH_MALFORMED;
	*token = value + 7;
	*len = n - 7;
	return GUARD_AUTH_OK;
}

bool
guard_token68(const char *t, size_t n)
{
	size_t i;

	guard_token68_init();
	for (i = 0; i < n && guard_token68_chars[(unsigned char)t[i]]; i++)
		;
	if (i == 0)
		return false;
	while (i < n && t[i] == '=')
		i++;
	return i == n;
}

enum guard_auth
guard_parse_authorization(const char *value, const char **token, size_t *len)
{
	enum guard_auth a = guard_split_authorization(value, token, len);

	if (a == GUARD_AUTH_OK && !guard_token68(*token, *len)) {
		*token = NULL;
		*len = 0;
		return GUARD_AUTH_MALFORMED;
	}
	return a;
}

/* Append s as the inside of an RFC 7230 quoted-string. */
static void
guard_quote(struct evbuffer *b, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20 || c == 0x7f)
			continue;
		if (c == '"' || c == '\\')
			evbuffer_add(b, "\\", 1);
		evbuffer_add(b, s, 1);
	}
}

char *
guard_www_authenticate(const char *metadata_url, const char *scope, const char *error,
    const char *description)
{
	struct evbuffer *b = xevbuffer_new();
	const char *sep = " ";
	size_t len;
	char *out;

	evbuffer_add_printf(b, "Bearer");
	if (metadata_url != NULL) {
		evbuffer_add_printf(b, "%sresource_metadata=\"", sep);
		guard_quote(b, metadata_url);
		evbuffer_add(b, "\"", 1);
		sep = ", ";
	}
	if (scope != NULL && *scope != '\0') {
		evbuffer_add_printf(b, "%sscope=\"", sep);
		guard_quote(b, scope);
		evbuffer_add(b, "\"", 1);
		sep = ", ";
	}
	if (error != NULL) {
		evbuffer_add_printf(b, "%serror=\"", sep);
		guard_quote(b, error);
		evbuffer_add(b, "\"", 1);
		sep = ", ";
		if (description != NULL) {
			evbuffer_add_printf(b, "%serror_description=\"", sep);
			guard_quote(b, description);
			evbuffer_add(b, "\"", 1);
		}
	}
	len = evbuffer_get_length(b);
	out = xmalloc(len + 1);
	evbuffer_remove(b, out, len);
	out[len] = '\0';
	evbuffer_free(b);
	return out;
}

const char *
guard_jwt_error_text(int err)
{
	switch ((enum jwt_err)err) {
	case JWT_OK:
		return "the access token is valid";
	case JWT_ERR_TOO_LARGE:
		return "the access token is too large";
	case JWT_ERR_MALFORMED:
		return "the access token is malformed";
	case JWT_ERR_ALG:
		return "the access token's signing algorithm is not accepted";
	case JWT_ERR_KID:
		return "the access token is not signed by a known key";
	case JWT_ERR_CRIT:
		return "the access token has unsupported critical headers";
	case JWT_ERR_TYP:
		return "the token is not an access token (typ)";
	case JWT_ERR_SIGNATURE:
		return "the access token's signature is invalid";
	case JWT_ERR_CLAIM:
		return "the access token's claims are malformed";
	case JWT_ERR_EXPIRED:
		return "the access token has expired";
	case JWT_ERR_NOT_YET_VALID:
		return "the access token is not valid yet";
	case JWT_ERR_ISSUER:
		return "the access token was issued by another issuer";
	case JWT_ERR_AUDIENCE:
		return "the access token is not meant for this resource";
	}
	return "the access token is invalid";
}

/* Copy the claims a decision needs out of a verified payload. */
static void
guard_claims_from_json(json_object *o, struct tokencache_claims *c)
{
	const char *s;
	int64_t exp;

	memset(c, 0, sizeof *c);
	if ((s = jwt_claim_string(o, "sub")) != NULL)
		c->sub = xstrdup(s);
	if ((s = jwt_claim_string(o, "scope")) != NULL)
		c->scope = xstrdup(s);
	if ((s = jwt_claim_string(o, "jti")) != NULL)
		c->jti = xstrdup(s);
	if ((s = jwt_claim_string(o, "tsid")) != NULL)
		c->tsid = xstrdup(s);
	if ((s = jwt_claim_string(o, "client_id")) != NULL)
		c->client_id = xstrdup(s);
	if (jwt_claim_int(o, "exp", &exp) == 0)
		c->exp = exp;
}

static void
guard_log_reject(struct req *sr, const char *token, size_t len, const char *reason,
    const char *detail)
{
	char id[13];

	if (token == NULL) {
		log_info("token rejected", LOG_S("reason", reason), LOG_S("path", req_path(sr)),
		    LOG_S("request_id", req_id(sr)));
		return;
	}
	log_token_id(token, len, id);
	log_info("token rejected", LOG_S("reason", reason), LOG_S("token_id", id),
	    LOG_S("detail", detail != NULL ? detail : ""), LOG_S("path", req_path(sr)),
	    LOG_S("request_id", req_id(sr)));
}

/* The embedded decision, naming the reason for metrics and logs. */
static enum guard_verdict
guard_check_embedded_reason(struct guard *g, const char *token, size_t len,
    const struct tokencache_claims **claims, char *desc, size_t desclen, const char **reason)
{
	struct jwt_expect ex = { .typ = "at+jwt",
		.iss = g->issuer,
		.aud = g->audience,
		.leeway_s = GUARD_LEEWAY_S };
	const struct tokencache_claims *c;
	const char *missing;
	json_object *o = NULL;
	enum jwt_err e;
	char err[160];

	*claims = NULL;
	*reason = "ok";
	if (desclen > 0)
		desc[0] = '\0';
	if (len > GUARD_TOKEN_MAX) {
		*reason = "too_large";
		snprintf(desc, desclen, "%s", guard_jwt_error_text(JWT_ERR_TOO_LARGE));
		return GUARD_INVALID_TOKEN;
	}
	if ((c = tokencache_get(g->cache, token, len)) != NULL) {
		metrics_add(g->m_cache, 1, "hit");
	} else {
		metrics_add(g->m_cache, 1, "miss");
		if (!guard_token68(token, len)) {
			*reason = "malformed_header";
			snprintf(desc, desclen, "%s", GUARD_MALFORMED_TEXT);
			return GUARD_INVALID_TOKEN;
		}
		e = jwt_verify(token, g->ops.keyset(g->ops.as), &ex, &o, err, sizeof err);
		if (e != JWT_OK) {
			*reason = jwt_err_name(e);
			snprintf(desc, desclen, "%s", guard_jwt_error_text(e));
			return GUARD_INVALID_TOKEN;
		}
		tokencache_claims_dispose(&g->scratch);
		guard_claims_from_json(o, &g->scratch);
		json_object_put(o);
		if (g->scratch.jti == NULL) {
			*reason = "no_jti";
			snprintf(desc, desclen, "the access token has no identifier (jti)");
			return GUARD_INVALID_TOKEN;
		}
		tokencache_put(g->cache, token, len, &g->scratch, g->scratch.exp);
		c = &g->scratch;
	}
	/* Revocation is checked on every request, cached or not. */
	if (c->jti == NULL || g->ops.token_revoked(g->ops.as, c->jti)) {
		tokencache_remove(g->cache, token, len);
		*reason = "revoked";
		snprintf(desc, desclen, "the access token has been revoked");
		return GUARD_INVALID_TOKEN;
	}
	if (!scope_cover(c->scope, &g->cfg->auth.required_scopes, &missing)) {
		*reason = "insufficient_scope";
		snprintf(desc, desclen, "the access token lacks the scope %s", missing);
		*claims = c;
		return GUARD_INSUFFICIENT_SCOPE;
	}
	*claims = c;
	return GUARD_ALLOW;
}

enum guard_verdict
guard_check_embedded(struct guard *g, const char *token, size_t len,
    const struct tokencache_claims **claims, char *desc, size_t desclen)
{
	const char *reason;

	if (strnlen(token, len + 1) != len) { /* a NUL inside: not a header value */
		*claims = NULL;
		snprintf(desc, desclen, "%s", GUARD_MALFORMED_TEXT);
		return GUARD_INVALID_TOKEN;
	}
	return guard_check_embedded_reason(g, token, len, claims, desc, desclen, &reason);
}

/* --- replies --- */

/* Answer 401/403/503 with the RFC 6750 challenge and a JSON body. */
static void
guard_deny(struct guard *g, struct req *sr, enum guard_verdict v, const char *reason,
    const char *desc)
{
	const char *error = NULL, *scope = prm_challenge_scope(g->prm);
	json_object *body, *e;
	char *www, *id;
	int status = 401;

	metrics_add(g->m_decisions, 1,
	    v == GUARD_NO_TOKEN                 ? "no_token"
		: v == GUARD_INSUFFICIENT_SCOPE ? "insufficient_scope"
		: v == GUARD_UNAVAILABLE        ? "unavailable"
						: "invalid_token",
	    reason);
	if (req_gone(sr))
		return;
	switch (v) {
	case GUARD_NO_TOKEN:
		desc = "an access token is required";
		break;
	case GUARD_INSUFFICIENT_SCOPE:
		status = 403;
		error = "insufficient_scope";
		break;
	case GUARD_UNAVAILABLE:
		status = 503;
		break;
	default:
		error = "invalid_token";
		break;
	}
	if (status != 503) {
		www = guard_www_authenticate(prm_metadata_url(g->prm), scope, error, desc);
		req_add_header(sr, "WWW-Authenticate", www);
		free(www);
	} else {
		req_add_header(sr, "Retry-After", "5");
	}
	req_add_header(sr, "Pragma", "no-cache");
	if ((id = req_jsonrpc_id(sr)) != NULL) {
		json_object *data = json_object_new_object();
		json_object *idv = json_tokener_parse(id);

		body = json_object_new_object();
		json_object_object_add(body, "jsonrpc", json_object_new_string("2.0"));
		json_object_object_add(body, "id", idv);
		e = json_object_new_object();
		json_object_object_add(e, "code",
		    json_object_new_int(status == 503 ? -32603 : -32001));
		json_object_object_add(e, "message", json_object_new_string(desc));
		json_object_object_add(data, "error",
		    json_object_new_string(error != NULL ? error
			    : status == 503              ? "temporarily_unavailable"
							 : "unauthorized"));
		json_object_object_add(e, "data", data);
		json_object_object_add(body, "error", e);
		free(id);
	} else {
		body = json_object_new_object();
		json_object_object_add(body, "error",
		    json_object_new_string(error != NULL ? error
			    : status == 503              ? "temporarily_unavailable"
							 : "unauthorized"));
		json_object_object_add(body, "error_description", json_object_new_string(desc));
	}
	req_reply_json(sr, status,
	    json_object_to_json_string_ext(body,
		JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(body);
}

/* --- waiting requests --- */

static struct guard_req *guard_req_new(struct guard *g, struct req *sr);

static void
guard_req_abort(struct req *sr, void *arg)
{
	struct guard_req *gr = arg;
	struct guard *g = gr->g;

	extidp_cancel(gr->check);
	gr->check = NULL;
	store_cancel(gr->sop);
	gr->sop = NULL;
	/* A refresh others may wait on (or that fills the store) goes on. */
	if (gr->refresh != NULL)
		TAILQ_REMOVE(&gr->refresh->waiters, gr, wait);
	TAILQ_REMOVE(&g->reqs, gr, entry);
	xfree_secret(gr->token);
	tokencache_claims_dispose(&gr->claims);
	free(gr);
	req_unref(sr);
}

static struct guard_req *
guard_req_new(struct guard *g, struct req *sr)
{
	struct guard_req *gr = xcalloc(1, sizeof *gr);

	gr->g = g;
	gr->sr = sr;
	req_ref(sr);
	req_set_abort(sr, guard_req_abort, gr);
	TAILQ_INSERT_TAIL(&g->reqs, gr, entry);
	return gr;
}

/* Stop waiting: the request is ours to answer again. Returns the
 * req, on which the caller calls req_unref() once it has
 * passed the request on or answered it. */
static struct req *
guard_req_done(struct guard_req *gr)
{
	struct req *sr = gr->sr;

	req_set_abort(sr, NULL, NULL);
	TAILQ_REMOVE(&gr->g->reqs, gr, entry);
	xfree_secret(gr->token);
	tokencache_claims_dispose(&gr->claims);
	free(gr);
	return sr;
}

/* --- upstream tokens --- */

/* Pass sr on; the next hop learns the token's claims (claims) and, in
 * embedded mode, the login session's upstream claims (session_claims). */
static void
guard_forward(struct guard *g, struct req *sr, const char *upstream_token,
    const struct tokencache_claims *claims, const char *session_claims)
{
	struct req_principal who = { .sub = claims->sub,
		.scope = claims->scope,
		.client_id = claims->client_id,
		.claims_json = g->embedded ? session_claims : claims->claims_json };
	struct req_pass_opts opts = { .strip_cookies = true, .principal = &who };

	metrics_add(g->m_decisions, 1, "allowed", "ok");
	if (upstream_token != NULL) {
		opts.inject_value = upstream_token;
		if (g->cfg->auth.upstream_token_header != NULL) {
			opts.inject_name = g->cfg->auth.upstream_token_header;
		} else {
			opts.inject_name = "Authorization";
			opts.inject_prefix = "Bearer ";
		}
	}
	g->next(sr, &opts, g->next_arg);
}

static void
guard_refresh_free(struct guard_refresh *rf)
{
	if (rf->poll != NULL)
		event_free(rf->poll);
	store_cancel(rf->sop);
	store_upstream_free(rf->old);
	xfree_secret(rf->access);
	free(rf->session_claims);
	free(rf->tsid);
	free(rf);
}

/* The refresh is over (rf->access set, or NULL for a failure): answer
 * every request that waited for it. */
static void
guard_refresh_finish(struct guard_refresh *rf, const char *error)
{
	struct guard *g = rf->g;
	struct guard_req *gr;
	struct req *sr;

	TAILQ_REMOVE(&g->refreshes, rf, entry);
	if (rf->access == NULL) {
		metrics_add(g->m_refresh, 1, "error");
		log_warn("upstream token refresh failed", LOG_S("session", rf->session_id),
		    LOG_S("error", error != NULL ? error : ""));
	}
	while ((gr = TAILQ_FIRST(&rf->waiters)) != NULL) {
		TAILQ_REMOVE(&rf->waiters, gr, wait);
		gr->refresh = NULL;
		if (rf->access != NULL) {
			struct tokencache_claims c = gr->claims;

			memset(&gr->claims, 0, sizeof gr->claims); /* ours until sent on */
			sr = guard_req_done(gr);
			guard_forward(g, sr, rf->access, &c, rf->session_claims);
			tokencache_claims_dispose(&c);
		} else if (rf->unavailable) {
			sr = guard_req_done(gr);
			guard_log_reject(sr, NULL, 0, "store_unavailable", NULL);
			guard_deny(g, sr, GUARD_UNAVAILABLE, "store_unavailable",
			    "the login session cannot be refreshed right now; try again shortly");
		} else {
			sr = guard_req_done(gr);
			guard_log_reject(sr, NULL, 0, "upstream_refresh_failed", NULL);
			guard_deny(g, sr, GUARD_INVALID_TOKEN, "upstream_refresh_failed",
			    "the login session at the identity provider has expired; sign in "
			    "again");
		}
		req_unref(sr);
	}
	guard_refresh_free(rf);
}

/* The session's tokens as they are now in the store: ours, or those of
 * another replica that refreshed them first (compare-and-swap lost). */
static void
guard_refresh_stored(struct store_result *res, void *arg)
{
	struct guard_refresh *rf = arg;
	const struct store_upstream *u = res->upstream;
	const char *error = NULL;

	rf->sop = NULL;
	if (res->status == STORE_CONFLICT && u != NULL && u->access_token != NULL &&
	    (u->expires_at == 0 || u->expires_at > clock_wall_s())) {
		log_info("upstream token refreshed by another replica",
		    LOG_S("session", rf->session_id));
		xfree_secret(rf->access);
		free(rf->session_claims);
		rf->access = xstrdup(u->access_token);
		rf->session_claims = u->claims_json != NULL ? xstrdup(u->claims_json) : NULL;
	} else if (res->status == STORE_NOT_FOUND || res->status == STORE_CONFLICT) {
		/* The session ended (or the other refresh's token is no good). */
		error = "the login session ended during the refresh";
		xfree_secret(rf->access);
		rf->access = NULL;
	} else if (res->status != STORE_OK) {
		/* The new token works for now; the next request will try to
		 * store a refresh again. */
		log_error("the refreshed upstream tokens could not be stored",
		    LOG_S("session", rf->session_id),
		    LOG_S("store", store_status_text(res->status)));
	}
	guard_refresh_finish(rf, error);
}

/* Tokens another replica stored are good for the waiters. */
static bool
guard_refresh_adopt(struct guard_refresh *rf, const struct store_upstream *u)
{
	if (u == NULL || u->access_token == NULL ||
	    (u->expires_at != 0 && u->expires_at - GUARD_UPSTREAM_SKEW_S <= clock_wall_s()))
		return false;
	xfree_secret(rf->access);
	free(rf->session_claims);
	rf->access = xstrdup(u->access_token);
	rf->session_claims = u->claims_json != NULL ? xstrdup(u->claims_json) : NULL;
	return true;
}

/* After our refresh at the IdP failed: the session as it is now. */
static void
guard_refresh_reread(struct store_result *res, void *arg)
{
	struct guard_refresh *rf = arg;

	rf->sop = NULL;
	if (res->status == STORE_OK && res->version != rf->version &&
	    guard_refresh_adopt(rf, res->upstream)) {
		log_info("upstream token refreshed by another replica",
		    LOG_S("session", rf->session_id));
		guard_refresh_finish(rf, NULL);
		return;
	}
	guard_refresh_finish(rf, "the identity provider refused the refresh");
}

static void guard_refresh_lease(struct guard_refresh *rf);
static void guard_refresh_done(struct store_upstream *tokens, const char *error, void *arg);

static void
guard_refresh_poll(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	guard_refresh_lease(arg);
}

/* The lease decides who refreshes: us (ask the IdP), another replica
 * (wait for its tokens), or nobody (already refreshed). */
static void
guard_refresh_leased(struct store_result *res, void *arg)
{
	struct guard_refresh *rf = arg;
	struct guard *g = rf->g;
	struct timeval tv = { 0, GUARD_LEASE_POLL_MS * 1000 };

	rf->sop = NULL;
	switch (res->status) {
	case STORE_OK:
		rf->handle = g->ops.upstream_refresh(g->ops.as, rf->old->refresh_token,
		    guard_refresh_done, rf);
		if (rf->handle == NULL)
			guard_refresh_finish(rf, "the refresh could not be started");
		return;
	case STORE_CONFLICT:
		if (guard_refresh_adopt(rf, res->upstream)) {
			guard_refresh_finish(rf, NULL);
			return;
		}
		/* newer, but also due: refresh those */
		if (res->upstream != NULL && res->upstream->refresh_token != NULL) {
			store_upstream_free(rf->old);
			rf->old = res->upstream;
			res->upstream = NULL;
			rf->version = res->version;
			guard_refresh_lease(rf);
			return;
		}
		guard_refresh_finish(rf, "the login session has no refresh token");
		return;
	case STORE_BUSY:
		if (clock_mono_ms() >= rf->deadline_ms) {
			guard_refresh_finish(rf,
			    "another replica's refresh did not finish in time");
			return;
		}
		if (rf->poll == NULL)
			rf->poll = xevtimer_new(g->base, guard_refresh_poll, rf);
		evtimer_add(rf->poll, &tv);
		return;
	case STORE_NOT_FOUND:
		guard_refresh_finish(rf, "the login session ended");
		return;
	default:
		rf->unavailable = true;
		guard_refresh_finish(rf, store_status_text(res->status));
		return;
	}
}

static void
guard_refresh_lease(struct guard_refresh *rf)
{
	struct guard *g = rf->g;

	rf->sop = store_upstream_lease(g->ops.store(g->ops.as), rf->tsid, rf->version,
	    GUARD_LEASE_MS, guard_refresh_leased, rf);
}

static void
guard_refresh_done(struct store_upstream *tokens, const char *error, void *arg)
{
	struct guard_refresh *rf = arg;
	struct guard *g = rf->g;
	const struct store_upstream *old = rf->old;

	rf->handle = NULL;
	if (tokens == NULL || tokens->access_token == NULL) {
		store_upstream_free(tokens);
		log_warn("upstream token refresh failed: looking at the session again",
		    LOG_S("session", rf->session_id),
		    LOG_S("error",
			error != NULL ? error : "no access token in the refresh response"));
		/* Another replica may have refreshed (and rotated) it meanwhile. */
		rf->sop = store_upstream_get(g->ops.store(g->ops.as), rf->tsid,
		    guard_refresh_reread, rf);
		return;
	}
	/* A provider that does not rotate refresh tokens keeps the old one. */
	if (tokens->refresh_token == NULL && old->refresh_token != NULL)
		tokens->refresh_token = xstrdup(old->refresh_token);
	if (tokens->subject == NULL && old->subject != NULL)
		tokens->subject = xstrdup(old->subject);
	if (tokens->id_token == NULL && old->id_token != NULL)
		tokens->id_token = xstrdup(old->id_token);
	if (tokens->claims_json == NULL && old->claims_json != NULL)
		tokens->claims_json = xstrdup(old->claims_json);
	if (tokens->expires_at != 0 && tokens->expires_at <= clock_wall_s()) {
		store_upstream_free(tokens);
		guard_refresh_finish(rf, "the refreshed upstream token is already expired");
		return;
	}
	metrics_add(g->m_refresh, 1, "ok");
	log_info("upstream token refreshed", LOG_S("session", rf->session_id));
	rf->access = xstrdup(tokens->access_token);
	rf->session_claims = tokens->claims_json != NULL ? xstrdup(tokens->claims_json) : NULL;
	/* Only if no other replica rotated them meanwhile: two replicas
	 * refreshing one session must not lose a rotation. */
	rf->sop = store_upstream_cas(g->ops.store(g->ops.as), rf->tsid, rf->version, tokens,
	    g->cfg->eas.token_lifespans.refresh_token_ms, guard_refresh_stored, rf);
}

/* Queue sr on the refresh of tsid, starting it if none is in flight. */
static void
guard_refresh_join(struct guard *g, struct req *sr, const struct tokencache_claims *claims,
    const struct store_upstream *u, uint64_t version)
{
	const char *tsid = claims->tsid;
	struct guard_refresh *rf;
	struct guard_req *gr;

	TAILQ_FOREACH(rf, &g->refreshes, entry)
	{
		if (strcmp(rf->tsid, tsid) == 0)
			break;
	}
	if (rf == NULL) {
		rf = xcalloc(1, sizeof *rf);
		rf->g = g;
		rf->tsid = xstrdup(tsid);
		rf->old = store_upstream_dup(u);
		rf->version = version;
		log_token_id(tsid, strlen(tsid), rf->session_id);
		TAILQ_INIT(&rf->waiters);
		rf->deadline_ms = clock_mono_ms() + GUARD_LEASE_WAIT_MS;
		TAILQ_INSERT_TAIL(&g->refreshes, rf, entry);
		log_info("refreshing upstream token", LOG_S("session", rf->session_id),
		    LOG_S("request_id", req_id(sr)));
		guard_refresh_lease(rf); /* answers after this returns */
	}
	gr = guard_req_new(g, sr);
	tokencache_claims_copy(&gr->claims, claims);
	gr->refresh = rf;
	TAILQ_INSERT_TAIL(&rf->waiters, gr, wait);
}

/* Forward an allowed request, with the session's upstream token u unless
 * injection is off (or the mode has none). */
static void
guard_pass_session(struct guard *g, struct req *sr, const struct tokencache_claims *claims,
    const struct store_upstream *u, uint64_t version)
{
	int64_t now = clock_wall_s();

	if (g->cfg->eas.disable_upstream_token_injection) {
		guard_forward(g, sr, NULL, claims, u != NULL ? u->claims_json : NULL);
		return;
	}
	if (u == NULL || u->access_token == NULL) {
		guard_log_reject(sr, NULL, 0, "session_ended", NULL);
		guard_deny(g, sr, GUARD_INVALID_TOKEN, "session_ended",
		    "the login session has ended; sign in again");
		return;
	}
	if (u->expires_at != 0 && u->expires_at - GUARD_UPSTREAM_SKEW_S <= now) {
		if (u->refresh_token == NULL || g->ops.upstream_refresh == NULL) {
			guard_log_reject(sr, NULL, 0, "upstream_expired", NULL);
			guard_deny(g, sr, GUARD_INVALID_TOKEN, "upstream_expired",
			    "the login session at the identity provider has expired; sign in "
			    "again");
			return;
		}
		guard_refresh_join(g, sr, claims, u, version);
		return;
	}
	guard_forward(g, sr, u->access_token, claims, u->claims_json);
}

/* The session's upstream tokens, asked of the store (not in its local
 * copy: another replica's login, or a restart). */
static void
guard_session_got(struct store_result *res, void *arg)
{
	struct guard_req *gr = arg;
	struct guard *g = gr->g;
	struct tokencache_claims c = gr->claims;
	struct req *sr;

	gr->sop = NULL;
	memset(&gr->claims, 0, sizeof gr->claims); /* ours until sent on */
	sr = guard_req_done(gr);
	if (res->status == STORE_OK || res->status == STORE_NOT_FOUND) {
		guard_pass_session(g, sr, &c, res->upstream, res->version);
	} else {
		guard_log_reject(sr, NULL, 0, "store_unavailable", NULL);
		guard_deny(g, sr, GUARD_UNAVAILABLE, "store_unavailable",
		    "the login session cannot be looked up right now; try again shortly");
	}
	tokencache_claims_dispose(&c);
	req_unref(sr);
}

static void
guard_pass(struct guard *g, struct req *sr, const struct tokencache_claims *claims)
{
	struct store *st;
	const struct store_upstream *u;
	struct guard_req *gr;
	uint64_t version = 0;

	/* Another replica's session: its owner looks the login session up. */
	if (!g->embedded || req_session_home(sr) == REQ_HOME_ELSEWHERE) {
		guard_forward(g, sr, NULL, claims, NULL);
		return;
	}
	st = g->ops.store(g->ops.as);
	if (claims->tsid == NULL) {
		guard_pass_session(g, sr, claims, NULL, 0);
		return;
	}
	/* The hot path: the local copy, never a wait on the network. */
	if ((u = store_upstream_cached(st, claims->tsid, &version)) != NULL) {
		guard_pass_session(g, sr, claims, u, version);
		return;
	}
	gr = guard_req_new(g, sr);
	tokencache_claims_copy(&gr->claims, claims);
	gr->sop = store_upstream_get(st, claims->tsid, guard_session_got, gr);
}

/* --- external IdP --- */

static void
guard_extidp_done(const struct extidp_result *res, void *arg)
{
	struct guard_req *gr = arg;
	struct guard *g = gr->g;
	const char *missing, *token = gr->token;
	struct req *sr;
	char desc[160];

	gr->check = NULL;
	if (res->outcome == EXTIDP_ACTIVE)
		tokencache_put(g->cache, token, strlen(token), res->claims, res->cache_until);
	else
		guard_log_reject(gr->sr, token, strlen(token), res->reason, NULL);
	gr->token = NULL; /* freed below, after its last use */
	sr = guard_req_done(gr);
	if (res->outcome == EXTIDP_UNAVAILABLE) {
		guard_deny(g, sr, GUARD_UNAVAILABLE, res->reason, res->description);
	} else if (res->outcome != EXTIDP_ACTIVE) {
		guard_deny(g, sr, GUARD_INVALID_TOKEN, res->reason, res->description);
	} else if (!scope_cover(res->claims->scope, &g->cfg->auth.required_scopes, &missing)) {
		snprintf(desc, sizeof desc, "the access token lacks the scope %s", missing);
		guard_deny(g, sr, GUARD_INSUFFICIENT_SCOPE, "insufficient_scope", desc);
	} else {
		guard_pass(g, sr, res->claims);
	}
	xfree_secret((char *)token);
	req_unref(sr);
}

static void
guard_check_oidc(struct guard *g, struct req *sr, const char *token, size_t len)
{
	const struct tokencache_claims *c;
	struct extidp_check *chk;
	const char *missing;
	struct guard_req *gr;
	char desc[160];

	if ((c = tokencache_get(g->cache, token, len)) != NULL) {
		metrics_add(g->m_cache, 1, "hit");
		if (!scope_cover(c->scope, &g->cfg->auth.required_scopes, &missing)) {
			snprintf(desc, sizeof desc, "the access token lacks the scope %s", missing);
			guard_deny(g, sr, GUARD_INSUFFICIENT_SCOPE, "insufficient_scope", desc);
			return;
		}
		guard_pass(g, sr, c);
		return;
	}
	metrics_add(g->m_cache, 1, "miss");
	if (!guard_token68(token, len)) {
		guard_log_reject(sr, NULL, 0, "malformed_header", NULL);
		guard_deny(g, sr, GUARD_INVALID_TOKEN, "malformed_header", GUARD_MALFORMED_TEXT);
		return;
	}
	gr = guard_req_new(g, sr);
	gr->token = xstrndup(token, len);
	/* done may run before extidp_check returns (then NULL comes back and
	 * gr is already freed); our own reference keeps sr valid meanwhile. */
	req_ref(sr);
	if ((chk = extidp_check(g->extidp, gr->token, guard_extidp_done, gr)) != NULL)
		gr->check = chk;
	req_unref(sr);
}

/* --- the handler --- */

/* The request's bearer token: every Authorization header is looked at, so
 * that a second one is refused rather than ignored. */
static enum guard_auth
guard_request_token(struct req *sr, const char **token, size_t *len)
{
	const char *value = NULL, *name, *v;
	size_t i = 0;
	int n = 0;

	while (req_header_next(sr, &i, &name, &v)) {
		if (strcasecmp(name, "Authorization") == 0) {
			value = v;
			n++;
		}
	}
	if (n > 1) {
		*token = NULL;
		*len = 0;
		return GUARD_AUTH_MALFORMED;
	}
	return guard_split_authorization(value, token, len);
}

/* Our own token, checked locally: true when allowed (*claims set), else
 * the denial is answered. */
static bool
guard_embedded_allows(struct guard *g, struct req *sr, const char *token, size_t len,
    const struct tokencache_claims **claims)
{
	const char *reason;
	enum guard_verdict v;
	char desc[160];

	v = guard_check_embedded_reason(g, token, len, claims, desc, sizeof desc, &reason);
	if (v == GUARD_ALLOW)
		return true;
	if (v == GUARD_INVALID_TOKEN)
		guard_log_reject(sr, token, len, reason, NULL);
	guard_deny(g, sr, v, reason, desc);
	return false;
}

void
guard_handler(struct req *sr, void *arg)
{
	struct guard *g = arg;
	const struct tokencache_claims *claims;
	const char *token;
	size_t len;

	if (req_gone(sr))
		return;
	switch (guard_request_token(sr, &token, &len)) {
	case GUARD_AUTH_MISSING:
		guard_deny(g, sr, GUARD_NO_TOKEN, "no_token", NULL);
		return;
	case GUARD_AUTH_TOO_LARGE:
		guard_log_reject(sr, NULL, 0, "too_large", NULL);
		guard_deny(g, sr, GUARD_INVALID_TOKEN, "too_large",
		    "the access token is too large");
		return;
	case GUARD_AUTH_MALFORMED:
		guard_log_reject(sr, NULL, 0, "malformed_header", NULL);
		guard_deny(g, sr, GUARD_INVALID_TOKEN, "malformed_header", GUARD_MALFORMED_TEXT);
		return;
	case GUARD_AUTH_OK:
		break;
	}
	if (!g->embedded) {
		guard_check_oidc(g, sr, token, len);
		return;
	}
	if (guard_embedded_allows(g, sr, token, len, &claims))
		guard_pass(g, sr, claims);
}

bool
guard_head(struct req *sr, void *arg)
{
	struct guard *g = arg;
	const struct tokencache_claims *claims;
	const char *token;
	size_t len;

	if (req_gone(sr))
		return false;
	switch (guard_request_token(sr, &token, &len)) {
	case GUARD_AUTH_OK:
		break;
	default:
		/* The handler's answer, without the body it would not read. */
		guard_handler(sr, g);
		return false;
	}
	if (!g->embedded) {
		/* The IdP's verdict may need the network: after the body. */
		if (guard_token68(token, len))
			return true;
		guard_handler(sr, g);
		return false;
	}
	return guard_embedded_allows(g, sr, token, len, &claims);
}

/* --- lifecycle --- */

struct guard *
guard_new(struct event_base *base, const struct config *cfg, req_pass_fn next, void *next_arg,
    struct fetcher *fetcher, const struct prm *prm, const struct guard_as_ops *ops, char *err,
    size_t errlen)
{
	struct guard *g;
	const char *iss;

	if (cfg->auth.mode == AUTH_MODE_NONE) {
		snprintf(err, errlen, "auth.mode none has no guard");
		return NULL;
	}
	if (prm == NULL || cfg->server.resource_url == NULL) {
		snprintf(err, errlen, "server.resourceUrl is required for the guard");
		return NULL;
	}
	if (cfg->auth.mode == AUTH_MODE_EMBEDDED &&
	    (ops == NULL || ops->keyset == NULL || ops->token_revoked == NULL ||
		ops->store == NULL)) {
		snprintf(err, errlen, "the guard needs the embedded authorization server");
		return NULL;
	}
	g = xcalloc(1, sizeof *g);
	g->base = base;
	g->cfg = cfg;
	g->next = next;
	g->next_arg = next_arg;
	g->prm = prm;
	TAILQ_INIT(&g->reqs);
	TAILQ_INIT(&g->refreshes);
	g->cache = tokencache_new(TOKENCACHE_DEFAULT_MAX);
	if (cfg->auth.mode == AUTH_MODE_EMBEDDED) {
		g->embedded = true;
		g->ops = *ops;
		iss = ops->issuer != NULL ? ops->issuer(ops->as) : cfg->eas.issuer;
		g->issuer = xstrdup(iss != NULL ? iss : "");
		if (strlen(g->issuer) > 1 && g->issuer[strlen(g->issuer) - 1] == '/')
			g->issuer[strlen(g->issuer) - 1] = '\0';
		g->audience = cfg->server.resource_url;
	} else {
		g->extidp = extidp_new(cfg, fetcher, err, errlen);
		if (g->extidp == NULL) {
			guard_free(g);
			return NULL;
		}
	}
	g->m_decisions = metrics_counter("mcp_proxy_guard_decisions_total",
	    "MCP requests decided by the bearer guard, by verdict and reason.", "verdict,reason");
	g->m_cache = metrics_counter("mcp_proxy_guard_token_cache_total",
	    "Verified-token cache lookups, by result.", "result");
	g->m_refresh = metrics_counter("mcp_proxy_guard_upstream_refresh_total",
	    "Upstream token refreshes started by the guard, by outcome.", "outcome");
	return g;
}

void
guard_free(struct guard *g)
{
	struct guard_refresh *rf;
	struct guard_req *gr;

	if (g == NULL)
		return;
	while ((rf = TAILQ_FIRST(&g->refreshes)) != NULL) {
		TAILQ_REMOVE(&g->refreshes, rf, entry);
		if (rf->handle != NULL && g->ops.upstream_cancel != NULL)
			g->ops.upstream_cancel(rf->handle);
		while ((gr = TAILQ_FIRST(&rf->waiters)) != NULL) {
			TAILQ_REMOVE(&rf->waiters, gr, wait);
			gr->refresh = NULL;
		}
		guard_refresh_free(rf);
	}
	while ((gr = TAILQ_FIRST(&g->reqs)) != NULL) {
		extidp_cancel(gr->check);
		gr->check = NULL;
		store_cancel(gr->sop);
		gr->sop = NULL;
		req_unref(guard_req_done(gr));
	}
	extidp_free(g->extidp);
	tokencache_free(g->cache);
	tokencache_claims_dispose(&g->scratch);
	free(g->issuer);
	free(g);
}

struct tokencache *
guard_tokencache(struct guard *g)
{
	return g->cache;
}
