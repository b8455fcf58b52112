/*
 * private_key_jwt client authentication at the token endpoint (RFC 7523
 * §2.2 and §3, OpenID Connect Core §9) for CIMD clients whose document
 * names their keys: the assertion is verified with assertion_verify()
 * (algorithm allow-list, signature, iss = sub = client_id, aud the token
 * endpoint or the issuer, exp required and at most five minutes ahead, a
 * jti) against the document's inline keys or the keys at its jwks_uri,
 * whose fetch never blocks the loop. An unknown kid refetches the jwks_uri
 * once (rate-limited by cimd_jwks), so a rotated key works at once. The jti
 * is then marked seen in the store, which fails closed (503) when its table
 * is full. The assertion is never logged; failures are counted by outcome.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/as/as_private.h"
#include "auth/cimd/cimd_jwks.h"
#include "auth/client/client.h"
#include "auth/crypto/assertion.h"
#include "auth/store/store.h"
#include "common/xalloc.h"
#include "proxy/log.h"
#include "proxy/metrics.h"

/* Clock skew allowed on exp/nbf/iat of an assertion. */
#define CLIENTASSERT_LEEWAY_S 30

struct clientassert {
	struct as *as;
	struct client *client; /* a reference */
	char *assertion;
	bool refetched; /* the jwks_uri was refetched for an unknown kid */
	struct cimd_jwks_lookup *lookup;
	struct store_op *sop; /* the jti being marked seen */
	clientassert_done_cb done;
	void *arg;
	bool *finished; /* while in clientassert_start: set when done() ran */
};

static void
clientassert_free(struct clientassert *ca)
{
	cimd_jwks_cancel(ca->lookup);
	store_cancel(ca->sop);
	client_unref(ca->client);
	xfree_secret(ca->assertion);
	free(ca);
}

/* Answer, count the outcome, and free ca. */
static void
clientassert_finish(struct clientassert *ca, const char *outcome, int status, const char *error,
    const char *desc)
{
	clientassert_done_cb done = ca->done;
	void *arg = ca->arg;

	ca->lookup = NULL;
	ca->sop = NULL;
	if (ca->finished != NULL)
		*ca->finished = true;
	metrics_add(ca->as->m_assertion, 1, outcome);
	if (status != 0)
		log_info("client assertion refused", LOG_S("client_id", ca->client->client_id),
		    LOG_S("outcome", outcome), LOG_S("reason", desc));
	clientassert_free(ca);
	done(status, error, desc, arg);
}

static void clientassert_on_keys(const struct keyset *ks, const char *error_description, void *arg);

static void
clientassert_seen(struct store_result *res, void *arg)
{
	struct clientassert *ca = arg;

	ca->sop = NULL;
	switch (res->status) {
	case STORE_OK:
		clientassert_finish(ca, "ok", 0, NULL, NULL);
		break;
	case STORE_REPLAYED:
		clientassert_finish(ca, "replayed", 401, "invalid_client",
		    "client_assertion was already used (its jti is single use)");
		break;
	case STORE_FULL:
		clientassert_finish(ca, "replay_table_full", 503, "temporarily_unavailable",
		    "too many client assertions to remember; try again later");
		break;
	default:
		clientassert_finish(ca, "store_error", 503, "temporarily_unavailable",
		    "the authorization server's storage is unavailable; try again later");
		break;
	}
}

