/*
 * Checked libevent constructors: like xmalloc, they abort with a message
 * instead of returning NULL (libevent returns NULL only when memory or an
 * internal resource is exhausted), so no call site carries an unchecked
 * NULL. evtimer/evsignal forms are provided as libevent's macros are.
 */
#ifndef COMMON_XEVENT_H
#define COMMON_XEVENT_H

#include <event2/buffer.h>
#include <event2/event.h>

struct evbuffer *xevbuffer_new(void);
struct event *xevent_new(struct event_base *base, evutil_socket_t fd, short what,
    event_callback_fn cb, void *arg);
#define xevtimer_new(b, cb, arg) xevent_new((b), -1, 0, (cb), (arg))
#define xevsignal_new(b, x, cb, arg) xevent_new((b), (x), EV_SIGNAL | EV_PERSIST, (cb), (arg))

#endif
