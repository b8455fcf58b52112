/*
 * Loading the configuration: the YAML/JSON file (libyaml document API,
 * located errors), a ToolHive MCPExternalAuthConfig manifest, the
 * MCP_PROXY_* environment, secretRefs, and the cross-field validation.
 * Every bad setting becomes one entry in struct config_errors.
 */
#include "config/config.h"

#include "common/b64url.h"
#include "common/xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "config/config_private.h"

/* ---- the YAML walk ---- */

static const char *
node_kind(const yaml_node_t *n)
{
	if (n->type == YAML_MAPPING_NODE)
		return "a mapping";
	if (n->type == YAML_SEQUENCE_NODE)
		return "a list";
	return "a scalar";
}

/* Fetch a node and mark it visited; NULL (with an error) for an alias seen before. */
static yaml_node_t *
take_node(struct load *ld, int idx, const char *path)
{
	yaml_node_t *n = yaml_document_get_node(ld->doc, idx);
	size_t i;

	if (n == NULL)
		return NULL;
	i = (size_t)(n - ld->doc->nodes.start);
	if (ld->visited[i]) {
		char *w = config_where_mark(ld, n->start_mark);
		config_errs_add(ld->errs, w, path, "YAML aliases are not supported");
		free(w);
		return NULL;
	}
	ld->visited[i] = 1;
	return n;
}

static bool
scalar_is_null(const yaml_node_t *n)
{
	const char *v = (const char *)n->data.scalar.value;

	return n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	    (*v == '\0' || strcmp(v, "null") == 0 || strcmp(v, "~") == 0 ||
		strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0);
}

/* A scalar's text, or NULL (with an error) when it is not a clean scalar. */
static const char *
scalar_text(struct load *ld, const yaml_node_t *n, const char *path, const char *noun)
{
	char *w;

	if (n->type == YAML_SCALAR_NODE &&
	    strlen((const char *)n->data.scalar.value) == n->data.scalar.length)
		return (const char *)n->data.scalar.value;
	w = config_where_mark(ld, n->start_mark);
	if (n->type == YAML_SCALAR_NODE)
		config_errs_add(ld->errs, w, path, "expected %s without NUL bytes", noun);
	else
		config_errs_add(ld->errs, w, path, "expected %s, got %s", noun, node_kind(n));
	free(w);
	return NULL;
}

static bool
is_unsupported(const char *key)
{
	for (size_t i = 0; config_unsupported_keys[i] != NULL; i++) {
		if (strcmp(config_unsupported_keys[i], key) == 0)
			return true;
	}
	return false;
}

static void load_map(struct load *ld, const yaml_node_t *map, const struct setting *table, size_t n,
    void *base, const char *tprefix, const char *dprefix, bool eas_scope);

static void
load_strlist(struct load *ld, const struct setting *s, struct strlist *l, const yaml_node_t *n,
    const char *path)
{
	yaml_node_item_t *it;
	char *w;

	if (n->type != YAML_SEQUENCE_NODE) {
		w = config_where_mark(ld, n->start_mark);
		config_errs_add(ld->errs, w, path, "expected a list of strings, got %s",
		    node_kind(n));
		free(w);
		return;
	}
	strlist_dispose(l);
	for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
		size_t i = (size_t)(it - n->data.sequence.items.start);
		char *ipath = xasprintf("%s[%zu]", path, i);
		yaml_node_t *item = take_node(ld, *it, ipath);
		const char *v, *why;

		if (item == NULL)
			goto next;
		w = config_where_mark(ld, item->start_mark);
		if (i >= CONFIG_MAX_LIST) {
			config_errs_add(ld->errs, w, path, "expected at most %d items",
			    CONFIG_MAX_LIST);
			free(w);
			free(ipath);
			break;
		}
		if ((v = scalar_text(ld, item, ipath, "a string")) != NULL) {
			if (strlen(v) > CONFIG_MAX_STRING)
				config_errs_add(ld->errs, w, ipath, "expected at most %d bytes",
				    CONFIG_MAX_STRING);
			else if (s->check != NULL && (why = s->check(v)) != NULL) {
				char *q = config_quote_value(v);
				config_errs_add(ld->errs, w, ipath, "%s, got %s", why, q);
				free(q);
			} else
				strlist_add(l, v);
		}
		free(w);
	next:
		free(ipath);
	}
}

