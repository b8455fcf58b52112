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
	struct form f;
	struct store_pending *pending;
	struct upstream_op *op;
	struct store_op *sop;
	struct grant_op *gop;
	char *tsid;
	char *subject;
};

static void
callback_free(struct callback *cb)
{
	upstream_cancel(cb->op);
	store_cancel(cb->sop);
	grant_cancel(cb->gop);
	store_pending_free(cb->pending);
	form_dispose(&cb->f);
	free(cb->tsid);
	free(cb->subject);
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

/* Our state is not (or no longer) known: our own page, since without it
 * we do not know which client (if any) to return to. */
static void
callback_unknown_state(struct as *as, struct req *sr)
{
	metrics_add(as->m_callback, 1, "unknown_state");
	as_error_page(sr, 400, "invalid_request",
	    "the authorization is unknown, expired or already completed; start again from your "
	    "application");
}

/* The login could not be recorded: back to the client, to retry. */
static void
callback_store_failed(struct callback *cb, enum store_status status)
{
	struct store_pending *p = cb->pending;

	metrics_add(cb->as->m_callback, 1, status == STORE_FULL ? "store_full" : "store_error");
	log_error("login not completed", LOG_S("client_id", p->client_id),
	    LOG_S("store", store_status_text(status)));
	as_redirect_error(cb->as, cb->sr, p->redirect_uri, p->state, "temporarily_unavailable",
	    status == STORE_FULL
		? "the authorization server cannot record more logins right now; try again later"
		: "the authorization server's storage is unavailable right now; try again later");
	callback_finish(cb);
}

static void
callback_code_issued(char *code, enum store_status status, void *arg)
{
	struct callback *cb = arg;
	struct as *as = cb->as;
	struct store_pending *p = cb->pending;
	struct form_builder fb = { 0 };

	cb->gop = NULL;
	if (code == NULL) {
		callback_store_failed(cb, status);
		return;
	}
	log_info("user authenticated upstream", LOG_S("client_id", p->client_id),
	    LOG_S("sub", cb->subject), LOG_S("scope", p->scope));
	metrics_add(as->m_callback, 1, "ok");
	form_add(&fb, "code", code);
	form_add(&fb, "state", p->state);
	form_add(&fb, "iss", as->issuer);
	as_redirect(cb->sr, 303, p->redirect_uri, &fb);
	xfree_secret(code);
	callback_finish(cb);
}

static void
callback_session_stored(struct store_result *res, void *arg)
{
	struct callback *cb = arg;
	struct grant_op *gop;

	cb->sop = NULL;
	if (res->status != STORE_OK) {
		callback_store_failed(cb, res->status);
		return;
	}
	gop = grant_code_issue(cb->as->grant, cb->pending, cb->tsid, cb->subject,
	    callback_code_issued, cb);
	if (gop != NULL)
		cb->gop = gop;
}

static void
callback_exchanged(struct store_upstream *tokens, const char *error, void *arg)
{
	struct callback *cb = arg;
	struct as *as = cb->as;
	struct store_pending *p = cb->pending;

	cb->op = NULL;
	if (tokens == NULL) {
		metrics_add(as->m_callback, 1, "exchange_failed");
		log_warn("upstream code exchange failed", LOG_S("client_id", p->client_id),
		    LOG_S("error", error));
		as_redirect_error(as, cb->sr, p->redirect_uri, p->state, "access_denied", error);
		callback_finish(cb);
		return;
	}
	cb->tsid = random_token(32);
	cb->subject = xstrdup(tokens->subject);
	cb->sop = store_upstream_put(as->store, cb->tsid, tokens,
	    as->cfg->eas.token_lifespans.refresh_token_ms > 0
		? as->cfg->eas.token_lifespans.refresh_token_ms
		: 7 * 86400 * 1000LL,
	    callback_session_stored, cb);
}

/* Our state is spent: check the IdP's answer and exchange its code. */
static void
callback_taken(struct store_result *res, void *arg)
{
	struct callback *cb = arg;
	struct as *as = cb->as;
	struct req *sr = cb->sr;
	struct store_pending *p;
	const char *code, *error, *iss, *want;
	char desc[160];
	struct upstream_op *op;

	cb->sop = NULL;
	if (res->status == STORE_FULL || res->status == STORE_UNAVAILABLE) {
		metrics_add(as->m_callback, 1, "store_error");
		req_add_header(sr, "Retry-After", "5");
		as_error_page(sr, 503, "temporarily_unavailable",
		    "the authorization server's storage is unavailable; reload this page in a "
		    "moment");
		callback_finish(cb);
		return;
	}
	if (res->status != STORE_OK) {
		callback_unknown_state(as, sr);
		callback_finish(cb);
		return;
	}
	p = cb->pending = res->pending;
	res->pending = NULL;
	error = form_get(&cb->f, "error");
	code = form_get(&cb->f, "code");
	iss = form_get(&cb->f, "iss");
	want = upstream_issuer(as->upstream);
	if (iss != NULL && want != NULL && strcmp(iss, want) != 0) {
		/* RFC 9207: a response from another issuer is a mix-up attack. */
		metrics_add(as->m_callback, 1, "wrong_issuer");
		as_redirect_error(as, sr, p->redirect_uri, p->state, "access_denied",
		    "the identity provider's response came from an unexpected issuer");
		callback_finish(cb);
		return;
	}
	if (error != NULL || code == NULL) {
		metrics_add(as->m_callback, 1, "denied");
		log_info("upstream denied the authorization", LOG_S("client_id", p->client_id),
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
		callback_finish(cb);
		return;
	}
	if (strlen(code) > 4096) {
		as_redirect_error(as, sr, p->redirect_uri, p->state, "access_denied",
		    "the identity provider returned an oversized code");
		callback_finish(cb);
		return;
	}
	op = upstream_exchange(as->upstream, code, p->upstream_verifier, p->nonce,
	    callback_exchanged, cb);
	if (op != NULL)
		cb->op = op;
}

void
callback_handle(struct req *sr, void *arg)
{
	struct as *as = arg;
	struct callback *cb;
	const char *state;
	char err[160];

	if (strcmp(as_method(sr), "GET") != 0) {
		req_add_header(sr, "Allow", "GET");
		as_error_page(sr, 405, "invalid_request", "use GET");
		return;
	}
	cb = xcalloc(1, sizeof *cb);
	cb->as = as;
	cb->sr = sr;
	if (as_read_params(sr, true, CALLBACK_MAX_PARAMS_SIZE, &cb->f, err, sizeof err) != 0) {
		metrics_add(as->m_callback, 1, "bad_request");
		as_error_page(sr, 400, "invalid_request", err);
		callback_free(cb);
		return;
	}
	state = form_get(&cb->f, "state");
	if (state == NULL || strlen(state) > 256) {
		callback_unknown_state(as, sr);
		callback_free(cb);
		return;
	}
	req_ref(sr);
	req_set_abort(sr, callback_abort, cb);
	cb->sop = store_pending_take(as->store, state, callback_taken, cb);
}
