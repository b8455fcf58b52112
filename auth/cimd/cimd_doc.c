/*
 * CIMD document validation (see cimd_doc.h).
 * Everything here reads attacker-controlled bytes: lengths and counts are
 * bounded before anything is copied, JSON is parsed strictly (no trailing
 * bytes, valid UTF-8, bounded depth, duplicate keys refused), wrong types
 * are refused rather than coerced, and no document value is echoed into an
 * error description without being bounded and reduced to safe characters.
 */
#include "auth/cimd/cimd_doc.h"

#include <ctype.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/cimd/cimd_url.h"
#include "auth/client/client.h"
#include "auth/crypto/jwt.h"
#include "auth/crypto/keyset.h"
#include "common/clock.h"
#include "common/errbuf.h"
#include "common/xalloc.h"
#include "config/config.h"

#define CIMD_DOC "client metadata document "

static const char *cimd_doc_string_fields[] = { "client_uri", "logo_uri", "tos_uri", "policy_uri",
	"jwks_uri", "software_id", "software_version", "application_type", "software_statement",
	NULL };

static const char *cimd_doc_shared_secret_methods[] = { "client_secret_post", "client_secret_basic",
	"client_secret_jwt", NULL };

static const char *cimd_doc_supported_grants[] = { "authorization_code", "refresh_token", NULL };

static bool
cimd_doc_in(const char *const *set, const char *s)
{
	for (; *set != NULL; set++) {
		if (strcmp(*set, s) == 0)
			return true;
	}
	return false;
}

/* Copy a document value into buf for an error description: at most 48
 * safe characters, anything else replaced by '?'. */
static const char *
cimd_doc_quote(const char *s, char *buf, size_t n)
{
	size_t i, j = 0;

	for (i = 0; s[i] != '\0' && j + 4 < n && i < 48; i++) {
		unsigned char ch = (unsigned char)s[i];

		buf[j++] = (isalnum(ch) || strchr("._:/-+ =", ch) != NULL) ? (char)ch : '?';
	}
	if (s[i] != '\0') {
		memcpy(buf + j, "...", 3);
		j += 3;
	}
	buf[j] = '\0';
	return buf;
}

/* Count the object members written in text (strings followed by ':'); the
 * text is known to be valid JSON. */
static size_t
cimd_doc_count_keys(const char *text, size_t len)
{
	size_t i = 0, n = 0;

	while (i < len) {
		if (text[i] != '"') {
			i++;
			continue;
		}
		for (i++; i < len && text[i] != '"'; i++) {
			if (text[i] == '\\')
				i++;
		}
		for (i++; i < len && isspace((unsigned char)text[i]); i++)
			;
		if (i < len && text[i] == ':')
			n++;
	}
	return n;
}

/* Count the members of every object in a parsed tree. */
static size_t
cimd_doc_count_members(struct json_object *o)
{
	size_t n = 0;

	if (json_object_is_type(o, json_type_object)) {
		json_object_object_foreach(o, k, v)
		{
			(void)k;
			n += 1 + cimd_doc_count_members(v);
		}
	} else if (json_object_is_type(o, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(o); i++)
			n += cimd_doc_count_members(json_object_array_get_idx(o, i));
	}
	return n;
}

