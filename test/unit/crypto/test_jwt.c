/*
 * Unit tests for auth/jwt: sign/verify round trips for RS256, ES256 and
 * ES384, and the attack battery, each rejected with its own error. The .c
 * is included to forge tokens with arbitrary headers through its signer.
 */
#include "auth/crypto/jwt.c"

#include <openssl/hmac.h>

#include "common/clock.h"
#include "test/unit/unit.h"

#define NOW 1700000000
#define ISS "https://auth.example.com"
#define AUD "https://mcp.example.com/mcp"

static struct keyset *ks;	/* rsa2048, p256, p384: sign with any */
static const struct keyset_key *rsa, *p256, *p384;
static const struct jwt_expect expect = {
	.typ = "at+jwt", .iss = ISS, .aud = AUD, .leeway_s = 30,
};

/* Read a test key file into a new string. */
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

static void
setup(void)
{
	static const char *files[] = { "rsa2048.pem", "p256.pem", "p384.pem" };
	char err[256], *pem;
	size_t len;

	if (ks != NULL)
		return;
	clock_set_fake(NOW, 0);
	ks = keyset_new();
	for (size_t i = 0; i < 3; i++) {
		pem = read_key(files[i], &len);
		CU_ASSERT_PTR_NOT_NULL_FATAL(pem);
		CU_ASSERT_EQUAL_FATAL(keyset_add_pem(ks, pem, len, err,
		    sizeof err), 0);
		free(pem);
	}
	rsa = keyset_at(ks, 0);
	p256 = keyset_at(ks, 1);
	p384 = keyset_at(ks, 2);
}

/* The standard claims, valid at NOW, with exp moved by dexp. */
static json_object *
claims_at(int64_t exp)
{
	json_object *c = json_object_new_object();

	json_object_object_add(c, "iss", json_object_new_string(ISS));
	json_object_object_add(c, "sub", json_object_new_string("alice"));
	json_object_object_add(c, "aud", json_object_new_string(AUD));
	json_object_object_add(c, "exp", json_object_new_int64(exp));
	json_object_object_add(c, "iat", json_object_new_int64(NOW));
	json_object_object_add(c, "scope", json_object_new_string("mcp:tools"));
	return c;
}

/* A token over already-encoded parts h64.p64, signed by key. */
static char *
forge_raw(const struct keyset_key *key, const char *h64, const char *p64)
{
	char *input = xasprintf("%s.%s", h64, p64), *s64, *tok;
	unsigned char *sig;
	size_t siglen;

	sig = jwt_sign_bytes(key, input, strlen(input), &siglen);
	CU_ASSERT_PTR_NOT_NULL_FATAL(sig);
	s64 = b64url_encode(sig, siglen);
	tok = xasprintf("%s.%s", input, s64);
	free(input);
	free(s64);
	free(sig);
	return tok;
}

/* A token with the given header and payload JSON, signed by key. */
static char *
forge(const struct keyset_key *key, const char *hdr, const char *payload)
{
	char *h64 = b64url_encode(hdr, strlen(hdr));
	char *p64 = b64url_encode(payload, strlen(payload)), *tok;

	tok = forge_raw(key, h64, p64);
	free(h64);
	free(p64);
	return tok;
}

/* A token with the given header and payload, "signed" with HMAC-SHA256. */
static char *
forge_hs256(const char *secret, size_t secretlen, const char *hdr,
    const char *payload)
{
	char *h64 = b64url_encode(hdr, strlen(hdr));
	char *p64 = b64url_encode(payload, strlen(payload));
	char *input = xasprintf("%s.%s", h64, p64), *s64, *tok;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(HMAC(EVP_sha256(), secret, (int)secretlen,
	    (unsigned char *)input, strlen(input), mac, &maclen));
	s64 = b64url_encode(mac, maclen);
	tok = xasprintf("%s.%s", input, s64);
	free(h64);
	free(p64);
	free(input);
	free(s64);
	return tok;
}

/* A header JSON for alg and the kid of key. */
static char *
header(const char *alg, const struct keyset_key *key)
{
	return xasprintf("{\"alg\":\"%s\",\"typ\":\"at+jwt\",\"kid\":\"%s\"}",
	    alg, keyset_key_kid(key));
}

