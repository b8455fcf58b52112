/*
 * Client assertions (RFC 7523 §2.2 and §3, private_key_jwt of OpenID
 * Connect Core §9): a JWT a client signs with its own key to authenticate
 * at the token endpoint. Pure checks, no loop and no state: the caller
 * finds the client's keys, and remembers the jti until exp so that an
 * assertion is used once. An assertion is never logged or quoted.
 */
#ifndef AUTH_ASSERTION_H
#define AUTH_ASSERTION_H

#include <stddef.h>
#include <stdint.h>

#include "auth/crypto/keyset.h"

#define ASSERTION_TYPE "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#define ASSERTION_MAX_LEN 8192    /* characters of an assertion */
#define ASSERTION_MAX_AHEAD_S 300 /* exp at most this far ahead (plus leeway) */
#define ASSERTION_JTI_MAX 256     /* characters of its jti */
#define ASSERTION_CLIENT_ID_MAX 2048

enum assertion_result {
	ASSERTION_OK = 0,
	ASSERTION_UNKNOWN_KID, /* no key of ks has its kid: refetch the keys once */
	ASSERTION_INVALID,     /* anything else; err says what */
};

/* What a valid assertion says, for the replay check. */
struct assertion {
	char jti[ASSERTION_JTI_MAX + 1];
	int64_t exp;
};

/*
 * The client_id an assertion claims (its iss, unverified: only to find the
 * client whose keys then verify it) as a new string, or NULL when it is not
 * a JWT with a string iss equal to its sub.
 */
char *assertion_client_id(const char *jwt);

/*
 * The alg of jwt's header (unverified) into out, or -1 when it has none
 * (or it does not fit).
 */
int assertion_alg(const char *jwt, char *out, size_t outlen);

/*
 * Verify jwt as client_id's assertion against ks at clock_wall_s(): one of
 * the allowed algorithms (RS256, PS256, ES256, EdDSA; the key decides, never
 * none or HMAC), a valid signature, iss = sub = client_id, aud naming one of
 * audiences[0..n_aud), exp present and at most ASSERTION_MAX_AHEAD_S ahead,
 * a jti. Fills out on ASSERTION_OK; else err says what was wrong.
 */
enum assertion_result assertion_verify(const char *jwt, const struct keyset *ks,
    const char *client_id, const char *const *audiences, size_t n_aud, int leeway_s,
    struct assertion *out, char *err, size_t errlen);

#endif
