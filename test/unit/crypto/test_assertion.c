/*
 * Unit tests for auth/crypto/assertion: RFC 7523 client assertions signed
 * with RS256, PS256, ES256 and EdDSA keys given as a public JWKS (as a
 * client's jwks_uri or inline jwks would give them), and each way one can
 * be wrong.
 */
#include "auth/crypto/assertion.h"

#include <json-c/json.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/b64url.h"
#include "common/clock.h"
#include "common/xalloc.h"
#include "test/unit/unit.h"

#define CLIENT "https://chatgpt.example/oauth/client.json"
#define TOKEN_EP "https://auth.example/oauth/token"
#define ISSUER "https://auth.example"
#define NOW 1800000000

static const char *const auds[] = { TOKEN_EP, ISSUER };

static EVP_PKEY *rsa, *ec, *ed, *other_rsa;

static char *
b64(const void *p, size_t n)
{
	return b64url_encode(p, n);
}

/* A JWK (public) for pkey with kid and alg. */
static json_object *
jwk_of(EVP_PKEY *pkey, const char *kid, const char *alg)
{
	json_object *j = json_object_new_object();
	unsigned char buf[512];
	size_t n;
	BIGNUM *bn = NULL;
	char *s;

	if (EVP_PKEY_is_a(pkey, "RSA")) {
		json_object_object_add(j, "kty", json_object_new_string("RSA"));
		EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &bn);
		n = (size_t)BN_bn2bin(bn, buf);
		s = b64(buf, n);
		json_object_object_add(j, "n", json_object_new_string(s));
		free(s);
		BN_free(bn);
		bn = NULL;
		EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &bn);
		n = (size_t)BN_bn2bin(bn, buf);
		s = b64(buf, n);
		json_object_object_add(j, "e", json_object_new_string(s));
		free(s);
		BN_free(bn);
	} else if (EVP_PKEY_is_a(pkey, "EC")) {
		json_object_object_add(j, "kty", json_object_new_string("EC"));
		json_object_object_add(j, "crv", json_object_new_string("P-256"));
		EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, &bn);
		BN_bn2binpad(bn, buf, 32);
		s = b64(buf, 32);
		json_object_object_add(j, "x", json_object_new_string(s));
		free(s);
		BN_free(bn);
		bn = NULL;
		EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &bn);
		BN_bn2binpad(bn, buf, 32);
		s = b64(buf, 32);
		json_object_object_add(j, "y", json_object_new_string(s));
		free(s);
		BN_free(bn);
	} else {
		n = sizeof buf;
		EVP_PKEY_get_raw_public_key(pkey, buf, &n);
		json_object_object_add(j, "kty", json_object_new_string("OKP"));
		json_object_object_add(j, "crv", json_object_new_string("Ed25519"));
		s = b64(buf, n);
		json_object_object_add(j, "x", json_object_new_string(s));
		free(s);
	}
	json_object_object_add(j, "kid", json_object_new_string(kid));
	json_object_object_add(j, "use", json_object_new_string("sig"));
	if (alg != NULL)
		json_object_object_add(j, "alg", json_object_new_string(alg));
	return j;
}

/* The client's keys: rsa as "r1" (RS256) and "p1" (PS256), ec "e1", ed "d1". */
static struct keyset *
client_keys(void)
{
	json_object *doc = json_object_new_object(), *keys = json_object_new_array();
	struct keyset *ks;
	char err[256];
	const char *s;

	json_object_array_add(keys, jwk_of(rsa, "r1", "RS256"));
	json_object_array_add(keys, jwk_of(rsa, "p1", "PS256"));
	json_object_array_add(keys, jwk_of(ec, "e1", "ES256"));
	json_object_array_add(keys, jwk_of(ed, "d1", NULL));
	json_object_object_add(doc, "keys", keys);
	s = json_object_to_json_string(doc);
	ks = keyset_from_jwks(s, strlen(s), err, sizeof err);
	if (ks == NULL)
		fprintf(stderr, "client_keys: %s\n", err);
	json_object_put(doc);
	return ks;
}

/* ECDSA DER signature to JOSE R||S (32 bytes each). */
static void
der_to_raw(const unsigned char *der, size_t len, unsigned char *raw)
{
	ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &der, (long)len);
	const BIGNUM *r, *s;

	ECDSA_SIG_get0(sig, &r, &s);
	BN_bn2binpad(r, raw, 32);
	BN_bn2binpad(s, raw + 32, 32);
	ECDSA_SIG_free(sig);
}

