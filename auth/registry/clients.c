/*
 * The client registry (see clients.h). DCR clients are a verb of the store
 * (on Redis: shared by every replica); CIMD lookups are whatever the
 * resolver makes of them. The registry never fetches anything
 * itself and never turns a failed CIMD resolution into a known client.
 */
#include "auth/registry/clients.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/cimd/cimd.h"
#include "auth/client/client.h"
#include "auth/store/store.h"
#include "common/clock.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "proxy/log.h"
#include "proxy/metrics.h"

struct clients {
	const struct config *cfg;
	struct store *store;
	struct cimd *cimd;
	struct metric *m_evicted;
};

/* A lookup or registration in flight: the resolver's or the store's
 * handle, and our caller. */
struct clients_lookup {
	struct clients *cl;
	struct cimd_lookup *cimd;
	struct store_op *sop;
	char *client_id;
	clients_done_cb done;
	clients_added_cb added;
	void *arg;
	bool finished;
};

static void
clients_lookup_free(struct clients_lookup *l)
{
	if (l->cimd != NULL)
		cimd_cancel(l->cimd);
	store_cancel(l->sop);
	free(l->client_id);
	free(l);
}

struct clients *
clients_new(const struct config *cfg, struct store *st, struct cimd *cimd)
{
	struct clients *cl = xcalloc(1, sizeof *cl);

	cl->cfg = cfg;
	cl->store = st;
	cl->cimd = cimd;
	cl->m_evicted = metrics_counter("mcp_oauth_dcr_clients_evicted_total",
	    "Registered (DCR) clients evicted because the registry was full.", "");
	return cl;
}

void
clients_free(struct clients *cl)
{
	free(cl);
}

static void
clients_cimd_done(struct client *client, const char *error_description, void *arg)
{
	struct clients_lookup *l = arg;

	l->finished = true;
	l->cimd = NULL;
	l->done(client, false, error_description, l->arg);
	free(l);
}

/* The unknown-client text for a client_id the store does not know. */
static const char *
clients_unknown(const char *client_id)
{
	if (strncasecmp(client_id, "http://", 7) == 0 || strncasecmp(client_id, "https://", 8) == 0)
		return "unknown client: a URL client_id names a client ID metadata document "
		       "and must be an https URL in lower case";
	return "unknown client";
}

static void
clients_store_done(struct store_result *res, void *arg)
{
	struct clients_lookup *l = arg;

	l->sop = NULL;
	if (res->status == STORE_OK) {
		res->client->last_used_ms = clock_mono_ms();
		l->done(res->client, false, NULL, l->arg);
	} else if (res->status == STORE_NOT_FOUND) {
		l->done(NULL, false, clients_unknown(l->client_id), l->arg);
	} else {
		log_warn("client lookup failed", LOG_S("store", store_status_text(res->status)));
		l->done(NULL, true, "the client registry is unavailable right now; try again later",
		    l->arg);
	}
	clients_lookup_free(l);
}

struct clients_lookup *
clients_lookup(struct clients *cl, const char *client_id, clients_done_cb done, void *arg)
{
	struct clients_lookup *l;
	struct cimd_lookup *cl_handle;

	if (client_id == NULL || *client_id == '\0') {
		done(NULL, false, "client_id is required", arg);
		return NULL;
	}
	if (cimd_is_url(client_id)) {
		if (cl->cimd == NULL) {
			done(NULL, false,
			    "unknown client: client ID metadata documents are not enabled "
			    "on this server",
			    arg);
			return NULL;
		}
		l = xcalloc(1, sizeof *l);
		l->done = done;
		l->arg = arg;
		cl_handle = cimd_resolve(cl->cimd, client_id, clients_cimd_done, l);
		if (cl_handle == NULL)
			return NULL; /* done ran and l is freed */
		l->cimd = cl_handle;
		return l;
	}
	if (strlen(client_id) > CLIENTS_MAX_ID_LEN) {
		done(NULL, false, clients_unknown(client_id), arg);
		return NULL;
	}
	l = xcalloc(1, sizeof *l);
	l->cl = cl;
	l->done = done;
	l->arg = arg;
	l->client_id = xstrdup(client_id);
	l->sop = store_client_get(cl->store, client_id, clients_store_done, l);
	return l;
}

void
clients_cancel(struct clients_lookup *l)
{
	if (l != NULL)
		clients_lookup_free(l);
}

static void
clients_put_done(struct store_result *res, void *arg)
{
	struct clients_lookup *l = arg;
	enum clients_add_result r;

	l->sop = NULL;
	if (res->evicted > 0)
		metrics_add(l->cl->m_evicted, res->evicted);
	if (res->status == STORE_OK)
		r = CLIENTS_ADDED;
	else if (res->status == STORE_FULL)
		r = CLIENTS_FULL;
	else
		r = CLIENTS_UNAVAILABLE;
	l->added(r, l->arg);
	clients_lookup_free(l);
}

struct clients_lookup *
clients_add(struct clients *cl, struct client *c, clients_added_cb done, void *arg)
{
	struct clients_lookup *l = xcalloc(1, sizeof *l);

	l->cl = cl;
	l->added = done;
	l->arg = arg;
	c->last_used_ms = clock_mono_ms();
	l->sop = store_client_put(cl->store, c, cl->cfg->eas.registration.max_clients,
	    CLIENTS_EVICT_GRACE_MS, clients_put_done, l);
	return l;
}

size_t
clients_count(struct clients *cl)
{
	return store_client_count(cl->store);
}
