/*
 * PKCE (RFC 7636) for the authorization server: S256 only, as OAuth 2.1
 * requires; "plain" is never accepted. Verification compares in constant
 * time and never reveals which byte differed.
 */
#ifndef AUTH_PKCE_H
#define AUTH_PKCE_H

#include <stdbool.h>

#define PKCE_VERIFIER_MIN 43
#define PKCE_VERIFIER_MAX 128
#define PKCE_CHALLENGE_LEN 43

/* True for "S256", the only code_challenge_method supported. */
bool pkce_method_supported(const char *method);
/* True if verifier is 43-128 characters of [A-Za-z0-9-._~]. */
bool pkce_verifier_valid(const char *verifier);
/* True if challenge is 43 characters of canonical base64url (32 bytes). */
bool pkce_challenge_valid(const char *challenge);
/* The S256 challenge of a valid verifier as a new string, else NULL. */
char *pkce_challenge_s256(const char *verifier);
/* 0 if verifier is valid and its S256 challenge equals challenge, else -1. */
int pkce_verify(const char *verifier, const char *challenge);

#endif
