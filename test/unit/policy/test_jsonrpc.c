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

/* Strings: every escape, surrogate pairs, UTF-8 as it came; names are
 * compared decoded, ids echoed as they came. */
static void
test_strings(void)
{
	struct jsonrpc_body b;
	char err[160], *id;
	json_object *o;

	CU_ASSERT_EQUAL_FATAL(parse("{\"jsonrpc\":\"2.0\",\"id\":\"a\\\"\\u00e9\\/\",\"method\":\"too"
				    "ls\\/call\",\"params\":{\"name\":\"\\u0065cho\\t\\n\\r\\b\\f\\\\"
				    "\\\"\\ud83d\\ude00t\xc3\xb6\xe2\x82\xac\xf0\x9f\x98\x80\"}}",
				  &b, err, sizeof err),
	    JSONRPC_OK);
	CU_ASSERT_STRING_EQUAL(b.msgs[0].method, "tools/call");
	CU_ASSERT_EQUAL(b.msgs[0].mid, JSONRPC_M_TOOLS_CALL);
	CU_ASSERT_STRING_EQUAL(b.msgs[0].name,
	    "echo\t\n\r\b\f\\\"\xf0\x9f\x98\x80t\xc3\xb6\xe2\x82\xac\xf0\x9f\x98\x80");
	CU_ASSERT_EQUAL(b.msgs[0].id.len, 13);
	CU_ASSERT_NSTRING_EQUAL(b.msgs[0].id.p, "\"a\\\"\\u00e9\\/\"", 13);
	o = jsonrpc_id_object(&b.msgs[0]);
	CU_ASSERT_STRING_EQUAL(json_object_get_string(o), "a\"\xc3\xa9/");
	json_object_put(o);
	id = jsonrpc_id_text(&b.msgs[0]);
	CU_ASSERT_STRING_EQUAL(id, "\"a\\\"\xc3\xa9\\/\"");
	free(id);
	jsonrpc_body_dispose(&b);

	/* integer ids as json-c prints them; -0 is 0 */
	CU_ASSERT_EQUAL_FATAL(parse("{\"jsonrpc\":\"2.0\",\"id\":-0,\"method\":\"x\"}", &b, err,
				  sizeof err),
	    JSONRPC_OK);
	id = jsonrpc_id_text(&b.msgs[0]);
	CU_ASSERT_STRING_EQUAL(id, "0");
	free(id);
	jsonrpc_body_dispose(&b);
	CU_ASSERT_EQUAL_FATAL(parse("{\"jsonrpc\":\"2.0\",\"id\":-9223372036854775808,\"method\":\"x\"}",
				  &b, err, sizeof err),
	    JSONRPC_OK);
	id = jsonrpc_id_text(&b.msgs[0]);
	CU_ASSERT_STRING_EQUAL(id, "-9223372036854775808");
	free(id);
	jsonrpc_body_dispose(&b);
	CU_ASSERT_EQUAL_FATAL(parse("{\"jsonrpc\":\"2.0\",\"id\":9223372036854775807,\"method\":\"x\"}",
				  &b, err, sizeof err),
	    JSONRPC_OK);
	jsonrpc_body_dispose(&b);

	/* the name is the params member, wherever it is and whatever is nested */
	CU_ASSERT_EQUAL_FATAL(parse("{\"params\":{\"arguments\":{\"name\":\"no\",\"x\":[{\"name\":"
				    "\"no\"}]},\"_meta\":{\"name\":\"no\"},\"name\":\"yes\"},\"id\":1,"
				    "\"method\":\"prompts/get\",\"jsonrpc\":\"2.0\"}",
				  &b, err, sizeof err),
	    JSONRPC_OK);
	CU_ASSERT_STRING_EQUAL(b.msgs[0].name, "yes");
	CU_ASSERT_EQUAL(b.msgs[0].params.len, 82);
	CU_ASSERT_EQUAL(b.msgs[0].params.p[0], '{');
	CU_ASSERT_EQUAL(b.msgs[0].params.p[81], '}');
	jsonrpc_body_dispose(&b);

	/* a uri method reads uri, not name; another method neither */
	CU_ASSERT_EQUAL_FATAL(parse("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/subscribe\","
				    "\"params\":{\"name\":\"n\",\"uri\":\"u\"}}",
				  &b, err, sizeof err),
	    JSONRPC_OK);
	CU_ASSERT_STRING_EQUAL(b.msgs[0].name, "u");
	jsonrpc_body_dispose(&b);
	CU_ASSERT_EQUAL_FATAL(parse("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\","
				    "\"params\":{\"name\":\"n\"}}",
				  &b, err, sizeof err),
	    JSONRPC_OK);
	CU_ASSERT_PTR_NULL(b.msgs[0].name);
	jsonrpc_body_dispose(&b);

	/* duplicates of keys the decision does not read are the server's business */
	CU_ASSERT_EQUAL(parse("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":"
			      "{\"name\":\"e\",\"arguments\":{\"a\":1,\"a\":2},\"x\":1,\"x\":2},"
			      "\"y\":1,\"y\":2}",
			    &b, err, sizeof err),
	    JSONRPC_OK);
	jsonrpc_body_dispose(&b);
}

