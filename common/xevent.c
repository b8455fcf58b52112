/*
 * Checked libevent constructors (see xevent.h).
 */
#include "common/xevent.h"

#include <stdio.h>
#include <stdlib.h>

/* Out of memory or of an internal libevent resource: nothing to recover. */
static void
xevent_fatal(const char *what)
{
	fprintf(stderr, "{\"level\":\"fatal\",\"msg\":\"%s returned NULL\"}\n", what);
	abort();
}

struct evbuffer *
xevbuffer_new(void)
{
	struct evbuffer *b = evbuffer_new();

	if (b == NULL)
		xevent_fatal("evbuffer_new");
	return b;
}

struct event *
xevent_new(struct event_base *base, evutil_socket_t fd, short what, event_callback_fn cb, void *arg)
{
	struct event *ev = event_new(base, fd, what, cb, arg);

	if (ev == NULL)
		xevent_fatal("event_new");
	return ev;
}
