/*
 * Keysets (see keys.h). Private keys come only from PEM strings or local
 * generation; remote JWKS keys are built from public parameters and can
 * never sign. Key material is never logged or put in an error message.
 */
#include "auth/crypto/keyset.h"

#include <json-c/json.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/b64url.h"
#include "auth/crypto/jwt.h"
#include "common/errbuf.h"
#include "common/xalloc.h"

struct keyset_key {
	EVP_PKEY *pkey;
	enum keyset_alg alg;
	bool can_sign;
	char *kid;
	char *thumbprint;
	json_object *jwk; /* public members only: kty, crv/x/y or n/e */
};

struct keyset {
	struct keyset_key **keys;
	size_t nkeys;
	ssize_t signer; /* index of the signing key, or -1 */
};

static const struct {
	enum keyset_alg alg;
	const char *name;
} keyset_algs[] = {
	{ KEYSET_ALG_RS256, "RS256" },
	{ KEYSET_ALG_RS384, "RS384" },
	{ KEYSET_ALG_RS512, "RS512" },
	{ KEYSET_ALG_ES256, "ES256" },
	{ KEYSET_ALG_ES384, "ES384" },
	{ KEYSET_ALG_PS256, "PS256" },
	{ KEYSET_ALG_EDDSA, "EdDSA" },
};

/* The curves we accept: JOSE name, OpenSSL group name, coordinate size. */
static const struct {
	const char *crv;
	const char *group;
	size_t size;
	enum keyset_alg alg;
} keyset_curves[] = {
	{ "P-256", "prime256v1", 32, KEYSET_ALG_ES256 },
	{ "P-384", "secp384r1", 48, KEYSET_ALG_ES384 },
};

const char *
keyset_alg_name(enum keyset_alg alg)
{
	for (size_t i = 0; i < sizeof keyset_algs / sizeof keyset_algs[0]; i++) {
		if (keyset_algs[i].alg == alg)
			return keyset_algs[i].name;
	}
	return NULL;
}

enum keyset_alg
keyset_alg_from_name(const char *name)
{
	if (name == NULL)
		return KEYSET_ALG_NONE;
	for (size_t i = 0; i < sizeof keyset_algs / sizeof keyset_algs[0]; i++) {
		if (strcmp(keyset_algs[i].name, name) == 0)
			return keyset_algs[i].alg;
	}
	return KEYSET_ALG_NONE;
}

struct keyset *
keyset_new(void)
{
	struct keyset *ks = xcalloc(1, sizeof *ks);

	ks->signer = -1;
	return ks;
}

static void
keyset_key_free(struct keyset_key *key)
{
	if (key == NULL)
		return;
	EVP_PKEY_free(key->pkey);
	free(key->kid);
	free(key->thumbprint);
	json_object_put(key->jwk);
	free(key);
}

void
keyset_free(struct keyset *ks)
{
	if (ks == NULL)
		return;
	for (size_t i = 0; i < ks->nkeys; i++)
		keyset_key_free(ks->keys[i]);
	free(ks->keys);
	free(ks);
}

size_t
keyset_count(const struct keyset *ks)
{
	return ks->nkeys;
}

const struct keyset_key *
keyset_at(const struct keyset *ks, size_t i)
{
	return i < ks->nkeys ? ks->keys[i] : NULL;
}

const struct keyset_key *
keyset_signing_key(const struct keyset *ks)
{
	return ks->signer < 0 ? NULL : ks->keys[ks->signer];
}

const struct keyset_key *
keyset_find(const struct keyset *ks, const char *kid)
{
	if (kid == NULL)
		return NULL;
	for (size_t i = 0; i < ks->nkeys; i++) {
		if (strcmp(ks->keys[i]->kid, kid) == 0)
			return ks->keys[i];
	}
	return NULL;
}

const char *
keyset_key_kid(const struct keyset_key *key)
{
	return key->kid;
}

const char *
keyset_key_thumbprint(const struct keyset_key *key)
{
	return key->thumbprint;
}

enum keyset_alg
keyset_key_alg(const struct keyset_key *key)
{
	return key->alg;
}

