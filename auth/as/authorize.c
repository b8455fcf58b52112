/*
 * GET/POST /oauth/authorize: validate the client's authorization request and
 * send the user to the upstream IdP. Until the client and its redirect_uri
 * are verified every error is our own 400 page (never a redirect: no open
 * redirector); after that errors go back to the client's redirect_uri with
 * state and iss (RFC 6749 §4.1.2.1, RFC 9207). The client lookup (CIMD:
 * network) and upstream discovery are asynchronous; if the user's browser
 * goes away meanwhile, the abort callback cancels them.
 *
 * Scope when the request names none: the client's registered scope set
 * (its declared scopes, or scopes_supported, unioned with the baseline).
 */
#include <stdlib.h>
#include <string.h>

#include "auth/as/as_private.h"
#include "auth/client/client.h"
#include "auth/registry/clients.h"
#include "auth/crypto/pkce.h"
#include "common/random.h"
#include "common/ratelimit.h"
#include "auth/store/store.h"
#include "auth/idp/upstream.h"
#include "common/scope.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "proxy/log.h"
#include "proxy/metrics.h"
#include "proxy/req.h"

#define AUTHORIZE_MAX_PARAMS_SIZE (16 * 1024)

struct authorize {
	struct as *as;
	struct req *sr;
	struct form params;
	struct clients_lookup *lookup;
	struct upstream_op *op;
	struct store_op *sop; /* the pending login being stored */
	char *url;            /* the upstream's authorization URL, once stored */
	struct client *client;
	char *redirect_uri;
	bool redirect_uri_sent;
	char *scope;
};

static void
authorize_free(struct authorize *az)
{
	clients_cancel(az->lookup);
	upstream_cancel(az->op);
	store_cancel(az->sop);
	free(az->url);
	form_dispose(&az->params);
	client_unref(az->client);
	free(az->redirect_uri);
	free(az->scope);
	free(az);
}

/* The request is answered: release it and everything we hold. */
static void
authorize_finish(struct authorize *az)
{
	req_set_abort(az->sr, NULL, NULL);
	req_unref(az->sr);
	authorize_free(az);
}

static void
authorize_abort(struct req *sr, void *arg)
{
	struct authorize *az = arg;

	req_unref(sr);
	authorize_free(az);
}

static void
authorize_fail_redirect(struct authorize *az, const char *error, const char *desc)
{
	metrics_add(az->as->m_authorize, 1, error);
	as_redirect_error(az->as, az->sr, az->redirect_uri, form_get(&az->params, "state"), error,
	    desc);
	authorize_finish(az);
}

static void
authorize_pending_stored(struct store_result *res, void *arg)
{
	struct authorize *az = arg;
	struct as *as = az->as;
	char *url = az->url;

	az->sop = NULL;
	az->url = NULL;
	if (res->status != STORE_OK) {
		/* Full of logins in progress: refuse this one, never evict theirs. */
		log_error("authorization refused", LOG_S("client_id", az->client->client_id),
		    LOG_S("store", store_status_text(res->status)));
		free(url);
		authorize_fail_redirect(az, "temporarily_unavailable",
		    res->status == STORE_FULL
			? "too many logins are in progress; try again later"
			: "the authorization server's storage is unavailable; try again later");
		return;
	}
	log_info("authorization started", LOG_S("client_id", az->client->client_id),
	    LOG_S("scope", az->scope));
	metrics_add(as->m_authorize, 1, "upstream_redirect");
	req_add_header(az->sr, "Location", url);
	req_add_header(az->sr, "Cache-Control", "no-store");
	req_reply(az->sr, 302, NULL, NULL, 0);
	free(url);
	authorize_finish(az);
}