/* Read a secretRef mapping: {name, key} or {env}; queue it for resolution. */
static void
load_secret(struct load *ld, struct secret_ref *ref, const yaml_node_t *n, const char *path)
{
	yaml_node_pair_t *pr;
	char *w = config_where_mark(ld, n->start_mark);
	struct pending_secret *ps;

	if (n->type == YAML_SCALAR_NODE && scalar_is_null(n))
		goto out;
	if (n->type != YAML_MAPPING_NODE) {
		config_errs_add(ld->errs, w, path,
		    "expected a secretRef {name, key} or {env}, got %s", node_kind(n));
		goto out;
	}
	config_secret_ref_dispose(ref);
	for (pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = take_node(ld, pr->key, path), *v = take_node(ld, pr->value, path);
		const char *ks, *vs;
		char *kpath, *kw;
		char **field = NULL;

		if (k == NULL || v == NULL || (ks = scalar_text(ld, k, path, "a key")) == NULL)
			continue;
		kpath = xasprintf("%s.%s", path, ks);
		kw = config_where_mark(ld, k->start_mark);
		if (strcmp(ks, "name") == 0)
			field = &ref->name;
		else if (strcmp(ks, "key") == 0)
			field = &ref->key;
		else if (strcmp(ks, "env") == 0)
			field = &ref->env;
		if (field == NULL)
			config_errs_add(ld->errs, kw, kpath,
			    "unknown key (expected name, key or env)");
		else if (*field != NULL)
			config_errs_add(ld->errs, kw, kpath, "duplicate key");
		else if ((vs = scalar_text(ld, v, kpath, "a string")) != NULL) {
			char *vw = config_where_mark(ld, v->start_mark),
			     *q = config_quote_value(vs);
			if (field == &ref->env && !config_env_name(vs))
				config_errs_add(ld->errs, vw, kpath,
				    "expected an environment variable name, got %s", q);
			else if (field != &ref->env && !config_plain_name(vs))
				config_errs_add(ld->errs, vw, kpath,
				    "expected a plain name (no '/', not '..'), got %s", q);
			else
				*field = xstrdup(vs);
			free(q);
			free(vw);
		}
		free(kw);
		free(kpath);
	}
	if (ref->env != NULL && (ref->name != NULL || ref->key != NULL))
		config_errs_add(ld->errs, w, path,
		    "expected either {name, key} or {env}, not both");
	else if (ref->env == NULL && (ref->name == NULL || ref->key == NULL))
		config_errs_add(ld->errs, w, path, "expected both name and key (or env)");
	else {
		ld->secrets = xreallocarray(ld->secrets, ld->n_secrets + 1, sizeof *ld->secrets);
		ps = &ld->secrets[ld->n_secrets++];
		ps->ref = ref;
		ps->where = xstrdup(w);
		ps->path = xstrdup(path);
	}
out:
	free(w);
}

static void
load_secretlist(struct load *ld, const yaml_node_t *n, const char *path)
{
	struct config *cfg = ld->cfg;
	size_t count;
	char *w;

	if (n->type != YAML_SEQUENCE_NODE) {
		w = config_where_mark(ld, n->start_mark);
		config_errs_add(ld->errs, w, path,
		    "expected a list of secretRef {name, key}, got %s", node_kind(n));
		free(w);
		return;
	}
	count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	if (count > 16) {
		w = config_where_mark(ld, n->start_mark);
		config_errs_add(ld->errs, w, path, "expected at most 16 signing keys");
		free(w);
		return;
	}
	for (size_t i = 0; i < cfg->eas.n_signing_keys; i++)
		config_secret_ref_dispose(&cfg->eas.signing_keys[i]);
	free(cfg->eas.signing_keys);
	cfg->eas.signing_keys = xcalloc(count, sizeof *cfg->eas.signing_keys);
	cfg->eas.n_signing_keys = count;
	for (size_t i = 0; i < count; i++) {
		char *ipath = xasprintf("%s[%zu]", path, i);
		yaml_node_t *item = take_node(ld, n->data.sequence.items.start[i], ipath);

		if (item != NULL)
			load_secret(ld, &cfg->eas.signing_keys[i], item, ipath);
		free(ipath);
	}
}

static void
load_providers(struct load *ld, const yaml_node_t *n, const char *path)
{
	struct config *cfg = ld->cfg;
	size_t count;
	char *w;

	if (n->type != YAML_SEQUENCE_NODE) {
		w = config_where_mark(ld, n->start_mark);
		config_errs_add(ld->errs, w, path, "expected a list of upstream providers, got %s",
		    node_kind(n));
		free(w);
		return;
	}
	count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	if (count > 16) {
		w = config_where_mark(ld, n->start_mark);
		config_errs_add(ld->errs, w, path, "expected at most 16 upstream providers");
		free(w);
		return;
	}
	for (size_t i = 0; i < cfg->eas.n_upstream_providers; i++)
		config_provider_dispose(&cfg->eas.upstream_providers[i]);
	free(cfg->eas.upstream_providers);
	for (size_t i = 0; i < ld->n_seen; i++) {
		free(ld->seen[i].where);
		free(ld->seen[i].path);
	}
	free(ld->seen);
	cfg->eas.upstream_providers = xcalloc(count, sizeof *cfg->eas.upstream_providers);
	cfg->eas.n_upstream_providers = count;
	ld->seen = xcalloc(count, sizeof *ld->seen);
	ld->n_seen = count;
	for (size_t i = 0; i < count; i++) {
		struct provider_seen *seen = &ld->seen[i];
		char *ipath = xasprintf("%s[%zu]", path, i);
		yaml_node_t *item = take_node(ld, n->data.sequence.items.start[i], ipath);
		yaml_node_pair_t *pr;

		seen->path = ipath;
		if (item == NULL)
			continue;
		seen->where = config_where_mark(ld, item->start_mark);
		if (item->type != YAML_MAPPING_NODE) {
			config_errs_add(ld->errs, seen->where, ipath, "expected a mapping, got %s",
			    node_kind(item));
			continue;
		}
		for (pr = item->data.mapping.pairs.start; pr < item->data.mapping.pairs.top; pr++) {
			yaml_node_t *k = yaml_document_get_node(ld->doc, pr->key);

			if (k == NULL || k->type != YAML_SCALAR_NODE)
				continue;
			if (strcmp((char *)k->data.scalar.value, "type") == 0)
				seen->type = true;
			else if (strcmp((char *)k->data.scalar.value, "oidcConfig") == 0)
				seen->oidc = true;
			else if (strcmp((char *)k->data.scalar.value, "oauth2Config") == 0)
				seen->oauth2 = true;
		}
		load_map(ld, item, config_provider_settings, N_PROVIDER_SETTINGS,
		    &cfg->eas.upstream_providers[i], NULL, ipath, true);
	}
}

