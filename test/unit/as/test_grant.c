/*
 * Unit tests for auth/grant: code single use (a replay revokes the tokens
 * issued from the code), PKCE and redirect_uri binding, refresh rotation,
 * reuse detection revoking the family, scope narrowing, revocation, and the
 * RFC 9068 shape of our access tokens. Injected clock, ephemeral key.
 */
#include <stdlib.h>
#include <string.h>

#include "auth/client/client.h"
#include "auth/as/grant.h"
#include "auth/crypto/jwt.h"
#include "auth/crypto/keyset.h"
#include "auth/crypto/pkce.h"
#include "auth/store/store.h"
#include "common/clock.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "proxy/metrics.h"
#include "test/unit/store_sync.h"
#include "test/unit/unit.h"

#define VERIFIER "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
#define CHALLENGE "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
#define ISS "https://auth.example.com"
#define AUD "https://mcp.example.com/mcp"

struct fx {
	struct event_base *base;
	struct config *cfg;
	struct store *st;
	struct keyset *ks;
	struct grant *g;
	struct client *client;
};

static struct fx *cur; /* the fixture the gx_ wrappers use */

static void
fx_init(struct fx *f)
{
	char err[128];

	clock_set_fake(clock_wall_s(), 1000000);
	f->base = event_base_new();
	f->cfg = config_new();
	f->st = store_new(f->cfg, f->base, NULL, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f->st);
	f->ks = keyset_new();
	CU_ASSERT_EQUAL_FATAL(keyset_generate_es256(f->ks, err, sizeof err), 0);
	f->g = grant_new(f->cfg, f->st, f->ks, ISS, AUD);
	f->client = client_new("client-1");
	strlist_add(&f->client->grant_types, "authorization_code");
	strlist_add(&f->client->grant_types, "refresh_token");
	strlist_add(&f->client->redirect_uris, "http://127.0.0.1/cb");
	f->client->token_endpoint_auth_method = xstrdup("none");
	cur = f;
}

/* --- the grant verbs, waited for (the store completes on the loop) --- */

struct gx {
	bool done;
	int rc;
	char *code;
	struct grant_result *r;
	struct grant_error *e;
};

static void
gx_wait(struct gx *x)
{
	while (!x->done)
		event_base_loop(cur->base, EVLOOP_ONCE);
}

static void
gx_done(struct grant_result *r, const struct grant_error *e, void *arg)
{
	struct gx *x = arg;

	x->done = true;
	x->rc = r != NULL ? 0 : -1;
	if (r != NULL) {
		*x->r = *r;
		memset(r, 0, sizeof *r);
	}
	*x->e = *e;
}

/* A client like the fixture's, with client_id id. */
static struct client *
gx_client(const char *id)
{
	struct client *c;

	if (strcmp(id, cur->client->client_id) == 0) {
		client_ref(cur->client);
		return cur->client;
	}
	c = client_new(id);
	strlist_add(&c->grant_types, "authorization_code");
	strlist_add(&c->grant_types, "refresh_token");
	c->token_endpoint_auth_method = xstrdup("none");
	return c;
}

static int
gx_exchange(struct grant *g, const char *client_id, const char *method, const char *code,
    const char *verifier, const char *redirect_uri, const char *resource, struct grant_result *r,
    struct grant_error *e)
{
	struct gx x = { .r = r, .e = e };
	struct client *c = gx_client(client_id);

	memset(r, 0, sizeof *r);
	grant_exchange_code(g, c, method, code, verifier, redirect_uri, resource, gx_done, &x);
	client_unref(c);
	gx_wait(&x);
	return x.rc;
}

static int
gx_refresh(struct grant *g, struct client *client, const char *token, const char *scope,
    const char *resource, struct grant_result *r, struct grant_error *e)
{
	struct gx x = { .r = r, .e = e };

	memset(r, 0, sizeof *r);
	grant_refresh(g, client, token, scope, resource, gx_done, &x);
	gx_wait(&x);
	return x.rc;
}

static void
gx_revoked(int rc, void *arg)
{
	struct gx *x = arg;

	x->done = true;
	x->rc = rc;
}

