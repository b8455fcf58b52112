/*
 * Unit tests of auth/policy/listcache: a body that differs from a noted one
 * only in its id is filtered from the shape, to the same pieces a scan
 * gives (checked against jsonrpc_filter_lists for ids of other lengths,
 * before and after the result, strings and integers); anything else is
 * scanned: a byte changed elsewhere, an id that is no string or integer or
 * that swallows more than a token, an id that answers no list request of
 * ours; what keep() said is reused for the same principal only; the
 * entries are bounded.
 */
#include "auth/policy/listcache.h"

#include "common/xalloc.h"
#include "test/unit/unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The list requests "ours": ids 1, 7, 123456789 and "abc" ask tools/list,
 * 5 asks prompts/list. */
static enum jsonrpc_method
t_list(const struct jsonrpc_msg *resp, void *arg)
{
	static const char *const tools[] = { "1", "7", "123456789", "\"abc\"" };

	(void)arg;
	for (size_t i = 0; i < sizeof tools / sizeof tools[0]; i++) {
		if (resp->id.len == strlen(tools[i]) && memcmp(resp->id.p, tools[i], resp->id.len) == 0)
			return JSONRPC_M_TOOLS_LIST;
	}
	if (resp->id.len == 1 && resp->id.p[0] == '5')
		return JSONRPC_M_PROMPTS_LIST;
	return JSONRPC_M_NONE;
}

/* admin-* only for sub "root"; counts the questions. */
static int asked;
static const struct rules_principal *t_who;

static bool
t_keep(enum jsonrpc_method list, const char *name, void *arg)
{
	(void)list;
	(void)arg;
	asked++;
	return strncmp(name, "admin-", 6) != 0 ||
	    (t_who->sub != NULL && strcmp(t_who->sub, "root") == 0);
}

/* The pieces as one string. */
static char *
t_join(const char *buf, size_t len, int rc, const struct jsonrpc_pieces *pc)
{
	size_t n = 0;
	char *s;

	if (rc != 0)
		return xstrdup("(refused)");
	if (!pc->changed)
		return xstrndup(buf, len);
	for (size_t i = 0; i < pc->n; i++)
		n += pc->v[i].len;
	s = xmalloc(n + 1);
	n = 0;
	for (size_t i = 0; i < pc->n; i++) {
		memcpy(s + n, pc->v[i].p, pc->v[i].len);
		n += pc->v[i].len;
	}
	s[n] = '\0';
	return s;
}

/* Filter body through lc for who and compare with a scan: the output. */
static char *
t_filter(struct listcache *lc, const char *body, const struct rules_principal *who)
{
	struct jsonrpc_pieces a, b;
	int ra, rb;
	char *sa, *sb;

	t_who = who;
	ra = listcache_filter(lc, body, strlen(body), 16, t_list, t_keep, NULL, who, &a);
	sa = t_join(body, strlen(body), ra, &a);
	rb = jsonrpc_filter_lists(body, strlen(body), 16, t_list, t_keep, NULL, &b);
	sb = t_join(body, strlen(body), rb, &b);
	CU_ASSERT_EQUAL(ra, rb);
	if (strcmp(sa, sb) != 0)
		fprintf(stderr, "cache: %s\nscan:  %s\n", sa, sb);
	CU_ASSERT_STRING_EQUAL(sa, sb);
	jsonrpc_pieces_dispose(&a);
	jsonrpc_pieces_dispose(&b);
	free(sb);
	return sa;
}

static unsigned long long
t_hits(const struct listcache *lc)
{
	unsigned long long h, m;

	listcache_counts(lc, &h, &m);
	return h;
}

#define TOOLS(id)                                                                          \
	"{\"jsonrpc\":\"2.0\",\"id\":" id ",\"result\":{\"tools\":[{\"name\":\"echo\",\"x\":[1]}," \
	"{\"name\":\"admin-drop\"},{\"name\":\"get\"},{\"title\":\"no name\"},{\"name\":\"admin-x\"}]}}"
#define TOOLS_ID_LAST(id)                                                                     \
	"{\"jsonrpc\":\"2.0\",\"result\":{\"tools\":[{\"name\":\"admin-a\"},{\"name\":\"b\"}]}," \
	"\"id\":" id "}"

static void
test_hits(void)
{
	struct listcache *lc = listcache_new();
	const struct rules_principal user = { .sub = "u", .scope = "s" };
	char *s;

	s = t_filter(lc, TOOLS("1"), &user);
	CU_ASSERT_STRING_EQUAL(s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":"
				  "\"echo\",\"x\":[1]},{\"name\":\"get\"}]}}");
	free(s);
	CU_ASSERT_EQUAL(t_hits(lc), 0);
	/* ids of other lengths and kinds: from the shape */
	free(t_filter(lc, TOOLS("7"), &user));
	free(t_filter(lc, TOOLS("123456789"), &user));
	s = t_filter(lc, TOOLS("\"abc\""), &user);
	CU_ASSERT_STRING_EQUAL(s, "{\"jsonrpc\":\"2.0\",\"id\":\"abc\",\"result\":{\"tools\":[{"
				  "\"name\":\"echo\",\"x\":[1]},{\"name\":\"get\"}]}}");
	free(s);
	CU_ASSERT_EQUAL(t_hits(lc), 3);
	/* the id after the result moves nothing before it */
	free(t_filter(lc, TOOLS_ID_LAST("1"), &user));
	s = t_filter(lc, TOOLS_ID_LAST("123456789"), &user);
	CU_ASSERT_STRING_EQUAL(s, "{\"jsonrpc\":\"2.0\",\"result\":{\"tools\":[{\"name\":\"b\"}]},"
				  "\"id\":123456789}");
	free(s);
	CU_ASSERT_EQUAL(t_hits(lc), 4);
	listcache_free(lc);
}

