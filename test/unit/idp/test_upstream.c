/*
 * Unit tests for auth/idp/upstream: an oauth2-type provider (configured
 * endpoints, identity from userinfo) against a tiny evhttp IdP on
 * 127.0.0.1: the code exchange yields the tokens and the subject, and an
 * expires_in the IdP may send (any int64 is valid JSON) is clamped before
 * it is added to the clock.
 */
#include "auth/idp/upstream.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "auth/store/store.h"
#include "common/clock.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "proxy/fetch.h"
#include "proxy/log.h"
#include "test/unit/unit.h"

#define NOW 1700000000

static struct event_base *base;
static const char *expires_in; /* what /token says */

static void
idp_cb(struct evhttp_request *req, void *arg)
{
	const char *uri = evhttp_request_get_uri(req);
	struct evbuffer *b = evbuffer_new();

	(void)arg;
	if (strcmp(uri, "/token") == 0)
		evbuffer_add_printf(b,
		    "{\"access_token\":\"at-1\",\"token_type\":\"Bearer\","
		    "\"refresh_token\":\"rt-1\",\"expires_in\":%s}",
		    expires_in);
	else if (strcmp(uri, "/userinfo") == 0)
		evbuffer_add_printf(b, "{\"sub\":\"alice\"}");
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	    "application/json");
	evhttp_send_reply(req, evbuffer_get_length(b) > 0 ? 200 : 404, "OK", b);
	evbuffer_free(b);
}

struct got {
	int calls;
	int64_t expires_at;
	char subject[32];
	char error[128];
};

static void
exchanged(struct store_upstream *tokens, const char *error, void *arg)
{
	struct got *g = arg;

	g->calls++;
	snprintf(g->error, sizeof g->error, "%s", error != NULL ? error : "");
	if (tokens != NULL) {
		g->expires_at = tokens->expires_at;
		snprintf(g->subject, sizeof g->subject, "%s", tokens->subject);
		CU_ASSERT_STRING_EQUAL(tokens->access_token, "at-1");
		CU_ASSERT_STRING_EQUAL(tokens->refresh_token, "rt-1");
	}
	store_upstream_free(tokens);
	event_base_loopbreak(base);
}

static void
exchange(struct upstream *u, const char *ttl, struct got *g)
{
	expires_in = ttl;
	memset(g, 0, sizeof *g);
	CU_ASSERT_PTR_NOT_NULL(upstream_exchange(u, "code", "verifier", NULL, exchanged, g));
	CU_ASSERT_EQUAL(g->calls, 0); /* never before exchange returns */
	UNIT_LOOP_UNTIL(base, g->calls >= 1, 10000);
	CU_ASSERT_EQUAL(g->calls, 1);
	CU_ASSERT_STRING_EQUAL(g->error, "");
	CU_ASSERT_STRING_EQUAL(g->subject, "alice");
}

static void
test_exchange_and_expiry_clamp(void)
{
	struct evhttp *idp;
	struct evhttp_bound_socket *bs;
	struct sockaddr_in sin;
	socklen_t sl = sizeof sin;
	struct upstream_provider p = { 0 };
	struct config *cfg;
	struct fetcher *fetcher;
	struct upstream *u;
	struct got g;
	char url[3][96];

	log_set_level(LOG_ERROR);
	clock_set_fake(NOW, 0);
	base = event_base_new();
	idp = evhttp_new(base);
	bs = evhttp_bind_socket_with_handle(idp, "127.0.0.1", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(bs);
	getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &sl);
	evhttp_set_gencb(idp, idp_cb, NULL);
	snprintf(url[0], sizeof url[0], "http://127.0.0.1:%d/authorize", ntohs(sin.sin_port));
	snprintf(url[1], sizeof url[1], "http://127.0.0.1:%d/token", ntohs(sin.sin_port));
	snprintf(url[2], sizeof url[2], "http://127.0.0.1:%d/userinfo", ntohs(sin.sin_port));
	p.name = "test";
	p.type = UPSTREAM_OAUTH2;
	p.authorization_endpoint = url[0];
	p.token_endpoint = url[1];
	p.userinfo_endpoint = url[2];
	p.client_id = "proxy";
	p.redirect_uri = "http://127.0.0.1/oauth/callback";
	cfg = config_new();
	cfg->eas.insecure_allow_http = true;
	fetcher = fetcher_new(base, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(fetcher);
	u = upstream_new(cfg, &p, fetcher);

	exchange(u, "3600", &g);
	CU_ASSERT_EQUAL(g.expires_at, NOW + 3600);
	/* INT64_MAX seconds: a year, not an overflow into the past */
	exchange(u, "9223372036854775807", &g);
	CU_ASSERT_EQUAL(g.expires_at, NOW + 365LL * 24 * 3600);
	exchange(u, "0", &g);
	CU_ASSERT_EQUAL(g.expires_at, 0); /* unknown */

	upstream_free(u);
	fetcher_free(fetcher);
	config_free(cfg);
	evhttp_free(idp);
	event_base_free(base);
	clock_set_fake(-1, 0);
}

int
main(void)
{
	static const struct unit_test tests[] = {
		{ "code exchange and expires_in clamp", test_exchange_and_expiry_clamp },
		{ NULL, NULL },
	};

	return unit_run("upstream", tests);
}
