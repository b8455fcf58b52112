/*
 * POST /oauth/revoke (RFC 7009): revoke a refresh token (with its whole
 * family) or an access token (its jti deny-listed until it expires). The
 * client authenticates as at the token endpoint (public clients send their
 * client_id; CIMD clients are always public). The answer is 200 whether or
 * not the token was known, valid or the caller's, so the endpoint reveals
 * nothing about tokens.
 */
#include <stdlib.h>
#include <string.h>

#include "auth/as/as_private.h"
#include "auth/cimd/cimd.h"
#include "auth/client/client.h"
#include "auth/as/grant.h"
#include "auth/store/store.h"
#include "common/xalloc.h"
#include "proxy/log.h"
#include "proxy/req.h"

void
revoke_handle(struct req *sr, void *arg)
{
	struct as *as = arg;
	struct form f = { 0 };
	const struct client *c;
	const char *token, *method, *code, *desc;
	char err[160], *client_id = NULL, *secret = NULL;
	int status;

	if (as_preflight(sr, "POST, OPTIONS"))
		return;
	as_cors(sr);
	if (strcmp(as_method(sr), "POST") != 0) {
		req_add_header(sr, "Allow", "POST, OPTIONS");
		req_reply_oauth_error(sr, 405, "invalid_request", "use POST");
		return;
	}
	if (!as_rate_ok(as, sr, AS_LIMIT_REVOKE))
		return;
	if (as_read_params(sr, false, AS_MAX_FORM_BODY, &f, err, sizeof err) != 0) {
		req_reply_oauth_error(sr, 400, "invalid_request", err);
		return;
	}
	if (token_credentials(sr, &f, &client_id, &secret, &method, &status, &code, &desc) != 0) {
		token_client_error(sr, method, status, code, desc);
		goto out;
	}
	if (cimd_is_url(client_id)) {
		if (secret != NULL) {
			token_client_error(sr, method, 401, "invalid_client",
			    "a client ID metadata document client must not send a secret");
			goto out;
		}
	} else if ((c = store_client_get(as->store, client_id)) == NULL) {
		token_client_error(sr, method, 401, "invalid_client", "unknown client");
		goto out;
	} else if (!token_authenticate(c, method, secret, &desc)) {
		token_client_error(sr, method, 401, "invalid_client", desc);
		goto out;
	}
	if ((token = form_get(&f, "token")) == NULL) {
		req_reply_oauth_error(sr, 400, "invalid_request", "token is required");
		goto out;
	}
	if (grant_revoke(as->grant, client_id, token, form_get(&f, "token_type_hint")) != 0) {
		req_add_header(sr, "Retry-After", "60");
		req_reply_oauth_error(sr, 503, "temporarily_unavailable",
		    "the revocation could not be recorded right now; try again later");
		goto out;
	}
	log_info("revocation request", LOG_S("client_id", client_id));
	req_reply_json(sr, 200, "{}");
out:
	free(client_id);
	xfree_secret(secret);
	form_dispose(&f);
}
