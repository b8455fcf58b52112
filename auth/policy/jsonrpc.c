/*
 * The JSON-RPC reader (see jsonrpc.h). Everything a client sends here is
 * bounded before it is looked at: the size first, the depth while
 * scanning (an explicit stack of JSONRPC_DEPTH_MAX bits, no recursion),
 * the batch length, and the method and name lengths. Each byte is looked
 * at once; the message object and its params are read field by field, any
 * other value is only checked. Strings with NUL are refused where they
 * are read: a name "echo\u0000x" would read "echo" to a C string compare
 * and "echo\0x" to the backend.
 *
 * A syntax error anywhere wins over what is wrong with the JSON-RPC (a
 * malformed body is -32700 whatever else it is), so what is wrong with a
 * message is noted while scanning and told once the whole body scanned.
 */
#include "auth/policy/jsonrpc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "common/xalloc.h"

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
static int
jr_fail(struct jr *s, const char *what)
{
	if (s->err == NULL) {
		s->err = what;
		s->err_at = s->p < s->end ? (size_t)(s->p - s->start) : JR_EOF;
	}
	return -1;
}

static int
jr_eof(struct jr *s)
{
	s->p = s->end;
	return jr_fail(s, "it ends early");
}

static void
jr_ws(struct jr *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
		s->p++;
}

static int
jr_hex(const unsigned char *p)
{
	int v = 0;

	for (int i = 0; i < 4; i++) {
		int c = p[i], d;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
			d = (c | 0x20) - 'a' + 10;
		else
			return -1;
		v = v << 4 | d;
	}
	return v;
}

/* A decoded string's destination: up to cap bytes at out (NULL: only
 * check), n counts them all. */
struct jr_out {
	char *out;
	size_t cap, n;
	bool nul;
};

/* Bytes that stand for themselves in a string: printable ASCII but '"'
 * and '\\'. */
/* clang-format off */
static const unsigned char jr_plain[256] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};
/* clang-format on */

static void
jr_put(struct jr_out *o, unsigned char c)
{
	if (o->out != NULL && o->n < o->cap)
		o->out[o->n] = (char)c;
	o->n++;
}

/* How many bytes from p on stand for themselves: sixteen at a time with
 * SSE2 (x86-64 always has it: a signed compare below 0x20 also catches
 * the bytes from 0x80 on), else eight at a time while no byte of a word
 * is below 0x20, '"', '\\' or from 0x80 on (the usual has-zero-byte test;
 * a false alarm only ends the word loop early); the rest by the table. */
static size_t
jr_plain_run(const unsigned char *p, const unsigned char *end)
{
	const unsigned char *q = p;
#if defined(__SSE2__)
	const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'),
		      low = _mm_set1_epi8(0x20);

	while (end - q >= 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)q);
		int m = _mm_movemask_epi8(_mm_or_si128(_mm_cmplt_epi8(v, low),
		    _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash))));

		if (m != 0)
			return (size_t)(q - p) + (size_t)__builtin_ctz((unsigned)m);
		q += 16;
	}
#else
	const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;

	while (end - q >= 8) {
		uint64_t v, quote, bslash;

		memcpy(&v, q, 8);
		quote = v ^ (ones * '"');
		bslash = v ^ (ones * '\\');
		if (((v | ((v - ones * 0x20) & ~v) | ((quote - ones) & ~quote) |
			 ((bslash - ones) & ~bslash)) &
			highs) != 0)
			break;
		q += 8;
	}
#endif
	while (q < end && jr_plain[*q])
		q++;
	return (size_t)(q - p);
}

/* n bytes at p into o. */
static void
jr_put_run(struct jr_out *o, const unsigned char *p, size_t n)
{
	if (o->out != NULL && o->n < o->cap)
		memcpy(o->out + o->n, p, n < o->cap - o->n ? n : o->cap - o->n);
	o->n += n;
}

/* The bytes a UTF-8 sequence starting with c needs after it, and the range
 * of the first of them (RFC 3629: no overlong forms, no surrogates, at
 * most U+10FFFF); 0 when c starts none. */
static int
jr_utf8_need(unsigned char c, unsigned char *lo, unsigned char *hi)
{
	*lo = 0x80;
	*hi = 0xbf;
	if (c >= 0xc2 && c <= 0xdf)
		return 1;
	if (c == 0xe0)
		*lo = 0xa0;
	else if (c == 0xed)
		*hi = 0x9f;
	if (c >= 0xe0 && c <= 0xef)
		return 2;
	if (c == 0xf0)
		*lo = 0x90;
	else if (c == 0xf4)
		*hi = 0x8f;
	if (c >= 0xf0 && c <= 0xf4)
		return 3;
	return 0;
}

/* A \u escape at s->p (after the backslash and 'u'), a surrogate pair
 * taken whole, into o. */
static int
jr_unicode(struct jr *s, struct jr_out *o)
{
	int cp, lo;

	if (s->end - s->p < 4)
		return jr_eof(s);
	if ((cp = jr_hex(s->p)) < 0)
		return jr_fail(s, "invalid \\u escape");
	s->p += 4;
	if (cp >= 0xdc00 && cp <= 0xdfff)
		return jr_fail(s, "a lone UTF-16 surrogate");
	if (cp >= 0xd800 && cp <= 0xdbff) {
		if (s->end - s->p < 6)
			return s->end - s->p >= 2 && (s->p[0] != '\\' || s->p[1] != 'u')
			    ? jr_fail(s, "a lone UTF-16 surrogate")
			    : jr_eof(s);
		if (s->p[0] != '\\' || s->p[1] != 'u' || (lo = jr_hex(s->p + 2)) < 0xdc00 ||
		    lo > 0xdfff)
			return jr_fail(s, "a lone UTF-16 surrogate");
		s->p += 6;
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
	}
	if (cp == 0)
		o->nul = true;
	if (cp < 0x80) {
		jr_put(o, (unsigned char)cp);
	} else if (cp < 0x800) {
		jr_put(o, (unsigned char)(0xc0 | cp >> 6));
		jr_put(o, (unsigned char)(0x80 | (cp & 0x3f)));
	} else if (cp < 0x10000) {
		jr_put(o, (unsigned char)(0xe0 | cp >> 12));
		jr_put(o, (unsigned char)(0x80 | (cp >> 6 & 0x3f)));
		jr_put(o, (unsigned char)(0x80 | (cp & 0x3f)));
	} else {
		jr_put(o, (unsigned char)(0xf0 | cp >> 18));
		jr_put(o, (unsigned char)(0x80 | (cp >> 12 & 0x3f)));
		jr_put(o, (unsigned char)(0x80 | (cp >> 6 & 0x3f)));
		jr_put(o, (unsigned char)(0x80 | (cp & 0x3f)));
	}
	return 0;
}

