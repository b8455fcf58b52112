/*
 * Fuzz the CIMD client_id URL rules (auth/cimd_doc.h): cimd_url_check on
 * the whole input, then the host policy with the first line as a pattern
 * and the host the rest yields. An accepted URL must really be what the
 * rules promise: lower-case https, and the host handed back is the
 * lower-cased authority text, short enough, without userinfo or spaces.
 */
#include <ctype.h>

#include "auth/cimd/cimd_doc.h"
#include "config/config.h"
#include "test/fuzz/fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_str(data, size), *nl, host[CIMD_HOST_MAX], small[8];
	const char *why = NULL, *pattern;
	struct strlist allowed = { 0 }, denied = { 0 };
	size_t hn;

	if (cimd_url_check(s, host, sizeof host, &why) == 0) {
		hn = strlen(host);
		FUZZ_ASSERT(strncmp(s, "https://", 8) == 0 && strlen(s) <= CIMD_URL_MAX);
		FUZZ_ASSERT(hn > 0 && hn < CIMD_HOST_MAX && strncasecmp(s + 8, host, hn) == 0);
		FUZZ_ASSERT(strchr("/?:", s[8 + hn]) != NULL);
		FUZZ_ASSERT(strchr(s, '#') == NULL && memchr(s + 8, '@', hn) == NULL);
		for (size_t i = 0; i < hn; i++)
			FUZZ_ASSERT(!isupper((unsigned char)host[i]) && host[i] > 0x20);
		/* A buffer too small for the host is refused, never overrun. */
		if (cimd_url_check(s, small, sizeof small, &why) == 0)
			FUZZ_ASSERT(strlen(small) < sizeof small);
	} else {
		FUZZ_ASSERT(why != NULL && *why != '\0');
	}

	/* "pattern\nurl": the policy decision on the URL's host. */
	if ((nl = strchr(s, '\n')) != NULL) {
		*nl = '\0';
		pattern = s;
		if (cimd_url_check(nl + 1, host, sizeof host, &why) == 0) {
			strlist_add(&allowed, pattern);
			strlist_add(&denied, pattern);
			(void)cimd_host_match(pattern, host);
			FUZZ_ASSERT(cimd_host_allowed(NULL, NULL, host, &why));
			FUZZ_ASSERT(cimd_host_allowed(&allowed, NULL, host, &why) ==
			    cimd_host_match(pattern, host));
			FUZZ_ASSERT(!cimd_host_allowed(&allowed, &denied, host, &why) ||
			    !cimd_host_match(pattern, host));
			strlist_dispose(&allowed);
			strlist_dispose(&denied);
		}
	}
	free(s);
	return 0;
}
