/*
 * Unit tests for auth/client: the redirect_uri rules (registration check,
 * exact matching with the RFC 8252 loopback-port exception) and scope
 * subsets, as tables of what a client sends and what it must get.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "auth/client/client.h"
#include "common/scope.h"
#include "test/unit/unit.h"

static void
test_redirect_match_table(void)
{
	static const struct {
		const char *registered;
		const char *requested;
		bool match;
	} t[] = {
		{ "https://app.example.com/cb", "https://app.example.com/cb", true },
		{ "https://app.example.com/cb", "https://app.example.com/cb/", false },
		{ "https://app.example.com/cb", "https://APP.example.com/cb", false },
		{ "https://app.example.com/cb", "https://app.example.com:443/cb", false },
		{ "https://app.example.com/cb", "https://app.example.com/cb?x=1", false },
		{ "https://app.example.com/cb", "https://app.example.com.evil/cb", false },
		{ "https://app.example.com:8443/cb", "https://app.example.com:9443/cb", false },
		/* RFC 8252 §7.3: loopback, any port. */
		{ "http://127.0.0.1/cb", "http://127.0.0.1:53123/cb", true },
		{ "http://127.0.0.1:8080/cb", "http://127.0.0.1:53123/cb", true },
		{ "http://[::1]:1/cb", "http://[::1]:65535/cb", true },
		{ "http://localhost:3000/callback", "http://localhost:4000/callback", true },
		{ "http://127.0.0.1:8080/cb", "http://127.0.0.1:8080/other", false },
		{ "http://127.0.0.1:8080/cb", "http://localhost:8080/cb", false },
		{ "http://127.0.0.1:8080/cb", "http://127.0.0.2:8080/cb", false },
		{ "http://127.0.0.1/cb", "http://127.0.0.1:99999/cb", false },
		{ "http://127.0.0.1/cb", "http://127.0.0.1:80@evil.example/cb", false },
		{ "http://127.0.0.1/cb", "https://127.0.0.1:5000/cb", false },
		{ "http://app.example.com:80/cb", "http://app.example.com:81/cb", false },
		{ "cursor://anysphere.cursor-retrieval/oauth/cb",
		    "cursor://anysphere.cursor-retrieval/oauth/cb", true },
		{ "com.example.app:/cb", "com.example.app:/cb2", false },
	};

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		char *v[1] = { (char *)t[i].registered };
		struct strlist reg = { v, 1 };

		if (client_redirect_uri_matches(&reg, t[i].requested) != t[i].match)
			CU_FAIL_FATAL(t[i].requested);
	}
}

static void
test_redirect_match_several(void)
{
	char *v[2] = { "https://a.example/cb", "http://127.0.0.1/cb" };
	struct strlist reg = { v, 2 };

	CU_ASSERT_TRUE(client_redirect_uri_matches(&reg, "https://a.example/cb"));
	CU_ASSERT_TRUE(client_redirect_uri_matches(&reg, "http://127.0.0.1:7777/cb"));
	CU_ASSERT_FALSE(client_redirect_uri_matches(&reg, NULL));
	CU_ASSERT_FALSE(client_redirect_uri_matches(&reg, ""));
}

static void
test_redirect_check_table(void)
{
	static const struct {
		const char *uri;
		bool private_ok;
		int rc;
		enum redirect_uri_kind kind;
	} t[] = {
		{ "https://app.example.com/cb", false, 0, REDIRECT_URI_HTTPS },
		{ "http://127.0.0.1:3000/cb", false, 0, REDIRECT_URI_LOOPBACK },
		{ "http://[::1]/cb", false, 0, REDIRECT_URI_LOOPBACK },
		{ "http://localhost/cb", false, 0, REDIRECT_URI_LOOPBACK },
		{ "http://app.example.com/cb", false, -1, 0 },
		{ "https://app.example.com/cb#frag", false, -1, 0 },
		{ "https://user@app.example.com/cb", false, -1, 0 },
		{ "/relative/cb", false, -1, 0 },
		{ "", false, -1, 0 },
		{ "https://app.example.com/c b", false, -1, 0 },
		{ "cursor://cb", false, -1, 0 },
		{ "cursor://cb", true, 0, REDIRECT_URI_PRIVATE_SCHEME },
		{ "com.example.app:/oauth", true, 0, REDIRECT_URI_PRIVATE_SCHEME },
		{ "javascript:alert(1)", true, -1, 0 },
		{ "data:text/html,x", true, -1, 0 },
		{ "file:///etc/passwd", true, -1, 0 },
	};

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		enum redirect_uri_kind kind = 0;
		const char *why = NULL;
		int rc = client_redirect_uri_check(t[i].uri, t[i].private_ok, &kind, &why);

		if (rc != t[i].rc || (rc == 0 && kind != t[i].kind) || (rc != 0 && why == NULL))
			CU_FAIL_FATAL(t[i].uri);
	}
}

static void
test_redirect_too_long(void)
{
	char *uri = malloc(OAUTH_REDIRECT_URI_MAX + 2);
	enum redirect_uri_kind kind;
	const char *why;
	char *v[1];
	struct strlist reg = { v, 1 };

	memcpy(uri, "https://a.example/", 18);
	memset(uri + 18, 'a', OAUTH_REDIRECT_URI_MAX + 1 - 18);
	uri[OAUTH_REDIRECT_URI_MAX + 1] = '\0';
	CU_ASSERT_EQUAL(client_redirect_uri_check(uri, false, &kind, &why), -1);
	v[0] = uri;
	CU_ASSERT_FALSE(client_redirect_uri_matches(&reg, uri));
	free(uri);
}

static void
test_scope_subset(void)
{
	char *v[3] = { "openid", "offline_access", "mcp:tools" };
	struct strlist allowed = { v, 3 };

	CU_ASSERT_TRUE(scope_subset(NULL, &allowed));
	CU_ASSERT_TRUE(scope_subset("", &allowed));
	CU_ASSERT_TRUE(scope_subset("openid", &allowed));
	CU_ASSERT_TRUE(scope_subset("openid  mcp:tools", &allowed));
	CU_ASSERT_TRUE(scope_subset("mcp:tools openid offline_access", &allowed));
	CU_ASSERT_FALSE(scope_subset("openid email", &allowed));
	CU_ASSERT_FALSE(scope_subset("open", &allowed));
	CU_ASSERT_FALSE(scope_subset("openidx", &allowed));
	CU_ASSERT_FALSE(scope_subset("mcp:tools:write", &allowed));
}

static void
test_client_refs(void)
{
	struct client *c = client_new("abc");

	client_ref(c);
	client_unref(c);
	CU_ASSERT_STRING_EQUAL(c->client_id, "abc");
	client_unref(c);
	client_unref(NULL);
}

int
main(void)
{
	static const struct unit_test tests[] = {
		{ "redirect_uri matching table (loopback any port)", test_redirect_match_table },
		{ "redirect_uri matching with several registered", test_redirect_match_several },
		{ "redirect_uri registration check table", test_redirect_check_table },
		{ "redirect_uri length bound", test_redirect_too_long },
		{ "scope subset", test_scope_subset },
		{ "client references", test_client_refs },
		{ NULL, NULL },
	};

	return unit_run("client", tests);
}
