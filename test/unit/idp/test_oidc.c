/*
 * Unit tests for auth/idp/oidc: on a real loop against a tiny evhttp IdP on
 * 127.0.0.1 whose answers the test changes, with the login endpoints
 * required (the upstream client's use): discovery waiters hear once, a
 * keys waiter rides discovery and the JWKS fetch, endpoints off the
 * issuer's origin and a foreign issuer are refused, a failed JWKS fetch
 * keeps the keys at hand, the refresh limit runs on the injected clock,
 * and a waiter that left is never called.
 */
#include "auth/idp/oidc.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "auth/crypto/keyset.h"
#include "common/clock.h"
#include "proxy/fetch.h"
#include "proxy/log.h"
#include "proxy/metrics.h"
#include "test/unit/unit.h"

#define REFRESH_MS 10000

static struct event_base *base;
static struct keyset *served; /* what /jwks serves; NULL: 500 */
static int n_discovery, n_jwks;
static char issuer[64];
static const char *token_host; /* host of the token endpoint in discovery */
static const char *doc_issuer; /* issuer in discovery; NULL: ours */

static void
idp_cb(struct evhttp_request *req, void *arg)
{
	const char *uri = evhttp_request_get_uri(req);
	struct evbuffer *b = evbuffer_new();
	int status = 404;

	(void)arg;
	if (strcmp(uri, "/.well-known/openid-configuration") == 0) {
		n_discovery++;
		status = 200;
		evbuffer_add_printf(b,
		    "{\"issuer\":\"%s/\",\"jwks_uri\":\"%s/jwks\","
		    "\"authorization_endpoint\":\"%s/authorize\",\"token_endpoint\":\"%s/token\","
		    "\"token_endpoint_auth_methods_supported\":[\"client_secret_post\"]}",
		    doc_issuer != NULL ? doc_issuer : issuer, issuer, issuer,
		    token_host != NULL ? token_host : issuer);
	} else if (strcmp(uri, "/jwks") == 0) {
		n_jwks++;
		if (served != NULL) {
			char *j = keyset_jwks_json(served);

			status = 200;
			evbuffer_add(b, j, strlen(j));
			free(j);
		} else {
			status = 500;
		}
	}
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	    "application/json");
	evhttp_send_reply(req, status, "OK", b);
	evbuffer_free(b);
}

static int waiting;

static void
done_cb(void *arg)
{
	int *calls = arg;

	(*calls)++;
	if (--waiting == 0)
		event_base_loopbreak(base);
}

static void
run_until_done(void)
{
	UNIT_LOOP_UNTIL(base, waiting <= 0, 10000);
}

