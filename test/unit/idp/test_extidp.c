/*
 * Unit tests for auth/extidp: the RFC 7662 answer rules as a pure
 * function, and, on a real loop against a tiny evhttp IdP on 127.0.0.1,
 * discovery + JWKS fetched once for checks that wait together, and the
 * unknown-kid refetch limit (once per 30 s, on an injected monotonic clock).
 */
#include "auth/idp/extidp.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "auth/crypto/jwt.h"
#include "auth/crypto/keyset.h"
#include "common/clock.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "proxy/fetch.h"
#include "proxy/log.h"
#include "proxy/metrics.h"
#include "test/unit/unit.h"

#define NOW 1700000000
#define ISS "https://idp.example.com"
#define AUD "https://mcp.example.com/mcp"

static enum extidp_outcome
parse(const char *body, const char **reason)
{
	struct tokencache_claims c;
	const char *desc;
	enum extidp_outcome o;

	o = extidp_parse_introspection(body, strlen(body), ISS, AUD, NOW, &c, reason, &desc);
	CU_ASSERT_PTR_NOT_NULL(desc);
	tokencache_claims_dispose(&c);
	return o;
}

static void
test_introspection_rules(void)
{
	struct tokencache_claims c;
	const char *reason, *desc;
	const char *ok = "{\"active\":true,\"sub\":\"alice\",\"scope\":\"a b\",\"client_id\":\"c\","
			 "\"exp\":1700000300,\"iss\":\"" ISS "\",\"aud\":[\"x\",\"" AUD "\"],"
			 "\"token_type\":\"Bearer\"}";

	CU_ASSERT_EQUAL(extidp_parse_introspection(ok, strlen(ok), ISS, AUD, NOW, &c, &reason,
			    &desc),
	    EXTIDP_ACTIVE);
	CU_ASSERT_STRING_EQUAL(c.sub, "alice");
	CU_ASSERT_STRING_EQUAL(c.scope, "a b");
	CU_ASSERT_STRING_EQUAL(c.client_id, "c");
	CU_ASSERT_EQUAL(c.exp, 1700000300);
	tokencache_claims_dispose(&c);

	CU_ASSERT_EQUAL(parse("{\"active\":true}", &reason), EXTIDP_ACTIVE); /* aud optional */
	CU_ASSERT_EQUAL(parse("{\"active\":false}", &reason), EXTIDP_INVALID);
	CU_ASSERT_STRING_EQUAL(reason, "inactive");
	CU_ASSERT_EQUAL(parse("{\"active\":true,\"aud\":\"https://other\"}", &reason),
	    EXTIDP_INVALID);
	CU_ASSERT_STRING_EQUAL(reason, "bad_audience");
	CU_ASSERT_EQUAL(parse("{\"active\":true,\"iss\":\"https://evil\"}", &reason),
	    EXTIDP_INVALID);
	CU_ASSERT_STRING_EQUAL(reason, "bad_issuer");
	CU_ASSERT_EQUAL(parse("{\"active\":true,\"exp\":1699999000}", &reason), EXTIDP_INVALID);
	CU_ASSERT_STRING_EQUAL(reason, "expired");
	CU_ASSERT_EQUAL(parse("{\"active\":true,\"exp\":1699999970}", &reason), EXTIDP_ACTIVE);
	CU_ASSERT_EQUAL(parse("{\"active\":true,\"nbf\":1700000300}", &reason), EXTIDP_INVALID);
	CU_ASSERT_STRING_EQUAL(reason, "not_yet_valid");
	CU_ASSERT_EQUAL(parse("{\"active\":true,\"token_type\":"
			      "\"urn:ietf:params:oauth:token-type:refresh_token\"}",
			    &reason),
	    EXTIDP_INVALID);
	CU_ASSERT_STRING_EQUAL(reason, "bad_token_type");
	CU_ASSERT_EQUAL(parse("{\"active\":true,\"scp\":[\"x\",\"y\"]}", &reason), EXTIDP_ACTIVE);
	/* the IdP could not be understood: unavailable, not a verdict */
	CU_ASSERT_EQUAL(parse("{\"active\":\"true\"}", &reason), EXTIDP_UNAVAILABLE);
	CU_ASSERT_EQUAL(parse("[]", &reason), EXTIDP_UNAVAILABLE);
	CU_ASSERT_EQUAL(parse("not json", &reason), EXTIDP_UNAVAILABLE);
	CU_ASSERT_EQUAL(parse("{\"active\":true}x", &reason), EXTIDP_UNAVAILABLE);
}