static int
gx_revoke(struct grant *g, const char *client_id, const char *token, const char *hint)
{
	struct gx x = { 0 };

	grant_revoke(g, client_id, token, hint, gx_revoked, &x);
	gx_wait(&x);
	return x.rc;
}

static void
gx_code_done(char *code, enum store_status status, void *arg)
{
	struct gx *x = arg;

	(void)status;
	x->done = true;
	x->code = code;
}

static void
fx_dispose(struct fx *f)
{
	client_unref(f->client);
	grant_free(f->g);
	store_free(f->st);
	keyset_free(f->ks);
	config_free(f->cfg);
	event_base_free(f->base);
	cur = NULL;
	metrics_reset();
	clock_set_fake(-1, 0);
}

static char *
fx_code(struct fx *f, const char *scope)
{
	struct store_pending p = { .client_id = "client-1",
		.redirect_uri = "http://127.0.0.1:5555/cb",
		.redirect_uri_sent = true,
		.code_challenge = CHALLENGE,
		.scope = (char *)scope,
		.resource = AUD };

	struct gx x = { 0 };

	grant_code_issue(f->g, &p, "tsid-1", "alice", gx_code_done, &x);
	gx_wait(&x);
	return x.code;
}

static int
fx_exchange(struct fx *f, const char *code, struct grant_result *r, struct grant_error *e)
{
	return gx_exchange(f->g, "client-1", "none", code, VERIFIER, "http://127.0.0.1:5555/cb",
	    AUD, r, e);
}

static void
test_code_single_use_and_replay_revokes(void)
{
	struct fx f;
	struct grant_result r, r2;
	struct grant_error e;
	char *code;

	fx_init(&f);
	code = fx_code(&f, "openid offline_access");
	CU_ASSERT_EQUAL_FATAL(fx_exchange(&f, code, &r, &e), 0);
	CU_ASSERT_PTR_NOT_NULL(r.refresh_token);
	CU_ASSERT_STRING_EQUAL(r.scope, "openid offline_access");
	CU_ASSERT_EQUAL(fx_exchange(&f, code, &r2, &e), -1);
	CU_ASSERT_STRING_EQUAL(e.error, "invalid_grant");
	/* The refresh token issued from the replayed code is now useless. */
	CU_ASSERT_EQUAL(gx_refresh(f.g, f.client, r.refresh_token, NULL, NULL, &r2, &e), -1);
	CU_ASSERT_STRING_EQUAL(e.error, "invalid_grant");
	{
		json_object *claims = NULL;
		struct jwt_expect ex = { .typ = "at+jwt", .iss = ISS, .aud = AUD };

		CU_ASSERT_EQUAL_FATAL(jwt_verify(r.access_token, f.ks, &ex, &claims, e.desc,
					  sizeof e.desc),
		    JWT_OK);
		CU_ASSERT_TRUE(grant_jti_revoked(f.g, jwt_claim_string(claims, "jti")));
		json_object_put(claims);
	}
	grant_result_dispose(&r);
	free(code);
	fx_dispose(&f);
}

