/*
 * One OpenID provider's published metadata, shared by the login client
 * (upstream.c) and the external-IdP token validator (extidp.c): the
 * discovery document (<issuer>/.well-known/openid-configuration, its issuer
 * the configured one, trailing slashes aside; with `endpoints`, the
 * authorization, token and userinfo endpoints too, all on the issuer's
 * origin) and the JWKS (configured, or the discovered jwks_uri). Fetches go
 * through the fetcher's given policy; one is in flight at a time and every
 * waiter hears how it ended. Keys that were loaded are kept when a later
 * fetch fails. A fetch after the first is allowed once per min_refresh_ms
 * while keys are at hand, once per retry_ms while none are, so that tokens
 * with made-up kids cannot turn us into a load generator against the IdP.
 * Nothing the IdP sends is trusted: strict JSON, bounded by the policy.
 */
#ifndef AUTH_OIDC_H
#define AUTH_OIDC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

struct fetch_policy;
struct fetcher;
struct keyset;
struct metric;
struct oidc;

struct oidc_params {
	const char *log_name; /* "upstream", "external IdP": log lines name it */
	const char *issuer;
	const char *jwks_url;              /* NULL: jwks_uri from discovery */
	bool endpoints;                    /* discovery must give the login endpoints */
	const struct fetch_policy *policy; /* borrowed; outlives the oidc */
	int64_t min_refresh_ms;
	int64_t retry_ms;
	struct metric *m_fetch; /* optional counter, label outcome */
};

/* What discovery found; valid until oidc_free (a later discovery does not
 * replace it). */
struct oidc_endpoints {
	const char *issuer; /* as the document spells it */
	const char *authorization_endpoint;
	const char *token_endpoint;
	const char *userinfo_endpoint; /* may be NULL */
	bool secret_post;              /* client_secret_post, not _basic */
};

enum oidc_need {
	OIDC_DISCOVERY,  /* the endpoints (params.endpoints) */
	OIDC_KEYS,       /* any keys (discovering the jwks_uri first if need be) */
	OIDC_FRESH_KEYS, /* keys fetched again: an unknown kid */
};

typedef void (*oidc_done_cb)(void *arg);

/* A wait, embedded in the waiter's own state. */
struct oidc_waiter {
	enum oidc_need need;
	oidc_done_cb done;
	void *arg;
	bool queued;
	TAILQ_ENTRY(oidc_waiter) entry;
};

struct oidc *oidc_new(struct fetcher *fetcher, const struct oidc_params *params);
/* Cancel the fetch in flight (no waiter hears of it) and free. NULL is fine. */
void oidc_free(struct oidc *o);

/*
 * Make sure `need` is met. false: nothing to wait for — it is met already,
 * or a fetch is not allowed yet; the caller goes on with what oidc_keys()
 * and oidc_endpoints() give. true: w is queued and done(arg) runs once when
 * the fetch lands (never before this returns), unless oidc_unwait() first.
 * A waiter waits for one need at a time.
 */
bool oidc_wait(struct oidc *o, enum oidc_need need, struct oidc_waiter *w, oidc_done_cb done,
    void *arg);
/* Leave the queue; safe whether or not w is queued. */
void oidc_unwait(struct oidc *o, struct oidc_waiter *w);

/* NULL until discovered (with params.endpoints). */
const struct oidc_endpoints *oidc_endpoints(const struct oidc *o);
/* NULL until keys were loaded. */
const struct keyset *oidc_keys(const struct oidc *o);
/* Why the last fetch failed, for logs and safe to show a client; "" after a
 * success. */
const char *oidc_error(const struct oidc *o);

#endif
