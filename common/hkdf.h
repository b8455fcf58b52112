/*
 * HKDF-SHA256 (RFC 5869): one operator secret, several keys, one per
 * purpose (the info label), none of which tells anything about the others.
 */
#ifndef COMMON_HKDF_H
#define COMMON_HKDF_H

#include <stddef.h>

/* Derive outlen bytes from the secret ikm under the label info (no salt).
 * Aborts when OpenSSL fails (out of memory): a caller has no better answer. */
void hkdf_sha256(const void *ikm, size_t ikm_len, const char *info, void *out, size_t outlen);

#endif
