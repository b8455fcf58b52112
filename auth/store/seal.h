/*
 * Sealing what the shared store keeps that must not be readable by whoever
 * can read the store (upstream IdP tokens): AES-256-GCM under a key from a
 * Secret, the record's store key as associated data (a sealed value moved
 * to another key does not open), a fresh random 96-bit nonce per seal.
 * The sealed text names its key by an id derived from the key itself, so
 * every replica with the same Secret agrees on it and a key can rotate:
 * seal with the current key, open with any key of the ring.
 *
 *   "s1." <kid: 16 hex> "." base64url(nonce | ciphertext | tag)
 */
#ifndef AUTH_SEAL_H
#define AUTH_SEAL_H

#include <stdbool.h>
#include <stddef.h>

#define SEAL_KEY_LEN 32
#define SEAL_MAX_KEYS 4

struct seal;

struct seal *seal_new(void);
void seal_free(struct seal *s);

/* A key from a Secret's text: 32 bytes in base64 (standard or URL
 * alphabet, padding optional, surrounding whitespace ignored). 0, or -1
 * with err. */
int seal_key_parse(const char *text, unsigned char key[SEAL_KEY_LEN], char *err, size_t errlen);
/* Add a key to the ring; the first added seals. 0, or -1 when the ring is
 * full or the key is there already. The key is copied into a keyed cipher
 * context (common/aead.h; cleansed on free). */
int seal_add_key(struct seal *s, const unsigned char key[SEAL_KEY_LEN]);
/* Every key of a Secret's text: one or more keys in base64, one per line
 * (blank lines ignored). The first seals, all open: a rotation puts the new
 * key first and keeps the old one below it until what it sealed has
 * expired. The number of keys added, or -1 with err. */
int seal_add_keys_text(struct seal *s, const char *text, char *err, size_t errlen);
/* The current key's id (16 hex digits). */
const char *seal_current_kid(const struct seal *s);

/* Seal len bytes bound to aad (the record's store key): a new string. */
char *seal_seal(const struct seal *s, const void *plain, size_t len, const char *aad);
/* Open a sealed text: 0 with a new NUL-terminated *plain (wipe it with
 * xfree_secret), or -1: malformed, an unknown key id, or not authentic
 * (tampered, another aad, another key). */
int seal_open(const struct seal *s, const char *sealed, const char *aad, char **plain, size_t *len);

#endif