/* The string scanner reads sixteen (or eight) bytes at a time: a byte that
 * ends the plain run ('"', '\\', a control character, a byte from 0x80
 * on) is found at every offset of a long name, and the name's end at every
 * length. */
static void
test_string_runs(void)
{
	static const char as[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
	static const struct {
		const char *ins;     /* put at offset i of a run of 'a' */
		const char *decoded; /* what it reads as, or NULL: refused */
	} cases[] = { { "\\\"", "\"" }, { "\\\\", "\\" }, { "\\u0041", "A" }, { "\x01", NULL },
		{ "\x1f", NULL }, { "\x7f", "\x7f" }, { "\x80", NULL }, { "\xc3\xa9", "\xc3\xa9" },
		{ "\xff", NULL }, { "~", "~" } };
	struct jsonrpc_body b;
	char err[160], body[256], want[128];

	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		for (int i = 0; i <= 40; i++) {
			int n = snprintf(body, sizeof body,
			    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\","
			    "\"params\":{\"name\":\"%.*s%sbb\"}}",
			    i, as, cases[c].ins);
			enum jsonrpc_err rc = jsonrpc_parse(body, (size_t)n, &lim, &b, err, sizeof err);

			if (cases[c].decoded == NULL) {
				CU_ASSERT_EQUAL(rc, JSONRPC_PARSE);
				continue;
			}
			CU_ASSERT_EQUAL_FATAL(rc, JSONRPC_OK);
			snprintf(want, sizeof want, "%.*s%sbb", i, as, cases[c].decoded);
			CU_ASSERT_STRING_EQUAL(b.msgs[0].name, want);
			jsonrpc_body_dispose(&b);
		}
	}
	/* names of every length up to 40; cut short inside the name, refused */
	for (int i = 0; i <= 40; i++) {
		int n = snprintf(body, sizeof body,
		    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"%.*s\"}}",
		    i, as);

		CU_ASSERT_EQUAL_FATAL(jsonrpc_parse(body, (size_t)n, &lim, &b, err, sizeof err),
		    JSONRPC_OK);
		CU_ASSERT_EQUAL(strlen(b.msgs[0].name), (size_t)i);
		jsonrpc_body_dispose(&b);
		CU_ASSERT_EQUAL(jsonrpc_parse(body, (size_t)n - 3, &lim, &b, err, sizeof err),
		    JSONRPC_PARSE);
	}
}

/* Every key the decision reads, given twice (also spelled with escapes),
 * refuses the body. */
