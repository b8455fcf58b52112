/*
 * POST /oauth/register: RFC 7591 dynamic client registration. The metadata
 * rules are dcr.c; here are the HTTP side and the abuse limits: JSON only,
 * a bounded body, token-bucket rate limits (per address on this replica,
 * and for all registrations on every replica: a bucket in the store; 429 +
 * Retry-After) and the registry's capacity (idle clients evicted, else
 * 503; on every replica too). The client secret of
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
#include "auth/store/store.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "proxy/log.h"
#include "proxy/req.h"

/* A registration waiting for the store. */
struct reg {
	struct as *as;
	struct req *sr;
	struct dcr_result res;
	struct store_op *sop; /* the shared rate limit's take */
	struct clients_lookup *add;
};

static void
reg_free(struct reg *rg)
{
	store_cancel(rg->sop);
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

/* Past the shared rate limit (or refused by it): validate and register. */
static void
reg_rated(struct store_result *res, void *arg)
{
	struct reg *rg = arg;
	struct as *as = rg->as;
	struct req *sr = rg->sr;
	const char *ct;
	char *body = NULL;
	size_t len;

	rg->sop = NULL;
	if (res->status == STORE_FULL) {
		as_too_many(as, sr, false, res->retry_after_s, "register_global",
		    "client registration is rate limited; retry later");
		goto done;
	}
	if (res->status != STORE_OK) {
		req_add_header(sr, "Retry-After", "5");
		req_reply_oauth_error(sr, 503, "temporarily_unavailable",
		    "the client registry is unavailable right now; retry later");
		goto done;
	}
	ct = as_header(sr, "Content-Type");
	if (ct == NULL || strncasecmp(ct, "application/json", 16) != 0 ||
	    (ct[16] != '\0' && ct[16] != ';' && ct[16] != ' ')) {
		req_reply_oauth_error(sr, 400, "invalid_client_metadata",
		    "the registration request must be application/json");
		goto done;
	}
	if ((body = as_read_body(sr, DCR_MAX_BODY, &len)) == NULL) {
		req_reply_oauth_error(sr, 400, "invalid_client_metadata",
		    "the registration request exceeds 64 KiB");
		goto done;
	}
	if (dcr_validate(body, len, as->cfg, &rg->res) != 0) {
		log_info("client registration refused", LOG_S("error", rg->res.error),
		    LOG_S("reason", rg->res.desc));
		req_reply_oauth_error(sr, 400, rg->res.error, rg->res.desc);
		goto done;
	}
	free(body);
	rg->add = clients_add(as->clients, rg->res.client, reg_added, rg);
	return;
done:
	free(body);
	req_set_abort(sr, NULL, NULL);
	req_unref(sr);
	reg_free(rg);
}

void
register_handle(struct req *sr, void *arg)
{
	struct as *as = arg;
	struct reg *rg;

	if (!as_post_start(as, sr, AS_LIMIT_REGISTER))
		return;
	rg = xcalloc(1, sizeof *rg);
	rg->as = as;
	rg->sr = sr;
	req_ref(sr);
	req_set_abort(sr, reg_abort, rg);
	/* All registrations, on every replica: one bucket in the store. */
	rg->sop = store_rate_take(as->store, "register", as->cfg->eas.registration.rate_per_second,
	    as->cfg->eas.registration.burst, reg_rated, rg);
}