/* Verify against ks; may start the one refetch (then returns without ca). */
static void
clientassert_verify(struct clientassert *ca, const struct keyset *ks)
{
	struct as *as = ca->as;
	const char *const auds[] = { as->token_url, as->issuer };
	struct assertion a;
	struct cimd_jwks_lookup *l;
	const char *want = ca->client->token_endpoint_auth_signing_alg;
	char err[256], alg[16];

	switch (assertion_verify(ca->assertion, ks, ca->client->client_id, auds, 2,
	    CLIENTASSERT_LEEWAY_S, &a, err, sizeof err)) {
	case ASSERTION_OK:
		break;
	case ASSERTION_UNKNOWN_KID:
		if (ca->client->jwks_uri != NULL && !ca->refetched) {
			ca->refetched = true;
			/* done may run (and free ca) inside: touch ca only if not. */
			l = cimd_jwks_get(as->jwks, ca->client->jwks_uri, true,
			    clientassert_on_keys, ca);
			if (l != NULL)
				ca->lookup = l;
			return;
		}
		clientassert_finish(ca, "unknown_kid", 401, "invalid_client",
		    ca->client->jwks_uri != NULL
			? "no key at the client's jwks_uri has the kid of client_assertion "
			  "(refetched once)"
			: "no key in the client's jwks has the kid of client_assertion");
		return;
	default:
		clientassert_finish(ca, "invalid", 401, "invalid_client", err);
		return;
	}
	/* The document's token_endpoint_auth_signing_alg is the only one
	 * (OpenID Connect Dynamic Client Registration §2); checked once the
	 * assertion verifies, so that none or HMAC get the allow-list's words. */
	if (want != NULL &&
	    (assertion_alg(ca->assertion, alg, sizeof alg) != 0 || strcmp(alg, want) != 0)) {
		snprintf(err, sizeof err,
		    "client_assertion is not signed with the client's "
		    "token_endpoint_auth_signing_alg %s",
		    want);
		clientassert_finish(ca, "invalid", 401, "invalid_client", err);
		return;
	}
	/* Single use: the store says whether this jti was seen (a verb, so
	 * that a replay is caught on every replica). */
	ca->sop = store_assertion_seen(as->store, ca->client->client_id, a.jti, a.exp,
	    clientassert_seen, ca);
}

static void
clientassert_on_keys(const struct keyset *ks, const char *error_description, void *arg)
{
	struct clientassert *ca = arg;
	char desc[256];

	ca->lookup = NULL;
	if (ks != NULL) {
		clientassert_verify(ca, ks);
		return;
	}
	if (ca->refetched)
		snprintf(desc, sizeof desc,
		    "no key at the client's jwks_uri has the kid of client_assertion (%.160s)",
		    error_description != NULL ? error_description : "refetch failed");
	else
		snprintf(desc, sizeof desc, "the client's keys could not be fetched: %.180s",
		    error_description != NULL ? error_description : "");
	clientassert_finish(ca, ca->refetched ? "unknown_kid" : "keys_unavailable", 401,
	    "invalid_client", desc);
}

struct clientassert *
clientassert_start(struct as *as, struct client *c, const char *assertion,
    clientassert_done_cb done, void *arg)
{
	struct clientassert *ca = xcalloc(1, sizeof *ca);
	struct cimd_jwks_lookup *l = NULL;
	bool finished = false;

	ca->as = as;
	ca->client = c;
	client_ref(c);
	ca->assertion = xstrdup(assertion);
	ca->done = done;
	ca->arg = arg;
	/* Whichever path finishes inside (inline keys, a cached jwks, a
	 * refused refetch) sets finished: then ca is gone. A cached jwks
	 * without the kid leaves ca waiting for the refetch it started. */
	ca->finished = &finished;
	if (c->jwks != NULL)
		clientassert_verify(ca, c->jwks);
	else if (c->jwks_uri == NULL || as->jwks == NULL)
		clientassert_finish(ca, "keys_unavailable", 401, "invalid_client",
		    "the client has no keys to verify client_assertion with");
	else
		l = cimd_jwks_get(as->jwks, c->jwks_uri, false, clientassert_on_keys, ca);
	if (finished)
		return NULL;
	ca->finished = NULL;
	if (l != NULL)
		ca->lookup = l;
	return ca;
}

void
clientassert_cancel(struct clientassert *ca)
{
	if (ca != NULL)
		clientassert_free(ca);
}
