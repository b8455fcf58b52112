/*
 * Unit tests for auth/store/store_redis against a real redis-server on
 * 127.0.0.1 (redis_server.h). One battery of cases runs on the memory
 * backend and on Redis, so that both keep the same semantics; then what
 * only a shared store has: two replicas (two struct store on one Redis)
 * see each other's revocations within a second, through pub/sub and,
 * when a message was lost, the generation resync; compare-and-swap from
 * two replicas; every key with a TTL and no clear token in Redis; the
 * server away (every verb fails at once) and back.
 * Waits are outcomes with generous deadlines, never races of two timers.
 */
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/client/client.h"
#include "auth/store/store.h"
#include "common/clock.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "proxy/log.h"
#include "proxy/metrics.h"
#include "test/unit/store/redis_server.h"
#include "test/unit/unit.h"

/* 32 bytes, base64: the seal key of the tests. */
#define TEST_SEAL_KEY "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

/* The clear strings that must never reach Redis. */
#define UP_AT "upstream-access-token-CLEAR-1"
#define UP_RT "upstream-refresh-token-CLEAR-1"
#define UP_IDT "upstream-id-token-CLEAR-1"
#define VERIFIER "pkce-verifier-CLEAR-1"
#define NONCE "oidc-nonce-CLEAR-1"
#define RT_CLEAR "our-refresh-token-CLEAR-1"
#define RT2_CLEAR "our-refresh-token-CLEAR-2"
#define RT3_CLEAR "our-refresh-token-CLEAR-3"
#define CODE_CLEAR "our-code-CLEAR-1"
#define STATE_CLEAR "our-state-CLEAR-1"
#define TSID_CLEAR "session-id-CLEAR-1"

static struct event_base *base;
static struct redis_server server;
static bool on_redis; /* the battery's current backend */

/* --- a synchronous view of the verbs --- */

struct sx {
	bool done;
	int calls;
	struct store_result res;
};

static void
sx_cb(struct store_result *res, void *arg)
{
	struct sx *x = arg;

	x->calls++;
	x->done = true;
	x->res = *res;
	memset(res, 0, sizeof *res); /* ours now */
}

static void
sx_dispose(struct sx *x)
{
	store_result_dispose(&x->res);
	memset(x, 0, sizeof *x);
}

/* Run the loop until the verb's callback came (10 s at most). */
static enum store_status
sx_wait(struct sx *x)
{
	long long deadline = clock_mono_ms() + unit_ms(10000);

	while (!x->done && clock_mono_ms() < deadline) {
		struct timeval tv = { 0, 20000 };

		event_base_loopexit(base, &tv);
		event_base_loop(base, EVLOOP_ONCE);
	}
	CU_ASSERT_TRUE(x->done);
	return x->done ? x->res.status : (enum store_status)-1;
}

/* The callback is never called before the verb returned. */
static void
sx_not_yet(const struct sx *x)
{
	CU_ASSERT_EQUAL(x->calls, 0);
}

/* Start expr (which passes sx_cb, &x), wait; the status (x keeps the
 * result until sx_dispose). */
#define SXR(x, expr) (memset(&(x), 0, sizeof(x)), (void)(expr), sx_not_yet(&(x)), sx_wait(&(x)))
/* The same, disposing of the result. */
#define SX(x, expr) (SXR(x, expr), sx_status_dispose(&(x)))

static enum store_status
sx_status_dispose(struct sx *x)
{
	enum store_status s = x->res.status;

	sx_dispose(x);
	return s;
}

/* Run the loop until cond or ms pass. */
#define RUN_UNTIL(cond, ms)                                                          \
	do {                                                                         \
		long long d_ = clock_mono_ms() + unit_ms(ms);                        \
		while (!(cond) && clock_mono_ms() < d_) {                            \
			struct timeval tv_ = { 0, 20000 };                           \
			event_base_loopexit(base, &tv_);                             \
			event_base_dispatch(base);                                   \
		}                                                                    \
	} while (0)

/* --- stores --- */

static struct config *
test_config(bool redis)
{
	struct config *cfg = config_new();
	struct storage_redis *r = &cfg->eas.storage.redis;

	if (!redis)
		return cfg;
	cfg->eas.storage.type = STORAGE_REDIS;
	free(r->addr);
	r->addr = xasprintf("127.0.0.1:%d", server.port);
	free(r->key_prefix);
	r->key_prefix = xstrdup("t:");
	r->encryption_key.value = xstrdup(TEST_SEAL_KEY);
	r->encryption_key.value_len = strlen(TEST_SEAL_KEY);
	r->dial_timeout_ms = 2000;
	r->read_timeout_ms = 2000;
	r->write_timeout_ms = 2000;
	return cfg;
}

