/*
 * The list shape cache (see listcache.h).
 */
#include "auth/policy/listcache.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

/* Whom an entry's items were last judged for, and what was said. */
struct lc_memo {
	char *sub, *scope, *client_id;
	json_object *claims; /* a reference */
	bool *kept;          /* one per item; NULL: none yet */
};

struct lc_entry {
	char *body; /* NULL: free */
	size_t len;
	struct jsonrpc_shape shape;
	uint64_t used; /* when it was last used, in lookups */
	struct lc_memo memo;
};

struct listcache {
	struct lc_entry e[LISTCACHE_ENTRIES];
	uint64_t clock;
	unsigned long long hits, misses;
};

struct listcache *
listcache_new(void)
{
	return xcalloc(1, sizeof(struct listcache));
}

static void
lc_memo_clear(struct lc_memo *m)
{
	free(m->sub);
	free(m->scope);
	free(m->client_id);
	json_object_put(m->claims);
	free(m->kept);
	memset(m, 0, sizeof *m);
}

static bool
lc_same(const char *a, const char *b)
{
	return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

/* Was e's memo made for who? */
static bool
lc_memo_for(const struct lc_memo *m, const struct rules_principal *who)
{
	return m->kept != NULL && m->claims == who->claims && lc_same(m->sub, who->sub) &&
	    lc_same(m->scope, who->scope) && lc_same(m->client_id, who->client_id);
}

static char *
lc_dup(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

static void
lc_entry_clear(struct lc_entry *e)
{
	lc_memo_clear(&e->memo);
	free(e->body);
	jsonrpc_shape_dispose(&e->shape);
	memset(e, 0, sizeof *e);
}

void
listcache_free(struct listcache *lc)
{
	if (lc == NULL)
		return;
	for (size_t i = 0; i < LISTCACHE_ENTRIES; i++)
		lc_entry_clear(&lc->e[i]);
	free(lc);
}

void
listcache_counts(const struct listcache *lc, unsigned long long *hits, unsigned long long *misses)
{
	*hits = lc->hits;
	*misses = lc->misses;
}

/* Does the body equal e's outside their ids? Then the new id's span. */
static bool
lc_fits(const struct lc_entry *e, const char *buf, size_t len, struct jsonrpc_span *id)
{
	size_t pre = e->shape.id_off, post = e->len - e->shape.id_off - e->shape.id_len;

	if (len <= pre + post || memcmp(buf, e->body, pre) != 0 ||
	    memcmp(buf + len - post, e->body + e->len - post, post) != 0)
		return false;
	*id = (struct jsonrpc_span){ buf + pre, len - pre - post };
	return jsonrpc_is_list_id(id->p, id->len);
}

/* Where byte x of e's body is in a body whose id is idlen bytes: those
 * after the id move by the difference of the ids' lengths. */
static size_t
lc_at(const struct jsonrpc_shape *sh, size_t x, size_t idlen)
{
	return x >= sh->id_off + sh->id_len ? x - sh->id_len + idlen : x;
}

/* Filter the body from e's shape (it fits, with the new id id): the pieces
 * jsonrpc_filter_lists() would give. false when the id is not one of a
 * list request of ours (then the body is scanned: it answers something
 * else). */
static bool
lc_filter(struct lc_entry *e, const char *buf, size_t len, struct jsonrpc_span id,
    jsonrpc_list_fn list, jsonrpc_keep_fn keep, void *arg, const struct rules_principal *who,
    struct jsonrpc_pieces *out)
{
	const struct jsonrpc_shape *sh = &e->shape;
	struct jsonrpc_msg m = { .kind = JSONRPC_RESPONSE, .mid = JSONRPC_M_NONE, .id = id };
	size_t n_kept = 0, close = lc_at(sh, sh->close, id.len);
	bool first = true;
	const bool *kept;

	if (list(&m, arg) != sh->list)
		return false;
	if (!lc_memo_for(&e->memo, who)) {
		lc_memo_clear(&e->memo);
		e->memo.kept = xcalloc(sh->n + 1, sizeof *e->memo.kept);
		for (size_t i = 0; i < sh->n; i++) {
			e->memo.kept[i] = sh->items[i].name != JSONRPC_NO_NAME &&
			    keep(sh->list, sh->names + sh->items[i].name, arg);
		}
		e->memo.sub = lc_dup(who->sub);
		e->memo.scope = lc_dup(who->scope);
		e->memo.client_id = lc_dup(who->client_id);
		e->memo.claims = who->claims != NULL ? json_object_get(who->claims) : NULL;
	}
	kept = e->memo.kept;
	for (size_t i = 0; i < sh->n; i++)
		n_kept += kept[i];
	if (n_kept == sh->n)
		return true; /* nothing dropped: the body as it came */
	/* the bytes up to and with '[', the kept items, then from ']' on */
	jsonrpc_pieces_add(out, buf, lc_at(sh, sh->open, id.len) + 1);
	for (size_t i = 0; i < sh->n; i++) {
		if (!kept[i])
			continue;
		if (!first)
			jsonrpc_pieces_add(out, ",", 1);
		jsonrpc_pieces_add(out, buf + lc_at(sh, sh->items[i].off, id.len),
		    sh->items[i].len);
		first = false;
	}
	jsonrpc_pieces_add(out, buf + close, len - close);
	out->changed = true;
	return true;
}

int
listcache_filter(struct listcache *lc, const char *buf, size_t len, int max_depth,
    jsonrpc_list_fn list, jsonrpc_keep_fn keep, void *arg, const struct rules_principal *who,
    struct jsonrpc_pieces *out)
{
	struct lc_entry *e, *oldest = &lc->e[0];
	struct jsonrpc_shape shape;
	struct jsonrpc_span id;
	int rc;

	memset(out, 0, sizeof *out);
	lc->clock++;
	for (size_t i = 0; i < LISTCACHE_ENTRIES; i++) {
		e = &lc->e[i];
		if (e->body == NULL) {
			oldest = e;
			continue;
		}
		if (oldest->body != NULL && e->used < oldest->used)
			oldest = e;
		if (lc_fits(e, buf, len, &id) &&
		    lc_filter(e, buf, len, id, list, keep, arg, who, out)) {
			e->used = lc->clock;
			lc->hits++;
			return 0;
		}
		jsonrpc_pieces_dispose(out);
	}
	lc->misses++;
	rc = jsonrpc_filter_shape(buf, len, max_depth, list, keep, arg, out, &shape);
	if (rc != 0 || !shape.ok || len > LISTCACHE_BODY_MAX || shape.n > LISTCACHE_ITEMS_MAX) {
		jsonrpc_shape_dispose(&shape);
		return rc;
	}
	lc_entry_clear(oldest);
	oldest->body = xmalloc(len);
	memcpy(oldest->body, buf, len);
	oldest->len = len;
	oldest->shape = shape;
	oldest->used = lc->clock;
	return 0;
}
