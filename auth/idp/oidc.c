/*
 * An OpenID provider's discovery document and keys (see oidc.h). The one
 * fetch in flight is the discovery document or the JWKS; a waiter for keys
 * whose jwks_uri is not known yet rides the discovery and then the JWKS
 * fetch, and hears of it once, at the end.
 */
#include "auth/idp/oidc.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/crypto/jwt.h"
#include "auth/crypto/keyset.h"
#include "common/clock.h"
#include "common/xalloc.h"
#include "proxy/fetch.h"
#include "proxy/log.h"
#include "proxy/metrics.h"

TAILQ_HEAD(oidc_waiters, oidc_waiter);

struct oidc {
	struct fetcher *fetcher;
	struct oidc_params p;
	char *log_name;
	char *issuer;
	char *origin; /* scheme://authority of the issuer */
	char *discovery_url;
	char *jwks_url; /* configured, or discovered; NULL until known */

	bool discovered;
	struct oidc_endpoints ep;
	char *ep_strings[4];

	struct keyset *keys;
	bool attempted;
	int64_t attempt_ms; /* monotonic start of the last fetch */
	struct fetch *fetch;
	struct oidc_waiters waiters;
	char error[192];
};

static char *
oidc_strip_slash(const char *s)
{
	size_t n = strlen(s);

	while (n > 0 && s[n - 1] == '/')
		n--;
	return xstrndup(s, n);
}

struct oidc *
oidc_new(struct fetcher *fetcher, const struct oidc_params *params)
{
	struct oidc *o = xcalloc(1, sizeof *o);
	const char *s = strstr(params->issuer, "://");
	size_t n = s != NULL ? (size_t)(s + 3 - params->issuer) + strcspn(s + 3, "/?#") : 0;
	char *trim = oidc_strip_slash(params->issuer);

	o->fetcher = fetcher;
	o->p = *params;
	o->log_name = xstrdup(params->log_name);
	o->issuer = xstrdup(params->issuer);
	o->origin = xstrndup(params->issuer, n);
	o->discovery_url = xasprintf("%s/.well-known/openid-configuration", trim);
	o->jwks_url = params->jwks_url != NULL ? xstrdup(params->jwks_url) : NULL;
	o->p.log_name = o->log_name;
	o->p.issuer = o->issuer;
	o->p.jwks_url = NULL;
	TAILQ_INIT(&o->waiters);
	free(trim);
	return o;
}

void
oidc_free(struct oidc *o)
{
	struct oidc_waiter *w;

	if (o == NULL)
		return;
	while ((w = TAILQ_FIRST(&o->waiters)) != NULL)
		oidc_unwait(o, w);
	fetch_cancel(o->fetch);
	keyset_free(o->keys);
	for (size_t i = 0; i < sizeof o->ep_strings / sizeof o->ep_strings[0]; i++)
		free(o->ep_strings[i]);
	free(o->log_name);
	free(o->issuer);
	free(o->origin);
	free(o->discovery_url);
	free(o->jwks_url);
	free(o);
}

const struct oidc_endpoints *
oidc_endpoints(const struct oidc *o)
{
	return o->discovered ? &o->ep : NULL;
}

const struct keyset *
oidc_keys(const struct oidc *o)
{
	return o->keys;
}

const char *
oidc_error(const struct oidc *o)
{
	return o->error;
}

static void
oidc_count(struct oidc *o, const char *outcome)
{
	if (o->p.m_fetch != NULL)
		metrics_add(o->p.m_fetch, 1, outcome);
}

/* --- discovery --- */

/* An endpoint must be an absolute URL on the issuer's origin. */
static bool
oidc_on_origin(const struct oidc *o, const char *url)
{
	size_t n = strlen(o->origin);

	return url != NULL && strncmp(url, o->origin, n) == 0 &&
	    (url[n] == '/' || url[n] == '\0' || url[n] == '?');
}

static bool
oidc_list_has(json_object *doc, const char *key, const char *value)
{
	json_object *a;

	if (!json_object_object_get_ex(doc, key, &a) || !json_object_is_type(a, json_type_array))
		return false;
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		json_object *s = json_object_array_get_idx(a, i);

		if (json_object_is_type(s, json_type_string) &&
		    strcmp(json_object_get_string(s), value) == 0)
			return true;
	}
	return false;
}

