/*
 * JSON-lines logger (see log.h). Each line is built in a stack buffer and
 * written with one write(2), so lines from one process never interleave.
 * This file never decides what is secret: callers pass only safe fields.
 */
#include "proxy/log.h"

#include <openssl/evp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 8192

static enum log_level min_level = LOG_INFO;
static int out_fd = STDERR_FILENO;

static const char *const level_names[] = { "debug", "info", "warn", "error", "fatal" };

int
log_set_level_name(const char *name)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(name, level_names[i]) == 0) {
			min_level = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

void
log_set_level(enum log_level level)
{
	min_level = level;
}

int
log_enabled(enum log_level level)
{
	return level >= min_level;
}

void
log_set_fd(int fd)
{
	out_fd = fd < 0 ? STDERR_FILENO : fd;
}

struct line {
	char buf[LOG_LINE_MAX];
	size_t len;
	bool truncated;
};

static void
line_raw(struct line *l, const char *s, size_t n)
{
	/* Keep room for the closing "}\n". */
	if (l->len + n > LOG_LINE_MAX - 2) {
		n = LOG_LINE_MAX - 2 - l->len;
		l->truncated = true;
	}
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

static void line_fmt(struct line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
line_fmt(struct line *l, const char *fmt, ...)
{
	char tmp[64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n > 0)
		line_raw(l, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Append s as a JSON string, escaping quotes, backslashes and controls. */
static void
line_str(struct line *l, const char *s)
{
	line_raw(l, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		if (*p == '"' || *p == '\\') {
			char esc[2] = { '\\', (char)*p };
			line_raw(l, esc, 2);
		} else if (*p < 0x20 || *p == 0x7f) {
			line_fmt(l, "\\u%04x", *p);
		} else {
			line_raw(l, (const char *)p, 1);
		}
	}
	line_raw(l, "\"", 1);
}

void
log_emit(enum log_level level, const char *msg, ...)
{
	struct line l = { .len = 0, .truncated = false };
	struct timeval tv;
	struct tm tm;
	char ts[40];
	va_list ap;

	if (level < min_level)
		return;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
	line_raw(&l, "{\"ts\":\"", 7);
	line_raw(&l, ts, strlen(ts));
	line_fmt(&l, ".%03ldZ\",\"level\":", (long)(tv.tv_usec / 1000));
	line_str(&l, level_names[level]);
	line_raw(&l, ",\"msg\":", 7);
	line_str(&l, msg);

	va_start(ap, msg);
	for (;;) {
		struct log_field f = va_arg(ap, struct log_field);

		if (f.type == LOGF_END || f.key == NULL)
			break;
		line_raw(&l, ",", 1);
		line_str(&l, f.key);
		line_raw(&l, ":", 1);
		switch (f.type) {
		case LOGF_STR:
			if (f.s == NULL)
				line_raw(&l, "null", 4);
			else
				line_str(&l, f.s);
			break;
		case LOGF_INT:
			line_fmt(&l, "%lld", (long long)f.i);
			break;
		case LOGF_DBL:
			line_fmt(&l, "%.3f", f.d);
			break;
		case LOGF_BOOL:
			line_raw(&l, f.i ? "true" : "false", f.i ? 4 : 5);
			break;
		case LOGF_END:
			break;
		}
	}
	va_end(ap);
	if (l.truncated) {
		/* Cut mid-field: close the line as valid JSON with a marker. */
		l.len = l.len > LOG_LINE_MAX - 40 ? LOG_LINE_MAX - 40 : l.len;
		while (l.len > 0 && l.buf[l.len - 1] == '\\')
			l.len--;
		l.truncated = false;
		line_raw(&l, "\",\"truncated\":true", 18);
	}
	line_raw(&l, "}", 1);
	l.buf[l.len++] = '\n';
	for (size_t off = 0; off < l.len;) {
		ssize_t n = write(out_fd, l.buf + off, l.len - off);

		if (n <= 0)
			break;
		off += (size_t)n;
	}
}

void
log_token_id(const char *secret, size_t len, char buf[13])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	static const char hex[] = "0123456789abcdef";

	EVP_Digest(secret, len, md, &mdlen, EVP_sha256(), NULL);
	for (int i = 0; i < 6; i++) {
		buf[2 * i] = hex[md[i] >> 4];
		buf[2 * i + 1] = hex[md[i] & 15];
	}
	buf[12] = '\0';
}
