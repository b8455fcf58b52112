/*
 * JSON-lines logger (see log.h). Each line is built whole in a stack
 * buffer; lines never interleave because a line is either written whole,
 * or its unwritten rest waits at the head of the queue, in front of every
 * later line. This file never decides what is secret: callers pass only
 * safe fields.
 *
 * On the loop (after log_attach) the output descriptor is non-blocking and
 * nothing here ever waits for it: a reader that stops reading costs at most
 * the queue's bound in memory and the lines that do not fit, which are
 * counted. libevent's own messages come through log_libevent(), which must
 * not call into libevent: a line it cannot write at once is queued, and the
 * write event is armed by the next line of ours or the next tick.
 */
#include "proxy/log.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/xevent.h"

/* Room kept at the end of a line for ",\"truncated\":true}\n". */
#define LOG_TAIL_ROOM 24
#define LOG_TICK_MS 1000

static void log_close_direct(void);

static enum log_level min_level = LOG_INFO;
static int out_fd = STDERR_FILENO;

static const char *const level_names[] = { "debug", "info", "warn", "error", "fatal" };

/* The queue on the loop (all zero while not attached). */
static struct {
	struct event_base *base;
	int fd;       /* the non-blocking descriptor lines go to */
	bool own_fd;  /* fd is ours to close (a new open of out_fd) */
	bool armed;   /* wev is added */
	bool pending; /* queued from libevent's callback: arm soon */
	struct evbuffer *q;
	size_t max;
	struct event *wev;
	struct event *tick;
} lq = { .fd = -1 };

/* After log_detach: the non-blocking descriptor, so that the last lines
 * of a process whose stderr nobody reads cannot hang its exit. */
static int direct_fd = -1;
static bool direct_own;

static uint64_t dropped_total;
static uint64_t dropped_unreported;

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
	log_close_direct();
	out_fd = fd < 0 ? STDERR_FILENO : fd;
}

uint64_t
log_dropped(void)
{
	return dropped_total;
}

size_t
log_queued(void)
{
	return lq.q != NULL ? evbuffer_get_length(lq.q) : 0;
}

/* --- building a line --- */

struct line {
	char buf[LOG_LINE_MAX];
	size_t len;
	bool truncated;
};

/* Append n bytes whole, or nothing (and mark the line truncated). */
static bool
line_put(struct line *l, const char *s, size_t n)
{
	if (l->truncated || l->len + n > LOG_LINE_MAX - LOG_TAIL_ROOM) {
		l->truncated = true;
		return false;
	}
	memcpy(l->buf + l->len, s, n);
	l->len += n;
	return true;
}

static bool line_fmt(struct line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool
line_fmt(struct line *l, const char *fmt, ...)
{
	char tmp[64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n < 0)
		return true;
	return line_put(l, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Length of the UTF-8 sequence starting at p if it is complete and well
 * formed, else 0 (the byte is then escaped as U+FFFD). */
static size_t
utf8_len(const unsigned char *p)
{
	size_t n = p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc2 ? 2 : 0;

	if (n == 0 || p[0] > 0xf4)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	}
	return n;
}

/*
 * Append s as a JSON string, escaping quotes, backslashes and controls,
 * one escape or character at a time: a string cut for size ends on a whole
 * character and is closed, so the line stays valid JSON. True when the
 * string went in whole or was cut inside its quotes (it is there, closed);
 * false when not even its opening quote fitted.
 */
static bool
line_str(struct line *l, const char *s)
{
	if (!line_put(l, "\"", 1))
		return false;
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p;) {
		size_t n;
		bool ok;

		if (*p == '"' || *p == '\\') {
			char esc[2] = { '\\', (char)*p };

			ok = line_put(l, esc, 2);
			n = 1;
		} else if (*p < 0x20 || *p == 0x7f) {
			ok = line_fmt(l, "\\u%04x", *p);
			n = 1;
		} else if (*p < 0x80) {
			ok = line_put(l, (const char *)p, 1);
			n = 1;
		} else if ((n = utf8_len(p)) > 0) {
			ok = line_put(l, (const char *)p, n);
		} else {
			ok = line_put(l, "\\ufffd", 6);
			n = 1;
		}
		if (!ok)
			break;
		p += n;
	}
	/* The closing quote fits in the tail room even when the line is full. */
	l->buf[l->len++] = '"';
	return true;
}

/* Append ,"key":value; a field that does not fit whole is taken out again,
 * except a string value cut inside its quotes. */
static void
line_field(struct line *l, const struct log_field *f)
{
	size_t mark = l->len;
	bool ok;

	if (l->truncated)
		return;
	ok = line_put(l, ",", 1) && line_str(l, f->key) && !l->truncated && line_put(l, ":", 1);
	if (ok) {
		switch (f->type) {
		case LOGF_STR:
			ok = f->s == NULL ? line_put(l, "null", 4) : line_str(l, f->s);
			break;
		case LOGF_INT:
			ok = line_fmt(l, "%lld", (long long)f->i);
			break;
		case LOGF_DBL:
			ok = line_fmt(l, "%.3f", f->d);
			break;
		case LOGF_BOOL:
			ok = line_put(l, f->i ? "true" : "false", f->i ? 4 : 5);
			break;
		case LOGF_END:
			break;
		}
	}
	if (!ok)
		l->len = mark;
}

/* --- output --- */

static void log_arm(void);

/* Write at once, waiting for the output (before the loop runs; a
 * non-blocking descriptor after it, for a second at most). */
static void
log_write_blocking(int fd, const char *buf, size_t len)
{
	for (size_t off = 0; off < len;) {
		ssize_t n = write(fd, buf + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };

			if (poll(&p, 1, 1000) > 0)
				continue;
		}
		if (n <= 0)
			break;
		off += (size_t)n;
	}
}

