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

#endif
