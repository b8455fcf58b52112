/*
 * Unit tests for auth/crypto/keyset: which PEM keys load and which are refused,
 * RFC 7638 kids, the published JWKS (public parts only) and the parser for
 * a remote issuer's JWKS. Keys live in test/unit/data/keys (test-only).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/b64url.h"
#include "auth/crypto/keyset.h"
#include "test/unit/unit.h"

#define RFC7638_N \
	"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1" \
	"RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5" \
	"n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8K" \
	"JZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQF" \
	"h6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJz" \
	"KnqDKgw"
#define RFC7638_THUMBPRINT "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"

/* Read a test key file into a new string; fails the test if missing. */
static char *
read_key(const char *name, size_t *len)
{
	const char *dir = getenv("MCP_SOURCE_DIR");
	char path[512], *buf;
	FILE *f;
	long n;

	snprintf(path, sizeof path, "%s/test/unit/data/keys/%s",
	    dir ? dir : ".", name);
	if ((f = fopen(path, "rb")) == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	*len = fread(buf, 1, (size_t)n, f);
	buf[*len] = '\0';
	fclose(f);
	return buf;
}

/* Add a key file to ks; the return of keyset_add_pem. */
static int
add_key(struct keyset *ks, const char *name, char *err, size_t errlen)
{
	size_t len;
	char *pem = read_key(name, &len);
	int rc;

	CU_ASSERT_PTR_NOT_NULL_FATAL(pem);
	rc = keyset_add_pem(ks, pem, len, err, errlen);
	free(pem);
	return rc;
}

static void
test_load_accepted(void)
{
	static const struct {
		const char *file;
		enum keyset_alg alg;
		const char *kid;	/* computed from `openssl pkey -text` */
	} t[] = {
		{ "rsa2048.pem", KEYSET_ALG_RS256,
		  "M7ws0FbzwUIW59bikoHOCITkpKqy7A8dSvOL1fEP-zQ" },
		{ "rsa2048-pkcs1.pem", KEYSET_ALG_RS256,
		  "M7ws0FbzwUIW59bikoHOCITkpKqy7A8dSvOL1fEP-zQ" },
		{ "rsa3072.pem", KEYSET_ALG_RS256, NULL },
		{ "p256.pem", KEYSET_ALG_ES256,
		  "onOK-UjcDVPDsY3z_CuyEej3RqjhXJEvOK2DdSUgO9U" },
		{ "p256-sec1.pem", KEYSET_ALG_ES256,
		  "onOK-UjcDVPDsY3z_CuyEej3RqjhXJEvOK2DdSUgO9U" },
		{ "p384.pem", KEYSET_ALG_ES384,
		  "anxbQ6-S0tLM5-61wFrN70RnqyViXDriqmUP42sVuvQ" },
	};
	const struct keyset_key *k;
	struct keyset *ks;
	char err[256];

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		ks = keyset_new();
		err[0] = '\0';
		CU_ASSERT_EQUAL(add_key(ks, t[i].file, err, sizeof err), 0);
		if (err[0] != '\0')
			fprintf(stderr, "%s: %s\n", t[i].file, err);
		CU_ASSERT_EQUAL_FATAL(keyset_count(ks), 1);
		k = keyset_signing_key(ks);
		CU_ASSERT_PTR_EQUAL_FATAL(k, keyset_at(ks, 0));
		CU_ASSERT_EQUAL(keyset_key_alg(k), t[i].alg);
		CU_ASSERT_TRUE(keyset_key_can_sign(k));
		CU_ASSERT_STRING_EQUAL(keyset_key_kid(k),
		    keyset_key_thumbprint(k));
		CU_ASSERT_EQUAL(strlen(keyset_key_kid(k)), 43);
		if (t[i].kid != NULL) {
			CU_ASSERT_STRING_EQUAL(keyset_key_kid(k), t[i].kid);
		}
		CU_ASSERT_PTR_EQUAL(keyset_find(ks, keyset_key_kid(k)), k);
		CU_ASSERT_PTR_NULL(keyset_find(ks, "nope"));
		keyset_free(ks);
	}
}

