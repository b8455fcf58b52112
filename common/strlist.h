/*
 * A list of strings (scopes, redirect URIs, host patterns): owned copies.
 * A zeroed struct strlist is an empty list.
 */
#ifndef COMMON_STRLIST_H
#define COMMON_STRLIST_H

#include <stdbool.h>
#include <stddef.h>

struct strlist {
	char **v;
	size_t n;
};

bool strlist_contains(const struct strlist *l, const char *s);
/* Append a copy of s. */
void strlist_add(struct strlist *l, const char *s);
/* The items joined with single spaces (an OAuth scope string); "" when empty. */
char *strlist_join(const struct strlist *l);
/* Free the items; the list is empty afterwards. */
void strlist_dispose(struct strlist *l);

#endif
