/*
 * What the config room's files share and no one else sees: the settings
 * table's shape (config.c holds the table and the value formats), the
 * loader's state (load.c: file, env, secrets, validation) and the helpers
 * print.c (--print-config, the README table) uses.
 */
#ifndef CONFIG_PRIVATE_H
#define CONFIG_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <yaml.h>

#include "config/config.h"

#define CONFIG_MAX_FILE (1024 * 1024) /* config file size cap */
#define CONFIG_MAX_SECRET (64 * 1024) /* secret file size cap */
#define CONFIG_MAX_LIST 256           /* items in any list */
#define CONFIG_MAX_KEYS 256           /* keys in any mapping */
#define CONFIG_MAX_STRING 4096        /* bytes in any string */
#define CONFIG_MAX_GOT 64             /* bytes of a bad value echoed */

#define MS_S 1000LL
#define MS_M (60 * MS_S)
#define MS_H (60 * MS_M)
#define MS_D (24 * MS_H)
#define KIB 1024LL
#define MIB (1024 * KIB)
#define GIB (1024 * MIB)

enum setting_type {
	ST_SECTION,
	ST_STRING,
	ST_BOOL,
	ST_UINT32,
	ST_DOUBLE,
	ST_DURATION,
	ST_SIZE,
	ST_ENUM,
	ST_STRLIST,
	ST_SECRET,
	ST_SECRETLIST,
	ST_PROVIDERS,
	ST_RULES,
};

#define SF_FILE_ONLY 0x1 /* no environment variable */
#define SF_RANGE 0x2     /* min/max apply */
#define SF_ZERO_OFF 0x4  /* a number: 0 is allowed (and means off) */

/* A string (or list item) format check: NULL when fine, else "expected ...". */
typedef const char *(*setting_check_fn)(const char *s);

struct setting {
	const char *path; /* key path below the table's root */
	enum setting_type type;
	size_t off;      /* field offset in the table's struct */
	const char *def; /* default as a user writes it; NULL = unset */
	const char *doc;
	unsigned flags;
	int64_t min, max;         /* SF_RANGE: integers, ms, bytes */
	const char *const *names; /* ST_ENUM: value = index */
	setting_check_fn check;   /* ST_STRING, ST_STRLIST items */
	int variant;              /* providers: 1 oidcConfig, 2 oauth2Config */
	const char *env;          /* explicit env name (secretsDir) */
	const char *doc_def;      /* docs' default when it is derived, not a literal */
};

/* The table (config.c). The counts are checked there at compile time. */
#define N_SETTINGS 113
#define N_PROVIDER_SETTINGS 18
extern const struct setting config_settings[];
extern const struct setting config_provider_settings[];

/* A secretRef found in the file, resolved once secretsDir is final. */
struct pending_secret {
	struct secret_ref *ref;
	char *where;
	char *path;
};

/* What a provider entry contained, for the cross-field checks. */
struct provider_seen {
	bool type, oidc, oauth2;
	char *where;
	char *path;
};

struct load {
	struct config *cfg;
	struct config_errors *errs;
	config_getenv_fn getenv_fn;
	const char *file;
	yaml_document_t *doc;
	unsigned char *visited;
	size_t n_nodes;
	char *where[N_SETTINGS]; /* where each top-level setting was last set */
	struct pending_secret *secrets;
	size_t n_secrets;
	struct provider_seen *seen;
	size_t n_seen;
	bool file_unreadable; /* missing file or YAML syntax error */
};

/* Keys of the ToolHive shape we know but do not implement (NULL-ended). */
extern const char *const config_unsupported_keys[];

/* config.c */
void config_errs_add(struct config_errors *errs, const char *where, const char *path,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
char *config_quote_value(const char *s);
/* print.c: a YAML double-quoted string, whole (config_quote_value() cuts). */
void config_print_quoted(FILE *out, const char *s);
char *config_where_mark(const struct load *ld, yaml_mark_t m);
void config_set_string(char **field, const char *s);
void config_secret_ref_dispose(struct secret_ref *r);
void config_provider_dispose(struct upstream_provider *p);
char *config_format_duration(int64_t ms);
char *config_format_size(uint64_t b);
bool config_is_https(const char *s);
bool config_plain_name(const char *s);
bool config_env_name(const char *s);
const char *config_type_noun(const struct setting *s);
void config_enum_expected(const struct setting *s, char *buf, size_t len);
int config_set_scalar(struct config_errors *errs, const struct setting *s, void *base,
    const char *val, const char *where, const char *path);
/* load.c */
char *config_env_name_of(const struct setting *s);
bool config_env_capable(const struct setting *s);
/* The YAML walk, for rules.c: a node marked visited (NULL and an error for
 * an alias seen before), a clean scalar's text (else NULL and an error), a
 * node's kind for messages. */
yaml_node_t *config_take_node(struct load *ld, int idx, const char *path);
const char *config_scalar_text(struct load *ld, const yaml_node_t *n, const char *path,
    const char *noun);
const char *config_node_kind(const yaml_node_t *n);
/* rules.c: authorization.rules[] */
void config_load_rules(struct load *ld, const yaml_node_t *n, const char *path);
void config_rules_dispose(struct config *cfg);
void config_print_rules(FILE *out, const struct config *cfg, int indent);

#endif