static const struct setting *
find_setting(const struct setting *table, size_t n, const char *path)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(table[i].path, path) == 0)
			return &table[i];
	}
	return NULL;
}

/* Store one value node for setting s. */
static void
load_value(struct load *ld, const struct setting *s, const struct setting *table, size_t n,
    void *base, const yaml_node_t *v, const char *tpath, const char *dpath, bool eas_scope)
{
	char *w = config_where_mark(ld, v->start_mark);
	const char *text;

	if (table == config_settings)
		config_set_string(&ld->where[s - config_settings], w);
	switch (s->type) {
	case ST_SECTION:
		if (v->type == YAML_SCALAR_NODE && scalar_is_null(v))
			break;
		if (v->type != YAML_MAPPING_NODE) {
			config_errs_add(ld->errs, w, dpath, "expected a mapping, got %s",
			    node_kind(v));
			break;
		}
		if (table == config_settings && strcmp(s->path, "authorization") == 0)
			ld->cfg->authz.present = true;
		load_map(ld, v, table, n, base, tpath, dpath, eas_scope);
		break;
	case ST_STRLIST:
		if (v->type == YAML_SCALAR_NODE && scalar_is_null(v))
			strlist_dispose((struct strlist *)((char *)base + s->off));
		else
			load_strlist(ld, s, (struct strlist *)((char *)base + s->off), v, dpath);
		break;
	case ST_SECRET:
		load_secret(ld, (struct secret_ref *)((char *)base + s->off), v, dpath);
		break;
	case ST_SECRETLIST:
		load_secretlist(ld, v, dpath);
		break;
	case ST_PROVIDERS:
		load_providers(ld, v, dpath);
		break;
	case ST_RULES:
		config_load_rules(ld, v, dpath);
		break;
	default:
		if (v->type == YAML_SCALAR_NODE && scalar_is_null(v) && s->type == ST_STRING &&
		    s->def == NULL) {
			config_set_string((char **)((char *)base + s->off), NULL);
			break;
		}
		if (v->type != YAML_SCALAR_NODE) {
			if (s->type == ST_ENUM) {
				char buf[160];
				config_enum_expected(s, buf, sizeof buf);
				config_errs_add(ld->errs, w, dpath, "%s, got %s", buf,
				    node_kind(v));
			} else
				config_errs_add(ld->errs, w, dpath, "expected %s, got %s",
				    config_type_noun(s), node_kind(v));
			break;
		}
		if ((text = scalar_text(ld, v, dpath, config_type_noun(s))) != NULL)
			config_set_scalar(ld->errs, s, base, text, w, dpath);
		break;
	}
	free(w);
}

/*
 * Walk one mapping against a table: tprefix is the key path inside the
 * table, dprefix the path shown in errors (they differ for manifests and
 * provider entries). Every key is checked: duplicates, unknown keys and
 * known-but-unsupported ToolHive fields are reported.
 */
static void
load_map(struct load *ld, const yaml_node_t *map, const struct setting *table, size_t n, void *base,
    const char *tprefix, const char *dprefix, bool eas_scope)
{
	yaml_node_pair_t *pr, *prev;
	char *w;

	/* Bounded: the duplicate check below is quadratic. */
	if (map->data.mapping.pairs.top - map->data.mapping.pairs.start > CONFIG_MAX_KEYS) {
		w = config_where_mark(ld, map->start_mark);
		config_errs_add(ld->errs, w, dprefix != NULL ? dprefix : "",
		    "expected at most %d keys", CONFIG_MAX_KEYS);
		free(w);
		return;
	}
	for (pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = take_node(ld, pr->key, dprefix), *v, *pk;
		const struct setting *s;
		const char *ks;
		char *tpath, *dpath, *kw;
		bool dup = false;

		if (k == NULL ||
		    (ks = scalar_text(ld, k, dprefix != NULL ? dprefix : "", "a key")) == NULL)
			continue;
		tpath = tprefix != NULL ? xasprintf("%s.%s", tprefix, ks) : xstrdup(ks);
		dpath = dprefix != NULL ? xasprintf("%s.%s", dprefix, ks) : xstrdup(ks);
		kw = config_where_mark(ld, k->start_mark);
		for (prev = map->data.mapping.pairs.start; prev < pr; prev++) {
			pk = yaml_document_get_node(ld->doc, prev->key);
			if (pk != NULL && pk->type == YAML_SCALAR_NODE &&
			    strcmp((const char *)pk->data.scalar.value, ks) == 0)
				dup = true;
		}
		s = find_setting(table, n, tpath);
		if (dup)
			config_errs_add(ld->errs, kw, dpath, "duplicate key");
		else if (s == NULL &&
		    (eas_scope || strncmp(tpath, "embeddedAuthServer.", 19) == 0) &&
		    is_unsupported(ks))
			config_errs_add(ld->errs, kw, dpath,
			    "%s is not supported by mcp-proxy-runner", ks);
		else if (s == NULL)
			config_errs_add(ld->errs, kw, dpath, "unknown key");
		else if ((v = take_node(ld, pr->value, dpath)) != NULL)
			load_value(ld, s, table, n, base, v, tpath, dpath, eas_scope);
		free(kw);
		free(tpath);
		free(dpath);
	}
}

/* The value of key in a mapping (not marked visited), or NULL. */
static yaml_node_t *
map_get(struct load *ld, const yaml_node_t *map, const char *key, yaml_node_t **keynode)
{
	yaml_node_pair_t *pr;

	for (pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = yaml_document_get_node(ld->doc, pr->key);
		if (k != NULL && k->type == YAML_SCALAR_NODE &&
		    strcmp((char *)k->data.scalar.value, key) == 0) {
			if (keynode != NULL)
				*keynode = k;
			return yaml_document_get_node(ld->doc, pr->value);
		}
	}
	return NULL;
}

