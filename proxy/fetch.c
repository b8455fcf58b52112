/*
 * The fetcher (see fetch.h): one curl multi handle on the libevent loop.
 * curl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION, one event
 * per socket, stored with curl_multi_assign) and when to wake it
 * (CURLMOPT_TIMERFUNCTION, one timer); the loop calls it back through
 * curl_multi_socket_action and we drain curl_multi_info_read afterwards.
 * We never call into libcurl from inside its own callbacks, and never call
 * a user's callback from inside libcurl either: finished transfers go to a
 * queue that a separate loop event delivers, so a done callback may start
 * or cancel fetches freely.
 *
 * Security: the SSRF guard runs in CURLOPT_OPENSOCKETFUNCTION on the
 * address curl is about to connect to, after DNS, so a name that resolves
 * (or re-resolves) to a special-use address is refused whatever notation
 * or DNS trick produced it. Untrusted transfers never reuse a connection
 * and never leave one behind (a connection opened by a trusted fetch would
 * skip the guard), and never go through a proxy.
 *
 * Trust: one X509_STORE, built once in fetcher_new from the system bundle
 * plus the operator's extra CA file, is handed to every TLS connection
 * (CURLOPT_SSL_CTX_FUNCTION). libcurl would otherwise re-read and re-parse
 * the CA files for every connection, on the loop (Debian's libcurl also
 * sets a default CApath, which disables its own CA cache).
 */
#include "proxy/fetch.h"

#include <sys/queue.h>
#include <sys/socket.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <inttypes.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/clock.h"
#include "common/xalloc.h"
#include "common/xevent.h"
#include "proxy/log.h"
#include "proxy/metrics.h"
#include "proxy/netguard.h"

#define FETCH_USER_AGENT "mcp-proxy-runner/" MCP_VERSION

enum fetch_state {
	FETCH_RUNNING,    /* in the multi handle */
	FETCH_QUEUED,     /* finished, waiting for delivery */
	FETCH_DELIVERING, /* its done callback is running */
};

struct fetch_sock {
	LIST_ENTRY(fetch_sock) entry;
	struct fetcher *f;
	struct event *ev;
};

struct fetch {
	struct fetcher *f;
	TAILQ_ENTRY(fetch) entry;
	enum fetch_state state;
	CURL *easy;
	struct curl_slist *headers;
	struct fetch_policy policy;
	char *policy_name;
	bool conditional;        /* the request carried If-None-Match/If-Modified-Since */
	bool http_loopback_only; /* trusted http: connect to loopback only */
	bool blocked;            /* the guard refused an address */
	const char *blocked_why;
	bool too_large;
	char *body;
	size_t body_len;
	size_t body_cap;
	int64_t start_us;
	fetch_done_cb done;
	void *arg;

	struct fetch_result res;
	char *hdr[7];
	char error_text[256];
	char curl_err[CURL_ERROR_SIZE];
};

TAILQ_HEAD(fetch_list, fetch);

struct fetcher {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;   /* curl's timeout */
	struct event *deliver; /* runs queued done callbacks */
	char *ca_file;
	X509_STORE *store; /* system bundle + ca_file; NULL: libcurl's own CA handling */
	struct fetch_list running;
	struct fetch_list queued;
	size_t n_running;
	LIST_HEAD(, fetch_sock) socks;
};

static const char *const fetch_error_names[] = {
	[FETCH_OK] = "ok",
	[FETCH_ERR_TIMEOUT] = "timeout",
	[FETCH_ERR_TOO_LARGE] = "too_large",
	[FETCH_ERR_BAD_STATUS] = "bad_status",
	[FETCH_ERR_REDIRECT_REFUSED] = "redirect_refused",
	[FETCH_ERR_BLOCKED_ADDRESS] = "blocked_address",
	[FETCH_ERR_TLS] = "tls",
	[FETCH_ERR_DNS] = "dns",
	[FETCH_ERR_CONNECT] = "connect",
	[FETCH_ERR_CONTENT_TYPE] = "content_type",
	[FETCH_ERR_BAD_URL] = "bad_url",
	[FETCH_ERR_INTERNAL] = "internal",
	[FETCH_ERR_CANCELLED] = "cancelled",
};