/* A string at s->p (its opening quote), decoded into o (may be NULL). */
static int
jr_string(struct jr *s, struct jr_out *o)
{
	struct jr_out none = { 0 };
	unsigned char c, lo, hi;
	int need;

	if (o == NULL)
		o = &none;
	s->p++;
	for (;;) {
		/* the common run: printable ASCII */
		size_t run = jr_plain_run(s->p, s->end);

		jr_put_run(o, s->p, run);
		s->p += run;
		if (s->p >= s->end)
			return jr_eof(s);
		c = *s->p;
		if (c == '"') {
			s->p++;
			return 0;
		}
		if (c == '\\') {
			if (++s->p >= s->end)
				return jr_eof(s);
			switch (c = *s->p++) {
			case '"':
			case '\\':
			case '/':
				break;
			case 'b':
				c = '\b';
				break;
			case 'f':
				c = '\f';
				break;
			case 'n':
				c = '\n';
				break;
			case 'r':
				c = '\r';
				break;
			case 't':
				c = '\t';
				break;
			case 'u':
				if (jr_unicode(s, o) != 0)
					return -1;
				continue;
			default:
				s->p--;
				return jr_fail(s, "invalid escape in a string");
			}
			jr_put(o, c);
			continue;
		}
		if (c < 0x20)
			return jr_fail(s, "a control character in a string");
		if ((need = jr_utf8_need(c, &lo, &hi)) == 0)
			return jr_fail(s, "invalid UTF-8");
		if (s->end - s->p <= need)
			return jr_eof(s);
		for (int i = 1; i <= need; i++) {
			unsigned char d = s->p[i];

			if (d < (i == 1 ? lo : 0x80) || d > (i == 1 ? hi : 0xbf)) {
				s->p += i;
				return jr_fail(s, "invalid UTF-8");
			}
		}
		jr_put_run(o, s->p, (size_t)need + 1);
		s->p += need + 1;
	}
}

static bool
jr_digit(const struct jr *s)
{
	return s->p < s->end && *s->p >= '0' && *s->p <= '9';
}

/* A number at s->p; *integer when it has no fraction and no exponent. */
static int
jr_number(struct jr *s, bool *integer)
{
	*integer = true;
	if (*s->p == '-')
		s->p++;
	if (s->p >= s->end)
		return jr_eof(s);
	if (*s->p == '0') {
		s->p++;
	} else if (jr_digit(s)) {
		while (jr_digit(s))
			s->p++;
	} else {
		return jr_fail(s, "invalid number");
	}
	if (s->p < s->end && *s->p == '.') {
		*integer = false;
		s->p++;
		if (s->p >= s->end)
			return jr_eof(s);
		if (!jr_digit(s))
			return jr_fail(s, "invalid number");
		while (jr_digit(s))
			s->p++;
	}
	if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
		*integer = false;
		s->p++;
		if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
			s->p++;
		if (s->p >= s->end)
			return jr_eof(s);
		if (!jr_digit(s))
			return jr_fail(s, "invalid number");
		while (jr_digit(s))
			s->p++;
	}
	return 0;
}

static int
jr_literal(struct jr *s, const char *word, size_t len)
{
	size_t have = (size_t)(s->end - s->p);

	if (memcmp(s->p, word, have < len ? have : len) != 0)
		return jr_fail(s, "unexpected character");
	if (have < len)
		return jr_eof(s);
	s->p += len;
	return 0;
}

/* Any value at s->p, nested in level objects/arrays: only checked. The
 * containers opened inside it are a bit stack (1 = object). */
static int
jr_skip(struct jr *s, int level)
{
	uint64_t stack[JSONRPC_DEPTH_MAX / 64];
	int top = 0;
	bool integer;

	for (;;) {
		/* a value */
		if (level + top >= s->max_depth)
			return jr_fail(s, "nested too deeply");
		jr_ws(s);
		if (s->p >= s->end)
			return jr_eof(s);
		switch (*s->p) {
		case '{':
		case '[': {
			bool obj = *s->p == '{';

			s->p++;
			jr_ws(s);
			if (s->p < s->end && *s->p == (obj ? '}' : ']')) {
				s->p++;
				break;
			}
			if (obj)
				stack[top / 64] |= (uint64_t)1 << (top % 64);
			else
				stack[top / 64] &= ~((uint64_t)1 << (top % 64));
			top++;
			if (obj)
				goto key;
			continue;
		}
		case '"':
			if (jr_string(s, NULL) != 0)
				return -1;
			break;
		case 't':
			if (jr_literal(s, "true", 4) != 0)
				return -1;
			break;
		case 'f':
			if (jr_literal(s, "false", 5) != 0)
				return -1;
			break;
		case 'n':
			if (jr_literal(s, "null", 4) != 0)
				return -1;
			break;
		default:
			if (*s->p != '-' && (*s->p < '0' || *s->p > '9'))
				return jr_fail(s, "unexpected character");
			if (jr_number(s, &integer) != 0)
				return -1;
			break;
		}
		/* after a value: the next one, or the end of containers */
		for (;;) {
			bool obj;

			if (top == 0)
				return 0;
			obj = (stack[(top - 1) / 64] >> ((top - 1) % 64)) & 1;
			jr_ws(s);
			if (s->p >= s->end)
				return jr_eof(s);
			if (*s->p == ',') {
				s->p++;
				if (obj)
					goto key;
				break;
			}
			if (*s->p != (obj ? '}' : ']'))
				return jr_fail(s, "unexpected character");
			s->p++;
			top--;
		}
		continue;
	key:
		jr_ws(s);
		if (s->p >= s->end)
			return jr_eof(s);
		if (*s->p != '"')
			return jr_fail(s, "unexpected character");
		if (jr_string(s, NULL) != 0)
			return -1;
		jr_ws(s);
		if (s->p >= s->end)
			return jr_eof(s);
		if (*s->p != ':')
			return jr_fail(s, "unexpected character");
		s->p++;
	}
}

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