/* Check that a manifest's scalar field equals want. */
static bool
manifest_expect(struct load *ld, const yaml_node_t *map, const yaml_node_t *at, const char *key,
    const char *path, const char *want, bool prefix, const char *hint)
{
	yaml_node_t *v = map_get(ld, map, key, NULL);
	char *w, *q;
	bool ok;

	if (v == NULL) {
		w = config_where_mark(ld, at->start_mark);
		config_errs_add(ld->errs, w, path, "missing; expected %s%s", want,
		    prefix ? "..." : "");
		free(w);
		return false;
	}
	w = config_where_mark(ld, v->start_mark);
	if (v->type != YAML_SCALAR_NODE) {
		config_errs_add(ld->errs, w, path, "expected %s, got %s", want, node_kind(v));
		free(w);
		return false;
	}
	ok = prefix ? strncmp((char *)v->data.scalar.value, want, strlen(want)) == 0
		    : strcmp((char *)v->data.scalar.value, want) == 0;
	if (!ok) {
		q = config_quote_value((char *)v->data.scalar.value);
		config_errs_add(ld->errs, w, path, "expected %s%s, got %s%s", want,
		    prefix ? "..." : "", q, hint);
		free(q);
	}
	free(w);
	return ok;
}

/* Walk a whole MCPExternalAuthConfig manifest: spec.embeddedAuthServer only. */
static void
load_manifest(struct load *ld, const yaml_node_t *root)
{
	static const char *const top_keys[] = { "apiVersion", "kind", "metadata", "spec", "status",
		NULL };
	yaml_node_pair_t *pr, *prev;
	yaml_node_t *spec, *eas, *k;
	bool known;
	char *w;

	if (root->data.mapping.pairs.top - root->data.mapping.pairs.start > CONFIG_MAX_KEYS) {
		w = config_where_mark(ld, root->start_mark);
		config_errs_add(ld->errs, w, "", "expected at most %d keys", CONFIG_MAX_KEYS);
		free(w);
		return;
	}
	for (pr = root->data.mapping.pairs.start; pr < root->data.mapping.pairs.top; pr++) {
		k = take_node(ld, pr->key, "");
		if (k == NULL || scalar_text(ld, k, "", "a key") == NULL)
			continue;
		w = config_where_mark(ld, k->start_mark);
		known = false;
		for (size_t i = 0; top_keys[i] != NULL; i++)
			known = known || strcmp(top_keys[i], (char *)k->data.scalar.value) == 0;
		for (prev = root->data.mapping.pairs.start; prev < pr; prev++) {
			yaml_node_t *pk = yaml_document_get_node(ld->doc, prev->key);
			if (pk != NULL && pk->type == YAML_SCALAR_NODE &&
			    strcmp((char *)pk->data.scalar.value, (char *)k->data.scalar.value) ==
				0) {
				config_errs_add(ld->errs, w, (char *)k->data.scalar.value,
				    "duplicate key");
				known = true;
			}
		}
		if (!known)
			config_errs_add(ld->errs, w, (char *)k->data.scalar.value,
			    "unknown key in an MCPExternalAuthConfig manifest (expected "
			    "apiVersion, kind, metadata, spec)");
		free(w);
	}
	manifest_expect(ld, root, root, "apiVersion", "apiVersion", "toolhive.stacklok.dev/", true,
	    "");
	manifest_expect(ld, root, root, "kind", "kind", "MCPExternalAuthConfig", false, "");
	spec = map_get(ld, root, "spec", NULL);
	if (spec == NULL) {
		w = config_where_mark(ld, root->start_mark);
		config_errs_add(ld->errs, w, "spec",
		    "missing; expected spec.type: embeddedAuthServer");
		free(w);
		return;
	}
	if (spec->type != YAML_MAPPING_NODE) {
		w = config_where_mark(ld, spec->start_mark);
		config_errs_add(ld->errs, w, "spec", "expected a mapping, got %s", node_kind(spec));
		free(w);
		return;
	}
	if (!manifest_expect(ld, spec, spec, "type", "spec.type", "embeddedAuthServer", false,
		" (mcp-proxy-runner only reads embeddedAuthServer configs)"))
		return;
	for (pr = spec->data.mapping.pairs.start; pr < spec->data.mapping.pairs.top; pr++) {
		k = yaml_document_get_node(ld->doc, pr->key);
		if (k == NULL || k->type != YAML_SCALAR_NODE)
			continue;
		if (strcmp((char *)k->data.scalar.value, "type") != 0 &&
		    strcmp((char *)k->data.scalar.value, "embeddedAuthServer") != 0) {
			w = config_where_mark(ld, k->start_mark);
			char *p = xasprintf("spec.%s", (char *)k->data.scalar.value);
			config_errs_add(ld->errs, w, p,
			    "unknown key (expected type, embeddedAuthServer)");
			free(p);
			free(w);
		}
	}
	eas = map_get(ld, spec, "embeddedAuthServer", &k);
	if (eas == NULL) {
		w = config_where_mark(ld, spec->start_mark);
		config_errs_add(ld->errs, w, "spec.embeddedAuthServer", "missing");
		free(w);
		return;
	}
	ld->visited[eas - ld->doc->nodes.start] = 1;
	load_value(ld, find_setting(config_settings, N_SETTINGS, "embeddedAuthServer"),
	    config_settings, N_SETTINGS, ld->cfg, eas, "embeddedAuthServer",
	    "spec.embeddedAuthServer", true);
}

