/*
 * POST /oauth/token: the authorization_code and refresh_token grants. This
 * file authenticates the client (none for public clients, client_secret_
 * basic/_post for confidential DCR clients, secrets compared as SHA-256 in
 * constant time; private_key_jwt for CIMD clients whose document names
 * their keys, verified by clientassert.c) and turns grant.c's results into
 * RFC 6749 responses. Every client-authentication failure is 401
 * invalid_client with a description naming the rule.
 *
 * A CIMD client refreshing, or authenticating with an assertion, is
 * resolved through the registry (cache or a fresh fetch). If its document
 * is now invalid or unreachable the client is refused (401 invalid_client,
 * as the MCP authorization spec of 2026-07-28 asks) and the refresh token
 * is left untouched: an invalid document stops every further refresh,
 * while after a transient outage the same refresh token works again once
 * the document resolves. A code exchange resolves its client too (the
 * code names only the client_id: it may be redeemed on another replica
 * than the one that issued it, which resolves a CIMD client through its
 * own cache or a fetch); grant.c refuses a private_key_jwt client's code
 * without an assertion (the code is spent then, as by any failed
 * exchange).
 */
#include <json-c/json.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/as/as_private.h"
#include "auth/cimd/cimd.h"
#include "auth/client/client.h"
#include "auth/crypto/assertion.h"
#include "auth/registry/clients.h"
#include "auth/as/grant.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "proxy/log.h"
#include "proxy/metrics.h"
#include "proxy/req.h"

#define TOKEN_MAX_AUTH_HEADER 4096

struct token {
	struct as *as;
	struct req *sr;
	struct form f;
	char *client_id;
	char *secret;
	const char *auth_method; /* none | client_secret_basic | client_secret_post |
				    private_key_jwt */
	struct clients_lookup *lookup;
	struct client *client;      /* private_key_jwt: the client being verified */
	struct clientassert *check; /* private_key_jwt: its assertion's verification */
	struct grant_op *gop;       /* the grant waiting for the store */
};

static void
token_free(struct token *t)
{
	clients_cancel(t->lookup);
	clientassert_cancel(t->check);
	grant_cancel(t->gop);
	client_unref(t->client);
	form_dispose(&t->f);
	free(t->client_id);
	xfree_secret(t->secret);
	free(t);
}

static void
token_abort(struct req *sr, void *arg)
{
	req_unref(sr);
	token_free(arg);
}

void
token_client_error(struct req *sr, const char *auth_method, int status, const char *error,
    const char *desc)
{
	if (status == 401 && auth_method != NULL && strcmp(auth_method, "client_secret_basic") == 0)
		req_add_header(sr, "WWW-Authenticate", "Basic realm=\"oauth\"");
	req_reply_oauth_error(sr, status, error, desc);
}

static void
token_error(struct token *t, int status, const char *error, const char *desc)
{
	token_client_error(t->sr, t->auth_method, status, error, desc);
}