const char *
fetch_error_name(enum fetch_error e)
{
	if ((size_t)e >= sizeof fetch_error_names / sizeof fetch_error_names[0])
		return "internal";
	return fetch_error_names[e];
}

void
fetch_policy_init(struct fetch_policy *p, bool untrusted)
{
	memset(p, 0, sizeof *p);
	p->untrusted = untrusted;
	p->timeout_ms = untrusted ? FETCH_UNTRUSTED_TIMEOUT_MS : FETCH_TRUSTED_TIMEOUT_MS;
	p->connect_timeout_ms = FETCH_CONNECT_TIMEOUT_MS;
	p->max_size = untrusted ? FETCH_UNTRUSTED_MAX_SIZE : FETCH_TRUSTED_MAX_SIZE;
}

int
fetcher_check_async_dns(char *err, size_t errlen)
{
	const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);

	if (v == NULL || (v->features & CURL_VERSION_ASYNCHDNS) == 0) {
		snprintf(err, errlen,
		    "libcurl %s resolves host names synchronously (no AsynchDNS): it would block "
		    "the event loop; use a libcurl built with the threaded resolver or c-ares",
		    v != NULL ? v->version : "(unknown)");
		return -1;
	}
	return 0;
}

static void
fetch_record(const struct fetch *fe, enum fetch_error e)
{
	struct metric *total = metrics_counter("mcp_proxy_fetch_total",
	    "Outbound HTTP fetches by policy and outcome.", "policy,outcome");

	metrics_add(total, 1, fe->policy_name, fetch_error_name(e));
	if (e == FETCH_ERR_CANCELLED)
		return;
	metrics_observe(metrics_histogram("mcp_proxy_fetch_duration_seconds",
			    "Outbound HTTP fetch duration by policy.", "policy", NULL, 0),
	    (double)fe->res.elapsed_ms / 1000.0, fe->policy_name);
}

/* Release everything a fetch owns; it must be out of the multi and lists. */
static void
fetch_free(struct fetch *fe)
{
	size_t i;

	if (fe->easy != NULL)
		curl_easy_cleanup(fe->easy);
	curl_slist_free_all(fe->headers);
	for (i = 0; i < sizeof fe->hdr / sizeof fe->hdr[0]; i++)
		free(fe->hdr[i]);
	free(fe->body);
	free(fe->policy_name);
	free(fe);
}

/* Deliver finished fetches, one done callback each, outside libcurl. */
static void
fetch_deliver_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fetcher *f = arg;
	struct fetch *fe;

	while ((fe = TAILQ_FIRST(&f->queued)) != NULL) {
		TAILQ_REMOVE(&f->queued, fe, entry);
		fe->state = FETCH_DELIVERING;
		fetch_record(fe, fe->res.error);
		fe->done(&fe->res, fe->arg);
		fetch_free(fe);
	}
}

/* Move a fetch (already out of the multi) to the delivery queue. */
static void
fetch_queue(struct fetch *fe)
{
	struct fetcher *f = fe->f;

	fe->state = FETCH_QUEUED;
	if (fe->res.error_text == NULL)
		fe->res.error_text = fe->error_text;
	if (fe->res.body == NULL)
		fe->res.body = "";
	TAILQ_INSERT_TAIL(&f->queued, fe, entry);
	event_active(f->deliver, EV_TIMEOUT, 0);
}

static void
fetch_fail_early(struct fetch *fe, enum fetch_error e, const char *text)
{
	fe->res.error = e;
	snprintf(fe->error_text, sizeof fe->error_text, "%s", text);
	fetch_queue(fe);
}

