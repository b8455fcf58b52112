/*
 * Filling a caller's error buffer: the one way functions that can fail
 * describe why (char *err, size_t errlen), shared by every room.
 */
#ifndef COMMON_ERRBUF_H
#define COMMON_ERRBUF_H

#include <stddef.h>

/* printf into err (NULL or errlen 0: nothing). */
void errbuf_set(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
