/*
 * The list filter (see listfilter.h). A JSON body is held whole, an SSE
 * stream event by event (each byte searched for a blank line about once).
 * The responses are read by jsonrpc_filter_lists(), which cuts the dropped
 * items out of the bytes without building a tree; only a body it cannot
 * vouch for is parsed with json-c and written anew.
 */
#include "auth/policy/listfilter.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "common/xevent.h"
#include "proxy/log.h"

#define LF_DEPTH 64 /* nesting read in a response */

/* A list request whose response is filtered. */
struct lf_list {
	char *id; /* JSON text, as jsonrpc_id_text() prints it */
	size_t len;
	enum jsonrpc_method mid;
	bool answered; /* its response went by (forgotten after the event, on a stream) */
};

struct listfilter {
	const struct rules *rules;
	struct listcache *cache;
	struct rules_principal who; /* its strings and claims our own */
	struct lf_list *lists;
	size_t n_lists, cap;
	bool stream;              /* forget answered list requests */
	int mode;                 /* 0 not known yet, 1 JSON, 2 SSE */
	struct evbuffer *pending; /* bytes held until a whole body / event is here */
	size_t scanned;           /* pending searched for a blank line up to here */
};

struct listfilter *
listfilter_new(const struct rules *rules, const struct rules_principal *who,
    struct listcache *cache)
{
	struct listfilter *lf = xcalloc(1, sizeof *lf);

	lf->rules = rules;
	lf->cache = cache;
	lf->who.sub = who->sub != NULL ? xstrdup(who->sub) : NULL;
	lf->who.scope = who->scope != NULL ? xstrdup(who->scope) : NULL;
	lf->who.client_id = who->client_id != NULL ? xstrdup(who->client_id) : NULL;
	lf->who.claims = who->claims != NULL ? json_object_get(who->claims) : NULL;
	return lf;
}

void
listfilter_free(struct listfilter *lf)
{
	if (lf == NULL)
		return;
	for (size_t i = 0; i < lf->n_lists; i++)
		free(lf->lists[i].id);
	free(lf->lists);
	free((char *)lf->who.sub);
	free((char *)lf->who.scope);
	free((char *)lf->who.client_id);
	json_object_put(lf->who.claims);
	if (lf->pending != NULL)
		evbuffer_free(lf->pending);
	free(lf);
}

void
listfilter_add(struct listfilter *lf, char *id, enum jsonrpc_method mid)
{
	if (id == NULL)
		return;
	if (lf->n_lists == lf->cap) {
		lf->cap = lf->cap == 0 ? 1 : lf->cap * 2;
		lf->lists = xreallocarray(lf->lists, lf->cap, sizeof *lf->lists);
	}
	lf->lists[lf->n_lists++] = (struct lf_list){ id, strlen(id), mid, false };
}

void
listfilter_set_stream(struct listfilter *lf)
{
	lf->stream = true;
}

size_t
listfilter_waiting(const struct listfilter *lf)
{
	return lf->n_lists;
}

/* On a stream, drop the list requests an event answered. */
static void
lf_forget_answered(struct listfilter *lf)
{
	size_t k = 0;

	if (!lf->stream)
		return;
	for (size_t i = 0; i < lf->n_lists; i++) {
		if (lf->lists[i].answered)
			free(lf->lists[i].id);
		else
			lf->lists[k++] = lf->lists[i];
	}
	lf->n_lists = k;
}

/* Drop from one JSON-RPC response the list items the principal may not
 * use (a step-up item stays: the client may re-authorize for it). true
 * when o is a list result of one of our requests (and was rewritten). */
static bool
lf_filter_response(struct listfilter *w, json_object *o)
{
	json_object *id, *result, *items, *kept;
	const char *array, *key, *use, *idtext;
	struct lf_list *l = NULL;
	size_t n;

	if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, "id", &id) ||
	    id == NULL)
		return false;
	idtext = json_object_to_json_string_ext(id, JSON_C_TO_STRING_PLAIN);
	for (size_t i = 0; i < w->n_lists && l == NULL; i++) {
		if (strcmp(w->lists[i].id, idtext) == 0)
			l = &w->lists[i];
	}
	if (l != NULL)
		l->answered = true;
	if (l == NULL || !json_object_object_get_ex(o, "result", &result) || result == NULL ||
	    !jsonrpc_list_shape(l->mid, &array, &key, &use) ||
	    !json_object_object_get_ex(result, array, &items) || items == NULL ||
	    !json_object_is_type(items, json_type_array))
		return false; /* not ours, an error, or no list: as it came */
	kept = json_object_new_array();
	n = json_object_array_length(items);
	for (size_t i = 0; i < n; i++) {
		json_object *it = json_object_array_get_idx(items, i), *nv;
		const char *name;

		if (it == NULL || !json_object_object_get_ex(it, key, &nv) || nv == NULL ||
		    !json_object_is_type(nv, json_type_string))
			continue; /* what cannot be judged is not shown */
		name = json_object_get_string(nv);
		if (rules_decide(w->rules, use, name, &w->who).decision != RULES_DENY)
			json_object_array_add(kept, json_object_get(it));
	}
	json_object_object_add(result, array, kept);
	return true;
}

