/*
 * Runs one CUnit suite with the basic reporter (see unit.h).
 */
#include "test/unit/unit.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int unit_run(const char *suite, const struct unit_test *tests);
long long unit_ms(long long ms);
long long unit_now_ms(void);

long long
unit_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long
unit_ms(long long ms)
{
	const char *s = getenv("MCP_TEST_TIME_SCALE");
	long long k = s != NULL ? atoll(s) : 1;

	return ms * (k >= 1 && k <= 1000 ? k : 1);
}

int
unit_run(const char *suite, const struct unit_test *tests)
{
	CU_pSuite s;
	unsigned int failed;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	s = CU_add_suite(suite, NULL, NULL);
	if (s == NULL)
		return 2;
	for (const struct unit_test *t = tests; t->name != NULL; t++) {
		if (CU_add_test(s, t->name, t->fn) == NULL)
			return 2;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	if (CU_get_number_of_tests_run() == 0)
		failed = 1;
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
