/*
 * CIMD: Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-
 * document). A client_id that is an https URL names a JSON document that
 * describes the client; this resolver fetches it through the fetcher's
 * untrusted (SSRF-hardened) policy, validates it strictly, and caches valid
 * documents in an LRU with HTTP-caching lifetimes. Concurrent resolutions of
 * one URL share one fetch. It never trusts anything in a document that the
 * draft and the seed do not allow, and never caches an error.
 */
#ifndef AUTH_CIMD_H
#define AUTH_CIMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/cimd/cimd_url.h"

struct config;
struct event_base;
struct fetch_result;
struct fetcher;
struct client;
struct cimd;
struct cimd_lookup;

/* Called exactly once per cimd_resolve() unless cancelled: with the
 * validated client (borrowed; take client_ref() to keep it) or NULL
 * and an error_description that names the rule that failed (safe to show
 * the client). May be called before cimd_resolve() returns (cache hit or a
 * URL rejected before any fetch). */
typedef void (*cimd_done_cb)(struct client *client, const char *error_description, void *arg);

struct cimd *cimd_new(struct event_base *base, struct fetcher *fetcher, const struct config *cfg);
void cimd_free(struct cimd *c);

/* Resolve client_id. Returns a handle for cimd_cancel(), or NULL when done()
 * was already called. */
struct cimd_lookup *cimd_resolve(struct cimd *c, const char *client_id, cimd_done_cb done,
    void *arg);
/* Cancel a pending lookup: done() is not called afterwards. Safe only
 * before done() ran. */
void cimd_cancel(struct cimd_lookup *l);

/* What a client is told when an untrusted fetch (its metadata document,
 * its jwks_uri) failed: doc names the document ("client metadata
 * document"), fetch the fetch ("client metadata document fetch"). */
void cimd_fetch_error_text(const struct fetch_result *res, const char *doc, const char *fetch,
    int64_t timeout_ms, uint64_t max_size, char *err, size_t errlen);

/* Tests and diagnostics: documents cached, distinct fetches in flight. */
size_t cimd_cache_size(const struct cimd *c);
/* Tests: fetch at most n documents at once (1..256, the default 256). */
void cimd_set_fetch_slots(struct cimd *c, size_t n);
size_t cimd_pending_count(const struct cimd *c);

#endif