/* Hand a whole line to the queue: written now if the queue is empty and the
 * fd takes it, else queued, else dropped and counted. Never waits. */
static void
log_queue_line(const char *buf, size_t len, bool from_libevent)
{
	size_t off = 0;

	if (evbuffer_get_length(lq.q) == 0) {
		ssize_t n;

		do
			n = write(lq.fd, buf, len);
		while (n < 0 && errno == EINTR);
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return; /* the reader is gone for good: nothing to wait for */
		if (n > 0)
			off = (size_t)n;
		if (off == len)
			return;
	}
	/* The rest of a line begun goes in whatever the bound says (a half
	 * line would break the next one); a whole line only if it fits. */
	if (off == 0 && evbuffer_get_length(lq.q) + len > lq.max) {
		dropped_total++;
		dropped_unreported++;
		return;
	}
	evbuffer_add(lq.q, buf + off, len - off);
	if (from_libevent)
		lq.pending = true;
	else
		log_arm();
}

static void
log_output(const char *buf, size_t len, bool from_libevent)
{
	if (lq.q == NULL) {
		log_write_blocking(direct_fd >= 0 ? direct_fd : out_fd, buf, len);
		return;
	}
	log_queue_line(buf, len, from_libevent);
}

/* Say how many lines were dropped (once the queue has drained). */
static void
log_report_dropped(void)
{
	uint64_t n = dropped_unreported;

	if (n == 0)
		return;
	dropped_unreported = 0;
	log_warn("log lines dropped: stderr was not read", LOG_I("dropped", n),
	    LOG_I("dropped_total", dropped_total));
}

static void
log_on_writable(evutil_socket_t fd, short what, void *arg)
{
	int n = 0;

	while (evbuffer_get_length(lq.q) > 0) {
		n = evbuffer_write(lq.q, lq.fd);
		if (n <= 0)
			break;
	}
	if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
		evbuffer_drain(lq.q, evbuffer_get_length(lq.q)); /* gone for good */
	if (evbuffer_get_length(lq.q) > 0)
		return;
	if (lq.armed) {
		event_del(lq.wev);
		lq.armed = false;
	}
	log_report_dropped();
}

/* Make sure the write event runs while lines wait. */
static void
log_arm(void)
{
	lq.pending = false;
	if (!lq.armed && evbuffer_get_length(lq.q) > 0) {
		event_add(lq.wev, NULL);
		lq.armed = true;
	}
}

static void
log_on_tick(evutil_socket_t fd, short what, void *arg)
{
	if (lq.pending)
		log_arm();
}

/* --- a line --- */

static void
log_vemit(enum log_level level, bool from_libevent, const char *msg, va_list ap)
{
	struct line l = { .len = 0, .truncated = false };
	struct timeval tv;
	struct tm tm;
	char ts[40];

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
	line_put(&l, "{\"ts\":\"", 7);
	line_put(&l, ts, strlen(ts));
	line_fmt(&l, ".%03ldZ\",\"level\":", (long)(tv.tv_usec / 1000));
	line_str(&l, level_names[level]);
	line_put(&l, ",\"msg\":", 7);
	line_str(&l, msg);
	for (;;) {
		struct log_field f = va_arg(ap, struct log_field);

		if (f.type == LOGF_END || f.key == NULL)
			break;
		line_field(&l, &f);
	}
	if (l.truncated) {
		memcpy(l.buf + l.len, ",\"truncated\":true", 17);
		l.len += 17;
	}
	l.buf[l.len++] = '}';
	l.buf[l.len++] = '\n';
	log_output(l.buf, l.len, from_libevent);
}

