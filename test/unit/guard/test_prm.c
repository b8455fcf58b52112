/*
 * Unit tests for auth/prm: URL splitting, the metadata URL, the document
 * for embedded and oidc modes, and the challenge scope.
 */
#include "auth/guard/prm.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "config/config.h"
#include "test/unit/unit.h"

static void
test_split(void)
{
	static const struct {
		const char *url, *origin, *path;
	} ok[] = {
		{ "https://mcp.example.com/mcp", "https://mcp.example.com", "/mcp" },
		{ "https://mcp.example.com", "https://mcp.example.com", "" },
		{ "https://mcp.example.com/", "https://mcp.example.com", "" },
		{ "http://127.0.0.1:8080/a/b?x=1#f", "http://127.0.0.1:8080", "/a/b" },
		{ "https://[::1]:8443/mcp", "https://[::1]:8443", "/mcp" },
		{ "HTTPS://Example.com/mcp/", "HTTPS://Example.com", "/mcp/" },
	};
	static const char *bad[] = { "ftp://x/y", "/mcp", "https:///mcp", "", "mcp.example.com" };
	char *o, *p;

	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		CU_ASSERT_EQUAL_FATAL(prm_split_url(ok[i].url, &o, &p), 0);
		CU_ASSERT_STRING_EQUAL(o, ok[i].origin);
		CU_ASSERT_STRING_EQUAL(p, ok[i].path);
		free(o);
		free(p);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		CU_ASSERT_EQUAL(prm_split_url(bad[i], &o, &p), -1);
		CU_ASSERT_PTR_NULL(o);
		CU_ASSERT_PTR_NULL(p);
	}
	CU_ASSERT_EQUAL(prm_split_url(NULL, &o, &p), -1);
}

static void
test_embedded(void)
{
	struct config *cfg = config_new();
	struct prm *p;
	json_object *doc, *v;

	cfg->server.resource_url = xstrdup("https://mcp.example.com/mcp");
	cfg->eas.issuer = xstrdup("https://auth.example.com/");
	p = prm_new(cfg);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_STRING_EQUAL(prm_metadata_url(p),
	    "https://mcp.example.com/.well-known/oauth-protected-resource/mcp");
	/* offline_access is no resource requirement: not in the challenge or
	 * scopes_supported (MCP authorization 2026-07-28). */
	CU_ASSERT_STRING_EQUAL(prm_challenge_scope(p), "openid profile email");
	CU_ASSERT_STRING_EQUAL(prm_document(p),
	    "{\"resource\":\"https://mcp.example.com/mcp\","
	    "\"authorization_servers\":[\"https://auth.example.com\"],"
	    "\"bearer_methods_supported\":[\"header\"],"
	    "\"scopes_supported\":[\"openid\",\"profile\",\"email\"]}");
	prm_free(p);

	/* required scopes come first and are the challenge */
	strlist_add(&cfg->auth.required_scopes, "mcp:tools");
	strlist_add(&cfg->auth.required_scopes, "openid");
	p = prm_new(cfg);
	CU_ASSERT_STRING_EQUAL(prm_challenge_scope(p), "mcp:tools openid");
	doc = json_tokener_parse(prm_document(p));
	CU_ASSERT_TRUE(json_object_object_get_ex(doc, "scopes_supported", &v));
	CU_ASSERT_STRING_EQUAL(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN),
	    "[\"mcp:tools\",\"openid\",\"profile\",\"email\"]");
	json_object_put(doc);
	prm_free(p);
	prm_free(NULL);
	config_free(cfg);
}

static void
test_oidc_and_root(void)
{
	struct config *cfg = config_new();
	struct prm *p;

	cfg->auth.mode = AUTH_MODE_OIDC;
	cfg->server.resource_url = xstrdup("http://127.0.0.1:8080");
	cfg->auth.oidc.issuer = xstrdup("https://idp.example.com/realms/x/");
	p = prm_new(cfg);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_STRING_EQUAL(prm_metadata_url(p),
	    "http://127.0.0.1:8080/.well-known/oauth-protected-resource");
	CU_ASSERT_PTR_NULL(prm_challenge_scope(p));
	/* the external issuer is named exactly as configured */
	CU_ASSERT_STRING_EQUAL(prm_document(p),
	    "{\"resource\":\"http://127.0.0.1:8080\","
	    "\"authorization_servers\":[\"https://idp.example.com/realms/x/\"],"
	    "\"bearer_methods_supported\":[\"header\"]}");
	prm_free(p);
	free(cfg->server.resource_url);
	cfg->server.resource_url = NULL;
	CU_ASSERT_PTR_NULL(prm_new(cfg));
	config_free(cfg);
}

int
main(void)
{
	static const struct unit_test tests[] = {
		{ "split URL", test_split },
		{ "embedded document", test_embedded },
		{ "oidc document and root resource", test_oidc_and_root },
		{ NULL, NULL },
	};

	return unit_run("prm", tests);
}