/* An object key at s->p (its quote) and the ':' after it: which one it is. */
static int
jr_key(struct jr *s, enum jr_key *k)
{
	static const struct {
		const char *s;
		size_t len;
		enum jr_key k;
	} keys[] = { { "jsonrpc", 7, JR_K_JSONRPC }, { "method", 6, JR_K_METHOD },
		{ "id", 2, JR_K_ID }, { "params", 6, JR_K_PARAMS }, { "result", 6, JR_K_RESULT },
		{ "error", 5, JR_K_ERROR }, { "name", 4, JR_K_NAME }, { "uri", 3, JR_K_URI },
		{ "arguments", 9, JR_K_ARGUMENTS }, { "tools", 5, JR_K_TOOLS },
		{ "prompts", 7, JR_K_PROMPTS }, { "resources", 9, JR_K_RESOURCES },
		{ "resourceTemplates", 17, JR_K_RESOURCE_TEMPLATES },
		{ "uriTemplate", 11, JR_K_URI_TEMPLATE } };
	char buf[20];
	struct jr_out o = { .out = buf, .cap = sizeof buf };

	jr_ws(s);
	if (s->p >= s->end)
		return jr_eof(s);
	if (*s->p != '"')
		return jr_fail(s, "unexpected character");
	if (jr_string(s, &o) != 0)
		return -1;
	jr_ws(s);
	if (s->p >= s->end)
		return jr_eof(s);
	if (*s->p != ':')
		return jr_fail(s, "unexpected character");
	s->p++;
	jr_ws(s);
	if (s->p >= s->end)
		return jr_eof(s);
	*k = JR_K_OTHER;
	for (size_t i = 0; o.n <= sizeof buf && i < sizeof keys / sizeof keys[0]; i++) {
		if (o.n == keys[i].len && memcmp(buf, keys[i].s, o.n) == 0) {
			*k = keys[i].k;
			break;
		}
	}
	return 0;
}

/* After a member: ',' (true) or the object's end (false). */
static int
jr_next(struct jr *s, bool *more)
{
	jr_ws(s);
	if (s->p >= s->end)
		return jr_eof(s);
	if (*s->p == ',') {
		s->p++;
		*more = true;
		return 0;
	}
	if (*s->p != '}')
		return jr_fail(s, "unexpected character");
	s->p++;
	*more = false;
	return 0;
}

/* What a message said, noted while it is scanned and judged after. */
enum jr_type { JR_ABSENT, JR_NULL, JR_STRING, JR_INT, JR_BIGINT, JR_OBJECT, JR_ARRAY, JR_OTHER };

struct jr_facts {
	bool object;
	enum jr_type jsonrpc, id, method, params, name, uri;
	bool jsonrpc_ok, result, error, arguments;
	struct jr_out m; /* the method, decoded into the arena */
	struct jsonrpc_span id_span, params_span, name_span, uri_span;
};

/* Note key k seen in f: false (and the body refused) the second time. */
static bool
jr_first(struct jr *s, enum jr_type *t)
{
	if (*t != JR_ABSENT) {
		s->dup = true;
		return false;
	}
	return true;
}

/* The type of the value at s->p, then the value, checked; a string can be
 * decoded into o. */
static int
jr_value(struct jr *s, int level, enum jr_type *t, struct jr_out *o)
{
	const unsigned char *at = s->p;
	bool integer;

	if (level >= s->max_depth)
		return jr_fail(s, "nested too deeply");
	switch (*s->p) {
	case '"':
		*t = JR_STRING;
		return jr_string(s, o);
	case 'n':
		*t = JR_NULL;
		return jr_literal(s, "null", 4);
	case '{':
		*t = JR_OBJECT;
		return jr_skip(s, level);
	case '[':
		*t = JR_ARRAY;
		return jr_skip(s, level);
	case '-':
	case '0':
	case '1':
	case '2':
	case '3':
	case '4':
	case '5':
	case '6':
	case '7':
	case '8':
	case '9':
		if (jr_number(s, &integer) != 0)
			return -1;
		*t = JR_OTHER;
		if (integer) {
			/* at most 64 bits, so that the id reads the same to json-c */
			const unsigned char *d = at + (*at == '-');
			size_t n = (size_t)(s->p - d);
			const char *lim = *at == '-' ? "9223372036854775808"
						     : "9223372036854775807";

			*t = n < 19 || (n == 19 && memcmp(d, lim, 19) <= 0) ? JR_INT : JR_BIGINT;
		}
		return 0;
	default:
		*t = JR_OTHER;
		return jr_skip(s, level);
	}
}

/* The params object at s->p, nested in level: its name, uri, arguments. */
static int
jr_params(struct jr *s, int level, struct jr_facts *f)
{
	enum jr_key k;
	enum jr_type t;
	bool more = true;

	if (level >= s->max_depth)
		return jr_fail(s, "nested too deeply");
	s->p++;
	jr_ws(s);
	if (s->p < s->end && *s->p == '}') {
		s->p++;
		return 0;
	}
	while (more) {
		const unsigned char *at;

		if (jr_key(s, &k) != 0)
			return -1;
		at = s->p;
		if (jr_value(s, level + 1, &t, NULL) != 0)
			return -1;
		if (k == JR_K_NAME && jr_first(s, &f->name)) {
			f->name = t;
			f->name_span = (struct jsonrpc_span){ (const char *)at,
				(size_t)(s->p - at) };
		} else if (k == JR_K_URI && jr_first(s, &f->uri)) {
			f->uri = t;
			f->uri_span = (struct jsonrpc_span){ (const char *)at,
				(size_t)(s->p - at) };
		} else if (k == JR_K_ARGUMENTS) {
			if (f->arguments)
				s->dup = true;
			f->arguments = true;
		}
		if (jr_next(s, &more) != 0)
			return -1;
	}
	return 0;
}

