/*
 * Unit tests for auth/store/seal: round trip, binding to the store key
 * (aad), tampering, unknown and rotated keys, and key parsing.
 */
#include "auth/store/seal.h"

#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "test/unit/unit.h"

/* 32 bytes 0x00..0x1f, standard base64 with padding and a newline */
#define KEY_A_STD "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
/* 32 bytes 0xff.., URL alphabet, no padding */
#define KEY_B_URL "__________________________________________8"

static struct seal *
ring(const char *const *texts, size_t n)
{
	struct seal *s = seal_new();
	unsigned char key[SEAL_KEY_LEN];
	char err[128];

	for (size_t i = 0; i < n; i++) {
		CU_ASSERT_EQUAL_FATAL(seal_key_parse(texts[i], key, err, sizeof err), 0);
		CU_ASSERT_EQUAL(seal_add_key(s, key), 0);
	}
	return s;
}

static void
test_round_trip_and_binding(void)
{
	const char *a[] = { KEY_A_STD };
	struct seal *s = ring(a, 1);
	const char *msg = "{\"access_token\":\"upstream-secret\"}";
	char *sealed, *again, *plain = NULL, *bad;
	size_t len;

	sealed = seal_seal(s, msg, strlen(msg), "mcp:{t1}:upstream");
	CU_ASSERT_PTR_NULL(strstr(sealed, "upstream-secret"));
	CU_ASSERT_EQUAL(strncmp(sealed, "s1.", 3), 0);
	CU_ASSERT_EQUAL(strncmp(sealed + 3, seal_current_kid(s), 16), 0);
	CU_ASSERT_EQUAL(seal_open(s, sealed, "mcp:{t1}:upstream", &plain, &len), 0);
	CU_ASSERT_EQUAL(len, strlen(msg));
	CU_ASSERT_STRING_EQUAL(plain, msg);
	xfree_secret(plain);
	/* another store key: does not open */
	CU_ASSERT_EQUAL(seal_open(s, sealed, "mcp:{t2}:upstream", &plain, &len), -1);
	CU_ASSERT_PTR_NULL(plain);
	/* a fresh nonce each time */
	again = seal_seal(s, msg, strlen(msg), "mcp:{t1}:upstream");
	CU_ASSERT_STRING_NOT_EQUAL(sealed, again);
	/* one changed character anywhere after the key id: refused */
	for (size_t i = 20; i < strlen(sealed); i += 7) {
		bad = xstrdup(sealed);
		bad[i] = bad[i] == 'A' ? 'B' : 'A';
		CU_ASSERT_EQUAL(seal_open(s, bad, "mcp:{t1}:upstream", &plain, &len), -1);
		free(bad);
	}
	CU_ASSERT_EQUAL(seal_open(s, "s1.", "x", &plain, &len), -1);
	CU_ASSERT_EQUAL(seal_open(s, "plain text", "x", &plain, &len), -1);
	CU_ASSERT_EQUAL(seal_open(s, "s1.0123456789abcdef.AAAA", "x", &plain, &len), -1);
	/* an empty value seals too */
	free(again);
	again = seal_seal(s, "", 0, "k");
	CU_ASSERT_EQUAL(seal_open(s, again, "k", &plain, &len), 0);
	CU_ASSERT_EQUAL(len, 0);
	xfree_secret(plain);
	free(again);
	free(sealed);
	seal_free(s);
}

static void
test_rotation(void)
{
	const char *a[] = { KEY_A_STD }, *ba[] = { KEY_B_URL, KEY_A_STD }, *b[] = { KEY_B_URL };
	struct seal *old = ring(a, 1), *both = ring(ba, 2), *onlyb = ring(b, 1);
	char *sealed_a = seal_seal(old, "x", 1, "k"), *sealed_b, *plain;
	size_t len;

	CU_ASSERT_STRING_NOT_EQUAL(seal_current_kid(old), seal_current_kid(onlyb));
	/* the new ring seals with B and still opens what A sealed */
	sealed_b = seal_seal(both, "y", 1, "k");
	CU_ASSERT_EQUAL(strncmp(sealed_b + 3, seal_current_kid(onlyb), 16), 0);
	CU_ASSERT_EQUAL(seal_open(both, sealed_a, "k", &plain, &len), 0);
	CU_ASSERT_STRING_EQUAL(plain, "x");
	xfree_secret(plain);
	/* B alone does not know A's values; A alone not B's */
	CU_ASSERT_EQUAL(seal_open(onlyb, sealed_a, "k", &plain, &len), -1);
	CU_ASSERT_EQUAL(seal_open(old, sealed_b, "k", &plain, &len), -1);
	free(sealed_a);
	free(sealed_b);
	seal_free(old);
	seal_free(both);
	seal_free(onlyb);
}