/* Parse text strictly into an object; NULL with err on any problem. */
static struct json_object *
cimd_doc_parse(const char *text, size_t len, char *err, size_t errlen)
{
	struct json_tokener *tok = NULL;
	struct json_object *o = NULL;
	size_t end;

	if (len == 0 || memchr(text, '\0', len) != NULL || len > INT32_MAX) {
		errbuf_set(err, errlen, CIMD_DOC "is not valid JSON");
		goto fail;
	}
	tok = json_tokener_new_ex(CIMD_JSON_DEPTH);
	if (tok == NULL) {
		errbuf_set(err, errlen, CIMD_DOC "could not be parsed");
		goto fail;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, text, (int)len);
	if (o == NULL || json_tokener_get_error(tok) != json_tokener_success) {
		errbuf_set(err, errlen, CIMD_DOC "is not valid JSON");
		goto fail;
	}
	end = json_tokener_get_parse_end(tok);
	while (end < len && isspace((unsigned char)text[end]))
		end++;
	if (end != len) {
		errbuf_set(err, errlen, CIMD_DOC "has bytes after its JSON value");
		goto fail;
	}
	if (!json_object_is_type(o, json_type_object)) {
		errbuf_set(err, errlen, CIMD_DOC "is not a JSON object");
		goto fail;
	}
	if (cimd_doc_count_keys(text, len) != cimd_doc_count_members(o)) {
		errbuf_set(err, errlen, CIMD_DOC "has duplicate keys");
		goto fail;
	}
	json_tokener_free(tok);
	return o;
fail:
	json_object_put(o);
	if (tok != NULL)
		json_tokener_free(tok);
	return NULL;
}

/* Get an optional string member: 0 absent, 1 present (in *out), -1 wrong type
 * or too long (err set). */
static int
cimd_doc_get_string(struct json_object *doc, const char *key, size_t max, const char **out,
    char *err, size_t errlen)
{
	struct json_object *v;

	if (!json_object_object_get_ex(doc, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_string)) {
		errbuf_set(err, errlen, CIMD_DOC "%s must be a string", key);
		return -1;
	}
	if ((size_t)json_object_get_string_len(v) > max) {
		errbuf_set(err, errlen, CIMD_DOC "%s is longer than %zu characters", key, max);
		return -1;
	}
	*out = json_object_get_string(v);
	return 1;
}

/* Get an optional array-of-strings member, as get_string. */
static int
cimd_doc_get_strings(struct json_object *doc, const char *key, size_t max_n, size_t max_len,
    struct json_object **out, char *err, size_t errlen)
{
	struct json_object *v;
	size_t n;

	if (!json_object_object_get_ex(doc, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_array)) {
		errbuf_set(err, errlen, CIMD_DOC "%s must be an array of strings", key);
		return -1;
	}
	n = json_object_array_length(v);
	if (n > max_n) {
		errbuf_set(err, errlen, CIMD_DOC "%s has more than %zu entries", key, max_n);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(v, i);

		if (!json_object_is_type(e, json_type_string)) {
			errbuf_set(err, errlen, CIMD_DOC "%s must be an array of strings", key);
			return -1;
		}
		if ((size_t)json_object_get_string_len(e) > max_len) {
			errbuf_set(err, errlen, CIMD_DOC "%s[%zu] is longer than %zu characters",
			    key, i, max_len);
			return -1;
		}
	}
	*out = v;
	return 1;
}

static bool
cimd_doc_scope_char(unsigned char ch)
{
	return ch == 0x21 || (ch >= 0x23 && ch <= 0x5b) || (ch >= 0x5d && ch <= 0x7e);
}

/* Parse the declared scope string into scopes, each in scopes_supported. */
static int
cimd_doc_scopes(const char *scope, const struct config *cfg, struct strlist *scopes, char *err,
    size_t errlen)
{
	char q[64], *tok = NULL;
	const char *p = scope;
	size_t n, count = 0;
	int rc = -1;

	while (*p != '\0') {
		if (*p == ' ') {
			p++;
			continue;
		}
		for (n = 0; p[n] != '\0' && p[n] != ' '; n++) {
			if (!cimd_doc_scope_char((unsigned char)p[n])) {
				errbuf_set(err, errlen,
				    CIMD_DOC "scope contains an invalid character");
				goto out;
			}
		}
		if (++count > CIMD_SCOPES_MAX) {
			errbuf_set(err, errlen, CIMD_DOC "scope has more than %d values",
			    CIMD_SCOPES_MAX);
			goto out;
		}
		free(tok);
		tok = xstrndup(p, n);
		/* Baseline scopes are granted anyway, so declaring one is fine
		 * (as for DCR clients). */
		if (!strlist_contains(&cfg->eas.scopes_supported, tok) &&
		    !strlist_contains(&cfg->eas.baseline_client_scopes, tok)) {
			errbuf_set(err, errlen, CIMD_DOC "scope \"%s\" is not supported",
			    cimd_doc_quote(tok, q, sizeof q));
			goto out;
		}
		if (!strlist_contains(scopes, tok))
			strlist_add(scopes, tok);
		p += n;
	}
	rc = 0;
out:
	free(tok);
	return rc;
}

