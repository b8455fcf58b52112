/*
 * Unit tests of auth/policy/jsonrpc: single messages and batches, kinds,
 * names per method, the size/depth/batch bounds, strictness (trailing
 * bytes, comments, bad UTF-8, NUL in names), metrics labels.
 */
#include "auth/policy/jsonrpc.h"

#include "common/xalloc.h"
#include "test/unit/unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct jsonrpc_limits lim = { .max_size = 4096, .max_depth = 8, .max_batch = 3 };

static enum jsonrpc_err
parse(const char *s, struct jsonrpc_body *b, char *err, size_t errlen)
{
	return jsonrpc_parse(s, strlen(s), &lim, b, err, errlen);
}

static void
test_single(void)
{
	struct jsonrpc_body b;
	char err[160];

	CU_ASSERT_EQUAL_FATAL(parse("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\","
				    "\"params\":{\"name\":\"echo\",\"arguments\":{}}}",
				  &b, err, sizeof err),
	    JSONRPC_OK);
	CU_ASSERT_FALSE(b.batch);
	CU_ASSERT_EQUAL(b.n, 1);
	CU_ASSERT_EQUAL(b.msgs[0].kind, JSONRPC_REQUEST);
	CU_ASSERT_STRING_EQUAL(b.msgs[0].method, "tools/call");
	CU_ASSERT_STRING_EQUAL(b.msgs[0].name, "echo");
	CU_ASSERT_EQUAL(b.msgs[0].id.len, 1);
	CU_ASSERT_EQUAL(b.msgs[0].id.p[0], '7');
	CU_ASSERT_FALSE(jsonrpc_always_passes(&b.msgs[0]));
	jsonrpc_body_dispose(&b);

	CU_ASSERT_EQUAL_FATAL(parse(" {\"jsonrpc\":\"2.0\",\"id\":\"r1\",\"method\":\"resources/read\","
				    "\"params\":{\"uri\":\"file:///a\"}}\n",
				  &b, err, sizeof err),
	    JSONRPC_OK);
	CU_ASSERT_STRING_EQUAL(b.msgs[0].name, "file:///a");
	jsonrpc_body_dispose(&b);

	/* keys and colons inside strings are no keys */
	CU_ASSERT_EQUAL_FATAL(parse("{\"jsonrpc\":\"2.0\",\"id\":\"a\\\":\",\"method\":\"x\","
				    "\"params\":{\"k\" : \"\\\\\", \"v\":[\"s\",{\"k\":1}]}}",
				  &b, err, sizeof err),
	    JSONRPC_OK);
	jsonrpc_body_dispose(&b);

	CU_ASSERT_EQUAL_FATAL(parse("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}",
				  &b, err, sizeof err),
	    JSONRPC_OK);
	CU_ASSERT_EQUAL(b.msgs[0].kind, JSONRPC_NOTIFICATION);
	CU_ASSERT_PTR_NULL(b.msgs[0].id.p);
	CU_ASSERT_TRUE(jsonrpc_always_passes(&b.msgs[0]));
	jsonrpc_body_dispose(&b);

	CU_ASSERT_EQUAL_FATAL(
	    parse("{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{}}", &b, err, sizeof err), JSONRPC_OK);
	CU_ASSERT_EQUAL(b.msgs[0].kind, JSONRPC_RESPONSE);
	CU_ASSERT_PTR_NULL(b.msgs[0].method);
	CU_ASSERT_TRUE(jsonrpc_always_passes(&b.msgs[0]));
	jsonrpc_body_dispose(&b);

	CU_ASSERT_EQUAL_FATAL(
	    parse("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", &b, err, sizeof err),
	    JSONRPC_OK);
	CU_ASSERT_TRUE(jsonrpc_always_passes(&b.msgs[0]));
	jsonrpc_body_dispose(&b);
}

static void
test_batch(void)
{
	struct jsonrpc_body b;
	char err[160];

	CU_ASSERT_EQUAL_FATAL(parse("[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"},"
				    "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"prompts/get\","
				    "\"params\":{\"name\":\"p\"}},"
				    "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/x\"}]",
				  &b, err, sizeof err),
	    JSONRPC_OK);
	CU_ASSERT_TRUE(b.batch);
	CU_ASSERT_EQUAL_FATAL(b.n, 3);
	CU_ASSERT_PTR_NULL(b.msgs[0].name);
	CU_ASSERT_STRING_EQUAL(b.msgs[1].name, "p");
	CU_ASSERT_EQUAL(b.msgs[2].kind, JSONRPC_NOTIFICATION);
	jsonrpc_body_dispose(&b);

	CU_ASSERT_EQUAL(parse("[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\"},"
			      "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"a\"},"
			      "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"a\"},"
			      "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"a\"}]",
			    &b, err, sizeof err),
	    JSONRPC_INVALID);
	CU_ASSERT_STRING_EQUAL(err, "a JSON-RPC batch of more than 3 messages");
	jsonrpc_body_dispose(&b);

	CU_ASSERT_EQUAL(parse("[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\"}, 5]", &b, err,
			    sizeof err),
	    JSONRPC_INVALID);
	CU_ASSERT_STRING_EQUAL(err, "batch message 1: a JSON-RPC message must be an object");
	jsonrpc_body_dispose(&b);
}

