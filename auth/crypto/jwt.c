/*
 * Compact JWS sign/verify (see jwt.h). The algorithm always comes from the
 * key; ECDSA signatures travel in the JOSE raw R||S form and are converted
 * to and from DER only at the OpenSSL boundary. Never logs a token.
 */
#include "auth/crypto/jwt.h"

#include <math.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/b64url.h"
#include "common/clock.h"
#include "common/errbuf.h"
#include "common/xalloc.h"

static const char *jwt_err_names[] = {
	[JWT_OK] = "ok",
	[JWT_ERR_TOO_LARGE] = "too_large",
	[JWT_ERR_MALFORMED] = "malformed",
	[JWT_ERR_ALG] = "bad_alg",
	[JWT_ERR_KID] = "bad_kid",
	[JWT_ERR_CRIT] = "crit",
	[JWT_ERR_TYP] = "bad_typ",
	[JWT_ERR_SIGNATURE] = "bad_signature",
	[JWT_ERR_CLAIM] = "bad_claim",
	[JWT_ERR_EXPIRED] = "expired",
	[JWT_ERR_NOT_YET_VALID] = "not_yet_valid",
	[JWT_ERR_ISSUER] = "bad_issuer",
	[JWT_ERR_AUDIENCE] = "bad_audience",
};

const char *
jwt_err_name(enum jwt_err err)
{
	if ((size_t)err >= sizeof jwt_err_names / sizeof jwt_err_names[0])
		return "unknown";
	return jwt_err_names[err];
}

/* Digest name and, for ECDSA, the coordinate size (0 for RSA). */
static const char *
jwt_alg_md(enum keyset_alg alg, size_t *ec_size)
{
	*ec_size = 0;
	switch (alg) {
	case KEYSET_ALG_RS256:
		return "SHA256";
	case KEYSET_ALG_RS384:
		return "SHA384";
	case KEYSET_ALG_RS512:
		return "SHA512";
	case KEYSET_ALG_ES256:
		*ec_size = 32;
		return "SHA256";
	case KEYSET_ALG_ES384:
		*ec_size = 48;
		return "SHA384";
	case KEYSET_ALG_PS256:
		return "SHA256";
	case KEYSET_ALG_EDDSA: /* no separate digest: see jwt_verify_bytes */
	case KEYSET_ALG_NONE:
		break;
	}
	return NULL;
}

/* DER ECDSA signature to JOSE R||S of 2 * size bytes in raw; 0 or -1. */
static int
jwt_ecdsa_der_to_raw(const unsigned char *der, size_t derlen, unsigned char *raw, size_t size)
{
	const unsigned char *p = der;
	const BIGNUM *r, *s;
	ECDSA_SIG *sig;
	int rc = -1;

	if ((sig = d2i_ECDSA_SIG(NULL, &p, (long)derlen)) == NULL)
		return -1;
	ECDSA_SIG_get0(sig, &r, &s);
	if (BN_bn2binpad(r, raw, (int)size) == (int)size &&
	    BN_bn2binpad(s, raw + size, (int)size) == (int)size)
		rc = 0;
	ECDSA_SIG_free(sig);
	return rc;
}

/* JOSE R||S to a new DER buffer; NULL on failure. */
static unsigned char *
jwt_ecdsa_raw_to_der(const unsigned char *raw, size_t size, size_t *derlen)
{
	ECDSA_SIG *sig = NULL;
	BIGNUM *r = NULL, *s = NULL;
	unsigned char *der = NULL, *p;
	int len;

	r = BN_bin2bn(raw, (int)size, NULL);
	s = BN_bin2bn(raw + size, (int)size, NULL);
	if (r == NULL || s == NULL || (sig = ECDSA_SIG_new()) == NULL)
		goto out;
	if (ECDSA_SIG_set0(sig, r, s) != 1)
		goto out;
	r = s = NULL;
	if ((len = i2d_ECDSA_SIG(sig, NULL)) <= 0)
		goto out;
	der = p = xmalloc((size_t)len);
	if (i2d_ECDSA_SIG(sig, &p) != len) {
		free(der);
		der = NULL;
		goto out;
	}
	*derlen = (size_t)len;
out:
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(sig);
	return der;
}