/* The JWK members that hold private or symmetric key material (RFC 7518
 * §6.2.2, §6.3.2, §6.4.1; RFC 8037 §2). */
static const char *cimd_doc_private_members[] = { "d", "p", "q", "dp", "dq", "qi", "oth", "k",
	NULL };

/* Refuse private or symmetric key material anywhere in the document: in a
 * JWK (an object with kty, or an element of jwks.keys), or a PEM private
 * key in any string. A document is public: such a key is compromised, and
 * accepting it would teach clients to publish their secrets. */
static int
cimd_doc_check_no_private(struct json_object *o, bool is_jwk, const char *what, char *err,
    size_t errlen)
{
	struct json_object *v;

	if (json_object_is_type(o, json_type_string)) {
		if (strstr(json_object_get_string(o), "PRIVATE KEY-----") != NULL) {
			errbuf_set(err, errlen, "%s contains a PEM private key", what);
			return -1;
		}
		return 0;
	}
	if (json_object_is_type(o, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(o); i++) {
			if (cimd_doc_check_no_private(json_object_array_get_idx(o, i), is_jwk, what,
				err, errlen) != 0)
				return -1;
		}
		return 0;
	}
	if (!json_object_is_type(o, json_type_object))
		return 0;
	if (is_jwk || json_object_object_get_ex(o, "kty", NULL)) {
		if (json_object_object_get_ex(o, "kty", &v) &&
		    json_object_is_type(v, json_type_string) &&
		    strcmp(json_object_get_string(v), "oct") == 0) {
			errbuf_set(err, errlen,
			    "%s contains a symmetric key (kty oct); only public keys may be "
			    "published",
			    what);
			return -1;
		}
		for (const char **m = cimd_doc_private_members; *m != NULL; m++) {
			if (json_object_object_get_ex(o, *m, NULL)) {
				errbuf_set(err, errlen,
				    "%s contains private key material (a JWK with \"%s\"); only "
				    "public keys may be published",
				    what, *m);
				return -1;
			}
		}
	}
	json_object_object_foreach(o, k, m)
	{
		/* The elements of a JWKS's keys are JWKs, kty or not. */
		bool keys = strcmp(k, "keys") == 0 && json_object_is_type(m, json_type_array);

		if (cimd_doc_check_no_private(m, keys, what, err, errlen) != 0)
			return -1;
	}
	return 0;
}

struct keyset *
cimd_doc_jwks_parse(const char *what, const char *text, size_t len, char *err, size_t errlen)
{
	struct json_object *o = jwt_json_parse(text, len);
	struct keyset *ks = NULL;
	char kerr[160];

	if (o == NULL || !json_object_is_type(o, json_type_object)) {
		errbuf_set(err, errlen, "%s is not a JSON object", what);
		goto out;
	}
	if (cimd_doc_check_no_private(o, false, what, err, errlen) != 0)
		goto out;
	if ((ks = keyset_from_jwks(text, len, kerr, sizeof kerr)) == NULL)
		errbuf_set(err, errlen, "%s is not usable: %s", what, kerr);
out:
	json_object_put(o);
	return ks;
}

