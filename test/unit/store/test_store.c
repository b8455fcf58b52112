/*
 * Unit tests for auth/store_memory: single-use records and their
 * tombstones, expiry on an injected clock, bounds, families and the
 * jti deny-list, DCR client eviction.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/client/client.h"
#include "auth/store/store.h"
#include "common/clock.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "test/unit/unit.h"

static struct store *
new_store(void)
{
	clock_set_fake(1700000000, 1000000);
	return store_new(NULL);
}

static struct store_pending *
pending(const char *state)
{
	struct store_pending *p = xcalloc(1, sizeof *p);

	p->client = client_new("c1");
	p->state = xstrdup(state);
	p->redirect_uri = xstrdup("https://a.example/cb");
	return p;
}

static void
test_pending_single_use_and_expiry(void)
{
	struct store *st = new_store();
	struct store_pending *p;

	store_pending_put(st, "s1", pending("a"), 600000);
	store_pending_put(st, "s2", pending("b"), 600000);
	p = store_pending_take(st, "s1");
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_STRING_EQUAL(p->state, "a");
	store_pending_free(p);
	CU_ASSERT_PTR_NULL(store_pending_take(st, "s1"));
	clock_advance_fake_ms(600000);
	CU_ASSERT_PTR_NULL(store_pending_take(st, "s2"));
	store_free(st);
	clock_set_fake(-1, 0);
}

static void
test_code_tombstone(void)
{
	struct store *st = new_store();
	struct store_code *c = xcalloc(1, sizeof *c);
	char *fam = NULL;

	c->client = client_new("c1");
	c->family = xstrdup("fam1");
	store_code_put(st, "h1", c, 60000);
	c = store_code_take(st, "h1", &fam);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_PTR_NULL(fam);
	store_code_free(c);
	CU_ASSERT_PTR_NULL(store_code_take(st, "h1", &fam));
	CU_ASSERT_PTR_NOT_NULL_FATAL(fam);
	CU_ASSERT_STRING_EQUAL(fam, "fam1");
	free(fam);
	CU_ASSERT_PTR_NULL(store_code_take(st, "unknown", &fam));
	CU_ASSERT_PTR_NULL(fam);
	/* After expiry the tombstone is gone: just unknown. */
	clock_advance_fake_ms(60000);
	CU_ASSERT_PTR_NULL(store_code_take(st, "h1", &fam));
	CU_ASSERT_PTR_NULL(fam);
	store_free(st);
	clock_set_fake(-1, 0);
}

static struct store_refresh *
refresh_rec(const char *family)
{
	struct store_refresh *r = xcalloc(1, sizeof *r);

	r->family = xstrdup(family);
	r->client_id = xstrdup("c1");
	return r;
}

static void
test_refresh_get_take(void)
{
	struct store *st = new_store();
	struct store_refresh *r = refresh_rec("f");
	char *fam = NULL;

	store_refresh_put(st, "rh", r, 1000);
	CU_ASSERT_PTR_NOT_NULL(store_refresh_get(st, "rh"));
	r = store_refresh_take(st, "rh", &fam);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	store_refresh_free(r);
	CU_ASSERT_PTR_NULL(store_refresh_get(st, "rh"));
	CU_ASSERT_PTR_NULL(store_refresh_take(st, "rh", &fam));
	CU_ASSERT_STRING_EQUAL(fam, "f");
	free(fam);
	store_free(st);
	clock_set_fake(-1, 0);
}

static void
test_family_revocation_denylists_jtis(void)
{
	struct store *st = new_store();

	store_family_add_jti(st, "f", "j1", 1700000000 + 3600, 100000);
	store_family_add_jti(st, "f", "j2", 1700000000 + 3600, 100000);
	CU_ASSERT_FALSE(store_family_revoked(st, "f"));
	CU_ASSERT_FALSE(store_jti_revoked(st, "j1"));
	store_family_revoke(st, "f", 100000);
	CU_ASSERT_TRUE(store_family_revoked(st, "f"));
	CU_ASSERT_TRUE(store_jti_revoked(st, "j1"));
	CU_ASSERT_TRUE(store_jti_revoked(st, "j2"));
	/* A token issued into a revoked family is dead at birth. */
	store_family_add_jti(st, "f", "j3", 1700000000 + 3600, 100000);
	CU_ASSERT_TRUE(store_jti_revoked(st, "j3"));
	/* Expired tokens need no deny-list entry. */
	store_jti_revoke(st, "old", 1700000000 - 1);
	CU_ASSERT_FALSE(store_jti_revoked(st, "old"));
	/* The deny-list entry outlives the token by the leeway, then goes. */
	clock_advance_fake_ms((3600 + 61) * 1000LL);
	CU_ASSERT_FALSE(store_jti_revoked(st, "j1"));
	CU_ASSERT_TRUE(store_sweep(st) >= 1);
	store_free(st);
	clock_set_fake(-1, 0);
}

