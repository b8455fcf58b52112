/*
 * GET /oauth/callback: the upstream IdP sends the user back here. Our state
 * is single use; an unknown or expired one gets our own 400 page, since
 * without it we do not know which client (if any) to return to. Upstream
 * errors go back to the client as access_denied. The code exchange runs on
 * the fetcher; the upstream tokens are stored under a new session id (tsid)
 * and the client receives our own authorization code by a 303.
 */
#include <stdlib.h>
#include <string.h>

#include "auth/as/as_private.h"
#include "auth/client/client.h"
#include "auth/as/grant.h"
#include "common/random.h"
#include "auth/store/store.h"
#include "auth/idp/upstream.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "proxy/log.h"
#include "proxy/metrics.h"
#include "proxy/req.h"

#define CALLBACK_MAX_PARAMS_SIZE (16 * 1024)

struct callback {
	struct as *as;
	struct req *sr;
	struct store_pending *pending;
	struct upstream_op *op;
};

static void
callback_free(struct callback *cb)
{
	upstream_cancel(cb->op);
	store_pending_free(cb->pending);
	free(cb);
}

static void
callback_finish(struct callback *cb)
{
	req_set_abort(cb->sr, NULL, NULL);
	req_unref(cb->sr);
	callback_free(cb);
}

static void
callback_abort(struct req *sr, void *arg)
{
	req_unref(sr);
	callback_free(arg);
}

static void
callback_exchanged(struct store_upstream *tokens, const char *error, void *arg)
{
	struct callback *cb = arg;
	struct as *as = cb->as;
	struct store_pending *p = cb->pending;
	struct form_builder fb = { 0 };
	char *tsid, *code, *subject;

	cb->op = NULL;
	if (tokens == NULL) {
		metrics_add(as->m_callback, 1, "exchange_failed");
		log_warn("upstream code exchange failed", LOG_S("client_id", p->client->client_id),
		    LOG_S("error", error));
		as_redirect_error(as, cb->sr, p->redirect_uri, p->state, "access_denied", error);
		callback_finish(cb);
		return;
	}
	tsid = random_token(32);
	subject = xstrdup(tokens->subject);
	if (!store_upstream_put(as->store, tsid, tokens,
		as->cfg->eas.token_lifespans.refresh_token_ms > 0
		    ? as->cfg->eas.token_lifespans.refresh_token_ms
		    : 7 * 86400 * 1000LL) ||
	    (code = grant_code_issue(as->grant, p, tsid, subject)) == NULL) {
		metrics_add(as->m_callback, 1, "store_full");
		log_error("the store is full: login not completed",
		    LOG_S("client_id", p->client->client_id));
		as_redirect_error(as, cb->sr, p->redirect_uri, p->state, "temporarily_unavailable",
		    "the authorization server cannot record more logins right now; try again "
		    "later");
		free(tsid);
		free(subject);
		callback_finish(cb);
		return;
	}
	log_info("user authenticated upstream", LOG_S("client_id", p->client->client_id),
	    LOG_S("sub", subject), LOG_S("scope", p->scope));
	metrics_add(as->m_callback, 1, "ok");
	form_add(&fb, "code", code);
	form_add(&fb, "state", p->state);
	form_add(&fb, "iss", as->issuer);
	as_redirect(cb->sr, 303, p->redirect_uri, &fb);
	xfree_secret(code);
	free(tsid);
	free(subject);
	callback_finish(cb);
}

void
callback_handle(struct req *sr, void *arg)
{
	struct as *as = arg;
	struct callback *cb;
	struct form f;
	struct store_pending *p;
	const char *state, *code, *error, *iss, *want;
	char err[160], desc[160];
	struct upstream_op *op;

	if (strcmp(as_method(sr), "GET") != 0) {
		req_add_header(sr, "Allow", "GET");
		as_error_page(sr, 405, "invalid_request", "use GET");
		return;
	}
	if (as_read_params(sr, true, CALLBACK_MAX_PARAMS_SIZE, &f, err, sizeof err) != 0) {
		metrics_add(as->m_callback, 1, "bad_request");
		as_error_page(sr, 400, "invalid_request", err);
		return;
	}
	state = form_get(&f, "state");
	if (state == NULL || strlen(state) > 256 ||
	    (p = store_pending_take(as->store, state)) == NULL) {
		metrics_add(as->m_callback, 1, "unknown_state");
		as_error_page(sr, 400, "invalid_request",
		    "the authorization is unknown, expired or already completed; start again "
		    "from your application");
		form_dispose(&f);
		return;
	}
	error = form_get(&f, "error");
	code = form_get(&f, "code");
	iss = form_get(&f, "iss");
	want = upstream_issuer(as->upstream);
	if (iss != NULL && want != NULL && strcmp(iss, want) != 0) {
		/* RFC 9207: a response from another issuer is a mix-up attack. */
		metrics_add(as->m_callback, 1, "wrong_issuer");
		as_redirect_error(as, sr, p->redirect_uri, p->state, "access_denied",
		    "the identity provider's response came from an unexpected issuer");
		goto done;
	}
	if (error != NULL || code == NULL) {
		metrics_add(as->m_callback, 1, "denied");
		log_info("upstream denied the authorization",
		    LOG_S("client_id", p->client->client_id),
		    LOG_S("error", error != NULL ? error : "(no code)"));
		snprintf(desc, sizeof desc,
		    "the identity provider did not authorize the request "
		    "(%.48s)",
		    error != NULL ? error : "no code returned");
		for (char *c = desc; *c != '\0'; c++) {
			if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
				*c = '?';
		}
		as_redirect_error(as, sr, p->redirect_uri, p->state, "access_denied", desc);
		goto done;
	}
	if (strlen(code) > 4096) {
		as_redirect_error(as, sr, p->redirect_uri, p->state, "access_denied",
		    "the identity provider returned an oversized code");
		goto done;
	}
	cb = xcalloc(1, sizeof *cb);
	cb->as = as;
	cb->sr = sr;
	cb->pending = p;
	req_ref(sr);
	req_set_abort(sr, callback_abort, cb);
	op = upstream_exchange(as->upstream, code, p->upstream_verifier, p->nonce,
	    callback_exchanged, cb);
	if (op != NULL)
		cb->op = op;
	form_dispose(&f);
	return;
done:
	store_pending_free(p);
	form_dispose(&f);
}
