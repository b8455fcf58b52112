/*
 * Structured logs: one JSON object per line on stderr with ts, level, msg
 * and typed fields. Callers must never pass a token, secret, code or client
 * secret as a field value: log ids or hashes (log_token_id()) instead.
 *
 *   log_info("listening", LOG_S("addr", addr), LOG_I("port", port));
 */
#ifndef PROXY_LOG_H
#define PROXY_LOG_H

#include <stddef.h>
#include <stdint.h>

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

/* Write one line; the variadic list is struct log_field ending in LOG_END. */
void log_emit(enum log_level level, const char *msg, ...);

/* A short, non-reversible id for a secret value (first 12 hex chars of its
 * SHA-256) that can be logged to correlate events. buf holds >= 13 bytes. */
void log_token_id(const char *secret, size_t len, char buf[13]);

#endif
