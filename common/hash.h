/*
 * The hash of every in-memory table whose keys a client chooses (CIMD
 * client_id URLs, client ids, token hashes in the memory store): SipHash-2-4
 * under a per-process random key from the CSPRNG, so nobody who does not
 * know the key can aim keys at one bucket and turn lookups into list walks.
 * One implementation for every such table. Never a cryptographic MAC for
 * anything that leaves the process: the key is per process on purpose.
 */
#ifndef COMMON_HASH_H
#define COMMON_HASH_H

#include <stddef.h>
#include <stdint.h>

/* The keyed hash of n bytes at p (the key is drawn on first use). */
uint64_t hash_bytes(const void *p, size_t n);
/* The keyed hash of a NUL-terminated string. */
uint64_t hash_str(const char *s);
/* SipHash-2-4 of n bytes at p under key (the reference function). */
uint64_t hash_siphash24(const uint8_t key[16], const void *p, size_t n);
/* Tests: use this key from now on (NULL: draw a new random one). */
void hash_set_key(const uint8_t key[16]);

#endif
