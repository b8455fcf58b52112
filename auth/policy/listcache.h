/*
 * The list shapes of the last few list responses, so that the next one
 * that differs only in its id is filtered without scanning it again.
 *
 * An MCP server answers tools/list (prompts/list, ...) with the same bytes
 * every time but for the id. jsonrpc_filter_shape() notes, for a body it
 * read, where the id is and where each item of the filtered list is, with
 * its name; a later body whose bytes before and after the id are exactly
 * those of a noted one, and whose id is a string or an integer, reads the
 * same to the strict scanner (the id is a whole token in a value's place),
 * so the same items with the same names are asked about again, for the
 * new principal, and cut out of the new bytes. Nothing is guessed: a body
 * that is not byte-equal outside its id is scanned as before. What keep()
 * said of the items is kept too, for the last principal each body was
 * filtered for: the same user listing again (the same sub, client_id,
 * scope and claims object, which the entry holds a reference to, so its
 * address is not reused) is answered without asking.
 *
 * Bounded: LISTCACHE_ENTRIES bodies of at most LISTCACHE_BODY_MAX bytes and
 * LISTCACHE_ITEMS_MAX items each; the oldest-used one gives way. One per
 * policy, used on its event loop only.
 */
#ifndef AUTH_POLICY_LISTCACHE_H
#define AUTH_POLICY_LISTCACHE_H

#include <stdbool.h>
#include <stddef.h>

#include "auth/policy/jsonrpc.h"
#include "auth/policy/rules.h"

#define LISTCACHE_ENTRIES 4
#define LISTCACHE_BODY_MAX (256 * 1024)
#define LISTCACHE_ITEMS_MAX 4096

struct listcache;

struct listcache *listcache_new(void);
void listcache_free(struct listcache *lc); /* NULL is fine */

/* jsonrpc_filter_lists() over the len bytes at buf for who (keep() must
 * decide by who and the item alone), from a noted shape when one fits
 * (then list() is asked with the new id, keep() for each item unless it
 * was asked for who already), else by scanning (and the shape noted).
 * Same result and pieces. */
int listcache_filter(struct listcache *lc, const char *buf, size_t len, int max_depth,
    jsonrpc_list_fn list, jsonrpc_keep_fn keep, void *arg, const struct rules_principal *who,
    struct jsonrpc_pieces *out);

/* Bodies filtered from a noted shape, and by a scan. */
void listcache_counts(const struct listcache *lc, unsigned long long *hits,
    unsigned long long *misses);

#endif