/* Is m a method a CIMD client may use? Sets err for a refused one. */
static int
cimd_doc_auth_method_ok(const char *m, const char *key, char *err, size_t errlen)
{
	char q[64];

	if (strcmp(m, "none") == 0 || strcmp(m, "private_key_jwt") == 0)
		return 0;
	if (cimd_doc_in(cimd_doc_shared_secret_methods, m))
		errbuf_set(err, errlen,
		    CIMD_DOC "%s %s uses a shared secret; CIMD clients use none or "
			     "private_key_jwt",
		    key, m);
	else
		errbuf_set(err, errlen,
		    CIMD_DOC "%s %s is not supported; only none and private_key_jwt are", key,
		    cimd_doc_quote(m, q, sizeof q));
	return -1;
}

/* The private_key_jwt keys: jwks_uri (an https URL under the client_id
 * URL rules and host policy, fetched at the token endpoint) or an inline
 * jwks of public keys, exactly one of them. */
static int
cimd_doc_check_keys(struct json_object *doc, struct client *c, const struct config *cfg, char *err,
    size_t errlen)
{
	struct json_object *jwks = NULL;
	const char *uri = NULL, *why, *text;
	char host[CIMD_HOST_MAX], kerr[160];
	int r;

	r = cimd_doc_get_string(doc, "jwks_uri", CIMD_URL_MAX, &uri, err, errlen);
	if (r < 0)
		return -1;
	json_object_object_get_ex(doc, "jwks", &jwks);
	if (uri != NULL && jwks != NULL) {
		errbuf_set(err, errlen, CIMD_DOC "must not have both jwks_uri and jwks");
		return -1;
	}
	if (uri == NULL && jwks == NULL) {
		errbuf_set(err, errlen,
		    CIMD_DOC "token_endpoint_auth_method private_key_jwt needs jwks_uri or "
			     "jwks");
		return -1;
	}
	if (uri != NULL) {
		if (cimd_url_check(uri, host, sizeof host, &why) != 0) {
			errbuf_set(err, errlen, CIMD_DOC "jwks_uri is invalid: %s", why);
			return -1;
		}
		if (!cimd_host_allowed(&cfg->eas.cimd.allowed_hosts, &cfg->eas.cimd.denied_hosts,
			host, &why)) {
			errbuf_set(err, errlen, CIMD_DOC "jwks_uri is refused: %s", why);
			return -1;
		}
		c->jwks_uri = xstrdup(uri);
		return 0;
	}
	if (!json_object_is_type(jwks, json_type_object)) {
		errbuf_set(err, errlen, CIMD_DOC "jwks must be an object");
		return -1;
	}
	/* Already checked for private material with the whole document. */
	text = json_object_to_json_string_ext(jwks, JSON_C_TO_STRING_PLAIN);
	c->jwks = keyset_from_jwks(text, strlen(text), kerr, sizeof kerr);
	if (c->jwks == NULL) {
		errbuf_set(err, errlen, CIMD_DOC "jwks is not usable: %s", kerr);
		return -1;
	}
	return 0;
}

/* token_endpoint_auth_method and token_endpoint_auth_methods_supported:
 * none (public, PKCE only) or private_key_jwt (RFC 7523 assertions signed
 * with the document's keys); a document naming both may use either. Never
 * a shared secret: a document is public. */
