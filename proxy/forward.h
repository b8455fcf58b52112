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

/*
 * Sessions across replicas: the MCP listener's first stop in front of the
 * chain that ends in forward_pass (the guard, the policy). It finds where
 * the request's session is held (req_session_home) before the chain runs,
 * so that for another replica's session the chain checks the token and
 * leaves the rest to the owner, which runs it again, and then hands the
 * request to next (its head, with a body, to head when not NULL).
 * forwarder_set_front names the chain; false when sessions are off (there
 * is nothing to find: mount the chain itself).
 */
bool forwarder_set_front(struct forwarder *fw, req_handler_fn next, void *next_arg,
    req_head_fn head, void *head_arg);
void forward_front_handler(struct req *sr, void *fw);
bool forward_front_head(struct req *sr, void *fw);

#endif
