/*
 * AES-256-GCM through OpenSSL's EVP interface, keyed once: the cipher is
 * fetched and a context per direction keeps the key schedule, so a seal or
 * an open only sets its nonce. For the sealed session ids (proxy/session.c,
 * on every request that carries one) and the sealed store records
 * (auth/store/seal.c). 96-bit nonces, 128-bit tags; the caller makes the
 * nonce (random, never reused under one key) and lays out the bytes.
 */
#ifndef COMMON_AEAD_H
#define COMMON_AEAD_H

#include <stddef.h>

#define AEAD_KEY_LEN 32
#define AEAD_NONCE_LEN 12
#define AEAD_TAG_LEN 16

struct aead;

/* Keyed with key (copied into OpenSSL's key schedule only). Aborts when
 * OpenSSL fails (out of memory). */
struct aead *aead_new(const unsigned char key[AEAD_KEY_LEN]);
/* Frees it and cleanses the key schedule; NULL is fine. */
void aead_free(struct aead *a);

/* Encrypt len bytes of in into out (in == out is fine), bound to aad;
 * the tag into tag. Aborts when OpenSSL fails. */
void aead_seal(struct aead *a, const unsigned char nonce[AEAD_NONCE_LEN], const void *aad,
    size_t aad_len, const unsigned char *in, size_t len, unsigned char *out,
    unsigned char tag[AEAD_TAG_LEN]);
/* Decrypt len bytes of in into out (in == out is fine) and check the tag
 * and aad: 0, or -1 when it is not authentic (out then holds garbage the
 * caller cleanses). */
int aead_open(struct aead *a, const unsigned char nonce[AEAD_NONCE_LEN], const void *aad,
    size_t aad_len, const unsigned char *in, size_t len, unsigned char *out,
    const unsigned char tag[AEAD_TAG_LEN]);

#endif
