/*
 * Sealed MCP session ids (see session.h), AES-256-GCM through OpenSSL's EVP
 * interface. The associated data names the format, so a value sealed for
 * another purpose under a related key never opens as a session. Every
 * request with a session id opens it (twice across the peer hop), so the
 * cipher is fetched and keyed once per key; a seal or an open only sets a
 * new nonce on a context that keeps its key schedule.
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
/* The most a sealed id we open decodes to (its base64url part). */
#define SESSION_BLOB_MAX ((SESSION_SEALED_MAX - SESSION_PREFIX_LEN) / 4 * 3 + 2)

struct session_key {
	EVP_CIPHER *cipher;
	EVP_CIPHER_CTX *enc;
	EVP_CIPHER_CTX *dec;
};

/* A context for one direction, keyed now; the nonce comes with each use. */
static EVP_CIPHER_CTX *
session_ctx_new(const EVP_CIPHER *cipher, const unsigned char *k, bool enc)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();

	if (ctx == NULL || EVP_CipherInit_ex2(ctx, cipher, NULL, NULL, enc ? 1 : 0, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, SESSION_NONCE_LEN, NULL) != 1 ||
	    EVP_CipherInit_ex2(ctx, NULL, k, NULL, enc ? 1 : 0, NULL) != 1)
		abort(); /* out of memory inside OpenSSL */
	return ctx;
}

struct session_key *
session_key_new(const void *secret, size_t len)
{
	struct session_key *key = xcalloc(1, sizeof *key);
	unsigned char k[SESSION_KEY_LEN];

	hkdf_sha256(secret, len, "mcp-proxy peer session seal v1", k, sizeof k);
	if ((key->cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL)) == NULL)
		abort();
	key->enc = session_ctx_new(key->cipher, k, true);
	key->dec = session_ctx_new(key->cipher, k, false);
	OPENSSL_cleanse(k, sizeof k);
	return key;
}

void
session_key_free(struct session_key *key)
{
	if (key == NULL)
		return;
	EVP_CIPHER_CTX_free(key->enc); /* cleanses the key schedule */
	EVP_CIPHER_CTX_free(key->dec);
	EVP_CIPHER_free(key->cipher);
	free(key);
}

/* One AES-256-GCM pass over len bytes (in and out may be the same), on
 * the keyed context of its direction; the tag is written (enc) or
 * checked. 0, or -1. */
static int
session_gcm(struct session_key *key, bool enc, const unsigned char *nonce, const unsigned char *in,
    size_t len, unsigned char *out, unsigned char *tag)
{
	EVP_CIPHER_CTX *ctx = enc ? key->enc : key->dec;
	int outl = 0, fin = 0;

	return EVP_CipherInit_ex2(ctx, NULL, NULL, nonce, enc ? 1 : 0, NULL) == 1 &&
		EVP_CipherUpdate(ctx, NULL, &outl, (const unsigned char *)SESSION_AAD,
		    (int)sizeof SESSION_AAD - 1) == 1 &&
		EVP_CipherUpdate(ctx, out, &outl, in, (int)len) == 1 &&
		(enc ||
		    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SESSION_TAG_LEN, tag) == 1) &&
		EVP_CipherFinal_ex(ctx, out + outl, &fin) == 1 &&
		(!enc || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SESSION_TAG_LEN, tag) == 1)
	    ? 0
	    : -1;
}

char *
session_seal(struct session_key *key, const char *owner, const char *id)
{
	size_t no = strlen(owner), ni = strlen(id), plen = no + 1 + ni;
	size_t blen = SESSION_NONCE_LEN + plen + SESSION_TAG_LEN;
	unsigned char *blob = xmalloc(blen), *plain = blob + SESSION_NONCE_LEN;
	char *out = xmalloc(SESSION_PREFIX_LEN + b64url_encoded_len(blen) + 1);

	/* owner "\n" id where its ciphertext goes, sealed in place */
	memcpy(plain, owner, no);
	plain[no] = '\n';
	memcpy(plain + no + 1, id, ni);
	random_bytes(blob, SESSION_NONCE_LEN);
	if (session_gcm(key, true, blob, plain, plen, plain, plain + plen) != 0)
		abort();
	memcpy(out, SESSION_PREFIX, SESSION_PREFIX_LEN);
	b64url_encode_buf(blob, blen, out + SESSION_PREFIX_LEN);
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
session_open(struct session_key *key, const char *sealed, char **owner, char **id)
{
	size_t len = strnlen(sealed, SESSION_SEALED_MAX + 1), blen = 0, plen = 0, no;
	unsigned char blob[SESSION_BLOB_MAX], *plain = blob + SESSION_NONCE_LEN, *nl;
	int rc = -1;

	*owner = *id = NULL;
	if (len <= SESSION_PREFIX_LEN || len > SESSION_SEALED_MAX ||
	    memcmp(sealed, SESSION_PREFIX, SESSION_PREFIX_LEN) != 0)
		return -1;
	len -= SESSION_PREFIX_LEN;
	if (b64url_decode_buf(sealed + SESSION_PREFIX_LEN, len, blob, sizeof blob, &blen) != 0 ||
	    blen < SESSION_NONCE_LEN + 3 + SESSION_TAG_LEN)
		return -1;
	/* opened in place: the plaintext never leaves blob, cleansed below */
	plen = blen - SESSION_NONCE_LEN - SESSION_TAG_LEN;
	if (session_gcm(key, false, blob, plain, plen, plain, plain + plen) != 0 ||
	    (nl = memchr(plain, '\n', plen)) == NULL)
		goto out;
	no = (size_t)(nl - plain);
	if (!session_visible(plain, no) || !session_visible(nl + 1, plen - no - 1))
		goto out;
	*owner = xstrndup((const char *)plain, no);
	*id = xstrndup((const char *)nl + 1, plen - no - 1);
	rc = 0;
out:
	OPENSSL_cleanse(plain, plen);
	return rc;
}
