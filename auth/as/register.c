/*
 * POST /oauth/register: RFC 7591 dynamic client registration. The metadata
 * rules are dcr.c; here are the HTTP side and the abuse limits: JSON only,
 * a bounded body, a token-bucket rate limit (429 + Retry-After) and the
 * registry's capacity (idle clients evicted, else 503). The client secret of
 * a confidential client appears in this one response and nowhere else.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/as/as_private.h"
#include "auth/client/client.h"
#include "auth/registry/clients.h"
#include "auth/registry/dcr.h"
#include "common/clock.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "proxy/log.h"
#include "proxy/req.h"

/* Take one token from the registration bucket; false (and the seconds to
 * wait) when empty. */
static bool
register_rate_ok(struct as *as, int *retry_after)
{
	double rate = as->cfg->eas.registration.rate_per_second;
	double burst = as->cfg->eas.registration.burst;
	int64_t now = clock_mono_ms();

	if (rate <= 0)
		return true;
	if (as->reg_refill_ms != 0) {
		as->reg_tokens += (double)(now - as->reg_refill_ms) / 1000.0 * rate;
		if (as->reg_tokens > burst)
			as->reg_tokens = burst;
	}
	as->reg_refill_ms = now;
	if (as->reg_tokens >= 1.0) {
		as->reg_tokens -= 1.0;
		return true;
	}
	*retry_after = (int)ceil((1.0 - as->reg_tokens) / rate);
	if (*retry_after < 1)
		*retry_after = 1;
	return false;
}

void
register_handle(struct req *sr, void *arg)
{
	struct as *as = arg;
	struct dcr_result res = { 0 };
	const char *ct;
	char *body = NULL, *json = NULL, ra[16];
	size_t len;
	int retry;

	if (as_preflight(sr, "POST, OPTIONS"))
		return;
	as_cors(sr);
	if (strcmp(as_method(sr), "POST") != 0) {
		req_add_header(sr, "Allow", "POST, OPTIONS");
		req_reply_oauth_error(sr, 405, "invalid_request", "use POST");
		goto out;
	}
	if (!register_rate_ok(as, &retry)) {
		snprintf(ra, sizeof ra, "%d", retry);
		req_add_header(sr, "Retry-After", ra);
		req_reply_oauth_error(sr, 429, "too_many_requests",
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
	if (clients_add(as->clients, res.client) == CLIENTS_FULL) {
		log_warn("client registration refused: registry full",
		    LOG_I("max_clients", as->cfg->eas.registration.max_clients));
		req_add_header(sr, "Retry-After", "60");
		req_reply_oauth_error(sr, 503, "temporarily_unavailable",
		    "the client registry is full; retry later");
		goto out;
	}
	log_info("client registered", LOG_S("client_id", res.client->client_id),
	    LOG_S("auth_method", res.client->token_endpoint_auth_method),
	    LOG_I("redirect_uris", res.client->redirect_uris.n));
	json = dcr_response_json(res.client, res.client_secret);
	req_reply_json(sr, 201, json);
out:
	xfree_secret(json);
	free(body);
	dcr_result_dispose(&res);
}