static void
test_bad(void)
{
	static const struct {
		const char *body;
		enum jsonrpc_err want;
		const char *err;
	} cases[] = {
		{ "", JSONRPC_PARSE, "the request body is empty" },
		{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\"", JSONRPC_PARSE,
		    "the body is not valid JSON: it ends early" },
		{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\"} {}", JSONRPC_PARSE, NULL },
		{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\"} x", JSONRPC_PARSE, NULL },
		{ "/* c */{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\"}", JSONRPC_PARSE, NULL },
		{ "{'jsonrpc':'2.0'}", JSONRPC_PARSE, NULL },
		{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\xfe\"}", JSONRPC_PARSE, NULL },
		{ "{\"a\":[[[[[[[[[[1]]]]]]]]]]}", JSONRPC_PARSE,
		    "the body is not valid JSON: nested too deeply" },
		{ "[]", JSONRPC_INVALID, "an empty JSON-RPC batch" },
		{ "5", JSONRPC_INVALID, "a JSON-RPC message must be an object" },
		{ "{\"id\":1,\"method\":\"a\"}", JSONRPC_INVALID,
		    "a JSON-RPC message needs \"jsonrpc\": \"2.0\"" },
		{ "{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"a\"}", JSONRPC_INVALID, NULL },
		{ "{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"a\"}", JSONRPC_INVALID,
		    "a JSON-RPC id must be a string or an integer" },
		{ "{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"a\"}", JSONRPC_INVALID,
		    "a JSON-RPC request id must not be null" },
		{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":5}", JSONRPC_INVALID, NULL },
		{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\"}", JSONRPC_INVALID,
		    "the method must not be empty" },
		{ "{\"jsonrpc\":\"2.0\",\"id\":1}", JSONRPC_INVALID, NULL },
		{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1,\"error\":{}}", JSONRPC_INVALID, NULL },
		{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\",\"params\":5}", JSONRPC_INVALID,
		    "params must be an object or an array" },
		{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\"}", JSONRPC_INVALID,
		    "this method needs params with its name" },
		{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":1}}",
		    JSONRPC_INVALID, NULL },
		{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":"
		  "\"echo\\u0000x\"}}",
		    JSONRPC_INVALID,
		    "params.name must be a string of at most 2048 bytes without NUL" },
		{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\\u0000b\"}", JSONRPC_INVALID, NULL },
		{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":"
		  "\"echo\",\"n\\u0061me\":\"get-env\"}}",
		    JSONRPC_INVALID, "a JSON object has the same key twice" },
		{ "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\",\"method\":\"b\"}]", JSONRPC_INVALID,
		    "a JSON object has the same key twice" },
		{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/read\",\"params\":{}}",
		    JSONRPC_INVALID, "params.uri must be a string of at most 2048 bytes without NUL" },
	};
	struct jsonrpc_body b;
	char err[160];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		enum jsonrpc_err rc = parse(cases[i].body, &b, err, sizeof err);

		if (rc != cases[i].want)
			fprintf(stderr, "case %zu: %s → %d (%s)\n", i, cases[i].body, rc, err);
		CU_ASSERT_EQUAL(rc, cases[i].want);
		if (cases[i].err != NULL)
			CU_ASSERT_STRING_EQUAL(err, cases[i].err);
		jsonrpc_body_dispose(&b);
	}
}

static void
test_size(void)
{
	struct jsonrpc_body b;
	char err[160], *big = xmalloc(5000);

	memset(big, ' ', 4999);
	big[4999] = '\0';
	big[0] = '{';
	big[4998] = '}';
	CU_ASSERT_EQUAL(parse(big, &b, err, sizeof err), JSONRPC_TOO_LARGE);
	CU_ASSERT_STRING_EQUAL(err, "the JSON-RPC message exceeds 4096 bytes");
	jsonrpc_body_dispose(&b);
	free(big);
}

static void
test_labels(void)
{
	CU_ASSERT_STRING_EQUAL(jsonrpc_method_label("tools/call"), "tools/call");
	CU_ASSERT_STRING_EQUAL(jsonrpc_method_label("notifications/cancelled"), "notification");
	CU_ASSERT_STRING_EQUAL(jsonrpc_method_label("x/" "y"), "other");
	CU_ASSERT_STRING_EQUAL(jsonrpc_method_label(NULL), "response");
}

int
main(void)
{
	static const struct unit_test tests[] = {
		{ "single", test_single },
		{ "batch", test_batch },
		{ "bad", test_bad },
		{ "size", test_size },
		{ "labels", test_labels },
		{ NULL, NULL },
	};

	return unit_run("jsonrpc", tests);
}
