/*
 * OAuth scope strings (RFC 6749 §3.3): space-separated scope tokens. One
 * matcher for the guard, the grants and /oauth/authorize, so they can never
 * disagree on what a scope string holds. An empty token is no scope.
 */
#ifndef COMMON_SCOPE_H
#define COMMON_SCOPE_H

#include <stdbool.h>

#include "common/strlist.h"

/* Is scope one of the tokens of list? False for a NULL list or "". */
bool scope_has(const char *list, const char *scope);
/* Append each token of list to out, once (a normalised set). */
void scope_split(const char *list, struct strlist *out);
/* List normalised: one space between tokens, no repeats. Caller frees. */
char *scope_normalise(const char *list);
/* Is every token of requested in allowed? True for NULL or "". */
bool scope_subset(const char *requested, const struct strlist *allowed);
/* Does granted hold every scope of required? If not, *missing is the first
 * one it lacks (borrowed from required), else NULL. */
bool scope_cover(const char *granted, const struct strlist *required, const char **missing);

#endif