bool
keyset_key_can_sign(const struct keyset_key *key)
{
	return key->can_sign;
}

EVP_PKEY *
keyset_key_pkey(const struct keyset_key *key)
{
	return key->pkey;
}

/* A BIGNUM parameter of pkey as base64url: minimal, or padded to pad bytes. */
static char *
keyset_bn_param_b64(const EVP_PKEY *pkey, const char *name, size_t pad)
{
	BIGNUM *bn = NULL;
	unsigned char *buf = NULL;
	size_t len;
	char *s = NULL;

	if (EVP_PKEY_get_bn_param(pkey, name, &bn) != 1)
		goto out;
	len = (size_t)BN_num_bytes(bn);
	if (pad != 0) {
		if (len > pad)
			goto out;
		len = pad;
	}
	if (len == 0)
		goto out;
	buf = xmalloc(len);
	if (pad != 0 ? BN_bn2binpad(bn, buf, (int)len) != (int)len : BN_bn2bin(bn, buf) != (int)len)
		goto out;
	s = b64url_encode(buf, len);
out:
	free(buf);
	BN_free(bn);
	return s;
}

/*
 * Fill key->jwk with the public members and key->thumbprint with the RFC
 * 7638 thumbprint: SHA-256 over the required members in lexical order,
 * no whitespace. crv is NULL for RSA.
 */
static int
keyset_key_describe(struct keyset_key *key, const char *crv, size_t coord)
{
	char *a = NULL, *b = NULL, *canon = NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int rc = -1;

	key->jwk = json_object_new_object();
	if (crv != NULL && coord == 0) { /* OKP: Ed25519 */
		unsigned char raw[32];
		size_t rawlen = sizeof raw;

		if (EVP_PKEY_get_raw_public_key(key->pkey, raw, &rawlen) != 1 ||
		    rawlen != sizeof raw)
			goto out;
		a = b64url_encode(raw, rawlen);
		canon = xasprintf("{\"crv\":\"%s\",\"kty\":\"OKP\",\"x\":\"%s\"}", crv, a);
		json_object_object_add(key->jwk, "kty", json_object_new_string("OKP"));
		json_object_object_add(key->jwk, "crv", json_object_new_string(crv));
		json_object_object_add(key->jwk, "x", json_object_new_string(a));
	} else if (crv == NULL) {
		a = keyset_bn_param_b64(key->pkey, OSSL_PKEY_PARAM_RSA_N, 0);
		b = keyset_bn_param_b64(key->pkey, OSSL_PKEY_PARAM_RSA_E, 0);
		if (a == NULL || b == NULL)
			goto out;
		canon = xasprintf("{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}", b, a);
		json_object_object_add(key->jwk, "kty", json_object_new_string("RSA"));
		json_object_object_add(key->jwk, "n", json_object_new_string(a));
		json_object_object_add(key->jwk, "e", json_object_new_string(b));
	} else {
		a = keyset_bn_param_b64(key->pkey, OSSL_PKEY_PARAM_EC_PUB_X, coord);
		b = keyset_bn_param_b64(key->pkey, OSSL_PKEY_PARAM_EC_PUB_Y, coord);
		if (a == NULL || b == NULL)
			goto out;
		canon = xasprintf("{\"crv\":\"%s\",\"kty\":\"EC\",\"x\":\"%s\","
				  "\"y\":\"%s\"}",
		    crv, a, b);
		json_object_object_add(key->jwk, "kty", json_object_new_string("EC"));
		json_object_object_add(key->jwk, "crv", json_object_new_string(crv));
		json_object_object_add(key->jwk, "x", json_object_new_string(a));
		json_object_object_add(key->jwk, "y", json_object_new_string(b));
	}
	if (EVP_Digest(canon, strlen(canon), md, &mdlen, EVP_sha256(), NULL) != 1)
		goto out;
	key->thumbprint = b64url_encode(md, mdlen);
	rc = 0;
out:
	free(a);
	free(b);
	free(canon);
	return rc;
}

