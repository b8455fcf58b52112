/*
 * SipHash-2-4 (Aumasson and Bernstein, "SipHash: a fast short-input PRF",
 * 2012) for hash tables (see hash.h). The key is process-wide and drawn
 * lazily: the loop is single-threaded.
 */
#include "common/hash.h"

#include <stdbool.h>
#include <string.h>

#include "common/random.h"

static uint8_t hash_key[16];
static bool hash_keyed;

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

#define SIPROUND \
	do { \
		v0 += v1; \
		v1 = ROTL(v1, 13); \
		v1 ^= v0; \
		v0 = ROTL(v0, 32); \
		v2 += v3; \
		v3 = ROTL(v3, 16); \
		v3 ^= v2; \
		v0 += v3; \
		v3 = ROTL(v3, 21); \
		v3 ^= v0; \
		v2 += v1; \
		v1 = ROTL(v1, 17); \
		v1 ^= v2; \
		v2 = ROTL(v2, 32); \
	} while (0)

/* Eight bytes as a little-endian word, whatever the host's order. */
static uint64_t
hash_le64(const uint8_t *p)
{
	uint64_t w = 0;

	for (int i = 7; i >= 0; i--)
		w = (w << 8) | p[i];
	return w;
}

uint64_t
hash_siphash24(const uint8_t key[16], const void *data, size_t n)
{
	const uint8_t *p = data;
	uint64_t k0 = hash_le64(key), k1 = hash_le64(key + 8);
	uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
	uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
	uint64_t b = (uint64_t)n << 56, m;
	size_t i;

	for (i = 0; i + 8 <= n; i += 8) {
		m = hash_le64(p + i);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	for (size_t k = 0; i + k < n; k++)
		b |= (uint64_t)p[i + k] << (8 * k);
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

void
hash_set_key(const uint8_t key[16])
{
	if (key != NULL)
		memcpy(hash_key, key, sizeof hash_key);
	else
		random_bytes(hash_key, sizeof hash_key);
	hash_keyed = true;
}

uint64_t
hash_bytes(const void *p, size_t n)
{
	if (!hash_keyed)
		hash_set_key(NULL);
	return hash_siphash24(hash_key, p, n);
}

uint64_t
hash_str(const char *s)
{
	return hash_bytes(s, strlen(s));
}