static int
read_file(const char *path, size_t max, char **out, size_t *out_len, const char **why)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	ssize_t r;
	int fd, rc = -1;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		*why = strerror(errno);
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		*why = "not a regular file";
		goto out;
	}
	if ((uint64_t)st.st_size > max) {
		*why = "file too large";
		goto out;
	}
	buf = xmalloc(max + 1);
	while ((r = read(fd, buf + len, max + 1 - len)) > 0) {
		len += (size_t)r;
		if (len > max) {
			*why = "file too large";
			goto out;
		}
	}
	if (r == -1) {
		*why = strerror(errno);
		goto out;
	}
	buf[len] = '\0';
	*out = buf;
	*out_len = len;
	buf = NULL;
	rc = 0;
out:
	if (buf != NULL) {
		explicit_bzero(buf, max + 1);
		free(buf);
	}
	close(fd);
	return rc;
}

/* Parse the file into a document and walk it. */
static void
load_file(struct load *ld, const char *path)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root;
	char *text = NULL, *w;
	size_t len;
	const char *why;
	bool parser_ok = false, doc_ok = false;

	if (read_file(path, CONFIG_MAX_FILE, &text, &len, &why) == -1) {
		config_errs_add(ld->errs, path, "", "cannot read config file: %s", why);
		ld->file_unreadable = true;
		return;
	}
	if (!yaml_parser_initialize(&parser)) {
		config_errs_add(ld->errs, path, "", "cannot initialize the YAML parser");
		goto out;
	}
	parser_ok = true;
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		w = xasprintf("%s:%zu:%zu", path, parser.problem_mark.line + 1,
		    parser.problem_mark.column + 1);
		if (parser.context != NULL)
			config_errs_add(ld->errs, w, "", "YAML syntax error: %s %s", parser.problem,
			    parser.context);
		else
			config_errs_add(ld->errs, w, "", "YAML syntax error: %s",
			    parser.problem != NULL ? parser.problem : "unknown");
		free(w);
		ld->file_unreadable = true;
		goto out;
	}
	doc_ok = true;
	ld->doc = &doc;
	ld->n_nodes = (size_t)(doc.nodes.top - doc.nodes.start);
	ld->visited = xcalloc(ld->n_nodes + 1, 1);
	root = yaml_document_get_root_node(&doc);
	if (root == NULL)
		goto out; /* an empty file: defaults */
	{
		yaml_document_t next;
		if (yaml_parser_load(&parser, &next)) {
			if (yaml_document_get_root_node(&next) != NULL) {
				w = config_where_mark(ld,
				    yaml_document_get_root_node(&next)->start_mark);
				config_errs_add(ld->errs, w, "", "expected a single YAML document");
				free(w);
			}
			yaml_document_delete(&next);
		}
	}
	ld->visited[0] = 1;
	if (root->type != YAML_MAPPING_NODE) {
		w = config_where_mark(ld, root->start_mark);
		config_errs_add(ld->errs, w, "", "expected a mapping at the top level, got %s",
		    node_kind(root));
		free(w);
		goto out;
	}
	if (map_get(ld, root, "kind", NULL) != NULL ||
	    map_get(ld, root, "apiVersion", NULL) != NULL ||
	    map_get(ld, root, "spec", NULL) != NULL)
		load_manifest(ld, root);
	else
		load_map(ld, root, config_settings, N_SETTINGS, ld->cfg, NULL, NULL, false);
out:
	if (doc_ok)
		yaml_document_delete(&doc);
	ld->doc = NULL;
	if (parser_ok)
		yaml_parser_delete(&parser);
	free(text);
}

/* The walk's helpers for rules.c (config_private.h). */
yaml_node_t *
config_take_node(struct load *ld, int idx, const char *path)
{
	return take_node(ld, idx, path);
}

const char *
config_scalar_text(struct load *ld, const yaml_node_t *n, const char *path, const char *noun)
{
	return scalar_text(ld, n, path, noun);
}

const char *
config_node_kind(const yaml_node_t *n)
{
	return node_kind(n);
}

/* ---- environment, secrets, validation ---- */

char *
config_env_name_of(const struct setting *s)
{
	char *name, *p;

	if (s->env != NULL)
		return xstrdup(s->env);
	name = xasprintf("MCP_PROXY_%s", s->path);
	for (p = name; *p != '\0'; p++)
		*p = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
	return name;
}

bool
config_env_capable(const struct setting *s)
{
	return s->type != ST_SECTION && !(s->flags & SF_FILE_ONLY);
}

static void
load_env(struct load *ld)
{
	for (size_t i = 0; i < N_SETTINGS; i++) {
		const struct setting *s = &config_settings[i];
		char *name, *where;
		const char *v;

		if (!config_env_capable(s))
			continue;
		name = config_env_name_of(s);
		if ((v = ld->getenv_fn(name)) != NULL) {
			where = xasprintf("env %s", name);
			if (config_set_scalar(ld->errs, s, ld->cfg, v, where, s->path) == 0)
				config_set_string(&ld->where[i], where);
			free(where);
		}
		free(name);
	}
}