/* Append key, refusing a kid already present. Takes key in all cases. */
static int
keyset_append(struct keyset *ks, struct keyset_key *key, char *err, size_t errlen)
{
	if (ks->nkeys >= KEYSET_MAX_KEYS) {
		errbuf_set(err, errlen, "too many keys (at most %d)", KEYSET_MAX_KEYS);
		goto fail;
	}
	if (keyset_find(ks, key->kid) != NULL) {
		errbuf_set(err, errlen, "duplicate key id \"%s\"", key->kid);
		goto fail;
	}
	ks->keys = xreallocarray(ks->keys, ks->nkeys + 1, sizeof *ks->keys);
	ks->keys[ks->nkeys] = key;
	if (key->can_sign && ks->signer < 0)
		ks->signer = (ssize_t)ks->nkeys;
	ks->nkeys++;
	return 0;
fail:
	keyset_key_free(key);
	return -1;
}

/*
 * Wrap a private key we hold: decide its algorithm (refusing what we do not
 * support), describe it and use its thumbprint as kid. Takes pkey.
 */
static struct keyset_key *
keyset_key_from_private(EVP_PKEY *pkey, char *err, size_t errlen)
{
	struct keyset_key *key = xcalloc(1, sizeof *key);
	char group[64];
	const char *crv = NULL;
	size_t coord = 0, glen = 0;
	int bits;

	key->pkey = pkey;
	key->can_sign = true;
	if (EVP_PKEY_is_a(pkey, "RSA")) {
		bits = EVP_PKEY_get_bits(pkey);
		if (bits < KEYSET_RSA_MIN_BITS || bits > KEYSET_RSA_MAX_BITS) {
			errbuf_set(err, errlen,
			    "RSA key of %d bits is not "
			    "supported (need %d to %d bits)",
			    bits, KEYSET_RSA_MIN_BITS, KEYSET_RSA_MAX_BITS);
			goto fail;
		}
		key->alg = KEYSET_ALG_RS256;
	} else if (EVP_PKEY_is_a(pkey, "EC")) {
		if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
			sizeof group, &glen) != 1) {
			errbuf_set(err, errlen,
			    "EC key without a named curve "
			    "is not supported (need P-256 or P-384)");
			goto fail;
		}
		for (size_t i = 0; i < sizeof keyset_curves / sizeof keyset_curves[0]; i++) {
			if (strcmp(group, keyset_curves[i].group) == 0) {
				crv = keyset_curves[i].crv;
				coord = keyset_curves[i].size;
				key->alg = keyset_curves[i].alg;
			}
		}
		if (crv == NULL) {
			errbuf_set(err, errlen,
			    "EC curve %s is not supported "
			    "(need P-256 or P-384)",
			    group);
			goto fail;
		}
	} else {
		errbuf_set(err, errlen,
		    "key type %s is not supported (need "
		    "RSA >= %d bits, EC P-256 or EC P-384)",
		    EVP_PKEY_get0_type_name(pkey) ? EVP_PKEY_get0_type_name(pkey) : "unknown",
		    KEYSET_RSA_MIN_BITS);
		goto fail;
	}
	if (keyset_key_describe(key, crv, coord) != 0) {
		errbuf_set(err, errlen, "cannot read the public part of the key");
		goto fail;
	}
	key->kid = xstrdup(key->thumbprint);
	return key;
fail:
	keyset_key_free(key);
	return NULL;
}

/* Never prompt for a passphrase: encrypted keys simply fail to load. */
static int
keyset_no_passphrase(char *buf, int size, int rwflag, void *arg)
{
	return -1;
}