static void
test_code_bindings(void)
{
	struct fx f;
	struct grant_result r;
	struct grant_error e;
	char *code;

	fx_init(&f);
	code = fx_code(&f, "openid");
	CU_ASSERT_EQUAL(gx_exchange(f.g, "client-1", "none", code,
			    "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj",
			    "http://127.0.0.1:5555/cb", NULL, &r, &e),
	    -1);
	CU_ASSERT_STRING_EQUAL(e.error, "invalid_grant");
	free(code);

	code = fx_code(&f, "openid");
	CU_ASSERT_EQUAL(gx_exchange(f.g, "client-1", "none", code, VERIFIER,
			    "http://127.0.0.1:5556/cb", NULL, &r, &e),
	    -1);
	CU_ASSERT_STRING_EQUAL(e.error, "invalid_grant");
	free(code);

	code = fx_code(&f, "openid");
	CU_ASSERT_EQUAL(gx_exchange(f.g, "client-2", "none", code, VERIFIER,
			    "http://127.0.0.1:5555/cb", NULL, &r, &e),
	    -1);
	CU_ASSERT_STRING_EQUAL(e.error, "invalid_grant");
	free(code);

	code = fx_code(&f, "openid");
	CU_ASSERT_EQUAL(gx_exchange(f.g, "client-1", "none", code, VERIFIER,
			    "http://127.0.0.1:5555/cb", "https://other.example/mcp", &r, &e),
	    -1);
	CU_ASSERT_STRING_EQUAL(e.error, "invalid_target");
	free(code);

	/* Expired code. */
	code = fx_code(&f, "openid");
	clock_advance_fake_ms(f.cfg->eas.token_lifespans.auth_code_ms);
	CU_ASSERT_EQUAL(fx_exchange(&f, code, &r, &e), -1);
	CU_ASSERT_STRING_EQUAL(e.error, "invalid_grant");
	free(code);

	/* No offline_access: no refresh token. */
	code = fx_code(&f, "openid");
	CU_ASSERT_EQUAL_FATAL(fx_exchange(&f, code, &r, &e), 0);
	CU_ASSERT_PTR_NULL(r.refresh_token);
	grant_result_dispose(&r);
	free(code);

	/* Not asked for, but the client may have offline_access (declared or
	 * baseline): a refresh token, as the challenge no longer names it. */
	strlist_add(&f.client->scopes, "openid");
	strlist_add(&f.client->scopes, "offline_access");
	code = fx_code(&f, "openid");
	CU_ASSERT_EQUAL_FATAL(fx_exchange(&f, code, &r, &e), 0);
	CU_ASSERT_PTR_NOT_NULL(r.refresh_token);
	CU_ASSERT_STRING_EQUAL(r.scope, "openid");
	grant_result_dispose(&r);
	free(code);
	fx_dispose(&f);
}

static void
test_access_token_shape(void)
{
	struct fx f;
	struct grant_result r;
	struct grant_error e;
	json_object *claims = NULL;
	struct jwt_expect ex = { .typ = "at+jwt", .iss = ISS, .aud = AUD };
	int64_t exp, iat;
	char *code;

	fx_init(&f);
	code = fx_code(&f, "openid");
	CU_ASSERT_EQUAL_FATAL(fx_exchange(&f, code, &r, &e), 0);
	CU_ASSERT_EQUAL_FATAL(jwt_verify(r.access_token, f.ks, &ex, &claims, e.desc, sizeof e.desc),
	    JWT_OK);
	CU_ASSERT_STRING_EQUAL(jwt_claim_string(claims, "sub"), "alice");
	CU_ASSERT_STRING_EQUAL(jwt_claim_string(claims, "client_id"), "client-1");
	CU_ASSERT_STRING_EQUAL(jwt_claim_string(claims, "scope"), "openid");
	CU_ASSERT_STRING_EQUAL(jwt_claim_string(claims, "tsid"), "tsid-1");
	CU_ASSERT_PTR_NOT_NULL(jwt_claim_string(claims, "jti"));
	CU_ASSERT_EQUAL(jwt_claim_int(claims, "exp", &exp), 0);
	CU_ASSERT_EQUAL(jwt_claim_int(claims, "iat", &iat), 0);
	CU_ASSERT_EQUAL(exp - iat, f.cfg->eas.token_lifespans.access_token_ms / 1000);
	CU_ASSERT_EQUAL(r.expires_in, exp - iat);
	json_object_put(claims);
	grant_result_dispose(&r);
	free(code);
	fx_dispose(&f);
}

