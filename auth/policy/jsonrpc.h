/*
 * A bounded JSON-RPC 2.0 reader for MCP request bodies: one message or a
 * batch, strict JSON (json-c STRICT, UTF-8 checked, nothing after the
 * value), a size, depth and batch-length bound, and what the policy needs
 * of each message: its kind, method, id and the operation's name (tool or
 * prompt name, resource URI). It never decides anything and never
 * rewrites the bytes: an allowed body is forwarded as it came.
 */
#ifndef AUTH_POLICY_JSONRPC_H
#define AUTH_POLICY_JSONRPC_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#define JSONRPC_METHOD_MAX 256 /* bytes of a method name */
#define JSONRPC_NAME_MAX 2048  /* bytes of a tool/prompt name or resource URI */

enum jsonrpc_kind {
	JSONRPC_REQUEST,      /* method and id */
	JSONRPC_NOTIFICATION, /* method, no id */
	JSONRPC_RESPONSE,     /* id and result or error: answers a server request */
};

struct jsonrpc_msg {
	enum jsonrpc_kind kind;
	const char *method; /* borrowed from the parsed tree; NULL for responses */
	const char *name;   /* the operation's name, or NULL */
	json_object *id;    /* borrowed; NULL for notifications */
	json_object *obj;   /* the whole message (borrowed) */
};

struct jsonrpc_limits {
	size_t max_size;
	int max_depth;
	size_t max_batch;
	/* A tokener made with json_tokener_new_ex(max_depth) to reuse (the
	 * caller's; saves its allocation per body), or NULL. */
	struct json_tokener *tok;
};

/* A parsed body: owns the tree; msgs point into it. */
struct jsonrpc_body {
	json_object *root;
	bool batch;
	struct jsonrpc_msg *msgs;
	size_t n;
};

enum jsonrpc_err {
	JSONRPC_OK,
	JSONRPC_TOO_LARGE, /* over max_size: 413 */
	JSONRPC_PARSE,     /* not (strict, bounded) JSON: -32700 */
	JSONRPC_INVALID,   /* JSON, but not valid JSON-RPC for MCP: -32600 */
};

/* Parse len bytes at buf into out (dispose it whatever the result). err
 * receives a message for the client, safe to show (no echo of the body). */
enum jsonrpc_err jsonrpc_parse(const char *buf, size_t len, const struct jsonrpc_limits *lim,
    struct jsonrpc_body *out, char *err, size_t errlen);
void jsonrpc_body_dispose(struct jsonrpc_body *b);

/* Does this message always pass the rules (initialize, ping,
 * notifications, responses to the server's requests)? */
bool jsonrpc_always_passes(const struct jsonrpc_msg *m);

/* The method as a metrics label: a known MCP method or "other" (the label
 * set stays bounded whatever clients send). */
const char *jsonrpc_method_label(const char *method);

#endif