/* Which list request of ours a response answers (a jsonrpc_list_fn). */
static enum jsonrpc_method
lf_list_of(const struct jsonrpc_msg *resp, void *arg)
{
	struct listfilter *w = arg;
	enum jsonrpc_method mid = JSONRPC_M_NONE;
	char *id;

	/* the common case: the id came back as json-c prints ours */
	for (size_t i = 0; i < w->n_lists; i++) {
		if (resp->id.len == w->lists[i].len &&
		    memcmp(resp->id.p, w->lists[i].id, resp->id.len) == 0) {
			w->lists[i].answered = true;
			return w->lists[i].mid;
		}
	}
	if ((id = jsonrpc_id_text(resp)) == NULL)
		return JSONRPC_M_NONE;
	for (size_t i = 0; i < w->n_lists && mid == JSONRPC_M_NONE; i++) {
		if (strcmp(w->lists[i].id, id) == 0) {
			w->lists[i].answered = true;
			mid = w->lists[i].mid;
		}
	}
	free(id);
	return mid;
}

/* May the principal keep seeing this item (a jsonrpc_keep_fn)? */
static bool
lf_keep(enum jsonrpc_method list, const char *name, void *arg)
{
	struct listfilter *w = arg;
	const char *array, *key, *use;

	return jsonrpc_list_shape(list, &array, &key, &use) &&
	    rules_decide(w->rules, use, name, &w->who).decision != RULES_DENY;
}

/* Filter a JSON-RPC message or batch (text s of len bytes) into out: -1
 * when it is not JSON (then nothing of it may go out). The scanner cuts
 * the dropped items out of the bytes; what it cannot vouch for (lax JSON,
 * members twice) is parsed with json-c and written anew when changed. */
static int
lf_filter_json(struct listfilter *w, const char *s, size_t len, struct evbuffer *out)
{
	struct jsonrpc_pieces pc;
	json_object *o;
	bool changed = false;
	size_t outlen;
	const char *t;

	if ((w->cache != NULL
		    ? listcache_filter(w->cache, s, len, LF_DEPTH, lf_list_of, lf_keep, w, &w->who,
			  &pc)
		    : jsonrpc_filter_lists(s, len, LF_DEPTH, lf_list_of, lf_keep, w, &pc)) == 0) {
		if (!pc.changed)
			evbuffer_add(out, s, len);
		for (size_t i = 0; i < pc.n; i++)
			evbuffer_add(out, pc.v[i].p, pc.v[i].len);
		jsonrpc_pieces_dispose(&pc);
		return 0;
	}
	jsonrpc_pieces_dispose(&pc);
	if ((o = jsonrpc_parse_value(s, len, LF_DEPTH)) == NULL)
		return -1;
	if (json_object_is_type(o, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(o); i++)
			changed |= lf_filter_response(w, json_object_array_get_idx(o, i));
	} else {
		changed = lf_filter_response(w, o);
	}
	if (changed) {
		t = json_object_to_json_string_length(o,
		    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &outlen);
		evbuffer_add(out, t, outlen);
	} else {
		evbuffer_add(out, s, len);
	}
	json_object_put(o);
	return 0;
}

/* The data of an SSE event as "data:" lines, one per line of it (JSON
 * that came in several data lines keeps its line breaks). */
static void
lf_data_lines(struct evbuffer *out, struct evbuffer *data)
{
	size_t len = evbuffer_get_length(data), i = 0;
	const char *d = (const char *)evbuffer_pullup(data, -1);

	do {
		const char *eol = len > i ? memchr(d + i, '\n', len - i) : NULL;
		size_t n = eol != NULL ? (size_t)(eol - (d + i)) : len - i;

		evbuffer_add(out, "data: ", 6);
		evbuffer_add(out, d + i, n);
		evbuffer_add(out, "\n", 1);
		i += n + 1;
	} while (i < len);
}

/* One SSE event (its bytes up to and without the blank line): data lines
 * that make a response to a list request are replaced by the filtered
 * response; other events pass as they came. */