/* application/json or application/<x>+json, parameters allowed. */
static bool
fetch_is_json(const char *ct)
{
	size_t n, sub;

	if (ct == NULL)
		return false;
	ct += strspn(ct, " \t");
	n = strcspn(ct, "; \t");
	if (n == 16 && strncasecmp(ct, "application/json", 16) == 0)
		return true;
	if (n < 12 || strncasecmp(ct, "application/", 12) != 0)
		return false;
	sub = n - 12;
	return sub > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0;
}

/* A copy of a response header of the final response, repeated lines joined. */
static char *
fetch_header(CURL *easy, const char *name)
{
	struct curl_header *h;
	char *out = NULL, *joined;
	size_t i, amount;

	if (curl_easy_header(easy, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK)
		return NULL;
	amount = h->amount;
	out = xstrdup(h->value);
	for (i = 1; i < amount; i++) {
		if (curl_easy_header(easy, name, i, CURLH_HEADER, -1, &h) != CURLHE_OK)
			break;
		joined = xasprintf("%s, %s", out, h->value);
		free(out);
		out = joined;
	}
	return out;
}

static bool
fetch_is_tls_error(CURLcode code)
{
	switch (code) {
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_SSL_SHUTDOWN_FAILED:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CLIENTCERT:
	case CURLE_USE_SSL_FAILED:
		return true;
	default:
		return false;
	}
}

/* Turn curl's verdict and the response into the caller's result. */
static void
fetch_classify(struct fetch *fe, CURLcode code)
{
	struct fetch_result *r = &fe->res;
	char *ct = NULL;
	long status = 0;

	curl_easy_getinfo(fe->easy, CURLINFO_RESPONSE_CODE, &status);
	r->status = status;
	if (status != 0) {
		fe->hdr[0] = ct = fetch_header(fe->easy, "Content-Type");
		fe->hdr[1] = fetch_header(fe->easy, "Cache-Control");
		fe->hdr[2] = fetch_header(fe->easy, "Expires");
		fe->hdr[3] = fetch_header(fe->easy, "ETag");
		fe->hdr[4] = fetch_header(fe->easy, "Last-Modified");
		fe->hdr[5] = fetch_header(fe->easy, "Age");
		fe->hdr[6] = fetch_header(fe->easy, "Date");
		r->content_type = fe->hdr[0];
		r->cache_control = fe->hdr[1];
		r->expires = fe->hdr[2];
		r->etag = fe->hdr[3];
		r->last_modified = fe->hdr[4];
		r->age = fe->hdr[5];
		r->date = fe->hdr[6];
	}
	r->body = fe->body != NULL ? fe->body : "";
	r->body_len = fe->body_len;

	if (code == CURLE_OK) {
		r->error = FETCH_OK;
		if (!fe->policy.untrusted)
			return;
		if (status == 304 && fe->conditional)
			return;
		if (status >= 300 && status < 400 && status != 304) {
			r->error = FETCH_ERR_REDIRECT_REFUSED;
			snprintf(fe->error_text, sizeof fe->error_text,
			    "the server answered with a redirect (HTTP %ld); redirects are not "
			    "followed",
			    status);
		} else if (status != 200) {
			r->error = FETCH_ERR_BAD_STATUS;
			snprintf(fe->error_text, sizeof fe->error_text,
			    "the server answered HTTP %ld", status);
		} else if (!fetch_is_json(ct)) {
			r->error = FETCH_ERR_CONTENT_TYPE;
			snprintf(fe->error_text, sizeof fe->error_text,
			    "the content type %.64s%s%s is not JSON", ct ? "\"" : "",
			    ct ? ct : "(none)", ct ? "\"" : "");
		}
		return;
	}

	if (fe->too_large || code == CURLE_FILESIZE_EXCEEDED) {
		r->error = FETCH_ERR_TOO_LARGE;
		snprintf(fe->error_text, sizeof fe->error_text,
		    "the response is larger than the limit of %" PRIu64 " bytes",
		    fe->policy.max_size);
	} else if (fe->blocked && code == CURLE_COULDNT_CONNECT) {
		r->error = FETCH_ERR_BLOCKED_ADDRESS;
		snprintf(fe->error_text, sizeof fe->error_text,
		    "the host resolves to a %s address, which may not be fetched", fe->blocked_why);
	} else if (code == CURLE_OPERATION_TIMEDOUT) {
		r->error = FETCH_ERR_TIMEOUT;
		snprintf(fe->error_text, sizeof fe->error_text,
		    "no complete response within %" PRId64 " ms", fe->policy.timeout_ms);
	} else if (code == CURLE_COULDNT_RESOLVE_HOST || code == CURLE_COULDNT_RESOLVE_PROXY) {
		r->error = FETCH_ERR_DNS;
		snprintf(fe->error_text, sizeof fe->error_text,
		    "the host name could not be resolved");
	} else if (code == CURLE_COULDNT_CONNECT) {
		r->error = FETCH_ERR_CONNECT;
		snprintf(fe->error_text, sizeof fe->error_text, "could not connect to the server");
	} else if (fetch_is_tls_error(code)) {
		r->error = FETCH_ERR_TLS;
		snprintf(fe->error_text, sizeof fe->error_text,
		    "the TLS handshake or certificate verification failed");
	} else if (code == CURLE_URL_MALFORMAT || code == CURLE_UNSUPPORTED_PROTOCOL) {
		r->error = FETCH_ERR_BAD_URL;
		snprintf(fe->error_text, sizeof fe->error_text, "the URL cannot be fetched");
	} else if (code == CURLE_SEND_ERROR || code == CURLE_RECV_ERROR ||
	    code == CURLE_GOT_NOTHING || code == CURLE_PARTIAL_FILE || code == CURLE_HTTP2 ||
	    code == CURLE_HTTP2_STREAM || code == CURLE_WEIRD_SERVER_REPLY) {
		r->error = FETCH_ERR_CONNECT;
		snprintf(fe->error_text, sizeof fe->error_text,
		    "the connection to the server failed before a complete response");
	} else {
		r->error = FETCH_ERR_INTERNAL;
		snprintf(fe->error_text, sizeof fe->error_text, "the fetch failed");
	}
}

/* A transfer curl reported done: take it out of the multi and queue it. */
static void
fetch_complete(struct fetcher *f, struct fetch *fe, CURLcode code)
{
	curl_multi_remove_handle(f->multi, fe->easy);
	TAILQ_REMOVE(&f->running, fe, entry);
	f->n_running--;
	fe->res.elapsed_ms = (clock_mono_us() - fe->start_us) / 1000;
	fetch_classify(fe, code);
	log_debug("fetch done", LOG_S("policy", fe->policy_name),
	    LOG_S("outcome", fetch_error_name(fe->res.error)), LOG_I("status", fe->res.status),
	    LOG_I("ms", fe->res.elapsed_ms), LOG_S("curl_error", fe->curl_err));
	fetch_queue(fe);
}

static void
fetch_check_info(struct fetcher *f)
{
	struct fetch *fe;
	CURLMsg *msg;
	CURLcode code;
	CURL *easy;
	char *priv;
	int left;

	while ((msg = curl_multi_info_read(f->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		easy = msg->easy_handle;
		code = msg->data.result;
		priv = NULL;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
		fe = (struct fetch *)(void *)priv;
		if (fe != NULL)
			fetch_complete(f, fe, code);
	}
}

static void
fetch_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fetch_sock *fs = arg;
	struct fetcher *f = fs->f;
	int flags = 0, running;

	if (what & EV_READ)
		flags |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		flags |= CURL_CSELECT_OUT;
	/* fs may be freed by the socket callback inside this call. */
	curl_multi_socket_action(f->multi, fd, flags, &running);
	fetch_check_info(f);
}

static void
fetch_timer_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fetcher *f = arg;
	int running;

	curl_multi_socket_action(f->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	fetch_check_info(f);
}

/* CURLMOPT_SOCKETFUNCTION: watch s for what curl asks, one event per socket. */
static int
fetch_socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct fetcher *f = userp;
	struct fetch_sock *fs = socketp;
	short kind = EV_PERSIST;

	if (what == CURL_POLL_REMOVE) {
		if (fs != NULL) {
			LIST_REMOVE(fs, entry);
			if (fs->ev != NULL)
				event_free(fs->ev);
			free(fs);
		}
		return 0;
	}
	if (fs == NULL) {
		fs = xcalloc(1, sizeof *fs);
		fs->f = f;
		LIST_INSERT_HEAD(&f->socks, fs, entry);
		curl_multi_assign(f->multi, s, fs);
	} else if (fs->ev != NULL)
		event_free(fs->ev);
	if (what & CURL_POLL_IN)
		kind |= EV_READ;
	if (what & CURL_POLL_OUT)
		kind |= EV_WRITE;
	fs->ev = xevent_new(f->base, s, kind, fetch_event_cb, fs);
	if (fs->ev == NULL || event_add(fs->ev, NULL) != 0) {
		log_error("fetch: cannot watch a socket", LOG_I("fd", s));
		return -1;
	}
	return 0;
}

/* CURLMOPT_TIMERFUNCTION: -1 deletes the timer, 0 means "as soon as possible". */
static int
fetch_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct fetcher *f = userp;
	struct timeval tv;

	if (timeout_ms < 0) {
		evtimer_del(f->timer);
		return 0;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	return evtimer_add(f->timer, &tv) == 0 ? 0 : -1;
}

/* CURLOPT_WRITEFUNCTION: collect the body, aborting the moment it passes the cap. */
static size_t
fetch_write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct fetch *fe = arg;
	size_t n = size * nmemb, want;

	if (n > fe->policy.max_size - fe->body_len) {
		fe->too_large = true;
		return 0;
	}
	if (fe->body_len + n + 1 > fe->body_cap) {
		want = fe->body_cap != 0 ? fe->body_cap : 1024;
		while (want < fe->body_len + n + 1)
			want *= 2;
		if (fe->policy.max_size < SIZE_MAX && want > fe->policy.max_size + 1)
			want = (size_t)fe->policy.max_size + 1;
		fe->body = xrealloc(fe->body, want);
		fe->body_cap = want;
	}
	memcpy(fe->body + fe->body_len, data, n);
	fe->body_len += n;
	fe->body[fe->body_len] = '\0';
	return n;
}