/* The Secret's text: keys one per line, the first seals, all open. */
static void
test_keys_text(void)
{
	struct seal *old = seal_new(), *both = seal_new(), *bad = seal_new();
	char err[160], *sealed, *plain;
	size_t len;

	CU_ASSERT_EQUAL(seal_add_keys_text(old, KEY_A_STD "\n", err, sizeof err), 1);
	CU_ASSERT_EQUAL(seal_add_keys_text(both, "\n" KEY_B_URL "\r\n\n  " KEY_A_STD "\n", err,
			    sizeof err),
	    2);
	sealed = seal_seal(old, "x", 1, "k");
	CU_ASSERT_EQUAL(seal_open(both, sealed, "k", &plain, &len), 0);
	xfree_secret(plain);
	free(sealed);
	sealed = seal_seal(both, "y", 1, "k");
	CU_ASSERT_EQUAL(seal_open(old, sealed, "k", &plain, &len), -1); /* B seals now */
	free(sealed);
	CU_ASSERT_EQUAL(seal_add_keys_text(bad, "\n \n", err, sizeof err), -1);
	CU_ASSERT_STRING_EQUAL(err, "no encryption key");
	CU_ASSERT_EQUAL(seal_add_keys_text(bad, KEY_A_STD "\nnot-a-key\n", err, sizeof err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "32 bytes"));
	seal_free(old);
	seal_free(both);
	seal_free(bad);
}

static void
test_key_parse(void)
{
	unsigned char k1[SEAL_KEY_LEN], k2[SEAL_KEY_LEN];
	char err[160];
	struct seal *s = seal_new();

	CU_ASSERT_EQUAL(seal_key_parse(KEY_A_STD, k1, err, sizeof err), 0);
	CU_ASSERT_EQUAL(k1[0], 0);
	CU_ASSERT_EQUAL(k1[31], 31);
	CU_ASSERT_EQUAL(seal_key_parse("  AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8  ", k2, err,
			    sizeof err),
	    0);
	CU_ASSERT_EQUAL(memcmp(k1, k2, sizeof k1), 0);
	CU_ASSERT_EQUAL(seal_key_parse("", k1, err, sizeof err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "32 bytes"));
	CU_ASSERT_EQUAL(seal_key_parse("c2hvcnQ=", k1, err, sizeof err), -1); /* 5 bytes */
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "32 bytes"));
	CU_ASSERT_EQUAL(seal_key_parse("not base64 at all!!", k1, err, sizeof err), -1);
	/* a 33-byte key is not a 32-byte key */
	CU_ASSERT_EQUAL(seal_key_parse("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g", k1, err,
			    sizeof err),
	    -1);
	/* the ring refuses the same key twice */
	CU_ASSERT_EQUAL(seal_key_parse(KEY_A_STD, k1, err, sizeof err), 0);
	CU_ASSERT_EQUAL(seal_add_key(s, k1), 0);
	CU_ASSERT_EQUAL(seal_add_key(s, k1), -1);
	seal_free(s);
}

int
main(void)
{
	static const struct unit_test tests[] = {
		{ "round trip, bound to the store key, tamper-evident",
		    test_round_trip_and_binding },
		{ "key rotation: seal with the first, open with any", test_rotation },
		{ "key parsing", test_key_parse },
		{ "keys from a Secret's text, one per line", test_keys_text },
		{ NULL, NULL },
	};

	return unit_run("seal", tests);
}
