/*
 * The client registry: DCR clients (kept in the store, bounded, idle ones
 * evicted) and, when CIMD is enabled, https client_ids resolved through the
 * CIMD resolver. One asynchronous lookup API for both, so a handler never
 * knows or cares whether a client needed the network; a lookup can be
 * cancelled when the waiting request's client disconnects.
 */
#ifndef AUTH_CLIENTS_H
#define AUTH_CLIENTS_H

#include <stdbool.h>
#include <stddef.h>

struct cimd;
struct config;
struct client;
struct store;
struct clients;
struct clients_lookup;

/* A DCR client used within this long is never evicted to make room. */
#define CLIENTS_EVICT_GRACE_MS (60 * 1000)
/* Longer client_ids (not CIMD URLs) are unknown without asking the store. */
#define CLIENTS_MAX_ID_LEN 256

/* Called exactly once per clients_lookup() unless cancelled: with the client
 * (borrowed: take client_ref() to keep it) or NULL and a description
 * safe to show (unknown client, or why its metadata document failed);
 * unavailable: the registry could not answer now (the store is away), so
 * the caller answers 503 temporarily_unavailable, not "unknown client". May
 * run before clients_lookup() returns. */
typedef void (*clients_done_cb)(struct client *client, bool unavailable,
    const char *error_description, void *arg);

/* cimd is NULL when CIMD is disabled: https client_ids are then unknown. */
struct clients *clients_new(const struct config *cfg, struct store *st, struct cimd *cimd);
void clients_free(struct clients *cl);

/* Look a client up. Returns a handle for clients_cancel(), or NULL when
 * done() has already been called. */
struct clients_lookup *clients_lookup(struct clients *cl, const char *client_id,
    clients_done_cb done, void *arg);
/* Cancel a pending lookup or registration: its callback will not be
 * called. Safe only before it ran; NULL is fine. */
void clients_cancel(struct clients_lookup *l);

enum clients_add_result { CLIENTS_ADDED, CLIENTS_FULL, CLIENTS_UNAVAILABLE };
typedef void (*clients_added_cb)(enum clients_add_result r, void *arg);
/* Register a DCR client (the registry takes a reference). When the registry
 * holds max_clients (on every replica), the longest-unused client idle for
 * more than CLIENTS_EVICT_GRACE_MS is evicted; if none is, CLIENTS_FULL.
 * done runs after clients_add() returns; the handle cancels it
 * (clients_cancel). */
struct clients_lookup *clients_add(struct clients *cl, struct client *c, clients_added_cb done,
    void *arg);
size_t clients_count(struct clients *cl);

#endif
