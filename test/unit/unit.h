/*
 * The shared main of the CUnit suites: each test/unit/test_<module>.c lists
 * its tests in a NULL-terminated table and calls unit_run() from main().
 * The process exits non-zero when any assertion failed or a test errored.
 */
#ifndef TEST_UNIT_H
#define TEST_UNIT_H

#include <CUnit/CUnit.h>

struct unit_test {
	const char *name;
	void (*fn)(void);
};

int unit_run(const char *suite, const struct unit_test *tests);

/* ms stretched by MCP_TEST_TIME_SCALE (default 1): the factor ctest sets for
 * suites run under valgrind, whose 20-50x slowdown no real deadline of a
 * test survives. For safety bounds and waits on real sockets only; logic
 * that depends on time reads the injected clock (common/clock.h). */
long long unit_ms(long long ms);

/* A TCP port free a moment ago on 127.0.0.1, below the kernel's ephemeral
 * range: one handed to a server before it binds it (redis-server) cannot be
 * taken meanwhile as the source port of an outgoing connection. */
int unit_free_port(void);

/* Real monotonic milliseconds (not the injected clock): for test deadlines. */
long long unit_now_ms(void);

/* Run base's loop until cond holds or ms (stretched by unit_ms) have
 * passed, in slices of 20 ms. Never one long event_base_loopexit: when
 * the loop stops earlier (a callback's loopbreak), that exit's timer stays
 * armed and later cuts short another wait, which then sees no answer — a
 * flake that shows only when a test runs longer than the timeout. */
#define UNIT_LOOP_UNTIL(base, cond, ms) \
	do { \
		long long unit_d_ = unit_now_ms() + unit_ms(ms); \
		while (!(cond) && unit_now_ms() < unit_d_) { \
			struct timeval unit_tv_ = { 0, 20000 }; \
			event_base_loopexit((base), &unit_tv_); \
			event_base_dispatch(base); \
		} \
	} while (0)

#endif
