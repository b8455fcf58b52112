/*
 * The authorization hop (see policy.h). A request is decided whole: one
 * denied message refuses the batch (the backend sees none of it), one
 * message needing more scopes makes the answer a step-up challenge for
 * the scopes of every such message. The audit lines of a forwarded
 * request wait in a watch (req_set_watch) that sees the response body,
 * up to POLICY_CAPTURE_MAX bytes, and writes them when the request ends;
 * the watch is freed there, or by policy_free() for requests still open.
 */
#include "auth/policy/policy.h"

#include <event2/buffer.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <time.h>

#include "auth/policy/audit.h"
#include "auth/policy/jsonrpc.h"
#include "auth/policy/listfilter.h"
#include "auth/policy/rules.h"
#include "common/clock.h"
#include "common/scope.h"
#include "common/strlist.h"
#include "common/xalloc.h"
#include "common/xevent.h"
#include "config/config.h"
#include "proxy/log.h"
#include "proxy/metrics.h"
#include "proxy/req.h"

#define POLICY_CAPTURE_MAX (256 * 1024) /* response bytes looked at for outcomes */
/* List requests of one legacy SSE session waiting for their answer on its
 * stream; more are refused until some are answered. */
#define POLICY_STREAM_LISTS_MAX 256
#define POLICY_ERR_FORBIDDEN (-32003)

/* One operation's audit line, waiting for its outcome. */
struct policy_entry {
	json_object *line; /* every field but outcome and duration_ms */
	char *id;          /* the JSON-RPC id as JSON text, or NULL */
	bool notification;
};

/* The audit lines of a forwarded request, and the filter of its list
 * responses. */
struct policy_watch {
	struct policy *p;
	struct req *sr; /* not a reference: the watch ends before the req goes */
	struct policy_entry *entries;
	size_t n;
	struct evbuffer *captured; /* the response body, up to POLICY_CAPTURE_MAX (audit) */
	int64_t start_us;
	struct listfilter *lf; /* the list responses' filter, or NULL */
	/* A legacy SSE stream (GET /sse): its session's id as the client
	 * holds it, once the endpoint event named it; else NULL. */
	char *sid;
	TAILQ_ENTRY(policy_watch) entry;
};

TAILQ_HEAD(policy_watch_list, policy_watch);

struct policy {
	const struct config *cfg;
	req_pass_fn next;
	void *next_arg;
	char *metadata_url;
	struct rules *rules;
	struct listcache *lists; /* the shapes of the last list responses */
	struct audit *audit;
	struct jsonrpc_limits lim;
	/* The last principal's claims, parsed: one user's requests in a row
	 * (the common case) parse them once. Never changed once parsed. */
	char *claims_text;
	json_object *claims;
	struct policy_watch_list watches; /* streams included */
	bool sse_mode;                    /* backend.transport: sse */
	struct metric *m_requests;
};

/* What was decided for one message. */
struct policy_item {
	const struct jsonrpc_msg *m;
	struct rules_verdict v;
	bool always; /* initialize, ping, notifications, responses */
};

static const char *
policy_decision_name(const struct policy_item *it)
{
	switch (it->v.decision) {
	case RULES_ALLOW:
		return "allow";
	case RULES_DENY:
		return "deny";
	case RULES_STEP_UP:
		return "step_up";
	}
	return "deny";
}

/* --- audit lines --- */