static void
test_misses(void)
{
	struct listcache *lc = listcache_new();
	const struct rules_principal user = { .sub = "u" };
	unsigned long long h;

	free(t_filter(lc, TOOLS("1"), &user));
	/* a byte changed outside the id: scanned */
	free(t_filter(lc,
	    "{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"tools\":[{\"name\":\"echo\",\"x\":[2]},"
	    "{\"name\":\"admin-drop\"},{\"name\":\"get\"},{\"title\":\"no name\"},{\"name\":"
	    "\"admin-x\"}]}}",
	    &user));
	CU_ASSERT_EQUAL(t_hits(lc), 0);
	/* ids that are no string or integer, or more than one token: scanned
	 * (and answered as the scan answers: not ours, or refused) */
	free(t_filter(lc, TOOLS("1.5"), &user));
	free(t_filter(lc, TOOLS("null"), &user));
	free(t_filter(lc, TOOLS("1,\"id\":7"), &user));
	free(t_filter(lc, TOOLS("7 "), &user));
	free(t_filter(lc, TOOLS("\"a\\\"b\""), &user));
	free(t_filter(lc, TOOLS("{\"a\":1}"), &user));
	free(t_filter(lc, TOOLS("\"abc"), &user));
	free(t_filter(lc, TOOLS("99999999999999999999999"), &user));
	h = t_hits(lc);
	CU_ASSERT_EQUAL(h, 0);
	/* an id that is not a list request of ours, or another list's: as the scan says */
	free(t_filter(lc, TOOLS("2"), &user));
	free(t_filter(lc, TOOLS("5"), &user));
	CU_ASSERT_EQUAL(t_hits(lc), 0);
	free(t_filter(lc, TOOLS("7"), &user));
	CU_ASSERT_EQUAL(t_hits(lc), 1);
	listcache_free(lc);
}

static void
test_memo(void)
{
	struct listcache *lc = listcache_new();
	const struct rules_principal user = { .sub = "u", .scope = "a" };
	const struct rules_principal user2 = { .sub = "u", .scope = "a b" };
	const struct rules_principal root = { .sub = "root", .scope = "a" };
	char *s;

	free(t_filter(lc, TOOLS("1"), &user));
	asked = 0;
	free(t_filter(lc, TOOLS("7"), &user));
	/* the shape asks four (the nameless item is dropped unasked), the scan four */
	CU_ASSERT_EQUAL(asked, 4 + 4);
	asked = 0;
	free(t_filter(lc, TOOLS("7"), &user));
	CU_ASSERT_EQUAL(asked, 0 + 4); /* the same principal: not asked again */
	/* another principal is asked again: its answers differ */
	asked = 0;
	s = t_filter(lc, TOOLS("7"), &root);
	CU_ASSERT_EQUAL(asked, 4 + 4);
	CU_ASSERT_PTR_NOT_NULL(strstr(s, "admin-drop"));
	free(s);
	s = t_filter(lc, TOOLS("7"), &user);
	CU_ASSERT_PTR_NULL(strstr(s, "admin-drop"));
	free(s);
	asked = 0;
	free(t_filter(lc, TOOLS("7"), &user2)); /* another scope */
	CU_ASSERT_EQUAL(asked, 4 + 4);
	listcache_free(lc);
}

static void
test_bounds(void)
{
	struct listcache *lc = listcache_new();
	const struct rules_principal user = { .sub = "u" };
	char body[512];
	char *big;
	size_t n = LISTCACHE_BODY_MAX + 64, at;

	/* more bodies than entries: the oldest-used gives way */
	for (int i = 0; i < LISTCACHE_ENTRIES + 2; i++) {
		snprintf(body, sizeof body,
		    "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"t%d\"},{\"name\":"
		    "\"admin-%d\"}]}}",
		    i, i);
		free(t_filter(lc, body, &user));
	}
	snprintf(body, sizeof body,
	    "{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"tools\":[{\"name\":\"t%d\"},{\"name\":"
	    "\"admin-%d\"}]}}",
	    LISTCACHE_ENTRIES + 1, LISTCACHE_ENTRIES + 1);
	free(t_filter(lc, body, &user));
	CU_ASSERT_EQUAL(t_hits(lc), 1);
	snprintf(body, sizeof body,
	    "{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"tools\":[{\"name\":\"t0\"},{\"name\":"
	    "\"admin-0\"}]}}");
	free(t_filter(lc, body, &user));
	CU_ASSERT_EQUAL(t_hits(lc), 1); /* given way */
	/* a body over the size bound is never noted */
	big = xmalloc(n + 1);
	at = (size_t)snprintf(big, n + 1,
	    "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"admin-1\"}],\"pad\":\"");
	memset(big + at, 'x', n - at - 3);
	memcpy(big + n - 3, "\"}}", 4);
	free(t_filter(lc, big, &user));
	big[22] = '7';
	free(t_filter(lc, big, &user));
	CU_ASSERT_EQUAL(t_hits(lc), 1);
	free(big);
	listcache_free(lc);
}

int
main(void)
{
	static const struct unit_test tests[] = {
		{ "hits", test_hits },
		{ "misses", test_misses },
		{ "memo", test_memo },
		{ "bounds", test_bounds },
		{ NULL, NULL },
	};

	return unit_run("listcache", tests);
}
