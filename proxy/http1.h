/*
 * HTTP/1.1 request parsing for the front end (RFC 9112): a strict,
 * bounded parser of request heads that works in place on one heap copy of
 * the head, and an incremental chunked-body decoder over evbuffers. Pure
 * functions: no sockets, no events, no clock, so that unit tests and
 * fuzzers drive them directly. Never here: policy (routes, limits other
 * than the ones passed in) or any allocation per header.
 */
#ifndef PROXY_HTTP1_H
#define PROXY_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;

#define H1_MAX_TARGET 8192 /* longest request-target accepted (414 above) */
#define H1_MAX_CHUNK_LINE 4096

enum h1_method { H1_GET, H1_POST, H1_HEAD, H1_PUT, H1_DELETE, H1_OPTIONS, H1_PATCH, H1_OTHER };

struct h1_header {
	const char *name;  /* NUL-terminated, as sent */
	const char *value; /* NUL-terminated, surrounding whitespace removed */
	size_t name_len;   /* lookups compare lengths before names */
};

struct h1_request {
	char *mem; /* the one allocation: headers array, target copy, head text */
	const char *method_name;
	enum h1_method method;
	const char *target; /* as sent */
	/* absolute-form (RFC 9112 §3.2.2): the authority, pointing into
	 * target (not NUL-terminated), and whether the scheme is https;
	 * NULL/0 for origin-form */
	const char *authority;
	size_t authority_len;
	bool https;
	const char *path;  /* raw (not decoded), "/" when empty */
	const char *query; /* raw, after '?', or NULL */
	int minor;         /* HTTP/1.<minor> */
	struct h1_header *headers;
	size_t n_headers;
	int64_t content_length; /* -1 when not given */
	bool chunked;
	bool keepalive;
	bool expect_continue;
};

/*
 * Parse the request head at the start of buf. Returns the number of bytes
 * the head (and any empty lines before it) took, with req filled (release
 * with h1_request_dispose); 0 when more bytes are needed (*scan remembers
 * how far the search for the end of the head went: start it at 0); -1 when
 * the head is bad, with *status (400, 414, 417, 431, 501, 505) and *err.
 */
int h1_parse_request(const char *buf, size_t len, size_t max_head, size_t *scan,
    struct h1_request *req, int *status, const char **err);
/* What h1_parse_request_limits() refuses beyond the syntax. */
struct h1_limits {
	size_t max_head;    /* bytes of the head (431 above) */
	size_t max_headers; /* header fields (431 above); 0 = any number */
	bool crlf_only;     /* refuse a bare LF line ending (400): no real client sends one */
};

/* h1_parse_request() with those limits. */
int h1_parse_request_limits(const char *buf, size_t len, const struct h1_limits *lim, size_t *scan,
    struct h1_request *req, int *status, const char **err);
/* Free what h1_parse_request allocated. Safe to call twice. */
void h1_request_dispose(struct h1_request *req);
/* The first header of that name (case-insensitive), or NULL. */
const char *h1_header_find(const struct h1_request *req, const char *name);
/* Does the comma-separated list contain the token (case-insensitive)? */
bool h1_token_in_list(const char *list, const char *token);

enum h1_chunk_state { H1_CH_SIZE, H1_CH_DATA, H1_CH_DATA_END, H1_CH_TRAILER, H1_CH_DONE };

struct h1_chunked {
	enum h1_chunk_state state;
	uint64_t left;  /* bytes of the current chunk still to come */
	size_t trailer; /* trailer bytes seen */
};

/*
 * Decode chunked framing from in, moving data bytes to body (already
 * holding body_len... bytes). 1: the body ended (the trailer is consumed
 * and discarded); 0: more input needed; -1: malformed (*err); -2: the body
 * would exceed max_body (noticed at the chunk-size line, before its data).
 */
int h1_chunked_decode(struct h1_chunked *st, struct evbuffer *in, struct evbuffer *body,
    size_t max_body, size_t max_trailer, const char **err);

/* A Content-Length value: 1 to 18 decimal digits and nothing else (no sign,
 * space or 0x); the length, or -1. */
int64_t h1_parse_length(const char *v);

/* The reason phrase for a status code ("OK", "Not Found", ...). */
const char *h1_reason(int status);

#endif
