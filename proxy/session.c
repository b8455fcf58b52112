/*
 * Sealed MCP session ids (see session.h), AES-256-GCM keyed once
 * (common/aead.h: every request with a session id opens it, twice across
 * the peer hop). The associated data names the format, so a value sealed
 * for another purpose under a related key never opens as a session.
 */
#include "proxy/session.h"

#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/aead.h"
#include "common/b64url.h"
#include "common/hkdf.h"
#include "common/random.h"
#include "common/xalloc.h"

#define SESSION_PREFIX "p1."
#define SESSION_PREFIX_LEN 3
#define SESSION_NONCE_LEN AEAD_NONCE_LEN
#define SESSION_TAG_LEN AEAD_TAG_LEN
#define SESSION_AAD "mcp-proxy session id v1"
/* The most a sealed id we open decodes to (its base64url part). */
#define SESSION_BLOB_MAX ((SESSION_SEALED_MAX - SESSION_PREFIX_LEN) / 4 * 3 + 2)

struct session_key {
	struct aead *aead;
};

struct session_key *
session_key_new(const void *secret, size_t len)
{
	struct session_key *key = xcalloc(1, sizeof *key);
	unsigned char k[AEAD_KEY_LEN];

	hkdf_sha256(secret, len, "mcp-proxy peer session seal v1", k, sizeof k);
	key->aead = aead_new(k);
	OPENSSL_cleanse(k, sizeof k);
	return key;
}

void
session_key_free(struct session_key *key)
{
	if (key == NULL)
		return;
	aead_free(key->aead);
	free(key);
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
	aead_seal(key->aead, blob, SESSION_AAD, sizeof SESSION_AAD - 1, plain, plen, plain,
	    plain + plen);
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
	if (aead_open(key->aead, blob, SESSION_AAD, sizeof SESSION_AAD - 1, plain, plen, plain,
		plain + plen) != 0 ||
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
