/*
 * Tests' synchronous view of the asynchronous store (auth/store/store.h):
 * start a verb with sx_cb and &x, then sx_wait() runs the loop until its
 * callback came and returns the status; x.res holds the result (records
 * included) until sx_dispose(). Header-only (static inline) so that any
 * suite can include it.
 *
 *     struct sx x;
 *     SX_START(x);
 *     store_pending_take(st, "s1", sx_cb, &x);
 *     CU_ASSERT_EQUAL(sx_wait(base, &x), STORE_OK);
 *     ... x.res.pending ...
 *     sx_dispose(&x);
 *
 * or, for the status only: SX(base, x, store_pending_put(st, ..., sx_cb, &x)).
 */
#ifndef TEST_UNIT_STORE_SYNC_H
#define TEST_UNIT_STORE_SYNC_H

#include <event2/event.h>
#include <stdbool.h>
#include <string.h>

#include "auth/store/store.h"

struct sx {
	bool done;
	int calls;
	struct store_result res;
};

#define SX_START(x) memset(&(x), 0, sizeof(x))

static inline void
sx_cb(struct store_result *res, void *arg)
{
	struct sx *x = arg;

	x->calls++;
	x->done = true;
	x->res = *res;
	memset(res, 0, sizeof *res); /* ours now */
}

static inline void
sx_dispose(struct sx *x)
{
	store_result_dispose(&x->res);
	memset(x, 0, sizeof *x);
}

/* Run the loop until the verb's callback came (the memory backend: the
 * next turn; Redis: the reply, bounded by its read timeout). */
static inline enum store_status
sx_wait(struct event_base *base, struct sx *x)
{
	while (!x->done)
		event_base_loop(base, EVLOOP_ONCE);
	return x->res.status;
}

/* Start expr (which passes sx_cb, &x), wait, dispose; the status. */
#define SX(base, x, expr) (SX_START(x), (void)(expr), sx_status_once((base), &(x)))

static inline enum store_status
sx_status_once(struct event_base *base, struct sx *x)
{
	enum store_status s = sx_wait(base, x);

	sx_dispose(x);
	return s;
}

#endif