static int
lf_filter_event(struct listfilter *w, const char *s, size_t len, struct evbuffer *out)
{
	struct evbuffer *data = xevbuffer_new(), *rest = xevbuffer_new(), *fj = xevbuffer_new();
	size_t i = 0;
	int rc = 0;

	/* A lone CR ends a line for an SSE client but not for us: such an
	 * event could carry a list we would not see, so it is not passed. */
	for (size_t k = 0; k < len; k++) {
		if (s[k] == '\r' && (k + 1 == len || s[k + 1] != '\n')) {
			rc = -1;
			goto out;
		}
	}
	while (i < len) {
		const char *eol = memchr(s + i, '\n', len - i);
		size_t n = eol != NULL ? (size_t)(eol - (s + i)) : len - i, ln = n;

		if (ln > 0 && s[i + ln - 1] == '\r')
			ln--;
		if (ln >= 5 && strncmp(s + i, "data:", 5) == 0) {
			size_t off = ln > 5 && s[i + 5] == ' ' ? 6 : 5;

			if (evbuffer_get_length(data) > 0)
				evbuffer_add(data, "\n", 1);
			evbuffer_add(data, s + i + off, ln - off);
		} else {
			evbuffer_add(rest, s + i, ln);
			evbuffer_add(rest, "\n", 1);
		}
		i += n + (eol != NULL ? 1 : 0);
	}
	if (evbuffer_get_length(data) == 0) {
		evbuffer_add(out, s, len);
		goto out;
	}
	{
		size_t dl = evbuffer_get_length(data);
		const char *d = (const char *)evbuffer_pullup(data, -1);

		if (lf_filter_json(w, d, dl, fj) != 0) {
			/* Not JSON: no list response of ours, pass it. */
			evbuffer_add(out, s, len);
			goto out;
		}
		evbuffer_add_buffer(out, rest);
		lf_data_lines(out, fj);
	}
out:
	evbuffer_free(data);
	evbuffer_free(rest);
	evbuffer_free(fj);
	return rc;
}

/* Where the first blank line of an SSE stream is, from byte from on: the
 * event ends at *cut (its last line ending included), the blank line's
 * ending is *sep bytes. Line endings are "\n" or "\r\n". false if none. */
static bool
lf_sse_boundary(struct evbuffer *b, size_t from, size_t *cut, size_t *sep)
{
	static const struct {
		const char *s;
		size_t len, first;
	} seps[] = { { "\n\n", 2, 1 }, { "\n\r\n", 3, 1 }, { "\r\n\n", 3, 2 },
		{ "\r\n\r\n", 4, 2 } };
	struct evbuffer_ptr at, p;
	bool found = false;

	for (size_t i = 0; i < sizeof seps / sizeof seps[0]; i++) {
		if (evbuffer_ptr_set(b, &at, from, EVBUFFER_PTR_SET) != 0)
			return false;
		p = evbuffer_search(b, seps[i].s, seps[i].len, &at);
		if (p.pos < 0)
			continue;
		/* the earliest; at one place "\r\n\r\n" beats "\n\r\n" one later */
		if (!found || (size_t)p.pos + seps[i].first < *cut) {
			*cut = (size_t)p.pos + seps[i].first;
			*sep = seps[i].len - seps[i].first;
			found = true;
		}
	}
	return found;
}

/* The reply filter (req_filter_fn): JSON bodies are held whole, SSE
 * streams event by event; held bytes are bounded, and each byte is
 * searched for a blank line about once. */
int
listfilter_filter(struct req *sr, struct evbuffer *in, struct evbuffer *out, void *arg)
{
	struct listfilter *w = arg;
	size_t len, cut = 0, sep = 0;
	const char *s;

	if (w->pending == NULL)
		w->pending = xevbuffer_new();
	if (in != NULL)
		evbuffer_add_buffer(w->pending, in);
	len = evbuffer_get_length(w->pending);
	if (len > LISTFILTER_MAX) {
		log_warn("list response too large to filter: connection closed",
		    LOG_S("request_id", req_id(sr)));
		return -1;
	}
	if (len == 0)
		return 0;
	if (w->mode == 0) {
		size_t i = 0;

		s = (const char *)evbuffer_pullup(w->pending, -1);
		while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
			i++;
		if (i == len)
			return in == NULL ? (evbuffer_add_buffer(out, w->pending), 0) : 0;
		w->mode = s[i] == '{' || s[i] == '[' ? 1 : 2;
	}
	if (w->mode == 1) {
		int rc;

		if (in != NULL)
			return 0; /* the whole body first */
		rc = lf_filter_json(w, (const char *)evbuffer_pullup(w->pending, -1), len, out);
		evbuffer_drain(w->pending, len);
		if (rc != 0)
			log_warn("list response is not JSON: connection closed",
			    LOG_S("request_id", req_id(sr)));
		return rc;
	}
	/* SSE: every complete event, the rest at the end. */
	while (lf_sse_boundary(w->pending, w->scanned, &cut, &sep)) {
		s = (const char *)evbuffer_pullup(w->pending, (ev_ssize_t)(cut + sep));
		if (lf_filter_event(w, s, cut, out) != 0)
			goto bad;
		lf_forget_answered(w);
		evbuffer_add(out, s + cut, sep);
		evbuffer_drain(w->pending, cut + sep);
		w->scanned = 0;
	}
	len = evbuffer_get_length(w->pending);
	w->scanned = len > 3 ? len - 3 : 0; /* a separator may straddle the next read */
	if (in == NULL && len > 0) {
		if (lf_filter_event(w, (const char *)evbuffer_pullup(w->pending, -1), len, out) !=
		    0)
			goto bad;
		evbuffer_drain(w->pending, len);
	}
	return 0;
bad:
	log_warn("list response event with a lone CR: connection closed",
	    LOG_S("request_id", req_id(sr)));
	return -1;
}