/* One message object at s->p, nested in level: its facts. */
static int
jr_message(struct jr *s, int level, struct jr_facts *f)
{
	char v[4];
	struct jr_out ver = { .out = v, .cap = sizeof v };
	enum jr_key k;
	enum jr_type t;
	bool more = true;

	memset(f, 0, sizeof *f);
	f->object = true;
	if (level >= s->max_depth)
		return jr_fail(s, "nested too deeply");
	s->p++;
	jr_ws(s);
	if (s->p < s->end && *s->p == '}') {
		s->p++;
		return 0;
	}
	while (more) {
		const unsigned char *at;

		if (jr_key(s, &k) != 0)
			return -1;
		at = s->p;
		switch (k) {
		case JR_K_JSONRPC:
			if (!jr_first(s, &f->jsonrpc))
				goto skip;
			if (jr_value(s, level + 1, &f->jsonrpc, &ver) != 0)
				return -1;
			f->jsonrpc_ok = f->jsonrpc == JR_STRING && ver.n == 3 &&
			    memcmp(v, "2.0", 3) == 0;
			break;
		case JR_K_METHOD:
			if (!jr_first(s, &f->method))
				goto skip;
			f->m.out = s->arena + s->used;
			f->m.cap = JSONRPC_METHOD_MAX;
			if (jr_value(s, level + 1, &f->method, &f->m) != 0)
				return -1;
			break;
		case JR_K_ID:
			if (!jr_first(s, &f->id))
				goto skip;
			if (jr_value(s, level + 1, &f->id, NULL) != 0)
				return -1;
			f->id_span = (struct jsonrpc_span){ (const char *)at, (size_t)(s->p - at) };
			break;
		case JR_K_PARAMS:
			if (!jr_first(s, &f->params))
				goto skip;
			f->params_span.p = (const char *)at;
			if (*s->p == '{') {
				f->params = JR_OBJECT;
				if (jr_params(s, level + 1, f) != 0)
					return -1;
			} else if (jr_value(s, level + 1, &f->params, NULL) != 0) {
				return -1;
			}
			f->params_span.len = (size_t)(s->p - at);
			break;
		case JR_K_RESULT:
		case JR_K_ERROR: {
			bool *seen = k == JR_K_RESULT ? &f->result : &f->error;

			if (*seen)
				s->dup = true;
			*seen = true;
			goto skip;
		}
		default:
		skip:
			if (jr_value(s, level + 1, &t, NULL) != 0)
				return -1;
			break;
		}
		if (jr_next(s, &more) != 0)
			return -1;
	}
	return 0;
}

enum jsonrpc_method
jsonrpc_method_of(const char *m, size_t len)
{
	static const struct {
		const char *s;
		size_t len;
		enum jsonrpc_method mid;
	} known[] = {
		{ "initialize", 10, JSONRPC_M_INITIALIZE },
		{ "ping", 4, JSONRPC_M_PING },
		{ "tools/list", 10, JSONRPC_M_TOOLS_LIST },
		{ "tools/call", 10, JSONRPC_M_TOOLS_CALL },
		{ "prompts/list", 12, JSONRPC_M_PROMPTS_LIST },
		{ "prompts/get", 11, JSONRPC_M_PROMPTS_GET },
		{ "resources/list", 14, JSONRPC_M_RESOURCES_LIST },
		{ "resources/templates/list", 24, JSONRPC_M_RESOURCES_TEMPLATES_LIST },
		{ "resources/read", 14, JSONRPC_M_RESOURCES_READ },
		{ "resources/subscribe", 19, JSONRPC_M_RESOURCES_SUBSCRIBE },
		{ "resources/unsubscribe", 21, JSONRPC_M_RESOURCES_UNSUBSCRIBE },
		{ "completion/complete", 19, JSONRPC_M_COMPLETION_COMPLETE },
		{ "logging/setLevel", 16, JSONRPC_M_LOGGING_SETLEVEL },
	};

	if (m == NULL)
		return JSONRPC_M_NONE;
	if (len >= 14 && memcmp(m, "notifications/", 14) == 0)
		return JSONRPC_M_NOTIFICATION;
	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
		if (len == known[i].len && memcmp(m, known[i].s, len) == 0)
			return known[i].mid;
	}
	return JSONRPC_M_OTHER;
}

/* Which params member names the operation of a method: 'n' name, 'u'
 * uri, 0 none. */
static char
jsonrpc_name_key(enum jsonrpc_method mid)
{
	switch (mid) {
	case JSONRPC_M_TOOLS_CALL:
	case JSONRPC_M_PROMPTS_GET:
		return 'n';
	case JSONRPC_M_RESOURCES_READ:
	case JSONRPC_M_RESOURCES_SUBSCRIBE:
	case JSONRPC_M_RESOURCES_UNSUBSCRIBE:
		return 'u';
	default:
		return 0;
	}
}

/* Judge one scanned message and fill m; NULL when fine, else why not. The
 * checks and their order are those of the json-c reader this replaced. */
static const char *
jr_judge(struct jr *s, struct jr_facts *f, struct jsonrpc_msg *m)
{
	enum jr_type nt;
	struct jsonrpc_span ns;
	struct jr_out o;
	char key;

	memset(m, 0, sizeof *m);
	if (!f->object)
		return "a JSON-RPC message must be an object";
	if (!f->jsonrpc_ok)
		return "a JSON-RPC message needs \"jsonrpc\": \"2.0\"";
	if (f->id == JR_BIGINT)
		return "a JSON-RPC id must be a string or an integer of at most 64 bits";
	if (f->id != JR_ABSENT && f->id != JR_NULL && f->id != JR_STRING && f->id != JR_INT)
		return "a JSON-RPC id must be a string or an integer";
	if (f->method != JR_ABSENT &&
	    (f->method != JR_STRING || f->m.n > JSONRPC_METHOD_MAX || f->m.nul))
		return "the method must be a string of at most 256 bytes without NUL";
	if (f->method == JR_ABSENT) {
		if (f->id == JR_ABSENT || f->result == f->error)
			return "a JSON-RPC message needs a method, or an id and a result or an "
			       "error";
		m->kind = JSONRPC_RESPONSE;
		m->mid = JSONRPC_M_NONE;
		m->id = f->id_span;
		return NULL;
	}
	if (f->m.n == 0)
		return "the method must not be empty";
	m->method = f->m.out;
	f->m.out[f->m.n] = '\0';
	s->used += f->m.n + 1;
	m->mid = jsonrpc_method_of(m->method, f->m.n);
	if (f->id != JR_ABSENT) {
		if (f->id == JR_NULL)
			return "a JSON-RPC request id must not be null";
		m->kind = JSONRPC_REQUEST;
		m->id = f->id_span;
	} else {
		m->kind = JSONRPC_NOTIFICATION;
	}
	if (f->params != JR_ABSENT && f->params != JR_NULL && f->params != JR_OBJECT &&
	    f->params != JR_ARRAY)
		return "params must be an object or an array";
	if (f->params == JR_OBJECT || f->params == JR_ARRAY)
		m->params = f->params_span;
	if ((key = jsonrpc_name_key(m->mid)) != 0) {
		if (f->params != JR_OBJECT)
			return "this method needs params with its name";
		nt = key == 'n' ? f->name : f->uri;
		ns = key == 'n' ? f->name_span : f->uri_span;
		o = (struct jr_out){ .out = s->arena + s->used, .cap = JSONRPC_NAME_MAX };
		if (nt == JR_STRING) {
			struct jr d = { .p = (const unsigned char *)ns.p,
				.start = (const unsigned char *)ns.p,
				.end = (const unsigned char *)ns.p + ns.len };

			(void)jr_string(&d, &o); /* checked already */
		}
		if (nt != JR_STRING || o.n > JSONRPC_NAME_MAX || o.nul)
			return key == 'u'
			    ? "params.uri must be a string of at most 2048 bytes without NUL"
			    : "params.name must be a string of at most 2048 bytes without NUL";
		m->name = o.out;
		s->used += o.n + 1;
		s->arena[s->used - 1] = '\0';
	}
	return NULL;
}

