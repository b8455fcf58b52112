/*
 * The clock every cache, TTL and timeout reads, behind one seam so unit
 * tests inject time instead of sleeping. Production reads CLOCK_REALTIME
 * (wall, for token exp/iat) and CLOCK_MONOTONIC (durations).
 */
#ifndef COMMON_CLOCK_H
#define COMMON_CLOCK_H

#include <stdint.h>

/* Wall-clock seconds since the epoch. */
int64_t clock_wall_s(void);
/* Monotonic milliseconds, for durations and cache expiry. */
int64_t clock_mono_ms(void);
/* Monotonic microseconds, for latency measurements. */
int64_t clock_mono_us(void);

/* Tests: freeze both clocks at the given values (wall s, mono ms); pass
 * wall_s < 0 to return to the real clocks. */
void clock_set_fake(int64_t wall_s, int64_t mono_ms);
/* Tests: move the fake clocks forward. */
void clock_advance_fake_ms(int64_t ms);

#endif
