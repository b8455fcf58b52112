/*
 * Unit tests for auth/dcr (RFC 7591 metadata rules behind /oauth/register):
 * a table of registration requests and the error each must get, defaults,
 * baseline scopes, confidential clients only when allowed, and the
 * response shape; plus the strict form parser the OAuth endpoints use.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/client/client.h"
#include "auth/registry/dcr.h"
#include "common/form.h"
#include "config/config.h"
#include "test/unit/unit.h"

static void
test_dcr_table(void)
{
	static const struct {
		const char *body;
		const char *error; /* NULL = accepted */
	} t[] = {
		{ "{\"redirect_uris\":[\"https://a.example/cb\"]}", NULL },
		{ "{\"redirect_uris\":[\"http://127.0.0.1:3000/cb\"],\"grant_types\":"
		  "[\"authorization_code\",\"refresh_token\"],\"response_types\":[\"code\"],"
		  "\"token_endpoint_auth_method\":\"none\",\"scope\":\"openid offline_access\"}", NULL },
		{ "{\"redirect_uris\":[\"cursor://anysphere/cb\"]}", NULL },
		{ "{\"redirect_uris\":[\"https://a.example/cb\"],\"client_uri\":\"https://a.example\"}",
		  NULL },
		{ "[]", "invalid_client_metadata" },
		{ "not json", "invalid_client_metadata" },
		{ "{\"redirect_uris\":[\"https://a.example/cb\"]} trailing", "invalid_client_metadata" },
		{ "{}", "invalid_redirect_uri" },
		{ "{\"redirect_uris\":[]}", "invalid_redirect_uri" },
		{ "{\"redirect_uris\":\"https://a.example/cb\"}", "invalid_redirect_uri" },
		{ "{\"redirect_uris\":[1]}", "invalid_redirect_uri" },
		{ "{\"redirect_uris\":[\"http://a.example/cb\"]}", "invalid_redirect_uri" },
		{ "{\"redirect_uris\":[\"https://a.example/cb#f\"]}", "invalid_redirect_uri" },
		{ "{\"redirect_uris\":[\"javascript:alert(1)\"]}", "invalid_redirect_uri" },
		{ "{\"redirect_uris\":[\"/cb\"]}", "invalid_redirect_uri" },
		{ "{\"redirect_uris\":[\"https://a/1\",\"https://a/2\",\"https://a/3\",\"https://a/4\","
		  "\"https://a/5\",\"https://a/6\",\"https://a/7\",\"https://a/8\",\"https://a/9\","
		  "\"https://a/10\",\"https://a/11\"]}", "invalid_redirect_uri" },
		{ "{\"redirect_uris\":[\"https://a.example/cb\"],\"token_endpoint_auth_method\":"
		  "\"client_secret_basic\"}", "invalid_client_metadata" },
		{ "{\"redirect_uris\":[\"https://a.example/cb\"],\"token_endpoint_auth_method\":"
		  "\"private_key_jwt\"}", "invalid_client_metadata" },
		{ "{\"redirect_uris\":[\"https://a.example/cb\"],\"grant_types\":[\"refresh_token\"]}",
		  "invalid_client_metadata" },
		{ "{\"redirect_uris\":[\"https://a.example/cb\"],\"grant_types\":"
		  "[\"authorization_code\",\"client_credentials\"]}", "invalid_client_metadata" },
		{ "{\"redirect_uris\":[\"https://a.example/cb\"],\"grant_types\":[\"implicit\"]}",
		  "invalid_client_metadata" },
		{ "{\"redirect_uris\":[\"https://a.example/cb\"],\"response_types\":[\"token\"]}",
		  "invalid_client_metadata" },
		{ "{\"redirect_uris\":[\"https://a.example/cb\"],\"response_types\":[\"code\",\"token\"]}",
		  "invalid_client_metadata" },
		{ "{\"redirect_uris\":[\"https://a.example/cb\"],\"scope\":\"openid admin\"}",
		  "invalid_client_metadata" },
		{ "{\"redirect_uris\":[\"https://a.example/cb\"],\"scope\":7}", "invalid_client_metadata" },
		{ "{\"redirect_uris\":[\"https://a.example/cb\"],\"client_name\":[]}",
		  "invalid_client_metadata" },
		/* application_type: native takes loopback, private schemes and https;
		 * web only https off localhost. */
		{ "{\"redirect_uris\":[\"http://127.0.0.1:3000/cb\",\"cursor://a/cb\","
		  "\"https://a.example/cb\"],\"application_type\":\"native\"}", NULL },
		{ "{\"redirect_uris\":[\"https://a.example/cb\"],\"application_type\":\"web\"}", NULL },
		{ "{\"redirect_uris\":[\"http://127.0.0.1:3000/cb\"],\"application_type\":\"web\"}",
		  "invalid_redirect_uri" },
		{ "{\"redirect_uris\":[\"http://localhost/cb\"],\"application_type\":\"web\"}",
		  "invalid_redirect_uri" },
		{ "{\"redirect_uris\":[\"https://localhost:8443/cb\"],\"application_type\":\"web\"}",
		  "invalid_redirect_uri" },
		{ "{\"redirect_uris\":[\"cursor://a/cb\"],\"application_type\":\"web\"}",
		  "invalid_redirect_uri" },
		{ "{\"redirect_uris\":[\"https://a.example/cb\"],\"application_type\":\"desktop\"}",
		  "invalid_client_metadata" },
		{ "{\"redirect_uris\":[\"https://a.example/cb\"],\"application_type\":1}",
		  "invalid_client_metadata" },
	};
	struct config *cfg = config_new();

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		struct dcr_result res;
		int rc = dcr_validate(t[i].body, strlen(t[i].body), cfg, &res);

		if (t[i].error == NULL) {
			if (rc != 0 || res.client == NULL)
				CU_FAIL_FATAL(t[i].body);
		} else if (rc == 0 || res.error == NULL || strcmp(res.error, t[i].error) != 0 ||
		    res.desc[0] == '\0') {
			CU_FAIL_FATAL(t[i].body);
		}
		dcr_result_dispose(&res);
	}
	config_free(cfg);
}

