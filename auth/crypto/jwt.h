/*
 * Compact JWS/JWT (RFC 7515, 7519, 9068) for our access tokens and for
 * the upstream IdP's ID tokens. Verification takes the algorithm from the
 * key selected by kid, never from the token, refuses "none", HS*, crit and
 * anything malformed, and checks exp/nbf/iat, iss, aud and typ. Tokens and
 * claims are never logged or copied into error messages.
 */
#ifndef AUTH_JWT_H
#define AUTH_JWT_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/crypto/keyset.h"

#define JWT_MAX_LEN (16 * 1024) /* characters of a compact token */
#define JWT_MAX_LEEWAY_S 60

enum jwt_err {
	JWT_OK = 0,
	JWT_ERR_TOO_LARGE,     /* longer than JWT_MAX_LEN */
	JWT_ERR_MALFORMED,     /* not 3 base64url parts of JSON objects */
	JWT_ERR_ALG,           /* none, HS*, unknown, or not the key's alg */
	JWT_ERR_KID,           /* kid missing or unknown */
	JWT_ERR_CRIT,          /* a crit header: no extension is understood */
	JWT_ERR_TYP,           /* typ is not the expected one */
	JWT_ERR_SIGNATURE,     /* signature does not verify */
	JWT_ERR_CLAIM,         /* exp missing, or a time claim not a number */
	JWT_ERR_EXPIRED,       /* now >= exp + leeway */
	JWT_ERR_NOT_YET_VALID, /* nbf or iat later than now + leeway */
	JWT_ERR_ISSUER,        /* iss is not the expected issuer */
	JWT_ERR_AUDIENCE,      /* aud does not name the expected audience */
};

/* What a valid token must look like; NULL members are not checked. */
struct jwt_expect {
	const char *typ; /* e.g. "at+jwt"; "application/" prefix ok */
	const char *iss; /* exact match */
	const char *aud; /* aud equals it or is an array containing it */
	int leeway_s;    /* clock skew for exp/nbf/iat, 0..60 */
};

/* A short stable name for an error ("expired", "bad_signature", ...). */
const char *jwt_err_name(enum jwt_err err);

/*
 * Sign claims (a JSON object) with key as a compact JWS whose header is
 * {"alg","typ","kid"} (typ omitted when NULL). Returns a new string, or
 * NULL with a message in err (e.g. a verification-only key).
 */
char *jwt_sign(const struct keyset_key *key, const char *typ, json_object *claims, char *err,
    size_t errlen);

/*
 * Verify token against ks and expect, using clock_wall_s(). On JWT_OK
 * *claims (if claims is not NULL) holds the payload object, which the
 * caller releases with json_object_put(); otherwise it is NULL and err
 * says what was wrong (never quoting the token).
 */
enum jwt_err jwt_verify(const char *token, const struct keyset *ks, const struct jwt_expect *expect,
    json_object **claims, char *err, size_t errlen);

/*
 * Parse untrusted JOSE JSON (JWT header/payload, JWKS) strictly: one
 * RFC 8259 value with nothing but whitespace after it, depth <= 16, valid
 * UTF-8, no NaN/Infinity/single quotes/raw control characters. json-c
 * keeps the last of duplicate member names and cannot report them; a
 * signature over the exact bytes limits what that ambiguity could do.
 * Returns a new object or NULL.
 */
json_object *jwt_json_parse(const char *text, size_t len);

/* A string claim, borrowed from claims, or NULL if absent or not a string. */
const char *jwt_claim_string(json_object *claims, const char *name);
/* An integer claim (a JSON integer, or a whole number); 0, or -1. */
int jwt_claim_int(json_object *claims, const char *name, int64_t *out);
/*
 * A claim that is a string or an array of strings (like aud): up to max
 * borrowed pointers into out. Returns how many, or -1 if absent, of another
 * type, or an array holding a non-string or more than max elements.
 */
int jwt_claim_strings(json_object *claims, const char *name, const char **out, size_t max);

#endif
