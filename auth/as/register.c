/*
 * POST /oauth/register: RFC 7591 dynamic client registration. The metadata
 * rules are dcr.c; here are the HTTP side and the abuse limits: JSON only,
 * a bounded body, token-bucket rate limits (per address, and for all
 * registrations; 429 + Retry-After) and the
 * registry's capacity (idle clients evicted, else 503). The client secret of
 * a confidential client appears in this one response and nowhere else.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/as/as_private.h"
#include "auth/client/client.h"
#include "auth/registry/clients.h"
#include "auth/registry/dcr.h"
#include "common/ratelimit.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "proxy/log.h"
#include "proxy/req.h"

/* A registration waiting for the store. */
struct reg {
	struct as *as;
	struct req *sr;
	struct dcr_result res;
	struct clients_lookup *add;
};

static void
reg_free(struct reg *rg)
{
	clients_cancel(rg->add);
	dcr_result_dispose(&rg->res);
	free(rg);
}

static void
reg_abort(struct req *sr, void *arg)
{
	req_unref(sr);
	reg_free(arg);
}

static void
reg_added(enum clients_add_result r, void *arg)
{
	struct reg *rg = arg;
	struct as *as = rg->as;
	struct req *sr = rg->sr;
	char *json;

	rg->add = NULL;
	if (r != CLIENTS_ADDED) {
		if (r == CLIENTS_FULL)
			log_warn("client registration refused: registry full",
			    LOG_I("max_clients", as->cfg->eas.registration.max_clients));
		req_add_header(sr, "Retry-After", r == CLIENTS_FULL ? "60" : "5");
		req_reply_oauth_error(sr, 503, "temporarily_unavailable",
		    r == CLIENTS_FULL
			? "the client registry is full; retry later"
			: "the client registry is unavailable right now; retry later");
	} else {
		log_info("client registered", LOG_S("client_id", rg->res.client->client_id),
		    LOG_S("auth_method", rg->res.client->token_endpoint_auth_method),
		    LOG_I("redirect_uris", rg->res.client->redirect_uris.n));
		json = dcr_response_json(rg->res.client, rg->res.client_secret);
		req_reply_json(sr, 201, json);
		xfree_secret(json);
	}
	req_set_abort(sr, NULL, NULL);
	req_unref(sr);
	reg_free(rg);
}

void
register_handle(struct req *sr, void *arg)
{
	struct as *as = arg;
	struct dcr_result res = { 0 };
	const char *ct;
	char *body = NULL;
	size_t len;
	int retry;
	struct reg *rg;

	if (as_preflight(sr, "POST, OPTIONS"))
		return;
	as_cors(sr);
	if (strcmp(as_method(sr), "POST") != 0) {
		req_add_header(sr, "Allow", "POST, OPTIONS");
		req_reply_oauth_error(sr, 405, "invalid_request", "use POST");
		goto out;
	}
	if (!as_rate_ok(as, sr, AS_LIMIT_REGISTER))
		goto out;
	if (!ratelimit_take(as->reg_global, "", &retry)) {
		as_too_many(as, sr, false, retry, "register_global",
		    "client registration is rate limited; retry later");
		goto out;
	}
	ct = as_header(sr, "Content-Type");
	if (ct == NULL || strncasecmp(ct, "application/json", 16) != 0 ||
	    (ct[16] != '\0' && ct[16] != ';' && ct[16] != ' ')) {
		req_reply_oauth_error(sr, 400, "invalid_client_metadata",
		    "the registration request must be application/json");
		goto out;
	}
	if ((body = as_read_body(sr, DCR_MAX_BODY, &len)) == NULL) {
		req_reply_oauth_error(sr, 400, "invalid_client_metadata",
		    "the registration request exceeds 64 KiB");
		goto out;
	}
	if (dcr_validate(body, len, as->cfg, &res) != 0) {
		log_info("client registration refused", LOG_S("error", res.error),
		    LOG_S("reason", res.desc));
		req_reply_oauth_error(sr, 400, res.error, res.desc);
		goto out;
	}
	rg = xcalloc(1, sizeof *rg);
	rg->as = as;
	rg->sr = sr;
	rg->res = res;
	memset(&res, 0, sizeof res);
	req_ref(sr);
	req_set_abort(sr, reg_abort, rg);
	rg->add = clients_add(as->clients, rg->res.client, reg_added, rg);
out:
	free(body);
	dcr_result_dispose(&res);
}