/* Sign data with key; a new buffer in JOSE form, or NULL. */
static unsigned char *
jwt_sign_bytes(const struct keyset_key *key, const char *data, size_t len, size_t *siglen)
{
	EVP_MD_CTX *ctx = NULL;
	unsigned char *sig = NULL, *raw = NULL;
	const char *md;
	size_t ec_size, n = 0;

	if ((md = jwt_alg_md(keyset_key_alg(key), &ec_size)) == NULL)
		goto out;
	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit_ex(ctx, NULL, md, NULL, NULL, keyset_key_pkey(key), NULL) != 1 ||
	    EVP_DigestSign(ctx, NULL, &n, (const unsigned char *)data, len) != 1)
		goto out;
	sig = xmalloc(n);
	if (EVP_DigestSign(ctx, sig, &n, (const unsigned char *)data, len) != 1)
		goto fail;
	if (ec_size != 0) {
		raw = xmalloc(2 * ec_size);
		if (jwt_ecdsa_der_to_raw(sig, n, raw, ec_size) != 0)
			goto fail;
		free(sig);
		sig = raw;
		raw = NULL;
		n = 2 * ec_size;
	}
	*siglen = n;
	goto out;
fail:
	free(sig);
	sig = NULL;
out:
	free(raw);
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	return sig;
}

char *
jwt_sign(const struct keyset_key *key, const char *typ, json_object *claims, char *err,
    size_t errlen)
{
	json_object *hdr = NULL;
	char *h64 = NULL, *p64 = NULL, *input = NULL, *s64 = NULL;
	char *token = NULL;
	unsigned char *sig = NULL;
	const char *json;
	size_t siglen;

	if (key == NULL || !keyset_key_can_sign(key)) {
		errbuf_set(err, errlen, "no signing key");
		goto out;
	}
	if (!json_object_is_type(claims, json_type_object)) {
		errbuf_set(err, errlen, "claims are not a JSON object");
		goto out;
	}
	hdr = json_object_new_object();
	json_object_object_add(hdr, "alg",
	    json_object_new_string(keyset_alg_name(keyset_key_alg(key))));
	if (typ != NULL)
		json_object_object_add(hdr, "typ", json_object_new_string(typ));
	json_object_object_add(hdr, "kid", json_object_new_string(keyset_key_kid(key)));
	json = json_object_to_json_string_ext(hdr,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	h64 = b64url_encode(json, strlen(json));
	json = json_object_to_json_string_ext(claims,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	p64 = b64url_encode(json, strlen(json));
	input = xasprintf("%s.%s", h64, p64);
	if ((sig = jwt_sign_bytes(key, input, strlen(input), &siglen)) == NULL) {
		errbuf_set(err, errlen, "signing with key %s failed", keyset_key_kid(key));
		goto out;
	}
	s64 = b64url_encode(sig, siglen);
	token = xasprintf("%s.%s", input, s64);
out:
	json_object_put(hdr);
	free(h64);
	free(p64);
	free(input);
	free(s64);
	free(sig);
	return token;
}

/* Check a JOSE signature over data[0..len) with key; true if it verifies. */
static bool
jwt_verify_bytes(const struct keyset_key *key, const char *data, size_t len,
    const unsigned char *sig, size_t siglen)
{
	EVP_PKEY *pkey = keyset_key_pkey(key);
	EVP_MD_CTX *ctx = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	unsigned char *der = NULL;
	const unsigned char *s = sig;
	const char *md;
	size_t ec_size, n = siglen;
	bool ok = false;

	if (keyset_key_alg(key) == KEYSET_ALG_EDDSA) {
		/* RFC 8037: Ed25519 signs the message itself, 64 bytes. */
		if (siglen != 64 || (ctx = EVP_MD_CTX_new()) == NULL ||
		    EVP_DigestVerifyInit_ex(ctx, NULL, NULL, NULL, NULL, pkey, NULL) != 1)
			goto out;
		ok = EVP_DigestVerify(ctx, sig, siglen, (const unsigned char *)data, len) == 1;
		goto out;
	}
	if ((md = jwt_alg_md(keyset_key_alg(key), &ec_size)) == NULL)
		goto out;
	if (ec_size != 0) {
		/* RFC 7518 §3.4: exactly R||S, each the curve's size. */
		if (siglen != 2 * ec_size || (der = jwt_ecdsa_raw_to_der(sig, ec_size, &n)) == NULL)
			goto out;
		s = der;
	} else if (siglen != (size_t)EVP_PKEY_get_size(pkey))
		goto out;
	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestVerifyInit_ex(ctx, &pctx, md, NULL, NULL, pkey, NULL) != 1)
		goto out;
	/* RFC 7518 §3.5: PSS with MGF1 over the same digest, salt of its size. */
	if (keyset_key_alg(key) == KEYSET_ALG_PS256 &&
	    (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
		EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1))
		goto out;
	ok = EVP_DigestVerify(ctx, s, n, (const unsigned char *)data, len) == 1;
out:
	free(der);
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	return ok;
}

/*
 * Reject what json-c accepts even in strict mode: single quotes, NaN and
 * Infinity, other bare words, and raw control characters inside strings.
 */
static bool
jwt_json_prescan(const unsigned char *s, size_t len)
{
	bool in_string = false;
	size_t i;

	for (i = 0; i < len; i++) {
		if (in_string) {
			if (s[i] < 0x20)
				return false;
			if (s[i] == '\\')
				i++;
			else if (s[i] == '"')
				in_string = false;
		} else if (s[i] == '"')
			in_string = true;
		else if (strchr(" \t\r\n{}[]:,-+.0123456789eEtrufalsn", s[i]) == NULL ||
		    s[i] == '\0')
			return false;
	}
	return !in_string;
}

json_object *
jwt_json_parse(const char *text, size_t len)
{
	const unsigned char *s = (const unsigned char *)text;
	struct json_tokener *tok;
	json_object *obj = NULL;
	size_t end;

	if (len > INT32_MAX || !jwt_json_prescan(s, len))
		return NULL;
	if ((tok = json_tokener_new_ex(16)) == NULL)
		return NULL;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, text, (int)len);
	if (obj == NULL || json_tokener_get_error(tok) != json_tokener_success)
		goto fail;
	for (end = json_tokener_get_parse_end(tok); end < len; end++) {
		if (strchr(" \t\r\n", s[end]) == NULL || s[end] == '\0')
			goto fail;
	}
	json_tokener_free(tok);
	return obj;
fail:
	json_object_put(obj);
	json_tokener_free(tok);
	return NULL;
}