static void
test_load_refused(void)
{
	static const struct {
		const char *file;
		const char *pem;
		const char *msg;
	} t[] = {
		{ "rsa1024.pem", NULL, "RSA key of 1024 bits is not supported" },
		{ "p521.pem", NULL, "EC curve secp521r1 is not supported" },
		{ "secp256k1.pem", NULL, "EC curve secp256k1 is not supported" },
		{ "ed25519.pem", NULL, "key type ED25519 is not supported" },
		{ "rsapss2048.pem", NULL, "key type RSA-PSS is not supported" },
		{ "p256-pub.pem", NULL, "not an unencrypted PEM private key" },
		{ "rsa2048-pub.pem", NULL, "not an unencrypted PEM private key" },
		{ "p256-encrypted.pem", NULL,
		  "not an unencrypted PEM private key" },
		{ NULL, "garbage", "not an unencrypted PEM private key" },
		{ NULL, "-----BEGIN PRIVATE KEY-----\nAAAA\n"
		  "-----END PRIVATE KEY-----\n",
		  "not an unencrypted PEM private key" },
		{ NULL, "", "PEM key of 0 bytes" },
	};
	struct keyset *ks = keyset_new();
	char err[256];

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		err[0] = '\0';
		if (t[i].file != NULL) {
			CU_ASSERT_EQUAL(add_key(ks, t[i].file, err, sizeof err),
			    -1);
		} else {
			CU_ASSERT_EQUAL(keyset_add_pem(ks, t[i].pem,
			    strlen(t[i].pem), err, sizeof err), -1);
		}
		if (strstr(err, t[i].msg) == NULL) {
			fprintf(stderr, "\n%s: got \"%s\"\n",
			    t[i].file ? t[i].file : t[i].pem, err);
			CU_FAIL("unexpected error message");
		}
	}
	CU_ASSERT_EQUAL(keyset_count(ks), 0);
	CU_ASSERT_PTR_NULL(keyset_signing_key(ks));
	keyset_free(ks);
}

static void
test_first_key_signs_and_duplicates(void)
{
	struct keyset *ks = keyset_new();
	char err[256];

	CU_ASSERT_EQUAL(add_key(ks, "p256.pem", err, sizeof err), 0);
	CU_ASSERT_EQUAL(add_key(ks, "rsa2048.pem", err, sizeof err), 0);
	CU_ASSERT_EQUAL(keyset_count(ks), 2);
	CU_ASSERT_EQUAL(keyset_key_alg(keyset_signing_key(ks)),
	    KEYSET_ALG_ES256);
	CU_ASSERT_EQUAL(add_key(ks, "p256-sec1.pem", err, sizeof err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "duplicate key id"));
	CU_ASSERT_EQUAL(keyset_count(ks), 2);
	keyset_free(ks);
}

static void
test_generate_es256(void)
{
	struct keyset *ks = keyset_new();
	char err[256];

	CU_ASSERT_EQUAL(keyset_generate_es256(ks, err, sizeof err), 0);
	CU_ASSERT_EQUAL(keyset_generate_es256(ks, err, sizeof err), 0);
	CU_ASSERT_EQUAL_FATAL(keyset_count(ks), 2);
	CU_ASSERT_EQUAL(keyset_key_alg(keyset_at(ks, 0)), KEYSET_ALG_ES256);
	CU_ASSERT_TRUE(keyset_key_can_sign(keyset_at(ks, 0)));
	CU_ASSERT_STRING_NOT_EQUAL(keyset_key_kid(keyset_at(ks, 0)),
	    keyset_key_kid(keyset_at(ks, 1)));
	CU_ASSERT_PTR_EQUAL(keyset_signing_key(ks), keyset_at(ks, 0));
	keyset_free(ks);
}

/* Parse a JWKS given as a C string. */
static struct keyset *
jwks(const char *doc, char *err, size_t errlen)
{
	return keyset_from_jwks(doc, strlen(doc), err, errlen);
}

static void
test_rfc7638_thumbprint(void)
{
	struct keyset *ks;
	char err[256];

	ks = jwks("{\"keys\":[{\"kty\":\"RSA\",\"n\":\"" RFC7638_N "\","
	    "\"e\":\"AQAB\",\"alg\":\"RS256\",\"kid\":\"2011-04-29\"}]}", err,
	    sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ks);
	CU_ASSERT_EQUAL(keyset_count(ks), 1);
	CU_ASSERT_STRING_EQUAL(keyset_key_kid(keyset_at(ks, 0)), "2011-04-29");
	CU_ASSERT_STRING_EQUAL(keyset_key_thumbprint(keyset_at(ks, 0)),
	    RFC7638_THUMBPRINT);
	CU_ASSERT_EQUAL(keyset_key_alg(keyset_at(ks, 0)), KEYSET_ALG_RS256);
	CU_ASSERT_FALSE(keyset_key_can_sign(keyset_at(ks, 0)));
	CU_ASSERT_PTR_NULL(keyset_signing_key(ks));
	keyset_free(ks);

	/* Without kid the thumbprint is the kid. */
	ks = jwks("{\"keys\":[{\"e\":\"AQAB\",\"kty\":\"RSA\",\"n\":\""
	    RFC7638_N "\"}]}", err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ks);
	CU_ASSERT_PTR_NOT_NULL(keyset_find(ks, RFC7638_THUMBPRINT));
	keyset_free(ks);
}

