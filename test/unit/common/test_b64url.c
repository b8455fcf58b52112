/*
 * Unit tests for auth/b64url and auth/random: round trips, RFC 4648
 * vectors and every input the strict decoder must refuse.
 */
#include <stdlib.h>
#include <string.h>

#include "common/b64url.h"
#include "common/random.h"
#include "test/unit/unit.h"

static void
test_vectors(void)
{
	static const struct {
		const char *in;
		const char *out;
	} v[] = {
		{ "", "" }, { "f", "Zg" }, { "fo", "Zm8" }, { "foo", "Zm9v" },
		{ "foob", "Zm9vYg" }, { "fooba", "Zm9vYmE" },
		{ "foobar", "Zm9vYmFy" }, { "\xfb\xff", "-_8" },
		{ "\xff\xff\xbe", "__--" },
	};
	unsigned char *dec;
	size_t n;
	char *enc;

	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		enc = b64url_encode(v[i].in, strlen(v[i].in));
		CU_ASSERT_STRING_EQUAL(enc, v[i].out);
		CU_ASSERT_EQUAL(strlen(enc), b64url_encoded_len(strlen(v[i].in)));
		free(enc);
		CU_ASSERT_EQUAL_FATAL(b64url_decode(v[i].out, strlen(v[i].out),
		    &dec, &n), 0);
		CU_ASSERT_EQUAL(n, strlen(v[i].in));
		CU_ASSERT(memcmp(dec, v[i].in, n) == 0);
		CU_ASSERT_EQUAL(dec[n], '\0');
		free(dec);
	}
}

static void
test_round_trip_all_lengths(void)
{
	unsigned char buf[300], *dec;
	size_t n;
	char *enc;

	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (unsigned char)(i * 7 + 3);
	for (size_t len = 0; len <= sizeof buf; len++) {
		enc = b64url_encode(buf, len);
		CU_ASSERT_EQUAL_FATAL(b64url_decode(enc, strlen(enc), &dec,
		    &n), 0);
		CU_ASSERT_EQUAL(n, len);
		CU_ASSERT(memcmp(dec, buf, len) == 0);
		free(dec);
		free(enc);
	}
}

static void
test_rejections(void)
{
	static const char *bad[] = {
		"Zg==",		/* padding */
		"Zg=",
		"Zm8=",
		"a+b/",		/* standard alphabet */
		"ab+c",
		"ab/c",
		"Zm9v Yg",	/* whitespace */
		"Zm9v\nYg",
		"Zm9v\tYg",
		" Zg",
		"Zg ",
		"Z",		/* length % 4 == 1 */
		"Zm9vY",
		"Zh",		/* non-canonical trailing bits */
		"Zm9",		/* "Zm8" is canonical */
		"Zm-",
		"__9",
		"Zm9v\x80g",	/* non-ASCII */
		"Zm.v",
	};
	unsigned char *dec = (unsigned char *)"x", buf[16];
	size_t n;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		CU_ASSERT_EQUAL(b64url_decode(bad[i], strlen(bad[i]), &dec, &n),
		    -1);
		CU_ASSERT_PTR_NULL(dec);
	}
	/* An embedded NUL is not part of the alphabet. */
	CU_ASSERT_EQUAL(b64url_decode("Zm\0v", 4, &dec, &n), -1);
	/* Too small a destination. */
	CU_ASSERT_EQUAL(b64url_decode_buf("Zm9vYmFy", 8, buf, 5, &n), -1);
	CU_ASSERT_EQUAL(b64url_decode_buf("Zm9vYmFy", 8, buf, 6, &n), 0);
	CU_ASSERT_EQUAL(n, 6);
}

static void
test_random_token(void)
{
	char *a = random_token(32), *b = random_token(32);
	unsigned char *dec;
	size_t n;

	CU_ASSERT_EQUAL(strlen(a), 43);
	CU_ASSERT_STRING_NOT_EQUAL(a, b);
	CU_ASSERT_EQUAL(b64url_decode(a, strlen(a), &dec, &n), 0);
	CU_ASSERT_EQUAL(n, 32);
	free(dec);
	free(a);
	free(b);
}

static void
test_random_uuid(void)
{
	char *u = random_uuid_v4(), *w = random_uuid_v4();

	CU_ASSERT_EQUAL_FATAL(strlen(u), 36);
	for (size_t i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			CU_ASSERT_EQUAL(u[i], '-');
		} else {
			CU_ASSERT_PTR_NOT_NULL(strchr("0123456789abcdef", u[i]));
		}
	}
	CU_ASSERT_EQUAL(u[14], '4');
	CU_ASSERT_PTR_NOT_NULL(strchr("89ab", u[19]));
	CU_ASSERT_STRING_NOT_EQUAL(u, w);
	free(u);
	free(w);
}

int
main(void)
{
	static const struct unit_test tests[] = {
		{ "vectors", test_vectors },
		{ "round_trip_all_lengths", test_round_trip_all_lengths },
		{ "rejections", test_rejections },
		{ "random_token", test_random_token },
		{ "random_uuid_v4", test_random_uuid },
		{ NULL, NULL },
	};

	return unit_run("b64url", tests);
}