/* Decode a base64url segment holding a JSON object. */
static json_object *
jwt_segment_object(const char *s, size_t len)
{
	unsigned char *buf;
	json_object *obj;
	size_t n;

	if (len == 0 || b64url_decode(s, len, &buf, &n) != 0)
		return NULL;
	obj = jwt_json_parse((const char *)buf, n);
	free(buf);
	if (obj != NULL && !json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		obj = NULL;
	}
	return obj;
}

/* A member that must be a string if present: 0 absent, 1 string, -1 else. */
static int
jwt_member_string(json_object *obj, const char *name, const char **out)
{
	json_object *v;

	*out = NULL;
	if (!json_object_object_get_ex(obj, name, &v))
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return -1;
	*out = json_object_get_string(v);
	return 1;
}

int
jwt_claim_int(json_object *claims, const char *name, int64_t *out)
{
	json_object *v;
	double d;

	if (claims == NULL || !json_object_object_get_ex(claims, name, &v))
		return -1;
	if (json_object_is_type(v, json_type_int)) {
		/* One range for integers and doubles; it also refuses the
		 * values json-c saturates to when a number does not fit. */
		*out = json_object_get_int64(v);
		if (*out < -9000000000000000LL || *out > 9000000000000000LL)
			return -1;
		return 0;
	}
	if (json_object_is_type(v, json_type_double)) {
		d = json_object_get_double(v);
		if (!isfinite(d) || d != floor(d) || d < -9.0e15 || d > 9.0e15)
			return -1;
		*out = (int64_t)d;
		return 0;
	}
	return -1;
}

const char *
jwt_claim_string(json_object *claims, const char *name)
{
	const char *s;

	if (claims == NULL || jwt_member_string(claims, name, &s) != 1)
		return NULL;
	return s;
}

