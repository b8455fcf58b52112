/*
 * Structured logs: one JSON object per line on stderr with ts, level, msg
 * and typed fields. Callers must never pass a token, secret, code or client
 * secret as a field value: log ids or hashes (log_token_id()) instead.
 *
 * Before log_attach() a line is written at once (start-up, tools, tests).
 * Once attached to the loop, the loop never waits on stderr: a line is
 * written with a non-blocking write, what the fd does not take waits in a
 * bounded queue written when the fd is writable, and a line that does not
 * fit the queue is dropped and counted (log_dropped(); a "log lines
 * dropped" line says how many once the queue has drained).
 *
 *   log_info("listening", LOG_S("addr", addr), LOG_I("port", port));
 */
#ifndef PROXY_LOG_H
#define PROXY_LOG_H

#include <stddef.h>
#include <stdint.h>

struct event_base;

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_FATAL };

enum log_field_type { LOGF_END, LOGF_STR, LOGF_INT, LOGF_DBL, LOGF_BOOL };

struct log_field {
	const char *key;
	enum log_field_type type;
	const char *s;
	int64_t i;
	double d;
};

#define LOG_S(k, v) ((struct log_field){ .key = (k), .type = LOGF_STR, .s = (v) })
#define LOG_I(k, v) ((struct log_field){ .key = (k), .type = LOGF_INT, .i = (int64_t)(v) })
#define LOG_D(k, v) ((struct log_field){ .key = (k), .type = LOGF_DBL, .d = (double)(v) })
#define LOG_B(k, v) ((struct log_field){ .key = (k), .type = LOGF_BOOL, .i = !!(v) })
#define LOG_END ((struct log_field){ .key = NULL, .type = LOGF_END })

#define log_debug(...) log_emit(LOG_DEBUG, __VA_ARGS__, LOG_END)
#define log_info(...) log_emit(LOG_INFO, __VA_ARGS__, LOG_END)
#define log_warn(...) log_emit(LOG_WARN, __VA_ARGS__, LOG_END)
#define log_error(...) log_emit(LOG_ERROR, __VA_ARGS__, LOG_END)

/* Set the lowest level written; returns -1 for an unknown name. */
int log_set_level_name(const char *name);
void log_set_level(enum log_level level);
int log_enabled(enum log_level level);
/* Tests: send lines to fd instead of stderr (-1 restores stderr). */
void log_set_fd(int fd);

/* Bytes of a line at most; a longer one is cut and stays valid JSON, with
 * "truncated":true. */
#define LOG_LINE_MAX 8192
/* Default bound of the queue of lines waiting for stderr. */
#define LOG_QUEUE_DEFAULT (1024 * 1024)

/* Queue lines on the loop from now on (at most queue_max bytes waiting), and
 * route libevent's own messages through this logger. Makes a non-blocking
 * descriptor for the output (a new open of the same pipe or terminal, so
 * the shared stderr of a parent keeps its flags; a socket is set
 * non-blocking itself). Returns -1 when the loop cannot watch the output
 * (a regular file, /dev/null): lines are then written at once, as a file
 * never makes the loop wait for a reader. */
int log_attach(struct event_base *base, size_t queue_max);
/* Write what the queue holds, waiting at most timeout_ms for the output,
 * then stop queueing (lines are written at once again). Safe to call
 * twice, and without log_attach(). */
void log_detach(int timeout_ms);
/* Lines dropped because the queue was full, since start. */
uint64_t log_dropped(void);
/* Bytes waiting in the queue. */
size_t log_queued(void);

/* Write one line; the variadic list is struct log_field ending in LOG_END. */
void log_emit(enum log_level level, const char *msg, ...);

/* A short, non-reversible id for a secret value (first 12 hex chars of its
 * SHA-256) that can be logged to correlate events. buf holds >= 13 bytes. */
void log_token_id(const char *secret, size_t len, char buf[13]);

#endif
