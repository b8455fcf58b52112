/*
 * A list of strings (scopes, redirect URIs, host patterns): owned copies,
 * appended one at a time, freed together.
 */
#include "common/strlist.h"

#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

void
strlist_add(struct strlist *l, const char *s)
{
	l->v = xreallocarray(l->v, l->n + 1, sizeof *l->v);
	l->v[l->n++] = xstrdup(s);
}

char *
strlist_join(const struct strlist *l)
{
	size_t len = 1, off = 0, n;
	char *s;

	for (size_t i = 0; i < l->n; i++)
		len += strlen(l->v[i]) + 1;
	s = xmalloc(len);
	for (size_t i = 0; i < l->n; i++) {
		if (i > 0)
			s[off++] = ' ';
		n = strlen(l->v[i]);
		memcpy(s + off, l->v[i], n);
		off += n;
	}
	s[off] = '\0';
	return s;
}

bool
strlist_contains(const struct strlist *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++) {
		if (strcmp(l->v[i], s) == 0)
			return true;
	}
	return false;
}

void
strlist_dispose(struct strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}
