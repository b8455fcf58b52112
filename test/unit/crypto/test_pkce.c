/*
 * Unit tests for auth/pkce: the RFC 7636 Appendix B vector, wrong
 * verifiers and syntax rules.
 */
#include <stdlib.h>
#include <string.h>

#include "auth/crypto/pkce.h"
#include "test/unit/unit.h"

/* RFC 7636 Appendix B, checked against `openssl dgst -sha256`. */
#define RFC_VERIFIER "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
#define RFC_CHALLENGE "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"

static void
test_rfc7636_vector(void)
{
	char *c = pkce_challenge_s256(RFC_VERIFIER);

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_STRING_EQUAL(c, RFC_CHALLENGE);
	free(c);
	CU_ASSERT_EQUAL(pkce_verify(RFC_VERIFIER, RFC_CHALLENGE), 0);
}

static void
test_wrong_verifier(void)
{
	CU_ASSERT_EQUAL(pkce_verify("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj",
	    RFC_CHALLENGE), -1);
	CU_ASSERT_EQUAL(pkce_verify(RFC_VERIFIER,
	    "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cA"), -1);
	/* A misquoted vector that circulates: it must not verify either. */
	CU_ASSERT_EQUAL(pkce_verify("dBjftJeZ4CVP-1mo8Yq4zrE9VMkLhcN-TbeL8xnk4Uw",
	    "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGwSstw-cM"), -1);
	/* The verifier itself as challenge ("plain") must not pass. */
	CU_ASSERT_EQUAL(pkce_verify(RFC_VERIFIER, RFC_VERIFIER), -1);
	CU_ASSERT_EQUAL(pkce_verify(NULL, RFC_CHALLENGE), -1);
	CU_ASSERT_EQUAL(pkce_verify(RFC_VERIFIER, NULL), -1);
}

static void
test_verifier_syntax(void)
{
	static const struct {
		const char *v;
		bool ok;
	} t[] = {
		{ RFC_VERIFIER, true },
		{ "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ", true },
		{ "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP", false },
		{ "a-b.c_d~e0123456789012345678901234567890123", true },
		{ "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP+", false },
		{ "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP/", false },
		{ "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP=", false },
		{ "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP ", false },
		{ "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP\xc3", false },
		{ "", false },
	};
	char longv[130];
	char *c;

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		CU_ASSERT_EQUAL(pkce_verifier_valid(t[i].v), t[i].ok);
		c = pkce_challenge_s256(t[i].v);
		CU_ASSERT_EQUAL(c != NULL, t[i].ok);
		free(c);
	}
	memset(longv, 'a', sizeof longv);
	longv[128] = '\0';
	CU_ASSERT_TRUE(pkce_verifier_valid(longv));
	longv[128] = 'a';
	longv[129] = '\0';
	CU_ASSERT_FALSE(pkce_verifier_valid(longv));
	CU_ASSERT_FALSE(pkce_verifier_valid(NULL));
}

static void
test_challenge_syntax(void)
{
	CU_ASSERT_TRUE(pkce_challenge_valid(RFC_CHALLENGE));
	CU_ASSERT_FALSE(pkce_challenge_valid(RFC_CHALLENGE "A"));
	CU_ASSERT_FALSE(pkce_challenge_valid("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c"));
	CU_ASSERT_FALSE(pkce_challenge_valid("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM"));
	CU_ASSERT_FALSE(pkce_challenge_valid("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c="));
	/* Non-canonical last character (low bits set). */
	CU_ASSERT_FALSE(pkce_challenge_valid("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN"));
	CU_ASSERT_FALSE(pkce_challenge_valid(NULL));
	CU_ASSERT_TRUE(pkce_method_supported("S256"));
	CU_ASSERT_FALSE(pkce_method_supported("plain"));
	CU_ASSERT_FALSE(pkce_method_supported("s256"));
	CU_ASSERT_FALSE(pkce_method_supported(NULL));
}

int
main(void)
{
	static const struct unit_test tests[] = {
		{ "rfc7636_appendix_b", test_rfc7636_vector },
		{ "wrong_verifier", test_wrong_verifier },
		{ "verifier_syntax", test_verifier_syntax },
		{ "challenge_syntax", test_challenge_syntax },
		{ NULL, NULL },
	};

	return unit_run("pkce", tests);
}