int
jwt_claim_strings(json_object *claims, const char *name, const char **out, size_t max)
{
	json_object *v, *e;
	size_t n, i;

	if (claims == NULL || !json_object_object_get_ex(claims, name, &v))
		return -1;
	if (json_object_is_type(v, json_type_string)) {
		if (max < 1)
			return -1;
		out[0] = json_object_get_string(v);
		return 1;
	}
	if (!json_object_is_type(v, json_type_array))
		return -1;
	if ((n = json_object_array_length(v)) > max || n > INT32_MAX)
		return -1;
	for (i = 0; i < n; i++) {
		e = json_object_array_get_idx(v, i);
		if (!json_object_is_type(e, json_type_string))
			return -1;
		out[i] = json_object_get_string(e);
	}
	return (int)n;
}

/* typ matches want case-insensitively, with or without "application/". */
static bool
jwt_typ_matches(const char *typ, const char *want)
{
	if (strncasecmp(typ, "application/", 12) == 0 && strchr(typ + 12, '/') == NULL)
		typ += 12;
	return strcasecmp(typ, want) == 0;
}

/* True if the claims' aud is want or an array holding want. */
static bool
jwt_aud_matches(json_object *claims, const char *want)
{
	json_object *v, *e;
	size_t n, i;

	if (!json_object_object_get_ex(claims, "aud", &v))
		return false;
	if (json_object_is_type(v, json_type_string))
		return strcmp(json_object_get_string(v), want) == 0;
	if (!json_object_is_type(v, json_type_array))
		return false;
	n = json_object_array_length(v);
	for (i = 0; i < n; i++) {
		e = json_object_array_get_idx(v, i);
		if (json_object_is_type(e, json_type_string) &&
		    strcmp(json_object_get_string(e), want) == 0)
			return true;
	}
	return false;
}

/* exp, nbf and iat against the (faked in tests) wall clock. */
static enum jwt_err
jwt_check_times(json_object *claims, int leeway, char *err, size_t errlen)
{
	int64_t now = clock_wall_s(), exp, nbf, iat;
	json_object *v;

	if (jwt_claim_int(claims, "exp", &exp) != 0) {
		errbuf_set(err, errlen, "exp claim missing or not a number");
		return JWT_ERR_CLAIM;
	}
	if (exp <= INT64_MAX - leeway && now >= exp + leeway) {
		errbuf_set(err, errlen, "token expired at %lld (now %lld)", (long long)exp,
		    (long long)now);
		return JWT_ERR_EXPIRED;
	}
	if (json_object_object_get_ex(claims, "nbf", &v)) {
		if (jwt_claim_int(claims, "nbf", &nbf) != 0) {
			errbuf_set(err, errlen, "nbf claim is not a number");
			return JWT_ERR_CLAIM;
		}
		if (nbf > now + leeway) {
			errbuf_set(err, errlen,
			    "token not valid before %lld "
			    "(now %lld)",
			    (long long)nbf, (long long)now);
			return JWT_ERR_NOT_YET_VALID;
		}
	}
	if (json_object_object_get_ex(claims, "iat", &v)) {
		if (jwt_claim_int(claims, "iat", &iat) != 0) {
			errbuf_set(err, errlen, "iat claim is not a number");
			return JWT_ERR_CLAIM;
		}
		if (iat > now + leeway) {
			errbuf_set(err, errlen,
			    "token issued in the future at "
			    "%lld (now %lld)",
			    (long long)iat, (long long)now);
			return JWT_ERR_NOT_YET_VALID;
		}
	}
	return JWT_OK;
}

