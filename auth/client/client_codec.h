/*
 * A DCR client as JSON text, for a store that keeps clients outside the
 * process (Redis): every field the registration set, the secret only as
 * its SHA-256 (never the secret), inline keys as their public JWKS. Not
 * for CIMD clients, which are resolved again from their document and not
 * stored. last_used_ms is the reader's (monotonic, per process).
 */
#ifndef AUTH_CLIENT_CODEC_H
#define AUTH_CLIENT_CODEC_H

#include <stddef.h>

struct client;

/* A new string. */
char *client_to_json(const struct client *c);
/* A new client (one reference), or NULL and why in err. */
struct client *client_from_json(const char *text, size_t len, char *err, size_t errlen);

#endif
