/*
 * Scope strings (see scope.h). Tokens are compared byte for byte; the
 * callers bound the strings' lengths.
 */
#include "common/scope.h"

#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

/* The next token at or after p: its start in *tok, its length returned
 * (0 at the end). */
static size_t
scope_next(const char *p, const char **tok)
{
	while (*p == ' ')
		p++;
	*tok = p;
	return strcspn(p, " ");
}

bool
scope_has(const char *list, const char *scope)
{
	size_t want, n;
	const char *p = list, *tok;

	if (list == NULL || scope == NULL || (want = strlen(scope)) == 0)
		return false;
	while ((n = scope_next(p, &tok)) != 0) {
		if (n == want && strncmp(tok, scope, n) == 0)
			return true;
		p = tok + n;
	}
	return false;
}

void
scope_split(const char *list, struct strlist *out)
{
	const char *p = list, *tok;
	size_t n;

	if (list == NULL)
		return;
	while ((n = scope_next(p, &tok)) != 0) {
		char *one = xstrndup(tok, n);

		if (!strlist_contains(out, one))
			strlist_add(out, one);
		free(one);
		p = tok + n;
	}
}

char *
scope_normalise(const char *list)
{
	struct strlist s = { 0 };
	char *out;

	scope_split(list, &s);
	out = strlist_join(&s);
	strlist_dispose(&s);
	return out;
}

bool
scope_subset(const char *requested, const struct strlist *allowed)
{
	const char *p = requested, *tok;
	size_t n;

	if (requested == NULL)
		return true;
	while ((n = scope_next(p, &tok)) != 0) {
		bool found = false;

		for (size_t i = 0; i < allowed->n && !found; i++)
			found = strlen(allowed->v[i]) == n && strncmp(allowed->v[i], tok, n) == 0;
		if (!found)
			return false;
		p = tok + n;
	}
	return true;
}

bool
scope_cover(const char *granted, const struct strlist *required, const char **missing)
{
	*missing = NULL;
	for (size_t i = 0; i < required->n; i++) {
		if (!scope_has(granted, required->v[i])) {
			*missing = required->v[i];
			return false;
		}
	}
	return true;
}
