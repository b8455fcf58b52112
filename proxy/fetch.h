/*
 * Outbound HTTP on the event loop: one curl multi handle per process, driven
 * by the libevent loop, for the few requests the proxy makes to third
 * parties (CIMD documents, the upstream IdP's discovery, JWKS and token
 * endpoints). It must never block the loop, never follow a redirect, never
 * truncate a body silently, and never let a client-supplied URL reach a
 * special-use address (see netguard.h).
 *
 *   struct fetch_policy p;
 *   fetch_policy_init(&p, true);
 *   struct fetch_request r = { .url = url, .policy = &p, .policy_name = "untrusted" };
 *   req->fetch = fetch_start(fetcher, &r, on_document, req);
 */
#ifndef PROXY_FETCH_H
#define PROXY_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct fetch;
struct fetcher;

/* Defaults a zero policy field stands for. */
#define FETCH_UNTRUSTED_TIMEOUT_MS 5000
#define FETCH_UNTRUSTED_MAX_SIZE (5 * 1024)
#define FETCH_TRUSTED_TIMEOUT_MS 10000
#define FETCH_TRUSTED_MAX_SIZE (1024 * 1024)
#define FETCH_CONNECT_TIMEOUT_MS 5000

/*
 * How far a URL is trusted. Trusted (operator-configured IdP endpoints):
 * https anywhere, or http to a loopback host with allow_http_loopback; any
 * HTTP status is a result. Untrusted (client-supplied URLs): https only, no
 * special-use address (checked on the address actually connected), only
 * 200 (or 304 to a conditional request) with a JSON content type succeeds.
 * Zero timeouts/sizes mean the defaults above; the connect timeout is
 * never longer than the total timeout.
 */
struct fetch_policy {
	bool untrusted;
	int64_t timeout_ms;
	int64_t connect_timeout_ms;
	uint64_t max_size;
	bool allow_http_loopback; /* trusted: allow http:// to loopback hosts (development IdP) */
	bool allow_loopback;      /* untrusted: development switch, loopback addresses allowed */
};

enum fetch_error {
	FETCH_OK,
	FETCH_ERR_TIMEOUT,
	FETCH_ERR_TOO_LARGE,
	FETCH_ERR_BAD_STATUS,
	FETCH_ERR_REDIRECT_REFUSED,
	FETCH_ERR_BLOCKED_ADDRESS,
	FETCH_ERR_TLS,
	FETCH_ERR_DNS,
	FETCH_ERR_CONNECT,
	FETCH_ERR_CONTENT_TYPE,
	FETCH_ERR_BAD_URL,
	FETCH_ERR_INTERNAL,
	FETCH_ERR_CANCELLED, /* metrics only: never passed to a callback */
};

/*
 * The outcome of one fetch. Valid only during the callback: copy what must
 * outlive it. status is 0 when no response arrived. The header fields are
 * those of the final response, NULL when absent (several Cache-Control
 * lines are joined with ", "). body is NUL-terminated (body_len excludes
 * the NUL) and may be non-empty even on error (a 404 page, say).
 */
struct fetch_result {
	enum fetch_error error;
	const char *error_text; /* human, safe to show a client; "" on success */
	long status;
	const char *content_type;
	const char *cache_control;
	const char *expires;
	const char *etag;
	const char *last_modified;
	const char *age;
	const char *date;
	const char *body;
	size_t body_len;
	int64_t elapsed_ms;
};

typedef void (*fetch_done_cb)(const struct fetch_result *res, void *arg);

struct fetch_request {
	const char *method; /* "GET" (NULL means GET) or "POST" */
	const char *url;
	const char *const *headers; /* NULL-terminated "Name: value" lines, or NULL */
	const char *body;           /* POST body, copied */
	size_t body_len;
	const struct fetch_policy *policy; /* copied */
	const char *policy_name;           /* metrics label: "trusted", "untrusted", ... */
};

/* Fill p with the defaults of a trusted or an untrusted policy. */
void fetch_policy_init(struct fetch_policy *p, bool untrusted);

/* Refuse to start unless libcurl resolves names without blocking. */
int fetcher_check_async_dns(char *err, size_t errlen);

/* Create the fetcher on base; ca_file NULL or "" means the system bundle.
 * Returns NULL (and logs why) when libcurl cannot be set up. */
struct fetcher *fetcher_new(struct event_base *base, const char *ca_file);
/* Cancel everything still in flight (no callback runs afterwards) and free.
 * Must not be called from a done callback. NULL is fine. */
void fetcher_free(struct fetcher *f);
/* Transfers started and not yet completed or cancelled. */
size_t fetcher_pending(const struct fetcher *f);

/*
 * Start a request. done is called exactly once, from the loop, never from
 * inside fetch_start, unless fetch_cancel or fetcher_free comes first. A
 * URL the policy refuses is reported through done as well. The returned
 * handle is valid until done has run or fetch_cancel was called.
 */
struct fetch *fetch_start(struct fetcher *f, const struct fetch_request *req, fetch_done_cb done,
    void *arg);
/* Abandon a fetch: done will not be called. Safe until done has run; NULL is
 * fine (so a caller can keep its pointer and clear it in done). */
void fetch_cancel(struct fetch *fe);

/* A stable lower-case name for metrics and logs: "ok", "timeout", "too_large", ... */
const char *fetch_error_name(enum fetch_error e);

#endif