static bool
oidc_issuer_is_ours(const struct oidc *o, const char *iss)
{
	char *want = oidc_strip_slash(o->issuer), *got = oidc_strip_slash(iss);
	bool same = strcmp(want, got) == 0;

	free(want);
	free(got);
	return same;
}

/* The login endpoints of doc; NULL or why not. */
static const char *
oidc_adopt_endpoints(struct oidc *o, json_object *doc, const char *iss, const char *jw)
{
	const char *az = jwt_claim_string(doc, "authorization_endpoint");
	const char *tk = jwt_claim_string(doc, "token_endpoint");
	const char *ui = jwt_claim_string(doc, "userinfo_endpoint");
	const char *methods = "token_endpoint_auth_methods_supported";

	if (az == NULL || tk == NULL)
		return "the discovery document lacks authorization_endpoint, token_endpoint or "
		       "jwks_uri";
	if (!oidc_on_origin(o, az) || !oidc_on_origin(o, tk) || !oidc_on_origin(o, jw) ||
	    (ui != NULL && !oidc_on_origin(o, ui)))
		return "an endpoint in the discovery document is not on the issuer's origin";
	o->ep_strings[0] = xstrdup(iss);
	o->ep_strings[1] = xstrdup(az);
	o->ep_strings[2] = xstrdup(tk);
	o->ep_strings[3] = ui != NULL ? xstrdup(ui) : NULL;
	o->ep.issuer = o->ep_strings[0];
	o->ep.authorization_endpoint = o->ep_strings[1];
	o->ep.token_endpoint = o->ep_strings[2];
	o->ep.userinfo_endpoint = o->ep_strings[3];
	/* Absent means client_secret_basic (OIDC Discovery §3). */
	o->ep.secret_post = json_object_object_get_ex(doc, methods, NULL) &&
	    !oidc_list_has(doc, methods, "client_secret_basic") &&
	    oidc_list_has(doc, methods, "client_secret_post");
	return NULL;
}

/* Validate and adopt a discovery document; NULL or why not. */
static const char *
oidc_adopt_discovery(struct oidc *o, const struct fetch_result *res)
{
	json_object *doc = NULL;
	const char *iss = NULL, *jw = NULL, *why = NULL;

	if (res->error != FETCH_OK)
		return res->error_text;
	if (res->status != 200)
		return "the discovery document answered with an error status";
	if ((doc = jwt_json_parse(res->body, res->body_len)) == NULL ||
	    !json_object_is_type(doc, json_type_object))
		why = "the discovery document is not a JSON object";
	else if ((iss = jwt_claim_string(doc, "issuer")) == NULL || !oidc_issuer_is_ours(o, iss))
		why = "the discovery document's issuer is not the configured one";
	else if ((jw = jwt_claim_string(doc, "jwks_uri")) == NULL)
		why = "the discovery document has no jwks_uri";
	if (why == NULL && o->p.endpoints)
		why = oidc_adopt_endpoints(o, doc, iss, jw);
	if (why == NULL) {
		if (o->jwks_url == NULL)
			o->jwks_url = xstrdup(jw);
		o->discovered = true;
		log_info("IdP discovered", LOG_S("idp", o->log_name), LOG_S("issuer", iss),
		    LOG_S("jwks_uri", o->jwks_url));
	}
	json_object_put(doc);
	return why;
}

/* --- fetching and waking --- */

static void oidc_discovery_done(const struct fetch_result *res, void *arg);
static void oidc_jwks_done(const struct fetch_result *res, void *arg);

static void
oidc_get(struct oidc *o, const char *url, fetch_done_cb cb)
{
	static const char *const headers[] = { "Accept: application/json", NULL };
	struct fetch_request r = { .method = "GET",
		.url = url,
		.headers = headers,
		.policy = o->p.policy,
		.policy_name = "trusted" };

	o->fetch = fetch_start(o->fetcher, &r, cb, o);
}

/* Is need met with what is at hand? */
static bool
oidc_met(const struct oidc *o, enum oidc_need need)
{
	switch (need) {
	case OIDC_DISCOVERY:
		return o->discovered;
	case OIDC_KEYS:
		return o->keys != NULL;
	case OIDC_FRESH_KEYS:
		return false;
	}
	return false;
}

static bool
oidc_may_fetch(const struct oidc *o)
{
	int64_t since = clock_mono_ms() - o->attempt_ms;

	if (!o->attempted)
		return true;
	return since >= (o->keys != NULL ? o->p.min_refresh_ms : o->p.retry_ms);
}

