/*
 * Randomness for everything secret or unguessable the authorization server
 * hands out: codes, refresh tokens, state, jti. Always the OpenSSL CSPRNG;
 * a failure aborts, because a predictable token is worse than no service.
 */
#ifndef AUTH_RANDOM_H
#define AUTH_RANDOM_H

#include <stddef.h>

/* Fill buf with len bytes from RAND_bytes; aborts on failure. */
void random_bytes(void *buf, size_t len);
/* nbytes random bytes as a new base64url string (32 → 43 characters). */
char *random_token(size_t nbytes);
/* A new random RFC 9562 version 4 UUID in lower-case text form. */
char *random_uuid_v4(void);

#endif
