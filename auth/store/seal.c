/*
 * AES-256-GCM sealing with a key ring (see seal.h), each key keyed once
 * (common/aead.h). The key id is the first 8 bytes of SHA-256("mcp-proxy
 * seal key id" | key): public, and says nothing usable about the key.
 */
#include "auth/store/seal.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/aead.h"
#include "common/b64url.h"
#include "common/random.h"
#include "common/xalloc.h"

#define SEAL_NONCE_LEN AEAD_NONCE_LEN
#define SEAL_TAG_LEN AEAD_TAG_LEN
#define SEAL_KID_HEX 16
#define SEAL_PREFIX "s1."
#define SEAL_MAX_PLAIN (1024 * 1024)

_Static_assert(SEAL_KEY_LEN == AEAD_KEY_LEN, "a seal key is an AES-256 key");

struct seal_key {
	struct aead *aead; /* the key, in OpenSSL's key schedule only */
	char kid[SEAL_KID_HEX + 1];
};

struct seal {
	struct seal_key keys[SEAL_MAX_KEYS];
	size_t n;
};

struct seal *
seal_new(void)
{
	return xcalloc(1, sizeof(struct seal));
}

void
seal_free(struct seal *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n; i++)
		aead_free(s->keys[i].aead);
	OPENSSL_cleanse(s, sizeof *s);
	free(s);
}

int
seal_key_parse(const char *text, unsigned char key[SEAL_KEY_LEN], char *err, size_t errlen)
{
	unsigned char buf[SEAL_KEY_LEN + 3];
	size_t got = 0;
	int rc = -1;

	if (b64_decode_lenient(text, buf, sizeof buf, &got) != 0 || got != SEAL_KEY_LEN)
		snprintf(err, errlen,
		    "the encryption key is not 32 bytes in base64 (e.g. `openssl rand -base64 "
		    "32`)");
	else {
		memcpy(key, buf, SEAL_KEY_LEN);
		rc = 0;
	}
	OPENSSL_cleanse(buf, sizeof buf);
	return rc;
}

int
seal_add_keys_text(struct seal *s, const char *text, char *err, size_t errlen)
{
	unsigned char key[SEAL_KEY_LEN];
	char line[128];
	const char *p = text, *e;
	size_t len;
	int n = 0, lineno = 0, rc = -1;

	while (*p != '\0') {
		e = strchr(p, '\n');
		len = e != NULL ? (size_t)(e - p) : strlen(p);
		lineno++;
		if (len >= sizeof line) {
			snprintf(err, errlen, "the encryption key on line %d is too long", lineno);
			goto out;
		}
		memcpy(line, p, len);
		line[len] = '\0';
		p += len + (e != NULL);
		if (strspn(line, " \t\r") == len)
			continue;
		if (seal_key_parse(line, key, err, errlen) != 0)
			goto out;
		if (seal_add_key(s, key) != 0) {
			snprintf(err, errlen,
			    "more than %d encryption keys, or one key twice (line %d)",
			    SEAL_MAX_KEYS, lineno);
			goto out;
		}
		n++;
	}
	if (n == 0) {
		snprintf(err, errlen, "no encryption key");
		goto out;
	}
	rc = n;
out:
	OPENSSL_cleanse(line, sizeof line);
	OPENSSL_cleanse(key, sizeof key);
	return rc;
}

static void
seal_kid(const unsigned char key[SEAL_KEY_LEN], char out[SEAL_KID_HEX + 1])
{
	static const char label[] = "mcp-proxy seal key id";
	unsigned char md[32];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, label, sizeof label - 1) != 1 ||
	    EVP_DigestUpdate(ctx, key, SEAL_KEY_LEN) != 1 ||
	    EVP_DigestFinal_ex(ctx, md, &mdlen) != 1)
		abort(); /* out of memory inside OpenSSL */
	EVP_MD_CTX_free(ctx);
	for (int i = 0; i < SEAL_KID_HEX / 2; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

int
seal_add_key(struct seal *s, const unsigned char key[SEAL_KEY_LEN])
{
	char kid[SEAL_KID_HEX + 1];

	if (s->n == SEAL_MAX_KEYS)
		return -1;
	seal_kid(key, kid);
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->keys[i].kid, kid) == 0)
			return -1;
	s->keys[s->n].aead = aead_new(key);
	memcpy(s->keys[s->n].kid, kid, sizeof kid);
	s->n++;
	return 0;
}

const char *
seal_current_kid(const struct seal *s)
{
	return s->n > 0 ? s->keys[0].kid : "";
}

char *
seal_seal(const struct seal *s, const void *plain, size_t len, const char *aad)
{
	size_t blen = SEAL_NONCE_LEN + len + SEAL_TAG_LEN;
	unsigned char *blob = xmalloc(blen);
	char *b64, *out;

	if (s->n == 0 || len > SEAL_MAX_PLAIN)
		abort(); /* a caller bug: the ring is filled at start, records are small */
	random_bytes(blob, SEAL_NONCE_LEN);
	aead_seal(s->keys[0].aead, blob, aad, strlen(aad), plain, len, blob + SEAL_NONCE_LEN,
	    blob + SEAL_NONCE_LEN + len);
	b64 = b64url_encode(blob, blen);
	out = xasprintf(SEAL_PREFIX "%s.%s", s->keys[0].kid, b64);
	free(b64);
	free(blob);
	return out;
}

int
seal_open(const struct seal *s, const char *sealed, const char *aad, char **plain, size_t *len)
{
	const struct seal_key *k = NULL;
	const char *kid, *data;
	unsigned char *blob = NULL;
	size_t blen = 0, plen;
	char *out;

	*plain = NULL;
	*len = 0;
	if (strncmp(sealed, SEAL_PREFIX, strlen(SEAL_PREFIX)) != 0)
		return -1;
	kid = sealed + strlen(SEAL_PREFIX);
	if (strlen(kid) < SEAL_KID_HEX + 1 || kid[SEAL_KID_HEX] != '.')
		return -1;
	for (size_t i = 0; i < s->n && k == NULL; i++)
		if (strncmp(s->keys[i].kid, kid, SEAL_KID_HEX) == 0)
			k = &s->keys[i];
	data = kid + SEAL_KID_HEX + 1;
	if (k == NULL || strlen(data) > b64url_encoded_len(SEAL_MAX_PLAIN + 64) ||
	    b64url_decode(data, strlen(data), &blob, &blen) != 0 ||
	    blen < SEAL_NONCE_LEN + SEAL_TAG_LEN) {
		free(blob);
		return -1;
	}
	plen = blen - SEAL_NONCE_LEN - SEAL_TAG_LEN;
	out = xmalloc(plen + 1);
	if (aead_open(k->aead, blob, aad, strlen(aad), blob + SEAL_NONCE_LEN, plen,
		(unsigned char *)out, blob + SEAL_NONCE_LEN + plen) != 0) {
		OPENSSL_cleanse(out, plen + 1);
		free(out);
		free(blob);
		return -1;
	}
	out[plen] = '\0';
	OPENSSL_cleanse(blob, blen);
	free(blob);
	*plain = out;
	*len = plen;
	return 0;
}
