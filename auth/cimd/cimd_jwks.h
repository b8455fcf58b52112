/*
 * The keys of private_key_jwt CIMD clients that publish them at a jwks_uri.
 * A jwks_uri is as untrusted as a client_id URL: it passed the same URL
 * rules and host policy in the document, and it is fetched through the
 * fetcher's untrusted policy (https, the address guard on the address
 * actually connected, no redirects, a size cap, the CIMD fetch timeout),
 * parsed as a JWKS of public keys only, and cached per URL with the
 * response's HTTP-caching lifetime, like documents: revalidated with its
 * ETag / Last-Modified when stale (or on every use after no-cache), a 304
 * keeping the keys. Concurrent lookups of one URL share one fetch; errors
 * are never cached.
 *
 * An assertion naming a kid the cached keys lack (the client rotated its
 * key) may refetch the URL, once per CIMD_JWKS_REFETCH_MS per URL: a
 * stream of made-up kids cannot turn the AS into a request amplifier.
 */
#ifndef AUTH_CIMD_JWKS_H
#define AUTH_CIMD_JWKS_H

#include <stdbool.h>
#include <stddef.h>

struct config;
struct fetcher;
struct keyset;
struct cimd_jwks;
struct cimd_jwks_lookup;

#define CIMD_JWKS_MAX_SIZE (64 * 1024)   /* bytes of a jwks_uri response */
#define CIMD_JWKS_REFETCH_MS (60 * 1000) /* at most one refetch per URL this often */
#define CIMD_JWKS_PENDING_MAX 256        /* distinct URLs fetched at once */

/* Called exactly once per cimd_jwks_get() unless cancelled: with the keys
 * (borrowed, valid only during the call) or NULL and a description safe to
 * show the client. May run before cimd_jwks_get() returns. */
typedef void (
    *cimd_jwks_done_cb)(const struct keyset *ks, const char *error_description, void *arg);

struct cimd_jwks *cimd_jwks_new(struct fetcher *fetcher, const struct config *cfg);
/* Free the cache; pending lookups are dropped without callbacks. Not from a
 * done callback. NULL is fine. */
void cimd_jwks_free(struct cimd_jwks *j);

/*
 * The keys at url: from the cache while fresh, else fetched. With refetch
 * (the cached keys lack an assertion's kid) fetched anew, unless url was
 * refetched less than CIMD_JWKS_REFETCH_MS ago: then done(NULL, why) at
 * once. Returns a handle for cimd_jwks_cancel(), or NULL when done() has
 * already run.
 */
struct cimd_jwks_lookup *cimd_jwks_get(struct cimd_jwks *j, const char *url, bool refetch,
    cimd_jwks_done_cb done, void *arg);
/* Cancel a pending lookup: done() is not called. Safe only before done()
 * ran; NULL is fine. */
void cimd_jwks_cancel(struct cimd_jwks_lookup *l);

/* Tests and diagnostics: URLs cached (with or without keys). */
size_t cimd_jwks_cache_size(const struct cimd_jwks *j);

#endif