/* application_type is stored and echoed in the 201 body; absent, absent. */
static void
test_dcr_application_type(void)
{
	const char *native = "{\"redirect_uris\":[\"http://127.0.0.1:5555/cb\"],"
			     "\"application_type\":\"native\"}";
	const char *none = "{\"redirect_uris\":[\"http://127.0.0.1:5555/cb\"]}";
	struct config *cfg = config_new();
	struct dcr_result res;
	char *json;

	CU_ASSERT_EQUAL_FATAL(dcr_validate(native, strlen(native), cfg, &res), 0);
	CU_ASSERT_STRING_EQUAL(res.client->application_type, "native");
	json = dcr_response_json(res.client, NULL);
	CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"application_type\":\"native\""));
	free(json);
	dcr_result_dispose(&res);
	CU_ASSERT_EQUAL_FATAL(dcr_validate(none, strlen(none), cfg, &res), 0);
	CU_ASSERT_PTR_NULL(res.client->application_type);
	json = dcr_response_json(res.client, NULL);
	CU_ASSERT_PTR_NULL(strstr(json, "application_type"));
	free(json);
	dcr_result_dispose(&res);
	config_free(cfg);
}

static void
test_dcr_defaults_and_baseline(void)
{
	const char *body = "{\"redirect_uris\":[\"https://a.example/cb\"],\"scope\":\"email\"}";
	struct config *cfg = config_new();
	struct dcr_result res;
	json_object *o;
	char *json;

	strlist_add(&cfg->eas.baseline_client_scopes, "mcp:base");
	CU_ASSERT_EQUAL_FATAL(dcr_validate(body, strlen(body), cfg, &res), 0);
	CU_ASSERT_EQUAL(strlen(res.client->client_id), 36);
	CU_ASSERT_PTR_NULL(res.client_secret);
	CU_ASSERT_STRING_EQUAL(res.client->token_endpoint_auth_method, "none");
	CU_ASSERT_TRUE(strlist_contains(&res.client->grant_types, "authorization_code"));
	CU_ASSERT_FALSE(strlist_contains(&res.client->grant_types, "refresh_token"));
	CU_ASSERT_TRUE(strlist_contains(&res.client->scopes, "email"));
	CU_ASSERT_TRUE(strlist_contains(&res.client->scopes, "mcp:base"));
	CU_ASSERT_FALSE(strlist_contains(&res.client->scopes, "openid"));
	json = dcr_response_json(res.client, NULL);
	o = json_tokener_parse(json);
	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	CU_ASSERT_STRING_EQUAL(json_object_get_string(json_object_object_get(o, "scope")),
	    "email mcp:base");
	CU_ASSERT_PTR_NULL(json_object_object_get(o, "client_secret"));
	CU_ASSERT_PTR_NOT_NULL(json_object_object_get(o, "client_id_issued_at"));
	json_object_put(o);
	free(json);
	dcr_result_dispose(&res);
	config_free(cfg);
}

