/*
 * The list filter of the authorization hop: drops from the responses to
 * tools/list, prompts/list, resources/list and resources/templates/list
 * the items the principal may not use (a step-up item stays: the client
 * may re-authorize for it), in a JSON body or event by event in an SSE
 * stream. The rest of a response passes as it came. A body it cannot read
 * is not passed (the connection is closed); it never holds more than
 * LISTFILTER_MAX bytes.
 */
#ifndef AUTH_POLICY_LISTFILTER_H
#define AUTH_POLICY_LISTFILTER_H

#include <event2/buffer.h>

#include "auth/policy/jsonrpc.h"
#include "auth/policy/listcache.h"
#include "auth/policy/rules.h"
#include "proxy/req.h"

#define LISTFILTER_MAX (8 * 1024 * 1024) /* a list response (or SSE event) held to filter */

struct listfilter;

/* A filter deciding with rules (kept by reference) for who (copied);
 * JSON bodies go through cache (kept by reference; NULL: none). */
struct listfilter *listfilter_new(const struct rules *rules, const struct rules_principal *who,
    struct listcache *cache);
void listfilter_free(struct listfilter *lf); /* NULL is fine */
/* Filter the response to the list request of method mid whose id is id
 * (as jsonrpc_id_text() prints it; taken). */
void listfilter_add(struct listfilter *lf, char *id, enum jsonrpc_method mid);

/* For a long-lived stream (the legacy SSE transport's GET /sse, which
 * carries the answers to many POSTs): a list request is forgotten once an
 * event carried its response. */
void listfilter_set_stream(struct listfilter *lf);
/* List requests whose response has not come yet. */
size_t listfilter_waiting(const struct listfilter *lf);

/* A req_filter_fn over the response body (arg: the listfilter). */
int listfilter_filter(struct req *sr, struct evbuffer *in, struct evbuffer *out, void *arg);

#endif
