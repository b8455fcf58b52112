/*
 * Dynamic Client Registration (RFC 7591) metadata rules, pure: a request
 * body in, a validated struct client (or an RFC 7591 error) out. The HTTP
 * side (rate limit, capacity, reply) is register.c. Secrets are generated
 * here, returned once, and stored only as their SHA-256.
 */
#ifndef AUTH_DCR_H
#define AUTH_DCR_H

#include <stddef.h>

struct config;
struct client;

#define DCR_MAX_BODY (64 * 1024)
#define DCR_MAX_REDIRECT_URIS 10
#define DCR_MAX_STRING 2048
#define DCR_CLIENT_NAME_MAX 256

/* The outcome of a registration request. */
struct dcr_result {
	struct client *client; /* one reference, NULL on error */
	char *client_secret;   /* confidential clients only, shown once */
	const char *error;     /* invalid_client_metadata | invalid_redirect_uri */
	char desc[256];
};

/* Validate a JSON registration request and build the client (with a fresh
 * UUID client_id). Returns 0, or -1 with error/desc set. */
int dcr_validate(const char *body, size_t len, const struct config *cfg, struct dcr_result *res);
/* The 201 response body: the registered metadata (+ the secret once). */
char *dcr_response_json(const struct client *c, const char *client_secret);
void dcr_result_dispose(struct dcr_result *res);

#endif
