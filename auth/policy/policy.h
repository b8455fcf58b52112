/*
 * The MCP authorization hop on the data plane, between the bearer guard
 * and the forwarder (main.c wires guard → policy → forward, only when the
 * configuration has an authorization section). It reads the MCP POST body
 * (complete and bounded by then) as JSON-RPC, checks the Mcp-Method and
 * Mcp-Name headers against it, decides every message with the rules over
 * the claims the guard handed on, and then either passes the request on
 * with its bytes unchanged or answers it: 400 malformed, 413 too large,
 * 403 with a JSON-RPC error carrying the request's id when denied, 403
 * insufficient_scope with a WWW-Authenticate step-up challenge. It drops
 * from list responses (tools, prompts, resources, templates) what the
 * principal may not use, and writes one audit line per operation once the
 * response says how it went.
 *
 * It never forwards a body it could not read, never logs or audits a
 * token, and does all of it synchronously on the loop (no I/O but the
 * audit stream's non-blocking writes).
 */
#ifndef AUTH_POLICY_POLICY_H
#define AUTH_POLICY_POLICY_H

#include <stddef.h>

#include "proxy/req.h"

struct config;
struct event_base;
struct policy;

/*
 * Create the hop: allowed requests go to next(next_arg); metadata_url is
 * the RFC 9728 document named in step-up challenges (NULL without auth).
 * Opens the audit stream when cfg->audit.enabled. NULL with a message in
 * err when it cannot.
 */
struct policy *policy_new(struct event_base *base, const struct config *cfg, req_pass_fn next,
    void *next_arg, const char *metadata_url, char *err, size_t errlen);
/* Call after server_free() (its requests' last audit lines are written
 * then); requests still watched are let go. NULL is fine. */
void policy_free(struct policy *p);

/* A req_pass_fn: the guard's next hop. */
void policy_pass(struct req *sr, const struct req_pass_opts *opts, void *policy);
/* A route handler for auth.mode none (no principal). */
void policy_handler(struct req *sr, void *policy);

#endif