static void
resolve_secret(struct load *ld, struct pending_secret *ps)
{
	struct secret_ref *r = ps->ref;
	char *file = NULL, *buf = NULL;
	const char *v, *why;
	size_t len;

	if (r->env != NULL) {
		if ((v = ld->getenv_fn(r->env)) == NULL) {
			config_errs_add(ld->errs, ps->where, ps->path,
			    "environment variable %s is not set", r->env);
			return;
		}
		len = strlen(v);
		buf = xstrdup(v);
	} else {
		file = xasprintf("%s/%s/%s", ld->cfg->secrets_dir, r->name, r->key);
		if (read_file(file, CONFIG_MAX_SECRET, &buf, &len, &why) == -1) {
			config_errs_add(ld->errs, ps->where, ps->path,
			    "cannot read secret file %s: %s", file, why);
			goto out;
		}
		if (len > 0 && buf[len - 1] == '\n')
			buf[--len] = '\0';
		if (len > 0 && buf[len - 1] == '\r')
			buf[--len] = '\0';
	}
	if (len == 0 || memchr(buf, '\0', len) != NULL) {
		config_errs_add(ld->errs, ps->where, ps->path,
		    "secret %s is empty or contains NUL bytes", file != NULL ? file : r->env);
		xfree_secret(buf);
		goto out;
	}
	xfree_secret(r->value);
	r->value = buf;
	r->value_len = len;
out:
	free(file);
}

static const char *
where_of(struct load *ld, const char *path)
{
	const struct setting *s = find_setting(config_settings, N_SETTINGS, path);

	if (s != NULL && ld->where[s - config_settings] != NULL)
		return ld->where[s - config_settings];
	return "";
}

/* An http URL is fine only with the insecure flag; report the rest. */
static void
require_https(struct load *ld, const char *url, bool insecure, const char *where, const char *path,
    const char *flag)
{
	if (url != NULL && !config_is_https(url) && !insecure)
		config_errs_add(ld->errs, where, path,
		    "expected an https URL (http needs %s: true), got an http URL", flag);
}

static void
validate_provider(struct load *ld, size_t i)
{
	struct config *cfg = ld->cfg;
	struct upstream_provider *p = &cfg->eas.upstream_providers[i];
	struct provider_seen *seen = &ld->seen[i];
	const char *w = seen->where != NULL ? seen->where : "";
	const char *flag = "embeddedAuthServer.insecureAllowHTTP";
	bool insecure = cfg->eas.insecure_allow_http;
	size_t ilen;

	if (p->name == NULL)
		config_errs_add(ld->errs, w, seen->path, "name is required");
	if (!seen->type) {
		config_errs_add(ld->errs, w, seen->path, "type is required (oidc or oauth2)");
		return;
	}
	if (seen->oidc && seen->oauth2) {
		config_errs_add(ld->errs, w, seen->path,
		    "expected one of oidcConfig or oauth2Config, not both");
		return;
	}
	if (p->type == UPSTREAM_OIDC && !seen->oidc) {
		config_errs_add(ld->errs, w, seen->path, "type is oidc but oidcConfig is missing%s",
		    seen->oauth2 ? " (oauth2Config given: set type: oauth2)" : "");
		return;
	}
	if (p->type == UPSTREAM_OAUTH2 && !seen->oauth2) {
		config_errs_add(ld->errs, w, seen->path,
		    "type is oauth2 but oauth2Config is missing%s",
		    seen->oidc ? " (oidcConfig given: set type: oidc)" : "");
		return;
	}
	if (p->client_id == NULL)
		config_errs_add(ld->errs, w, seen->path, "%s.clientId is required",
		    p->type == UPSTREAM_OIDC ? "oidcConfig" : "oauth2Config");
	if (p->type == UPSTREAM_OIDC) {
		if (p->issuer_url == NULL)
			config_errs_add(ld->errs, w, seen->path,
			    "oidcConfig.issuerUrl is required");
		require_https(ld, p->issuer_url, insecure, w, seen->path, flag);
		if (p->scopes.n == 0) {
			strlist_add(&p->scopes, "openid");
			strlist_add(&p->scopes, "offline_access");
		}
		if (p->subject_claim == NULL)
			p->subject_claim = xstrdup("sub");
	} else {
		if (p->authorization_endpoint == NULL)
			config_errs_add(ld->errs, w, seen->path,
			    "oauth2Config.authorizationEndpoint is required");
		if (p->token_endpoint == NULL)
			config_errs_add(ld->errs, w, seen->path,
			    "oauth2Config.tokenEndpoint is required");
		require_https(ld, p->authorization_endpoint, insecure, w, seen->path, flag);
		require_https(ld, p->token_endpoint, insecure, w, seen->path, flag);
		require_https(ld, p->userinfo_endpoint, insecure, w, seen->path, flag);
	}
	if (p->redirect_uri == NULL && cfg->eas.issuer != NULL) {
		ilen = strlen(cfg->eas.issuer);
		while (ilen > 0 && cfg->eas.issuer[ilen - 1] == '/')
			ilen--;
		p->redirect_uri = xasprintf("%.*s/oauth/callback", (int)ilen, cfg->eas.issuer);
	}
}

/*
 * server.resourceUrl unset in embedded mode: the AS is mounted on the proxy,
 * so the issuer is the proxy's public URL and the MCP endpoint is its origin
 * and path plus "/mcp" (as ToolHive derives it). The issuer passed its URL
 * check (no query, no fragment), so the result passes resourceUrl's.
 */
static void
derive_resource_url(struct config *cfg)
{
	size_t n = strlen(cfg->eas.issuer);

	while (n > 0 && cfg->eas.issuer[n - 1] == '/')
		n--;
	cfg->server.resource_url = xasprintf("%.*s/mcp", (int)n, cfg->eas.issuer);
	cfg->server.resource_url_derived = true;
}

