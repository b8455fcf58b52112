/*
 * Fuzz config_load (config/config.h) on a file written from the input, as
 * an operator's YAML or JSON would reach it, with an environment that is
 * empty (the getenv seam returns NULL). Each process writes one fixed file
 * under /tmp. Every error must format to one line; a config that loads
 * must print. The value parsers for durations and sizes get the input too.
 */
#include <stdio.h>
#include <unistd.h>

#include "config/config.h"
#include "test/fuzz/fuzz.h"

static char path[64];
static FILE *devnull;

static const char *
no_env(const char *name)
{
	return NULL;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	snprintf(path, sizeof path, "/tmp/mcp-fuzz-config.%ld.yaml", (long)getpid());
	if ((devnull = fopen("/dev/null", "w")) == NULL)
		abort();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config_errors errs = { 0 };
	struct config *cfg;
	FILE *f;
	char *s, *line;
	int64_t ms;
	uint64_t bytes;

	if ((f = fopen(path, "wb")) == NULL)
		abort();
	if (size > 0 && fwrite(data, 1, size, f) != size)
		abort();
	fclose(f);

	cfg = config_new();
	if (config_load(cfg, path, no_env, &errs) == 0) {
		FUZZ_ASSERT(errs.n == 0);
		config_print(cfg, devnull);
	} else {
		FUZZ_ASSERT(errs.n > 0);
	}
	for (size_t i = 0; i < errs.n; i++) {
		line = config_error_line(&errs.v[i]);
		FUZZ_ASSERT(line != NULL && strchr(line, '\n') == NULL);
		free(line);
	}
	config_errors_dispose(&errs);
	config_free(cfg);

	s = fuzz_str(data, size);
	if (config_parse_duration(s, &ms) == 0)
		FUZZ_ASSERT(ms >= 0);
	(void)config_parse_size(s, &bytes);
	free(s);
	return 0;
}