static void
authorize_upstream_ready(const char *error, void *arg)
{
	struct authorize *az = arg;
	struct as *as = az->as;
	struct store_pending *p;
	char *state, *challenge;

	az->op = NULL;
	if (error != NULL) {
		authorize_fail_redirect(az, "temporarily_unavailable", error);
		return;
	}
	p = xcalloc(1, sizeof *p);
	p->client_id = xstrdup(az->client->client_id);
	p->redirect_uri = xstrdup(az->redirect_uri);
	p->redirect_uri_sent = az->redirect_uri_sent;
	if (form_get(&az->params, "state") != NULL)
		p->state = xstrdup(form_get(&az->params, "state"));
	p->code_challenge = xstrdup(form_get(&az->params, "code_challenge"));
	p->scope = xstrdup(az->scope);
	if (form_get(&az->params, "resource") != NULL)
		p->resource = xstrdup(form_get(&az->params, "resource"));
	p->upstream_verifier = random_token(32);
	p->nonce = random_token(32);
	state = random_token(32);
	challenge = pkce_challenge_s256(p->upstream_verifier);
	az->url = upstream_authorize_url(as->upstream, state, challenge, p->nonce);
	free(challenge);
	az->sop = store_pending_put(as->store, state, p, AS_PENDING_TTL_MS,
	    authorize_pending_stored, az);
	xfree_secret(state);
}

/* Settle the redirect_uri (RFC 6749 §3.1.2.3): NULL, or why not for our
 * own error page. */
static const char *
authorize_settle_redirect_uri(struct authorize *az)
{
	const struct client *client = az->client;
	const char *ru = form_get(&az->params, "redirect_uri");

	if (ru == NULL) {
		if (client->redirect_uris.n != 1)
			return "redirect_uri is required: the client registered more than one";
		az->redirect_uri = xstrdup(client->redirect_uris.v[0]);
		return NULL;
	}
	if (!client_redirect_uri_matches(&client->redirect_uris, ru))
		return "redirect_uri is not registered for this client";
	az->redirect_uri = xstrdup(ru);
	az->redirect_uri_sent = true;
	return NULL;
}

/* response_type and PKCE: NULL, or the error code and *desc. */
static const char *
authorize_check_code_request(const struct authorize *az, const char **desc)
{
	const char *rt = form_get(&az->params, "response_type");
	const char *cc = form_get(&az->params, "code_challenge");
	const char *ccm = form_get(&az->params, "code_challenge_method");

	if (rt == NULL) {
		*desc = "response_type is required";
		return "invalid_request";
	}
	if (strcmp(rt, "code") != 0) {
		*desc = "only response_type=code is supported";
		return "unsupported_response_type";
	}
	if (!strlist_contains(&az->client->grant_types, "authorization_code")) {
		*desc = "the client is not allowed the authorization_code grant";
		return "unauthorized_client";
	}
	if (cc == NULL)
		*desc = "code_challenge is required (PKCE with S256)";
	else if (ccm == NULL || !pkce_method_supported(ccm))
		*desc = "code_challenge_method must be S256";
	else if (!pkce_challenge_valid(cc))
		*desc = "code_challenge is not a base64url SHA-256 value";
	else
		return NULL;
	return "invalid_request";
}

/* scope (default: the client's registered set) and resource: NULL, or the
 * error code and *desc. Sets az->scope. */
static const char *
authorize_check_grant(struct authorize *az, const char **desc)
{
	const char *scope = form_get(&az->params, "scope");
	const char *resource = form_get(&az->params, "resource");

	if (scope != NULL) {
		if (strlen(scope) > 1024 || !scope_subset(scope, &az->client->scopes)) {
			*desc = "the requested scope exceeds what the client may request";
			return "invalid_scope";
		}
		az->scope = scope_normalise(scope);
	} else {
		az->scope = strlist_join(&az->client->scopes);
	}
	if (resource != NULL && strcmp(resource, az->as->audience) != 0) {
		*desc = "resource is not the MCP resource this server issues tokens for";
		return "invalid_target";
	}
	return NULL;
}