static void
policy_time(char *buf, size_t len)
{
	time_t t = (time_t)clock_wall_s();
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_object *
policy_str_or_null(const char *s)
{
	return s != NULL ? json_object_new_string(s) : NULL;
}

/* The arguments of a tools/call or prompts/get, as an object when their
 * JSON fits max bytes, else their first max bytes as a string. */
static void
policy_add_arguments(json_object *line, const struct jsonrpc_msg *m, size_t max, int depth)
{
	json_object *params, *args;
	const char *s;
	size_t len;

	/* only now is params parsed whole (the reader checked it already) */
	if (m->params.p == NULL ||
	    (params = jsonrpc_parse_value(m->params.p, m->params.len, depth)) == NULL)
		return;
	if (!json_object_is_type(params, json_type_object) ||
	    !json_object_object_get_ex(params, "arguments", &args) || args == NULL)
		goto out;
	s = json_object_to_json_string_length(args, JSON_C_TO_STRING_PLAIN, &len);
	if (len <= max) {
		json_object_object_add(line, "arguments", json_object_get(args));
		goto out;
	}
	/* Cut on a UTF-8 boundary: json-c would refuse nothing, readers might. */
	while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
		max--;
	json_object_object_add(line, "arguments", json_object_new_string_len(s, (int)max));
	json_object_object_add(line, "arguments_truncated", json_object_new_boolean(1));
out:
	json_object_put(params);
}

/* The audit line of one decided message, without outcome and duration. */
static json_object *
policy_line(struct policy *p, struct req *sr, const struct rules_principal *who,
    const struct policy_item *it, const char *decision)
{
	json_object *line = json_object_new_object();
	char ts[32], label[24];

	policy_time(ts, sizeof ts);
	json_object_object_add(line, "time", json_object_new_string(ts));
	json_object_object_add(line, "request_id", json_object_new_string(req_id(sr)));
	json_object_object_add(line, "jsonrpc_id", it != NULL ? jsonrpc_id_object(it->m) : NULL);
	json_object_object_add(line, "subject", policy_str_or_null(who->sub));
	json_object_object_add(line, "client_id", policy_str_or_null(who->client_id));
	json_object_object_add(line, "method",
	    policy_str_or_null(it != NULL ? it->m->method : NULL));
	json_object_object_add(line, "name", policy_str_or_null(it != NULL ? it->m->name : NULL));
	json_object_object_add(line, "decision",
	    json_object_new_string(decision != NULL ? decision : policy_decision_name(it)));
	json_object_object_add(line, "rule",
	    json_object_new_string(it == NULL ? "none"
		    : it->always              ? "always"
					      : rules_label(&it->v, label, sizeof label)));
	if (it != NULL && p->cfg->audit.include_arguments &&
	    (it->m->mid == JSONRPC_M_TOOLS_CALL || it->m->mid == JSONRPC_M_PROMPTS_GET))
		policy_add_arguments(line, it->m, p->cfg->audit.max_arguments_size,
		    p->lim.max_depth);
	return line;
}

static void
policy_emit(struct policy *p, json_object *line, const char *outcome, int64_t start_us)
{
	json_object_object_add(line, "outcome", json_object_new_string(outcome));
	json_object_object_add(line, "duration_ms",
	    json_object_new_double((double)(clock_mono_us() - start_us) / 1000.0));
	audit_write(p->audit, line);
}

/* --- outcomes from the response --- */

/* Note every JSON-RPC response in o (a message or a batch) in found: id
 * text → "error" or "success". */
static void
policy_scan_responses(json_object *o, struct strlist *ids, struct strlist *outcomes)
{
	json_object *id;
	size_t n;

	if (o == NULL)
		return;
	if (json_object_is_type(o, json_type_array)) {
		n = json_object_array_length(o);
		for (size_t i = 0; i < n && i < 1024; i++) {
			json_object *e = json_object_array_get_idx(o, i);

			if (e != NULL && json_object_is_type(e, json_type_object))
				policy_scan_responses(e, ids, outcomes);
		}
		return;
	}
	if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, "id", &id))
		return;
	strlist_add(ids,
	    id != NULL ? json_object_to_json_string_ext(id, JSON_C_TO_STRING_PLAIN) : "null");
	strlist_add(outcomes, json_object_object_get_ex(o, "error", NULL) ? "error" : "success");
}

/* The responses in a captured body: JSON, or SSE events whose data are. */
static void
policy_responses(struct evbuffer *b, struct strlist *ids, struct strlist *outcomes)
{
	size_t len = evbuffer_get_length(b), i = 0;
	const char *s;
	struct evbuffer *data;
	json_object *o;

	if (len == 0)
		return;
	s = (const char *)evbuffer_pullup(b, -1);
	while (i < len && (s[i] == ' ' || s[i] == '\r' || s[i] == '\n' || s[i] == '\t'))
		i++;
	if (i < len && (s[i] == '{' || s[i] == '[')) {
		o = jsonrpc_parse_value(s + i, len - i, 64);
		policy_scan_responses(o, ids, outcomes);
		json_object_put(o);
		return;
	}
	/* SSE: "data:" lines joined by newlines make an event's data; a blank
	 * line ends the event. */
	data = xevbuffer_new();
	while (i < len) {
		const char *eol = memchr(s + i, '\n', len - i);
		size_t n = eol != NULL ? (size_t)(eol - (s + i)) : len - i;

		if (n > 0 && s[i + n - 1] == '\r')
			n--;
		if (n == 0) {
			if (evbuffer_get_length(data) > 0) {
				size_t dl = evbuffer_get_length(data);

				o = jsonrpc_parse_value((const char *)evbuffer_pullup(data, -1), dl,
				    64);
				policy_scan_responses(o, ids, outcomes);
				json_object_put(o);
				evbuffer_drain(data, dl);
			}
		} else if (n >= 5 && strncmp(s + i, "data:", 5) == 0) {
			size_t off = n > 5 && s[i + 5] == ' ' ? 6 : 5;

			if (evbuffer_get_length(data) > 0)
				evbuffer_add(data, "\n", 1);
			evbuffer_add(data, s + i + off, n - off);
		}
		if (eol == NULL)
			break;
		i += (size_t)(eol - (s + i)) + 1;
	}
	evbuffer_free(data);
}