/* Room for another message in a batch. */
static void
jr_grow(struct jsonrpc_body *b, size_t *cap, size_t max)
{
	if (b->n < *cap)
		return;
	*cap = *cap == 0 ? 8 : *cap * 2;
	if (*cap > max)
		*cap = max;
	b->msgs = xreallocarray(b->msgs, *cap, sizeof *b->msgs);
}

enum jsonrpc_err
jsonrpc_parse(const char *buf, size_t len, const struct jsonrpc_limits *lim,
    struct jsonrpc_body *out, char *err, size_t errlen)
{
	struct jr s = { 0 };
	struct jr_facts f;
	const char *why = NULL;
	size_t bad = 0, count = 0, cap = 0;

	out->batch = false;
	out->msgs = NULL;
	out->n = 0;
	out->arena = NULL;
	if (len > lim->max_size) {
		snprintf(err, errlen, "the JSON-RPC message exceeds %zu bytes", lim->max_size);
		return JSONRPC_TOO_LARGE;
	}
	if (len == 0) {
		snprintf(err, errlen, "the request body is empty");
		return JSONRPC_PARSE;
	}
	s.p = s.start = (const unsigned char *)buf;
	s.end = s.p + len;
	s.max_depth = lim->max_depth < JSONRPC_DEPTH_MAX ? lim->max_depth : JSONRPC_DEPTH_MAX;
	jr_ws(&s);
	if (s.p >= s.end) {
		jr_eof(&s);
	} else if (*s.p == '[') {
		/* a batch: decoded strings take no more room than they had */
		bool more = true;

		out->batch = true;
		out->arena = s.arena = xmalloc(len);
		s.cap = len;
		if (s.max_depth < 1)
			jr_fail(&s, "nested too deeply");
		s.p++;
		jr_ws(&s);
		if (s.p < s.end && *s.p == ']') {
			s.p++;
			more = false;
		}
		while (more && s.err == NULL) {
			jr_ws(&s);
			if (s.p >= s.end) {
				jr_eof(&s);
				break;
			}
			if (count >= lim->max_batch) {
				if (jr_skip(&s, 1) != 0)
					break;
			} else {
				if (*s.p == '{') {
					if (jr_message(&s, 1, &f) != 0)
						break;
				} else {
					enum jr_type t;

					memset(&f, 0, sizeof f);
					if (jr_value(&s, 1, &t, NULL) != 0)
						break;
				}
				jr_grow(out, &cap, lim->max_batch);
				/* the first bad message is told; none after it is read */
				if (why != NULL)
					memset(&out->msgs[out->n], 0, sizeof out->msgs[0]);
				else if ((why = jr_judge(&s, &f, &out->msgs[out->n])) != NULL)
					bad = out->n;
				out->n++;
			}
			count++;
			jr_ws(&s);
			if (s.p >= s.end) {
				jr_eof(&s);
			} else if (*s.p == ',') {
				s.p++;
			} else if (*s.p == ']') {
				s.p++;
				more = false;
			} else {
				jr_fail(&s, "unexpected character");
			}
		}
	} else {
		s.arena = out->text;
		s.cap = sizeof out->text;
		out->msgs = &out->one;
		out->n = count = 1;
		if (*s.p == '{') {
			if (jr_message(&s, 0, &f) == 0)
				why = jr_judge(&s, &f, &out->one);
		} else {
			enum jr_type t;

			memset(&f, 0, sizeof f);
			if (jr_value(&s, 0, &t, NULL) == 0)
				why = jr_judge(&s, &f, &out->one);
		}
	}
	if (s.err == NULL) {
		jr_ws(&s);
		if (s.p < s.end)
			jr_fail(&s, "bytes after the JSON value");
	}
	if (s.err != NULL) {
		if (s.err_at == JR_EOF || strcmp(s.err, "nested too deeply") == 0)
			snprintf(err, errlen, "the body is not valid JSON: %s", s.err);
		else
			snprintf(err, errlen, "the body is not valid JSON: %s at byte %zu", s.err,
			    s.err_at);
		return JSONRPC_PARSE;
	}
	if (s.dup) {
		snprintf(err, errlen, "a JSON object has the same key twice");
		return JSONRPC_INVALID;
	}
	if (out->batch && count == 0) {
		snprintf(err, errlen, "an empty JSON-RPC batch");
		return JSONRPC_INVALID;
	}
	if (out->batch && count > lim->max_batch) {
		snprintf(err, errlen, "a JSON-RPC batch of more than %zu messages", lim->max_batch);
		return JSONRPC_INVALID;
	}
	if (why != NULL) {
		if (out->batch)
			snprintf(err, errlen, "batch message %zu: %s", bad, why);
		else
			snprintf(err, errlen, "%s", why);
		return JSONRPC_INVALID;
	}
	return JSONRPC_OK;
}