enum jwt_err
jwt_verify(const char *token, const struct keyset *ks, const struct jwt_expect *expect,
    json_object **claims, char *err, size_t errlen)
{
	static const struct jwt_expect none = { 0 };
	const struct keyset_key *key;
	json_object *hdr = NULL, *body = NULL, *v;
	const char *dot1, *dot2, *alg, *kid, *typ, *iss;
	unsigned char *sig = NULL;
	size_t len, siglen;
	enum keyset_alg want;
	enum jwt_err rc;
	int leeway;

	if (claims != NULL)
		*claims = NULL;
	if (expect == NULL)
		expect = &none;
	leeway = expect->leeway_s < 0 ? 0 : expect->leeway_s;
	if (leeway > JWT_MAX_LEEWAY_S)
		leeway = JWT_MAX_LEEWAY_S;

	if (token == NULL || (len = strnlen(token, JWT_MAX_LEN + 1)) > JWT_MAX_LEN) {
		errbuf_set(err, errlen, "token longer than %d bytes", JWT_MAX_LEN);
		rc = JWT_ERR_TOO_LARGE;
		goto out;
	}
	rc = JWT_ERR_MALFORMED;
	if ((dot1 = memchr(token, '.', len)) == NULL ||
	    (dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token))) == NULL ||
	    memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) != NULL) {
		errbuf_set(err, errlen,
		    "token is not three dot-separated "
		    "parts");
		goto out;
	}
	if ((hdr = jwt_segment_object(token, (size_t)(dot1 - token))) == NULL) {
		errbuf_set(err, errlen,
		    "header is not base64url of a JSON "
		    "object");
		goto out;
	}

	rc = JWT_ERR_ALG;
	if (jwt_member_string(hdr, "alg", &alg) != 1) {
		errbuf_set(err, errlen, "header has no alg");
		goto out;
	}
	if (strcasecmp(alg, "none") == 0 || strncasecmp(alg, "HS", 2) == 0) {
		errbuf_set(err, errlen, "alg %.16s is never accepted", alg);
		goto out;
	}
	if ((want = keyset_alg_from_name(alg)) == KEYSET_ALG_NONE) {
		errbuf_set(err, errlen, "alg %.16s is not supported", alg);
		goto out;
	}
	if (json_object_object_get_ex(hdr, "crit", &v)) {
		errbuf_set(err, errlen, "crit header is not supported");
		rc = JWT_ERR_CRIT;
		goto out;
	}
	rc = JWT_ERR_KID;
	if (jwt_member_string(hdr, "kid", &kid) != 1) {
		errbuf_set(err, errlen, "header has no kid");
		goto out;
	}
	if (ks == NULL || (key = keyset_find(ks, kid)) == NULL) {
		errbuf_set(err, errlen, "no key with kid %.64s", kid);
		goto out;
	}
	/* The key decides the algorithm; the token may only agree with it. */
	if (keyset_key_alg(key) != want) {
		errbuf_set(err, errlen, "alg %s does not match key %.64s (%s)", alg, kid,
		    keyset_alg_name(keyset_key_alg(key)));
		rc = JWT_ERR_ALG;
		goto out;
	}
	if (expect->typ != NULL &&
	    (jwt_member_string(hdr, "typ", &typ) != 1 || !jwt_typ_matches(typ, expect->typ))) {
		errbuf_set(err, errlen, "typ is not %s", expect->typ);
		rc = JWT_ERR_TYP;
		goto out;
	}

	rc = JWT_ERR_MALFORMED;
	if (dot2 + 1 == token + len ||
	    b64url_decode(dot2 + 1, len - (size_t)(dot2 + 1 - token), &sig, &siglen) != 0) {
		errbuf_set(err, errlen, "signature is not base64url");
		goto out;
	}
	if (!jwt_verify_bytes(key, token, (size_t)(dot2 - token), sig, siglen)) {
		errbuf_set(err, errlen,
		    "signature does not verify with key "
		    "%.64s",
		    kid);
		rc = JWT_ERR_SIGNATURE;
		goto out;
	}
	if ((body = jwt_segment_object(dot1 + 1, (size_t)(dot2 - dot1 - 1))) == NULL) {
		errbuf_set(err, errlen,
		    "payload is not base64url of a JSON "
		    "object");
		goto out;
	}

	if ((rc = jwt_check_times(body, leeway, err, errlen)) != JWT_OK)
		goto out;
	if (expect->iss != NULL &&
	    ((iss = jwt_claim_string(body, "iss")) == NULL || strcmp(iss, expect->iss) != 0)) {
		errbuf_set(err, errlen, "iss is not %s", expect->iss);
		rc = JWT_ERR_ISSUER;
		goto out;
	}
	if (expect->aud != NULL && !jwt_aud_matches(body, expect->aud)) {
		errbuf_set(err, errlen, "aud does not contain %s", expect->aud);
		rc = JWT_ERR_AUDIENCE;
		goto out;
	}
	rc = JWT_OK;
	if (claims != NULL) {
		*claims = body;
		body = NULL;
	}
out:
	free(sig);
	json_object_put(hdr);
	json_object_put(body);
	return rc;
}
