/*
 * PKCE S256 (see pkce.h). Must never accept the "plain" method nor compare
 * challenges with memcmp.
 */
#include "auth/crypto/pkce.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>

#include "common/b64url.h"
#include "common/xalloc.h"

bool
pkce_method_supported(const char *method)
{
	return method != NULL && strcmp(method, "S256") == 0;
}

bool
pkce_verifier_valid(const char *verifier)
{
	size_t len, i;
	unsigned char c;

	if (verifier == NULL)
		return false;
	len = strnlen(verifier, PKCE_VERIFIER_MAX + 1);
	if (len < PKCE_VERIFIER_MIN || len > PKCE_VERIFIER_MAX)
		return false;
	for (i = 0; i < len; i++) {
		c = (unsigned char)verifier[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			c == '-' || c == '.' || c == '_' || c == '~'))
			return false;
	}
	return true;
}

bool
pkce_challenge_valid(const char *challenge)
{
	unsigned char buf[32];
	size_t n;

	if (challenge == NULL || strnlen(challenge, PKCE_CHALLENGE_LEN + 1) != PKCE_CHALLENGE_LEN)
		return false;
	return b64url_decode_buf(challenge, PKCE_CHALLENGE_LEN, buf, sizeof buf, &n) == 0 &&
	    n == sizeof buf;
}

/* S256 of a verifier already checked valid, into out (44 bytes). */
static int
pkce_s256(const char *verifier, char out[PKCE_CHALLENGE_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (EVP_Digest(verifier, strlen(verifier), md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != 32)
		return -1;
	b64url_encode_buf(md, mdlen, out);
	return 0;
}

char *
pkce_challenge_s256(const char *verifier)
{
	char out[PKCE_CHALLENGE_LEN + 1];

	if (!pkce_verifier_valid(verifier) || pkce_s256(verifier, out) != 0)
		return NULL;
	return xstrdup(out);
}

int
pkce_verify(const char *verifier, const char *challenge)
{
	char out[PKCE_CHALLENGE_LEN + 1];

	if (!pkce_verifier_valid(verifier) || !pkce_challenge_valid(challenge))
		return -1;
	if (pkce_s256(verifier, out) != 0)
		return -1;
	return CRYPTO_memcmp(out, challenge, PKCE_CHALLENGE_LEN) == 0 ? 0 : -1;
}