static void
oidc_start(struct oidc *o, enum oidc_need need)
{
	o->attempted = true;
	o->attempt_ms = clock_mono_ms();
	if (need == OIDC_DISCOVERY || o->jwks_url == NULL)
		oidc_get(o, o->discovery_url, oidc_discovery_done);
	else
		oidc_get(o, o->jwks_url, oidc_jwks_done);
}

/* Wake the waiters whose fetch is over: all of them, or (keys still to
 * come) those that waited for discovery only. Callbacks may wait again. */
static void
oidc_wake(struct oidc *o, bool all)
{
	struct oidc_waiters wake = TAILQ_HEAD_INITIALIZER(wake);
	struct oidc_waiter *w, *next;

	for (w = TAILQ_FIRST(&o->waiters); w != NULL; w = next) {
		next = TAILQ_NEXT(w, entry);
		if (all || w->need == OIDC_DISCOVERY) {
			TAILQ_REMOVE(&o->waiters, w, entry);
			TAILQ_INSERT_TAIL(&wake, w, entry);
		}
	}
	while ((w = TAILQ_FIRST(&wake)) != NULL) {
		TAILQ_REMOVE(&wake, w, entry);
		w->queued = false;
		w->done(w->arg);
	}
}

static bool
oidc_keys_wanted(const struct oidc *o)
{
	const struct oidc_waiter *w;

	TAILQ_FOREACH(w, &o->waiters, entry)
	if (w->need != OIDC_DISCOVERY)
		return true;
	return false;
}

static void
oidc_discovery_done(const struct fetch_result *res, void *arg)
{
	struct oidc *o = arg;
	const char *why;

	o->fetch = NULL;
	if ((why = oidc_adopt_discovery(o, res)) != NULL) {
		oidc_count(o, "discovery_error");
		log_warn("IdP discovery failed", LOG_S("idp", o->log_name),
		    LOG_S("url", o->discovery_url), LOG_S("error", why),
		    LOG_I("status", res->status));
		snprintf(o->error, sizeof o->error,
		    "the identity provider is unavailable (discovery: %s)", why);
		oidc_wake(o, true);
		return;
	}
	o->error[0] = '\0';
	if (oidc_keys_wanted(o))
		oidc_get(o, o->jwks_url, oidc_jwks_done);
	oidc_wake(o, o->fetch == NULL);
}

static void
oidc_jwks_done(const struct fetch_result *res, void *arg)
{
	struct oidc *o = arg;
	struct keyset *ks = NULL;
	char err[160] = "";

	o->fetch = NULL;
	if (res->error != FETCH_OK)
		snprintf(err, sizeof err, "%s", res->error_text);
	else if (res->status != 200)
		snprintf(err, sizeof err, "HTTP status %ld", res->status);
	else
		ks = keyset_from_jwks(res->body, res->body_len, err, sizeof err);
	if (ks == NULL) {
		oidc_count(o, "jwks_error");
		log_warn("IdP JWKS fetch failed", LOG_S("idp", o->log_name),
		    LOG_S("url", o->jwks_url), LOG_S("error", err));
		snprintf(o->error, sizeof o->error,
		    "the identity provider's signing keys are unavailable");
	} else {
		oidc_count(o, "ok");
		log_info("IdP keys loaded", LOG_S("idp", o->log_name), LOG_S("url", o->jwks_url),
		    LOG_I("keys", (long long)keyset_count(ks)));
		keyset_free(o->keys);
		o->keys = ks;
		o->error[0] = '\0';
	}
	oidc_wake(o, true);
}

bool
oidc_wait(struct oidc *o, enum oidc_need need, struct oidc_waiter *w, oidc_done_cb done, void *arg)
{
	if (oidc_met(o, need))
		return false;
	if (o->fetch == NULL) {
		if (!oidc_may_fetch(o))
			return false;
		oidc_start(o, need);
	}
	w->need = need;
	w->done = done;
	w->arg = arg;
	w->queued = true;
	TAILQ_INSERT_TAIL(&o->waiters, w, entry);
	return true;
}

void
oidc_unwait(struct oidc *o, struct oidc_waiter *w)
{
	if (w->queued) {
		TAILQ_REMOVE(&o->waiters, w, entry);
		w->queued = false;
	}
}