static void
test_duplicates(void)
{
	static const char *const bodies[] = {
		"{\"jsonrpc\":\"2.0\",\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\"}",
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"m\\u0065thod\":\"tools/call\"}",
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"id\":2,\"method\":\"a\"}",
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\",\"params\":{},\"params\":[]}",
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{},\"result\":{}}",
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{},\"error\":{}}",
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\","
		"\"name\":\"rm\"}}",
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/read\",\"params\":{\"uri\":\"a\","
		"\"\\u0075ri\":\"b\"}}",
		/* a uri twice refuses a tools/call too: the key is not looked at by method */
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"e\","
		"\"uri\":\"a\",\"uri\":\"b\"}}",
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"e\","
		"\"arguments\":{},\"arguments\":{\"x\":1}}}",
		"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\"},{\"jsonrpc\":\"2.0\",\"id\":2,"
		"\"method\":\"a\",\"method\":\"b\"}]",
	};
	struct jsonrpc_body b;
	char err[160];

	for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
		enum jsonrpc_err rc = parse(bodies[i], &b, err, sizeof err);

		if (rc != JSONRPC_INVALID)
			fprintf(stderr, "duplicate %zu: %s → %d (%s)\n", i, bodies[i], rc, err);
		CU_ASSERT_EQUAL(rc, JSONRPC_INVALID);
		CU_ASSERT_STRING_EQUAL(err, "a JSON object has the same key twice");
		jsonrpc_body_dispose(&b);
	}
	/* a syntax error still wins */
	CU_ASSERT_EQUAL(parse("{\"jsonrpc\":\"2.0\",\"id\":1,\"id\":2,\"method\":\"a\"", &b, err,
			    sizeof err),
	    JSONRPC_PARSE);
	jsonrpc_body_dispose(&b);
}

/* Strict JSON: what RFC 8259 does not allow is -32700, whatever json-c's
 * lax corners take; in the body or deep inside params. */
static void
test_syntax(void)
{
	static const struct {
		const char *value; /* as params.arguments.v */
		const char *err;
	} bad[] = {
		{ "\"\x01\"", "a control character in a string at byte 85" },
		{ "\"a\tb\"", NULL },
		{ "\"\\ud800\"", "a lone UTF-16 surrogate at byte 91" },
		{ "\"\\udc00\"", NULL },
		{ "\"\\ud800\\u0041\"", NULL },
		{ "\"\\ud800x\"", NULL },
		{ "\"\\x\"", "invalid escape in a string at byte 86" },
		{ "\"\\u00zz\"", "invalid \\u escape at byte 87" },
		{ "\"\xc0\x80\"", "invalid UTF-8 at byte 85" },
		{ "\"\xed\xa0\x80\"", NULL },
		{ "\"\xf4\x90\x80\x80\"", NULL },
		{ "\"\xf5\x80\x80\x80\"", NULL },
		{ "\"\x80\"", NULL },
		{ "\"\xe2\x82x\"", NULL },
		{ "\"\xff\"", NULL },
		{ "01", "unexpected character at byte 85" },
		{ "1.", "invalid number at byte 86" },
		{ ".5", "unexpected character at byte 84" },
		{ "+1", NULL },
		{ "1e", "invalid number at byte 86" },
		{ "1e+", "invalid number at byte 87" },
		{ "-", "invalid number at byte 85" },
		{ "NaN", NULL },
		{ "Infinity", NULL },
		{ "-Infinity", NULL },
		{ "tru", NULL },
		{ "True", NULL },
		{ "nul", NULL },
		{ "[1,]", NULL },
		{ "[,1]", NULL },
		{ "[1 2]", NULL },
		{ "{\"a\":1,}", NULL },
		{ "{\"a\" 1}", NULL },
		{ "{1:1}", NULL },
		{ "{'a':1}", NULL },
		{ "[1]]", NULL },
		{ "\"a\" \"b\"", NULL },
	};
	static const char *const good[] = { "\"a\x7f\"", "\"\\ud83d\\ude00\"", "-0", "0", "-0.0e-0",
		"1.5E+3", "123456789012345678901234567890", "true", "false", "null", "[]", "{}",
		"[ 1 , [ ] , { } , \"\" ]", "\"\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xf0\x90\x80\x80"
					   "\xf4\x8f\xbf\xbf\"",
		" \t\r\n1 \t\r\n" };
	struct jsonrpc_body b;
	char err[160], body[256];

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		enum jsonrpc_err rc;

		snprintf(body, sizeof body,
		    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":"
		    "\"e\",\"arguments\":{\"v\":%s}}}",
		    bad[i].value);
		rc = parse(body, &b, err, sizeof err);
		if (rc != JSONRPC_PARSE || (bad[i].err != NULL && strstr(err, bad[i].err) == NULL))
			fprintf(stderr, "bad %zu: %s → %d (%s)\n", i, bad[i].value, rc, err);
		CU_ASSERT_EQUAL(rc, JSONRPC_PARSE);
		if (bad[i].err != NULL)
			CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i].err));
		jsonrpc_body_dispose(&b);
	}
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		enum jsonrpc_err rc;

		snprintf(body, sizeof body,
		    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":"
		    "\"e\",\"arguments\":{\"v\":%s}}}",
		    good[i]);
		rc = parse(body, &b, err, sizeof err);
		if (rc != JSONRPC_OK)
			fprintf(stderr, "good %zu: %s → %d (%s)\n", i, good[i], rc, err);
		CU_ASSERT_EQUAL(rc, JSONRPC_OK);
		jsonrpc_body_dispose(&b);
	}
	/* bytes after the value; a body that ends inside anything */
	CU_ASSERT_EQUAL(parse("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\"}\f", &b, err, sizeof err),
	    JSONRPC_PARSE);
	CU_ASSERT_STRING_EQUAL(err, "the body is not valid JSON: bytes after the JSON value at byte 37");
	jsonrpc_body_dispose(&b);
	{
		const char *full = "[{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"method\":\"tools/call\",\"params\":"
				   "{\"name\":\"\\u00e9\xc3\xa9\",\"a\":[1.5e3,true,null]}}]";

		for (size_t n = 1; n < strlen(full); n++) {
			enum jsonrpc_err rc = jsonrpc_parse(full, n, &lim, &b, err, sizeof err);

			CU_ASSERT_EQUAL(rc, JSONRPC_PARSE);
			if (rc != JSONRPC_PARSE)
				fprintf(stderr, "cut at %zu → %d (%s)\n", n, rc, err);
			jsonrpc_body_dispose(&b);
		}
		CU_ASSERT_EQUAL(jsonrpc_parse(full, strlen(full), &lim, &b, err, sizeof err),
		    JSONRPC_OK);
		jsonrpc_body_dispose(&b);
	}
}

