/*
 * Single-flight waiters (see flight.h): lists only; no fetch, no
 * callback, no allocation but the URL's copy.
 */
#include "auth/cimd/flight.h"

#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

void
flight_init(struct flight *f, struct flight_list *list, const char *url)
{
	memset(f, 0, sizeof *f);
	f->url = xstrdup(url);
	TAILQ_INIT(&f->waiters);
	TAILQ_INSERT_TAIL(list, f, entry);
}

void
flight_dispose(struct flight *f)
{
	free(f->url);
	f->url = NULL;
}

struct flight *
flight_find(struct flight_list *list, const char *url)
{
	struct flight *f;

	TAILQ_FOREACH(f, list, entry)
	{
		if (strcmp(f->url, url) == 0)
			return f;
	}
	return NULL;
}

void
flight_detach(struct flight *f, struct flight_list *list)
{
	TAILQ_REMOVE(list, f, entry);
}

void
flight_join(struct flight *f, struct flight_waiter *w)
{
	w->f = f;
	TAILQ_INSERT_TAIL(&f->waiters, w, entry);
	f->n_waiters++;
}

struct flight_waiter *
flight_next(struct flight *f)
{
	struct flight_waiter *w;

	f->completing = true;
	if ((w = TAILQ_FIRST(&f->waiters)) == NULL)
		return NULL;
	TAILQ_REMOVE(&f->waiters, w, entry);
	f->n_waiters--;
	w->f = NULL;
	return w;
}

bool
flight_leave(struct flight_waiter *w)
{
	struct flight *f = w->f;

	TAILQ_REMOVE(&f->waiters, w, entry);
	f->n_waiters--;
	w->f = NULL;
	return f->n_waiters == 0 && !f->completing;
}