static void
policy_watch_free(struct policy_watch *w)
{
	for (size_t i = 0; i < w->n; i++) {
		json_object_put(w->entries[i].line);
		free(w->entries[i].id);
	}
	free(w->entries);
	listfilter_free(w->lf);
	if (w->captured != NULL)
		evbuffer_free(w->captured);
	free(w->sid);
	TAILQ_REMOVE(&w->p->watches, w, entry);
	free(w);
}

/* The watch: keep the response's first bytes; at the end, the outcomes. */
static void
policy_on_reply(struct req *sr, int status, const void *data, size_t len, void *arg)
{
	struct policy_watch *w = arg;
	struct strlist ids = { 0 }, outcomes = { 0 };

	if (data != NULL) {
		size_t have;

		if (w->n == 0)
			return;
		have = evbuffer_get_length(w->captured);
		if (have < POLICY_CAPTURE_MAX)
			evbuffer_add(w->captured, data,
			    len < POLICY_CAPTURE_MAX - have ? len : POLICY_CAPTURE_MAX - have);
		return;
	}
	if (w->captured != NULL)
		policy_responses(w->captured, &ids, &outcomes);
	for (size_t i = 0; i < w->n; i++) {
		struct policy_entry *e = &w->entries[i];
		const char *outcome = NULL;

		for (size_t k = 0; e->id != NULL && k < ids.n; k++) {
			if (strcmp(ids.v[k], e->id) == 0) {
				outcome = outcomes.v[k];
				break;
			}
		}
		if (outcome == NULL) {
			if (status == 0 || status == 499)
				outcome = "no_response"; /* the client went away first */
			else if (status >= 500)
				outcome = "backend_error";
			else if (status >= 400)
				outcome = "error";
			else if (e->notification || e->id == NULL)
				outcome = "success";
			else
				outcome = "unknown"; /* no response with its id was seen */
		}
		if (w->p->audit != NULL)
			policy_emit(w->p, e->line, outcome, w->start_us);
	}
	strlist_dispose(&ids);
	strlist_dispose(&outcomes);
	policy_watch_free(w);
}

/* --- answers --- */

/* A JSON-RPC error object for a refused message (id is taken). */
static json_object *
policy_rpc_error(json_object *id, int code, const char *message, const char *error,
    const char *scope)
{
	json_object *o = json_object_new_object(), *e = json_object_new_object(),
		    *data = json_object_new_object();

	json_object_object_add(o, "jsonrpc", json_object_new_string("2.0"));
	json_object_object_add(o, "id", id);
	json_object_object_add(e, "code", json_object_new_int(code));
	json_object_object_add(e, "message", json_object_new_string(message));
	json_object_object_add(data, "error", json_object_new_string(error));
	if (scope != NULL)
		json_object_object_add(data, "scope", json_object_new_string(scope));
	json_object_object_add(e, "data", data);
	json_object_object_add(o, "error", e);
	return o;
}

