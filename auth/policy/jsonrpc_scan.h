/*
 * The JSON scanner that the JSON-RPC request reader (jsonrpc.c) and the
 * list response filter (jsonrpc_lists.c) share: one cursor over a body,
 * every value checked as strictly as jsonrpc.h says, strings decoded on
 * demand, the keys the policy reads told apart. Internal to auth/policy;
 * its functions carry the scanner's short prefix jr_. The small ones the
 * walkers call at every step are inline here.
 */
#ifndef AUTH_POLICY_JSONRPC_SCAN_H
#define AUTH_POLICY_JSONRPC_SCAN_H

#include <stdbool.h>
#include <stddef.h>

/* The scanner's state over one body. */
struct jr {
	const unsigned char *p, *start, *end;
	int max_depth;
	const char *err; /* the syntax error, or NULL */
	size_t err_at;   /* its byte offset, or (size_t)-1 for none to show */
	bool dup;        /* a key the decision reads came twice */
	char *arena;     /* where decoded strings go */
	size_t used, cap;
};

#define JR_EOF ((size_t)-1)

/* Note a syntax error at the cursor (the first one stays); -1. */
static inline int
jr_fail(struct jr *s, const char *what)
{
	if (s->err == NULL) {
		s->err = what;
		s->err_at = s->p < s->end ? (size_t)(s->p - s->start) : JR_EOF;
	}
	return -1;
}

static inline int
jr_eof(struct jr *s)
{
	s->p = s->end;
	return jr_fail(s, "it ends early");
}

static inline void
jr_ws(struct jr *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
		s->p++;
}

/* A decoded string's destination: up to cap bytes at out (NULL: only
 * check), n counts them all. */
struct jr_out {
	char *out;
	size_t cap, n;
	bool nul;
};

/* The keys the decision reads. */
enum jr_key {
	JR_K_OTHER,
	JR_K_JSONRPC,
	JR_K_METHOD,
	JR_K_ID,
	JR_K_PARAMS,
	JR_K_RESULT,
	JR_K_ERROR,
	JR_K_NAME,
	JR_K_URI,
	JR_K_ARGUMENTS,
	JR_K_TOOLS, /* the list members of a result, in jr_lists' order */
	JR_K_PROMPTS,
	JR_K_RESOURCES,
	JR_K_RESOURCE_TEMPLATES,
	JR_K_URI_TEMPLATE,
};

/* The type of a value, as jr_value tells it. */
enum jr_type { JR_ABSENT, JR_NULL, JR_STRING, JR_INT, JR_BIGINT, JR_OBJECT, JR_ARRAY, JR_OTHER };

/* Note a key the decision reads (its value's type *t so far): false, and
 * the body refused, the second time. */
static inline bool
jr_first(struct jr *s, enum jr_type *t)
{
	if (*t != JR_ABSENT) {
		s->dup = true;
		return false;
	}
	return true;
}

/* The '{' or '[' at s->p of an object or array nested in level, and the
 * blanks after it: 1 when a member follows, 0 when it is empty (close, its
 * '}' or ']', read too), -1 when it is nested too deeply. */
static inline int
jr_open(struct jr *s, int level, char close)
{
	if (level >= s->max_depth)
		return jr_fail(s, "nested too deeply");
	s->p++;
	jr_ws(s);
	if (s->p < s->end && *s->p == close) {
		s->p++;
		return 0;
	}
	return 1;
}

/* A string at s->p (its opening quote), decoded into o (may be NULL). */
int jr_string(struct jr *s, struct jr_out *o);
/* Any value at s->p, nested in level objects/arrays: only checked. */
int jr_skip(struct jr *s, int level);
/* An object key at s->p (its quote) and the ':' after it: which one it is. */
int jr_key(struct jr *s, enum jr_key *k);
/* After a member: ',' (true) or the object's end (false). */
int jr_next(struct jr *s, bool *more);
/* The type of the value at s->p, then the value, checked; a string can be
 * decoded into o. */
int jr_value(struct jr *s, int level, enum jr_type *t, struct jr_out *o);

#endif
