/*
 * Unit tests for common/form: the one form encoder (RFC 3986 unreserved
 * kept, everything else %XX, space %20) and the HTTP Basic credentials built
 * from it (RFC 6749 §2.3.1) for the upstream IdP and the external IdP alike.
 */
#include "common/form.h"

#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "test/unit/unit.h"

static void
test_encode(void)
{
	char *s = form_encode("a b~*:+/é");

	CU_ASSERT_STRING_EQUAL(s, "a%20b~%2A%3A%2B%2F%C3%A9");
	free(s);
	s = form_encode("");
	CU_ASSERT_STRING_EQUAL(s, "");
	free(s);
}

static void
test_basic_auth(void)
{
	char *line = form_basic_auth("a b~", "p:w+d*");

	/* base64("a%20b~:p%3Aw%2Bd%2A"): a ':' in the secret cannot split it. */
	CU_ASSERT_STRING_EQUAL(line, "Authorization: Basic YSUyMGJ+OnAlM0F3JTJCZCUyQQ==");
	xfree_secret(line);
}

int
main(void)
{
	static const struct unit_test tests[] = {
		{ "form_encode", test_encode },
		{ "form_basic_auth: parts form-encoded before base64", test_basic_auth },
		{ NULL, NULL },
	};

	return unit_run("form", tests);
}
