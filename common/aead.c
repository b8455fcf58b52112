/*
 * AES-256-GCM keyed once (see aead.h).
 */
#include "common/aead.h"

#include <limits.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdlib.h>

#include "common/xalloc.h"

struct aead {
	EVP_CIPHER *cipher;
	EVP_CIPHER_CTX *enc;
	EVP_CIPHER_CTX *dec;
};

/* A context for one direction, keyed now; the nonce comes with each use. */
static EVP_CIPHER_CTX *
aead_ctx_new(const EVP_CIPHER *cipher, const unsigned char *key, bool enc)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();

	if (ctx == NULL || EVP_CipherInit_ex2(ctx, cipher, NULL, NULL, enc ? 1 : 0, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, AEAD_NONCE_LEN, NULL) != 1 ||
	    EVP_CipherInit_ex2(ctx, NULL, key, NULL, enc ? 1 : 0, NULL) != 1)
		abort(); /* out of memory inside OpenSSL */
	return ctx;
}

struct aead *
aead_new(const unsigned char key[AEAD_KEY_LEN])
{
	struct aead *a = xcalloc(1, sizeof *a);

	if ((a->cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL)) == NULL)
		abort();
	a->enc = aead_ctx_new(a->cipher, key, true);
	a->dec = aead_ctx_new(a->cipher, key, false);
	return a;
}

void
aead_free(struct aead *a)
{
	if (a == NULL)
		return;
	EVP_CIPHER_CTX_free(a->enc); /* cleanses the key schedule */
	EVP_CIPHER_CTX_free(a->dec);
	EVP_CIPHER_free(a->cipher);
	free(a);
}

/* One pass on the keyed context of its direction: the tag is written
 * (enc) or checked. 0, or -1. */
static int
aead_pass(struct aead *a, bool enc, const unsigned char *nonce, const void *aad, size_t aad_len,
    const unsigned char *in, size_t len, unsigned char *out, unsigned char *tag)
{
	EVP_CIPHER_CTX *ctx = enc ? a->enc : a->dec;
	int outl = 0, fin = 0;

	if (len > INT_MAX || aad_len > INT_MAX)
		return -1;
	return EVP_CipherInit_ex2(ctx, NULL, NULL, nonce, enc ? 1 : 0, NULL) == 1 &&
		EVP_CipherUpdate(ctx, NULL, &outl, aad, (int)aad_len) == 1 &&
		EVP_CipherUpdate(ctx, out, &outl, in, (int)len) == 1 &&
		(enc || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, AEAD_TAG_LEN, tag) == 1) &&
		EVP_CipherFinal_ex(ctx, out + outl, &fin) == 1 &&
		(!enc || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, AEAD_TAG_LEN, tag) == 1)
	    ? 0
	    : -1;
}

void
aead_seal(struct aead *a, const unsigned char nonce[AEAD_NONCE_LEN], const void *aad,
    size_t aad_len, const unsigned char *in, size_t len, unsigned char *out,
    unsigned char tag[AEAD_TAG_LEN])
{
	if (aead_pass(a, true, nonce, aad, aad_len, in, len, out, tag) != 0)
		abort();
}

int
aead_open(struct aead *a, const unsigned char nonce[AEAD_NONCE_LEN], const void *aad,
    size_t aad_len, const unsigned char *in, size_t len, unsigned char *out,
    const unsigned char tag[AEAD_TAG_LEN])
{
	/* OpenSSL takes the tag to check through a non-const pointer; it only reads it */
	return aead_pass(a, false, nonce, aad, aad_len, in, len, out, (unsigned char *)tag);
}