/* A valid payload JSON string. */
static char *
payload(void)
{
	json_object *c = claims_at(NOW + 300);
	char *s = xstrdup(json_object_to_json_string_ext(c,
	    JSON_C_TO_STRING_PLAIN));

	json_object_put(c);
	return s;
}

/* Verify tok with the standard expectations and free it; the error. */
static enum jwt_err
check(char *tok, const struct jwt_expect *e)
{
	json_object *claims = (json_object *)1;
	char err[256] = "";
	enum jwt_err rc;

	rc = jwt_verify(tok, ks, e ? e : &expect, &claims, err, sizeof err);
	if (rc == JWT_OK) {
		CU_ASSERT_PTR_NOT_NULL(claims);
		CU_ASSERT_STRING_EQUAL(err, "");
		json_object_put(claims);
	} else {
		CU_ASSERT_PTR_NULL(claims);
		CU_ASSERT_NOT_EQUAL(err[0], '\0');
		/* Error texts never quote the token. */
		if (tok != NULL && strlen(tok) > 20) {
			CU_ASSERT_PTR_NULL(strstr(err, tok));
		}
	}
	free(tok);
	return rc;
}

/* Sign the standard claims with key and typ. */
static char *
sign(const struct keyset_key *key, const char *typ, int64_t exp)
{
	json_object *c = claims_at(exp);
	char err[256], *tok;

	tok = jwt_sign(key, typ, c, err, sizeof err);
	if (tok == NULL)
		fprintf(stderr, "\njwt_sign: %s\n", err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(tok);
	json_object_put(c);
	return tok;
}

static void
test_round_trip(void)
{
	const struct keyset_key *keys[3];
	const size_t siglens[] = { 256, 64, 96 };
	const char *algs[] = { "RS256", "ES256", "ES384" };
	struct keyset *pub;
	json_object *claims, *hdr;
	unsigned char *buf;
	char err[256], *tok, *doc;
	const char *dot;
	size_t n;

	setup();
	keys[0] = rsa;
	keys[1] = p256;
	keys[2] = p384;
	doc = keyset_jwks_json(ks);
	pub = keyset_from_jwks(doc, strlen(doc), err, sizeof err);
	free(doc);
	CU_ASSERT_PTR_NOT_NULL_FATAL(pub);
	for (size_t i = 0; i < 3; i++) {
		tok = sign(keys[i], "at+jwt", NOW + 300);
		CU_ASSERT_EQUAL(jwt_verify(tok, ks, &expect, &claims, err,
		    sizeof err), JWT_OK);
		CU_ASSERT_STRING_EQUAL(jwt_claim_string(claims, "sub"), "alice");
		json_object_put(claims);
		/* A verification-only keyset from our JWKS agrees. */
		CU_ASSERT_EQUAL(jwt_verify(tok, pub, &expect, NULL, err,
		    sizeof err), JWT_OK);
		/* Header is {alg, typ, kid}; signature is raw R||S for EC. */
		dot = strchr(tok, '.');
		CU_ASSERT_EQUAL(b64url_decode(tok, (size_t)(dot - tok), &buf,
		    &n), 0);
		hdr = jwt_json_parse((char *)buf, n);
		CU_ASSERT_STRING_EQUAL(jwt_claim_string(hdr, "alg"), algs[i]);
		CU_ASSERT_STRING_EQUAL(jwt_claim_string(hdr, "typ"), "at+jwt");
		CU_ASSERT_STRING_EQUAL(jwt_claim_string(hdr, "kid"),
		    keyset_key_kid(keys[i]));
		CU_ASSERT_EQUAL(json_object_object_length(hdr), 3);
		json_object_put(hdr);
		free(buf);
		dot = strrchr(tok, '.') + 1;
		CU_ASSERT_EQUAL(b64url_decode(dot, strlen(dot), &buf, &n), 0);
		CU_ASSERT_EQUAL(n, siglens[i]);
		free(buf);
		free(tok);
	}
	keyset_free(pub);
}

static void
test_sign_errors(void)
{
	struct keyset *pub;
	json_object *c = claims_at(NOW + 300), *arr = json_object_new_array();
	char err[256], *doc;

	setup();
	doc = keyset_jwks_json(ks);
	pub = keyset_from_jwks(doc, strlen(doc), err, sizeof err);
	free(doc);
	CU_ASSERT_PTR_NULL(jwt_sign(keyset_at(pub, 0), "JWT", c, err,
	    sizeof err));
	CU_ASSERT_STRING_EQUAL(err, "no signing key");
	CU_ASSERT_PTR_NULL(jwt_sign(NULL, "JWT", c, err, sizeof err));
	CU_ASSERT_PTR_NULL(jwt_sign(rsa, "JWT", arr, err, sizeof err));
	CU_ASSERT_STRING_EQUAL(err, "claims are not a JSON object");
	json_object_put(c);
	json_object_put(arr);
	keyset_free(pub);
}

static void
test_alg_attacks(void)
{
	char *h, *p = payload(), *pem, *jwk, *doc;
	json_object *jdoc, *keys;
	struct keyset *other;
	size_t len;

	setup();
	/* alg none, with and without a signature, any spelling. */
	CU_ASSERT_EQUAL(check(xasprintf("%s.%s.", "eyJhbGciOiJub25lIn0",
	    "eyJzdWIiOiJhbGljZSJ9"), NULL), JWT_ERR_ALG);
	h = header("none", p256);
	CU_ASSERT_EQUAL(check(forge(p256, h, p), NULL), JWT_ERR_ALG);
	free(h);
	h = header("NoNe", p256);
	CU_ASSERT_EQUAL(check(forge(p256, h, p), NULL), JWT_ERR_ALG);
	free(h);

	/* HS256 keyed with our public key, PEM and JWK forms. */
	pem = read_key("rsa2048-pub.pem", &len);
	h = header("HS256", rsa);
	CU_ASSERT_EQUAL(check(forge_hs256(pem, len, h, p), NULL), JWT_ERR_ALG);
	free(pem);
	doc = keyset_jwks_json(ks);
	jdoc = json_tokener_parse(doc);
	json_object_object_get_ex(jdoc, "keys", &keys);
	jwk = xstrdup(json_object_to_json_string_ext(
	    json_object_array_get_idx(keys, 0), JSON_C_TO_STRING_PLAIN));
	CU_ASSERT_EQUAL(check(forge_hs256(jwk, strlen(jwk), h, p), NULL),
	    JWT_ERR_ALG);
	free(jwk);
	json_object_put(jdoc);
	free(doc);
	free(h);
	h = header("HS512", p256);
	CU_ASSERT_EQUAL(check(forge_hs256("k", 1, h, p), NULL), JWT_ERR_ALG);
	free(h);
	h = header("PS256", rsa);
	CU_ASSERT_EQUAL(check(forge(rsa, h, p), NULL), JWT_ERR_ALG);
	free(h);

	/* ES256-signed token claiming RS256 for the EC key's kid. */
	h = header("RS256", p256);
	CU_ASSERT_EQUAL(check(forge(p256, h, p), NULL), JWT_ERR_ALG);
	free(h);
	/* ES384 header on a P-256 key. */
	h = header("ES384", p256);
	CU_ASSERT_EQUAL(check(forge(p384, h, p), NULL), JWT_ERR_ALG);
	free(h);
	/* The RSA key's kid and alg, but an ECDSA signature. */
	h = header("RS256", rsa);
	CU_ASSERT_EQUAL(check(forge(p256, h, p), NULL), JWT_ERR_SIGNATURE);
	free(h);
	/* The right alg and kid, but signed by another P-256 key. */
	other = keyset_new();
	CU_ASSERT_EQUAL_FATAL(keyset_generate_es256(other, NULL, 0), 0);
	h = header("ES256", p256);
	CU_ASSERT_EQUAL(check(forge(p256, h, p), NULL), JWT_OK);
	CU_ASSERT_EQUAL(check(forge(keyset_at(other, 0), h, p), NULL),
	    JWT_ERR_SIGNATURE);
	free(h);
	keyset_free(other);
	/* alg missing or not a string. */
	CU_ASSERT_EQUAL(check(forge(p256, "{\"kid\":\"x\"}", p), NULL),
	    JWT_ERR_ALG);
	CU_ASSERT_EQUAL(check(forge(p256, "{\"alg\":256,\"kid\":\"x\"}", p),
	    NULL), JWT_ERR_ALG);
	free(p);
}

static void
test_kid_crit_typ(void)
{
	char *h, *p = payload();
	struct jwt_expect any = expect;

	setup();
	h = xasprintf("{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"nope\"}");
	CU_ASSERT_EQUAL(check(forge(p256, h, p), NULL), JWT_ERR_KID);
	free(h);
	CU_ASSERT_EQUAL(check(forge(p256, "{\"alg\":\"ES256\",\"typ\":"
	    "\"at+jwt\"}", p), NULL), JWT_ERR_KID);
	h = xasprintf("{\"alg\":\"ES256\",\"kid\":%d}", 5);
	CU_ASSERT_EQUAL(check(forge(p256, h, p), NULL), JWT_ERR_KID);
	free(h);
	h = xasprintf("{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"%s\","
	    "\"crit\":[\"exp\"]}", keyset_key_kid(p256));
	CU_ASSERT_EQUAL(check(forge(p256, h, p), NULL), JWT_ERR_CRIT);
	free(h);

	/* typ: case-insensitive, "application/" prefix, else refused. */
	CU_ASSERT_EQUAL(check(sign(p256, "JWT", NOW + 300), NULL), JWT_ERR_TYP);
	CU_ASSERT_EQUAL(check(sign(p256, NULL, NOW + 300), NULL), JWT_ERR_TYP);
	CU_ASSERT_EQUAL(check(sign(p256, "AT+JWT", NOW + 300), NULL), JWT_OK);
	CU_ASSERT_EQUAL(check(sign(p256, "application/at+jwt", NOW + 300),
	    NULL), JWT_OK);
	CU_ASSERT_EQUAL(check(sign(p256, "application/x/at+jwt", NOW + 300),
	    NULL), JWT_ERR_TYP);
	CU_ASSERT_EQUAL(check(sign(p256, "at+jwtx", NOW + 300), NULL),
	    JWT_ERR_TYP);
	any.typ = NULL;
	CU_ASSERT_EQUAL(check(sign(p256, "JWT", NOW + 300), &any), JWT_OK);
	CU_ASSERT_EQUAL(check(sign(p256, NULL, NOW + 300), &any), JWT_OK);
	free(p);
}

/* A token for p256 with the given payload JSON. */
static char *
with_payload(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *
with_payload(const char *fmt, ...)
{
	char *h = header("ES256", p256), *p, *tok;
	va_list ap;

	va_start(ap, fmt);
	p = xvasprintf(fmt, ap);
	va_end(ap);
	tok = forge(p256, h, p);
	free(h);
	free(p);
	return tok;
}

#define BASE "\"iss\":\"" ISS "\",\"aud\":\"" AUD "\""

static void
test_time_claims(void)
{
	struct jwt_expect wide = expect;

	setup();
	CU_ASSERT_EQUAL(check(sign(p256, "at+jwt", NOW - 120), NULL),
	    JWT_ERR_EXPIRED);
	/* Within the leeway: accepted; at its edge: refused. */
	CU_ASSERT_EQUAL(check(sign(p256, "at+jwt", NOW - 10), NULL), JWT_OK);
	CU_ASSERT_EQUAL(check(sign(p256, "at+jwt", NOW - 29), NULL), JWT_OK);
	CU_ASSERT_EQUAL(check(sign(p256, "at+jwt", NOW - 30), NULL),
	    JWT_ERR_EXPIRED);
	/* The leeway is capped at 60 s whatever the caller asks. */
	wide.leeway_s = 3600;
	CU_ASSERT_EQUAL(check(sign(p256, "at+jwt", NOW - 59), &wide), JWT_OK);
	CU_ASSERT_EQUAL(check(sign(p256, "at+jwt", NOW - 120), &wide),
	    JWT_ERR_EXPIRED);
	wide.leeway_s = -5;
	CU_ASSERT_EQUAL(check(sign(p256, "at+jwt", NOW), &wide),
	    JWT_ERR_EXPIRED);
	CU_ASSERT_EQUAL(check(sign(p256, "at+jwt", NOW + 1), &wide), JWT_OK);

	CU_ASSERT_EQUAL(check(with_payload("{" BASE ",\"exp\":%d,\"nbf\":%d}",
	    NOW + 300, NOW + 120), NULL), JWT_ERR_NOT_YET_VALID);
	CU_ASSERT_EQUAL(check(with_payload("{" BASE ",\"exp\":%d,\"nbf\":%d}",
	    NOW + 300, NOW + 20), NULL), JWT_OK);
	CU_ASSERT_EQUAL(check(with_payload("{" BASE ",\"exp\":%d,\"iat\":%d}",
	    NOW + 300, NOW + 120), NULL), JWT_ERR_NOT_YET_VALID);
	CU_ASSERT_EQUAL(check(with_payload("{" BASE "}"), NULL), JWT_ERR_CLAIM);
	CU_ASSERT_EQUAL(check(with_payload("{" BASE ",\"exp\":\"%d\"}",
	    NOW + 300), NULL), JWT_ERR_CLAIM);
	CU_ASSERT_EQUAL(check(with_payload("{" BASE ",\"exp\":%d.5}",
	    NOW + 300), NULL), JWT_ERR_CLAIM);
	CU_ASSERT_EQUAL(check(with_payload("{" BASE ",\"exp\":%d.0}",
	    NOW + 300), NULL), JWT_OK);
	CU_ASSERT_EQUAL(check(with_payload("{" BASE ",\"exp\":%d,\"nbf\":"
	    "null}", NOW + 300), NULL), JWT_ERR_CLAIM);
	/* Out of the claim range (json-c saturates the second to INT64_MAX). */
	CU_ASSERT_EQUAL(check(with_payload("{" BASE ",\"exp\":"
	    "9223372036854775807}"), NULL), JWT_ERR_CLAIM);
	CU_ASSERT_EQUAL(check(with_payload("{" BASE ",\"exp\":"
	    "10000000000000000000000000000000000000000}"), NULL), JWT_ERR_CLAIM);
}

static void
test_iss_aud(void)
{
	setup();
	CU_ASSERT_EQUAL(check(with_payload("{\"iss\":\"https://evil.example\","
	    "\"aud\":\"" AUD "\",\"exp\":%d}", NOW + 300), NULL),
	    JWT_ERR_ISSUER);
	CU_ASSERT_EQUAL(check(with_payload("{\"iss\":\"" ISS "/\",\"aud\":\""
	    AUD "\",\"exp\":%d}", NOW + 300), NULL), JWT_ERR_ISSUER);
	CU_ASSERT_EQUAL(check(with_payload("{\"aud\":\"" AUD "\",\"exp\":%d}",
	    NOW + 300), NULL), JWT_ERR_ISSUER);
	CU_ASSERT_EQUAL(check(with_payload("{\"iss\":\"" ISS "\",\"aud\":"
	    "\"https://other.example/mcp\",\"exp\":%d}", NOW + 300), NULL),
	    JWT_ERR_AUDIENCE);
	CU_ASSERT_EQUAL(check(with_payload("{\"iss\":\"" ISS "\",\"exp\":%d}",
	    NOW + 300), NULL), JWT_ERR_AUDIENCE);
	CU_ASSERT_EQUAL(check(with_payload("{\"iss\":\"" ISS "\",\"aud\":"
	    "[\"a\",\"" AUD "\"],\"exp\":%d}", NOW + 300), NULL), JWT_OK);
	CU_ASSERT_EQUAL(check(with_payload("{\"iss\":\"" ISS "\",\"aud\":"
	    "[\"a\",\"b\"],\"exp\":%d}", NOW + 300), NULL), JWT_ERR_AUDIENCE);
	CU_ASSERT_EQUAL(check(with_payload("{\"iss\":\"" ISS "\",\"aud\":"
	    "[[\"" AUD "\"]],\"exp\":%d}", NOW + 300), NULL),
	    JWT_ERR_AUDIENCE);
}

static void
test_structure(void)
{
	char *tok, *t2, *h, *big, *p;
	unsigned char *sig;
	size_t len, siglen;

	setup();
	tok = sign(p256, "at+jwt", NOW + 300);
	len = strlen(tok);

	/* Tampered payload: another valid payload under the same signature. */
	t2 = sign(p256, "at+jwt", NOW + 301);
	h = xasprintf("%.*s%.*s%s", (int)(strchr(tok, '.') - tok + 1), tok,
	    (int)(strrchr(t2, '.') - strchr(t2, '.') - 1), strchr(t2, '.') + 1,
	    strrchr(tok, '.'));
	CU_ASSERT_EQUAL(check(h, NULL), JWT_ERR_SIGNATURE);
	free(t2);
	/* A flipped bit in the signature. */
	t2 = xstrdup(tok);
	t2[len - 5] = t2[len - 5] == 'A' ? 'B' : 'A';
	CU_ASSERT_EQUAL(check(t2, NULL), JWT_ERR_SIGNATURE);

	/* Truncated. */
	CU_ASSERT_EQUAL(check(xstrndup(tok, (size_t)(strrchr(tok, '.') - tok)),
	    NULL), JWT_ERR_MALFORMED);
	CU_ASSERT_EQUAL(check(xstrndup(tok, (size_t)(strrchr(tok, '.') - tok +
	    1)), NULL), JWT_ERR_MALFORMED);
	CU_ASSERT_NOT_EQUAL(check(xstrndup(tok, len - 4), NULL), JWT_OK);
	/* A well-formed signature one byte short. */
	p = strrchr(tok, '.') + 1;
	CU_ASSERT_EQUAL_FATAL(b64url_decode(p, strlen(p), &sig, &siglen), 0);
	big = b64url_encode(sig, siglen - 1);
	CU_ASSERT_EQUAL(check(xasprintf("%.*s%s", (int)(p - tok), tok, big),
	    NULL), JWT_ERR_SIGNATURE);
	free(big);
	free(sig);
	CU_ASSERT_NOT_EQUAL(check(xstrndup(tok, len - 1), NULL), JWT_OK);
	CU_ASSERT_EQUAL(check(xstrndup(tok, 10), NULL), JWT_ERR_MALFORMED);
	CU_ASSERT_EQUAL(check(xstrdup(""), NULL), JWT_ERR_MALFORMED);
	CU_ASSERT_EQUAL(check(NULL, NULL), JWT_ERR_TOO_LARGE);
	CU_ASSERT_EQUAL(jwt_verify(tok, NULL, &expect, NULL, NULL, 0),
	    JWT_ERR_KID);
	/* Extra parts (a JWE has five). */
	CU_ASSERT_EQUAL(check(xasprintf("%s.", tok), NULL), JWT_ERR_MALFORMED);
	CU_ASSERT_EQUAL(check(xasprintf("%s.x.y", tok), NULL),
	    JWT_ERR_MALFORMED);

	/* Not base64url: '+', '/', padding, whitespace. */
	t2 = xstrdup(tok);
	t2[3] = '+';
	CU_ASSERT_EQUAL(check(t2, NULL), JWT_ERR_MALFORMED);
	t2 = xstrdup(tok);
	t2[len - 3] = '/';
	CU_ASSERT_EQUAL(check(t2, NULL), JWT_ERR_MALFORMED);
	CU_ASSERT_EQUAL(check(xasprintf("%s=", tok), NULL), JWT_ERR_MALFORMED);
	CU_ASSERT_EQUAL(check(xasprintf(" %s", tok), NULL), JWT_ERR_MALFORMED);
	h = header("ES256", p256);
	t2 = b64url_encode(h, strlen(h));
	p = payload();
	big = b64url_encode(p, strlen(p));
	free(p);
	p = xasprintf("%s==", big);	/* padded payload, validly signed */
	CU_ASSERT_EQUAL(check(forge_raw(p256, t2, p), NULL), JWT_ERR_MALFORMED);
	free(p);
	free(big);
	free(t2);
	free(h);

	/* Header or payload that is not a JSON object. */
	CU_ASSERT_EQUAL(check(forge(p256, "[\"ES256\"]", "{}"), NULL),
	    JWT_ERR_MALFORMED);
	CU_ASSERT_EQUAL(check(forge(p256, "{\"alg\":'ES256'}", "{}"), NULL),
	    JWT_ERR_MALFORMED);
	CU_ASSERT_EQUAL(check(with_payload("[1,2]"), NULL), JWT_ERR_MALFORMED);
	CU_ASSERT_EQUAL(check(with_payload("\"s\""), NULL), JWT_ERR_MALFORMED);
	CU_ASSERT_EQUAL(check(with_payload("{" BASE ",\"exp\":%d} x",
	    NOW + 300), NULL), JWT_ERR_MALFORMED);
	CU_ASSERT_EQUAL(check(with_payload("{" BASE ",\"exp\":%d,\"x\":NaN}",
	    NOW + 300), NULL), JWT_ERR_MALFORMED);
	CU_ASSERT_EQUAL(check(with_payload("{" BASE ",\"exp\":%d,\"x\":\"\t\"}",
	    NOW + 300), NULL), JWT_ERR_MALFORMED);
	CU_ASSERT_EQUAL(check(with_payload("{" BASE ",\"exp\":%d,\"x\":\"\xff\"}",
	    NOW + 300), NULL), JWT_ERR_MALFORMED);

	/* 64 KiB, and just over the 16 KiB limit. */
	big = xmalloc(64 * 1024 + 1);
	memset(big, 'A', 64 * 1024);
	big[64 * 1024] = '\0';
	memcpy(big, tok, len);
	CU_ASSERT_EQUAL(check(big, NULL), JWT_ERR_TOO_LARGE);
	big = xmalloc(JWT_MAX_LEN + 2);
	memset(big, 'A', JWT_MAX_LEN + 1);
	big[JWT_MAX_LEN + 1] = '\0';
	CU_ASSERT_EQUAL(check(big, NULL), JWT_ERR_TOO_LARGE);
	free(tok);
}

static void
test_claim_helpers(void)
{
	const char *doc = "{\"s\":\"v\",\"i\":42,\"d\":1.5,"
	    "\"a\":[\"x\",\"y\"],\"m\":[\"x\",1],\"b\":true}";
	json_object *c = jwt_json_parse(doc, strlen(doc));
	const char *out[4];
	int64_t i;

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_STRING_EQUAL(jwt_claim_string(c, "s"), "v");
	CU_ASSERT_PTR_NULL(jwt_claim_string(c, "i"));
	CU_ASSERT_PTR_NULL(jwt_claim_string(c, "zz"));
	CU_ASSERT_EQUAL(jwt_claim_int(c, "i", &i), 0);
	CU_ASSERT_EQUAL(i, 42);
	CU_ASSERT_EQUAL(jwt_claim_int(c, "d", &i), -1);
	CU_ASSERT_EQUAL(jwt_claim_int(c, "s", &i), -1);
	CU_ASSERT_EQUAL(jwt_claim_int(c, "b", &i), -1);
	CU_ASSERT_EQUAL(jwt_claim_strings(c, "a", out, 4), 2);
	CU_ASSERT_STRING_EQUAL(out[1], "y");
	CU_ASSERT_EQUAL(jwt_claim_strings(c, "a", out, 1), -1);
	CU_ASSERT_EQUAL(jwt_claim_strings(c, "s", out, 4), 1);
	CU_ASSERT_STRING_EQUAL(out[0], "v");
	CU_ASSERT_EQUAL(jwt_claim_strings(c, "m", out, 4), -1);
	CU_ASSERT_EQUAL(jwt_claim_strings(c, "i", out, 4), -1);
	CU_ASSERT_EQUAL(jwt_claim_strings(c, "zz", out, 4), -1);
	json_object_put(c);
	CU_ASSERT_STRING_EQUAL(jwt_err_name(JWT_ERR_EXPIRED), "expired");
	CU_ASSERT_STRING_EQUAL(jwt_err_name((enum jwt_err)99), "unknown");
}

static void
teardown(void)
{
	keyset_free(ks);
	ks = NULL;
	clock_set_fake(-1, 0);
}

int
main(void)
{
	static const struct unit_test tests[] = {
		{ "round_trip_rs256_es256_es384", test_round_trip },
		{ "sign_errors", test_sign_errors },
		{ "alg_attacks", test_alg_attacks },
		{ "kid_crit_typ", test_kid_crit_typ },
		{ "time_claims", test_time_claims },
		{ "iss_aud", test_iss_aud },
		{ "structure", test_structure },
		{ "claim_helpers", test_claim_helpers },
		{ "teardown", teardown },
		{ NULL, NULL },
	};

	return unit_run("jwt", tests);
}
