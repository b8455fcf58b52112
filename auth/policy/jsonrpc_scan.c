/*
 * The JSON scanner of auth/policy (see jsonrpc_scan.h): strict RFC 8259
 * syntax, UTF-8 checked, the depth bounded by an explicit stack of bits
 * (no recursion), each byte looked at once.
 */
#include "auth/policy/jsonrpc_scan.h"

#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "auth/policy/jsonrpc.h" /* JSONRPC_DEPTH_MAX */

/* Four hex digits at p: their value, or -1. */
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
int
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
int
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

/* An object key at s->p (its quote) and the ':' after it: which one it is. */
int
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
int
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

/* The type of the value at s->p, then the value, checked; a string can be
 * decoded into o. */
int
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
