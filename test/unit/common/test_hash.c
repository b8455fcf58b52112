/*
 * common/hash: SipHash-2-4 against the paper's vectors and OpenSSL's
 * SIPHASH for every length up to 100 bytes; the tables that hash
 * client-chosen keys (CIMD cache, memory store) use it, one implementation, under the process
 * key, so the bucket of a key cannot be predicted without that key.
 */
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdint.h>
#include <string.h>

#include "common/hash.h"
#include "common/random.h"
#include "test/unit/unit.h"

/* The tables' hash functions are file statics: reach them. */
#include "auth/cimd/cimd_cache.c"
#include "auth/store/store_memory.c"

static const uint8_t key0[16] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };

static void
test_reference_vectors(void)
{
	uint8_t m[15];

	for (int i = 0; i < 15; i++)
		m[i] = (uint8_t)i;
	CU_ASSERT_EQUAL(hash_siphash24(key0, m, 0), 0x726fdb47dd0e0e31ULL);
	CU_ASSERT_EQUAL(hash_siphash24(key0, m, 15), 0xa129ca6149be45e5ULL);
}

static uint64_t
openssl_siphash(const uint8_t key[16], const uint8_t *m, size_t n)
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL);
	EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
	size_t size = 8, outl = 0;
	OSSL_PARAM params[] = { OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size),
		OSSL_PARAM_construct_end() };
	uint8_t out[8];
	uint64_t v = 0;

	CU_ASSERT_FATAL(ctx != NULL && EVP_MAC_init(ctx, key, 16, params) == 1);
	EVP_MAC_update(ctx, m, n);
	EVP_MAC_final(ctx, out, &outl, sizeof out);
	CU_ASSERT_EQUAL(outl, 8);
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | out[i];
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	return v;
}

static void
test_matches_openssl(void)
{
	uint8_t key[16], m[100];

	for (int round = 0; round < 4; round++) {
		random_bytes(key, sizeof key);
		random_bytes(m, sizeof m);
		for (size_t n = 0; n <= sizeof m; n++)
			CU_ASSERT_EQUAL(hash_siphash24(key, m, n), openssl_siphash(key, m, n));
	}
}

static void
test_tables_use_the_process_key(void)
{
	static const char url[] = "https://client.example/oauth/metadata.json";
	uint8_t k1[16], k2[16];
	uint64_t h1, h2;

	random_bytes(k1, sizeof k1);
	random_bytes(k2, sizeof k2);
	hash_set_key(k1);
	h1 = cimd_cache_hash(url);
	CU_ASSERT_EQUAL(h1, hash_siphash24(k1, url, strlen(url)));
	CU_ASSERT_EQUAL(hash_str(url), h1);
	hash_set_key(k2);
	h2 = cimd_cache_hash(url);
	CU_ASSERT_EQUAL(h2, hash_siphash24(k2, url, strlen(url)));
	CU_ASSERT_NOT_EQUAL(h1, h2);
	CU_ASSERT_EQUAL(mem_hash(url), h2); /* the store: the same function */
	/* The cache still finds what it holds under the key of the moment. */
	{
		struct cimd_cache *cc = cimd_cache_new(4);
		struct cimd_cache_meta meta = { .expires_ms = 1000 };
		struct client *c = client_new(url);

		cimd_cache_put(cc, url, c, &meta);
		client_unref(c);
		CU_ASSERT_PTR_NOT_NULL(cimd_cache_peek(cc, url));
		cimd_cache_free(cc);
	}
	hash_set_key(NULL);
}

static const struct unit_test tests[] = {
	{ "SipHash-2-4 reference vectors", test_reference_vectors },
	{ "SipHash-2-4 equals OpenSSL SIPHASH at every length", test_matches_openssl },
	{ "the CIMD cache and the memory store hash with the process key",
	    test_tables_use_the_process_key },
	{ NULL, NULL },
};

int
main(void)
{
	return unit_run("hash", tests);
}