#define D2(lit) lit, sizeof lit - 1

/* Depth as json-c counts it (a value inside max_depth containers is too
 * deep; empty containers hold none); the size bound is inclusive. */
static void
test_depth_size(void)
{
	struct jsonrpc_body b;
	char err[160], body[256];
	const struct jsonrpc_limits l2 = { .max_size = 4096, .max_depth = 2, .max_batch = 3 };

	/* lim.max_depth 8: the message is 0, params 1, arguments 2, v 3 */
	for (int extra = 0; extra < 6; extra++) {
		char open[8] = "", close[8] = "";

		for (int i = 0; i < extra; i++) {
			open[i] = '[';
			close[i] = ']';
		}
		snprintf(body, sizeof body,
		    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":"
		    "\"e\",\"arguments\":{\"v\":%s1%s}}}",
		    open, close);
		/* 1 is inside 3 + extra containers */
		CU_ASSERT_EQUAL(parse(body, &b, err, sizeof err),
		    3 + extra < lim.max_depth ? JSONRPC_OK : JSONRPC_PARSE);
		if (3 + extra >= lim.max_depth)
			CU_ASSERT_STRING_EQUAL(err, "the body is not valid JSON: nested too deeply");
		jsonrpc_body_dispose(&b);
	}
	CU_ASSERT_EQUAL(jsonrpc_parse(D2("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\",\"params\":{}}"),
			    &l2, &b, err, sizeof err),
	    JSONRPC_OK);
	jsonrpc_body_dispose(&b);
	CU_ASSERT_EQUAL(jsonrpc_parse(D2("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\",\"params\":[[]]}"),
			    &l2, &b, err, sizeof err),
	    JSONRPC_PARSE);
	jsonrpc_body_dispose(&b);
	/* in a batch the members' values are inside two containers already */
	CU_ASSERT_EQUAL(jsonrpc_parse(D2("[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\",\"params\":{}}]"),
			    &l2, &b, err, sizeof err),
	    JSONRPC_PARSE);
	jsonrpc_body_dispose(&b);
	CU_ASSERT_EQUAL(jsonrpc_parse(D2("[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\",\"params\":[1]}]"),
			    &l2, &b, err, sizeof err),
	    JSONRPC_PARSE);
	jsonrpc_body_dispose(&b);
	{
		char *big = xmalloc(4096);

		memset(big, ' ', 4096);
		memcpy(big, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\"}", 37);
		CU_ASSERT_EQUAL(jsonrpc_parse(big, 4096, &lim, &b, err, sizeof err), JSONRPC_OK);
		jsonrpc_body_dispose(&b);
		free(big);
	}
	/* a method or name one byte over its bound */
	{
		char *m = xmalloc(4096);

		snprintf(m, 4096, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"%0257d\"}", 0);
		CU_ASSERT_EQUAL(parse(m, &b, err, sizeof err), JSONRPC_INVALID);
		CU_ASSERT_STRING_EQUAL(err, "the method must be a string of at most 256 bytes without NUL");
		jsonrpc_body_dispose(&b);
		snprintf(m, 4096, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"%0256d\"}", 0);
		CU_ASSERT_EQUAL(parse(m, &b, err, sizeof err), JSONRPC_OK);
		CU_ASSERT_EQUAL(strlen(b.msgs[0].method), 256);
		jsonrpc_body_dispose(&b);
		snprintf(m, 4096,
		    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"%02049d\"}}",
		    0);
		CU_ASSERT_EQUAL(parse(m, &b, err, sizeof err), JSONRPC_INVALID);
		jsonrpc_body_dispose(&b);
		snprintf(m, 4096,
		    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"%02048d\"}}",
		    0);
		CU_ASSERT_EQUAL(parse(m, &b, err, sizeof err), JSONRPC_OK);
		CU_ASSERT_EQUAL(strlen(b.msgs[0].name), 2048);
		jsonrpc_body_dispose(&b);
		free(m);
	}
	/* an integer id over 64 bits, a fraction */
	CU_ASSERT_EQUAL(parse("{\"jsonrpc\":\"2.0\",\"id\":9223372036854775808,\"method\":\"x\"}", &b,
			    err, sizeof err),
	    JSONRPC_INVALID);
	CU_ASSERT_STRING_EQUAL(err, "a JSON-RPC id must be a string or an integer of at most 64 bits");
	jsonrpc_body_dispose(&b);
	CU_ASSERT_EQUAL(parse("{\"jsonrpc\":\"2.0\",\"id\":1e0,\"method\":\"x\"}", &b, err, sizeof err),
	    JSONRPC_INVALID);
	CU_ASSERT_STRING_EQUAL(err, "a JSON-RPC id must be a string or an integer");
	jsonrpc_body_dispose(&b);
	/* "2.0" exactly */
	CU_ASSERT_EQUAL(parse("{\"jsonrpc\":\"2.0\\u0000\",\"id\":1,\"method\":\"x\"}", &b, err,
			    sizeof err),
	    JSONRPC_INVALID);
	jsonrpc_body_dispose(&b);
	/* batches: the first bad member is told; a member past the bound is still checked */
	CU_ASSERT_EQUAL(parse("[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\"},{\"id\":2},{\"x\":1}]",
			    &b, err, sizeof err),
	    JSONRPC_INVALID);
	CU_ASSERT_STRING_EQUAL(err,
	    "batch message 1: a JSON-RPC message needs \"jsonrpc\": \"2.0\"");
	jsonrpc_body_dispose(&b);
	CU_ASSERT_EQUAL(parse("[1,2,3,[}]", &b, err, sizeof err), JSONRPC_PARSE);
	jsonrpc_body_dispose(&b);
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
		{ "strings", test_strings },
		{ "string_runs", test_string_runs },
		{ "duplicates", test_duplicates },
		{ "syntax", test_syntax },
		{ "depth_size", test_depth_size },
		{ "labels", test_labels },
		{ NULL, NULL },
	};

	return unit_run("jsonrpc", tests);
}
