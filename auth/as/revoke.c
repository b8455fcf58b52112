/*
 * POST /oauth/revoke (RFC 7009): revoke a refresh token (with its whole
 * family) or an access token (its jti deny-listed until it expires). The
 * client authenticates as at the token endpoint (public clients send their
 * client_id; a CIMD client is resolved, and a private_key_jwt one's
 * assertion is verified as at the token endpoint, which may wait for its
 * document and jwks_uri). The
 * answer is 200 whether or not the token was known, valid or the caller's,
 * so the endpoint reveals nothing about tokens.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/as/as_private.h"
#include "auth/cimd/cimd.h"
#include "auth/client/client.h"
#include "auth/as/grant.h"
#include "auth/registry/clients.h"
#include "auth/store/store.h"
#include "common/xalloc.h"
#include "proxy/log.h"
#include "proxy/req.h"

/* A revocation waiting for its client (and keys) and for the store. */
struct revoke {
	struct as *as;
	struct req *sr;
	struct form f;
	char *client_id;
	char *secret;
	const char *method;
	struct clients_lookup *lookup;
	struct clientassert *check;
	struct grant_op *gop;
};

static void
revoke_free(struct revoke *rv)
{
	clients_cancel(rv->lookup);
	clientassert_cancel(rv->check);
	grant_cancel(rv->gop);
	form_dispose(&rv->f);
	free(rv->client_id);
	xfree_secret(rv->secret);
	free(rv);
}

static void
revoke_abort(struct req *sr, void *arg)
{
	req_unref(sr);
	revoke_free(arg);
}

static void
revoke_finish(struct revoke *rv)
{
	req_set_abort(rv->sr, NULL, NULL);
	req_unref(rv->sr);
	revoke_free(rv);
}

/* Silently done, whatever the token; or 503 when the store could not
 * record the revocation. */
static void
revoke_done(int rc, void *arg)
{
	struct revoke *rv = arg;

	rv->gop = NULL;
	if (rc != 0) {
		req_add_header(rv->sr, "Retry-After", "5");
		req_reply_oauth_error(rv->sr, 503, "temporarily_unavailable",
		    "the revocation could not be recorded right now; try again later");
	} else {
		log_info("revocation request", LOG_S("client_id", rv->client_id));
		req_reply_json(rv->sr, 200, "{}");
	}
	revoke_finish(rv);
}

/* The client is authenticated: revoke (revoke_done finishes rv). */
static void
revoke_run(struct revoke *rv)
{
	struct grant_op *op;

	op = grant_revoke(rv->as->grant, rv->client_id, form_get(&rv->f, "token"),
	    form_get(&rv->f, "token_type_hint"), revoke_done, rv);
	if (op != NULL)
		rv->gop = op;
}

static void
revoke_assert_done(int status, const char *error, const char *desc, void *arg)
{
	struct revoke *rv = arg;

	rv->check = NULL;
	if (status == 0) {
		revoke_run(rv);
		return;
	}
	if (status == 503)
		req_add_header(rv->sr, "Retry-After", "60");
	req_reply_oauth_error(rv->sr, status, error, desc);
	revoke_finish(rv);
}

static void
revoke_client_done(struct client *client, const char *error_description, void *arg)
{
	struct revoke *rv = arg;
	struct clientassert *check;
	const char *why;
	char desc[256];

	rv->lookup = NULL;
	if (client == NULL && !cimd_is_url(rv->client_id)) {
		token_client_error(rv->sr, rv->method, 401, "invalid_client", "unknown client");
	} else if (client == NULL) {
		snprintf(desc, sizeof desc,
		    "the client's metadata document could not be validated: %.180s",
		    error_description != NULL ? error_description : "");
		req_reply_oauth_error(rv->sr, 401, "invalid_client", desc);
	} else if (!client->is_cimd) {
		if (!token_authenticate(client, rv->method, rv->secret, &why)) {
			token_client_error(rv->sr, rv->method, 401, "invalid_client", why);
		} else {
			revoke_run(rv);
			return;
		}
	} else if (strcmp(rv->method, "private_key_jwt") != 0) {
		if (client_accepts_auth(client, "none")) {
			revoke_run(rv);
			return;
		}
		req_reply_oauth_error(rv->sr, 401, "invalid_client",
		    "the client authenticates with private_key_jwt: client_assertion is "
		    "required");
	} else if (!client_accepts_auth(client, "private_key_jwt")) {
		req_reply_oauth_error(rv->sr, 401, "invalid_client",
		    "the client does not authenticate with private_key_jwt (its metadata "
		    "document says none)");
	} else {
		/* revoke_assert_done finishes rv, maybe before this returns. */
		check = clientassert_start(rv->as, client, form_get(&rv->f, "client_assertion"),
		    revoke_assert_done, rv);
		if (check != NULL)
			rv->check = check;
		return;
	}
	revoke_finish(rv);
}

void
revoke_handle(struct req *sr, void *arg)
{
	struct as *as = arg;
	struct form f = { 0 };
	const char *method, *code, *desc;
	char err[160], *client_id = NULL, *secret = NULL;
	int status;
	struct revoke *rv;
	struct clients_lookup *l;

	if (!as_post_start(as, sr, AS_LIMIT_REVOKE))
		return;
	if (as_read_params(sr, false, AS_MAX_FORM_BODY, &f, err, sizeof err) != 0) {
		req_reply_oauth_error(sr, 400, "invalid_request", err);
		return;
	}
	if (token_credentials(sr, &f, &client_id, &secret, &method, &status, &code, &desc) != 0) {
		token_client_error(sr, method, status, code, desc);
		goto out;
	}
	if (cimd_is_url(client_id) && secret != NULL) {
		token_client_error(sr, method, 401, "invalid_client",
		    "a client ID metadata document client must not send a secret");
		goto out;
	}
	if (form_get(&f, "token") == NULL) {
		req_reply_oauth_error(sr, 400, "invalid_request", "token is required");
		goto out;
	}
	rv = xcalloc(1, sizeof *rv);
	rv->as = as;
	rv->sr = sr;
	rv->f = f;
	rv->client_id = client_id;
	rv->secret = secret;
	rv->method = method;
	memset(&f, 0, sizeof f);
	client_id = secret = NULL;
	req_ref(sr);
	req_set_abort(sr, revoke_abort, rv);
	l = clients_lookup(as->clients, rv->client_id, revoke_client_done, rv);
	if (l != NULL)
		rv->lookup = l;
out:
	free(client_id);
	xfree_secret(secret);
	form_dispose(&f);
}