int
keyset_add_pem(struct keyset *ks, const char *pem, size_t len, char *err, size_t errlen)
{
	struct keyset_key *key;
	EVP_PKEY *pkey = NULL;
	BIO *bio = NULL;
	int rc = -1;

	if (len == 0 || len > KEYSET_PEM_MAX) {
		errbuf_set(err, errlen, "PEM key of %zu bytes (need 1 to %d)", len, KEYSET_PEM_MAX);
		goto out;
	}
	if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL) {
		errbuf_set(err, errlen, "cannot read PEM");
		goto out;
	}
	pkey = PEM_read_bio_PrivateKey(bio, NULL, keyset_no_passphrase, NULL);
	if (pkey == NULL) {
		errbuf_set(err, errlen,
		    "not an unencrypted PEM private key "
		    "(PKCS#8, PKCS#1 or SEC1)");
		goto out;
	}
	key = keyset_key_from_private(pkey, err, errlen);
	pkey = NULL;
	if (key == NULL)
		goto out;
	rc = keyset_append(ks, key, err, errlen);
out:
	ERR_clear_error();
	EVP_PKEY_free(pkey);
	BIO_free(bio);
	return rc;
}

int
keyset_generate_es256(struct keyset *ks, char *err, size_t errlen)
{
	struct keyset_key *key;
	EVP_PKEY *pkey;

	pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (pkey == NULL) {
		ERR_clear_error();
		errbuf_set(err, errlen, "cannot generate a P-256 key");
		return -1;
	}
	if ((key = keyset_key_from_private(pkey, err, errlen)) == NULL)
		return -1;
	return keyset_append(ks, key, err, errlen);
}

char *
keyset_jwks_json(const struct keyset *ks)
{
	json_object *doc = json_object_new_object(), *arr, *jwk, *v;
	const struct keyset_key *key;
	char *s;

	arr = json_object_new_array();
	json_object_object_add(doc, "keys", arr);
	for (size_t i = 0; i < ks->nkeys; i++) {
		key = ks->keys[i];
		jwk = json_object_new_object();
		json_object_object_get_ex(key->jwk, "kty", &v);
		json_object_object_add(jwk, "kty", json_object_get(v));
		json_object_object_add(jwk, "use", json_object_new_string("sig"));
		json_object_object_add(jwk, "alg",
		    json_object_new_string(keyset_alg_name(key->alg)));
		json_object_object_add(jwk, "kid", json_object_new_string(key->kid));
		json_object_object_foreach(key->jwk, name, val)
		{
			if (strcmp(name, "kty") != 0)
				json_object_object_add(jwk, name, json_object_get(val));
		}
		json_object_array_add(arr, jwk);
	}
	s = xstrdup(json_object_to_json_string_ext(doc,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(doc);
	return s;
}

/* The string member name of obj, or NULL if absent or not a string. */
static const char *
keyset_json_str(json_object *obj, const char *name, bool *present)
{
	json_object *v;

	if (!json_object_object_get_ex(obj, name, &v)) {
		if (present != NULL)
			*present = false;
		return NULL;
	}
	if (present != NULL)
		*present = true;
	if (!json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* Decode a base64url member into a new buffer of 1..max bytes. */
static unsigned char *
keyset_json_b64(json_object *obj, const char *name, size_t max, size_t *len)
{
	const char *s = keyset_json_str(obj, name, NULL);
	unsigned char *buf;

	if (s == NULL || strlen(s) > b64url_encoded_len(max) ||
	    b64url_decode(s, strlen(s), &buf, len) != 0)
		return NULL;
	if (*len == 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* Build a public EVP_PKEY of type name from params; NULL on failure. */
static EVP_PKEY *
keyset_pkey_fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL, *check = NULL;
	EVP_PKEY *pkey = NULL;

	if ((params = OSSL_PARAM_BLD_to_param(bld)) == NULL)
		goto out;
	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
		goto out;
	/* EC: refuse points off the curve. Not RSA: OpenSSL 3.0's SP 800-56B
	 * public check is probabilistic and refused valid moduli now and then
	 * (found by fuzzing: ~0.5% of parses of one good JWKS); the caller's
	 * size, parity and exponent checks suffice for a verification key. */
	if (strcmp(type, "EC") == 0) {
		check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
		if (check == NULL || EVP_PKEY_public_check(check) != 1) {
			EVP_PKEY_free(pkey);
			pkey = NULL;
		}
	}
out:
	EVP_PKEY_CTX_free(check);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return pkey;
}

/* An RSA public key from a JWK's n and e, 2048-8192 bits; NULL otherwise. */
static EVP_PKEY *
keyset_rsa_from_jwk(json_object *jwk)
{
	unsigned char *n = NULL, *e = NULL;
	size_t nlen, elen;
	BIGNUM *bn_n = NULL, *bn_e = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	EVP_PKEY *pkey = NULL;
	int bits;

	n = keyset_json_b64(jwk, "n", KEYSET_RSA_MAX_BITS / 8 + 1, &nlen);
	e = keyset_json_b64(jwk, "e", 8, &elen);
	if (n == NULL || e == NULL)
		goto out;
	bn_n = BN_bin2bn(n, (int)nlen, NULL);
	bn_e = BN_bin2bn(e, (int)elen, NULL);
	if (bn_n == NULL || bn_e == NULL || !BN_is_odd(bn_n) || !BN_is_odd(bn_e) || BN_is_one(bn_e))
		goto out;
	bits = BN_num_bits(bn_n);
	if (bits < KEYSET_RSA_MIN_BITS || bits > KEYSET_RSA_MAX_BITS)
		goto out;
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) != 1 ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) != 1)
		goto out;
	pkey = keyset_pkey_fromdata("RSA", bld);
out:
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn_n);
	BN_free(bn_e);
	free(n);
	free(e);
	return pkey;
}

/* An EC public key from a JWK's x and y on curve c; NULL if off-curve. */
static EVP_PKEY *
keyset_ec_from_jwk(json_object *jwk, const char *group, size_t size)
{
	unsigned char *x = NULL, *y = NULL, point[1 + 2 * 66];
	size_t xlen, ylen;
	OSSL_PARAM_BLD *bld = NULL;
	EVP_PKEY *pkey = NULL;

	x = keyset_json_b64(jwk, "x", size, &xlen);
	y = keyset_json_b64(jwk, "y", size, &ylen);
	/* RFC 7518 §6.2.1.2: the full coordinate length, no shortening. */
	if (x == NULL || y == NULL || xlen != size || ylen != size)
		goto out;
	point[0] = 0x04;
	memcpy(point + 1, x, size);
	memcpy(point + 1 + size, y, size);
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) != 1 ||
	    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * size) !=
		1)
		goto out;
	pkey = keyset_pkey_fromdata("EC", bld);
