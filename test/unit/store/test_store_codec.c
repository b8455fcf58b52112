/*
 * Unit tests for auth/store/store_codec: every record survives the round
 * trip field for field (NULL strings stay NULL), and texts that are not
 * such a record are refused rather than half-read.
 */
#include <stdlib.h>
#include <string.h>

#include "auth/store/store.h"
#include "auth/store/store_codec.h"
#include "common/xalloc.h"
#include "test/unit/unit.h"

static void
test_roundtrips(void)
{
	struct store_pending p = { .client_id = "c1", .redirect_uri = "https://a.example/cb",
		.redirect_uri_sent = true, .code_challenge = "ch", .scope = "a b",
		.upstream_verifier = "v\"\\/\n", .nonce = "n" };
	struct store_code c = { .client_id = "c1", .redirect_uri = "https://a.example/cb",
		.scope = "mcp", .resource = "https://r.example/mcp", .tsid = "t", .subject = "s",
		.family = "f" };
	struct store_refresh r = { .family = "f", .client_id = "c1", .scope = "mcp",
		.expires_at = 1700000000123LL };
	struct store_upstream u = { .subject = "s", .access_token = "at", .refresh_token = "rt",
		.claims_json = "{\"sub\":\"s\",\"x\":[1,2]}", .expires_at = -5 };
	char *t;
	struct store_pending *p2;
	struct store_code *c2;
	struct store_refresh *r2;
	struct store_upstream *u2;

	t = store_pending_encode(&p);
	p2 = store_pending_decode(t, strlen(t));
	CU_ASSERT_PTR_NOT_NULL_FATAL(p2);
	CU_ASSERT_STRING_EQUAL(p2->client_id, "c1");
	CU_ASSERT_TRUE(p2->redirect_uri_sent);
	CU_ASSERT_STRING_EQUAL(p2->upstream_verifier, "v\"\\/\n");
	CU_ASSERT_PTR_NULL(p2->state);
	CU_ASSERT_PTR_NULL(p2->resource);
	store_pending_free(p2);
	free(t);

	t = store_code_encode(&c);
	c2 = store_code_decode(t, strlen(t));
	CU_ASSERT_PTR_NOT_NULL_FATAL(c2);
	CU_ASSERT_STRING_EQUAL(c2->family, "f");
	CU_ASSERT_STRING_EQUAL(c2->resource, "https://r.example/mcp");
	CU_ASSERT_FALSE(c2->redirect_uri_sent);
	CU_ASSERT_PTR_NULL(c2->code_challenge);
	store_code_free(c2);
	free(t);

	t = store_refresh_encode(&r);
	r2 = store_refresh_decode(t, strlen(t));
	CU_ASSERT_PTR_NOT_NULL_FATAL(r2);
	CU_ASSERT_EQUAL(r2->expires_at, 1700000000123LL);
	CU_ASSERT_STRING_EQUAL(r2->client_id, "c1");
	store_refresh_free(r2);
	free(t);

	t = store_upstream_encode(&u);
	u2 = store_upstream_decode(t, strlen(t));
	CU_ASSERT_PTR_NOT_NULL_FATAL(u2);
	CU_ASSERT_STRING_EQUAL(u2->access_token, "at");
	CU_ASSERT_STRING_EQUAL(u2->claims_json, "{\"sub\":\"s\",\"x\":[1,2]}");
	CU_ASSERT_PTR_NULL(u2->id_token);
	CU_ASSERT_EQUAL(u2->expires_at, -5);
	store_upstream_free(u2);
	free(t);
}

static void
test_refused(void)
{
	static const char *const bad_code[] = {
		"",
		"null",
		"[]",
		"{\"client_id\":\"c\"}",                       /* no family */
		"{\"client_id\":1,\"family\":\"f\"}",          /* a number */
		"{\"client_id\":\"c\",\"family\":\"f\"} x",    /* trailing bytes */
		"{\"client_id\":\"c\",\"family\":\"f\",\"redirect_uri_sent\":\"yes\"}",
		"{\"client_id\":\"c\\u0000d\",\"family\":\"f\"}", /* a NUL inside */
		"{\"client_id\":\"c\",\"family\":\"f\"",
	};
	struct store_code *c;

	for (size_t i = 0; i < sizeof bad_code / sizeof bad_code[0]; i++) {
		c = store_code_decode(bad_code[i], strlen(bad_code[i]));
		CU_ASSERT_PTR_NULL(c);
		store_code_free(c);
	}
	/* unknown fields are a newer replica's: ignored */
	{
		const char *t = "{\"client_id\":\"c\",\"family\":\"f\",\"new\":{\"x\":1}}";

		c = store_code_decode(t, strlen(t));
	}
	CU_ASSERT_PTR_NOT_NULL(c);
	store_code_free(c);
	{
		const char *t = "{\"family\":\"f\",\"client_id\":\"c\",\"expires_at\":\"soon\"}";

		CU_ASSERT_PTR_NULL(store_refresh_decode(t, strlen(t)));
	}
}

int
main(void)
{
	static const struct unit_test tests[] = {
		{ "records round-trip", test_roundtrips },
		{ "what is not a record is refused", test_refused },
		{ NULL, NULL },
	};

	return unit_run("store_codec", tests);
}
