/*
 * Strict x-www-form-urlencoded parsing and encoding (see form.h). Sizes are
 * bounded by the caller (the body limit) and by FORM_MAX_PARAMS here.
 */
#include "common/form.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

static int
form_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

char *
form_decode(const char *s, size_t len, bool plus_is_space)
{
	char *out = xmalloc(len + 1);
	size_t i, o = 0;

	for (i = 0; i < len; i++) {
		char c = s[i];

		if (c == '%') {
			int hi, lo;

			if (i + 2 >= len)
				goto fail;
			hi = form_hex(s[i + 1]);
			lo = form_hex(s[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				goto fail;
			out[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else if (c == '+' && plus_is_space) {
			out[o++] = ' ';
		} else if (c == '\0') {
			goto fail;
		} else {
			out[o++] = c;
		}
	}
	out[o] = '\0';
	return out;
fail:
	out[o] = '\0';
	xfree_secret(out);
	return NULL;
}

char *
form_encode(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s);
	char *out = xmalloc(3 * n + 1), *o = out;

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~') {
			*o++ = (char)c;
		} else {
			*o++ = '%';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		}
	}
	*o = '\0';
	return out;
}

char *
form_basic_auth(const char *id, const char *secret)
{
	char *eid = form_encode(id), *esec = form_encode(secret);
	char *pair = xasprintf("%s:%s", eid, esec), *b64, *line;
	size_t n = strlen(pair);

	b64 = xmalloc(4 * ((n + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)pair, (int)n);
	line = xasprintf("Authorization: Basic %s", b64);
	xfree_secret(eid);
	xfree_secret(esec);
	xfree_secret(pair);
	xfree_secret(b64);
	return line;
}

int
form_parse(struct form *f, const char *s, size_t len, char *err, size_t errlen)
{
	const char *p = s, *end = s + len;

	memset(f, 0, sizeof *f);
	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *pend = amp != NULL ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(pend - p));
		char *name, *value;

		if (pend == p) {
			p = pend + 1;
			continue;
		}
		name = form_decode(p, (size_t)((eq != NULL ? eq : pend) - p), true);
		value = eq != NULL ? form_decode(eq + 1, (size_t)(pend - eq - 1), true)
				   : xstrdup("");
		if (name == NULL || value == NULL || *name == '\0') {
			free(name);
			xfree_secret(value);
			snprintf(err, errlen, "malformed form or query encoding");
			goto fail;
		}
		if (*value == '\0') {
			free(name);
			free(value);
			p = pend + 1;
			continue;
		}
		for (size_t i = 0; i < f->n; i++) {
			if (strcmp(f->v[i].name, name) == 0) {
				snprintf(err, errlen, "parameter %.64s%s is repeated", name,
				    strlen(name) > 64 ? "..." : "");
				free(name);
				xfree_secret(value);
				goto fail;
			}
		}
		if (f->n == FORM_MAX_PARAMS) {
			snprintf(err, errlen, "too many parameters (more than %d)",
			    FORM_MAX_PARAMS);
			free(name);
			xfree_secret(value);
			goto fail;
		}
		f->v[f->n].name = name;
		f->v[f->n].value = value;
		f->n++;
		p = pend + 1;
	}
	return 0;
fail:
	form_dispose(f);
	return -1;
}

const char *
form_get(const struct form *f, const char *name)
{
	for (size_t i = 0; i < f->n; i++) {
		if (strcmp(f->v[i].name, name) == 0)
			return f->v[i].value;
	}
	return NULL;
}

void
form_dispose(struct form *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free(f->v[i].name);
		xfree_secret(f->v[i].value);
	}
	f->n = 0;
}

static void
form_append(struct form_builder *b, const char *s)
{
	size_t n = strlen(s);

	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->s = xrealloc(b->s, b->cap);
	}
	memcpy(b->s + b->len, s, n + 1);
	b->len += n;
}

void
form_add(struct form_builder *b, const char *name, const char *value)
{
	char *n, *v;

	if (value == NULL)
		return;
	n = form_encode(name);
	v = form_encode(value);
	if (b->len > 0)
		form_append(b, "&");
	form_append(b, n);
	form_append(b, "=");
	form_append(b, v);
	free(n);
	xfree_secret(v);
}

char *
form_finish(struct form_builder *b)
{
	char *s = b->s != NULL ? b->s : xstrdup("");

	b->s = NULL;
	b->len = b->cap = 0;
	return s;
}