/* --- loop fixture: a tiny IdP --- */

static struct event_base *base;
static struct evhttp *idp;
static int idp_port;
static struct keyset *served; /* what /jwks serves */
static int n_discovery, n_jwks;
static char issuer[64];

static void
idp_cb(struct evhttp_request *req, void *arg)
{
	const char *uri = evhttp_request_get_uri(req);
	struct evbuffer *b = evbuffer_new();

	if (strcmp(uri, "/.well-known/openid-configuration") == 0) {
		n_discovery++;
		evbuffer_add_printf(b, "{\"issuer\":\"%s\",\"jwks_uri\":\"%s/jwks\"}", issuer,
		    issuer);
	} else if (strcmp(uri, "/jwks") == 0) {
		char *j = keyset_jwks_json(served);

		n_jwks++;
		evbuffer_add(b, j, strlen(j));
		free(j);
	}
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	    "application/json");
	evhttp_send_reply(req, evbuffer_get_length(b) > 0 ? 200 : 404, "OK", b);
	evbuffer_free(b);
}

struct outcome {
	int calls;
	enum extidp_outcome outcome;
	char reason[32];
	char sub[32];
};

static int waiting;

static void
done_cb(const struct extidp_result *res, void *arg)
{
	struct outcome *o = arg;

	o->calls++;
	o->outcome = res->outcome;
	snprintf(o->reason, sizeof o->reason, "%s", res->reason);
	snprintf(o->sub, sizeof o->sub, "%s",
	    res->claims && res->claims->sub ? res->claims->sub : "");
	if (--waiting == 0)
		event_base_loopbreak(base);
}