/* A compact JWS of header and payload signed with pkey as alg. */
static char *
sign(EVP_PKEY *pkey, const char *alg, const char *header, const char *payload)
{
	char *h = b64(header, strlen(header)), *p = b64(payload, strlen(payload));
	char *input = xasprintf("%s.%s", h, p), *sig64, *out;
	unsigned char sig[1024], raw[64];
	size_t n = sizeof sig;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	const char *md = strcmp(alg, "EdDSA") == 0 ? NULL : "SHA256";

	if (strcmp(alg, "HS256") == 0) {
		/* The classic confusion: HMAC keyed with the public key's bytes. */
		unsigned int hl = 0;

		HMAC(EVP_sha256(), "public-key-bytes", 16, (unsigned char *)input, strlen(input), sig, &hl);
		n = hl;
	} else if (strcmp(alg, "none") == 0) {
		n = 0;
	} else {
		EVP_DigestSignInit_ex(ctx, &pctx, md, NULL, NULL, pkey, NULL);
		if (strcmp(alg, "PS256") == 0) {
			EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
			EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
		}
		EVP_DigestSign(ctx, sig, &n, (unsigned char *)input, strlen(input));
		if (strcmp(alg, "ES256") == 0) {
			der_to_raw(sig, n, raw);
			memcpy(sig, raw, 64);
			n = 64;
		}
	}
	EVP_MD_CTX_free(ctx);
	sig64 = n > 0 ? b64(sig, n) : xstrdup("");
	out = xasprintf("%s.%s", input, sig64);
	free(h);
	free(p);
	free(input);
	free(sig64);
	return out;
}

/* An assertion: alg/kid header, the usual claims with overrides. */
static char *
make(EVP_PKEY *key, const char *alg, const char *kid, const char *iss, const char *aud,
    long long exp, const char *jti)
{
	char *hdr = xasprintf("{\"alg\":\"%s\",\"kid\":\"%s\",\"typ\":\"JWT\"}", alg, kid);
	char *body = xasprintf("{\"iss\":\"%s\",\"sub\":\"%s\",\"aud\":\"%s\",\"exp\":%lld,"
			       "\"iat\":%d%s%s%s}",
	    iss, iss, aud, exp, NOW, jti != NULL ? ",\"jti\":\"" : "", jti != NULL ? jti : "",
	    jti != NULL ? "\"" : "");
	char *jwt = sign(key, alg, hdr, body);

	free(hdr);
	free(body);
	return jwt;
}

static enum assertion_result
check(const char *jwt, const struct keyset *ks, char *err, size_t errlen, struct assertion *a)
{
	return assertion_verify(jwt, ks, CLIENT, auds, 2, 5, a, err, errlen);
}

static EVP_PKEY *
load_key(const char *name)
{
	const char *dir = getenv("MCP_SOURCE_DIR");
	char path[1024];
	EVP_PKEY *k;
	FILE *f;

	snprintf(path, sizeof path, "%s/test/unit/data/keys/%s", dir != NULL ? dir : ".", name);
	if ((f = fopen(path, "r")) == NULL)
		return NULL;
	k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	return k;
}

static void
setup(void)
{
	if (rsa != NULL)
		return;
	/* The committed test keys: generating RSA keys is slow under valgrind. */
	rsa = load_key("rsa2048.pem");
	other_rsa = load_key("rsa3072.pem");
	ec = load_key("p256.pem");
	ed = load_key("ed25519.pem");
	CU_ASSERT_PTR_NOT_NULL_FATAL(rsa && other_rsa && ec && ed);
	clock_set_fake(NOW, 1000);
}

static void
test_each_alg_verifies(void)
{
	static const struct {
		const char *alg, *kid;
	} cases[] = { { "RS256", "r1" }, { "PS256", "p1" }, { "ES256", "e1" }, { "EdDSA", "d1" } };
	struct keyset *ks;
	struct assertion a;
	char err[256];

	setup();
	ks = client_keys();
	CU_ASSERT_PTR_NOT_NULL_FATAL(ks);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		EVP_PKEY *k = cases[i].kid[0] == 'e' ? ec : cases[i].kid[0] == 'd' ? ed : rsa;
		char *jwt = make(k, cases[i].alg, cases[i].kid, CLIENT, i % 2 ? ISSUER : TOKEN_EP,
		    NOW + 60, "jti-1");

		err[0] = '\0';
		CU_ASSERT_EQUAL(check(jwt, ks, err, sizeof err, &a), ASSERTION_OK);
		if (err[0] != '\0')
			fprintf(stderr, "%s: %s\n", cases[i].alg, err);
		CU_ASSERT_STRING_EQUAL(a.jti, "jti-1");
		CU_ASSERT_EQUAL(a.exp, NOW + 60);
		free(jwt);
	}
	keyset_free(ks);
}