/* The encryption key Secret: one to SEAL_MAX_KEYS (4) keys of 32 bytes in
 * base64, one per line, blank lines ignored (auth/store/seal.c reads it
 * the same way: the first seals, all open). */
static bool
load_encryption_keys_ok(const char *text)
{
	unsigned char key[40];
	char line[128];
	const char *p = text, *e;
	size_t len, klen = 0;
	int n = 0;
	bool ok = true;

	while (ok && *p != '\0') {
		e = strchr(p, '\n');
		len = e != NULL ? (size_t)(e - p) : strlen(p);
		p += len + (e != NULL);
		if (len >= sizeof line) {
			ok = false;
			break;
		}
		memcpy(line, p - len - (e != NULL), len);
		line[len] = '\0';
		if (strspn(line, " \t\r") == len)
			continue;
		ok = b64_decode_lenient(line, key, sizeof key, &klen) == 0 && klen == 32 &&
		    ++n <= 4;
	}
	explicit_bzero(key, sizeof key);
	explicit_bzero(line, sizeof line);
	return ok && n > 0;
}

/* embeddedAuthServer.storage: the ToolHive shape is accepted whole; what
 * this build cannot do yet is refused with one line each. */
static void
validate_storage(struct load *ld, const struct config *cfg)
{
	const char *p = "embeddedAuthServer.storage.redis";
	const struct storage_redis *r = &cfg->eas.storage.redis;
	char path[96];

	if (r->cluster_mode)
		config_errs_add(ld->errs, where_of(ld, "embeddedAuthServer.storage"),
		    "embeddedAuthServer.storage.redis.clusterMode", "not supported yet");
	if (r->sentinel_service != NULL)
		config_errs_add(ld->errs, where_of(ld, "embeddedAuthServer.storage"),
		    "embeddedAuthServer.storage.redis.sentinelService", "not supported yet");
	if (r->encryption_key.value != NULL && !load_encryption_keys_ok(r->encryption_key.value))
		config_errs_add(ld->errs, where_of(ld, "embeddedAuthServer.storage"),
		    "embeddedAuthServer.storage.redis.encryptionKeySecretRef",
		    "expected 32 bytes in base64 (e.g. `openssl rand -base64 32`), or up to 4 such "
		    "keys one per line (the first seals)");
	if (cfg->eas.storage.type != STORAGE_REDIS)
		return;
	snprintf(path, sizeof path, "%s.addr", p);
	if ((r->addr == NULL) == (r->sentinel.master_name == NULL))
		config_errs_add(ld->errs, where_of(ld, "embeddedAuthServer.storage"), path,
		    "storage.type redis needs addr or sentinelConfig (one of them)");
	if (r->sentinel.master_name != NULL && r->sentinel.sentinel_addrs.n == 0)
		config_errs_add(ld->errs, where_of(ld, "embeddedAuthServer.storage"),
		    "embeddedAuthServer.storage.redis.sentinelConfig.sentinelAddrs",
		    "required with sentinelConfig.masterName");
	if (r->encryption_key.name == NULL && r->encryption_key.env == NULL)
		config_errs_add(ld->errs, where_of(ld, "embeddedAuthServer.storage"),
		    "embeddedAuthServer.storage.redis.encryptionKeySecretRef",
		    "required with storage.type redis (upstream tokens are sealed with it)");
	if (cfg->eas.n_signing_keys == 0)
		config_errs_add(ld->errs, where_of(ld, "embeddedAuthServer.storage.type"),
		    "embeddedAuthServer.signingKeySecretRefs",
		    "required with storage.type redis (every replica must sign with the same "
		    "keys)");
}

/*
 * The peer listener: a secret every replica shares, and the address the
 * others reach this one under (POD_IP from the downward API and the peer
 * port, unless given; a port 0 is filled in once bound).
 */
static void
validate_peer(struct load *ld, struct config *cfg)
{
	const char *pod_ip, *port;

	if (cfg->server.peer_secret.value != NULL && cfg->server.peer_secret.value_len < 32)
		config_errs_add(ld->errs, where_of(ld, "server.peerSecretRef"),
		    "server.peerSecretRef", "expected a secret of at least 32 bytes, got %zu",
		    cfg->server.peer_secret.value_len);
	if (cfg->server.peer_listen == NULL)
		return;
	if (cfg->server.peer_secret.name == NULL && cfg->server.peer_secret.env == NULL)
		config_errs_add(ld->errs, where_of(ld, "server.peerListen"), "server.peerSecretRef",
		    "required with server.peerListen (it authenticates the replicas to each "
		    "other)");
	if (cfg->server.peer_address != NULL)
		return;
	pod_ip = ld->getenv_fn("POD_IP");
	if (pod_ip == NULL || *pod_ip == '\0' || strpbrk(pod_ip, " \t\r\n[]") != NULL) {
		config_errs_add(ld->errs, where_of(ld, "server.peerListen"), "server.peerAddress",
		    "required with server.peerListen when the POD_IP environment variable (the "
		    "downward API's status.podIP) is not set");
		return;
	}
	port = strrchr(cfg->server.peer_listen, ':') + 1;
	cfg->server.peer_address = strchr(pod_ip, ':') != NULL ? xasprintf("[%s]:%s", pod_ip, port)
							       : xasprintf("%s:%s", pod_ip, port);
	cfg->server.peer_address_derived = true;
}

