/*
 * Printing the configuration: --print-config (secrets redacted) and the
 * README settings table, both from the settings table.
 */
#include "config/config.h"

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

/* ---- printing ---- */

/* A YAML double-quoted string, whole. */
void
config_print_quoted(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(out, "\\x%02x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

static void
print_secret(FILE *out, const struct secret_ref *r)
{
	if (r->env != NULL) {
		fputs("{env: ", out);
		config_print_quoted(out, r->env);
		fputs("}", out);
	} else if (r->name != NULL) {
		fputs("{name: ", out);
		config_print_quoted(out, r->name);
		fputs(", key: ", out);
		config_print_quoted(out, r->key != NULL ? r->key : "");
		fputs("}", out);
	} else {
		fputs("null", out);
		return;
	}
	fputs("  # value: <redacted>", out);
}

static void print_table(FILE *out, const struct setting *table, size_t n, const void *base,
    int indent, bool dash, int variant);

/* Print the value part of one setting (after "key:"). */
static void
print_value(FILE *out, const struct setting *s, const void *base, int indent)
{
	const void *f = (const char *)base + s->off;
	const struct config *cfg = base;
	char *t;

	switch (s->type) {
	case ST_SECTION:
		break;
	case ST_STRING:
		fputc(' ', out);
		if (*(char *const *)f == NULL)
			fputs("null", out);
		else
			config_print_quoted(out, *(char *const *)f);
		break;
	case ST_BOOL:
		fprintf(out, " %s", *(const bool *)f ? "true" : "false");
		break;
	case ST_UINT32:
		fprintf(out, " %" PRIu32, *(const uint32_t *)f);
		break;
	case ST_DOUBLE:
		fprintf(out, " %g", *(const double *)f);
		break;
	case ST_DURATION:
		t = config_format_duration(*(const int64_t *)f);
		fprintf(out, " %s", t);
		free(t);
		break;
	case ST_SIZE:
		t = config_format_size(*(const uint64_t *)f);
		fprintf(out, " %s", t);
		free(t);
		break;
	case ST_ENUM:
		fprintf(out, " %s", s->names[*(const int *)f]);
		break;
	case ST_STRLIST:
		fputs(" [", out);
		for (size_t i = 0; i < ((const struct strlist *)f)->n; i++) {
			fputs(i ? ", " : "", out);
			config_print_quoted(out, ((const struct strlist *)f)->v[i]);
		}
		fputs("]", out);
		break;
	case ST_SECRET:
		fputc(' ', out);
		print_secret(out, f);
		break;
	case ST_SECRETLIST:
		if (cfg->eas.n_signing_keys == 0)
			fputs(" []", out);
		for (size_t i = 0; i < cfg->eas.n_signing_keys; i++) {
			fprintf(out, "\n%*s- ", indent + 2, "");
			print_secret(out, &cfg->eas.signing_keys[i]);
		}
		break;
	case ST_PROVIDERS:
		if (cfg->eas.n_upstream_providers == 0)
			fputs(" []", out);
		fputc('\n', out);
		for (size_t i = 0; i < cfg->eas.n_upstream_providers; i++) {
			const struct upstream_provider *p = &cfg->eas.upstream_providers[i];
			print_table(out, config_provider_settings, N_PROVIDER_SETTINGS, p,
			    indent + 4, true, p->type == UPSTREAM_OIDC ? 1 : 2);
		}
		return;
	case ST_RULES:
		config_print_rules(out, cfg, indent);
		return;
	}
	fputc('\n', out);
}

/* How a top-level setting's value was derived when the user left it unset, or NULL. */
static const char *
derived_note(const struct setting *s, const struct config *cfg)
{
	if (s->off == offsetof(struct config, server.resource_url) && s->type == ST_STRING &&
	    cfg->server.resource_url_derived)
		return "embeddedAuthServer.issuer + \"/mcp\" (server.resourceUrl unset)";
	if (s->off == offsetof(struct config, server.peer_address) && s->type == ST_STRING &&
	    cfg->server.peer_address_derived)
		return "$POD_IP + the peerListen port (server.peerAddress unset)";
	return NULL;
}

/* Print a table as YAML at indent; dash starts a list item; variant filters providers' blocks. */
static void
print_table(FILE *out, const struct setting *table, size_t n, const void *base, int indent,
    bool dash, int variant)
{
	for (size_t i = 0; i < n; i++) {
		const struct setting *s = &table[i];
		const char *key = strrchr(s->path, '.');
		int depth = 0;

		if (s->variant != 0 && s->variant != variant)
			continue;
		for (const char *p = s->path; *p != '\0'; p++)
			depth += *p == '.';
		key = key != NULL ? key + 1 : s->path;
		if (table == config_settings && strcmp(s->path, "authorization") == 0 &&
		    !((const struct config *)base)->authz.present) {
			/* Printed as defaults it would turn the checks on when read back. */
			fputs("authorization: null  # absent: no MCP-level checks\n", out);
			while (i + 1 < n && strncmp(table[i + 1].path, "authorization.", 14) == 0)
				i++;
			continue;
		}
		if (dash) {
			fprintf(out, "%*s- ", indent - 2, "");
			dash = false;
		} else
			fprintf(out, "%*s", indent + depth * 2, "");
		fprintf(out, "%s:", key);
		if (s->type == ST_SECTION)
			fputc('\n', out);
		else if (table == config_settings && derived_note(s, base) != NULL) {
			fputc(' ', out);
			config_print_quoted(out, *(char *const *)((const char *)base + s->off));
			fprintf(out, "  # derived: %s\n", derived_note(s, base));
		} else
			print_value(out, s, base, indent + depth * 2);
	}
}

void
config_print(const struct config *cfg, FILE *out)
{
	fputs("# effective configuration (secrets redacted)\n", out);
	print_table(out, config_settings, N_SETTINGS, cfg, 0, false, 0);
}

static const char *
type_doc(const struct setting *s)
{
	switch (s->type) {
	case ST_STRING:
		return "string";
	case ST_BOOL:
		return "bool";
	case ST_UINT32:
		return "integer";
	case ST_DOUBLE:
		return "number";
	case ST_DURATION:
		return "duration";
	case ST_SIZE:
		return "size";
	case ST_ENUM:
		return NULL;
	case ST_STRLIST:
		return "list of strings";
	case ST_SECRET:
		return "secretRef";
	case ST_SECRETLIST:
		return "list of secretRef";
	case ST_PROVIDERS:
	case ST_RULES:
		return "list of objects";
	case ST_SECTION:
		break;
	}
	return "";
}

static void
print_doc_rows(FILE *out, const struct setting *table, size_t n, const char *prefix, bool file_only)
{
	for (size_t i = 0; i < n; i++) {
		const struct setting *s = &table[i];
		char *env;

		if (s->type == ST_SECTION)
			continue;
		fprintf(out, "| `%s%s` | ", prefix, s->path);
		if (file_only || !config_env_capable(s))
			fputs("(file only)", out);
		else {
			env = config_env_name_of(s);
			fprintf(out, "`%s`", env);
			free(env);
		}
		fputs(" | ", out);
		if (s->type == ST_ENUM) {
			for (size_t j = 0; s->names[j] != NULL; j++)
				fprintf(out, "%s`%s`", j ? " \\| " : "", s->names[j]);
		} else
			fputs(type_doc(s), out);
		fputs(" | ", out);
		if (s->doc_def != NULL)
			fputs(s->doc_def, out);
		else if (s->def == NULL)
			fputs("—", out);
		else if (*s->def == '\0')
			fputs("`\"\"`", out);
		else if (s->type == ST_STRLIST) {
			fputs("`[", out);
			for (const char *p = s->def; *p != '\0'; p++) {
				if (*p == ',')
					fputs(", ", out);
				else
					fputc(*p, out);
			}
			fputs("]`", out);
		} else
			fprintf(out, "`%s`", s->def);
		fprintf(out, " | %s |\n", s->doc);
	}
}

void
config_print_docs(FILE *out)
{
	fputs("\n| Key | Env | Type | Default | Description |\n|---|---|---|---|---|\n", out);
	print_doc_rows(out, config_settings, N_SETTINGS, "", false);
	print_doc_rows(out, config_provider_settings, N_PROVIDER_SETTINGS,
	    "embeddedAuthServer.upstreamProviders[].", true);
	fputs(
	    "\n"
	    "Formats:\n"
	    "\n"
	    "- **duration**: Go syntax, a sequence of numbers with units `ns`, `us`, `ms`, `s`, "
	    "`m`, `h` "
	    "(plus `d` = 24h): `500ms`, `10s`, `5m`, `1h30m`, `1.5h`; `0` alone is zero. No sign, "
	    "no "
	    "spaces, a unit is required.\n"
	    "- **size**: an integer number of bytes with an optional unit: `B`, `KiB`/`MiB`/`GiB` "
	    "(1024-based) or `KB`/`MB`/`GB` (1000-based): `8MiB`, `512KiB`, `1024`. No fractions.\n"
	    "- **bool**: exactly `true` or `false` (YAML 1.1 `yes`/`no`/`on`/`off` are rejected).\n"
	    "- **integer**: decimal digits only, range-checked.\n"
	    "- **secretRef**: `{name: N, key: K}` reads the file `<secretsDir>/N/K` (a mounted "
	    "Kubernetes "
	    "Secret; one trailing newline is stripped; N and K are plain names), or `{env: VAR}` "
	    "reads "
	    "an environment variable. Secret values are never printed.\n"
	    "- **env**: `MCP_PROXY_` + the key path in upper case with dots as underscores; the "
	    "environment wins over the file. Lists, secretRefs and `upstreamProviders` are file "
	    "only.\n"
	    "- The file may also be a whole ToolHive `MCPExternalAuthConfig` manifest with "
	    "`spec.type: embeddedAuthServer`; its `spec.embeddedAuthServer` is read as "
	    "`embeddedAuthServer` and everything else comes from the environment and defaults.\n"
	    "- Unknown keys are errors. Known ToolHive fields that are not implemented (for "
	    "example "
	    "`hmacSecretRefs`, `primaryUpstreamProvider`, `dcrConfig`) are reported as not "
	    "supported.\n"
	    "\n",
	    out);
}