out:
	OSSL_PARAM_BLD_free(bld);
	free(x);
	free(y);
	return pkey;
}

/* An Ed25519 public key from an OKP JWK's x (32 bytes), or NULL. */
static EVP_PKEY *
keyset_okp_from_jwk(json_object *jwk)
{
	unsigned char *x;
	size_t len = 0;
	EVP_PKEY *pkey = NULL;

	if ((x = keyset_json_b64(jwk, "x", 32, &len)) == NULL)
		return NULL;
	if (len == 32)
		pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, len);
	free(x);
	return pkey;
}

/*
 * One JWK of a remote JWKS as a verification key, or NULL when it is to be
 * skipped (other kty, use "enc", unsupported curve/alg, malformed).
 */
static struct keyset_key *
keyset_key_from_jwk(json_object *jwk)
{
	struct keyset_key *key = NULL;
	const char *kty, *use, *alg_name, *kid, *crv;
	enum keyset_alg alg = KEYSET_ALG_NONE;
	bool has_use, has_alg, has_kid;
	size_t coord = 0, i;
	EVP_PKEY *pkey = NULL;

	if (!json_object_is_type(jwk, json_type_object))
		return NULL;
	kty = keyset_json_str(jwk, "kty", NULL);
	use = keyset_json_str(jwk, "use", &has_use);
	alg_name = keyset_json_str(jwk, "alg", &has_alg);
	kid = keyset_json_str(jwk, "kid", &has_kid);
	if (kty == NULL || (has_use && (use == NULL || strcmp(use, "sig") != 0)) ||
	    (has_alg && alg_name == NULL))
		return NULL;
	if (has_kid && (kid == NULL || *kid == '\0' || strlen(kid) > KEYSET_KID_MAX))
		return NULL;
	if (has_alg && (alg = keyset_alg_from_name(alg_name)) == KEYSET_ALG_NONE)
		return NULL;
	crv = NULL;
	if (strcmp(kty, "RSA") == 0) {
		if (!has_alg)
			alg = KEYSET_ALG_RS256;
		if (alg != KEYSET_ALG_RS256 && alg != KEYSET_ALG_RS384 && alg != KEYSET_ALG_RS512 &&
		    alg != KEYSET_ALG_PS256)
			return NULL;
		pkey = keyset_rsa_from_jwk(jwk);
	} else if (strcmp(kty, "OKP") == 0) {
		if ((crv = keyset_json_str(jwk, "crv", NULL)) == NULL ||
		    strcmp(crv, "Ed25519") != 0)
			return NULL;
		if (has_alg && alg != KEYSET_ALG_EDDSA)
			return NULL;
		alg = KEYSET_ALG_EDDSA;
		pkey = keyset_okp_from_jwk(jwk);
	} else if (strcmp(kty, "EC") == 0) {
		if ((crv = keyset_json_str(jwk, "crv", NULL)) == NULL)
			return NULL;
		for (i = 0; i < sizeof keyset_curves / sizeof keyset_curves[0]; i++) {
			if (strcmp(crv, keyset_curves[i].crv) == 0)
				break;
		}
		if (i == sizeof keyset_curves / sizeof keyset_curves[0])
			return NULL;
		if (!has_alg)
			alg = keyset_curves[i].alg;
		if (alg != keyset_curves[i].alg)
			return NULL;
		coord = keyset_curves[i].size;
		pkey = keyset_ec_from_jwk(jwk, keyset_curves[i].group, coord);
	} else
		return NULL;
	if (pkey == NULL)
		return NULL;
	key = xcalloc(1, sizeof *key);
	key->pkey = pkey;
	key->alg = alg;
	key->can_sign = false;
	if (keyset_key_describe(key, crv, coord) != 0) {
		keyset_key_free(key);
		return NULL;
	}
	key->kid = xstrdup(has_kid ? kid : key->thumbprint);
	return key;
}