static void
test_refresh_rotation_and_reuse(void)
{
	struct fx f;
	struct grant_result r0, r1, r2, rx;
	struct grant_error e;
	struct client *other = client_new("client-2");
	char *code;

	fx_init(&f);
	strlist_add(&other->grant_types, "refresh_token");
	code = fx_code(&f, "openid offline_access");
	CU_ASSERT_EQUAL_FATAL(fx_exchange(&f, code, &r0, &e), 0);

	/* Another client cannot use it, and that does not burn it. */
	CU_ASSERT_EQUAL(gx_refresh(f.g, other, r0.refresh_token, NULL, NULL, &rx, &e), -1);
	CU_ASSERT_STRING_EQUAL(e.error, "invalid_grant");

	/* Narrowing is fine, widening is not. */
	CU_ASSERT_EQUAL(gx_refresh(f.g, f.client, r0.refresh_token, "openid email", NULL, &rx, &e),
	    -1);
	CU_ASSERT_STRING_EQUAL(e.error, "invalid_scope");
	CU_ASSERT_EQUAL(gx_refresh(f.g, f.client, r0.refresh_token, NULL, "https://x.example/", &rx,
			    &e),
	    -1);
	CU_ASSERT_STRING_EQUAL(e.error, "invalid_target");
	CU_ASSERT_EQUAL_FATAL(gx_refresh(f.g, f.client, r0.refresh_token, "openid", NULL, &r1, &e),
	    0);
	CU_ASSERT_STRING_EQUAL(r1.scope, "openid");
	CU_ASSERT_PTR_NOT_NULL_FATAL(r1.refresh_token);
	CU_ASSERT_STRING_NOT_EQUAL(r1.refresh_token, r0.refresh_token);

	/* The rotated token keeps the full grant: it may widen back to it. */
	CU_ASSERT_EQUAL_FATAL(gx_refresh(f.g, f.client, r1.refresh_token, "openid offline_access",
				  NULL, &r2, &e),
	    0);
	CU_ASSERT_STRING_EQUAL(r2.scope, "openid offline_access");

	/* Reusing r0 (rotated away) revokes the whole family, r2 included. */
	CU_ASSERT_EQUAL(gx_refresh(f.g, f.client, r0.refresh_token, NULL, NULL, &rx, &e), -1);
	CU_ASSERT_STRING_EQUAL(e.error, "invalid_grant");
	CU_ASSERT_EQUAL(gx_refresh(f.g, f.client, r2.refresh_token, NULL, NULL, &rx, &e), -1);
	CU_ASSERT_STRING_EQUAL(e.error, "invalid_grant");

	grant_result_dispose(&r0);
	grant_result_dispose(&r1);
	grant_result_dispose(&r2);
	free(code);
	client_unref(other);
	fx_dispose(&f);
}

static void
test_refresh_expiry(void)
{
	struct fx f;
	struct grant_result r0, rx;
	struct grant_error e;
	char *code;

	fx_init(&f);
	code = fx_code(&f, "offline_access");
	CU_ASSERT_EQUAL_FATAL(fx_exchange(&f, code, &r0, &e), 0);
	clock_advance_fake_ms(f.cfg->eas.token_lifespans.refresh_token_ms);
	CU_ASSERT_EQUAL(gx_refresh(f.g, f.client, r0.refresh_token, NULL, NULL, &rx, &e), -1);
	CU_ASSERT_STRING_EQUAL(e.error, "invalid_grant");
	grant_result_dispose(&r0);
	free(code);
	fx_dispose(&f);
}

static void
test_revoke(void)
{
	struct fx f;
	struct grant_result r0, rx;
	struct grant_error e;
	json_object *claims = NULL;
	struct jwt_expect ex = { .iss = ISS };
	char *code;

	fx_init(&f);
	code = fx_code(&f, "openid offline_access");
	CU_ASSERT_EQUAL_FATAL(fx_exchange(&f, code, &r0, &e), 0);
	/* Another client's revocation is ignored. */
	gx_revoke(f.g, "client-2", r0.refresh_token, NULL);
	gx_revoke(f.g, "client-2", r0.access_token, NULL);
	CU_ASSERT_EQUAL_FATAL(jwt_verify(r0.access_token, f.ks, &ex, &claims, e.desc,
				  sizeof e.desc),
	    JWT_OK);
	CU_ASSERT_FALSE(grant_jti_revoked(f.g, jwt_claim_string(claims, "jti")));
	gx_revoke(f.g, "client-1", r0.access_token, "access_token");
	CU_ASSERT_TRUE(grant_jti_revoked(f.g, jwt_claim_string(claims, "jti")));
	gx_revoke(f.g, "client-1", r0.refresh_token, "refresh_token");
	CU_ASSERT_EQUAL(gx_refresh(f.g, f.client, r0.refresh_token, NULL, NULL, &rx, &e), -1);
	gx_revoke(f.g, "client-1", "garbage", NULL);
	gx_revoke(f.g, "client-1", "a.b.c", NULL);
	json_object_put(claims);
	grant_result_dispose(&r0);
	free(code);
	fx_dispose(&f);
}

