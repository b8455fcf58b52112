/*
 * Unit tests for auth/client/client_codec: a DCR client survives the
 * round trip (the secret as its hash, inline keys as their public JWKS,
 * still verifying), and stored texts that are not a client are refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/client/client.h"
#include "auth/client/client_codec.h"
#include "auth/crypto/keyset.h"
#include "common/xalloc.h"
#include "test/unit/unit.h"

static void
test_roundtrip(void)
{
	struct client *c = client_new("dcr-1"), *d;
	char err[256], *t, *pub;

	c->client_name = xstrdup("App");
	c->application_type = xstrdup("native");
	c->token_endpoint_auth_method = xstrdup("private_key_jwt");
	c->token_endpoint_auth_signing_alg = xstrdup("ES256");
	c->also_none = true;
	for (int i = 0; i < 32; i++)
		c->secret_hash[i] = (unsigned char)i;
	c->has_secret = true;
	strlist_add(&c->redirect_uris, "http://127.0.0.1/cb");
	strlist_add(&c->redirect_uris, "cursor://cb");
	strlist_add(&c->grant_types, "authorization_code");
	strlist_add(&c->scopes, "mcp");
	c->created_at = 1700000000;
	{
		struct keyset *priv = keyset_new();

		CU_ASSERT_EQUAL_FATAL(keyset_generate_es256(priv, err, sizeof err), 0);
		pub = keyset_jwks_json(priv);
		keyset_free(priv);
		c->jwks = keyset_from_jwks(pub, strlen(pub), err, sizeof err);
		CU_ASSERT_PTR_NOT_NULL_FATAL(c->jwks);
	}
	t = client_to_json(c);
	CU_ASSERT_PTR_NULL(strstr(t, "\"d\"")); /* never a private part */
	d = client_from_json(t, strlen(t), err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_STRING_EQUAL(d->client_id, "dcr-1");
	CU_ASSERT_STRING_EQUAL(d->client_name, "App");
	CU_ASSERT_STRING_EQUAL(d->application_type, "native");
	CU_ASSERT_STRING_EQUAL(d->token_endpoint_auth_signing_alg, "ES256");
	CU_ASSERT_TRUE(d->also_none);
	CU_ASSERT_TRUE(d->has_secret);
	CU_ASSERT_EQUAL(memcmp(d->secret_hash, c->secret_hash, 32), 0);
	CU_ASSERT_EQUAL(d->redirect_uris.n, 2);
	CU_ASSERT_STRING_EQUAL(d->redirect_uris.v[1], "cursor://cb");
	CU_ASSERT_TRUE(strlist_contains(&d->scopes, "mcp"));
	CU_ASSERT_EQUAL(d->created_at, 1700000000);
	CU_ASSERT_FALSE(d->is_cimd);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d->jwks);
	CU_ASSERT_EQUAL(keyset_count(d->jwks), 1);
	CU_ASSERT_STRING_EQUAL(keyset_key_kid(keyset_at(d->jwks, 0)),
	    keyset_key_kid(keyset_at(c->jwks, 0)));
	client_unref(d);
	free(t);
	free(pub);

	/* a public client: no secret, no keys */
	client_unref(c);
	c = client_new("dcr-2");
	t = client_to_json(c);
	d = client_from_json(t, strlen(t), err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_FALSE(d->has_secret);
	CU_ASSERT_PTR_NULL(d->jwks);
	CU_ASSERT_PTR_NULL(d->client_name);
	client_unref(d);
	client_unref(c);
	free(t);
}

static void
test_refused(void)
{
	static const char *const bad[] = {
		"",
		"{}",
		"{\"client_id\":\"\"}",
		"{\"client_id\":\"x\",\"redirect_uris\":\"https://a/cb\"}",
		"{\"client_id\":\"x\",\"redirect_uris\":[1]}",
		"{\"client_id\":\"x\",\"secret_sha256\":\"short\"}",
		"{\"client_id\":\"x\",\"jwks\":\"{\\\"keys\\\":[]}\"}",
		"{\"client_id\":\"x\",\"created_at\":\"now\"}",
		"{\"client_id\":\"x\"} {}",
	};
	char err[256];

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct client *c = client_from_json(bad[i], strlen(bad[i]), err, sizeof err);

		CU_ASSERT_PTR_NULL(c);
		CU_ASSERT_STRING_NOT_EQUAL(err, "");
		client_unref(c);
	}
}

int
main(void)
{
	static const struct unit_test tests[] = {
		{ "a DCR client round-trips", test_roundtrip },
		{ "what is not a client is refused", test_refused },
		{ NULL, NULL },
	};

	return unit_run("client_codec", tests);
}