static char *
token_for(const struct keyset_key *key, const char *aud)
{
	json_object *c = json_object_new_object();
	char err[128], *tok;

	json_object_object_add(c, "iss", json_object_new_string(issuer));
	json_object_object_add(c, "aud", json_object_new_string(aud));
	json_object_object_add(c, "sub", json_object_new_string("alice"));
	json_object_object_add(c, "exp", json_object_new_int64(clock_wall_s() + 300));
	tok = jwt_sign(key, "at+jwt", c, err, sizeof err);
	json_object_put(c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(tok);
	return tok;
}

static void
run_until_done(void)
{
	UNIT_LOOP_UNTIL(base, waiting <= 0, 10000);
}

static void
test_jwks_waiters_and_refetch_limit(void)
{
	struct evhttp_bound_socket *bs;
	struct sockaddr_in sin;
	socklen_t sl = sizeof sin;
	struct config *cfg;
	struct fetcher *fetcher;
	struct extidp *x;
	struct keyset *a, *b;
	struct outcome o[3], one;
	char err[256], *tok, *tokb, *tokaud;

	log_set_level(LOG_ERROR);
	clock_set_fake(-1, 0);
	base = event_base_new();
	idp = evhttp_new(base);
	bs = evhttp_bind_socket_with_handle(idp, "127.0.0.1", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(bs);
	getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &sl);
	idp_port = ntohs(sin.sin_port);
	snprintf(issuer, sizeof issuer, "http://127.0.0.1:%d", idp_port);
	evhttp_set_gencb(idp, idp_cb, NULL);
	a = keyset_new();
	b = keyset_new();
	CU_ASSERT_EQUAL_FATAL(keyset_generate_es256(a, err, sizeof err), 0);
	CU_ASSERT_EQUAL_FATAL(keyset_generate_es256(b, err, sizeof err), 0);
	served = a;

	cfg = config_new();
	cfg->auth.mode = AUTH_MODE_OIDC;
	cfg->auth.oidc.issuer = xstrdup(issuer);
	cfg->auth.oidc.audience = xstrdup(AUD);
	cfg->auth.oidc.insecure_allow_http = true;
	fetcher = fetcher_new(base, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(fetcher);
	x = extidp_new(cfg, fetcher, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(x);

	/* Three checks before any key is known: one discovery, one JWKS, all valid. */
	tok = token_for(keyset_signing_key(a), AUD);
	memset(o, 0, sizeof o);
	waiting = 3;
	for (int i = 0; i < 3; i++)
		CU_ASSERT_PTR_NOT_NULL(extidp_check(x, tok, done_cb, &o[i]));
	run_until_done();
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(o[i].calls, 1);
		CU_ASSERT_EQUAL(o[i].outcome, EXTIDP_ACTIVE);
		CU_ASSERT_STRING_EQUAL(o[i].sub, "alice");
	}
	CU_ASSERT_EQUAL(n_discovery, 1);
	CU_ASSERT_EQUAL(n_jwks, 1);

	/* Keys known: decided before extidp_check returns. */
	memset(&one, 0, sizeof one);
	waiting = 1;
	CU_ASSERT_PTR_NULL(extidp_check(x, tok, done_cb, &one));
	CU_ASSERT_EQUAL(one.calls, 1);
	CU_ASSERT_EQUAL(one.outcome, EXTIDP_ACTIVE);
	tokaud = token_for(keyset_signing_key(a), "https://other.example.com");
	waiting = 1;
	CU_ASSERT_PTR_NULL(extidp_check(x, tokaud, done_cb, &one));
	CU_ASSERT_EQUAL(one.outcome, EXTIDP_INVALID);
	CU_ASSERT_STRING_EQUAL(one.reason, "bad_audience");

	/* The IdP rotates to key b. Within 30 s of the last fetch an unknown
	 * kid is refused without asking the IdP again. */
	served = b;
	tokb = token_for(keyset_signing_key(b), AUD);
	/* From here the monotonic clock is ours: 30 s after the first fetch. */
	clock_set_fake(clock_wall_s(), clock_mono_ms() + EXTIDP_JWKS_MIN_INTERVAL_MS);
	waiting = 1;
	memset(&one, 0, sizeof one);
	extidp_check(x, tokb, done_cb, &one);
	run_until_done();
	/* that fetch (allowed: 30 s passed) loaded b */
	CU_ASSERT_EQUAL(one.outcome, EXTIDP_ACTIVE);
	CU_ASSERT_EQUAL(n_jwks, 2);
	served = a; /* rotate back: a's kid is unknown now */
	waiting = 1;
	memset(&one, 0, sizeof one);
	CU_ASSERT_PTR_NULL(extidp_check(x, tok, done_cb, &one));
	CU_ASSERT_EQUAL(one.outcome, EXTIDP_INVALID);
	CU_ASSERT_STRING_EQUAL(one.reason, "bad_kid");
	CU_ASSERT_EQUAL(n_jwks, 2);
	clock_advance_fake_ms(EXTIDP_JWKS_MIN_INTERVAL_MS);
	waiting = 1;
	memset(&one, 0, sizeof one);
	CU_ASSERT_PTR_NOT_NULL(extidp_check(x, tok, done_cb, &one));
	run_until_done();
	CU_ASSERT_EQUAL(one.outcome, EXTIDP_ACTIVE);
	CU_ASSERT_EQUAL(n_jwks, 3);
	CU_ASSERT_EQUAL(n_discovery, 1);

	/* A cancelled waiter is never called; freeing with a fetch in flight is clean. */
	clock_advance_fake_ms(EXTIDP_JWKS_MIN_INTERVAL_MS);
	memset(&one, 0, sizeof one);
	extidp_cancel(extidp_check(x, tokb, done_cb, &one));
	CU_ASSERT_EQUAL(one.calls, 0);
	clock_advance_fake_ms(EXTIDP_JWKS_MIN_INTERVAL_MS);
	CU_ASSERT_PTR_NOT_NULL(extidp_check(x, tokb, done_cb, &one));
	extidp_free(x);
	CU_ASSERT_EQUAL(one.calls, 0);

	free(tok);
	free(tokb);
	free(tokaud);
	fetcher_free(fetcher);
	keyset_free(a);
	keyset_free(b);
	config_free(cfg);
	evhttp_free(idp);
	event_base_free(base);
	metrics_reset();
	clock_set_fake(-1, 0);
}

int
main(void)
{
	static const struct unit_test tests[] = {
		{ "introspection answer rules", test_introspection_rules },
		{ "JWKS waiters and refetch limit", test_jwks_waiters_and_refetch_limit },
		{ NULL, NULL },
	};

	return unit_run("extidp", tests);
}
