/*
 * A bounded JSON-RPC 2.0 reader for MCP request bodies: one message or a
 * batch, strict JSON (RFC 8259 syntax, UTF-8 checked, nothing after the
 * value), a size, depth and batch-length bound, and what the policy needs
 * of each message: its kind, method, id and the operation's name (tool or
 * prompt name, resource URI). It is a single-pass scanner that builds no
 * tree (the hot path of every MCP POST when rules are on); it never
 * decides anything and never rewrites the bytes: an allowed body is
 * forwarded as it came.
 *
 * Stricter than json-c's STRICT mode on purpose (a body it accepts is one
 * json-c accepts too, read the same way): no control characters inside
 * strings, no lone UTF-16 surrogates (\ud800 alone), no overlong or
 * surrogate UTF-8, no "-01", "1.", NaN or Infinity. Depth counts as
 * json-c counts it: a value inside max_depth objects/arrays is refused.
 *
 * Duplicate keys: of the keys the decision reads — jsonrpc, method, id,
 * params, result, error in a message and name, uri, arguments in its
 * params — a second occurrence refuses the body (-32600): parsers differ
 * on which one wins (json-c and most servers take the last, some the
 * first), so any choice here could decide on a name the MCP server does
 * not run. Keys are compared decoded ("n\u0061me" is "name"). Duplicates
 * of other keys (deep inside arguments) are the server's business.
 */
#ifndef AUTH_POLICY_JSONRPC_H
#define AUTH_POLICY_JSONRPC_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#define JSONRPC_METHOD_MAX 256 /* bytes of a method name */
#define JSONRPC_NAME_MAX 2048  /* bytes of a tool/prompt name or resource URI */
#define JSONRPC_DEPTH_MAX 1024 /* the deepest max_depth honoured (config allows 1000) */

enum jsonrpc_kind {
	JSONRPC_REQUEST,      /* method and id */
	JSONRPC_NOTIFICATION, /* method, no id */
	JSONRPC_RESPONSE,     /* id and result or error: answers a server request */
};

/* The MCP methods the policy tells apart; any other is JSONRPC_M_OTHER. */
enum jsonrpc_method {
	JSONRPC_M_NONE, /* a response: no method */
	JSONRPC_M_OTHER,
	JSONRPC_M_NOTIFICATION, /* notifications/... */
	JSONRPC_M_INITIALIZE,
	JSONRPC_M_PING,
	JSONRPC_M_TOOLS_LIST,
	JSONRPC_M_TOOLS_CALL,
	JSONRPC_M_PROMPTS_LIST,
	JSONRPC_M_PROMPTS_GET,
	JSONRPC_M_RESOURCES_LIST,
	JSONRPC_M_RESOURCES_TEMPLATES_LIST,
	JSONRPC_M_RESOURCES_READ,
	JSONRPC_M_RESOURCES_SUBSCRIBE,
	JSONRPC_M_RESOURCES_UNSUBSCRIBE,
	JSONRPC_M_COMPLETION_COMPLETE,
	JSONRPC_M_LOGGING_SETLEVEL,
};

/* Bytes of the caller's buffer. */
struct jsonrpc_span {
	const char *p; /* NULL: absent */
	size_t len;
};

struct jsonrpc_msg {
	enum jsonrpc_kind kind;
	enum jsonrpc_method mid;
	const char *method; /* decoded, NUL-terminated, in the body; NULL for responses */
	const char *name;   /* the operation's name (decoded, in the body), or NULL */
	/* The id as it came: a JSON string (quotes included), an integer of at
	 * most 64 bits, or null (responses only); .p NULL for notifications. */
	struct jsonrpc_span id;
	struct jsonrpc_span params; /* the params value as it came, or .p NULL */
};

struct jsonrpc_limits {
	size_t max_size;
	int max_depth;
	size_t max_batch;
};

/* A read body: the spans point into the buffer given to jsonrpc_parse()
 * (keep it until the body is disposed), the decoded strings into the body
 * itself (a lone message needs no allocation). */
struct jsonrpc_body {
	bool batch;
	struct jsonrpc_msg *msgs;
	size_t n;
	struct jsonrpc_msg one; /* msgs of a lone message */
	char *arena;            /* decoded strings of a batch (heap), or NULL */
	char text[JSONRPC_METHOD_MAX + JSONRPC_NAME_MAX + 2]; /* ... of a lone message */
};

enum jsonrpc_err {
	JSONRPC_OK,
	JSONRPC_TOO_LARGE, /* over max_size: 413 */
	JSONRPC_PARSE,     /* not (strict, bounded) JSON: -32700 */
	JSONRPC_INVALID,   /* JSON, but not valid JSON-RPC for MCP: -32600 */
};

/* Read len bytes at buf into out (dispose it whatever the result). err
 * receives a message for the client, safe to show (no echo of the body). */