/* The member name of obj as a string, or NULL. */
static const char *
member(json_object *obj, const char *name)
{
	json_object *v;

	if (!json_object_object_get_ex(obj, name, &v))
		return NULL;
	return json_object_get_string(v);
}

/* A good RSA JWKS parses the same every time (OpenSSL's probabilistic
 * SP 800-56B modulus check once dropped the key in ~0.5% of parses). */
static void
test_jwks_rsa_stable(void)
{
	struct keyset *ks = keyset_new(), *back;
	char err[256], *s;
	int kept = 0;

	CU_ASSERT_EQUAL_FATAL(add_key(ks, "rsa2048.pem", err, sizeof err), 0);
	s = keyset_jwks_json(ks);
	for (int i = 0; i < 5000; i++) {
		back = keyset_from_jwks(s, strlen(s), err, sizeof err);
		kept += back != NULL && keyset_count(back) == 1;
		keyset_free(back);
	}
	CU_ASSERT_EQUAL(kept, 5000);
	free(s);
	keyset_free(ks);
}

static void
test_jwks_public_only(void)
{
	static const char *private_members[] = {
		"d", "p", "q", "dp", "dq", "qi", "oth", "k",
	};
	struct keyset *ks = keyset_new(), *back;
	json_object *doc, *keys, *k;
	unsigned char *buf;
	char err[256], *s;
	size_t n;

	CU_ASSERT_EQUAL(add_key(ks, "rsa2048.pem", err, sizeof err), 0);
	CU_ASSERT_EQUAL(add_key(ks, "p256.pem", err, sizeof err), 0);
	CU_ASSERT_EQUAL(add_key(ks, "p384.pem", err, sizeof err), 0);
	s = keyset_jwks_json(ks);
	doc = json_tokener_parse(s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
	CU_ASSERT_TRUE_FATAL(json_object_object_get_ex(doc, "keys", &keys));
	CU_ASSERT_EQUAL_FATAL(json_object_array_length(keys), 3);
	for (size_t i = 0; i < 3; i++) {
		k = json_object_array_get_idx(keys, i);
		CU_ASSERT_STRING_EQUAL(member(k, "use"), "sig");
		CU_ASSERT_STRING_EQUAL(member(k, "kid"),
		    keyset_key_kid(keyset_at(ks, i)));
		for (size_t j = 0; j < sizeof private_members /
		    sizeof private_members[0]; j++)
			CU_ASSERT_PTR_NULL(member(k, private_members[j]));
	}
	k = json_object_array_get_idx(keys, 0);
	CU_ASSERT_STRING_EQUAL(member(k, "kty"), "RSA");
	CU_ASSERT_STRING_EQUAL(member(k, "alg"), "RS256");
	CU_ASSERT_STRING_EQUAL(member(k, "e"), "AQAB");
	CU_ASSERT_EQUAL(b64url_decode(member(k, "n"), strlen(member(k, "n")),
	    &buf, &n), 0);
	CU_ASSERT_EQUAL(n, 256);
	CU_ASSERT_NOT_EQUAL(buf[0], 0);
	free(buf);
	k = json_object_array_get_idx(keys, 1);
	CU_ASSERT_STRING_EQUAL(member(k, "kty"), "EC");
	CU_ASSERT_STRING_EQUAL(member(k, "crv"), "P-256");
	CU_ASSERT_STRING_EQUAL(member(k, "alg"), "ES256");
	CU_ASSERT_EQUAL(strlen(member(k, "x")), 43);
	CU_ASSERT_EQUAL(strlen(member(k, "y")), 43);
	k = json_object_array_get_idx(keys, 2);
	CU_ASSERT_STRING_EQUAL(member(k, "crv"), "P-384");
	CU_ASSERT_STRING_EQUAL(member(k, "alg"), "ES384");
	CU_ASSERT_EQUAL(strlen(member(k, "x")), 64);
	CU_ASSERT_EQUAL(strlen(member(k, "y")), 64);

	/* Our own JWKS parses back into the same verification keys. */
	back = keyset_from_jwks(s, strlen(s), err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(back);
	CU_ASSERT_EQUAL(keyset_count(back), 3);
	for (size_t i = 0; i < 3; i++) {
		CU_ASSERT_STRING_EQUAL(keyset_key_kid(keyset_at(back, i)),
		    keyset_key_kid(keyset_at(ks, i)));
		CU_ASSERT_STRING_EQUAL(keyset_key_thumbprint(keyset_at(back, i)),
		    keyset_key_thumbprint(keyset_at(ks, i)));
		CU_ASSERT_EQUAL(keyset_key_alg(keyset_at(back, i)),
		    keyset_key_alg(keyset_at(ks, i)));
		CU_ASSERT_FALSE(keyset_key_can_sign(keyset_at(back, i)));
	}
	keyset_free(back);
	json_object_put(doc);
	free(s);
	keyset_free(ks);
}

/* The public JWK of one of our PEM test keys, as a json_object. */
static json_object *
public_jwk(const char *file)
{
	struct keyset *ks = keyset_new();
	json_object *doc, *keys, *k;
	char err[256], *s;

	CU_ASSERT_EQUAL_FATAL(add_key(ks, file, err, sizeof err), 0);
	s = keyset_jwks_json(ks);
	doc = json_tokener_parse(s);
	json_object_object_get_ex(doc, "keys", &keys);
	k = json_object_get(json_object_array_get_idx(keys, 0));
	json_object_put(doc);
	free(s);
	keyset_free(ks);
	return k;
}

/* Set a string member of a JWK. */
static void
set(json_object *k, const char *name, const char *value)
{
	json_object_object_add(k, name, json_object_new_string(value));
}

static void
test_jwks_skips(void)
{
	json_object *doc = json_object_new_object(), *keys, *k;
	unsigned char small_n[128];
	struct keyset *ks;
	char err[256], *b;
	const char *s;

	keys = json_object_new_array();
	json_object_object_add(doc, "keys", keys);
	json_object_array_add(keys, json_tokener_parse(
	    "{\"kty\":\"oct\",\"k\":\"c2VjcmV0\",\"kid\":\"hmac\"}"));
	json_object_array_add(keys, json_tokener_parse(
	    "{\"kty\":\"OKP\",\"crv\":\"X25519\",\"x\":\"11qYAYKxCrfVS_7TyWQH"
	    "Og7hcvPapiMlrwIaaPcHURo\",\"kid\":\"x25519\"}"));	/* not a signing curve */
	json_object_array_add(keys, json_tokener_parse(
	    "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"alg\":\"ES256\",\"x\":\"11qYAYKxCrfVS_7TyWQH"
	    "Og7hcvPapiMlrwIaaPcHURo\",\"kid\":\"ed-es256\"}"));	/* alg not fitting */
	json_object_array_add(keys, json_tokener_parse("42"));
	json_object_array_add(keys, json_tokener_parse("{\"kid\":\"nokty\"}"));
	k = public_jwk("rsa2048.pem");		/* use enc */
	set(k, "use", "enc");
	set(k, "kid", "enc");
	json_object_array_add(keys, k);
	k = public_jwk("p256.pem");		/* alg not fitting the key */
	set(k, "alg", "RS256");
	set(k, "kid", "mismatch");
	json_object_array_add(keys, k);
	k = public_jwk("p384.pem");
	set(k, "alg", "ES256");
	set(k, "kid", "mismatch2");
	json_object_array_add(keys, k);
	k = public_jwk("p256.pem");		/* HS256 on an EC key */
	set(k, "alg", "HS256");
	set(k, "kid", "hs");
	json_object_array_add(keys, k);
	k = public_jwk("p256.pem");		/* off-curve point */
	set(k, "y", member(k, "x"));
	set(k, "kid", "offcurve");
	json_object_array_add(keys, k);
	k = public_jwk("p256.pem");		/* shortened coordinate */
	set(k, "x", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
	set(k, "kid", "short");
	json_object_array_add(keys, k);
	k = public_jwk("p256.pem");		/* unsupported curve */
	set(k, "crv", "P-521");
	set(k, "kid", "p521");
	json_object_array_add(keys, k);
	k = public_jwk("rsa2048.pem");		/* padded base64 */
	set(k, "e", "AQAB==");
	set(k, "kid", "padded");
	json_object_array_add(keys, k);
	memset(small_n, 0xc3, sizeof small_n);	/* RSA 1024 */
	b = b64url_encode(small_n, sizeof small_n);
	k = public_jwk("rsa2048.pem");
	set(k, "n", b);
	set(k, "kid", "rsa1024");
	json_object_array_add(keys, k);
	free(b);
	k = public_jwk("rsa2048.pem");		/* kid not a string */
	json_object_object_add(k, "kid", json_object_new_int(7));
	json_object_array_add(keys, k);

	/* The usable ones. */
	json_object_array_add(keys, json_tokener_parse(
	    "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQH"
	    "Og7hcvPapiMlrwIaaPcHURo\",\"kid\":\"ed\"}"));
	k = public_jwk("rsa2048.pem");
	json_object_object_del(k, "alg");
	json_object_object_del(k, "use");
	set(k, "kid", "rsa-noalg");
	json_object_array_add(keys, k);
	k = public_jwk("rsa2048.pem");
	set(k, "alg", "RS512");
	set(k, "kid", "rsa-512");
	json_object_array_add(keys, k);
	k = public_jwk("p384.pem");
	json_object_object_del(k, "alg");
	set(k, "kid", "ec-noalg");
	json_object_array_add(keys, k);
	k = public_jwk("p256.pem");		/* duplicate kid: first wins */
	set(k, "kid", "ec-noalg");
	json_object_array_add(keys, k);

	s = json_object_to_json_string(doc);
	ks = keyset_from_jwks(s, strlen(s), err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ks);
	CU_ASSERT_EQUAL(keyset_count(ks), 4);
	CU_ASSERT_EQUAL(keyset_key_alg(keyset_find(ks, "ed")), KEYSET_ALG_EDDSA);
	CU_ASSERT_EQUAL(keyset_key_alg(keyset_find(ks, "rsa-noalg")),
	    KEYSET_ALG_RS256);
	CU_ASSERT_EQUAL(keyset_key_alg(keyset_find(ks, "rsa-512")),
	    KEYSET_ALG_RS512);
	CU_ASSERT_EQUAL(keyset_key_alg(keyset_find(ks, "ec-noalg")),
	    KEYSET_ALG_ES384);
	CU_ASSERT_PTR_NULL(keyset_signing_key(ks));
	keyset_free(ks);
	json_object_put(doc);
}

static void
test_jwks_refused(void)
{
	static const struct {
		const char *doc;
		const char *msg;
	} t[] = {
		{ "", "not a JSON object" },
		{ "nope", "not a JSON object" },
		{ "[]", "not a JSON object" },
		{ "{\"keys\":[]} x", "not a JSON object" },
		{ "{'keys':[]}", "not a JSON object" },
		{ "{\"keys\":[],}", "not a JSON object" },
		{ "{}", "no \"keys\" array" },
		{ "{\"keys\":{}}", "no \"keys\" array" },
		{ "{\"keys\":[]}", "no usable signature key" },
		{ "{\"keys\":[{\"kty\":\"oct\",\"k\":\"AAAA\"}]}",
		  "no usable signature key" },
	};
	json_object *doc, *keys, *k;
	char err[256], *big;
	const char *s;

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		err[0] = '\0';
		CU_ASSERT_PTR_NULL(jwks(t[i].doc, err, sizeof err));
		if (strstr(err, t[i].msg) == NULL) {
			fprintf(stderr, "\n%s: got \"%s\"\n", t[i].doc, err);
			CU_FAIL("unexpected error message");
		}
	}
	/* More than KEYSET_MAX_KEYS keys. */
	doc = json_object_new_object();
	keys = json_object_new_array();
	json_object_object_add(doc, "keys", keys);
	k = public_jwk("p256.pem");
	for (int i = 0; i <= KEYSET_MAX_KEYS; i++)
		json_object_array_add(keys, json_object_get(k));
	json_object_put(k);
	s = json_object_to_json_string(doc);
	CU_ASSERT_PTR_NULL(keyset_from_jwks(s, strlen(s), err, sizeof err));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "65 keys (limit 64)"));
	json_object_put(doc);
	/* Over the size limit. */
	big = malloc(KEYSET_JWKS_MAX + 2);
	memset(big, ' ', KEYSET_JWKS_MAX + 1);
	big[KEYSET_JWKS_MAX + 1] = '\0';
	CU_ASSERT_PTR_NULL(jwks(big, err, sizeof err));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "(limit 262144)"));
	free(big);
}

int
main(void)
{
	static const struct unit_test tests[] = {
		{ "load_accepted", test_load_accepted },
		{ "load_refused", test_load_refused },
		{ "first_key_signs_and_duplicates",
		  test_first_key_signs_and_duplicates },
		{ "generate_es256", test_generate_es256 },
		{ "rfc7638_thumbprint", test_rfc7638_thumbprint },
		{ "jwks_public_only", test_jwks_public_only },
		{ "jwks_rsa_stable", test_jwks_rsa_stable },
		{ "jwks_skips_unusable_keys", test_jwks_skips },
		{ "jwks_refused", test_jwks_refused },
		{ NULL, NULL },
	};

	return unit_run("keys", tests);
}
