/*
 * Allocation wrappers shared by every room: they abort with the size that
 * could not be had instead of returning NULL, so callers never carry an
 * out-of-memory path (tmux's xmalloc). Never used for sizes a client
 * controls without a bound checked first.
 */
#ifndef COMMON_XALLOC_H
#define COMMON_XALLOC_H

#include <stdarg.h>
#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *ptr, size_t size);
void *xreallocarray(void *ptr, size_t nmemb, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Like asprintf, aborting on failure. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
/* Overwrite then free a secret; NULL is fine. */
void xfree_secret(char *s);

#endif