json_object *
jsonrpc_parse_value(const char *s, size_t len, int depth)
{
	struct json_tokener *tok = json_tokener_new_ex(depth);
	json_object *o;

	if (tok == NULL)
		return NULL;
	o = json_tokener_parse_ex(tok, s, (int)len);
	if (o != NULL && json_tokener_get_error(tok) != json_tokener_success) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

/* --- list responses --- */

static const struct {
	enum jsonrpc_method mid;
	const char *array, *key, *use;
	enum jr_key array_k, key_k;
} jr_lists[] = {
	{ JSONRPC_M_TOOLS_LIST, "tools", "name", "tools/call", JR_K_TOOLS, JR_K_NAME },
	{ JSONRPC_M_PROMPTS_LIST, "prompts", "name", "prompts/get", JR_K_PROMPTS, JR_K_NAME },
	{ JSONRPC_M_RESOURCES_LIST, "resources", "uri", "resources/read", JR_K_RESOURCES,
	    JR_K_URI },
	{ JSONRPC_M_RESOURCES_TEMPLATES_LIST, "resourceTemplates", "uriTemplate", "resources/read",
	    JR_K_RESOURCE_TEMPLATES, JR_K_URI_TEMPLATE },
};
#define JR_N_LISTS (sizeof jr_lists / sizeof jr_lists[0])

bool
jsonrpc_list_shape(enum jsonrpc_method mid, const char **array, const char **key, const char **use)
{
	for (size_t i = 0; i < JR_N_LISTS; i++) {
		if (jr_lists[i].mid == mid) {
			*array = jr_lists[i].array;
			*key = jr_lists[i].key;
			*use = jr_lists[i].use;
			return true;
		}
	}
	return false;
}

/* A list filter's pass over one body. */
struct jr_lf {
	const char *buf;
	jsonrpc_list_fn list;
	jsonrpc_keep_fn keep;
	void *arg;
	struct jsonrpc_pieces *pc;
	size_t mark;                 /* the bytes not in pieces yet start here */
	struct jsonrpc_shape *shape; /* noted here, or NULL */
	int lists;                   /* list arrays read */
};

/* What a response said: its id and the list members of its result. */
struct jr_resp {
	enum jr_type id;
	struct jsonrpc_span id_span;
	bool result;
	bool seen[JR_N_LISTS];
	struct jsonrpc_span arrays[JR_N_LISTS]; /* .p NULL: absent or no array */
	int level;                              /* of the message */
	bool resolved;                          /* lm is known (the id came first) */
	enum jsonrpc_method lm;                 /* the list it answers, or NONE */
	bool done;                              /* its list filtered already */
};

void
jsonrpc_pieces_add(struct jsonrpc_pieces *pc, const char *p, size_t len)
{
	if (len == 0)
		return;
	if (pc->n == pc->cap) {
		pc->cap = pc->cap == 0 ? 16 : pc->cap * 2;
		pc->v = xreallocarray(pc->v, pc->cap, sizeof *pc->v);
	}
	pc->v[pc->n++] = (struct jsonrpc_span){ p, len };
}

/* Note an item of the list being read in the shape: its bytes and its
 * name (nl bytes at name; NULL: none to judge it by). */
static void
jr_shape_item(struct jsonrpc_shape *sh, size_t off, size_t len, const char *name, size_t nl)
{
	size_t at = JSONRPC_NO_NAME;

	if (name != NULL) {
		if (sh->used + nl + 1 > sh->names_cap) {
			sh->names_cap = (sh->used + nl + 1) * 2;
			sh->names = xrealloc(sh->names, sh->names_cap);
		}
		at = sh->used;
		memcpy(sh->names + at, name, nl);
		sh->names[at + nl] = '\0';
		sh->used += nl + 1;
	}
	if (sh->n == sh->cap) {
		sh->cap = sh->cap == 0 ? 16 : sh->cap * 2;
		sh->items = xreallocarray(sh->items, sh->cap, sizeof *sh->items);
	}
	sh->items[sh->n++] = (struct jsonrpc_item){ off, len, at };
}

/* Is the item's name (the string at span, checked) one keep() keeps?
 * The item (off, len in the body) is noted in lf's shape, if any. */
static bool
jr_keep_name(struct jsonrpc_span span, enum jsonrpc_method list, const struct jr_lf *lf, size_t off,
    size_t len)
{
	char small[512];
	struct jr d = { .p = (const unsigned char *)span.p,
		.start = (const unsigned char *)span.p,
		.end = (const unsigned char *)span.p + span.len };
	struct jr_out o = { .out = span.len <= sizeof small ? small : xmalloc(span.len),
		.cap = span.len };
	bool kept = false, named = jr_string(&d, &o) == 0 && !o.nul && o.n < o.cap;

	if (named) {
		o.out[o.n] = '\0';
		kept = lf->keep(list, o.out, lf->arg);
	}
	if (lf->shape != NULL)
		jr_shape_item(lf->shape, off, len, named ? o.out : NULL, o.n);
	if (o.out != small)
		free(o.out);
	return kept;
}

/* The list array at s->p (nested in level), list li, its items through
 * keep(): pieces for it when one is dropped. */
static int
jr_items(struct jr *s, int level, size_t li, struct jr_lf *lf)
{
	const char *open = (const char *)s->p;
	struct jsonrpc_span *items = NULL;
	bool *kept = NULL, more = true, dropped = false, first = true;
	size_t n = 0, cap = 0;
	int rc = -1;

	if (level >= s->max_depth)
		return jr_fail(s, "nested too deeply");
	s->p++;
	jr_ws(s);
	if (s->p < s->end && *s->p == ']') {
		s->p++;
		return 0;
	}
	while (more) {
		const unsigned char *from;
		enum jr_type t = JR_ABSENT;
		struct jsonrpc_span name = { 0 };

		jr_ws(s);
		if (s->p >= s->end) {
			jr_eof(s);
			goto out;
		}
		from = s->p;
		if (*s->p == '{') {
			bool m = true;

			if (level + 1 >= s->max_depth) {
				jr_fail(s, "nested too deeply");
				goto out;
			}
			s->p++;
			jr_ws(s);
			if (s->p < s->end && *s->p == '}') {
				s->p++;
				m = false;
			}
			while (m) {
				const unsigned char *at;
				enum jr_key k;
				enum jr_type vt;

				if (jr_key(s, &k) != 0)
					goto out;
				at = s->p;
				if (jr_value(s, level + 2, &vt, NULL) != 0)
					goto out;
				if (k == jr_lists[li].key_k) {
					if (t != JR_ABSENT) {
						s->dup = true; /* the name twice */
						goto out;
					}
					t = vt;
					name = (struct jsonrpc_span){ (const char *)at,
						(size_t)(s->p - at) };
				}
				if (jr_next(s, &m) != 0)
					goto out;
			}
		} else if (jr_value(s, level + 1, &t, NULL) != 0) {
			goto out;
		} else {
			t = JR_ABSENT; /* no object: what cannot be judged is not shown */
		}
		if (n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			items = xreallocarray(items, cap, sizeof *items);
			kept = xreallocarray(kept, cap, sizeof *kept);
		}
		items[n] = (struct jsonrpc_span){ (const char *)from, (size_t)(s->p - from) };
		if (t == JR_STRING) {
			kept[n] = jr_keep_name(name, jr_lists[li].mid, lf,
			    (size_t)((const char *)from - lf->buf), items[n].len);
		} else {
			kept[n] = false;
			if (lf->shape != NULL)
				jr_shape_item(lf->shape, (size_t)((const char *)from - lf->buf),
				    items[n].len, NULL, 0);
		}
		dropped = dropped || !kept[n];
		n++;
		jr_ws(s);
		if (s->p >= s->end) {
			jr_eof(s);
			goto out;
		}
		if (*s->p == ']')
			more = false;
		else if (*s->p != ',') {
			jr_fail(s, "unexpected character");
			goto out;
		}
		s->p++;
	}
	if (lf->shape != NULL) {
		lf->shape->list = jr_lists[li].mid;
		lf->shape->open = (size_t)(open - lf->buf);
		lf->shape->close = (size_t)((const char *)s->p - 1 - lf->buf);
	}
	lf->lists++;
	if (dropped) {
		/* the bytes up to and with '[', the kept items, then from ']' on */
		jsonrpc_pieces_add(lf->pc, lf->buf + lf->mark,
		    (size_t)(open + 1 - (lf->buf + lf->mark)));
		for (size_t i = 0; i < n; i++) {
			if (!kept[i])
				continue;
			if (!first)
				jsonrpc_pieces_add(lf->pc, ",", 1);
			jsonrpc_pieces_add(lf->pc, items[i].p, items[i].len);
			first = false;
		}
		lf->mark = (size_t)((const char *)s->p - 1 - lf->buf);
		lf->pc->changed = true;
	}
	rc = 0;
out:
	free(items);
	free(kept);
	return rc;
}

/* Which list the response answers, by its id (list() asked once). */
static void
jr_resolve(struct jr_resp *r, struct jr_lf *lf)
{
	struct jsonrpc_msg m = { .kind = JSONRPC_RESPONSE, .mid = JSONRPC_M_NONE };

	r->resolved = true;
	r->lm = JSONRPC_M_NONE;
	if (r->id != JR_STRING && r->id != JR_INT)
		return;
	m.id = r->id_span;
	r->lm = lf->list(&m, lf->arg);
}

/* A result object at s->p, nested in level: its list members; the list
 * of ours filtered right away when the id came first. */
static int
jr_result(struct jr *s, int level, struct jr_resp *r, struct jr_lf *lf)
{
	enum jr_key k;
	enum jr_type t;
	bool more = true;

	if (level >= s->max_depth)
		return jr_fail(s, "nested too deeply");
	s->p++;
	jr_ws(s);
	if (s->p < s->end && *s->p == '}') {
		s->p++;
		return 0;
	}
	while (more) {
		const unsigned char *at;

		if (jr_key(s, &k) != 0)
			return -1;
		at = s->p;
		if (k >= JR_K_TOOLS && k <= JR_K_RESOURCE_TEMPLATES) {
			size_t i = (size_t)(k - JR_K_TOOLS);

			if (r->seen[i])
				s->dup = true;
			r->seen[i] = true;
			if (r->resolved && r->lm == jr_lists[i].mid && *s->p == '[' && !s->dup) {
				if (jr_items(s, level + 1, i, lf) != 0)
					return -1;
				r->done = true;
			} else {
				if (jr_value(s, level + 1, &t, NULL) != 0)
					return -1;
				if (t == JR_ARRAY)
					r->arrays[i] = (struct jsonrpc_span){ (const char *)at,
						(size_t)(s->p - at) };
			}
		} else if (jr_value(s, level + 1, &t, NULL) != 0) {
			return -1;
		}
		if (jr_next(s, &more) != 0)
			return -1;
	}
	return 0;
}

/* A response object at s->p, nested in level. */
static int
jr_response(struct jr *s, int level, struct jr_resp *r, struct jr_lf *lf)
{
	enum jr_key k;
	enum jr_type t;
	bool more = true;

	memset(r, 0, sizeof *r);
	r->level = level;
	if (level >= s->max_depth)
		return jr_fail(s, "nested too deeply");
	s->p++;
	jr_ws(s);
	if (s->p < s->end && *s->p == '}') {
		s->p++;
		return 0;
	}
	while (more) {
		const unsigned char *at;

		if (jr_key(s, &k) != 0)
			return -1;
		at = s->p;
		if (k == JR_K_ID) {
			if (!jr_first(s, &r->id) || jr_value(s, level + 1, &r->id, NULL) != 0)
				return -1;
			r->id_span = (struct jsonrpc_span){ (const char *)at, (size_t)(s->p - at) };
		} else if (k == JR_K_RESULT) {
			if (r->result) {
				s->dup = true;
				return -1;
			}
			r->result = true;
			if (*s->p != '{') {
				if (jr_value(s, level + 1, &t, NULL) != 0)
					return -1;
			} else {
				if (r->id != JR_ABSENT)
					jr_resolve(r, lf);
				if (jr_result(s, level + 1, r, lf) != 0)
					return -1;
			}
		} else if (jr_value(s, level + 1, &t, NULL) != 0) {
			return -1;
		}
		if (jr_next(s, &more) != 0)
			return -1;
	}
	return 0;
}

/* Filter the list of one scanned response whose id came after its
 * result: a second pass over the list array. */
static int
jr_filter_one(struct jr *s, const struct jr_resp *r, struct jr_lf *lf)
{
	struct jr_resp rr = *r;

	if (s->dup || r->done || !r->result)
		return 0;
	if (!rr.resolved)
		jr_resolve(&rr, lf);
	for (size_t i = 0; i < JR_N_LISTS; i++) {
		if (jr_lists[i].mid == rr.lm && rr.arrays[i].p != NULL) {
			struct jr d = { .p = (const unsigned char *)rr.arrays[i].p,
				.start = s->start,
				.end = (const unsigned char *)rr.arrays[i].p + rr.arrays[i].len,
				.max_depth = JSONRPC_DEPTH_MAX };

			return jr_items(&d, r->level + 2, i, lf);
		}
	}
	return 0;
}

int
jsonrpc_filter_lists(const char *buf, size_t len, int max_depth, jsonrpc_list_fn list,
    jsonrpc_keep_fn keep, void *arg, struct jsonrpc_pieces *out)
{
	return jsonrpc_filter_shape(buf, len, max_depth, list, keep, arg, out, NULL);
}

int
jsonrpc_filter_shape(const char *buf, size_t len, int max_depth, jsonrpc_list_fn list,
    jsonrpc_keep_fn keep, void *arg, struct jsonrpc_pieces *out, struct jsonrpc_shape *shape)
{
	struct jr s = { .p = (const unsigned char *)buf,
		.start = (const unsigned char *)buf,
		.end = (const unsigned char *)buf + len };
	struct jr_lf lf = { .buf = buf,
		.list = list,
		.keep = keep,
		.arg = arg,
		.pc = out,
		.shape = shape };
	struct jr_resp r;
	enum jr_type t;

	memset(out, 0, sizeof *out);
	if (shape != NULL)
		memset(shape, 0, sizeof *shape);
	s.max_depth = max_depth < JSONRPC_DEPTH_MAX ? max_depth : JSONRPC_DEPTH_MAX;
	jr_ws(&s);
	if (s.p >= s.end)
		return -1;
	if (*s.p == '[') {
		bool more = true;

		if (s.max_depth < 1)
			return -1;
		s.p++;
		jr_ws(&s);
		if (s.p < s.end && *s.p == ']') {
			s.p++;
			more = false;
		}
		while (more) {
			jr_ws(&s);
			if (s.p >= s.end)
				return -1;
			if (*s.p == '{') {
				if (jr_response(&s, 1, &r, &lf) != 0 ||
				    jr_filter_one(&s, &r, &lf) != 0)
					return -1;
			} else if (jr_value(&s, 1, &t, NULL) != 0) {
				return -1;
			}
			jr_ws(&s);
			if (s.p >= s.end)
				return -1;
			if (*s.p == ']')
				more = false;
			else if (*s.p != ',')
				return -1;
			s.p++;
		}
		lf.lists = 2; /* a batch: no shape */
	} else if (*s.p == '{') {
		if (jr_response(&s, 0, &r, &lf) != 0 || jr_filter_one(&s, &r, &lf) != 0)
			return -1;
	} else if (jr_value(&s, 0, &t, NULL) != 0) {
		return -1;
	}
	jr_ws(&s);
	if (s.p < s.end || s.dup)
		return -1;
	if (out->changed)
		jsonrpc_pieces_add(out, buf + lf.mark, len - lf.mark);
	if (shape != NULL && lf.lists == 1 && (r.id == JR_STRING || r.id == JR_INT)) {
		shape->ok = true;
		shape->id_off = (size_t)(r.id_span.p - buf);
		shape->id_len = r.id_span.len;
	}
	return 0;
}

void
jsonrpc_pieces_dispose(struct jsonrpc_pieces *pc)
{
	free(pc->v);
	memset(pc, 0, sizeof *pc);
}

void
jsonrpc_shape_dispose(struct jsonrpc_shape *shape)
{
	free(shape->items);
	free(shape->names);
	memset(shape, 0, sizeof *shape);
}

bool
jsonrpc_is_list_id(const char *p, size_t len)
{
	struct jr s = { .p = (const unsigned char *)p,
		.start = (const unsigned char *)p,
		.end = (const unsigned char *)p + len,
		.max_depth = 1 };
	enum jr_type t;

	return len > 0 && (*p == '"' || *p == '-' || (*p >= '0' && *p <= '9')) &&
	    jr_value(&s, 0, &t, NULL) == 0 && s.p == s.end && (t == JR_STRING || t == JR_INT);
}

void
jsonrpc_body_dispose(struct jsonrpc_body *b)
{
	if (b->msgs != &b->one)
		free(b->msgs);
	free(b->arena);
	b->msgs = NULL;
	b->arena = NULL;
	b->n = 0;
}

json_object *
jsonrpc_id_object(const struct jsonrpc_msg *m)
{
	const char *p = m->id.p;
	json_object *o;

	if (p == NULL || *p == 'n')
		return NULL;
	if (*p == '"') {
		/* checked when scanned: decode it (with NUL bytes, as json-c would) */
		struct jr d = { .p = (const unsigned char *)p,
			.start = (const unsigned char *)p,
			.end = (const unsigned char *)p + m->id.len };
		struct jr_out out = { .out = xmalloc(m->id.len), .cap = m->id.len };

		(void)jr_string(&d, &out);
		o = json_object_new_string_len(out.out, (int)out.n);
		free(out.out);
		return o;
	} else {
		char num[24];
		size_t n = m->id.len < sizeof num - 1 ? m->id.len : sizeof num - 1;

		memcpy(num, p, n);
		num[n] = '\0';
		return json_object_new_int64(strtoll(num, NULL, 10));
	}
}

char *
jsonrpc_id_text(const struct jsonrpc_msg *m)
{
	json_object *o;
	char *s;

	/* an integer as it came is what json-c prints (JSON has no leading
	 * zeros or '+'), but for -0 */
	if (m->id.p != NULL && *m->id.p != '"' && *m->id.p != 'n' &&
	    !(m->id.len == 2 && m->id.p[0] == '-' && m->id.p[1] == '0'))
		return xstrndup(m->id.p, m->id.len);
	if ((o = jsonrpc_id_object(m)) == NULL)
		return NULL;
	s = xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return s;
}

bool
jsonrpc_always_passes(const struct jsonrpc_msg *m)
{
	return m->kind != JSONRPC_REQUEST || m->mid == JSONRPC_M_INITIALIZE ||
	    m->mid == JSONRPC_M_PING;
}

const char *
jsonrpc_mid_label(enum jsonrpc_method mid)
{
	switch (mid) {
	case JSONRPC_M_NONE:
		return "response";
	case JSONRPC_M_OTHER:
		return "other";
	case JSONRPC_M_NOTIFICATION:
		return "notification";
	case JSONRPC_M_INITIALIZE:
		return "initialize";
	case JSONRPC_M_PING:
		return "ping";
	case JSONRPC_M_TOOLS_LIST:
		return "tools/list";
	case JSONRPC_M_TOOLS_CALL:
		return "tools/call";
	case JSONRPC_M_PROMPTS_LIST:
		return "prompts/list";
	case JSONRPC_M_PROMPTS_GET:
		return "prompts/get";
	case JSONRPC_M_RESOURCES_LIST:
		return "resources/list";
	case JSONRPC_M_RESOURCES_TEMPLATES_LIST:
		return "resources/templates/list";
	case JSONRPC_M_RESOURCES_READ:
		return "resources/read";
	case JSONRPC_M_RESOURCES_SUBSCRIBE:
		return "resources/subscribe";
	case JSONRPC_M_RESOURCES_UNSUBSCRIBE:
		return "resources/unsubscribe";
	case JSONRPC_M_COMPLETION_COMPLETE:
		return "completion/complete";
	case JSONRPC_M_LOGGING_SETLEVEL:
		return "logging/setLevel";
	}
	return "other";
}

const char *
jsonrpc_method_label(const char *method)
{
	return jsonrpc_mid_label(jsonrpc_method_of(method, method != NULL ? strlen(method) : 0));
}
