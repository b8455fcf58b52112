/*
 * Real and fake clocks (see clock.h).
 */
#include "common/clock.h"

#include <stdbool.h>
#include <time.h>

static bool fake_on;
static int64_t fake_wall_ms;
static int64_t fake_mono_ms;

int64_t
clock_wall_s(void)
{
	struct timespec ts;

	if (fake_on)
		return fake_wall_ms / 1000;
	/* Whole seconds: the coarse clock (a tick behind at most, never
	 * ahead) is enough and costs a quarter of the precise one. */
	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	return (int64_t)ts.tv_sec;
}

int64_t
clock_mono_us(void)
{
	struct timespec ts;

	if (fake_on)
		return fake_mono_ms * 1000;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
clock_mono_ms(void)
{
	return clock_mono_us() / 1000;
}

void
clock_set_fake(int64_t wall_s, int64_t mono_ms)
{
	fake_on = wall_s >= 0;
	fake_wall_ms = wall_s * 1000;
	fake_mono_ms = mono_ms;
}

void
clock_advance_fake_ms(int64_t ms)
{
	fake_wall_ms += ms;
	fake_mono_ms += ms;
}