/* CURLOPT_OPENSOCKETFUNCTION: the SSRF guard, on the address about to be connected. */
static curl_socket_t
fetch_opensocket_cb(void *arg, curlsocktype purpose, struct curl_sockaddr *addr)
{
	struct fetch *fe = arg;
	const char *why = NULL;
	bool refuse = false;

	if (purpose != CURLSOCKTYPE_IPCXN)
		return CURL_SOCKET_BAD;
	if ((addr->family == AF_INET && addr->addrlen < sizeof(struct sockaddr_in)) ||
	    (addr->family == AF_INET6 && addr->addrlen < sizeof(struct sockaddr_in6))) {
		refuse = true;
		why = "malformed";
	} else if (fe->policy.untrusted)
		refuse = netguard_is_special(&addr->addr, fe->policy.allow_loopback, &why);
	else if (fe->http_loopback_only && !netguard_is_loopback(&addr->addr)) {
		refuse = true;
		why = "non-loopback (plain http is allowed to loopback only)";
	}
	if (refuse) {
		fe->blocked = true;
		fe->blocked_why = why;
		return CURL_SOCKET_BAD;
	}
	return socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

/* CURLOPT_SSL_CTX_FUNCTION: trust the fetcher's shared store. */
static CURLcode
fetch_sslctx_cb(CURL *easy, void *sslctx, void *arg)
{
	struct fetcher *f = arg;

	SSL_CTX_set1_cert_store(sslctx, f->store);
	return CURLE_OK;
}

/*
 * Load the system bundle libcurl would use plus ca_file into one store.
 * Only for libcurl on OpenSSL (the SSL_CTX callback hands us its SSL_CTX);
 * elsewhere libcurl's CAINFO handling is used. -1 when ca_file is unusable.
 */
static int
fetch_build_store(struct fetcher *f)
{
	const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
	char *system_bundle = NULL;
	CURL *probe;
	int rc = -1;

	if (v->ssl_version == NULL || strncmp(v->ssl_version, "OpenSSL/", 8) != 0)
		return 0;
	probe = curl_easy_init();
	if (probe == NULL)
		return -1;
	curl_easy_getinfo(probe, CURLINFO_CAINFO, &system_bundle);
	f->store = X509_STORE_new();
	if (f->store == NULL)
		goto out;
	if (system_bundle != NULL && X509_STORE_load_file(f->store, system_bundle) != 1) {
		log_warn("fetch: cannot load the system CA bundle; only outbound.caFile is trusted",
		    LOG_S("file", system_bundle));
		ERR_clear_error();
	}
	if (f->ca_file != NULL && X509_STORE_load_file(f->store, f->ca_file) != 1) {
		log_error("fetch: cannot load the CA file", LOG_S("file", f->ca_file));
		ERR_clear_error();
		goto out;
	}
	/* As libcurl does: a configured intermediate may be a trust anchor. */
	X509_STORE_set_flags(f->store, X509_V_FLAG_PARTIAL_CHAIN);
	rc = 0;
out:
	curl_easy_cleanup(probe);
	return rc;
}

/* A URL's scheme and host as the policy sees them; 0 when the URL may be tried. */
static int
fetch_check_url(struct fetch *fe, const char *url, const char **why)
{
	struct sockaddr_storage ss;
	char *scheme = NULL, *host = NULL;
	CURLU *u;
	int rc = -1;

	*why = "the URL is malformed";
	u = curl_url();
	if (u == NULL) {
		*why = "out of memory";
		return -1;
	}
	if (url == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
		goto out;
	if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
		goto out;
	if (strcasecmp(scheme, "https") == 0) {
		rc = 0;
		goto out;
	}
	if (fe->policy.untrusted) {
		*why = "only https URLs may be fetched";
		goto out;
	}
	if (strcasecmp(scheme, "http") != 0 || !fe->policy.allow_http_loopback) {
		*why = "only https URLs may be fetched (http only to loopback, when allowed)";
		goto out;
	}
	if (strcasecmp(host, "localhost") != 0 &&
	    (netguard_parse(host, &ss) != 0 || !netguard_is_loopback((struct sockaddr *)&ss))) {
		*why = "plain http is allowed to a loopback host only";
		goto out;
	}
	fe->http_loopback_only = true;
	rc = 0;
out:
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return rc;
}

static bool
fetch_is_conditional(const char *line)
{
	return strncasecmp(line, "If-None-Match:", 14) == 0 ||
	    strncasecmp(line, "If-Modified-Since:", 18) == 0;
}

/* Configure the easy handle; -1 when libcurl refuses an option. */
static int
fetch_setup(struct fetch *fe, const struct fetch_request *req)
{
	struct fetcher *f = fe->f;
	const struct fetch_policy *p = &fe->policy;
	bool post = req->method != NULL && strcasecmp(req->method, "POST") == 0;
	CURLcode c = CURLE_OK;
	struct curl_slist *tmp;
	size_t i;

	fe->easy = curl_easy_init();
	if (fe->easy == NULL)
		return -1;
	for (i = 0; req->headers != NULL && req->headers[i] != NULL; i++) {
		tmp = curl_slist_append(fe->headers, req->headers[i]);
		if (tmp == NULL)
			return -1;
		fe->headers = tmp;
		if (fetch_is_conditional(req->headers[i]))
			fe->conditional = true;
	}

#define SET(opt, val) \
	do { \
		if (c == CURLE_OK) \
			c = curl_easy_setopt(fe->easy, opt, val); \
	} while (0)
	SET(CURLOPT_URL, req->url);
	SET(CURLOPT_PRIVATE, (char *)(void *)fe);
	SET(CURLOPT_ERRORBUFFER, fe->curl_err);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_NOPROGRESS, 1L);
	SET(CURLOPT_USERAGENT, FETCH_USER_AGENT);
	SET(CURLOPT_WRITEFUNCTION, fetch_write_cb);
	SET(CURLOPT_WRITEDATA, fe);
	SET(CURLOPT_OPENSOCKETFUNCTION, fetch_opensocket_cb);
	SET(CURLOPT_OPENSOCKETDATA, fe);
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_PROTOCOLS_STR, fe->http_loopback_only ? "http,https" : "https");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, "https");
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	if (f->store != NULL) {
		SET(CURLOPT_CAINFO, NULL);
		SET(CURLOPT_CAPATH, NULL);
		SET(CURLOPT_SSL_CTX_FUNCTION, fetch_sslctx_cb);
		SET(CURLOPT_SSL_CTX_DATA, f);
	} else if (f->ca_file != NULL)
		SET(CURLOPT_CAINFO, f->ca_file);
	SET(CURLOPT_TIMEOUT_MS, (long)p->timeout_ms);
	SET(CURLOPT_CONNECTTIMEOUT_MS, (long)p->connect_timeout_ms);
	SET(CURLOPT_MAXFILESIZE_LARGE,
	    (curl_off_t)(p->max_size > INT64_MAX ? INT64_MAX : p->max_size));
	if (fe->headers != NULL)
		SET(CURLOPT_HTTPHEADER, fe->headers);
	if (post) {
		SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
		SET(CURLOPT_COPYPOSTFIELDS, req->body != NULL ? req->body : "");
	} else
		SET(CURLOPT_HTTPGET, 1L);
	if (p->untrusted || fe->http_loopback_only)
		SET(CURLOPT_PROXY, "");
	if (p->untrusted) {
		/* A reused connection skips the open-socket guard. */
		SET(CURLOPT_FRESH_CONNECT, 1L);
		SET(CURLOPT_FORBID_REUSE, 1L);
	}
