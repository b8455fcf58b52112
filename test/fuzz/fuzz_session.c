/*
 * Fuzz session_open (proxy/session.h), the parser of the sealed session id
 * a client sends in Mcp-Session-Id, under a fixed key made at start. The
 * first byte picks the mode:
 *   even: the rest is a client's session id, opened;
 *   odd:  byte 1 picks a position, the rest is "owner\nid", sealed here
 *         and opened again, then opened with the character at that
 *         position of the sealed id changed.
 * An id that opens must name a visible-ASCII owner and id (nothing that
 * could split a header line); a seal of such a pair must open to it; a
 * changed sealed id must never open.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/session.h"
#include "test/fuzz/fuzz.h"

/* The seeds in corpus/session were sealed under this secret. */
#define FUZZ_SESSION_SECRET "fuzz-session-secret-0123456789abcdef"

static struct session_key *key;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	key = session_key_new(FUZZ_SESSION_SECRET, sizeof FUZZ_SESSION_SECRET - 1);
	return 0;
}

static bool
visible(const char *s)
{
	for (const char *p = s; *p != '\0'; p++)
		if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
			return false;
	return *s != '\0';
}

/* Open s; when it opens, the promises of session_open hold. */
static int
open_checked(const char *s, char **owner, char **id)
{
	int rc = session_open(key, s, owner, id);

	if (rc == 0) {
		FUZZ_ASSERT(visible(*owner) && visible(*id));
	} else {
		FUZZ_ASSERT(*owner == NULL && *id == NULL);
	}
	return rc;
}

static void
fuzz_roundtrip(uint8_t pos, const uint8_t *data, size_t size)
{
	char *s = fuzz_str(data, size), *f[2], *sealed, *owner, *id;
	size_t n, at;

	if (fuzz_fields(s, f, 2) < 2 || strlen(f[0]) + strlen(f[1]) > 512)
		goto out;
	sealed = session_seal(key, f[0], f[1]);
	n = strlen(sealed);
	FUZZ_ASSERT(n > 3 && strncmp(sealed, "p1.", 3) == 0);
	if (open_checked(sealed, &owner, &id) == 0) {
		FUZZ_ASSERT(strcmp(owner, f[0]) == 0 && strcmp(id, f[1]) == 0);
		free(owner);
		free(id);
	} else {
		FUZZ_ASSERT(!visible(f[0]) || !visible(f[1]));
	}
	/* one character changed: never opens */
	at = 3 + pos % (n - 3);
	sealed[at] = sealed[at] == 'A' ? 'B' : 'A';
	FUZZ_ASSERT(open_checked(sealed, &owner, &id) != 0);
	free(sealed);
out:
	free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s, *owner, *id;

	if (size == 0)
		return 0;
	if (data[0] & 1) {
		if (size >= 2)
			fuzz_roundtrip(data[1], data + 2, size - 2);
		return 0;
	}
	s = fuzz_str(data + 1, size - 1);
	if (open_checked(s, &owner, &id) == 0) {
		free(owner);
		free(id);
	}
	free(s);
	return 0;
}