static void
validate(struct load *ld)
{
	struct config *cfg = ld->cfg;

	validate_peer(ld, cfg);

	if (cfg->audit.enabled && !cfg->authz.present)
		config_errs_add(ld->errs, where_of(ld, "audit.enabled"), "audit.enabled",
		    "needs the authorization section (authorization: {defaultDecision: allow} "
		    "audits everything without restricting it)");
	if (cfg->auth.mode == AUTH_MODE_OIDC && cfg->server.resource_url == NULL)
		config_errs_add(ld->errs, "", "server.resourceUrl",
		    "required when auth.mode is oidc (set it or MCP_PROXY_SERVER_RESOURCEURL)");
	if (cfg->auth.mode == AUTH_MODE_OIDC) {
		if (cfg->auth.oidc.issuer == NULL)
			config_errs_add(ld->errs, where_of(ld, "auth.mode"), "auth.oidc.issuer",
			    "required when auth.mode is oidc");
		if (cfg->auth.oidc.audience == NULL)
			config_errs_add(ld->errs, where_of(ld, "auth.mode"), "auth.oidc.audience",
			    "required when auth.mode is oidc");
		require_https(ld, cfg->auth.oidc.issuer, cfg->auth.oidc.insecure_allow_http,
		    where_of(ld, "auth.oidc.issuer"), "auth.oidc.issuer",
		    "auth.oidc.insecureAllowHTTP");
		require_https(ld, cfg->auth.oidc.jwks_url, cfg->auth.oidc.insecure_allow_http,
		    where_of(ld, "auth.oidc.jwksUrl"), "auth.oidc.jwksUrl",
		    "auth.oidc.insecureAllowHTTP");
		require_https(ld, cfg->auth.oidc.introspection_url,
		    cfg->auth.oidc.insecure_allow_http, where_of(ld, "auth.oidc.introspectionUrl"),
		    "auth.oidc.introspectionUrl", "auth.oidc.insecureAllowHTTP");
	}
	if (cfg->eas.cimd.cache_min_ttl_ms > cfg->eas.cimd.cache_max_ttl_ms)
		config_errs_add(ld->errs, where_of(ld, "embeddedAuthServer.cimd.cacheMinTtl"),
		    "embeddedAuthServer.cimd.cacheMinTtl", "expected a duration <= cacheMaxTtl");
	validate_storage(ld, cfg);
	for (size_t i = 0; i < cfg->eas.n_signing_keys; i++) {
		const char *v = cfg->eas.signing_keys[i].value;
		if (v != NULL && strstr(v, "-----BEGIN ") == NULL)
			config_errs_add(ld->errs,
			    where_of(ld, "embeddedAuthServer.signingKeySecretRefs"),
			    "embeddedAuthServer.signingKeySecretRefs",
			    "secret [%zu] is not a PEM private key (no -----BEGIN line)", i);
	}
	if (cfg->auth.mode != AUTH_MODE_EMBEDDED)
		return;
	if (cfg->eas.issuer == NULL)
		config_errs_add(ld->errs, where_of(ld, "embeddedAuthServer"),
		    "embeddedAuthServer.issuer", "required when auth.mode is embedded");
	else if (cfg->server.resource_url == NULL)
		derive_resource_url(cfg);
	require_https(ld, cfg->eas.issuer, cfg->eas.insecure_allow_http,
	    where_of(ld, "embeddedAuthServer.issuer"), "embeddedAuthServer.issuer",
	    "embeddedAuthServer.insecureAllowHTTP");
	require_https(ld, cfg->eas.authorization_endpoint_base_url, cfg->eas.insecure_allow_http,
	    where_of(ld, "embeddedAuthServer.authorizationEndpointBaseUrl"),
	    "embeddedAuthServer.authorizationEndpointBaseUrl",
	    "embeddedAuthServer.insecureAllowHTTP");
	if (cfg->eas.n_upstream_providers == 0)
		config_errs_add(ld->errs, where_of(ld, "embeddedAuthServer.upstreamProviders"),
		    "embeddedAuthServer.upstreamProviders",
		    "exactly one upstream provider is required");
	else if (cfg->eas.n_upstream_providers > 1)
		config_errs_add(ld->errs, where_of(ld, "embeddedAuthServer.upstreamProviders"),
		    "embeddedAuthServer.upstreamProviders",
		    "multiple upstream providers are not supported yet");
	for (size_t i = 0; i < cfg->eas.n_upstream_providers && i < ld->n_seen; i++)
		validate_provider(ld, i);
}

static const char *
real_getenv(const char *name)
{
	return getenv(name);
}

int
config_load(struct config *cfg, const char *path, config_getenv_fn getenv_fn,
    struct config_errors *errs)
{
	struct load ld;
	size_t before = errs->n;

	memset(&ld, 0, sizeof ld);
	ld.cfg = cfg;
	ld.errs = errs;
	ld.getenv_fn = getenv_fn != NULL ? getenv_fn : real_getenv;
	ld.file = path;
	if (path != NULL) {
		config_set_string(&cfg->source_path, path);
		load_file(&ld, path);
		free(ld.visited);
		ld.visited = NULL;
	}
	load_env(&ld);
	for (size_t i = 0; i < ld.n_secrets; i++)
		resolve_secret(&ld, &ld.secrets[i]);
	/* Cross-field checks on a file that could not be read would only add noise. */
	if (!ld.file_unreadable)
		validate(&ld);

	for (size_t i = 0; i < ld.n_secrets; i++) {
		free(ld.secrets[i].where);
		free(ld.secrets[i].path);
	}
	free(ld.secrets);
	for (size_t i = 0; i < ld.n_seen; i++) {
		free(ld.seen[i].where);
		free(ld.seen[i].path);
	}
	free(ld.seen);
	for (size_t i = 0; i < N_SETTINGS; i++)
		free(ld.where[i]);
	return errs->n == before ? 0 : -1;
}