/* A full table refuses the put and keeps every entry it has (logins in
 * progress are not evictable by others); expired entries make room. */
static void
test_bounded(void)
{
	struct store *st = new_store();
	char key[32];
	size_t found = 0;

	for (int i = 0; i < STORE_MAX_PENDING; i++) {
		snprintf(key, sizeof key, "k%d", i);
		CU_ASSERT_TRUE(store_pending_put(st, key, pending("x"), 600000));
	}
	for (int i = STORE_MAX_PENDING; i < STORE_MAX_PENDING + 10; i++) {
		snprintf(key, sizeof key, "k%d", i);
		CU_ASSERT_FALSE(store_pending_put(st, key, pending("x"), 600000));
	}
	for (int i = 0; i < 10; i++) {
		struct store_pending *p;

		snprintf(key, sizeof key, "k%d", i);
		if ((p = store_pending_take(st, key)) != NULL)
			found++;
		store_pending_free(p);
	}
	CU_ASSERT_EQUAL(found, 10);
	for (int i = 0; i < 10; i++) { /* taken ones made room */
		snprintf(key, sizeof key, "m%d", i);
		CU_ASSERT_TRUE(store_pending_put(st, key, pending("x"), 600000));
	}
	/* Once they expired, a full table's sweep makes room. */
	CU_ASSERT_FALSE(store_pending_put(st, "later", pending("x"), 600000));
	clock_advance_fake_ms(600001);
	CU_ASSERT_TRUE(store_pending_put(st, "later", pending("x"), 600000));
	store_free(st);
	clock_set_fake(-1, 0);
}

/* The tables that guard security fail closed: a revoked access token never
 * becomes valid again because many others were revoked after it (the old
 * table evicted the oldest entry), a full refresh table refuses new
 * tokens rather than dropping tombstones, and a taken record can always be
 * put back over its own tombstone. */
