/*
 * Peer request authentication (see peerauth.h). The replay set is a ring
 * of accepted MACs in the order they were accepted, each kept until its
 * time can no longer pass the skew check, with a chained hash index over
 * it. A MAC is already verified when it is looked up or added, so nobody
 * without the key chooses the bits the index uses: no keyed hash needed.
 * Memory is taken from calloc once and touched only as entries are used.
 */
#include "proxy/peerauth.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/hkdf.h"
#include "common/random.h"
#include "common/xalloc.h"

#define PEERAUTH_KEY_LEN 32
#define PEERAUTH_ID_LEN 16 /* bytes of a MAC the replay set keeps */

struct replay_entry {
	unsigned char id[PEERAUTH_ID_LEN];
	int64_t expires; /* wall seconds */
	uint32_t next;   /* index + 1 in the bucket chain, 0 = end */
};

struct peerauth {
	EVP_MAC *mac;
	EVP_MAC_CTX *ctx; /* keyed once; re-initialised (same key) per MAC */
	struct replay_entry *ring;
	uint32_t *buckets; /* index + 1, 0 = empty */
	size_t cap, nbuckets, head, count;
};

struct peerauth *
peerauth_new(const void *secret, size_t len, size_t replay_max)
{
	struct peerauth *pa = xcalloc(1, sizeof *pa);
	unsigned char key[PEERAUTH_KEY_LEN];
	OSSL_PARAM params[2];

	hkdf_sha256(secret, len, "mcp-proxy peer request auth v1", key, sizeof key);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	pa->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	pa->ctx = pa->mac != NULL ? EVP_MAC_CTX_new(pa->mac) : NULL;
	if (pa->ctx == NULL || EVP_MAC_init(pa->ctx, key, sizeof key, params) != 1)
		abort(); /* out of memory inside OpenSSL */
	OPENSSL_cleanse(key, sizeof key);
	pa->cap = replay_max > 0 && replay_max < PEERAUTH_REPLAY_MAX ? replay_max
								     : PEERAUTH_REPLAY_MAX;
	for (pa->nbuckets = 16; pa->nbuckets < pa->cap;)
		pa->nbuckets *= 2;
	pa->ring = xcalloc(pa->cap, sizeof *pa->ring);
	pa->buckets = xcalloc(pa->nbuckets, sizeof *pa->buckets);
	return pa;
}

void
peerauth_free(struct peerauth *pa)
{
	if (pa == NULL)
		return;
	EVP_MAC_CTX_free(pa->ctx);
	EVP_MAC_free(pa->mac);
	free(pa->ring);
	free(pa->buckets);
	free(pa);
}

static void
peerauth_update(EVP_MAC_CTX *ctx, const char *s, bool nl)
{
	if (EVP_MAC_update(ctx, (const unsigned char *)s, strlen(s)) != 1 ||
	    (nl && EVP_MAC_update(ctx, (const unsigned char *)"\n", 1) != 1))
		abort();
}

/* HMAC(method \n target \n time \n nonce \n sid) into md (32 bytes). An
 * init without a key restarts HMAC from the key it holds (the padded key
 * digests kept inside): no context is made or copied per request. */
static void
peerauth_mac(struct peerauth *pa, const char *method, const char *target, const char *time_text,
    const char *nonce, const char *sid, unsigned char md[32])
{
	EVP_MAC_CTX *ctx = pa->ctx;
	size_t mdlen = 0;

	if (EVP_MAC_init(ctx, NULL, 0, NULL) != 1)
		abort();
	peerauth_update(ctx, method, true);
	peerauth_update(ctx, target, true);
	peerauth_update(ctx, time_text, true);
	peerauth_update(ctx, nonce, true);
	peerauth_update(ctx, sid != NULL ? sid : "", false);
	if (EVP_MAC_final(ctx, md, &mdlen, 32) != 1 || mdlen != 32)
		abort();
}

/* n bytes as lower-case hex into out (2n + 1 bytes). */
static void
peerauth_hex(const unsigned char *p, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[p[i] >> 4];
		out[2 * i + 1] = hex[p[i] & 15];
	}
	out[2 * n] = '\0';
}

void
peerauth_sign(struct peerauth *pa, const char *method, const char *target, int64_t t,
    const char *nonce, const char *sid, char out[PEERAUTH_MAC_HEX + 1])
{
	unsigned char md[32];
	char ts[24];

	snprintf(ts, sizeof ts, "%lld", (long long)t);
	peerauth_mac(pa, method, target, ts, nonce, sid, md);
	peerauth_hex(md, sizeof md, out);
}

void
peerauth_nonce(char out[PEERAUTH_NONCE_HEX + 1])
{
	/* A nonce need only never repeat (the MAC covers it; the owner keeps
	 * the ones it saw): eight random bytes drawn once per process, then a
	 * counter; no CSPRNG call (and its fork check's getpid) per request. */
	static unsigned char b[PEERAUTH_NONCE_HEX / 2];
	static uint64_t counter;
	static bool drawn;

	if (!drawn) {
		random_bytes(b, 8);
		drawn = true;
	}
	counter++;
	for (size_t i = 0; i < 8; i++)
		b[8 + i] = (unsigned char)(counter >> (56 - 8 * i));
	peerauth_hex(b, sizeof b, out);
}