static void
expect_invalid(struct keyset *ks, char *jwt, const char *want)
{
	struct assertion a;
	char err[256] = "";

	CU_ASSERT_EQUAL(check(jwt, ks, err, sizeof err, &a), ASSERTION_INVALID);
	if (strstr(err, want) == NULL) {
		fprintf(stderr, "want \"%s\" in \"%s\"\n", want, err);
		CU_FAIL("error text");
	}
	free(jwt);
}

static void
test_refused(void)
{
	struct keyset *ks;
	struct assertion a;
	char err[256], *jwt, big[ASSERTION_MAX_LEN + 2];

	setup();
	ks = client_keys();
	CU_ASSERT_PTR_NOT_NULL_FATAL(ks);
	/* Signed by another key under the client's kid. */
	expect_invalid(ks, make(other_rsa, "RS256", "r1", CLIENT, TOKEN_EP, NOW + 60, "j"),
	    "signature does not verify");
	expect_invalid(ks, make(rsa, "RS256", "r1", CLIENT, "https://elsewhere/token", NOW + 60, "j"),
	    "aud names neither");
	expect_invalid(ks, make(rsa, "RS256", "r1", CLIENT, TOKEN_EP, NOW - 60, "j"), "expired");
	expect_invalid(ks, make(rsa, "RS256", "r1", CLIENT, TOKEN_EP, NOW + 3600, "j"),
	    "more than 300 s ahead");
	expect_invalid(ks, make(rsa, "RS256", "r1", CLIENT, TOKEN_EP, NOW + 60, NULL), "no jti");
	expect_invalid(ks, make(rsa, "RS256", "r1", "https://other.example/c.json", TOKEN_EP,
			       NOW + 60, "j"),
	    "iss is not");
	expect_invalid(ks, make(rsa, "none", "r1", CLIENT, TOKEN_EP, NOW + 60, "j"),
	    "alg none is not allowed");
	expect_invalid(ks, make(rsa, "HS256", "r1", CLIENT, TOKEN_EP, NOW + 60, "j"),
	    "alg HS256 is not allowed");
	/* The token's alg must agree with the key's: RS256 under the PS256 key. */
	expect_invalid(ks, make(rsa, "RS256", "p1", CLIENT, TOKEN_EP, NOW + 60, "j"),
	    "does not match key");
	expect_invalid(ks, xstrdup("not a jwt"), "not a JWT");
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	expect_invalid(ks, xstrdup(big), "longer than");

	/* An unknown kid is told apart: the caller refetches the keys once. */
	jwt = make(rsa, "RS256", "rotated", CLIENT, TOKEN_EP, NOW + 60, "j");
	CU_ASSERT_EQUAL(check(jwt, ks, err, sizeof err, &a), ASSERTION_UNKNOWN_KID);
	free(jwt);
	keyset_free(ks);
}

static void
test_client_id(void)
{
	char *jwt, *id;

	setup();
	jwt = make(rsa, "RS256", "r1", CLIENT, TOKEN_EP, NOW + 60, "j");
	id = assertion_client_id(jwt);
	CU_ASSERT_PTR_NOT_NULL_FATAL(id);
	CU_ASSERT_STRING_EQUAL(id, CLIENT);
	free(id);
	free(jwt);
	CU_ASSERT_PTR_NULL(assertion_client_id("a.b.c"));
	CU_ASSERT_PTR_NULL(assertion_client_id(NULL));
}

static void
test_alg(void)
{
	char *jwt, alg[16];

	setup();
	jwt = make(ec, "ES256", "e1", CLIENT, TOKEN_EP, NOW + 60, "j");
	CU_ASSERT_EQUAL(assertion_alg(jwt, alg, sizeof alg), 0);
	CU_ASSERT_STRING_EQUAL(alg, "ES256");
	CU_ASSERT_EQUAL(assertion_alg(jwt, alg, 5), -1);
	free(jwt);
	CU_ASSERT_EQUAL(assertion_alg("a.b.c", alg, sizeof alg), -1);
	CU_ASSERT_EQUAL(assertion_alg(NULL, alg, sizeof alg), -1);
}

static void
test_teardown(void)
{
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(other_rsa);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(ed);
	rsa = other_rsa = ec = ed = NULL;
	clock_set_fake(-1, 0);
}

int
main(void)
{
	static const struct unit_test tests[] = {
		{ "RS256, PS256, ES256 and EdDSA assertions verify", test_each_alg_verifies },
		{ "wrong key, aud, exp, jti, iss, alg none/HS256, unknown kid", test_refused },
		{ "the client_id an assertion claims", test_client_id },
		{ "the alg an assertion names", test_alg },
		{ "teardown", test_teardown },
		{ NULL, NULL },
	};

	return unit_run("assertion", tests);
}
