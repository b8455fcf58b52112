/*
 * One shared fetch per URL and the lookups waiting for it: the
 * single-flight core of the CIMD resolver (cimd.c) and of the jwks_uri
 * cache (cimd_jwks.c), so that how waiters join, leave and are answered
 * is written once. A struct flight is embedded in its owner's pending
 * fetch, a struct flight_waiter (as the first member) in each lookup; the
 * owner keeps its flights in a flight_list and allocates and frees both.
 * Nothing here fetches, answers or frees a lookup: the owner does, with
 * the waiters flight_next() hands it.
 */
#ifndef AUTH_CIMD_FLIGHT_H
#define AUTH_CIMD_FLIGHT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/queue.h>

struct flight_waiter {
	struct flight *f;
	TAILQ_ENTRY(flight_waiter) entry;
};

struct flight {
	char *url;
	bool completing; /* its waiters are being answered: a leave must not free it */
	size_t n_waiters;
	TAILQ_HEAD(, flight_waiter) waiters;
	TAILQ_ENTRY(flight) entry;
};

TAILQ_HEAD(flight_list, flight);

/* Start f for url (copied) at the end of list. */
void flight_init(struct flight *f, struct flight_list *list, const char *url);
/* Undo flight_init. Waiters still in f are the caller's to free first
 * (flight_next). */
void flight_dispose(struct flight *f);
/* The flight of url in list, or NULL. */
struct flight *flight_find(struct flight_list *list, const char *url);
/* Take f out of list: no later lookup joins it. Once only. */
void flight_detach(struct flight *f, struct flight_list *list);

/* w waits for f, after the waiters already there. */
void flight_join(struct flight *f, struct flight_waiter *w);
/* The next waiter to answer, out of f, or NULL when none is left. From
 * the first call f is completing: a done callback may then make other
 * waiters of f leave (they are simply not answered) or look the URL up
 * again (a new flight, when f was detached first). */
struct flight_waiter *flight_next(struct flight *f);
/* w's lookup is cancelled: it leaves f. True when f has nobody left to
 * answer and is not being answered: the caller then cancels its fetch,
 * detaches and frees it. */
bool flight_leave(struct flight_waiter *w);

#endif
