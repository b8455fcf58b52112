/*
 * Fuzz the redirect_uri and scope rules of auth/client.h. The first line is
 * the requested redirect_uri (and a requested scope string), the next lines
 * are what was registered (and the allowed scopes). Whatever matches a
 * registered URI that passed the registration check must itself pass it:
 * the loopback port relaxation must not let anything else through.
 */
#include "auth/client/client.h"
#include "common/scope.h"
#include "config/config.h"
#include "test/fuzz/fuzz.h"

#define LINES 9

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_str(data, size), *f[LINES];
	struct strlist reg = { 0 }, one;
	enum redirect_uri_kind kind, rkind;
	const char *why;
	size_t n;
	int rc;

	n = fuzz_fields(s, f, LINES);
	rc = client_redirect_uri_check(f[0], false, &kind, &why);
	if (rc == 0)
		FUZZ_ASSERT(kind == REDIRECT_URI_HTTPS || kind == REDIRECT_URI_LOOPBACK);
	if (client_redirect_uri_check(f[0], true, &kind, &why) != 0)
		FUZZ_ASSERT(rc != 0);

	for (size_t i = 1; i < n; i++) {
		if (client_redirect_uri_check(f[i], true, &rkind, &why) != 0)
			continue;
		one.v = &f[i];
		one.n = 1;
		if (client_redirect_uri_matches(&one, f[0])) {
			FUZZ_ASSERT(client_redirect_uri_check(f[0], true, &kind, &why) == 0);
			FUZZ_ASSERT(kind == rkind);
		}
		strlist_add(&reg, f[i]);
	}
	if (n > 1)
		(void)client_redirect_uri_matches(&reg, f[0]);
	(void)scope_subset(f[0], &reg);
	FUZZ_ASSERT(scope_subset("", &reg) && scope_subset(NULL, &reg));
	strlist_dispose(&reg);
	free(s);
	return 0;
}
