/*
 * OAuth client records and the redirect_uri rules (see client.h). These are
 * security decisions: matching is by exact string, never by normalising a
 * client-supplied URI, with the single RFC 8252 loopback-port exception.
 */
#include "auth/client/client.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "auth/crypto/keyset.h"
#include "common/xalloc.h"

struct client *
client_new(const char *client_id)
{
	struct client *c = xcalloc(1, sizeof *c);

	c->refs = 1;
	c->client_id = xstrdup(client_id);
	return c;
}

void
client_ref(struct client *c)
{
	c->refs++;
}

void
client_unref(struct client *c)
{
	if (c == NULL || --c->refs > 0)
		return;
	free(c->client_id);
	free(c->client_name);
	free(c->application_type);
	free(c->token_endpoint_auth_method);
	free(c->jwks_uri);
	free(c->token_endpoint_auth_signing_alg);
	keyset_free(c->jwks);
	strlist_dispose(&c->redirect_uris);
	strlist_dispose(&c->grant_types);
	strlist_dispose(&c->scopes);
	free(c);
}

bool
client_accepts_auth(const struct client *c, const char *method)
{
	const char *registered = c->token_endpoint_auth_method != NULL
	    ? c->token_endpoint_auth_method
	    : "none";

	if (strcmp(registered, method) == 0)
		return true;
	return c->also_none && strcmp(registered, "private_key_jwt") == 0 &&
	    strcmp(method, "none") == 0;
}

/* Split an http URL after "http://" into host (with brackets for v6), port
 * (-1 when absent) and the rest starting at the path. -1 when malformed. */
static int
client_split_http(const char *uri, char *host, size_t hostlen, long *port, const char **rest)
{
	const char *p, *h, *end;
	size_t n;

	if (strncmp(uri, "http://", 7) != 0)
		return -1;
	h = uri + 7;
	if (*h == '[') {
		end = strchr(h, ']');
		if (end == NULL)
			return -1;
		end++;
	} else {
		end = h + strcspn(h, ":/?#");
	}
	n = (size_t)(end - h);
	if (n == 0 || n >= hostlen)
		return -1;
	memcpy(host, h, n);
	host[n] = '\0';
	p = end;
	*port = -1;
	if (*p == ':') {
		char *e;

		p++;
		if (!isdigit((unsigned char)*p))
			return -1;
		*port = strtol(p, &e, 10);
		if (*port < 0 || *port > 65535)
			return -1;
		p = e;
	}
	if (*p != '\0' && *p != '/' && *p != '?')
		return -1;
	*rest = p;
	return 0;
}

static bool
client_is_loopback_host(const char *host)
{
	return strcmp(host, "127.0.0.1") == 0 || strcmp(host, "[::1]") == 0 ||
	    strcasecmp(host, "localhost") == 0;
}