static int
cimd_doc_check_auth(struct json_object *doc, struct client *c, const struct config *cfg, char *err,
    size_t errlen)
{
	struct json_object *a = NULL;
	const char *m = NULL, *alg = NULL;
	bool none = false, pk = false;
	char q[64];
	int r;

	if (json_object_object_get_ex(doc, "client_secret", NULL) ||
	    json_object_object_get_ex(doc, "client_secret_expires_at", NULL)) {
		errbuf_set(err, errlen,
		    CIMD_DOC "must not contain a client_secret: CIMD "
			     "clients have no shared secret");
		return -1;
	}
	r = cimd_doc_get_string(doc, "token_endpoint_auth_method", 64, &m, err, errlen);
	if (r < 0)
		return -1;
	if (r == 1) {
		if (cimd_doc_auth_method_ok(m, "token_endpoint_auth_method", err, errlen) != 0)
			return -1;
		none = strcmp(m, "none") == 0;
		pk = !none;
	}
	r = cimd_doc_get_strings(doc, "token_endpoint_auth_methods_supported", CIMD_ARRAY_MAX, 64,
	    &a, err, errlen);
	if (r < 0)
		return -1;
	for (size_t i = 0; r == 1 && i < json_object_array_length(a); i++) {
		const char *e = json_object_get_string(json_object_array_get_idx(a, i));

		/* Other methods listed are ones the client could use elsewhere:
		 * ignored, except a shared secret, which a document must not
		 * have. */
		if (cimd_doc_in(cimd_doc_shared_secret_methods, e)) {
			cimd_doc_auth_method_ok(e, "token_endpoint_auth_methods_supported", err,
			    errlen);
			return -1;
		}
		none = none || strcmp(e, "none") == 0;
		pk = pk || strcmp(e, "private_key_jwt") == 0;
	}
	if (!none && !pk)
		none = true;
	r = cimd_doc_get_string(doc, "token_endpoint_auth_signing_alg", 16, &alg, err, errlen);
	if (r < 0)
		return -1;
	if (r == 1 && strcmp(alg, "RS256") != 0 && strcmp(alg, "PS256") != 0 &&
	    strcmp(alg, "ES256") != 0 && strcmp(alg, "EdDSA") != 0) {
		errbuf_set(err, errlen,
		    CIMD_DOC "token_endpoint_auth_signing_alg %s is not supported "
			     "(RS256, PS256, ES256, EdDSA)",
		    cimd_doc_quote(alg, q, sizeof q));
		return -1;
	}
	free(c->token_endpoint_auth_method);
	c->token_endpoint_auth_method = xstrdup(pk ? "private_key_jwt" : "none");
	if (pk && alg != NULL)
		c->token_endpoint_auth_signing_alg = xstrdup(alg);
	c->also_none = pk && none;
	return pk ? cimd_doc_check_keys(doc, c, cfg, err, errlen) : 0;
}

/* grant_types (must include authorization_code; unsupported ones ignored)
 * and response_types (exactly ["code"]). */
static int
cimd_doc_check_grants(struct json_object *doc, struct client *c, char *err, size_t errlen)
{
	struct json_object *a = NULL;
	int r;

	r = cimd_doc_get_strings(doc, "grant_types", CIMD_GRANT_TYPES_MAX, 256, &a, err, errlen);
	if (r < 0)
		return -1;
	if (r == 0) {
		strlist_add(&c->grant_types, "authorization_code");
	} else {
		for (size_t i = 0; i < json_object_array_length(a); i++) {
			const char *g = json_object_get_string(json_object_array_get_idx(a, i));

			if (cimd_doc_in(cimd_doc_supported_grants, g) &&
			    !strlist_contains(&c->grant_types, g))
				strlist_add(&c->grant_types, g);
		}
		if (!strlist_contains(&c->grant_types, "authorization_code")) {
			errbuf_set(err, errlen,
			    CIMD_DOC "grant_types must include "
				     "authorization_code");
			return -1;
		}
	}
	r = cimd_doc_get_strings(doc, "response_types", CIMD_ARRAY_MAX, 256, &a, err, errlen);
	if (r < 0)
		return -1;
	if (r == 1 &&
	    (json_object_array_length(a) != 1 ||
		strcmp(json_object_get_string(json_object_array_get_idx(a, 0)), "code") != 0)) {
		errbuf_set(err, errlen, CIMD_DOC "response_types must be exactly [\"code\"]");
		return -1;
	}
	return 0;
}