static void
test_dcr_confidential(void)
{
	const char *body = "{\"redirect_uris\":[\"https://a.example/cb\"],"
	    "\"token_endpoint_auth_method\":\"client_secret_post\"}";
	struct config *cfg = config_new();
	struct dcr_result res;
	char *json;

	cfg->eas.allow_confidential_client_registration = true;
	CU_ASSERT_EQUAL_FATAL(dcr_validate(body, strlen(body), cfg, &res), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(res.client_secret);
	CU_ASSERT_TRUE(res.client->has_secret);
	json = dcr_response_json(res.client, res.client_secret);
	CU_ASSERT_PTR_NOT_NULL(strstr(json, res.client_secret));
	free(json);
	dcr_result_dispose(&res);
	config_free(cfg);
}

static void
test_form_parse(void)
{
	struct form f;
	char err[128];
	const char *ok = "grant_type=authorization_code&code=a%2Bb+c&empty=&redirect_uri="
	    "http%3A%2F%2F127.0.0.1%2Fcb";

	CU_ASSERT_EQUAL_FATAL(form_parse(&f, ok, strlen(ok), err, sizeof err), 0);
	CU_ASSERT_STRING_EQUAL(form_get(&f, "grant_type"), "authorization_code");
	CU_ASSERT_STRING_EQUAL(form_get(&f, "code"), "a+b c");
	CU_ASSERT_PTR_NULL(form_get(&f, "empty"));
	CU_ASSERT_STRING_EQUAL(form_get(&f, "redirect_uri"), "http://127.0.0.1/cb");
	form_dispose(&f);

	CU_ASSERT_EQUAL(form_parse(&f, "a=1&a=2", 7, err, sizeof err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "repeated"));
	CU_ASSERT_EQUAL(form_parse(&f, "a=%zz", 5, err, sizeof err), -1);
	CU_ASSERT_EQUAL(form_parse(&f, "a=%2", 4, err, sizeof err), -1);
	CU_ASSERT_EQUAL(form_parse(&f, "a=%00", 5, err, sizeof err), -1);
	CU_ASSERT_EQUAL(form_parse(&f, "=x", 2, err, sizeof err), -1);
	CU_ASSERT_EQUAL(form_parse(&f, "", 0, err, sizeof err), 0);
	CU_ASSERT_EQUAL(f.n, 0);
	{
		char many[FORM_MAX_PARAMS * 8 + 16] = "";

		for (int i = 0; i <= FORM_MAX_PARAMS; i++)
			snprintf(many + strlen(many), sizeof many - strlen(many), "p%d=1&", i);
		CU_ASSERT_EQUAL(form_parse(&f, many, strlen(many), err, sizeof err), -1);
	}
}

static void
test_form_build(void)
{
	struct form_builder fb = { 0 };
	char *s;

	form_add(&fb, "state", "a b&c=d/é");
	form_add(&fb, "skip", NULL);
	form_add(&fb, "x", "-._~");
	s = form_finish(&fb);
	CU_ASSERT_STRING_EQUAL(s, "state=a%20b%26c%3Dd%2F%C3%A9&x=-._~");
	free(s);
	s = form_finish(&fb);
	CU_ASSERT_STRING_EQUAL(s, "");
	free(s);
}

int
main(void)
{
	static const struct unit_test tests[] = {
		{ "application_type", test_dcr_application_type },
		{ "DCR validation table", test_dcr_table },
		{ "DCR defaults and baseline scopes", test_dcr_defaults_and_baseline },
		{ "DCR confidential client when allowed", test_dcr_confidential },
		{ "form parsing is strict", test_form_parse },
		{ "form building encodes", test_form_build },
		{ NULL, NULL },
	};

	return unit_run("register", tests);
}
