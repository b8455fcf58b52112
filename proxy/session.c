/*
 * Sealed MCP session ids (see session.h), AES-256-GCM through OpenSSL's EVP
 * interface. The associated data names the format, so a value sealed for
 * another purpose under a related key never opens as a session.
 */
#include "proxy/session.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/b64url.h"
#include "common/hkdf.h"
#include "common/random.h"
#include "common/xalloc.h"

#define SESSION_PREFIX "p1."
#define SESSION_PREFIX_LEN 3
#define SESSION_NONCE_LEN 12
#define SESSION_TAG_LEN 16
#define SESSION_AAD "mcp-proxy session id v1"

void
session_key_derive(const void *secret, size_t len, struct session_key *key)
{
	hkdf_sha256(secret, len, "mcp-proxy peer session seal v1", key->k, sizeof key->k);
}

/* One AES-256-GCM pass over len bytes; the tag is written (enc) or
 * checked. 0, or -1. */
static int
session_gcm(bool enc, const struct session_key *key, const unsigned char *nonce,
    const unsigned char *in, size_t len, unsigned char *out, unsigned char *tag)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int outl = 0, fin = 0, ok;

	if (ctx == NULL)
		abort();
	ok = EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, enc ? 1 : 0) == 1 &&
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, SESSION_NONCE_LEN, NULL) == 1 &&
	    EVP_CipherInit_ex(ctx, NULL, NULL, key->k, nonce, enc ? 1 : 0) == 1 &&
	    EVP_CipherUpdate(ctx, NULL, &outl, (const unsigned char *)SESSION_AAD,
		(int)sizeof SESSION_AAD - 1) == 1 &&
	    EVP_CipherUpdate(ctx, out, &outl, in, (int)len) == 1 &&
	    (enc || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SESSION_TAG_LEN, tag) == 1) &&
	    EVP_CipherFinal_ex(ctx, out + outl, &fin) == 1 &&
	    (!enc || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SESSION_TAG_LEN, tag) == 1);
	EVP_CIPHER_CTX_free(ctx);
	return ok ? 0 : -1;
}

char *
session_seal(const struct session_key *key, const char *owner, const char *id)
{
	size_t no = strlen(owner), ni = strlen(id), plen = no + 1 + ni;
	size_t blen = SESSION_NONCE_LEN + plen + SESSION_TAG_LEN;
	unsigned char *plain = xmalloc(plen), *blob = xmalloc(blen);
	char *out = xmalloc(SESSION_PREFIX_LEN + b64url_encoded_len(blen) + 1);

	memcpy(plain, owner, no);
	plain[no] = '\n';
	memcpy(plain + no + 1, id, ni);
	random_bytes(blob, SESSION_NONCE_LEN);
	if (session_gcm(true, key, blob, plain, plen, blob + SESSION_NONCE_LEN,
		blob + SESSION_NONCE_LEN + plen) != 0)
		abort();
	memcpy(out, SESSION_PREFIX, SESSION_PREFIX_LEN);
	b64url_encode_buf(blob, blen, out + SESSION_PREFIX_LEN);
	free(plain);
	free(blob);
	return out;
}

/* Visible ASCII only (the MCP spec's session id alphabet; also all an
 * owner address may hold): nothing that could split a header line. */
static bool
session_visible(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] < 0x21 || p[i] > 0x7e)
			return false;
	return n > 0;
}

int
session_open(const struct session_key *key, const char *sealed, char **owner, char **id)
{
	size_t len = strlen(sealed), blen = 0, plen = 0;
	unsigned char *blob = NULL, *plain = NULL, *nl;
	int rc = -1;

	*owner = *id = NULL;
	if (len <= SESSION_PREFIX_LEN || len > SESSION_SEALED_MAX ||
	    memcmp(sealed, SESSION_PREFIX, SESSION_PREFIX_LEN) != 0)
		return -1;
	len -= SESSION_PREFIX_LEN;
	blob = xmalloc(b64url_decoded_max(len) + 1);
	if (b64url_decode_buf(sealed + SESSION_PREFIX_LEN, len, blob, b64url_decoded_max(len) + 1,
		&blen) != 0 ||
	    blen < SESSION_NONCE_LEN + 3 + SESSION_TAG_LEN)
		goto out;
	plen = blen - SESSION_NONCE_LEN - SESSION_TAG_LEN;
	plain = xmalloc(plen);
	if (session_gcm(false, key, blob, blob + SESSION_NONCE_LEN, plen, plain,
		blob + SESSION_NONCE_LEN + plen) != 0)
		goto out;
	if ((nl = memchr(plain, '\n', plen)) == NULL ||
	    !session_visible(plain, (size_t)(nl - plain)) ||
	    !session_visible(nl + 1, plen - (size_t)(nl - plain) - 1))
		goto out;
	*owner = xstrndup((const char *)plain, (size_t)(nl - plain));
	*id = xstrndup((const char *)nl + 1, plen - (size_t)(nl - plain) - 1);
	rc = 0;
out:
	if (plain != NULL) {
		OPENSSL_cleanse(plain, plen);
		free(plain);
	}
	free(blob);
	return rc;
}