enum jsonrpc_err jsonrpc_parse(const char *buf, size_t len, const struct jsonrpc_limits *lim,
    struct jsonrpc_body *out, char *err, size_t errlen);
void jsonrpc_body_dispose(struct jsonrpc_body *b);

/* The message's id as a json-c value (a new reference), NULL when it has
 * none or it is null. */
json_object *jsonrpc_id_object(const struct jsonrpc_msg *m);
/* The id as json-c prints it (JSON_C_TO_STRING_PLAIN; what a parsed
 * response's id is compared with), allocated; NULL when it has none or it
 * is null. */
char *jsonrpc_id_text(const struct jsonrpc_msg *m);

/* Does this message always pass the rules (initialize, ping,
 * notifications, responses to the server's requests)? */
bool jsonrpc_always_passes(const struct jsonrpc_msg *m);

/* The JSON value of len bytes at s parsed with json-c (not strict; at
 * most depth deep), or NULL: for what is no request body. */
json_object *jsonrpc_parse_value(const char *s, size_t len, int depth);

/* --- list responses --- */

/* The list a list method answers with: the member of its result holding
 * the items, the member naming an item, and the operation an item is used
 * with ("tools", "name", "tools/call" for tools/list); false for other
 * methods. */
bool jsonrpc_list_shape(enum jsonrpc_method mid, const char **array, const char **key,
    const char **use);

/* Which list request a response (its id as it came, in resp->id) answers:
 * its method, or JSONRPC_M_NONE when it is not one to filter. */
typedef enum jsonrpc_method (*jsonrpc_list_fn)(const struct jsonrpc_msg *resp, void *arg);
/* Keep the item of list named name (decoded, NUL-free)? */
typedef bool (*jsonrpc_keep_fn)(enum jsonrpc_method list, const char *name, void *arg);

/* What to send instead of a body: its bytes in pieces, in order (a piece
 * may be a "," between kept items). */
struct jsonrpc_pieces {
	struct jsonrpc_span *v;
	size_t n, cap;
	bool changed; /* false: the body as it came */
};

/*
 * Drop from the list results in a response body (one message or a batch)
 * the items keep() refuses (an item that is no object, or whose name is
 * no string or holds a NUL, is dropped unasked), without a tree: the rest
 * of the bytes stay as they came. -1 when the scanner cannot vouch for
 * the body — not strict JSON within max_depth, or an id, result, list or
 * item name member twice (one reader would see one, another the other) —
 * and the caller must read it another way. Dispose out whatever the result.
 */
int jsonrpc_filter_lists(const char *buf, size_t len, int max_depth, jsonrpc_list_fn list,
    jsonrpc_keep_fn keep, void *arg, struct jsonrpc_pieces *out);
void jsonrpc_pieces_dispose(struct jsonrpc_pieces *pc);
/* Add len bytes at p (not copied) to pc; nothing when len is 0. */
void jsonrpc_pieces_add(struct jsonrpc_pieces *pc, const char *p, size_t len);

/* What a list response's filtering depended on besides the principal,
 * noted by jsonrpc_filter_shape() when the body is one response with a
 * string or integer id and one list filtered: every other byte of a body
 * that differs from it only in the id (another string or integer) reads
 * the same, so listcache.c can filter such a body without scanning it. */
#define JSONRPC_NO_NAME ((size_t)-1)

struct jsonrpc_item {
	size_t off, len; /* the item's bytes in the body */
	size_t name;     /* its name (decoded, NUL-free, NUL-terminated) at names + name, or
			    JSONRPC_NO_NAME: it has none to judge it by, and is dropped */
};

struct jsonrpc_shape {
	bool ok;               /* the rest is set */
	size_t id_off, id_len; /* the id's bytes */
	enum jsonrpc_method list;
	size_t open, close; /* the list array's '[' and ']' */
	struct jsonrpc_item *items;
	size_t n, cap;
	char *names; /* where the names are */
	size_t used, names_cap;
};

/* jsonrpc_filter_lists(), noting the body's shape in *shape as well
 * (shape->ok false when it has none to note). Dispose shape whatever the
 * result. */
int jsonrpc_filter_shape(const char *buf, size_t len, int max_depth, jsonrpc_list_fn list,
    jsonrpc_keep_fn keep, void *arg, struct jsonrpc_pieces *out, struct jsonrpc_shape *shape);
void jsonrpc_shape_dispose(struct jsonrpc_shape *shape);

/* Are the len bytes at p exactly one JSON string or integer (of 64 bits):
 * an id a list response is matched by? */
bool jsonrpc_is_list_id(const char *p, size_t len);

/* Which known method len bytes at method are. */
enum jsonrpc_method jsonrpc_method_of(const char *method, size_t len);
/* A method as a metrics label: a known MCP method or "other" (the label
 * set stays bounded whatever clients send); "response" for none. */
const char *jsonrpc_mid_label(enum jsonrpc_method mid);
const char *jsonrpc_method_label(const char *method);

#endif