static int
cimd_doc_check_redirects(struct json_object *doc, struct client *c, char *err, size_t errlen)
{
	struct json_object *a = NULL;
	enum redirect_uri_kind kind;
	const char *why;
	int r;

	r = cimd_doc_get_strings(doc, "redirect_uris", CIMD_REDIRECT_URIS_MAX,
	    OAUTH_REDIRECT_URI_MAX, &a, err, errlen);
	if (r < 0)
		return -1;
	if (r == 0 || json_object_array_length(a) == 0) {
		errbuf_set(err, errlen, CIMD_DOC "redirect_uris is missing or empty");
		return -1;
	}
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		const char *u = json_object_get_string(json_object_array_get_idx(a, i));

		if (client_redirect_uri_check(u, false, &kind, &why) != 0) {
			errbuf_set(err, errlen, CIMD_DOC "redirect_uris[%zu] is invalid: %s", i,
			    why);
			return -1;
		}
		if (!strlist_contains(&c->redirect_uris, u))
			strlist_add(&c->redirect_uris, u);
	}
	return 0;
}

/* The members we do not use must still have their registered types. */
static int
cimd_doc_check_others(struct json_object *doc, char *err, size_t errlen)
{
	struct json_object *v, *a;
	const char *s;

	for (const char **k = cimd_doc_string_fields; *k != NULL; k++) {
		if (cimd_doc_get_string(doc, *k, CIMD_STRING_MAX, &s, err, errlen) < 0)
			return -1;
	}
	if (cimd_doc_get_strings(doc, "contacts", CIMD_ARRAY_MAX, 320, &a, err, errlen) < 0)
		return -1;
	if (json_object_object_get_ex(doc, "jwks", &v) &&
	    !json_object_is_type(v, json_type_object)) {
		errbuf_set(err, errlen, CIMD_DOC "jwks must be an object");
		return -1;
	}
	return 0;
}

struct client *
cimd_doc_validate(const char *url, const char *text, size_t len, const struct config *cfg,
    char *err, size_t errlen)
{
	struct json_object *doc;
	struct client *c = NULL;
	const char *s = NULL;
	int r;

	doc = cimd_doc_parse(text, len, err, errlen);
	if (doc == NULL)
		goto fail;
	r = cimd_doc_get_string(doc, "client_id", CIMD_URL_MAX, &s, err, errlen);
	if (r < 0)
		goto fail;
	if (r == 0) {
		errbuf_set(err, errlen, CIMD_DOC "has no client_id");
		goto fail;
	}
	if (strcmp(s, url) != 0) {
		errbuf_set(err, errlen,
		    CIMD_DOC "client_id does not match the URL it was "
			     "fetched from");
		goto fail;
	}
	c = client_new(url);
	c->is_cimd = true;
	c->token_endpoint_auth_method = xstrdup("none");
	c->created_at = clock_wall_s();
	if (cimd_doc_check_no_private(doc, false, "client metadata document", err, errlen) != 0 ||
	    cimd_doc_check_auth(doc, c, cfg, err, errlen) != 0 ||
	    cimd_doc_check_grants(doc, c, err, errlen) != 0 ||
	    cimd_doc_check_redirects(doc, c, err, errlen) != 0 ||
	    cimd_doc_check_others(doc, err, errlen) != 0)
		goto fail;
	r = cimd_doc_get_string(doc, "client_name", CIMD_CLIENT_NAME_MAX, &s, err, errlen);
	if (r < 0)
		goto fail;
	if (r == 0 || *s == '\0') {
		errbuf_set(err, errlen,
		    CIMD_DOC "has no client_name (the MCP authorization spec requires one)");
		goto fail;
	}
	for (const char *p = s; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			errbuf_set(err, errlen,
			    CIMD_DOC "client_name contains a control character");
			goto fail;
		}
	}
	c->client_name = xstrdup(s);
	r = cimd_doc_get_string(doc, "scope", CIMD_SCOPE_MAX, &s, err, errlen);
	if (r < 0)
		goto fail;
	if (r == 1) {
		if (cimd_doc_scopes(s, cfg, &c->scopes, err, errlen) != 0)
			goto fail;
	}
	client_finish_scopes(c, r == 1, cfg);
	json_object_put(doc);
	return c;
fail:
	client_unref(c);
	json_object_put(doc);
	return NULL;
}
