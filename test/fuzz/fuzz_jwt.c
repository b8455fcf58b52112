/*
 * Fuzz jwt_verify (auth/jwt.h) against a fixed keyset: one ES256 key made
 * at start and the RSA test key from test/unit/data/keys. The first byte
 * picks the mode:
 *   even: the rest is a compact token, verified as the guard does;
 *   odd:  the rest is "header JSON\npayload JSON", signed here with the
 *         ES256 key (or the RSA key when the header mentions "$RS") after
 *         "$ES"/"$RS" are replaced by the keys' kids, so the header, time
 *         and claim checks behind the signature are reached as well.
 * A token that verifies must really carry the expected issuer, audience,
 * type and an exp in the future; the wall clock is frozen.
 */
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>

#include "common/b64url.h"
#include "auth/crypto/jwt.h"
#include "auth/crypto/keyset.h"
#include "common/clock.h"
#include "test/fuzz/fuzz.h"

#define NOW 1700000000
#define ISS "https://auth.example.com"
#define AUD "https://mcp.example.com/mcp"

static struct keyset *ks;
static const struct keyset_key *es, *rs;

static char *
read_text(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (f == NULL)
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

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = getenv("MCP_SOURCE_DIR");
	char path[1024], err[256], *pem;
	size_t len;

	clock_set_fake(NOW, 0);
	ks = keyset_new();
	if (keyset_generate_es256(ks, err, sizeof err) != 0)
		abort();
	snprintf(path, sizeof path, "%s/test/unit/data/keys/rsa2048.pem",
	    dir != NULL ? dir : MCP_SOURCE_DIR);
	if ((pem = read_text(path, &len)) == NULL ||
	    keyset_add_pem(ks, pem, len, err, sizeof err) != 0) {
		fprintf(stderr, "fuzz_jwt: cannot load %s\n", path);
		abort();
	}
	free(pem);
	es = keyset_at(ks, 0);
	rs = keyset_at(ks, 1);
	return 0;
}

/* s with every "$ES"/"$RS" replaced by the kid of that key, as a new string. */
static char *
with_kids(const char *s, bool *rsa)
{
	size_t n = strlen(s), kl = strlen(keyset_key_kid(es)) + strlen(keyset_key_kid(rs));
	char *out = malloc(n * (kl + 1) + 1), *o = out;

	*rsa = false;
	while (*s != '\0') {
		if (s[0] == '$' && (s[1] == 'E' || s[1] == 'R') && s[2] == 'S') {
			const char *kid = keyset_key_kid(s[1] == 'E' ? es : rs);

			*rsa |= s[1] == 'R';
			memcpy(o, kid, strlen(kid));
			o += strlen(kid);
			s += 3;
		} else
			*o++ = *s++;
	}
	*o = '\0';
	return out;
}

/* Sign input with key into a JOSE signature, base64url; NULL on failure. */
static char *
sign(const struct keyset_key *key, const char *input)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char der[1024], raw[64];
	const unsigned char *p = der;
	const BIGNUM *r, *s;
	ECDSA_SIG *sig;
	size_t n = sizeof der;
	char *out = NULL;

	if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, keyset_key_pkey(key)) != 1 ||
	    EVP_DigestSign(ctx, der, &n, (const unsigned char *)input, strlen(input)) != 1)
		goto out;
	if (key == rs) {
		out = b64url_encode(der, n);
		goto out;
	}
	if ((sig = d2i_ECDSA_SIG(NULL, &p, (long)n)) == NULL)
		goto out;
	ECDSA_SIG_get0(sig, &r, &s);
	BN_bn2binpad(r, raw, 32);
	BN_bn2binpad(s, raw + 32, 32);
	ECDSA_SIG_free(sig);
	out = b64url_encode(raw, sizeof raw);
out:
	EVP_MD_CTX_free(ctx);
	return out;
}

static void
verify(const char *token)
{
	static const struct jwt_expect expect = {
		.typ = "at+jwt", .iss = ISS, .aud = AUD, .leeway_s = 30,
	};
	static const struct jwt_expect wild = { .leeway_s = 1000 };
	json_object *claims;
	char err[256];
	const char *aud[8];
	int64_t exp;
	enum jwt_err e;
	int n;

	e = jwt_verify(token, ks, &expect, &claims, err, sizeof err);
	FUZZ_ASSERT((e == JWT_OK) == (claims != NULL));
	FUZZ_ASSERT(strcmp(jwt_err_name(e), "unknown") != 0);
	if (e == JWT_OK) {
		FUZZ_ASSERT(strcmp(jwt_claim_string(claims, "iss"), ISS) == 0);
		FUZZ_ASSERT(jwt_claim_int(claims, "exp", &exp) == 0 && exp > NOW - 30);
		if ((n = jwt_claim_strings(claims, "aud", aud, 8)) >= 0) {
			bool found = false;

			for (int i = 0; i < n; i++)
				found |= strcmp(aud[i], AUD) == 0;
			FUZZ_ASSERT(found);
		}
		json_object_put(claims);
	}
	e = jwt_verify(token, ks, &wild, NULL, err, sizeof err);
	(void)jwt_verify(token, ks, NULL, NULL, NULL, 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s, *nl, *hdr, *h64, *p64, *input, *sig, *token;
	bool rsa;

	if (size < 1 || size > JWT_MAX_LEN + 2)
		return 0;
	s = fuzz_str(data + 1, size - 1);
	if ((data[0] & 1) == 0) {
		verify(s);
		free(s);
		return 0;
	}
	if ((nl = strchr(s, '\n')) == NULL) {
		free(s);
		return 0;
	}
	*nl = '\0';
	hdr = with_kids(s, &rsa);
	h64 = b64url_encode(hdr, strlen(hdr));
	p64 = b64url_encode(nl + 1, size - 1 - (size_t)(nl + 1 - s));
	input = malloc(strlen(h64) + strlen(p64) + 2);
	sprintf(input, "%s.%s", h64, p64);
	if ((sig = sign(rsa ? rs : es, input)) != NULL) {
		token = malloc(strlen(input) + strlen(sig) + 2);
		sprintf(token, "%s.%s", input, sig);
		verify(token);
		free(token);
		free(sig);
	}
	free(input);
	free(p64);
	free(h64);
	free(hdr);
	free(s);
	return 0;
}
