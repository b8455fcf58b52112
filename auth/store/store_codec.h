/*
 * The store's records as JSON text, for a backend that keeps them outside
 * the process (Redis): one flat object per record, absent fields for NULL
 * strings, unknown fields ignored (a newer replica may add some). The
 * texts of pending logins and upstream tokens hold secrets: whoever
 * encodes them seals the text (seal.h) and wipes it (xfree_secret); a
 * text is never logged.
 */
#ifndef AUTH_STORE_CODEC_H
#define AUTH_STORE_CODEC_H

#include <stddef.h>

#include "auth/store/store.h"

#define STORE_CODEC_MAX (1024 * 1024) /* bytes of one record's text */

/* Encoders return a new string; decoders a new record, or NULL when the
 * text is not such a record (not JSON, a field of the wrong type, a
 * required field missing: client_id; family for codes and refresh tokens). */
char *store_pending_encode(const struct store_pending *p);
struct store_pending *store_pending_decode(const char *text, size_t len);
char *store_code_encode(const struct store_code *c);
struct store_code *store_code_decode(const char *text, size_t len);
char *store_refresh_encode(const struct store_refresh *r);
struct store_refresh *store_refresh_decode(const char *text, size_t len);
char *store_upstream_encode(const struct store_upstream *u);
struct store_upstream *store_upstream_decode(const char *text, size_t len);

#endif
