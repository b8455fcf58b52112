/*
 * Client assertion checks (see assertion.h). Everything a client controls
 * is bounded before it is parsed: the assertion's length, the kid, the
 * jti, the number of audiences. The signature is checked before any claim
 * is believed; the header is read first only to pick the key and refuse an
 * algorithm outside the allow-list.
 */
#include "auth/crypto/assertion.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/crypto/jwt.h"
#include "common/b64url.h"
#include "common/clock.h"
#include "common/errbuf.h"
#include "common/xalloc.h"

#define ASSERTION_AUD_MAX 8

/* Segment i (0 or 1) of a compact JWT as a JSON object, or NULL. */
static json_object *
assertion_segment(const char *jwt, int i)
{
	const char *start = jwt, *dot;
	unsigned char *raw = NULL;
	size_t rawlen = 0;
	json_object *obj = NULL;

	if (i == 1) {
		if ((start = strchr(jwt, '.')) == NULL)
			return NULL;
		start++;
	}
	if ((dot = strchr(start, '.')) == NULL ||
	    b64url_decode(start, (size_t)(dot - start), &raw, &rawlen) != 0)
		return NULL;
	obj = jwt_json_parse((const char *)raw, rawlen);
	free(raw);
	if (obj != NULL && !json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		obj = NULL;
	}
	return obj;
}

char *
assertion_client_id(const char *jwt)
{
	json_object *body;
	const char *iss, *sub;
	char *id = NULL;

	if (jwt == NULL || strnlen(jwt, ASSERTION_MAX_LEN + 1) > ASSERTION_MAX_LEN ||
	    (body = assertion_segment(jwt, 1)) == NULL)
		return NULL;
	iss = jwt_claim_string(body, "iss");
	sub = jwt_claim_string(body, "sub");
	if (iss != NULL && sub != NULL && strcmp(iss, sub) == 0 && *iss != '\0' &&
	    strlen(iss) <= ASSERTION_CLIENT_ID_MAX)
		id = xstrdup(iss);
	json_object_put(body);
	return id;
}

int
assertion_alg(const char *jwt, char *out, size_t outlen)
{
	json_object *hdr, *v;
	int rc = -1;

	if (jwt == NULL || strnlen(jwt, ASSERTION_MAX_LEN + 1) > ASSERTION_MAX_LEN ||
	    (hdr = assertion_segment(jwt, 0)) == NULL)
		return -1;
	if (json_object_object_get_ex(hdr, "alg", &v) && json_object_is_type(v, json_type_string) &&
	    (size_t)json_object_get_string_len(v) < outlen) {
		snprintf(out, outlen, "%s", json_object_get_string(v));
		rc = 0;
	}
	json_object_put(hdr);
	return rc;
}

/* May a client authenticate with a key of this algorithm? */
static bool
assertion_alg_allowed(enum keyset_alg alg)
{
	return alg == KEYSET_ALG_RS256 || alg == KEYSET_ALG_PS256 || alg == KEYSET_ALG_ES256 ||
	    alg == KEYSET_ALG_EDDSA;
}