static void
test_full_fails_closed(void)
{
	struct store *st = new_store();
	int64_t exp = clock_wall_s() + 3600;
	char key[32], *fam = NULL;
	struct store_refresh *r;

	CU_ASSERT_TRUE(store_jti_revoke(st, "first", exp));
	for (int i = 1; i < STORE_MAX_JTIS; i++) {
		snprintf(key, sizeof key, "j%d", i);
		CU_ASSERT_TRUE(store_jti_revoke(st, key, exp));
	}
	CU_ASSERT_FALSE(store_jti_revoke(st, "one-too-many", exp));
	CU_ASSERT_TRUE(store_jti_revoked(st, "first"));
	CU_ASSERT_FALSE(store_jti_revoked(st, "one-too-many"));
	/* A family revocation that cannot deny-list its tokens says so. */
	CU_ASSERT_TRUE(store_family_add_jti(st, "fam", "fj", exp, 3600000));
	CU_ASSERT_FALSE(store_family_revoke(st, "fam", 3600000));
	CU_ASSERT_TRUE(store_family_revoked(st, "fam"));
	CU_ASSERT_FALSE(store_family_add_jti(st, "fam", "fj2", exp, 3600000));
	store_free(st);

	st = new_store();
	for (int i = 0; i < STORE_MAX_REFRESH; i++) {
		snprintf(key, sizeof key, "r%d", i);
		CU_ASSERT_TRUE(store_refresh_put(st, key, refresh_rec("f"), 3600000));
		if (i > 0)
			store_refresh_free(store_refresh_take(st, key, NULL));
	}
	/* full of one live token and tombstones: the new token is refused */
	CU_ASSERT_FALSE(store_refresh_put(st, "new", refresh_rec("f"), 3600000));
	CU_ASSERT_PTR_NOT_NULL(store_refresh_get(st, "r0"));
	CU_ASSERT_PTR_NULL(store_refresh_take(st, "r1", &fam));
	CU_ASSERT_PTR_NOT_NULL(fam); /* the oldest tombstone still names its family */
	free(fam);
	r = store_refresh_take(st, "r0", NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_TRUE(store_refresh_put(st, "r0", r, 3600000)); /* back over its tombstone */
	CU_ASSERT_PTR_NOT_NULL(store_refresh_get(st, "r0"));
	store_free(st);
	clock_set_fake(-1, 0);
}

static void
test_upstream_touch(void)
{
	struct store *st = new_store();
	struct store_upstream *u = xcalloc(1, sizeof *u), *copy;

	u->subject = xstrdup("alice");
	u->access_token = xstrdup("at");
	store_upstream_put(st, "tsid", u, 1000);
	clock_advance_fake_ms(900);
	store_upstream_touch(st, "tsid", 1000);
	clock_advance_fake_ms(900);
	CU_ASSERT_PTR_NOT_NULL_FATAL(store_upstream_get(st, "tsid"));
	copy = store_upstream_dup(store_upstream_get(st, "tsid"));
	CU_ASSERT_STRING_EQUAL(copy->access_token, "at");
	store_upstream_free(copy);
	clock_advance_fake_ms(200);
	CU_ASSERT_PTR_NULL(store_upstream_get(st, "tsid"));
	store_free(st);
	clock_set_fake(-1, 0);
}

static void
test_client_eviction(void)
{
	struct store *st = new_store();
	struct client *a = client_new("a"), *b = client_new("b");

	a->last_used_ms = 1000;
	b->last_used_ms = 500;
	store_client_put(st, a);
	store_client_put(st, b);
	client_unref(a);
	client_unref(b);
	CU_ASSERT_EQUAL(store_client_count(st), 2);
	CU_ASSERT_FALSE(store_client_evict_idle(st, 400));
	CU_ASSERT_TRUE(store_client_evict_idle(st, 600));
	CU_ASSERT_PTR_NULL(store_client_get(st, "b"));
	CU_ASSERT_PTR_NOT_NULL(store_client_get(st, "a"));
	store_free(st);
	clock_set_fake(-1, 0);
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

	CU_ASSERT_EQUAL(store_jti_seen(st, c1, "j1", 1700000000 + 300), STORE_JTI_NEW);
	CU_ASSERT_EQUAL(store_jti_seen(st, c1, "j1", 1700000000 + 300), STORE_JTI_REPLAYED);
	/* Another client may use the same jti; the key cannot be spelt across. */
	CU_ASSERT_EQUAL(store_jti_seen(st, c2, "j1", 1700000000 + 300), STORE_JTI_NEW);
	CU_ASSERT_EQUAL(store_jti_seen(st, "ab", "c", 1700000000 + 300), STORE_JTI_NEW);
	CU_ASSERT_EQUAL(store_jti_seen(st, "a", "bc", 1700000000 + 300), STORE_JTI_NEW);
	/* Remembered until exp + 60 s, and not a second longer. */
	clock_set_fake(1700000000 + 359, 1000000 + 359 * 1000);
	CU_ASSERT_EQUAL(store_jti_seen(st, c1, "j1", 1700000000 + 300), STORE_JTI_REPLAYED);
	clock_set_fake(1700000000 + 360, 1000000 + 360 * 1000);
	CU_ASSERT_EQUAL(store_jti_seen(st, c1, "j1", 1700000000 + 300), STORE_JTI_NEW);
	store_free(st);

	/* Full: refused, the seen ids stay seen; once they expire, room again. */
	st = new_store();
	for (n = 0; n < STORE_MAX_ASSERTION_JTIS; n++) {
		snprintf(jti, sizeof jti, "j%zu", n);
		if (store_jti_seen(st, c1, jti, 1700000000 + 60 + (int64_t)(n % 7)) !=
		    STORE_JTI_NEW)
			break;
	}
	CU_ASSERT_EQUAL(n, STORE_MAX_ASSERTION_JTIS);
	CU_ASSERT_EQUAL(store_jti_seen(st, c1, "one-more", 1700000000 + 60), STORE_JTI_FULL);
	CU_ASSERT_EQUAL(store_jti_seen(st, c1, "j0", 1700000000 + 60), STORE_JTI_REPLAYED);
	CU_ASSERT_EQUAL(store_jti_seen(st, c1, "one-more", 1700000000 + 60), STORE_JTI_FULL);
	/* The ids with the shortest lives (n % 7 == 0) expire first. */
	clock_set_fake(1700000000 + 120, 1000000 + 120 * 1000);
	CU_ASSERT_EQUAL(store_jti_seen(st, c1, "one-more", 1700000000 + 300), STORE_JTI_NEW);
	CU_ASSERT_EQUAL(store_jti_seen(st, c1, "j1", 1700000000 + 300), STORE_JTI_REPLAYED);
	store_free(st);
	clock_set_fake(-1, 0);
}

int
main(void)
{
	static const struct unit_test tests[] = {
		{ "pending: single use and expiry", test_pending_single_use_and_expiry },
		{ "code: single use leaves a tombstone naming the family", test_code_tombstone },
		{ "refresh: get, take, tombstone", test_refresh_get_take },
		{ "family revocation deny-lists its access tokens",
		    test_family_revocation_denylists_jtis },
		{ "tables are bounded", test_bounded },
		{ "full security tables fail closed", test_full_fails_closed },
		{ "upstream sessions: touch extends", test_upstream_touch },
		{ "DCR clients: idle eviction", test_client_eviction },
		{ "assertion jti seen", test_assertion_jti_seen },
		{ NULL, NULL },
	};

	return unit_run("store", tests);
}
