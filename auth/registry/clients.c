/*
 * The client registry (see clients.h). DCR lookups complete synchronously
 * (the callback runs before clients_lookup() returns); CIMD lookups are
 * whatever the resolver makes of them. The registry never fetches anything
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

/* A CIMD lookup in flight: the resolver's handle and our caller. */
struct clients_lookup {
	struct cimd_lookup *cimd;
	clients_done_cb done;
	void *arg;
	bool finished;
};

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
	l->done(client, error_description, l->arg);
	free(l);
}

struct clients_lookup *
clients_lookup(struct clients *cl, const char *client_id, clients_done_cb done, void *arg)
{
	struct clients_lookup *l;
	struct cimd_lookup *cl_handle;
	struct client *c;

	if (client_id == NULL || *client_id == '\0') {
		done(NULL, "client_id is required", arg);
		return NULL;
	}
	if (cimd_is_url(client_id)) {
		if (cl->cimd == NULL) {
			done(NULL,
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
	c = store_client_get(cl->store, client_id);
	if (c == NULL) {
		if (strncasecmp(client_id, "http://", 7) == 0 ||
		    strncasecmp(client_id, "https://", 8) == 0)
			done(NULL,
			    "unknown client: a URL client_id names a client ID metadata document "
			    "and must be an https URL in lower case",
			    arg);
		else
			done(NULL, "unknown client", arg);
		return NULL;
	}
	c->last_used_ms = clock_mono_ms();
	done(c, NULL, arg);
	return NULL;
}

void
clients_cancel(struct clients_lookup *l)
{
	if (l == NULL)
		return;
	if (l->cimd != NULL)
		cimd_cancel(l->cimd);
	free(l);
}

enum clients_add_result
clients_add(struct clients *cl, struct client *c)
{
	size_t max = cl->cfg->eas.registration.max_clients;
	int64_t now = clock_mono_ms();

	while (store_client_count(cl->store) >= max) {
		if (!store_client_evict_idle(cl->store, now - CLIENTS_EVICT_GRACE_MS))
			return CLIENTS_FULL;
		metrics_add(cl->m_evicted, 1);
	}
	c->last_used_ms = now;
	store_client_put(cl->store, c);
	return CLIENTS_ADDED;
}

size_t
clients_count(struct clients *cl)
{
	return store_client_count(cl->store);
}
