/*
 * Runs one CUnit suite with the basic reporter (see unit.h).
 */
#include "test/unit/unit.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>

int unit_run(const char *suite, const struct unit_test *tests);
long long unit_ms(long long ms);
long long unit_now_ms(void);
int unit_free_port(void);

int
unit_free_port(void)
{
	static unsigned seed;
	struct sockaddr_in sin = { .sin_family = AF_INET,
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof sin;
	int lo = 32768, hi = 60999, port = 0, fd;
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");

	if (f != NULL) {
		if (fscanf(f, "%d %d", &lo, &hi) != 2)
			lo = 32768;
		fclose(f);
	}
	if (seed == 0)
		seed = (unsigned)getpid() ^ (unsigned)unit_now_ms();
	for (int i = 0; i < 100 && port == 0; i++) {
		if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
			break;
		sin.sin_port = htons(
		    (uint16_t)(lo > 11000 ? 10000 + rand_r(&seed) % (lo - 10000) : 0));
		if (bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0 &&
		    getsockname(fd, (struct sockaddr *)&sin, &sl) == 0)
			port = ntohs(sin.sin_port);
		close(fd);
	}
	return port;
}

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
