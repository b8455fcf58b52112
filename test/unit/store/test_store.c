/*
 * Unit tests for the store's front (auth/store/store.c) and its memory
 * backend: callbacks never before the verb returns, cancellation,
 * single-use records and their tombstones (a spent code or refresh token
 * names and revokes its family), rotation, families and the jti
 * deny-list, upstream compare-and-swap, bounds that fail closed, DCR
 * clients with a cap and idle eviction, assertion ids. Injected clock.
 */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/client/client.h"
#include "auth/store/store.h"
#include "common/clock.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "test/unit/store_sync.h"
#include "test/unit/unit.h"

static struct event_base *base;
static struct config *cfg;

static struct store *
new_store(void)
{
	char err[128];
	struct store *st;

	clock_set_fake(1700000000, 1000000);
	if (base == NULL)
		base = event_base_new();
	if (cfg == NULL)
		cfg = config_new();
	st = store_new(cfg, base, NULL, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	return st;
}

static void
end_store(struct store *st)
{
	store_free(st);
	clock_set_fake(-1, 0);
}

static struct store_pending *
pending(const char *state)
{
	struct store_pending *p = xcalloc(1, sizeof *p);

	p->client_id = xstrdup("c1");
	p->state = xstrdup(state);
	p->redirect_uri = xstrdup("https://a.example/cb");
	return p;
}

static struct store_refresh *
refresh_rec(const char *family)
{
	struct store_refresh *r = xcalloc(1, sizeof *r);

	r->family = xstrdup(family);
	r->client_id = xstrdup("c1");
	r->expires_at = clock_wall_s() + 3600;
	return r;
}

/* Record jti in family (issue without a refresh token). */
static enum store_status
issue_jti(struct store *st, const char *family, const char *jti, int64_t exp,
    const char *refresh_hash, struct store_refresh *r)
{
	struct store_issue is = { .family = family,
		.jti = jti,
		.jti_exp = exp,
		.refresh_hash = refresh_hash,
		.refresh = r,
		.ttl_ms = 3600000 };
	struct sx x;

	return SX(base, x, store_issue(st, &is, sx_cb, &x));
}

static enum store_status
put_refresh(struct store *st, const char *hash, const char *family)
{
	char jti[80];

	snprintf(jti, sizeof jti, "jti-of-%s", hash);
	return issue_jti(st, family, jti, clock_wall_s() + 3600, hash, refresh_rec(family));
}

static void
test_async_and_cancel(void)
{
	struct store *st = new_store();
	struct sx x, y;
	struct store_op *op;

	SX_START(x);
	store_pending_put(st, "s1", pending("a"), 600000, sx_cb, &x);
	CU_ASSERT_FALSE(x.done); /* never before the verb returns */
	CU_ASSERT_EQUAL(sx_wait(base, &x), STORE_OK);
	sx_dispose(&x);
	/* A cancelled verb's callback never comes (the verb may still happen). */
	SX_START(y);
	op = store_pending_take(st, "s1", sx_cb, &y);
	store_cancel(op);
	SX_START(x);
	store_pending_take(st, "nope", sx_cb, &x);
	CU_ASSERT_EQUAL(sx_wait(base, &x), STORE_NOT_FOUND);
	sx_dispose(&x);
	CU_ASSERT_EQUAL(y.calls, 0);
	/* Verbs in flight when the store goes are dropped without a call. */
	SX_START(y);
	store_pending_take(st, "s1", sx_cb, &y);
	end_store(st);
	CU_ASSERT_EQUAL(y.calls, 0);
}

static void
test_pending_single_use_and_expiry(void)
{
	struct store *st = new_store();
	struct sx x;

	CU_ASSERT_EQUAL(SX(base, x, store_pending_put(st, "s1", pending("a"), 600000, sx_cb, &x)),
	    STORE_OK);
	CU_ASSERT_EQUAL(SX(base, x, store_pending_put(st, "s2", pending("b"), 600000, sx_cb, &x)),
	    STORE_OK);
	SX_START(x);
	store_pending_take(st, "s1", sx_cb, &x);
	CU_ASSERT_EQUAL_FATAL(sx_wait(base, &x), STORE_OK);
	CU_ASSERT_STRING_EQUAL(x.res.pending->state, "a");
	sx_dispose(&x);
	CU_ASSERT_EQUAL(SX(base, x, store_pending_take(st, "s1", sx_cb, &x)), STORE_NOT_FOUND);
	clock_advance_fake_ms(600000);
	CU_ASSERT_EQUAL(SX(base, x, store_pending_take(st, "s2", sx_cb, &x)), STORE_NOT_FOUND);
	end_store(st);
}

/* A code is redeemed once; presented again it is SPENT, names its family
 * and the verb revoked the family (the tokens issued from it die). */
static void
test_code_redeem_and_replay(void)
{
	struct store *st = new_store();
	struct store_code *c = xcalloc(1, sizeof *c);
	int64_t exp = clock_wall_s() + 3600;
	struct sx x;

	c->client_id = xstrdup("c1");
	c->family = xstrdup("fam1");
	CU_ASSERT_EQUAL(SX(base, x, store_code_put(st, "h1", c, 60000, sx_cb, &x)), STORE_OK);
	SX_START(x);
	store_code_redeem(st, "h1", 3600000, sx_cb, &x);
	CU_ASSERT_EQUAL_FATAL(sx_wait(base, &x), STORE_OK);
	CU_ASSERT_STRING_EQUAL(x.res.code->family, "fam1");
	sx_dispose(&x);
	CU_ASSERT_EQUAL(issue_jti(st, "fam1", "j1", exp, NULL, NULL), STORE_OK);
	CU_ASSERT_FALSE(store_jti_revoked(st, "j1"));
	SX_START(x);
	store_code_redeem(st, "h1", 3600000, sx_cb, &x);
	CU_ASSERT_EQUAL(sx_wait(base, &x), STORE_SPENT);
	CU_ASSERT_STRING_EQUAL(x.res.family, "fam1");
	sx_dispose(&x);
	CU_ASSERT_TRUE(store_jti_revoked(st, "j1"));
	/* Tokens issued into the revoked family are dead at birth. */
	CU_ASSERT_EQUAL(issue_jti(st, "fam1", "j2", exp, NULL, NULL), STORE_REVOKED);
	CU_ASSERT_TRUE(store_jti_revoked(st, "j2"));
	CU_ASSERT_EQUAL(SX(base, x, store_code_redeem(st, "unknown", 1000, sx_cb, &x)),
	    STORE_NOT_FOUND);
	/* After expiry the tombstone is gone: just unknown. */
	clock_advance_fake_ms(60000);
	CU_ASSERT_EQUAL(SX(base, x, store_code_redeem(st, "h1", 1000, sx_cb, &x)), STORE_NOT_FOUND);
	end_store(st);
}

/* get looks without spending; rotate spends and records the next token in
 * one step; a rotated token presented again is SPENT (rotate revokes the
 * family itself; get names it for the caller). */
static void
test_refresh_get_rotate_reuse(void)
{
	struct store *st = new_store();
	struct store_issue is = { .family = "f",
		.jti = "j2",
		.jti_exp = clock_wall_s() + 3600,
		.refresh_hash = "rh2",
		.ttl_ms = 3600000 };
	struct sx x;

	CU_ASSERT_EQUAL(put_refresh(st, "rh", "f"), STORE_OK);
	SX_START(x);
	store_refresh_get(st, "rh", sx_cb, &x);
	CU_ASSERT_EQUAL_FATAL(sx_wait(base, &x), STORE_OK);
	CU_ASSERT_STRING_EQUAL(x.res.refresh->family, "f");
	CU_ASSERT_STRING_EQUAL(x.res.refresh->client_id, "c1");
	sx_dispose(&x);
	is.refresh = refresh_rec("f");
	CU_ASSERT_EQUAL(SX(base, x, store_refresh_rotate(st, "rh", &is, sx_cb, &x)), STORE_OK);
	CU_ASSERT_PTR_NULL(is.refresh); /* the verb took it */
	SX_START(x);
	store_refresh_get(st, "rh", sx_cb, &x);
	CU_ASSERT_EQUAL(sx_wait(base, &x), STORE_SPENT);
	CU_ASSERT_STRING_EQUAL(x.res.family, "f");
	sx_dispose(&x);
	CU_ASSERT_FALSE(store_jti_revoked(st, "j2"));
	/* a second rotation of the spent token: reuse, the family is revoked */
	is.jti = "j3";
	is.refresh_hash = "rh3";
	is.refresh = refresh_rec("f");
	CU_ASSERT_EQUAL(SX(base, x, store_refresh_rotate(st, "rh", &is, sx_cb, &x)), STORE_SPENT);
	CU_ASSERT_TRUE(store_jti_revoked(st, "j2"));
	CU_ASSERT_TRUE(store_jti_revoked(st, "jti-of-rh"));
	/* the family's live token is useless now */
	is.jti = "j4";
	is.refresh_hash = "rh4";
	is.refresh = refresh_rec("f");
	CU_ASSERT_EQUAL(SX(base, x, store_refresh_rotate(st, "rh2", &is, sx_cb, &x)),
	    STORE_REVOKED);
	CU_ASSERT_EQUAL(SX(base, x, store_refresh_get(st, "nope", sx_cb, &x)), STORE_NOT_FOUND);
	end_store(st);
}

/* revoke is owner-checked: another client's token is untouched. */
static void
test_refresh_revoke(void)
{
	struct store *st = new_store();
	struct sx x;

	CU_ASSERT_EQUAL(put_refresh(st, "rh", "f"), STORE_OK);
	CU_ASSERT_EQUAL(SX(base, x, store_refresh_revoke(st, "rh", "c2", 1000, sx_cb, &x)),
	    STORE_FOREIGN);
	CU_ASSERT_EQUAL(SX(base, x, store_refresh_get(st, "rh", sx_cb, &x)), STORE_OK);
	CU_ASSERT_FALSE(store_jti_revoked(st, "jti-of-rh"));
	CU_ASSERT_EQUAL(SX(base, x, store_refresh_revoke(st, "rh", "c1", 1000, sx_cb, &x)),
	    STORE_OK);
	CU_ASSERT_TRUE(store_jti_revoked(st, "jti-of-rh"));
	CU_ASSERT_EQUAL(SX(base, x, store_refresh_revoke(st, "rh", "c1", 1000, sx_cb, &x)),
	    STORE_NOT_FOUND);
	end_store(st);
}

static void
test_family_revocation_denylists_jtis(void)
{
	struct store *st = new_store();
	struct sx x;

	CU_ASSERT_EQUAL(issue_jti(st, "f", "j1", 1700000000 + 3600, NULL, NULL), STORE_OK);
	CU_ASSERT_EQUAL(issue_jti(st, "f", "j2", 1700000000 + 3600, NULL, NULL), STORE_OK);
	CU_ASSERT_FALSE(store_jti_revoked(st, "j1"));
	CU_ASSERT_EQUAL(SX(base, x, store_family_revoke(st, "f", 100000, sx_cb, &x)), STORE_OK);
	CU_ASSERT_TRUE(store_jti_revoked(st, "j1"));
	CU_ASSERT_TRUE(store_jti_revoked(st, "j2"));
	/* Expired tokens need no deny-list entry. */
	CU_ASSERT_EQUAL(SX(base, x, store_jti_revoke(st, "old", 1700000000 - 1, sx_cb, &x)),
	    STORE_OK);
	CU_ASSERT_FALSE(store_jti_revoked(st, "old"));
	/* The deny-list entry outlives the token by the leeway, then goes. */
	clock_advance_fake_ms((3600 + 61) * 1000LL);
	CU_ASSERT_FALSE(store_jti_revoked(st, "j1"));
	CU_ASSERT_TRUE(store_sweep(st) >= 1);
	end_store(st);
}

/* A full table refuses the put and keeps every entry it has (logins in
 * progress are not evictable by others); expired entries make room. */
static void
test_bounded(void)
{
	struct store *st = new_store();
	char key[32];
	size_t found = 0;
	struct sx x;

	for (int i = 0; i < STORE_MAX_PENDING + 10; i++) {
		snprintf(key, sizeof key, "k%d", i);
		CU_ASSERT_EQUAL(SX(base, x,
				    store_pending_put(st, key, pending("x"), 600000, sx_cb, &x)),
		    i < STORE_MAX_PENDING ? STORE_OK : STORE_FULL);
	}
	for (int i = 0; i < 10; i++) {
		snprintf(key, sizeof key, "k%d", i);
		if (SX(base, x, store_pending_take(st, key, sx_cb, &x)) == STORE_OK)
			found++;
	}
	CU_ASSERT_EQUAL(found, 10);
	for (int i = 0; i < 10; i++) { /* taken ones made room */
		snprintf(key, sizeof key, "m%d", i);
		CU_ASSERT_EQUAL(SX(base, x,
				    store_pending_put(st, key, pending("x"), 600000, sx_cb, &x)),
		    STORE_OK);
	}
	/* Once they expired, a full table's sweep makes room. */
	CU_ASSERT_EQUAL(SX(base, x,
			    store_pending_put(st, "later", pending("x"), 600000, sx_cb, &x)),
	    STORE_FULL);
	clock_advance_fake_ms(600001);
	CU_ASSERT_EQUAL(SX(base, x,
			    store_pending_put(st, "later", pending("x"), 600000, sx_cb, &x)),
	    STORE_OK);
	end_store(st);
}

/* The tables that guard security fail closed: a revoked access token never
 * becomes valid again because many others were revoked after it (the old
 * table evicted the oldest entry), a full refresh table refuses new tokens
 * rather than forgetting live ones, and drops the oldest tombstone (a
 * spent token: only its replay detection) before it refuses a rotation. */
static void
test_full_fails_closed(void)
{
	struct store *st = new_store();
	int64_t exp = clock_wall_s() + 3600;
	char key[32];
	struct sx x;
	struct store_issue is = { .family = "f", .jti = "jn", .jti_exp = exp, .ttl_ms = 3600000 };

	CU_ASSERT_EQUAL(SX(base, x, store_jti_revoke(st, "first", exp, sx_cb, &x)), STORE_OK);
	for (int i = 1; i < STORE_MAX_JTIS; i++) {
		snprintf(key, sizeof key, "j%d", i);
		CU_ASSERT_EQUAL(SX(base, x, store_jti_revoke(st, key, exp, sx_cb, &x)), STORE_OK);
	}
	CU_ASSERT_EQUAL(SX(base, x, store_jti_revoke(st, "one-too-many", exp, sx_cb, &x)),
	    STORE_FULL);
	CU_ASSERT_TRUE(store_jti_revoked(st, "first"));
	CU_ASSERT_FALSE(store_jti_revoked(st, "one-too-many"));
	/* A family revocation that cannot deny-list its tokens says so. */
	CU_ASSERT_EQUAL(issue_jti(st, "fam", "fj", exp, NULL, NULL), STORE_OK);
	CU_ASSERT_EQUAL(SX(base, x, store_family_revoke(st, "fam", 3600000, sx_cb, &x)),
	    STORE_FULL);
	CU_ASSERT_EQUAL(issue_jti(st, "fam", "fj2", exp, NULL, NULL), STORE_FULL);
	end_store(st);

	st = new_store();
	CU_ASSERT_EQUAL(put_refresh(st, "r0", "f"), STORE_OK);
	for (int i = 1; i < STORE_MAX_REFRESH; i++) {
		snprintf(key, sizeof key, "r%d", i);
		CU_ASSERT_EQUAL_FATAL(put_refresh(st, key, "g"), STORE_OK);
	}
	/* full of live tokens: a new one (a code exchange's) is refused, and
	 * no live token is forgotten to make room */
	CU_ASSERT_EQUAL(put_refresh(st, "another", "h"), STORE_FULL);
	CU_ASSERT_EQUAL(SX(base, x, store_refresh_get(st, "r1", sx_cb, &x)), STORE_OK);
	/* a rotation replaces one live token with another: the spent one's
	 * tombstone gives way (only its replay detection is lost: a replay of
	 * it is refused as unknown), so rotations go on in a full table */
	is.refresh_hash = "new";
	is.refresh = refresh_rec("f");
	CU_ASSERT_EQUAL(SX(base, x, store_refresh_rotate(st, "r0", &is, sx_cb, &x)), STORE_OK);
	CU_ASSERT_EQUAL(SX(base, x, store_refresh_get(st, "new", sx_cb, &x)), STORE_OK);
	CU_ASSERT_EQUAL(SX(base, x, store_refresh_get(st, "r0", sx_cb, &x)), STORE_NOT_FOUND);
	CU_ASSERT_EQUAL(SX(base, x, store_refresh_get(st, "r2", sx_cb, &x)), STORE_OK);
	end_store(st);
}

static void
test_upstream_cas_and_touch(void)
{
	struct store *st = new_store();
	struct store_upstream *u = xcalloc(1, sizeof *u);
	const struct store_upstream *c;
	uint64_t v = 0, v2 = 0;
	struct sx x;

	u->subject = xstrdup("alice");
	u->access_token = xstrdup("at1");
	CU_ASSERT_EQUAL(SX(base, x, store_upstream_put(st, "tsid", u, 1000, sx_cb, &x)), STORE_OK);
	c = store_upstream_cached(st, "tsid", &v);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_STRING_EQUAL(c->access_token, "at1");
	SX_START(x);
	store_upstream_get(st, "tsid", sx_cb, &x);
	CU_ASSERT_EQUAL_FATAL(sx_wait(base, &x), STORE_OK);
	CU_ASSERT_EQUAL(x.res.version, v);
	CU_ASSERT_STRING_EQUAL(x.res.upstream->access_token, "at1");
	sx_dispose(&x);
	/* the first compare-and-swap wins; the second, on the same version,
	 * gets the winner's tokens */
	u = xcalloc(1, sizeof *u);
	u->access_token = xstrdup("at2");
	SX_START(x);
	store_upstream_cas(st, "tsid", v, u, 1000, sx_cb, &x);
	CU_ASSERT_EQUAL(sx_wait(base, &x), STORE_OK);
	v2 = x.res.version;
	sx_dispose(&x);
	CU_ASSERT_NOT_EQUAL(v2, v);
	u = xcalloc(1, sizeof *u);
	u->access_token = xstrdup("at3");
	SX_START(x);
	store_upstream_cas(st, "tsid", v, u, 1000, sx_cb, &x);
	CU_ASSERT_EQUAL(sx_wait(base, &x), STORE_CONFLICT);
	CU_ASSERT_EQUAL(x.res.version, v2);
	CU_ASSERT_STRING_EQUAL(x.res.upstream->access_token, "at2");
	sx_dispose(&x);
	/* issuing tokens of the session keeps it alive */
	clock_advance_fake_ms(900);
	{
		struct store_issue is = { .family = "f",
			.jti = "j",
			.jti_exp = clock_wall_s() + 60,
			.tsid = "tsid",
			.ttl_ms = 1000 };

		CU_ASSERT_EQUAL(SX(base, x, store_issue(st, &is, sx_cb, &x)), STORE_OK);
	}
	clock_advance_fake_ms(900);
	CU_ASSERT_PTR_NOT_NULL(store_upstream_cached(st, "tsid", NULL));
	clock_advance_fake_ms(200);
	CU_ASSERT_PTR_NULL(store_upstream_cached(st, "tsid", NULL));
	CU_ASSERT_EQUAL(SX(base, x, store_upstream_get(st, "tsid", sx_cb, &x)), STORE_NOT_FOUND);
	u = xcalloc(1, sizeof *u);
	CU_ASSERT_EQUAL(SX(base, x, store_upstream_cas(st, "tsid", v2, u, 1000, sx_cb, &x)),
	    STORE_NOT_FOUND);
	end_store(st);
}

/* The cap: at max clients the one unused longest goes if it was idle
 * longer than the grace, else the registration is refused. Unused
 * clients expire after STORE_CLIENT_IDLE_MS; a lookup slides that. */
static void
test_clients(void)
{
	struct store *st = new_store();
	struct client *a = client_new("a"), *b = client_new("b"), *c = client_new("c");
	struct sx x;

	CU_ASSERT_EQUAL(SX(base, x, store_client_put(st, a, 2, 60000, sx_cb, &x)), STORE_OK);
	clock_advance_fake_ms(1000);
	CU_ASSERT_EQUAL(SX(base, x, store_client_put(st, b, 2, 60000, sx_cb, &x)), STORE_OK);
	CU_ASSERT_EQUAL(store_client_count(st), 2);
	CU_ASSERT_EQUAL(SX(base, x, store_client_put(st, c, 2, 60000, sx_cb, &x)), STORE_FULL);
	clock_advance_fake_ms(60000);
	SX_START(x);
	store_client_get(st, "a", sx_cb, &x); /* a is used: b is the idle one */
	CU_ASSERT_EQUAL_FATAL(sx_wait(base, &x), STORE_OK);
	CU_ASSERT_PTR_EQUAL(x.res.client, a);
	sx_dispose(&x);
	clock_advance_fake_ms(1);
	SX_START(x);
	store_client_put(st, c, 2, 60000, sx_cb, &x);
	CU_ASSERT_EQUAL(sx_wait(base, &x), STORE_OK);
	CU_ASSERT_EQUAL(x.res.evicted, 1);
	sx_dispose(&x);
	CU_ASSERT_EQUAL(SX(base, x, store_client_get(st, "b", sx_cb, &x)), STORE_NOT_FOUND);
	CU_ASSERT_EQUAL(SX(base, x, store_client_get(st, "a", sx_cb, &x)), STORE_OK);
	clock_advance_fake_ms(STORE_CLIENT_IDLE_MS - 1);
	CU_ASSERT_EQUAL(SX(base, x, store_client_get(st, "a", sx_cb, &x)), STORE_OK);
	clock_advance_fake_ms(2);
	CU_ASSERT_EQUAL(SX(base, x, store_client_get(st, "c", sx_cb, &x)), STORE_NOT_FOUND);
	CU_ASSERT_EQUAL(SX(base, x, store_client_get(st, "a", sx_cb, &x)), STORE_OK);
	client_unref(a);
	client_unref(b);
	client_unref(c);
	end_store(st);
}

static enum store_status
seen(struct store *st, const char *client_id, const char *jti, int64_t exp)
{
	struct sx x;

	return SX(base, x, store_assertion_seen(st, client_id, jti, exp, sx_cb, &x));
}

/* Assertion ids are single use per client until exp (+ a minute), and a
 * full table refuses new ids instead of forgetting seen ones. */
static void
test_assertion_jti_seen(void)
{
	struct store *st = new_store();
	const char *c1 = "https://a.example/c.json", *c2 = "https://b.example/c.json";
	char jti[32];
	size_t n;

	CU_ASSERT_EQUAL(seen(st, c1, "j1", 1700000000 + 300), STORE_OK);
	CU_ASSERT_EQUAL(seen(st, c1, "j1", 1700000000 + 300), STORE_REPLAYED);
	/* Another client may use the same jti; the key cannot be spelt across. */
	CU_ASSERT_EQUAL(seen(st, c2, "j1", 1700000000 + 300), STORE_OK);
	CU_ASSERT_EQUAL(seen(st, "ab", "c", 1700000000 + 300), STORE_OK);
	CU_ASSERT_EQUAL(seen(st, "a", "bc", 1700000000 + 300), STORE_OK);
	/* Remembered until exp + 60 s, and not a second longer. */
	clock_set_fake(1700000000 + 359, 1000000 + 359 * 1000);
	CU_ASSERT_EQUAL(seen(st, c1, "j1", 1700000000 + 300), STORE_REPLAYED);
	clock_set_fake(1700000000 + 360, 1000000 + 360 * 1000);
	CU_ASSERT_EQUAL(seen(st, c1, "j1", 1700000000 + 300), STORE_OK);
	end_store(st);

	/* Full: refused, the seen ids stay seen; once they expire, room again. */
	st = new_store();
	for (n = 0; n < STORE_MAX_ASSERTION_JTIS; n++) {
		snprintf(jti, sizeof jti, "j%zu", n);
		if (seen(st, c1, jti, 1700000000 + 60 + (int64_t)(n % 7)) != STORE_OK)
			break;
	}
	CU_ASSERT_EQUAL(n, STORE_MAX_ASSERTION_JTIS);
	CU_ASSERT_EQUAL(seen(st, c1, "one-more", 1700000000 + 60), STORE_FULL);
	CU_ASSERT_EQUAL(seen(st, c1, "j0", 1700000000 + 60), STORE_REPLAYED);
	CU_ASSERT_EQUAL(seen(st, c1, "one-more", 1700000000 + 60), STORE_FULL);
	/* The ids with the shortest lives (n % 7 == 0) expire first. */
	clock_set_fake(1700000000 + 120, 1000000 + 120 * 1000);
	CU_ASSERT_EQUAL(seen(st, c1, "one-more", 1700000000 + 300), STORE_OK);
	CU_ASSERT_EQUAL(seen(st, c1, "j1", 1700000000 + 300), STORE_REPLAYED);
	end_store(st);
}

/* The shared bucket: burst at once, then per_second. */
static void
test_rate_take(void)
{
	struct store *st = new_store();
	struct sx x;

	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(SX(base, x, store_rate_take(st, "register", 1, 3, sx_cb, &x)),
		    STORE_OK);
	SX_START(x);
	store_rate_take(st, "register", 1, 3, sx_cb, &x);
	CU_ASSERT_EQUAL(sx_wait(base, &x), STORE_FULL);
	CU_ASSERT_EQUAL(x.res.retry_after_s, 1);
	sx_dispose(&x);
	clock_advance_fake_ms(1000);
	CU_ASSERT_EQUAL(SX(base, x, store_rate_take(st, "register", 1, 3, sx_cb, &x)), STORE_OK);
	CU_ASSERT_EQUAL(SX(base, x, store_rate_take(st, "register", 1, 3, sx_cb, &x)), STORE_FULL);
	end_store(st);
}

static void
test_end(void)
{
	config_free(cfg);
	cfg = NULL;
	event_base_free(base);
	base = NULL;
}

int
main(void)
{
	static const struct unit_test tests[] = {
		{ "callbacks after the verb returns; cancel", test_async_and_cancel },
		{ "pending: single use and expiry", test_pending_single_use_and_expiry },
		{ "code: redeemed once; a replay revokes the family", test_code_redeem_and_replay },
		{ "refresh: get, rotate, reuse revokes the family", test_refresh_get_rotate_reuse },
		{ "refresh: revoke is owner-checked", test_refresh_revoke },
		{ "family revocation deny-lists its access tokens",
		    test_family_revocation_denylists_jtis },
		{ "tables are bounded", test_bounded },
		{ "full security tables fail closed", test_full_fails_closed },
		{ "upstream sessions: compare-and-swap, kept alive by issuing",
		    test_upstream_cas_and_touch },
		{ "DCR clients: cap, idle eviction, sliding expiry", test_clients },
		{ "assertion jti seen", test_assertion_jti_seen },
		{ "a shared token bucket", test_rate_take },
		{ "(cleanup)", test_end },
		{ NULL, NULL },
	};

	return unit_run("store", tests);
}
