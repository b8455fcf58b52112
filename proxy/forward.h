/*
 * The data plane: forwards an MCP client's request to the backend MCP
 * server on loopback and streams the response back as bytes arrive, with
 * backpressure, a keep-alive pool of backend connections, clear 502/504
 * answers, and the legacy SSE transport's endpoint rewrite. It never
 * buffers a response whole and never decides about tokens: the guard
 * tells it which credential header (if any) the backend receives.
 */
#ifndef PROXY_FORWARD_H
#define PROXY_FORWARD_H

#include <stdbool.h>

#include "proxy/req.h"

struct config;
struct event_base;
struct evdns_base;
struct req;
struct forwarder;

/* What the guard adds to or strips from the request it forwards. */

struct forwarder *forwarder_new(struct event_base *base, struct evdns_base *dns,
    const struct config *cfg);
void forwarder_free(struct forwarder *fw);

/* Forward the request; answers it (directly or later). opts may be NULL. */
void forward_request(struct forwarder *fw, struct req *sr, const struct req_pass_opts *opts);
/* forward_request as a req_pass_fn (arg: the forwarder), the guard's next. */
void forward_pass(struct req *sr, const struct req_pass_opts *opts, void *fw);

/* Route handler form of forward_request(fw, sr, NULL) for auth.mode none. */
void forward_handler(struct req *sr, void *fw);

#endif