/* A full store refuses to issue a new token (503, nothing half-issued),
 * and the code presented stays usable: the client's retry once there is
 * room is an exchange, not a replay that revokes the family; a rotation
 * (one live token for another) goes on in a full table. A revocation
 * the store cannot record is reported (-1 → 503). */
static void
test_store_full(void)
{
	struct fx f;
	struct grant_result r0, r1, r2, rx;
	struct grant_error e;
	char *code, *code2, key[32];
	int64_t exp;
	int rc;

	fx_init(&f);
	code = fx_code(&f, "openid offline_access");
	CU_ASSERT_EQUAL_FATAL(fx_exchange(&f, code, &r0, &e), 0);
	code2 = fx_code(&f, "openid offline_access");
	/* r0's token (live) and max - 1 others: full */
	for (int i = 1; i < STORE_MAX_REFRESH; i++) {
		struct store_refresh *r = xcalloc(1, sizeof *r);
		struct store_issue is = { .family = "filler",
			.jti = "filler",
			.jti_exp = clock_wall_s() + 3600,
			.refresh_hash = key,
			.refresh = r,
			.ttl_ms = 60000 };
		struct sx x;

		r->family = xstrdup("filler");
		r->client_id = xstrdup("client-9");
		snprintf(key, sizeof key, "filler-%d", i);
		CU_ASSERT_EQUAL_FATAL(SX(f.base, x, store_issue(f.st, &is, sx_cb, &x)), STORE_OK);
	}
	/* a new login's refresh token cannot be recorded: 503, nothing issued */
	CU_ASSERT_EQUAL(fx_exchange(&f, code2, &rx, &e), -1);
	CU_ASSERT_EQUAL(e.status, 503);
	CU_ASSERT_STRING_EQUAL(e.error, "temporarily_unavailable");
	CU_ASSERT_PTR_NULL(rx.access_token);
	CU_ASSERT_PTR_NULL(rx.refresh_token);
	/* a rotation replaces a live token with another: it goes on */
	rc = gx_refresh(f.g, f.client, r0.refresh_token, NULL, NULL, &r1, &e);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	CU_ASSERT_PTR_NOT_NULL(r1.refresh_token);
	/* room again (the fillers expired): the same code is exchanged, not
	 * taken for a replay (it was put back) */
	clock_advance_fake_ms(60001);
	CU_ASSERT_EQUAL(fx_exchange(&f, code2, &r2, &e), 0);
	CU_ASSERT_PTR_NOT_NULL(r2.refresh_token);
	/* a full deny-list: the access-token revocation is refused, not lost */
	exp = clock_wall_s() + 3600;
	for (int i = 0; i < STORE_MAX_JTIS; i++) {
		struct sx x;

		snprintf(key, sizeof key, "jti-%d", i);
		SX(f.base, x, store_jti_revoke(f.st, key, exp, sx_cb, &x));
	}
	CU_ASSERT_EQUAL(gx_revoke(f.g, "client-1", r1.access_token, NULL), -1);
	CU_ASSERT_EQUAL(gx_revoke(f.g, "client-1", "garbage", NULL), 0);
	grant_result_dispose(&r0);
	grant_result_dispose(&r1);
	grant_result_dispose(&r2);
	free(code);
	free(code2);
	fx_dispose(&f);
}

int
main(void)
{
	static const struct unit_test tests[] = {
		{ "code single use; replay revokes its tokens",
		    test_code_single_use_and_replay_revokes },
		{ "code bound to PKCE, redirect_uri, client, resource, lifetime",
		    test_code_bindings },
		{ "access token is an RFC 9068 JWT", test_access_token_shape },
		{ "refresh rotation and reuse detection", test_refresh_rotation_and_reuse },
		{ "refresh token expiry", test_refresh_expiry },
		{ "revocation (own tokens only)", test_revoke },
		{ "a full store fails closed and loses nothing", test_store_full },
		{ NULL, NULL },
	};

	return unit_run("token", tests);
}