struct keyset *
keyset_from_jwks(const char *json, size_t len, char *err, size_t errlen)
{
	struct keyset *ks = NULL;
	struct keyset_key *key;
	json_object *doc = NULL, *arr;
	size_t n, i;

	if (len > KEYSET_JWKS_MAX) {
		errbuf_set(err, errlen, "JWKS document of %zu bytes (limit %d)", len,
		    KEYSET_JWKS_MAX);
		goto out;
	}
	doc = jwt_json_parse(json, len);
	if (doc == NULL || !json_object_is_type(doc, json_type_object)) {
		errbuf_set(err, errlen, "JWKS document is not a JSON object");
		goto out;
	}
	if (!json_object_object_get_ex(doc, "keys", &arr) ||
	    !json_object_is_type(arr, json_type_array)) {
		errbuf_set(err, errlen, "JWKS document has no \"keys\" array");
		goto out;
	}
	n = json_object_array_length(arr);
	if (n > KEYSET_MAX_KEYS) {
		errbuf_set(err, errlen, "JWKS document has %zu keys (limit %d)", n,
		    KEYSET_MAX_KEYS);
		goto out;
	}
	ks = keyset_new();
	for (i = 0; i < n; i++) {
		key = keyset_key_from_jwk(json_object_array_get_idx(arr, i));
		if (key == NULL)
			continue;
		/* A repeated kid is ambiguous: the first one wins. */
		if (keyset_find(ks, key->kid) != NULL) {
			keyset_key_free(key);
			continue;
		}
		keyset_append(ks, key, NULL, 0);
	}
	if (ks->nkeys == 0) {
		errbuf_set(err, errlen,
		    "JWKS document has no usable signature "
		    "key (RSA >= %d bits, EC P-256 or P-384)",
		    KEYSET_RSA_MIN_BITS);
		keyset_free(ks);
		ks = NULL;
	}
out:
	ERR_clear_error();
	json_object_put(doc);
	return ks;
}