/* The bounds on logins in progress that protect everyone else's: per
 * client_id and per client address. NULL, or the error code and *desc. */
static const char *
authorize_check_logins(struct authorize *az, const char **desc)
{
	struct as *as = az->as;
	char buf[64];
	int retry;

	if (!ratelimit_take(as->logins_client, az->client->client_id, &retry)) {
		metrics_add(as->m_limited, 1, "logins_per_client");
		*desc = "too many logins are in progress for this client; try again later";
		return "temporarily_unavailable";
	}
	if (!ratelimit_take(as->logins_address, as_client_address(as, az->sr, buf, sizeof buf),
		&retry)) {
		metrics_add(as->m_limited, 1, "logins_per_address");
		*desc = "too many logins were started from your address; try again later";
		return "temporarily_unavailable";
	}
	return NULL;
}

static void
authorize_client_done(struct client *client, bool unavailable, const char *error_description,
    void *arg)
{
	struct authorize *az = arg;
	struct as *as = az->as;
	const char *error, *desc;
	struct upstream_op *op;

	az->lookup = NULL;
	if (unavailable) {
		metrics_add(as->m_authorize, 1, "store_error");
		req_add_header(az->sr, "Retry-After", "5");
		as_error_page(az->sr, 503, "temporarily_unavailable", error_description);
		authorize_finish(az);
		return;
	}
	if (client == NULL) {
		log_info("authorization refused: client not trusted",
		    LOG_S("client_id", form_get(&az->params, "client_id")),
		    LOG_S("reason", error_description));
		metrics_add(as->m_authorize, 1, "invalid_client");
		as_error_page(az->sr, 400, "invalid_client",
		    error_description != NULL ? error_description : "unknown client");
		authorize_finish(az);
		return;
	}
	client_ref(client);
	az->client = client;
	if ((desc = authorize_settle_redirect_uri(az)) != NULL) {
		metrics_add(as->m_authorize, 1, "invalid_request");
		as_error_page(az->sr, 400, "invalid_request", desc);
		authorize_finish(az);
		return;
	}
	/* From here on errors are redirected to the verified redirect_uri. */
	if ((error = authorize_check_code_request(az, &desc)) != NULL ||
	    (error = authorize_check_grant(az, &desc)) != NULL ||
	    (error = authorize_check_logins(az, &desc)) != NULL) {
		authorize_fail_redirect(az, error, desc);
		return;
	}
	op = upstream_prepare(as->upstream, authorize_upstream_ready, az);
	if (op != NULL)
		az->op = op;
}

void
authorize_handle(struct req *sr, void *arg)
{
	struct as *as = arg;
	struct authorize *az;
	struct clients_lookup *l;
	const char *method = as_method(sr);
	char err[160];

	if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0) {
		req_add_header(sr, "Allow", "GET, POST");
		as_error_page(sr, 405, "invalid_request", "use GET or POST");
		return;
	}
	if (!as_rate_ok(as, sr, AS_LIMIT_AUTHORIZE))
		return;
	az = xcalloc(1, sizeof *az);
	az->as = as;
	az->sr = sr;
	if (as_read_params(sr, true, AUTHORIZE_MAX_PARAMS_SIZE, &az->params, err, sizeof err) !=
	    0) {
		metrics_add(as->m_authorize, 1, "invalid_request");
		as_error_page(sr, 400, "invalid_request", err);
		authorize_free(az);
		return;
	}
	if (form_get(&az->params, "client_id") == NULL) {
		metrics_add(as->m_authorize, 1, "invalid_request");
		as_error_page(sr, 400, "invalid_request", "client_id is required");
		authorize_free(az);
		return;
	}
	req_ref(sr);
	req_set_abort(sr, authorize_abort, az);
	l = clients_lookup(as->clients, form_get(&az->params, "client_id"), authorize_client_done,
	    az);
	if (l != NULL)
		az->lookup = l; /* still pending, so az is alive */
}