static void
token_reply(struct token *t, const struct grant_result *r)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "access_token", json_object_new_string(r->access_token));
	json_object_object_add(o, "token_type", json_object_new_string("Bearer"));
	json_object_object_add(o, "expires_in", json_object_new_int64(r->expires_in));
	if (r->refresh_token != NULL)
		json_object_object_add(o, "refresh_token",
		    json_object_new_string(r->refresh_token));
	json_object_object_add(o, "scope", json_object_new_string(r->scope));
	req_add_header(t->sr, "Pragma", "no-cache");
	req_reply_json(t->sr, 200,
	    json_object_to_json_string_ext(o,
		JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

bool
token_authenticate(const struct client *c, const char *auth_method, const char *secret,
    const char **why)
{
	const char *registered = c->token_endpoint_auth_method != NULL
	    ? c->token_endpoint_auth_method
	    : "none";
	unsigned char md[32];
	unsigned int n = 0;

	if (strcmp(registered, "none") == 0 || strcmp(registered, "private_key_jwt") == 0) {
		if (secret != NULL) {
			*why = strcmp(registered, "none") == 0
			    ? "the client is public (none): it must not send a client secret"
			    : "the client authenticates with private_key_jwt: it must not send a "
			      "client secret";
			return false;
		}
		if (!client_accepts_auth(c, auth_method)) {
			*why = strcmp(auth_method, "none") == 0
			    ? "the client authenticates with private_key_jwt: client_assertion is "
			      "required"
			    : "the client does not authenticate with private_key_jwt (its "
			      "metadata says none)";
			return false;
		}
		return true;
	}
	if (secret == NULL || strcmp(registered, auth_method) != 0 || !c->has_secret) {
		*why = "client authentication failed";
		return false;
	}
	EVP_Digest(secret, strlen(secret), md, &n, EVP_sha256(), NULL);
	if (CRYPTO_memcmp(md, c->secret_hash, sizeof md) != 0) {
		*why = "client authentication failed";
		return false;
	}
	return true;
}

/* The request is answered: release it and t. */
static void
token_finish(struct token *t)
{
	req_set_abort(t->sr, NULL, NULL);
	req_unref(t->sr);
	token_free(t);
}

static void
token_granted(struct grant_result *r, const struct grant_error *e, void *arg)
{
	struct token *t = arg;
	const char *gt = form_get(&t->f, "grant_type");

	t->gop = NULL;
	if (r == NULL) {
		if (e->status == 401 && strcmp(t->auth_method, "none") == 0)
			metrics_add(t->as->m_assertion, 1, "missing");
		if (e->status == 503)
			req_add_header(t->sr, "Retry-After", "5");
		log_info("token request refused", LOG_S("grant_type", gt),
		    LOG_S("client_id", t->client_id), LOG_S("error", e->error),
		    LOG_S("reason", e->desc));
		token_error(t, e->status, e->error, e->desc);
	} else {
		log_info("token issued", LOG_S("grant_type", gt), LOG_S("client_id", t->client_id),
		    LOG_S("scope", r->scope), LOG_B("refresh_token", r->refresh_token != NULL));
		token_reply(t, r);
	}
	token_finish(t);
}

/* The client is authenticated: run the grant. false when the request was
 * answered at once (the caller finishes t), true when token_granted will. */
static bool
token_run(struct token *t, struct client *client)
{
	struct as *as = t->as;
	const char *gt = form_get(&t->f, "grant_type");
	struct grant_op *op;

	if (strcmp(gt, "authorization_code") == 0) {
		op = grant_exchange_code(as->grant, client, t->auth_method, form_get(&t->f, "code"),
		    form_get(&t->f, "code_verifier"), form_get(&t->f, "redirect_uri"),
		    form_get(&t->f, "resource"), token_granted, t);
	} else {
		if (!strlist_contains(&client->grant_types, "refresh_token")) {
			token_error(t, 400, "unauthorized_client",
			    "the client is not allowed the refresh_token grant");
			return false;
		}
		op = grant_refresh(as->grant, client, form_get(&t->f, "refresh_token"),
		    form_get(&t->f, "scope"), form_get(&t->f, "resource"), token_granted, t);
	}
	/* NULL: token_granted ran already and t is gone. */
	if (op != NULL)
		t->gop = op;
	return true;
}

/* The private_key_jwt verification is over: run the grant or refuse. */
static void
token_assert_done(int status, const char *error, const char *desc, void *arg)
{
	struct token *t = arg;

	t->check = NULL;
	if (status == 0) {
		if (token_run(t, t->client))
			return;
	} else {
		if (status == 503)
			req_add_header(t->sr, "Retry-After", "60");
		token_error(t, status, error, desc);
	}
	token_finish(t);
}

static void
token_client_done(struct client *client, bool unavailable, const char *error_description, void *arg)
{
	struct token *t = arg;
	const char *why;
	char desc[256];
	struct clientassert *check;

	t->lookup = NULL;
	if (unavailable) {
		req_add_header(t->sr, "Retry-After", "5");
		token_error(t, 503, "temporarily_unavailable", error_description);
		goto done;
	}
	if (client != NULL && strcmp(t->auth_method, "private_key_jwt") == 0) {
		if (!client_accepts_auth(client, "private_key_jwt")) {
			token_error(t, 401, "invalid_client",
			    "the client does not authenticate with private_key_jwt (its metadata "
			    "document says none)");
			goto done;
		}
		/* token_assert_done finishes t, maybe before this returns. */
		t->client = client;
		client_ref(client);
		check = clientassert_start(t->as, client, form_get(&t->f, "client_assertion"),
		    token_assert_done, t);
		if (check != NULL)
			t->check = check;
		return;
	}
	if (client == NULL) {
		if (cimd_is_url(t->client_id)) {
			snprintf(desc, sizeof desc,
			    "the client's metadata document could not be validated: %.180s",
			    error_description != NULL ? error_description : "");
			token_error(t, 401, "invalid_client", desc);
		} else {
			token_error(t, 401, "invalid_client", "unknown client");
		}
	} else if (!token_authenticate(client, t->auth_method, t->secret, &why)) {
		log_info("client authentication failed", LOG_S("client_id", t->client_id),
		    LOG_S("method", t->auth_method));
		if (strcmp(t->auth_method, "none") == 0 && !client_accepts_auth(client, "none"))
			metrics_add(t->as->m_assertion, 1, "missing");
		token_error(t, 401, "invalid_client", why);
	} else if (token_run(t, client)) {
		return;
	}
done:
	token_finish(t);
}

/* Decode "Basic base64(urlenc(id):urlenc(secret))" (RFC 6749 §2.3.1). */
static int
token_parse_basic(const char *h, char **id, char **secret)
{
	size_t n, len, pad = 0;
	unsigned char *raw = NULL;
	char *colon;
	int got, rc = -1;

	if (strncasecmp(h, "Basic ", 6) != 0)
		return -1;
	h += 6;
	while (*h == ' ')
		h++;
	n = strlen(h);
	if (n == 0 || n % 4 != 0 || n > TOKEN_MAX_AUTH_HEADER)
		return -1;
	if (h[n - 1] == '=')
		pad++;
	if (h[n - 2] == '=')
		pad++;
	raw = xmalloc(n / 4 * 3 + 1);
	if ((got = EVP_DecodeBlock(raw, (const unsigned char *)h, (int)n)) < 0)
		goto out;
	len = (size_t)got - pad;
	raw[len] = '\0';
	if (memchr(raw, '\0', len) != NULL || (colon = strchr((char *)raw, ':')) == NULL)
		goto out;
	*id = form_decode((char *)raw, (size_t)(colon - (char *)raw), true);
	*secret = form_decode(colon + 1, len - (size_t)(colon + 1 - (char *)raw), true);
	if (*id == NULL || *secret == NULL || **id == '\0' || **secret == '\0') {
		free(*id);
		xfree_secret(*secret);
		*id = *secret = NULL;
		goto out;
	}
	rc = 0;
out:
	if (raw != NULL) {
		OPENSSL_cleanse(raw, n / 4 * 3 + 1);
		free(raw);
	}
	return rc;
}

/* The client of a private_key_jwt request (RFC 7523 §2.2): the form's
 * client_id, or the assertion's iss (= sub) when the form has none; both
 * must then agree. The assertion itself is verified later, with the keys. */
static int
token_assertion_credentials(const struct form *f, bool other_method, char **client_id,
    const char **method, int *status, const char **error, const char **desc)
{
	const char *form_id = form_get(f, "client_id"),
		   *type = form_get(f, "client_assertion_type");
	const char *ca = form_get(f, "client_assertion");
	char *claimed = NULL;

	*method = "private_key_jwt";
	if (other_method) {
		*desc = "use one client authentication method, not several";
		return -1;
	}
	*status = 401;
	*error = "invalid_client";
	if (type == NULL || strcmp(type, ASSERTION_TYPE) != 0) {
		*desc = "client_assertion_type must be " ASSERTION_TYPE;
		return -1;
	}
	if (ca == NULL || *ca == '\0') {
		*desc = "client_assertion is required with client_assertion_type";
		return -1;
	}
	if (strnlen(ca, ASSERTION_MAX_LEN + 1) > ASSERTION_MAX_LEN) {
		*desc = "client_assertion is longer than 8192 characters";
		return -1;
	}
	claimed = assertion_client_id(ca);
	if (form_id != NULL && claimed != NULL && strcmp(form_id, claimed) != 0) {
		*desc = "client_id does not match the iss and sub of client_assertion";
		free(claimed);
		return -1;
	}
	if (form_id == NULL && claimed == NULL) {
		*desc = "client_id is required: client_assertion has no iss equal to its sub";
		return -1;
	}
	if (!cimd_is_url(form_id != NULL ? form_id : claimed)) {
		*desc = "private_key_jwt is only for client ID metadata document clients";
		free(claimed);
		return -1;
	}
	*client_id = form_id != NULL ? xstrdup(form_id) : claimed;
	if (form_id != NULL)
		free(claimed);
	return 0;
}

int
token_credentials(struct req *sr, const struct form *f, char **client_id, char **secret,
    const char **method, int *status, const char **error, const char **desc)
{
	const char *authz = as_header(sr, "Authorization");
	const char *form_id = form_get(f, "client_id"), *form_secret = form_get(f, "client_secret");
	const char *ca_type = form_get(f, "client_assertion_type");
	const char *ca = form_get(f, "client_assertion");

	*client_id = *secret = NULL;
	*method = "none";
	*status = 400;
	*error = "invalid_request";
	if (ca_type != NULL || ca != NULL)
		return token_assertion_credentials(f, authz != NULL || form_secret != NULL,
		    client_id, method, status, error, desc);
	if (authz != NULL) {
		/* Whatever the header holds, the client tried to authenticate
		 * with it: the 401 carries a Basic challenge (RFC 6749 §5.2). */
		*method = "client_secret_basic";
		if (token_parse_basic(authz, client_id, secret) != 0) {
			*status = 401;
			*error = "invalid_client";
			*desc = "the Authorization header is not valid HTTP Basic credentials";
			return -1;
		}
		if (form_secret != NULL) {
			*desc = "use one client authentication method, not several";
			goto fail;
		}
		if (form_id != NULL && strcmp(form_id, *client_id) != 0) {
			*desc = "client_id does not match the Authorization header";
			goto fail;
		}
		return 0;
	}
	if (form_id == NULL) {
		*status = 401;
		*error = "invalid_client";
		*desc = "client_id is required";
		return -1;
	}
	*client_id = xstrdup(form_id);
	if (form_secret != NULL) {
		*secret = xstrdup(form_secret);
		*method = "client_secret_post";
	}
	return 0;
fail:
	free(*client_id);
	xfree_secret(*secret);
	*client_id = *secret = NULL;
	return -1;
}

void
token_handle(struct req *sr, void *arg)
{
	struct as *as = arg;
	struct token *t;
	const char *gt, *code, *desc;
	struct clients_lookup *l;
	char err[160];
	int status;

	if (as_preflight(sr, "POST, OPTIONS"))
		return;
	as_cors(sr);
	if (!as_rate_ok(as, sr, AS_LIMIT_TOKEN))
		return;
	t = xcalloc(1, sizeof *t);
	t->as = as;
	t->sr = sr;
	t->auth_method = "none";
	if (strcmp(as_method(sr), "POST") != 0) {
		req_add_header(sr, "Allow", "POST, OPTIONS");
		token_error(t, 405, "invalid_request", "use POST");
		goto done;
	}
	if (as_read_params(sr, false, AS_MAX_FORM_BODY, &t->f, err, sizeof err) != 0) {
		token_error(t, 400, "invalid_request", err);
		goto done;
	}
	if (token_credentials(sr, &t->f, &t->client_id, &t->secret, &t->auth_method, &status, &code,
		&desc) != 0) {
		token_error(t, status, code, desc);
		goto done;
	}
	gt = form_get(&t->f, "grant_type");
	if (gt == NULL) {
		token_error(t, 400, "invalid_request", "grant_type is required");
		goto done;
	}
	if (strcmp(gt, "authorization_code") != 0 && strcmp(gt, "refresh_token") != 0) {
		token_error(t, 400, "unsupported_grant_type",
		    "grant_type must be authorization_code or refresh_token");
		goto done;
	}
	req_ref(sr);
	req_set_abort(sr, token_abort, t);
	l = clients_lookup(as->clients, t->client_id, token_client_done, t);
	if (l != NULL)
		t->lookup = l;
	return;
done:
	token_free(t);
}