static struct store *
new_store(bool redis)
{
	struct config *cfg = test_config(redis);
	char err[256] = "";
	struct store *st = store_new(cfg, base, NULL, err, sizeof err);

	if (st == NULL)
		fprintf(stderr, "store_new: %s\n", err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	config_free(cfg);
	if (redis) {
		struct store_health h;

		RUN_UNTIL((store_health(st, &h), h.reachable), 10000);
		CU_ASSERT_TRUE(h.reachable);
		CU_ASSERT_STRING_EQUAL(h.type, "redis");
	}
	return st;
}

static void
hash_hex(const char *s, char out[65])
{
	unsigned char md[32];
	unsigned int n = 0;

	EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL);
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static struct store_pending *
pending_rec(void)
{
	struct store_pending *p = xcalloc(1, sizeof *p);

	p->client_id = xstrdup("c1");
	p->redirect_uri = xstrdup("https://a.example/cb");
	p->redirect_uri_sent = true;
	p->state = xstrdup("client-state");
	p->code_challenge = xstrdup("challenge");
	p->scope = xstrdup("openid mcp");
	p->upstream_verifier = xstrdup(VERIFIER);
	p->nonce = xstrdup(NONCE);
	return p;
}

static struct store_code *
code_rec(const char *family)
{
	struct store_code *c = xcalloc(1, sizeof *c);

	c->client_id = xstrdup("c1");
	c->redirect_uri = xstrdup("https://a.example/cb");
	c->code_challenge = xstrdup("challenge");
	c->scope = xstrdup("mcp");
	c->resource = xstrdup("https://mcp.example/mcp");
	c->tsid = xstrdup(TSID_CLEAR);
	c->subject = xstrdup("alice");
	c->family = xstrdup(family);
	return c;
}

static struct store_refresh *
refresh_rec(const char *family, const char *client_id)
{
	struct store_refresh *r = xcalloc(1, sizeof *r);

	r->family = xstrdup(family);
	r->client_id = xstrdup(client_id);
	r->scope = xstrdup("mcp");
	r->tsid = xstrdup(TSID_CLEAR);
	r->subject = xstrdup("alice");
	r->expires_at = clock_wall_s() + 3600;
	return r;
}

static struct store_upstream *
upstream_rec(const char *at)
{
	struct store_upstream *u = xcalloc(1, sizeof *u);

	u->subject = xstrdup("alice");
	u->access_token = xstrdup(at);
	u->refresh_token = xstrdup(UP_RT);
	u->id_token = xstrdup(UP_IDT);
	u->claims_json = xstrdup("{\"sub\":\"alice\"}");
	u->expires_at = clock_wall_s() + 600;
	return u;
}

/* An issue of jti into family, with the refresh token whose clear text is
 * rt (NULL: none). The strings must outlive the call only (copied). */
static void
issue_of(struct store_issue *is, const char *family, const char *jti, const char *rt,
    char hash[65])
{
	memset(is, 0, sizeof *is);
	is->family = family;
	is->jti = jti;
	is->jti_exp = clock_wall_s() + 3600;
	if (rt != NULL) {
		hash_hex(rt, hash);
		is->refresh_hash = hash;
		is->refresh = refresh_rec(family, "c1");
	}
	is->tsid = TSID_CLEAR;
	is->ttl_ms = 3600000;
}

/* --- the battery: each case on a fresh store of the current backend --- */

static void
case_pending(struct store *st)
{
	struct sx x;

	CU_ASSERT_EQUAL(SX(x, store_pending_put(st, STATE_CLEAR, pending_rec(), 600000, sx_cb, &x)),
	    STORE_OK);
	CU_ASSERT_EQUAL(SXR(x, store_pending_take(st, STATE_CLEAR, sx_cb, &x)), STORE_OK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(x.res.pending);
	CU_ASSERT_STRING_EQUAL(x.res.pending->client_id, "c1");
	CU_ASSERT_STRING_EQUAL(x.res.pending->redirect_uri, "https://a.example/cb");
	CU_ASSERT_TRUE(x.res.pending->redirect_uri_sent);
	CU_ASSERT_STRING_EQUAL(x.res.pending->upstream_verifier, VERIFIER);
	CU_ASSERT_STRING_EQUAL(x.res.pending->nonce, NONCE);
	CU_ASSERT_PTR_NULL(x.res.pending->resource);
	sx_dispose(&x);
	/* taken once */
	CU_ASSERT_EQUAL(SX(x, store_pending_take(st, STATE_CLEAR, sx_cb, &x)), STORE_NOT_FOUND);
}

static void
case_code(struct store *st)
{
	struct store_issue is;
	char code[65], rt[65];
	struct sx x;

	hash_hex(CODE_CLEAR, code);
	CU_ASSERT_EQUAL(SX(x, store_code_put(st, code, code_rec("famC"), 60000, sx_cb, &x)),
	    STORE_OK);
	CU_ASSERT_EQUAL(SXR(x, store_code_redeem(st, code, 3600000, sx_cb, &x)), STORE_OK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(x.res.code);
	CU_ASSERT_STRING_EQUAL(x.res.code->family, "famC");
	CU_ASSERT_STRING_EQUAL(x.res.code->tsid, TSID_CLEAR);
	CU_ASSERT_STRING_EQUAL(x.res.code->resource, "https://mcp.example/mcp");
	sx_dispose(&x);
	issue_of(&is, "famC", "jtiC1", RT_CLEAR, rt);
	CU_ASSERT_EQUAL(SX(x, store_issue(st, &is, sx_cb, &x)), STORE_OK);
	CU_ASSERT_FALSE(store_jti_revoked(st, "jtiC1"));
	/* a replay: SPENT with its family, which the verb revoked */
	CU_ASSERT_EQUAL(SXR(x, store_code_redeem(st, code, 3600000, sx_cb, &x)), STORE_SPENT);
	CU_ASSERT_PTR_NOT_NULL(x.res.family);
	if (x.res.family != NULL)
		CU_ASSERT_STRING_EQUAL(x.res.family, "famC");
	sx_dispose(&x);
	CU_ASSERT_TRUE(store_jti_revoked(st, "jtiC1"));
	issue_of(&is, "famC", "jtiC2", NULL, rt);
	CU_ASSERT_EQUAL(SX(x, store_refresh_rotate(st, rt, &is, sx_cb, &x)), STORE_REVOKED);
	/* unknown */
	CU_ASSERT_EQUAL(SX(x, store_code_redeem(st, "00", 3600000, sx_cb, &x)), STORE_NOT_FOUND);
	/* restore: a redeemed code put back is redeemable (not a replay) */
	CU_ASSERT_EQUAL(SX(x, store_code_put(st, "h2", code_rec("famD"), 60000, sx_cb, &x)),
	    STORE_OK);
	CU_ASSERT_EQUAL(SX(x, store_code_redeem(st, "h2", 3600000, sx_cb, &x)), STORE_OK);
	CU_ASSERT_EQUAL(SX(x, store_code_restore(st, "h2", code_rec("famD"), 60000, sx_cb, &x)),
	    STORE_OK);
	CU_ASSERT_EQUAL(SX(x, store_code_redeem(st, "h2", 3600000, sx_cb, &x)), STORE_OK);
}

static void
case_refresh_rotate(struct store *st)
{
	struct store_issue is;
	char h1[65], h2[65];
	struct sx x;

	issue_of(&is, "famR", "jtiR1", RT_CLEAR, h1);
	CU_ASSERT_EQUAL(SX(x, store_issue(st, &is, sx_cb, &x)), STORE_OK);
	CU_ASSERT_EQUAL(SXR(x, store_refresh_get(st, h1, sx_cb, &x)), STORE_OK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(x.res.refresh);
	CU_ASSERT_STRING_EQUAL(x.res.refresh->family, "famR");
	CU_ASSERT_STRING_EQUAL(x.res.refresh->client_id, "c1");
	CU_ASSERT_EQUAL(x.res.refresh->expires_at, is.jti_exp);
	sx_dispose(&x);
	/* rotate h1 → h2 */
	issue_of(&is, "famR", "jtiR2", RT2_CLEAR, h2);
	CU_ASSERT_EQUAL(SX(x, store_refresh_rotate(st, h1, &is, sx_cb, &x)), STORE_OK);
	CU_ASSERT_EQUAL(SX(x, store_refresh_get(st, h2, sx_cb, &x)), STORE_OK);
	CU_ASSERT_EQUAL(SXR(x, store_refresh_get(st, h1, sx_cb, &x)), STORE_SPENT);
	CU_ASSERT_STRING_EQUAL(x.res.family != NULL ? x.res.family : "", "famR");
	sx_dispose(&x);
	CU_ASSERT_FALSE(store_jti_revoked(st, "jtiR1"));
	/* reuse of h1: SPENT, and the family is revoked by the verb */
	issue_of(&is, "famR", "jtiR3", "unused", h2);
	store_refresh_free(is.refresh);
	is.refresh = NULL;
	is.refresh_hash = NULL;
	CU_ASSERT_EQUAL(SXR(x, store_refresh_rotate(st, h1, &is, sx_cb, &x)), STORE_SPENT);
	CU_ASSERT_STRING_EQUAL(x.res.family != NULL ? x.res.family : "", "famR");
	sx_dispose(&x);
	CU_ASSERT_TRUE(store_jti_revoked(st, "jtiR1"));
	CU_ASSERT_TRUE(store_jti_revoked(st, "jtiR2"));
	hash_hex(RT2_CLEAR, h2);
	issue_of(&is, "famR", "jtiR4", NULL, h1);
	CU_ASSERT_EQUAL(SX(x, store_refresh_rotate(st, h2, &is, sx_cb, &x)), STORE_REVOKED);
	CU_ASSERT_EQUAL(SX(x, store_refresh_rotate(st, "unknown", &is, sx_cb, &x)),
	    STORE_NOT_FOUND);
	CU_ASSERT_EQUAL(SX(x, store_refresh_get(st, "unknown", sx_cb, &x)), STORE_NOT_FOUND);
}

static void
case_refresh_revoke(struct store *st)
{
	struct store_issue is;
	char h[65];
	struct sx x;

	issue_of(&is, "famV", "jtiV1", RT_CLEAR, h);
	CU_ASSERT_EQUAL(SX(x, store_issue(st, &is, sx_cb, &x)), STORE_OK);
	CU_ASSERT_EQUAL(SX(x, store_refresh_revoke(st, h, "c2", 3600000, sx_cb, &x)),
	    STORE_FOREIGN);
	CU_ASSERT_EQUAL(SX(x, store_refresh_get(st, h, sx_cb, &x)), STORE_OK); /* untouched */
	CU_ASSERT_FALSE(store_jti_revoked(st, "jtiV1"));
	CU_ASSERT_EQUAL(SX(x, store_refresh_revoke(st, h, "c1", 3600000, sx_cb, &x)), STORE_OK);
	CU_ASSERT_TRUE(store_jti_revoked(st, "jtiV1"));
	CU_ASSERT_NOT_EQUAL(SX(x, store_refresh_get(st, h, sx_cb, &x)), STORE_OK);
	CU_ASSERT_EQUAL(SX(x, store_refresh_revoke(st, "unknown", "c1", 3600000, sx_cb, &x)),
	    STORE_NOT_FOUND);
}

static void
case_family_and_jti_revoke(struct store *st)
{
	struct store_issue is;
	char h[65];
	struct sx x;

	issue_of(&is, "famF", "jtiF1", NULL, h);
	CU_ASSERT_EQUAL(SX(x, store_issue(st, &is, sx_cb, &x)), STORE_OK);
	CU_ASSERT_EQUAL(SX(x, store_family_revoke(st, "famF", 3600000, sx_cb, &x)), STORE_OK);
	CU_ASSERT_TRUE(store_jti_revoked(st, "jtiF1"));
	/* issued into a revoked family: dead at birth */
	issue_of(&is, "famF", "jtiF2", RT3_CLEAR, h);
	CU_ASSERT_EQUAL(SX(x, store_issue(st, &is, sx_cb, &x)), STORE_REVOKED);
	CU_ASSERT_TRUE(store_jti_revoked(st, "jtiF2"));
	CU_ASSERT_EQUAL(SX(x, store_refresh_get(st, h, sx_cb, &x)), STORE_NOT_FOUND);
	/* one token */
	CU_ASSERT_EQUAL(SX(x, store_jti_revoke(st, "jtiJ", clock_wall_s() + 600, sx_cb, &x)),
	    STORE_OK);
	CU_ASSERT_TRUE(store_jti_revoked(st, "jtiJ"));
	CU_ASSERT_FALSE(store_jti_revoked(st, "jtiOther"));
	/* an expired one needs no entry */
	CU_ASSERT_EQUAL(SX(x, store_jti_revoke(st, "jtiOld", clock_wall_s() - 1, sx_cb, &x)),
	    STORE_OK);
	CU_ASSERT_FALSE(store_jti_revoked(st, "jtiOld"));
}

static void
case_upstream(struct store *st)
{
	const struct store_upstream *cu;
	uint64_t v = 0;
	struct sx x;

	CU_ASSERT_EQUAL(SXR(x, store_upstream_put(st, TSID_CLEAR, upstream_rec(UP_AT), 3600000,
				   sx_cb, &x)),
	    STORE_OK);
	CU_ASSERT_EQUAL(x.res.version, 1);
	sx_dispose(&x);
	CU_ASSERT_EQUAL(SXR(x, store_upstream_get(st, TSID_CLEAR, sx_cb, &x)), STORE_OK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(x.res.upstream);
	CU_ASSERT_STRING_EQUAL(x.res.upstream->access_token, UP_AT);
	CU_ASSERT_STRING_EQUAL(x.res.upstream->refresh_token, UP_RT);
	CU_ASSERT_STRING_EQUAL(x.res.upstream->claims_json, "{\"sub\":\"alice\"}");
	CU_ASSERT_EQUAL(x.res.version, 1);
	sx_dispose(&x);
	cu = store_upstream_cached(st, TSID_CLEAR, &v);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cu);
	CU_ASSERT_STRING_EQUAL(cu->access_token, UP_AT);
	CU_ASSERT_EQUAL(v, 1);
	/* CAS at 1 wins; again at 1 loses, with the current tokens */
	CU_ASSERT_EQUAL(SXR(x, store_upstream_cas(st, TSID_CLEAR, 1, upstream_rec("at-2"), 3600000,
				   sx_cb, &x)),
	    STORE_OK);
	CU_ASSERT_EQUAL(x.res.version, 2);
	sx_dispose(&x);
	CU_ASSERT_EQUAL(SXR(x, store_upstream_cas(st, TSID_CLEAR, 1, upstream_rec("at-3"), 3600000,
				   sx_cb, &x)),
	    STORE_CONFLICT);
	CU_ASSERT_EQUAL(x.res.version, 2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(x.res.upstream);
	CU_ASSERT_STRING_EQUAL(x.res.upstream->access_token, "at-2");
	sx_dispose(&x);
	cu = store_upstream_cached(st, TSID_CLEAR, &v);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cu);
	CU_ASSERT_STRING_EQUAL(cu->access_token, "at-2");
	CU_ASSERT_EQUAL(v, 2);
	CU_ASSERT_EQUAL(SX(x, store_upstream_get(st, "nope", sx_cb, &x)), STORE_NOT_FOUND);
	CU_ASSERT_EQUAL(SX(x, store_upstream_cas(st, "nope", 1, upstream_rec("x"), 1000, sx_cb, &x)),
	    STORE_NOT_FOUND);
	CU_ASSERT_PTR_NULL(store_upstream_cached(st, "nope", NULL));
}

static void
case_assertion(struct store *st)
{
	int64_t exp = clock_wall_s() + 60;
	struct sx x;

	CU_ASSERT_EQUAL(SX(x, store_assertion_seen(st, "c1", "aj1", exp, sx_cb, &x)), STORE_OK);
	CU_ASSERT_EQUAL(SX(x, store_assertion_seen(st, "c1", "aj1", exp, sx_cb, &x)),
	    STORE_REPLAYED);
	CU_ASSERT_EQUAL(SX(x, store_assertion_seen(st, "c2", "aj1", exp, sx_cb, &x)), STORE_OK);
	/* "c1"+"2aj" vs "c12"+"aj": the length prefix keeps them apart */
	CU_ASSERT_EQUAL(SX(x, store_assertion_seen(st, "c12", "aj", exp, sx_cb, &x)), STORE_OK);
	CU_ASSERT_EQUAL(SX(x, store_assertion_seen(st, "c1", "2aj", exp, sx_cb, &x)), STORE_OK);
}

static struct client *
dcr_client(const char *id)
{
	struct client *c = client_new(id);

	c->client_name = xstrdup("Test client");
	c->token_endpoint_auth_method = xstrdup("client_secret_basic");
	memset(c->secret_hash, 0xab, sizeof c->secret_hash);
	c->has_secret = true;
	strlist_add(&c->redirect_uris, "https://a.example/cb");
	strlist_add(&c->grant_types, "authorization_code");
	strlist_add(&c->scopes, "mcp");
	c->created_at = clock_wall_s();
	return c;
}

static void
put_client(struct store *st, const char *id, size_t max, int64_t grace_ms,
    enum store_status want, unsigned evicted)
{
	struct client *c = dcr_client(id);
	struct sx x;

	CU_ASSERT_EQUAL(SXR(x, store_client_put(st, c, max, grace_ms, sx_cb, &x)), want);
	CU_ASSERT_EQUAL(x.res.evicted, evicted);
	sx_dispose(&x);
	client_unref(c);
}

static void
case_clients(struct store *st)
{
	struct sx x;

	/* the clocks frozen (now), moved by hand: the LRU's grace */
	clock_set_fake(clock_wall_s(), clock_mono_ms());
	put_client(st, "dcr-1", 2, 5000, STORE_OK, 0);
	clock_advance_fake_ms(2000);
	put_client(st, "dcr-2", 2, 5000, STORE_OK, 0);
	CU_ASSERT_EQUAL(store_client_count(st), 2);
	/* the cap, and nobody idle for longer than the grace */
	put_client(st, "dcr-3", 2, 5000, STORE_FULL, 0);
	/* dcr-1 used now: dcr-2 is the least recently used */
	clock_advance_fake_ms(4000);
	CU_ASSERT_EQUAL(SXR(x, store_client_get(st, "dcr-1", sx_cb, &x)), STORE_OK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(x.res.client);
	CU_ASSERT_STRING_EQUAL(x.res.client->client_name, "Test client");
	CU_ASSERT_TRUE(x.res.client->has_secret);
	CU_ASSERT_EQUAL(x.res.client->secret_hash[31], 0xab);
	CU_ASSERT_TRUE(strlist_contains(&x.res.client->redirect_uris, "https://a.example/cb"));
	sx_dispose(&x);
	clock_advance_fake_ms(4000);
	put_client(st, "dcr-3", 2, 5000, STORE_OK, 1);
	CU_ASSERT_EQUAL(SX(x, store_client_get(st, "dcr-2", sx_cb, &x)), STORE_NOT_FOUND);
	CU_ASSERT_EQUAL(SX(x, store_client_get(st, "dcr-1", sx_cb, &x)), STORE_OK);
	CU_ASSERT_EQUAL(SX(x, store_client_get(st, "dcr-3", sx_cb, &x)), STORE_OK);
	/* replacing one that exists needs no room (Redis; the memory backend
	 * still makes room first) */
	if (on_redis)
		put_client(st, "dcr-3", 2, 5000, STORE_OK, 0);
	CU_ASSERT_EQUAL(store_client_count(st), 2);
	clock_set_fake(-1, 0);
}

/* A cancelled verb's callback is never called; store_free with verbs in
 * flight calls none either. */
static void
case_cancel(struct store *st)
{
	struct sx x, y;

	memset(&x, 0, sizeof x);
	memset(&y, 0, sizeof y);
	store_cancel(store_pending_put(st, "cancelled", pending_rec(), 60000, sx_cb, &x));
	CU_ASSERT_EQUAL(SX(y, store_pending_take(st, "other", sx_cb, &y)), STORE_NOT_FOUND);
	CU_ASSERT_EQUAL(x.calls, 0);
	store_pending_take(st, "cancelled", sx_cb, &x); /* in flight at store_free */
}

/* The shared token bucket (the DCR registration limit): burst, then
 * refused with a retry; on Redis a second replica draws from the same
 * bucket. */
static void
case_rate(struct store *st)
{
	struct store *other = on_redis ? new_store(true) : st;
	struct sx x;

	CU_ASSERT_EQUAL(SX(x, store_rate_take(st, "register", 0.001, 3, sx_cb, &x)), STORE_OK);
	CU_ASSERT_EQUAL(SX(x, store_rate_take(other, "register", 0.001, 3, sx_cb, &x)), STORE_OK);
	CU_ASSERT_EQUAL(SX(x, store_rate_take(st, "register", 0.001, 3, sx_cb, &x)), STORE_OK);
	SXR(x, store_rate_take(other, "register", 0.001, 3, sx_cb, &x));
	CU_ASSERT_EQUAL(x.res.status, STORE_FULL);
	CU_ASSERT_TRUE(x.res.retry_after_s >= 1);
	sx_status_dispose(&x);
	/* another bucket, and no limit at all */
	CU_ASSERT_EQUAL(SX(x, store_rate_take(st, "other", 0.001, 1, sx_cb, &x)), STORE_OK);
	CU_ASSERT_EQUAL(SX(x, store_rate_take(st, "none", 0, 0, sx_cb, &x)), STORE_OK);
	if (other != st)
		store_free(other);
}

static const struct {
	const char *name;
	void (*fn)(struct store *);
} battery[] = {
	{ "pending", case_pending },
	{ "code", case_code },
	{ "refresh rotate", case_refresh_rotate },
	{ "refresh revoke", case_refresh_revoke },
	{ "family and jti revoke", case_family_and_jti_revoke },
	{ "upstream", case_upstream },
	{ "assertion", case_assertion },
	{ "clients", case_clients },
	{ "rate", case_rate },
	{ "cancel", case_cancel },
};

static void
run_battery(bool redis)
{
	on_redis = redis;
	for (size_t i = 0; i < sizeof battery / sizeof battery[0]; i++) {
		struct store *st;
		unsigned before = CU_get_number_of_failures();

		if (redis)
			redis_server_do(&server, "FLUSHALL");
		st = new_store(redis);
		battery[i].fn(st);
		store_free(st);
		if (CU_get_number_of_failures() != before)
			fprintf(stderr, "\n  (failed: %s on %s)\n", battery[i].name,
			    redis ? "redis" : "memory");
	}
}

static void
test_battery_memory(void)
{
	run_battery(false);
}

static void
test_battery_redis(void)
{
	run_battery(true);
}

/* --- what only a shared store has --- */

/* A revocation on one replica is in force on the other within a second:
 * through pub/sub; and when the message is lost (published while the
 * subscriber was away, or never), through the generation. */
static void
test_two_replicas_revocations(void)
{
	struct store *a, *b;
	struct sx x;
	long long t0;

	redis_server_do(&server, "FLUSHALL");
	a = new_store(true);
	b = new_store(true);
	/* b subscribed and synchronised: a revocation reaches it by message */
	RUN_UNTIL(false, 1500);
	CU_ASSERT_EQUAL(SX(x, store_jti_revoke(a, "rj1", clock_wall_s() + 600, sx_cb, &x)),
	    STORE_OK);
	CU_ASSERT_TRUE(store_jti_revoked(a, "rj1")); /* at once on the replica that revoked */
	t0 = clock_mono_ms();
	RUN_UNTIL(store_jti_revoked(b, "rj1"), 1000);
	CU_ASSERT_TRUE(store_jti_revoked(b, "rj1"));
	/* well before the next poll: the message did it */
	CU_ASSERT_TRUE(clock_mono_ms() - t0 < unit_ms(500));

	/* a family revoked on a: its tokens are denied on b */
	{
		struct store_issue is;
		char h[65];

		issue_of(&is, "famT", "rj2", NULL, h);
		CU_ASSERT_EQUAL(SX(x, store_issue(a, &is, sx_cb, &x)), STORE_OK);
		CU_ASSERT_EQUAL(SX(x, store_family_revoke(b, "famT", 3600000, sx_cb, &x)),
		    STORE_OK);
		RUN_UNTIL(store_jti_revoked(a, "rj2"), 1000);
		CU_ASSERT_TRUE(store_jti_revoked(a, "rj2"));
		CU_ASSERT_TRUE(store_jti_revoked(b, "rj2"));
	}

	/* a message never sent: the deny-list written behind the replicas'
	 * backs, the generation moved; the poll reloads it */
	{
		char exp[32];

		snprintf(exp, sizeof exp, "%lld", (long long)(clock_wall_s() + 600) * 1000);
		redis_server_do(&server, "ZADD t:{dl}:jti %s rj-silent", exp);
		redis_server_do(&server, "INCR t:{dl}:gen");
		RUN_UNTIL(store_jti_revoked(b, "rj-silent"), 3000);
		CU_ASSERT_TRUE(store_jti_revoked(b, "rj-silent"));
		CU_ASSERT_TRUE(store_jti_revoked(a, "rj-silent"));
	}

	/* b's subscription dropped: what a revokes meanwhile still reaches it */
	redis_server_do(&server, "CLIENT KILL TYPE pubsub");
	CU_ASSERT_EQUAL(SX(x, store_jti_revoke(a, "rj3", clock_wall_s() + 600, sx_cb, &x)),
	    STORE_OK);
	RUN_UNTIL(store_jti_revoked(b, "rj3"), 3000);
	CU_ASSERT_TRUE(store_jti_revoked(b, "rj3"));
	/* and after it came back, messages again */
	RUN_UNTIL(false, 1500);
	CU_ASSERT_EQUAL(SX(x, store_jti_revoke(a, "rj4", clock_wall_s() + 600, sx_cb, &x)),
	    STORE_OK);
	RUN_UNTIL(store_jti_revoked(b, "rj4"), 1000);
	CU_ASSERT_TRUE(store_jti_revoked(b, "rj4"));
	store_free(a);
	store_free(b);
}

/* Two replicas refresh one session's upstream tokens at once: exactly one
 * compare-and-swap wins; the other gets the winner's tokens. */
static void
test_two_replicas_cas(void)
{
	struct store *a, *b;
	struct sx x, y;
	const struct sx *lost;

	redis_server_do(&server, "FLUSHALL");
	a = new_store(true);
	b = new_store(true);
	CU_ASSERT_EQUAL(SX(x, store_upstream_put(a, "tsid-cas", upstream_rec(UP_AT), 3600000, sx_cb,
			    &x)),
	    STORE_OK);
	memset(&x, 0, sizeof x);
	memset(&y, 0, sizeof y);
	store_upstream_cas(a, "tsid-cas", 1, upstream_rec("at-from-a"), 3600000, sx_cb, &x);
	store_upstream_cas(b, "tsid-cas", 1, upstream_rec("at-from-b"), 3600000, sx_cb, &y);
	sx_wait(&x);
	sx_wait(&y);
	CU_ASSERT_EQUAL((x.res.status == STORE_OK) + (y.res.status == STORE_OK), 1);
	CU_ASSERT_EQUAL((x.res.status == STORE_CONFLICT) + (y.res.status == STORE_CONFLICT), 1);
	lost = x.res.status == STORE_CONFLICT ? &x : &y;
	CU_ASSERT_EQUAL(lost->res.version, 2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(lost->res.upstream);
	CU_ASSERT_STRING_EQUAL(lost->res.upstream->access_token,
	    lost == &x ? "at-from-b" : "at-from-a");
	sx_dispose(&x);
	sx_dispose(&y);
	store_free(a);
	store_free(b);
}

/* Does the reply (any depth) hold one of the clear strings? */
static bool
reply_holds_clear(const redisReply *r)
{
	static const char *const clear[] = { UP_AT, UP_RT, UP_IDT, VERIFIER, NONCE, RT_CLEAR,
		RT2_CLEAR, RT3_CLEAR, CODE_CLEAR, STATE_CLEAR, TSID_CLEAR };

	if (r->type == REDIS_REPLY_ARRAY) {
		for (size_t i = 0; i < r->elements; i++) {
			if (reply_holds_clear(r->element[i]))
				return true;
		}
		return false;
	}
	if (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS)
		return false;
	for (size_t i = 0; i < sizeof clear / sizeof clear[0]; i++) {
		if (memmem(r->str, r->len, clear[i], strlen(clear[i])) != NULL) {
			fprintf(stderr, "\n  clear %s in Redis\n", clear[i]);
			return true;
		}
	}
	return false;
}

/* After every verb ran: every key has a TTL, and neither a key nor a
 * value holds a token, a code, a state or a session id in clear. */
static void
test_keys_ttl_and_no_clear_secrets(void)
{
	struct store *st;
	redisContext *c;
	redisReply *scan, *r;
	char cursor[32] = "0";
	size_t keys = 0;

	redis_server_do(&server, "FLUSHALL");
	on_redis = true;
	st = new_store(true);
	for (size_t i = 0; i < sizeof battery / sizeof battery[0]; i++) {
		if (battery[i].fn != case_cancel)
			battery[i].fn(st);
	}
	store_free(st);
	c = redis_server_admin(&server);
	do {
		scan = redisCommand(c, "SCAN %s COUNT 1000", cursor);
		CU_ASSERT_FATAL(scan != NULL && scan->type == REDIS_REPLY_ARRAY);
		snprintf(cursor, sizeof cursor, "%s", scan->element[0]->str);
		for (size_t i = 0; i < scan->element[1]->elements; i++) {
			const redisReply *k = scan->element[1]->element[i];
			const char *type;

			keys++;
			CU_ASSERT_EQUAL(strncmp(k->str, "t:", 2), 0);
			CU_ASSERT_FALSE(reply_holds_clear(k));
			r = redisCommand(c, "PTTL %b", k->str, k->len);
			if (r->integer <= 0)
				fprintf(stderr, "\n  no TTL: %s\n", k->str);
			CU_ASSERT(r->integer > 0);
			freeReplyObject(r);
			r = redisCommand(c, "TYPE %b", k->str, k->len);
			type = strcmp(r->str, "hash") == 0 ? "HGETALL %b"
			    : strcmp(r->str, "zset") == 0  ? "ZRANGE %b 0 -1"
							   : "GET %b";
			freeReplyObject(r);
			r = redisCommand(c, type, k->str, k->len);
			CU_ASSERT_FALSE(reply_holds_clear(r));
			freeReplyObject(r);
		}
		freeReplyObject(scan);
	} while (strcmp(cursor, "0") != 0);
	redisFree(c);
	CU_ASSERT(keys >= 10);
}

/* The server stopped: every verb fails at once (no waiting for a timeout),
 * the revocations already known stay in force; restarted: it works again
 * without anyone asking. */
static void
test_server_away_and_back(void)
{
	struct metric *m;
	struct store *st;
	struct store_health h;
	struct sx x;
	long long t0;
	char code[65];

	redis_server_do(&server, "FLUSHALL");
	st = new_store(true);
	CU_ASSERT_EQUAL(SX(x, store_jti_revoke(st, "known", clock_wall_s() + 600, sx_cb, &x)),
	    STORE_OK);
	redis_server_stop(&server);
	RUN_UNTIL((store_health(st, &h), !h.reachable), 5000);
	CU_ASSERT_FALSE(h.reachable);
	CU_ASSERT_PTR_NOT_NULL(h.detail);
	t0 = clock_mono_ms();
	hash_hex(CODE_CLEAR, code);
	CU_ASSERT_EQUAL(SX(x, store_code_redeem(st, code, 3600000, sx_cb, &x)), STORE_UNAVAILABLE);
	CU_ASSERT_EQUAL(SX(x, store_pending_put(st, "s", pending_rec(), 1000, sx_cb, &x)),
	    STORE_UNAVAILABLE);
	CU_ASSERT_TRUE(clock_mono_ms() - t0 < unit_ms(500));
	CU_ASSERT_TRUE(store_jti_revoked(st, "known"));
	m = metrics_counter("mcp_proxy_store_errors_total", "", "verb,kind");
	CU_ASSERT(metrics_value(m, "code_redeem", "unavailable") >= 1);
	redis_server_start(&server);
	RUN_UNTIL((store_health(st, &h), h.reachable), 10000);
	CU_ASSERT_TRUE(h.reachable);
	CU_ASSERT_EQUAL(SX(x, store_pending_put(st, "s", pending_rec(), 1000, sx_cb, &x)),
	    STORE_OK);
	/* the restarted server lost everything: what we knew is still denied */
	CU_ASSERT_TRUE(store_jti_revoked(st, "known"));
	store_free(st);
}

/* The script cache flushed (a restart, a failover): the next verb sends
 * the script itself. Redis refusing a verb is STORE_UNAVAILABLE. */
static void
test_noscript_and_errors(void)
{
	struct store *st;
	struct sx x;

	redis_server_do(&server, "FLUSHALL");
	st = new_store(true);
	redis_server_do(&server, "SCRIPT FLUSH");
	CU_ASSERT_EQUAL(SX(x, store_family_revoke(st, "famN", 60000, sx_cb, &x)), STORE_OK);
	/* a key of the wrong type: Redis's error, not a crash */
	redis_server_do(&server, "HSET t:rt:{wrongtype} a b");
	redis_server_do(&server, "PEXPIRE t:rt:{wrongtype} 60000");
	CU_ASSERT_EQUAL(SX(x, store_refresh_get(st, "wrongtype", sx_cb, &x)), STORE_UNAVAILABLE);
	/* a record that is not ours: absent */
	redis_server_do(&server, "SET t:rt:{garbage} not-json PX 60000");
	CU_ASSERT_EQUAL(SX(x, store_refresh_get(st, "garbage", sx_cb, &x)), STORE_NOT_FOUND);
	/* a sealed value moved to another key does not open */
	CU_ASSERT_EQUAL(SX(x, store_upstream_put(st, "s-a", upstream_rec(UP_AT), 60000, sx_cb, &x)),
	    STORE_OK);
	store_free(st);
	st = new_store(true); /* no local copy */
	{
		redisContext *c = redis_server_admin(&server);
		redisReply *keys = redisCommand(c, "KEYS t:up:*");
		char hb[65];

		CU_ASSERT_FATAL(keys != NULL && keys->elements == 1);
		hash_hex("s-b", hb);
		freeReplyObject(
		    redisCommand(c, "RENAME %s t:up:{%s}", keys->element[0]->str, hb));
		freeReplyObject(keys);
		redisFree(c);
	}
	CU_ASSERT_EQUAL(SX(x, store_upstream_get(st, "s-b", sx_cb, &x)), STORE_NOT_FOUND);
	CU_ASSERT_EQUAL(SX(x, store_upstream_get(st, "s-a", sx_cb, &x)), STORE_NOT_FOUND);
	store_free(st);
}

int
main(void)
{
	static const struct unit_test tests[] = {
		{ "the battery on the memory backend", test_battery_memory },
		{ "the battery on Redis", test_battery_redis },
		{ "two replicas: revocations by message and by generation",
		    test_two_replicas_revocations },
		{ "two replicas: one compare-and-swap wins", test_two_replicas_cas },
		{ "every key has a TTL, no clear secret in Redis", test_keys_ttl_and_no_clear_secrets },
		{ "server away (fails at once) and back", test_server_away_and_back },
		{ "NOSCRIPT, errors, unreadable records", test_noscript_and_errors },
		{ NULL, NULL },
	};
	int rc;

	log_set_level(getenv("REDIS_TEST_LOG") ? LOG_INFO : LOG_ERROR);
	signal(SIGPIPE, SIG_IGN);
	base = event_base_new();
	redis_server_start(&server);
	rc = unit_run("store_redis", tests);
	redis_server_dispose(&server);
	event_base_free(base);
	metrics_reset();
	return rc;
}