int
client_redirect_uri_check(const char *uri, bool allow_private_scheme, enum redirect_uri_kind *kind,
    const char **why)
{
	size_t len = strlen(uri), i;
	const char *colon;

	if (len == 0) {
		*why = "redirect_uri is empty";
		return -1;
	}
	if (len > OAUTH_REDIRECT_URI_MAX) {
		*why = "redirect_uri is longer than 2048 characters";
		return -1;
	}
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)uri[i];

		if (ch <= 0x20 || ch >= 0x7f || ch == '\\' || ch == '"' || ch == '<' || ch == '>') {
			*why = "redirect_uri contains a character that must be percent-encoded";
			return -1;
		}
	}
	if (strchr(uri, '#') != NULL) {
		*why = "redirect_uri must not contain a fragment";
		return -1;
	}
	colon = strchr(uri, ':');
	if (colon == NULL || colon == uri || !isalpha((unsigned char)uri[0])) {
		*why = "redirect_uri must be an absolute URI";
		return -1;
	}
	for (const char *p = uri; p < colon; p++) {
		if (!isalnum((unsigned char)*p) && *p != '+' && *p != '-' && *p != '.') {
			*why = "redirect_uri has an invalid scheme";
			return -1;
		}
	}
	if (strncasecmp(uri, "https://", 8) == 0) {
		const char *auth = uri + 8;
		size_t alen = strcspn(auth, "/?");

		if (strncmp(uri, "https://", 8) != 0) {
			*why = "redirect_uri scheme must be lower case";
			return -1;
		}
		if (alen == 0) {
			*why = "redirect_uri has no host";
			return -1;
		}
		if (memchr(auth, '@', alen) != NULL) {
			*why = "redirect_uri must not contain userinfo";
			return -1;
		}
		*kind = REDIRECT_URI_HTTPS;
		return 0;
	}
	if (strncasecmp(uri, "http://", 7) == 0) {
		char host[300];
		long port;
		const char *rest;

		if (client_split_http(uri, host, sizeof host, &port, &rest) != 0 ||
		    strchr(host, '@') != NULL) {
			*why = "redirect_uri is not a valid http URL";
			return -1;
		}
		if (!client_is_loopback_host(host)) {
			*why = "http redirect_uris are allowed only for loopback hosts "
			       "(127.0.0.1, [::1], localhost); use https";
			return -1;
		}
		*kind = REDIRECT_URI_LOOPBACK;
		return 0;
	}
	if (!allow_private_scheme) {
		*why = "redirect_uri must use https, or http on a loopback host";
		return -1;
	}
	/* Private-use schemes (RFC 8252 §7.1): refuse ones a browser would run. */
	if (strncasecmp(uri, "javascript:", 11) == 0 || strncasecmp(uri, "data:", 5) == 0 ||
	    strncasecmp(uri, "file:", 5) == 0 || strncasecmp(uri, "vbscript:", 9) == 0 ||
	    strncasecmp(uri, "about:", 6) == 0 || strncasecmp(uri, "blob:", 5) == 0) {
		*why = "redirect_uri uses a forbidden scheme";
		return -1;
	}
	if (colon[1] == '\0') {
		*why = "redirect_uri has nothing after its scheme";
		return -1;
	}
	*kind = REDIRECT_URI_PRIVATE_SCHEME;
	return 0;
}

/* RFC 8252 §7.3: same loopback host and same path+query, any port. */
static bool
client_loopback_match(const char *registered, const char *requested)
{
	char h1[300], h2[300];
	long p1, p2;
	const char *r1, *r2;

	if (client_split_http(registered, h1, sizeof h1, &p1, &r1) != 0 ||
	    client_split_http(requested, h2, sizeof h2, &p2, &r2) != 0)
		return false;
	if (!client_is_loopback_host(h1) || strcmp(h1, h2) != 0)
		return false;
	if (*r1 == '\0')
		r1 = "/";
	if (*r2 == '\0')
		r2 = "/";
	return strcmp(r1, r2) == 0;
}

bool
client_redirect_uri_matches(const struct strlist *registered, const char *requested)
{
	if (requested == NULL || strlen(requested) > OAUTH_REDIRECT_URI_MAX)
		return false;
	for (size_t i = 0; i < registered->n; i++) {
		if (strcmp(registered->v[i], requested) == 0)
			return true;
		if (strncmp(requested, "http://", 7) == 0 &&
		    client_loopback_match(registered->v[i], requested))
			return true;
	}
	return false;
}

void
client_finish_scopes(struct client *c, bool declared, const struct config *cfg)
{
	if (!declared) {
		for (size_t i = 0; i < cfg->eas.scopes_supported.n; i++)
			strlist_add(&c->scopes, cfg->eas.scopes_supported.v[i]);
	}
	for (size_t i = 0; i < cfg->eas.baseline_client_scopes.n; i++) {
		if (!strlist_contains(&c->scopes, cfg->eas.baseline_client_scopes.v[i]))
			strlist_add(&c->scopes, cfg->eas.baseline_client_scopes.v[i]);
	}
}