#undef SET
	return c == CURLE_OK ? 0 : -1;
}

struct fetch *
fetch_start(struct fetcher *f, const struct fetch_request *req, fetch_done_cb done, void *arg)
{
	struct fetch *fe;
	const char *why;

	fe = xcalloc(1, sizeof *fe);
	fe->f = f;
	fe->done = done;
	fe->arg = arg;
	fe->start_us = clock_mono_us();
	fe->policy_name = xstrdup(req->policy_name != NULL ? req->policy_name : "default");
	if (req->policy != NULL)
		fe->policy = *req->policy;
	else
		fetch_policy_init(&fe->policy, true);
	if (fe->policy.timeout_ms <= 0)
		fe->policy.timeout_ms = fe->policy.untrusted ? FETCH_UNTRUSTED_TIMEOUT_MS
							     : FETCH_TRUSTED_TIMEOUT_MS;
	if (fe->policy.connect_timeout_ms <= 0)
		fe->policy.connect_timeout_ms = FETCH_CONNECT_TIMEOUT_MS;
	if (fe->policy.connect_timeout_ms > fe->policy.timeout_ms)
		fe->policy.connect_timeout_ms = fe->policy.timeout_ms;
	if (fe->policy.max_size == 0)
		fe->policy.max_size = fe->policy.untrusted ? FETCH_UNTRUSTED_MAX_SIZE
							   : FETCH_TRUSTED_MAX_SIZE;

	if (req->method != NULL && strcasecmp(req->method, "GET") != 0 &&
	    strcasecmp(req->method, "POST") != 0) {
		fetch_fail_early(fe, FETCH_ERR_INTERNAL, "unsupported method");
		return fe;
	}
	if (fetch_check_url(fe, req->url, &why) != 0) {
		fetch_fail_early(fe, FETCH_ERR_BAD_URL, why);
		return fe;
	}
	if (fetch_setup(fe, req) != 0) {
		fetch_fail_early(fe, FETCH_ERR_INTERNAL, "the fetch could not be set up");
		return fe;
	}
	if (curl_multi_add_handle(f->multi, fe->easy) != CURLM_OK) {
		fetch_fail_early(fe, FETCH_ERR_INTERNAL, "the fetch could not be started");
		return fe;
	}
	fe->state = FETCH_RUNNING;
	TAILQ_INSERT_TAIL(&f->running, fe, entry);
	f->n_running++;
	return fe;
}

