/*
 * The audit stream: one JSON object per line per MCP operation, on its own
 * stream (stdout or a file, never the diagnostics log on stderr). Writes
 * never block the loop: a pipe or socket is written non-blocking from a
 * bounded queue, the rest waits for the fd to be writable; lines that do
 * not fit the queue are dropped and counted
 * (mcp_proxy_audit_lines_dropped_total). A regular file is appended to
 * directly (the page cache takes it). Callers put no token or secret in a
 * line; this file does not look.
 */
#ifndef AUTH_POLICY_AUDIT_H
#define AUTH_POLICY_AUDIT_H

#include <json-c/json.h>
#include <stddef.h>

struct event_base;
struct audit;

#define AUDIT_QUEUE_MAX (1024 * 1024) /* bytes waiting for a slow reader */

/* Open path ("-" = stdout). NULL with a message in err when it cannot be
 * opened. */
struct audit *audit_new(struct event_base *base, const char *path, char *err, size_t errlen);
/* Try once more to write what is queued, then close. NULL is fine. */
void audit_free(struct audit *a);

/* Queue one line: the object's JSON and a newline. o stays the caller's. */
void audit_write(struct audit *a, json_object *o);

/* Lines written and dropped so far (tests). */
size_t audit_dropped(const struct audit *a);

#endif