static void
test_discovery_and_keys(void)
{
	struct evhttp *idp;
	struct evhttp_bound_socket *bs;
	struct sockaddr_in sin;
	socklen_t sl = sizeof sin;
	struct fetch_policy policy;
	struct fetcher *fetcher;
	struct oidc_params params = { .log_name = "test",
		.issuer = issuer,
		.endpoints = true,
		.policy = &policy,
		.min_refresh_ms = REFRESH_MS,
		.retry_ms = 0 };
	struct oidc_waiter w[3], late;
	struct oidc *o;
	struct keyset *a, *b;
	const struct oidc_endpoints *ep;
	int calls[3] = { 0 }, late_calls = 0;
	char err[256], other[64];

	log_set_level(LOG_ERROR);
	clock_set_fake(-1, 0);
	base = event_base_new();
	idp = evhttp_new(base);
	bs = evhttp_bind_socket_with_handle(idp, "127.0.0.1", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(bs);
	getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &sl);
	snprintf(issuer, sizeof issuer, "http://127.0.0.1:%d", ntohs(sin.sin_port));
	/* the same listener under another origin (port and host differ) */
	snprintf(other, sizeof other, "http://localhost:%d", ntohs(sin.sin_port));
	evhttp_set_gencb(idp, idp_cb, NULL);
	a = keyset_new();
	b = keyset_new();
	CU_ASSERT_EQUAL_FATAL(keyset_generate_es256(a, err, sizeof err), 0);
	CU_ASSERT_EQUAL_FATAL(keyset_generate_es256(b, err, sizeof err), 0);
	fetch_policy_init(&policy, false);
	policy.allow_http_loopback = true;
	fetcher = fetcher_new(base, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(fetcher);

	/* A foreign issuer, then an endpoint on another origin: refused, and
	 * (retry_ms 0) each new wait fetches the document again. */
	o = oidc_new(fetcher, &params);
	doc_issuer = "https://evil.example.com";
	waiting = 1;
	CU_ASSERT_TRUE(oidc_wait(o, OIDC_DISCOVERY, &w[0], done_cb, &calls[0]));
	run_until_done();
	CU_ASSERT_EQUAL(calls[0], 1);
	CU_ASSERT_PTR_NULL(oidc_endpoints(o));
	CU_ASSERT_PTR_NOT_NULL(strstr(oidc_error(o), "issuer"));
	doc_issuer = NULL;
	token_host = other;
	waiting = 1;
	CU_ASSERT_TRUE(oidc_wait(o, OIDC_DISCOVERY, &w[0], done_cb, &calls[0]));
	run_until_done();
	CU_ASSERT_EQUAL(calls[0], 2);
	CU_ASSERT_PTR_NULL(oidc_endpoints(o));
	CU_ASSERT_PTR_NOT_NULL(strstr(oidc_error(o), "origin"));
	CU_ASSERT_EQUAL(n_discovery, 2);
	CU_ASSERT_EQUAL(n_jwks, 0);
	token_host = NULL;

	/* Discovery-only and keys waiters together: one discovery, one JWKS;
	 * the discovery waiter hears first, the keys waiters once, at the end. */
	served = a;
	calls[0] = 0;
	waiting = 3;
	CU_ASSERT_TRUE(oidc_wait(o, OIDC_DISCOVERY, &w[0], done_cb, &calls[0]));
	CU_ASSERT_TRUE(oidc_wait(o, OIDC_KEYS, &w[1], done_cb, &calls[1]));
	CU_ASSERT_TRUE(oidc_wait(o, OIDC_KEYS, &w[2], done_cb, &calls[2]));
	CU_ASSERT_EQUAL(calls[0] + calls[1] + calls[2], 0); /* never before wait returns */
	run_until_done();
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(calls[i], 1);
	CU_ASSERT_EQUAL(n_discovery, 3);
	CU_ASSERT_EQUAL(n_jwks, 1);
	ep = oidc_endpoints(o);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ep);
	CU_ASSERT_PTR_NOT_NULL(strstr(ep->token_endpoint, "/token"));
	CU_ASSERT_TRUE(ep->secret_post);
	CU_ASSERT_STRING_EQUAL(oidc_error(o), "");
	CU_ASSERT_PTR_NOT_NULL_FATAL(oidc_keys(o));
	CU_ASSERT_PTR_NOT_NULL(keyset_find(oidc_keys(o), keyset_key_kid(keyset_signing_key(a))));

	/* Met: nothing to wait for. Fresh keys within the limit: not allowed. */
	CU_ASSERT_FALSE(oidc_wait(o, OIDC_DISCOVERY, &w[0], done_cb, &calls[0]));
	CU_ASSERT_FALSE(oidc_wait(o, OIDC_KEYS, &w[0], done_cb, &calls[0]));
	clock_set_fake(clock_wall_s(), clock_mono_ms());
	CU_ASSERT_FALSE(oidc_wait(o, OIDC_FRESH_KEYS, &w[0], done_cb, &calls[0]));
	CU_ASSERT_EQUAL(n_jwks, 1);

	/* After the limit: fetched again. A failed fetch keeps a's keys. */
	served = NULL;
	clock_advance_fake_ms(REFRESH_MS);
	waiting = 1;
	CU_ASSERT_TRUE(oidc_wait(o, OIDC_FRESH_KEYS, &w[0], done_cb, &calls[0]));
	run_until_done();
	CU_ASSERT_EQUAL(n_jwks, 2);
	CU_ASSERT_PTR_NOT_NULL(oidc_keys(o));
	CU_ASSERT_PTR_NOT_NULL(keyset_find(oidc_keys(o), keyset_key_kid(keyset_signing_key(a))));
	CU_ASSERT_PTR_NOT_NULL(strstr(oidc_error(o), "signing keys"));

	/* Rotation to b; a waiter that left is not called, the others are. */
	served = b;
	clock_advance_fake_ms(REFRESH_MS);
	waiting = 1;
	CU_ASSERT_TRUE(oidc_wait(o, OIDC_FRESH_KEYS, &w[0], done_cb, &calls[0]));
	CU_ASSERT_TRUE(oidc_wait(o, OIDC_FRESH_KEYS, &late, done_cb, &late_calls));
	oidc_unwait(o, &late);
	oidc_unwait(o, &late); /* twice is fine */
	run_until_done();
	CU_ASSERT_EQUAL(late_calls, 0);
	CU_ASSERT_EQUAL(n_jwks, 3);
	CU_ASSERT_PTR_NOT_NULL(keyset_find(oidc_keys(o), keyset_key_kid(keyset_signing_key(b))));
	CU_ASSERT_PTR_NULL(keyset_find(oidc_keys(o), keyset_key_kid(keyset_signing_key(a))));

	/* Freeing with a fetch and a waiter in flight: nobody is called. */
	clock_advance_fake_ms(REFRESH_MS);
	CU_ASSERT_TRUE(oidc_wait(o, OIDC_FRESH_KEYS, &late, done_cb, &late_calls));
	oidc_free(o);
	CU_ASSERT_EQUAL(late_calls, 0);
	CU_ASSERT_EQUAL(n_discovery, 3);

	fetcher_free(fetcher);
	keyset_free(a);
	keyset_free(b);
	evhttp_free(idp);
	event_base_free(base);
	metrics_reset();
	clock_set_fake(-1, 0);
}

int
main(void)
{
	static const struct unit_test tests[] = {
		{ "discovery, keys, refresh limit, waiters", test_discovery_and_keys },
		{ NULL, NULL },
	};

	return unit_run("oidc", tests);
}
