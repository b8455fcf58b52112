/*
 * application/x-www-form-urlencoded bodies and URL query strings, parsed
 * strictly for the OAuth endpoints: bounded parameter counts and lengths,
 * every percent-escape valid, no NUL bytes, and a parameter sent twice is
 * an error (RFC 6749 §3.1). Also the encoder for the URLs and bodies we
 * build ourselves. Never logs a value: parameters carry codes and secrets.
 */
#ifndef AUTH_FORM_H
#define AUTH_FORM_H

#include <stdbool.h>
#include <stddef.h>

#define FORM_MAX_PARAMS 64

struct form_param {
	char *name;
	char *value;
};

struct form {
	struct form_param v[FORM_MAX_PARAMS];
	size_t n;
};

/*
 * Parse len bytes of s into f (which need not be initialised). A parameter
 * with an empty value is treated as omitted (RFC 6749 §3.1). Returns 0, or
 * -1 with a message safe to show the client in err (it may name a
 * parameter, never a value); f is then empty.
 */
int form_parse(struct form *f, const char *s, size_t len, char *err, size_t errlen);
/* The value of name, or NULL. */
const char *form_get(const struct form *f, const char *name);
/* Free every value (secrets are wiped). Safe on an empty form. */
void form_dispose(struct form *f);

/* Percent-decode len bytes ('+' is a space when plus_is_space) into a new
 * string; NULL when an escape is malformed or decodes to NUL. */
char *form_decode(const char *s, size_t len, bool plus_is_space);
/* Percent-encode everything but RFC 3986 unreserved characters. */
char *form_encode(const char *s);
/* An "Authorization: Basic ..." header line for client credentials: id and
 * secret each form-encoded (form_encode) before base64, as RFC 6749 §2.3.1
 * asks. It holds a secret: free it with xfree_secret(). */
char *form_basic_auth(const char *id, const char *secret);

/* A growing "a=b&c=d" string for request bodies and query strings. */
struct form_builder {
	char *s;
	size_t len;
	size_t cap;
};
/* Append name=value (both encoded); a NULL value appends nothing. */
void form_add(struct form_builder *b, const char *name, const char *value);
/* Take the string (never NULL; "" when empty); the builder is reset. */
char *form_finish(struct form_builder *b);

#endif