static int
peerauth_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* "digits" (no sign, at most 12 of them) → *t; -1 when not that. */
static int
peerauth_parse_time(const char *s, int64_t *t)
{
	int64_t v = 0;
	size_t n = 0;

	for (; s[n] >= '0' && s[n] <= '9'; n++) {
		if (n == 12)
			return -1;
		v = v * 10 + (s[n] - '0');
	}
	if (n == 0 || s[n] != '\0' || (s[0] == '0' && n > 1))
		return -1;
	*t = v;
	return 0;
}

static size_t
peerauth_bucket(const struct peerauth *pa, const unsigned char *id)
{
	uint64_t h;

	memcpy(&h, id, sizeof h);
	return (size_t)(h & (pa->nbuckets - 1));
}

/* Forget the oldest entries whose time can no longer pass the skew check. */
static void
peerauth_expire(struct peerauth *pa, int64_t now)
{
	while (pa->count > 0 && pa->ring[pa->head].expires < now) {
		struct replay_entry *e = &pa->ring[pa->head];
		uint32_t *link = &pa->buckets[peerauth_bucket(pa, e->id)];

		while (*link != 0 && *link != pa->head + 1)
			link = &pa->ring[*link - 1].next;
		if (*link != 0)
			*link = e->next;
		pa->head = (pa->head + 1) % pa->cap;
		pa->count--;
	}
}

static bool
peerauth_seen(const struct peerauth *pa, const unsigned char *id)
{
	for (uint32_t i = pa->buckets[peerauth_bucket(pa, id)]; i != 0; i = pa->ring[i - 1].next)
		if (memcmp(pa->ring[i - 1].id, id, PEERAUTH_ID_LEN) == 0)
			return true;
	return false;
}

/* Exactly PEERAUTH_NONCE_HEX lower-case hex digits? */
static bool
peerauth_nonce_ok(const char *s)
{
	size_t n = 0;

	for (; n <= PEERAUTH_NONCE_HEX && s[n] != '\0'; n++)
		if (peerauth_hexval(s[n]) < 0)
			return false;
	return n == PEERAUTH_NONCE_HEX && s[n] == '\0';
}

enum peerauth_result
peerauth_verify(struct peerauth *pa, const char *method, const char *target, const char *sid,
    const char *time_hdr, const char *nonce_hdr, const char *mac_hdr)
{
	unsigned char want[32], got[32];
	int64_t t, now = clock_wall_s();
	size_t slot;
	struct replay_entry *e;

	if (time_hdr == NULL || nonce_hdr == NULL || mac_hdr == NULL ||
	    peerauth_parse_time(time_hdr, &t) != 0 || !peerauth_nonce_ok(nonce_hdr) ||
	    strlen(mac_hdr) != PEERAUTH_MAC_HEX)
		return PEERAUTH_MISSING;
	for (int i = 0; i < 32; i++) {
		int hi = peerauth_hexval(mac_hdr[2 * i]), lo = peerauth_hexval(mac_hdr[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return PEERAUTH_MISSING;
		got[i] = (unsigned char)(hi << 4 | lo);
	}
	peerauth_mac(pa, method, target, time_hdr, nonce_hdr, sid, want);
	if (CRYPTO_memcmp(want, got, sizeof want) != 0)
		return PEERAUTH_BAD_MAC;
	if (t < now - PEERAUTH_SKEW_S || t > now + PEERAUTH_SKEW_S)
		return PEERAUTH_STALE;
	peerauth_expire(pa, now);
	if (peerauth_seen(pa, got))
		return PEERAUTH_REPLAY;
	if (pa->count == pa->cap)
		return PEERAUTH_FULL;
	slot = (pa->head + pa->count) % pa->cap;
	e = &pa->ring[slot];
	memcpy(e->id, got, PEERAUTH_ID_LEN);
	e->expires = t + PEERAUTH_SKEW_S;
	e->next = pa->buckets[peerauth_bucket(pa, got)];
	pa->buckets[peerauth_bucket(pa, got)] = (uint32_t)slot + 1;
	pa->count++;
	return PEERAUTH_OK;
}

const char *
peerauth_result_name(enum peerauth_result r)
{
	switch (r) {
	case PEERAUTH_OK:
		return "ok";
	case PEERAUTH_MISSING:
		return "missing";
	case PEERAUTH_BAD_MAC:
		return "bad_mac";
	case PEERAUTH_STALE:
		return "stale";
	case PEERAUTH_REPLAY:
		return "replay";
	case PEERAUTH_FULL:
		return "replay_full";
	}
	return "unknown";
}

size_t
peerauth_replay_count(const struct peerauth *pa)
{
	return pa->count;
}