void
log_emit(enum log_level level, const char *msg, ...)
{
	va_list ap;

	if (level < min_level)
		return;
	if (lq.pending)
		log_arm();
	va_start(ap, msg);
	log_vemit(level, false, msg, ap);
	va_end(ap);
}

static void
log_libevent_emit(enum log_level level, const char *msg, ...)
{
	va_list ap;

	va_start(ap, msg);
	log_vemit(level, true, msg, ap);
	va_end(ap);
}

/* libevent's event_log_cb: its messages as our lines (no libevent calls). */
static void
log_libevent(int severity, const char *msg)
{
	enum log_level level = severity == EVENT_LOG_DEBUG ? LOG_DEBUG
	    : severity == EVENT_LOG_MSG                    ? LOG_INFO
	    : severity == EVENT_LOG_WARN                   ? LOG_WARN
							   : LOG_ERROR;

	if (level < min_level)
		return;
	log_libevent_emit(level, "libevent", LOG_S("detail", msg), LOG_END);
}

/* Can epoll watch fd? Not a regular file, nor /dev/null and the like:
 * those never make a writer wait, so lines go to them at once. */
static bool
log_pollable(int fd)
{
	struct epoll_event ev = { .events = EPOLLOUT };
	int ep = epoll_create1(EPOLL_CLOEXEC);
	bool ok;

	if (ep < 0)
		return false;
	ok = epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0;
	close(ep);
	return ok;
}

/* A non-blocking descriptor for the output, or -1 when the loop cannot
 * watch it. */
static int
log_open_nonblocking(bool *own)
{
	char path[32];
	int fd, fl;

	*own = false;
	if (!log_pollable(out_fd))
		return -1;
	/* A new open file description of the same pipe or terminal: its
	 * O_NONBLOCK is ours alone, not the parent shell's. */
	snprintf(path, sizeof path, "/proc/self/fd/%d", out_fd);
	fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd >= 0) {
		*own = true;
		return fd;
	}
	/* A socket cannot be opened again: make it non-blocking itself. */
	fl = fcntl(out_fd, F_GETFL);
	if (fl < 0 || fcntl(out_fd, F_SETFL, fl | O_NONBLOCK) != 0)
		return -1;
	return out_fd;
}

/* Forget the descriptor kept for writes after log_detach(). */
static void
log_close_direct(void)
{
	if (direct_own)
		close(direct_fd);
	direct_fd = -1;
	direct_own = false;
}

int
log_attach(struct event_base *base, size_t queue_max)
{
	struct timeval tick = { LOG_TICK_MS / 1000, (LOG_TICK_MS % 1000) * 1000 };
	bool own;
	int fd;

	if (lq.q != NULL)
		return 0;
	event_set_log_callback(log_libevent);
	log_close_direct();
	if ((fd = log_open_nonblocking(&own)) < 0)
		return -1;
	lq.wev = xevent_new(base, fd, EV_WRITE | EV_PERSIST, log_on_writable, NULL);
	lq.base = base;
	lq.fd = fd;
	lq.own_fd = own;
	lq.q = xevbuffer_new();
	lq.max = queue_max;
	lq.tick = xevent_new(base, -1, EV_PERSIST, log_on_tick, NULL);
	evtimer_add(lq.tick, &tick);
	return 0;
}

void
log_detach(int timeout_ms)
{
	int64_t deadline = clock_mono_ms() + timeout_ms;

	event_set_log_callback(NULL);
	if (lq.q == NULL)
		return;
	if (evbuffer_get_length(lq.q) == 0)
		log_report_dropped();
	/* The loop is over: wait for the output, but not for ever. */
	while (evbuffer_get_length(lq.q) > 0) {
		struct pollfd p = { .fd = lq.fd, .events = POLLOUT };
		int64_t left = deadline - clock_mono_ms();
		int n;

		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			break;
		n = evbuffer_write(lq.q, lq.fd);
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			break;
		if (evbuffer_get_length(lq.q) == 0)
			log_report_dropped();
	}
	event_free(lq.wev);
	event_free(lq.tick);
	evbuffer_free(lq.q);
	direct_fd = lq.fd;
	direct_own = lq.own_fd;
	memset(&lq, 0, sizeof lq);
	lq.fd = -1;
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
