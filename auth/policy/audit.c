/*
 * The audit stream (see audit.h). stdout is reopened through
 * /proc/self/fd/1 when it is a pipe, so that O_NONBLOCK is set on our own
 * open file description and not on one stderr may share (a `2>&1` would
 * otherwise turn the diagnostics log non-blocking too); a socket falls
 * back to a dup with O_NONBLOCK. Regular files are opened O_APPEND.
 */
#include "auth/policy/audit.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/xalloc.h"
#include "common/xevent.h"
#include "proxy/metrics.h"

struct audit {
	struct event_base *base;
	int fd;
	bool nonblock;          /* a pipe or socket: queue and wait for EV_WRITE */
	struct evbuffer *queue; /* bytes not written yet */
	struct event *ev;       /* EV_WRITE while the queue is not empty */
	size_t dropped;
	struct metric *m_lines;
};

/* Write what the queue holds until it is empty or the fd would block. */
static void
audit_flush(struct audit *a)
{
	while (evbuffer_get_length(a->queue) > 0) {
		int n = evbuffer_write(a->queue, a->fd);

		if (n > 0)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
			if (errno != EINTR) {
				if (a->ev != NULL)
					event_add(a->ev, NULL);
				return;
			}
			continue;
		}
		/* A closed reader or a full disk: what is queued is lost. */
		metrics_add(a->m_lines, 1, "dropped");
		a->dropped++;
		evbuffer_drain(a->queue, evbuffer_get_length(a->queue));
		return;
	}
}

static void
audit_on_writable(evutil_socket_t fd, short what, void *arg)
{
	audit_flush(arg);
}

/* stdout as an fd of our own, non-blocking when it is a pipe or socket. */
static int
audit_open_stdout(bool *nonblock)
{
	struct stat st;
	int fd, fl;

	if (fstat(STDOUT_FILENO, &st) != 0)
		return -1;
	if (S_ISREG(st.st_mode) || S_ISCHR(st.st_mode)) {
		*nonblock = false; /* a file, a terminal or /dev/null */
		return fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
	}
	*nonblock = true;
	if (S_ISFIFO(st.st_mode) &&
	    (fd = open("/proc/self/fd/1", O_WRONLY | O_NONBLOCK | O_CLOEXEC)) >= 0)
		return fd;
	if ((fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3)) < 0)
		return -1;
	fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	return fd;
}

struct audit *
audit_new(struct event_base *base, const char *path, char *err, size_t errlen)
{
	struct audit *a;
	bool nonblock = false;
	int fd;

	if (path == NULL || strcmp(path, "-") == 0)
		fd = audit_open_stdout(&nonblock);
	else
		fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open the audit log %s: %s", path != NULL ? path : "-",
		    strerror(errno));
		return NULL;
	}
	a = xcalloc(1, sizeof *a);
	a->base = base;
	a->fd = fd;
	a->nonblock = nonblock;
	a->queue = xevbuffer_new();
	if (nonblock && base != NULL)
		a->ev = xevent_new(base, fd, EV_WRITE, audit_on_writable, a);
	a->m_lines = metrics_counter("mcp_proxy_audit_lines_total",
	    "Audit lines, by result (written or dropped: the reader was too slow or gone).",
	    "result");
	return a;
}

void
audit_free(struct audit *a)
{
	if (a == NULL)
		return;
	if (a->ev != NULL) {
		event_free(a->ev);
		a->ev = NULL;
	}
	audit_flush(a);
	evbuffer_free(a->queue);
	close(a->fd);
	free(a);
}

void
audit_write(struct audit *a, json_object *o)
{
	size_t len;
	const char *s = json_object_to_json_string_length(o,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);

	if (evbuffer_get_length(a->queue) + len + 1 > AUDIT_QUEUE_MAX) {
		a->dropped++;
		metrics_add(a->m_lines, 1, "dropped");
		return;
	}
	evbuffer_add(a->queue, s, len);
	evbuffer_add(a->queue, "\n", 1);
	metrics_add(a->m_lines, 1, "written");
	/* Waiting for EV_WRITE already: it will take this line too. */
	if (a->ev != NULL && event_pending(a->ev, EV_WRITE, NULL))
		return;
	audit_flush(a);
}

size_t
audit_dropped(const struct audit *a)
{
	return a->dropped;
}