void
fetch_cancel(struct fetch *fe)
{
	struct fetcher *f;

	if (fe == NULL)
		return;
	f = fe->f;
	switch (fe->state) {
	case FETCH_RUNNING:
		curl_multi_remove_handle(f->multi, fe->easy);
		TAILQ_REMOVE(&f->running, fe, entry);
		f->n_running--;
		break;
	case FETCH_QUEUED:
		TAILQ_REMOVE(&f->queued, fe, entry);
		break;
	case FETCH_DELIVERING:
		/* Called from its own done callback: the delivery loop frees it. */
		return;
	}
	fetch_record(fe, FETCH_ERR_CANCELLED);
	fetch_free(fe);
}

size_t
fetcher_pending(const struct fetcher *f)
{
	const struct fetch *fe;
	size_t n = f->n_running;

	TAILQ_FOREACH(fe, &f->queued, entry)
	n++;
	return n;
}

struct fetcher *
fetcher_new(struct event_base *base, const char *ca_file)
{
	struct fetcher *f;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("fetch: curl_global_init failed");
		return NULL;
	}
	f = xcalloc(1, sizeof *f);
	f->base = base;
	TAILQ_INIT(&f->running);
	TAILQ_INIT(&f->queued);
	LIST_INIT(&f->socks);
	if (ca_file != NULL && *ca_file != '\0')
		f->ca_file = xstrdup(ca_file);
	f->multi = curl_multi_init();
	f->timer = xevtimer_new(base, fetch_timer_event_cb, f);
	f->deliver = xevent_new(base, -1, 0, fetch_deliver_cb, f);
	if (f->multi == NULL || f->timer == NULL || f->deliver == NULL)
		goto fail;
	if (fetch_build_store(f) != 0)
		goto fail;
	if (curl_multi_setopt(f->multi, CURLMOPT_SOCKETFUNCTION, fetch_socket_cb) != CURLM_OK ||
	    curl_multi_setopt(f->multi, CURLMOPT_SOCKETDATA, f) != CURLM_OK ||
	    curl_multi_setopt(f->multi, CURLMOPT_TIMERFUNCTION, fetch_timer_cb) != CURLM_OK ||
	    curl_multi_setopt(f->multi, CURLMOPT_TIMERDATA, f) != CURLM_OK)
		goto fail;
	return f;
fail:
	log_error("fetch: cannot set up the fetcher");
	fetcher_free(f);
	return NULL;
}

void
fetcher_free(struct fetcher *f)
{
	struct fetch_sock *fs;
	struct fetch *fe;

	if (f == NULL)
		return;
	while ((fe = TAILQ_FIRST(&f->running)) != NULL)
		fetch_cancel(fe);
	while ((fe = TAILQ_FIRST(&f->queued)) != NULL)
		fetch_cancel(fe);
	if (f->multi != NULL)
		curl_multi_cleanup(f->multi);
	/* Sockets curl closed without telling us (cached connections). */
	while ((fs = LIST_FIRST(&f->socks)) != NULL) {
		LIST_REMOVE(fs, entry);
		if (fs->ev != NULL)
			event_free(fs->ev);
		free(fs);
	}
	if (f->timer != NULL)
		event_free(f->timer);
	if (f->deliver != NULL)
		event_free(f->deliver);
	if (f->store != NULL)
		X509_STORE_free(f->store);
	free(f->ca_file);
	free(f);
	curl_global_cleanup();
}