static void
policy_reply(struct req *sr, int status, json_object *body)
{
	req_add_header(sr, "Pragma", "no-cache");
	req_reply_json(sr, status,
	    json_object_to_json_string_ext(body,
		JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(body);
}

/* 400/413 for a body that is not JSON-RPC we can decide on. */
static void
policy_reject(struct policy *p, struct req *sr, const struct rules_principal *who, int status,
    int code, const char *msg, const char *label)
{
	json_object *o = policy_rpc_error(NULL, code, msg,
	    status == 413 ? "request_too_large" : "invalid_request", NULL);

	metrics_add(p->m_requests, 1, "invalid", label);
	log_info("mcp request refused", LOG_S("reason", msg), LOG_I("status", status),
	    LOG_S("request_id", req_id(sr)));
	if (p->audit != NULL) {
		json_object *line = policy_line(p, sr, who, NULL, "invalid");

		policy_emit(p, line, "rejected", clock_mono_us());
		json_object_put(line);
	}
	policy_reply(sr, status, o);
}

/* Add s to l unless it is there. */
static void
policy_scope_add(struct strlist *l, const char *s)
{
	if (!strlist_contains(l, s))
		strlist_add(l, s);
}

/* Refuse the request: denied members by their rule, a step-up challenge
 * when none is denied but some need more scopes. */
static void
policy_refuse(struct policy *p, struct req *sr, const struct jsonrpc_body *b,
    const struct policy_item *items, bool denied)
{
	struct strlist need = { 0 };
	json_object *body = b->batch ? json_object_new_array() : NULL;
	char *scope = NULL, *www = NULL, msg[160];

	if (!denied) {
		for (size_t i = 0; i < p->cfg->auth.required_scopes.n; i++)
			policy_scope_add(&need, p->cfg->auth.required_scopes.v[i]);
		for (size_t i = 0; i < b->n; i++) {
			if (items[i].v.decision != RULES_STEP_UP)
				continue;
			for (size_t k = 0; k < items[i].v.scopes->n; k++)
				policy_scope_add(&need, items[i].v.scopes->v[k]);
		}
		scope = strlist_join(&need);
	}
	for (size_t i = 0; i < b->n; i++) {
		const struct jsonrpc_msg *m = items[i].m;
		json_object *e;

		if (m->kind != JSONRPC_REQUEST)
			continue;
		if (items[i].v.decision == RULES_DENY && !items[i].always) {
			snprintf(msg, sizeof msg, "%s%s%.64s is not allowed", m->method,
			    m->name != NULL ? ":" : "", m->name != NULL ? m->name : "");
			e = policy_rpc_error(jsonrpc_id_object(m), POLICY_ERR_FORBIDDEN, msg,
			    "forbidden", NULL);
		} else if (items[i].v.decision == RULES_STEP_UP) {
			snprintf(msg, sizeof msg, "%s needs the scopes: %.100s", m->method, scope);
			e = policy_rpc_error(jsonrpc_id_object(m), POLICY_ERR_FORBIDDEN, msg,
			    "insufficient_scope", scope);
		} else {
			e = policy_rpc_error(jsonrpc_id_object(m), POLICY_ERR_FORBIDDEN,
			    "not run: another message of this batch was refused", "batch_refused",
			    NULL);
		}
		if (!b->batch) {
			body = e;
			break;
		}
		json_object_array_add(body, e);
	}
	if (body == NULL) /* a lone message that is no request cannot be refused */
		body = policy_rpc_error(NULL, POLICY_ERR_FORBIDDEN, "not allowed", "forbidden",
		    NULL);
	if (!denied) {
		www = xasprintf("Bearer error=\"insufficient_scope\", scope=\"%s\"%s%s%s", scope,
		    p->metadata_url != NULL ? ", resource_metadata=\"" : "",
		    p->metadata_url != NULL ? p->metadata_url : "",
		    p->metadata_url != NULL ? "\"" : "");
		req_add_header(sr, "WWW-Authenticate", www);
	}
	policy_reply(sr, 403, body);
	free(www);
	free(scope);
	strlist_dispose(&need);
}

/* --- the hop --- */

/* Do the Mcp-Method / Mcp-Name headers, when sent, name the body's
 * operation? NULL when they do, else why not. */
static const char *
policy_check_headers(struct req *sr, const struct jsonrpc_body *b)
{
	const char *hm = req_header(sr, "Mcp-Method"), *hn = req_header(sr, "Mcp-Name");

	if (hm == NULL && hn == NULL)
		return NULL;
	if (b->batch)
		return "the Mcp-Method and Mcp-Name headers cannot describe a batch";
	if (hm != NULL && (b->msgs[0].method == NULL || strcmp(hm, b->msgs[0].method) != 0))
		return "the Mcp-Method header does not match the body's method";
	if (hn != NULL && (b->msgs[0].name == NULL || strcmp(hn, b->msgs[0].name) != 0))
		return "the Mcp-Name header does not match the body's name";
	if (hm != NULL && hn == NULL && b->msgs[0].name != NULL)
		return "the Mcp-Name header is missing for this method";
	return NULL;
}

/* Is m a list request (whose response is filtered)? */
static bool
policy_is_list(const struct jsonrpc_msg *m)
{
	return m->kind == JSONRPC_REQUEST &&
	    (m->mid == JSONRPC_M_TOOLS_LIST || m->mid == JSONRPC_M_PROMPTS_LIST ||
		m->mid == JSONRPC_M_RESOURCES_LIST || m->mid == JSONRPC_M_RESOURCES_TEMPLATES_LIST);
}

/* --- the legacy SSE transport: list answers come on the stream --- */

/* A stream's filter (req_filter_fn): its list answers are filtered, and
 * its first event tells which session it carries. */
static int
policy_stream_filter(struct req *sr, struct evbuffer *in, struct evbuffer *out, void *arg)
{
	struct policy_watch *w = arg;
	const char *sid;

	/* The forwarder names the session when it sends the endpoint event,
	 * the stream's first. Without one (not a stream, or a server that
	 * breaks the transport) no POST finds the stream and list requests
	 * are refused (policy_stream_check). */
	if (w->sid == NULL && (sid = req_sse_stream_session(sr)) != NULL)
		w->sid = xstrdup(sid);
	return listfilter_filter(sr, in, out, w->lf);
}

/* Filter the list answers of a legacy SSE stream (a GET on the SSE
 * transport) for who. */
static void
policy_stream_start(struct policy *p, struct req *sr, const struct rules_principal *who)
{
	struct policy_watch *w = xcalloc(1, sizeof *w);

	w->p = p;
	w->sr = sr;
	w->start_us = clock_mono_us();
	w->lf = listfilter_new(p->rules, who, p->lists);
	listfilter_set_stream(w->lf);
	TAILQ_INSERT_TAIL(&p->watches, w, entry);
	req_set_filter(sr, policy_stream_filter, w);
	req_set_watch(sr, policy_on_reply, w);
}

/* The open stream of the session a legacy SSE POST names, or NULL. */
static struct policy_watch *
policy_stream_of(struct policy *p, struct req *sr)
{
	const char *sid = req_sse_session(sr);
	struct policy_watch *w;

	if (sid == NULL)
		return NULL;
	TAILQ_FOREACH(w, &p->watches, entry)
	{
		if (w->sid != NULL && strcmp(w->sid, sid) == 0)
			return w;
	}
	return NULL;
}

static size_t policy_lists(const struct jsonrpc_body *b);

/* A legacy SSE POST with list requests: their answers will come on the
 * session's stream, which must be open here and filter them (*stream).
 * Else it is refused (-1, answered, its messages audited as not run): an
 * answer no filter would read is not asked for. */
static int
policy_stream_check(struct policy *p, struct req *sr, const struct rules_principal *who,
    const struct jsonrpc_body *b, const struct policy_item *items, int64_t start_us,
    struct policy_watch **stream)
{
	int status = 404, code = -32001;
	const char *error = "no_stream",
		   *msg = "the session has no open event stream here for the list's answer";
	if ((*stream = policy_stream_of(p, sr)) != NULL) {
		if (listfilter_waiting((*stream)->lf) + policy_lists(b) <= POLICY_STREAM_LISTS_MAX)
			return 0;
		status = 429;
		code = -32000;
		error = "too_many_lists";
		msg = "too many list requests of this session wait for their answer";
	}
	log_info("mcp request refused", LOG_S("reason", error), LOG_S("request_id", req_id(sr)));
	for (size_t i = 0; p->audit != NULL && i < b->n; i++) {
		json_object *line = policy_line(p, sr, who, &items[i], NULL);

		policy_emit(p, line, "not_run", start_us);
		json_object_put(line);
	}
	policy_reply(sr, status,
	    policy_rpc_error(b->n == 1 ? jsonrpc_id_object(&b->msgs[0]) : NULL, code, msg, error,
		NULL));
	return -1;
}

/* The list requests of a body. */
static size_t
policy_lists(const struct jsonrpc_body *b)
{
	size_t n = 0;

	for (size_t i = 0; i < b->n; i++)
		n += policy_is_list(&b->msgs[i]);
	return n;
}

/* Watch a forwarded request for its audit lines (with audit on) and
 * filter its list responses (when it has list requests): in its own
 * response, or (legacy SSE) on stream, the session's. */
static void
policy_watch_start(struct policy *p, struct req *sr, const struct rules_principal *who,
    const struct jsonrpc_body *b, const struct policy_item *items, int64_t start_us,
    struct policy_watch *stream)
{
	struct policy_watch *w;
	size_t lists = policy_lists(b);

	if (stream != NULL) {
		for (size_t i = 0; i < b->n; i++) {
			if (policy_is_list(&b->msgs[i]))
				listfilter_add(stream->lf, jsonrpc_id_text(&b->msgs[i]),
				    b->msgs[i].mid);
		}
		lists = 0; /* the answers come on the stream */
	}
	if (p->audit == NULL && lists == 0)
		return;
	w = xcalloc(1, sizeof *w);
	w->p = p;
	w->sr = sr;
	w->start_us = start_us;
	if (p->audit != NULL)
		w->captured = xevbuffer_new();
	if (lists > 0) {
		w->lf = listfilter_new(p->rules, who, p->lists);
		for (size_t i = 0; i < b->n; i++) {
			if (policy_is_list(&b->msgs[i]))
				listfilter_add(w->lf, jsonrpc_id_text(&b->msgs[i]), b->msgs[i].mid);
		}
		req_set_filter(sr, listfilter_filter, w->lf);
	}
	TAILQ_INSERT_TAIL(&p->watches, w, entry);
	req_set_watch(sr, policy_on_reply, w);
	if (p->audit == NULL)
		return;
	w->entries = xcalloc(b->n, sizeof *w->entries);
	w->n = b->n;
	for (size_t i = 0; i < b->n; i++) {
		const struct jsonrpc_msg *m = items[i].m;

		w->entries[i].line = policy_line(p, sr, who, &items[i], NULL);
		w->entries[i].notification = m->kind != JSONRPC_REQUEST;
		w->entries[i].id = jsonrpc_id_text(m);
	}
}

/* The claims JSON parsed (a new reference), or NULL when it is no
 * object; the last one is kept for the next request. */
static json_object *
policy_claims(struct policy *p, const char *text)
{
	json_object *o;

	if (p->claims_text == NULL || strcmp(p->claims_text, text) != 0) {
		free(p->claims_text);
		json_object_put(p->claims);
		p->claims_text = xstrdup(text);
		p->claims = json_tokener_parse(text);
		if (p->claims != NULL && !json_object_is_type(p->claims, json_type_object)) {
			json_object_put(p->claims);
			p->claims = NULL;
		}
	}
	o = p->claims;
	return o != NULL ? json_object_get(o) : NULL;
}

void
policy_pass(struct req *sr, const struct req_pass_opts *opts, void *arg)
{
	struct policy *p = arg;
	const struct req_principal *pr = opts != NULL ? opts->principal : NULL;
	struct rules_principal who = { 0 };
	struct jsonrpc_body b;
	struct policy_item one, *items = NULL;
	struct evbuffer *body = req_body(sr);
	int64_t start_us = clock_mono_us();
	bool denied = false, step_up = false;
	const char *why;
	char err[160];
	enum jsonrpc_err rc;

	if (req_gone(sr))
		return;
	/* Another replica's session: its owner decides, audits and filters. */
	if ((req_method(sr) != H1_POST && (req_method(sr) != H1_GET || !p->sse_mode)) ||
	    req_session_home(sr) == REQ_HOME_ELSEWHERE) {
		p->next(sr, opts, p->next_arg);
		return;
	}
	if (pr != NULL) {
		who.sub = pr->sub;
		who.scope = pr->scope;
		who.client_id = pr->client_id;
		if (pr->claims_json != NULL && rules_need_claims(p->rules))
			who.claims = policy_claims(p, pr->claims_json);
	}
	if (req_method(sr) == H1_GET) { /* the legacy SSE stream */
		policy_stream_start(p, sr, &who);
		json_object_put(who.claims); /* the filter holds its own */
		p->next(sr, opts, p->next_arg);
		return;
	}
	rc = evbuffer_get_length(body) > p->lim.max_size
	    ? jsonrpc_parse(NULL, evbuffer_get_length(body), &p->lim, &b, err, sizeof err)
	    : jsonrpc_parse((const char *)evbuffer_pullup(body, -1), evbuffer_get_length(body),
		  &p->lim, &b, err, sizeof err);
	if (rc != JSONRPC_OK) {
		policy_reject(p, sr, &who, rc == JSONRPC_TOO_LARGE ? 413 : 400,
		    rc == JSONRPC_PARSE ? -32700 : -32600, err, "none");
		goto out;
	}
	if ((why = policy_check_headers(sr, &b)) != NULL) {
		policy_reject(p, sr, &who, 400, -32600, why, jsonrpc_mid_label(b.msgs[0].mid));
		goto out;
	}
	items = b.n == 1 ? memset(&one, 0, sizeof one) : xcalloc(b.n, sizeof *items);
	for (size_t i = 0; i < b.n; i++) {
		struct policy_item *it = &items[i];

		it->m = &b.msgs[i];
		it->v.rule = -1;
		if (jsonrpc_always_passes(it->m)) {
			it->always = true;
			it->v.decision = RULES_ALLOW;
		} else {
			it->v = rules_decide(p->rules, it->m->method, it->m->name, &who);
		}
		denied = denied || it->v.decision == RULES_DENY;
		step_up = step_up || it->v.decision == RULES_STEP_UP;
		metrics_add(p->m_requests, 1, policy_decision_name(it),
		    jsonrpc_mid_label(it->m->mid));
	}
	if (!denied && !step_up) {
		struct policy_watch *stream = NULL;

		if (p->sse_mode && policy_lists(&b) > 0 &&
		    policy_stream_check(p, sr, &who, &b, items, start_us, &stream) != 0)
			goto out;
		policy_watch_start(p, sr, &who, &b, items, start_us, stream);
		p->next(sr, opts, p->next_arg);
		goto out;
	}
	log_info("mcp request refused",
	    LOG_S("reason", denied ? "forbidden" : "insufficient_scope"),
	    LOG_S("subject", who.sub != NULL ? who.sub : ""), LOG_S("request_id", req_id(sr)));
	if (p->audit != NULL) {
		for (size_t i = 0; i < b.n; i++) {
			json_object *line = policy_line(p, sr, &who, &items[i], NULL);

			policy_emit(p, line,
			    items[i].v.decision == RULES_ALLOW ? "not_run" : "denied", start_us);
			json_object_put(line);
		}
	}
	policy_refuse(p, sr, &b, items, denied);
out:
	if (items != &one)
		free(items);
	jsonrpc_body_dispose(&b);
	json_object_put(who.claims);
}

void
policy_handler(struct req *sr, void *arg)
{
	struct req_pass_opts opts = { 0 };

	policy_pass(sr, &opts, arg);
}

/* --- lifecycle --- */

struct policy *
policy_new(struct event_base *base, const struct config *cfg, req_pass_fn next, void *next_arg,
    const char *metadata_url, char *err, size_t errlen)
{
	struct policy *p = xcalloc(1, sizeof *p);

	p->cfg = cfg;
	p->next = next;
	p->next_arg = next_arg;
	p->metadata_url = metadata_url != NULL ? xstrdup(metadata_url) : NULL;
	p->rules = rules_new(cfg);
	p->lists = listcache_new();
	p->lim.max_size = (size_t)cfg->authz.max_message_size;
	p->lim.max_depth = (int)cfg->authz.max_depth;
	p->lim.max_batch = cfg->authz.max_batch;
	p->sse_mode = cfg->backend.transport == TRANSPORT_SSE;
	TAILQ_INIT(&p->watches);
	if (cfg->audit.enabled &&
	    (p->audit = audit_new(base, cfg->audit.path, err, errlen)) == NULL) {
		policy_free(p);
		return NULL;
	}
	p->m_requests = metrics_counter("mcp_proxy_mcp_requests_total",
	    "MCP messages decided by the authorization rules, by decision and method.",
	    "decision,method");
	return p;
}

void
policy_free(struct policy *p)
{
	struct policy_watch *w;

	if (p == NULL)
		return;
	while ((w = TAILQ_FIRST(&p->watches)) != NULL) {
		req_set_watch(w->sr, NULL, NULL);
		req_set_filter(w->sr, NULL, NULL);
		policy_watch_free(w);
	}
	audit_free(p->audit);
	free(p->claims_text);
	json_object_put(p->claims);
	rules_free(p->rules);
	listcache_free(p->lists); /* after the watches: their filters use it */
	free(p->metadata_url);
	free(p);
}
