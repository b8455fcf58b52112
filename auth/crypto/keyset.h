/*
 * Keysets: the authorization server's signing keys (PEM from resolved
 * secrets, or one ephemeral P-256 key) and the verification keys of a
 * remote issuer (its JWKS document). Each key carries the one JWS algorithm
 * it may be used with; callers take the algorithm from the key, never from
 * a token. Publishing (keyset_jwks_json) must never emit private parts.
 */
#ifndef AUTH_KEYS_H
#define AUTH_KEYS_H

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>

/* The JWS algorithms we sign or verify with; HS* and none do not exist. */
enum keyset_alg {
	KEYSET_ALG_NONE = 0,
	KEYSET_ALG_RS256,
	KEYSET_ALG_RS384,
	KEYSET_ALG_RS512,
	KEYSET_ALG_ES256,
	KEYSET_ALG_ES384,
	KEYSET_ALG_PS256, /* RSASSA-PSS, SHA-256, salt of the digest's size */
	KEYSET_ALG_EDDSA, /* Ed25519 (an OKP JWK, crv "Ed25519") */
};

#define KEYSET_MAX_KEYS 64           /* keys in one keyset / JWKS document */
#define KEYSET_JWKS_MAX (256 * 1024) /* bytes of a JWKS document */
#define KEYSET_PEM_MAX (64 * 1024)   /* bytes of one PEM key */
#define KEYSET_KID_MAX 256           /* characters of a remote kid */
#define KEYSET_RSA_MIN_BITS 2048
#define KEYSET_RSA_MAX_BITS 8192

struct keyset;
struct keyset_key;

struct keyset *keyset_new(void);
void keyset_free(struct keyset *ks);

/*
 * Add a PEM private key (PKCS#8, PKCS#1 or SEC1; unencrypted): RSA of
 * 2048-8192 bits signs RS256, EC P-256 ES256, EC P-384 ES384; anything else
 * fails with a message in err. The first key added to a keyset signs.
 */
int keyset_add_pem(struct keyset *ks, const char *pem, size_t len, char *err, size_t errlen);
/* Add a freshly generated P-256 key (ES256), e.g. when none is configured. */
int keyset_generate_es256(struct keyset *ks, char *err, size_t errlen);
/*
 * Parse a remote issuer's JWKS document into a new verification-only
 * keyset. Keys of other types, use "enc", unsupported curves or algs and
 * malformed keys are skipped; the document fails if it is not a JSON object
 * with a "keys" array, has more than KEYSET_MAX_KEYS keys or none usable.
 * A JWK without "kid" is found by its RFC 7638 thumbprint.
 */
struct keyset *keyset_from_jwks(const char *json, size_t len, char *err, size_t errlen);

size_t keyset_count(const struct keyset *ks);
const struct keyset_key *keyset_at(const struct keyset *ks, size_t i);
/* The key that signs (the first private key added), or NULL. */
const struct keyset_key *keyset_signing_key(const struct keyset *ks);
/* The key with this kid, or NULL. */
const struct keyset_key *keyset_find(const struct keyset *ks, const char *kid);
/* {"keys":[...]} with the public parts of every key, as a new string. */
char *keyset_jwks_json(const struct keyset *ks);

const char *keyset_key_kid(const struct keyset_key *key);
/* RFC 7638 SHA-256 thumbprint, base64url. Equals the kid of our own keys. */
const char *keyset_key_thumbprint(const struct keyset_key *key);
enum keyset_alg keyset_key_alg(const struct keyset_key *key);
bool keyset_key_can_sign(const struct keyset_key *key);
/* The key's EVP_PKEY, owned by the keyset. */
EVP_PKEY *keyset_key_pkey(const struct keyset_key *key);

/* "RS256" etc.; NULL for KEYSET_ALG_NONE. */
const char *keyset_alg_name(enum keyset_alg alg);
/* The alg named exactly so, or KEYSET_ALG_NONE. */
enum keyset_alg keyset_alg_from_name(const char *name);

#endif
