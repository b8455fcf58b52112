/*
 * What every libFuzzer harness in test/fuzz shares: the entry point's
 * prototype and small helpers to turn the fuzzer's bytes into the strings
 * and fields our parsers take. Harnesses call the public API only, so a
 * finding is a bug a caller can reach; they must never keep state that
 * makes one input depend on another.
 */
#ifndef TEST_FUZZ_FUZZ_H
#define TEST_FUZZ_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* The input as a new NUL-terminated string (it may hold more NULs). */
static inline char *
fuzz_str(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (s == NULL)
		abort();
	if (size > 0)
		memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/*
 * Split s in place at the first n - 1 newlines into fields[0..n-1]; missing
 * fields are NULL. Returns how many fields were found.
 */
static inline size_t
fuzz_fields(char *s, char **fields, size_t n)
{
	size_t i = 0;

	while (i < n) {
		fields[i++] = s;
		if (i == n || (s = strchr(s, '\n')) == NULL)
			break;
		*s++ = '\0';
	}
	for (size_t j = i; j < n; j++)
		fields[j] = NULL;
	return i;
}

/* A check that must hold whatever the input: abort so libFuzzer keeps it. */
#define FUZZ_ASSERT(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: invariant failed: %s\n",	\
		    __FILE__, __LINE__, #cond);				\
		abort();						\
	}								\
} while (0)

#endif