/* The key the header names, refusing what the allow-list does not hold. */
static enum assertion_result
assertion_pick_key(const char *jwt, const struct keyset *ks, char *err, size_t errlen)
{
	json_object *hdr = assertion_segment(jwt, 0), *v;
	const struct keyset_key *key;
	const char *alg = NULL, *kid = NULL;
	enum assertion_result rc = ASSERTION_INVALID;

	if (hdr == NULL) {
		errbuf_set(err, errlen, "client_assertion is not a JWT");
		goto out;
	}
	if (json_object_object_get_ex(hdr, "alg", &v) && json_object_is_type(v, json_type_string))
		alg = json_object_get_string(v);
	if (json_object_object_get_ex(hdr, "kid", &v) && json_object_is_type(v, json_type_string))
		kid = json_object_get_string(v);
	if (alg == NULL || !assertion_alg_allowed(keyset_alg_from_name(alg))) {
		errbuf_set(err, errlen,
		    "client_assertion alg %.16s is not allowed (RS256, PS256, ES256, EdDSA)",
		    alg != NULL ? alg : "(none)");
		goto out;
	}
	if (kid == NULL || *kid == '\0' || strlen(kid) > KEYSET_KID_MAX) {
		errbuf_set(err, errlen, "client_assertion header has no kid");
		goto out;
	}
	if ((key = keyset_find(ks, kid)) == NULL) {
		errbuf_set(err, errlen, "no key of the client has the kid of client_assertion");
		rc = ASSERTION_UNKNOWN_KID;
		goto out;
	}
	if (!assertion_alg_allowed(keyset_key_alg(key))) {
		errbuf_set(err, errlen, "the client's key %.64s is not of an allowed algorithm",
		    kid);
		goto out;
	}
	rc = ASSERTION_OK;
out:
	json_object_put(hdr);
	return rc;
}

/* Does the aud claim name one of audiences? */
static bool
assertion_aud_ok(json_object *claims, const char *const *audiences, size_t n_aud)
{
	const char *aud[ASSERTION_AUD_MAX];
	int n = jwt_claim_strings(claims, "aud", aud, ASSERTION_AUD_MAX);

	for (int i = 0; i < n; i++) {
		for (size_t j = 0; j < n_aud; j++) {
			if (audiences[j] != NULL && strcmp(aud[i], audiences[j]) == 0)
				return true;
		}
	}
	return false;
}

enum assertion_result
assertion_verify(const char *jwt, const struct keyset *ks, const char *client_id,
    const char *const *audiences, size_t n_aud, int leeway_s, struct assertion *out, char *err,
    size_t errlen)
{
	struct jwt_expect expect = { .iss = client_id, .leeway_s = leeway_s };
	json_object *claims = NULL;
	enum assertion_result rc = ASSERTION_INVALID;
	const char *sub, *jti;
	int64_t exp;
	char why[256];

	memset(out, 0, sizeof *out);
	if (jwt == NULL || strnlen(jwt, ASSERTION_MAX_LEN + 1) > ASSERTION_MAX_LEN) {
		errbuf_set(err, errlen, "client_assertion is longer than %d characters",
		    ASSERTION_MAX_LEN);
		goto out;
	}
	if ((rc = assertion_pick_key(jwt, ks, err, errlen)) != ASSERTION_OK)
		goto out;
	rc = ASSERTION_INVALID;
	if (jwt_verify(jwt, ks, &expect, &claims, why, sizeof why) != JWT_OK) {
		errbuf_set(err, errlen, "client_assertion: %s", why);
		goto out;
	}
	if ((sub = jwt_claim_string(claims, "sub")) == NULL || strcmp(sub, client_id) != 0) {
		errbuf_set(err, errlen, "client_assertion sub is not the client_id");
		goto out;
	}
	if (!assertion_aud_ok(claims, audiences, n_aud)) {
		errbuf_set(err, errlen,
		    "client_assertion aud names neither the token endpoint nor the issuer");
		goto out;
	}
	if (jwt_claim_int(claims, "exp", &exp) != 0 ||
	    exp > clock_wall_s() + ASSERTION_MAX_AHEAD_S + leeway_s) {
		errbuf_set(err, errlen, "client_assertion exp is more than %d s ahead",
		    ASSERTION_MAX_AHEAD_S);
		goto out;
	}
	if ((jti = jwt_claim_string(claims, "jti")) == NULL || *jti == '\0' ||
	    strlen(jti) > ASSERTION_JTI_MAX) {
		errbuf_set(err, errlen, "client_assertion has no jti (1 to %d characters)",
		    ASSERTION_JTI_MAX);
		goto out;
	}
	snprintf(out->jti, sizeof out->jti, "%s", jti);
	out->exp = exp;
	rc = ASSERTION_OK;
out:
	json_object_put(claims);
	return rc;
}
