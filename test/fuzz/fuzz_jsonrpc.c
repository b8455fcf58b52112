/*
 * Fuzz jsonrpc_parse (auth/policy/jsonrpc.h), the reader of every MCP
 * request body a client sends when authorization rules are on, and the
 * rules' glob over what it yields. An accepted body has one to max_batch
 * messages, each with a kind its fields agree with; names and methods are
 * NUL-free and bounded.
 */
#include "auth/policy/jsonrpc.h"
#include "auth/policy/rules.h"
#include "test/fuzz/fuzz.h"

static const struct jsonrpc_limits lim = { .max_size = 64 * 1024, .max_depth = 16,
	.max_batch = 8 };

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jsonrpc_body b;
	char err[160];

	if (jsonrpc_parse((const char *)data, size, &lim, &b, err, sizeof err) == JSONRPC_OK) {
		if (b.n == 0 || b.n > lim.max_batch)
			abort();
		for (size_t i = 0; i < b.n; i++) {
			const struct jsonrpc_msg *m = &b.msgs[i];

			if ((m->kind == JSONRPC_RESPONSE) != (m->method == NULL))
				abort();
			if ((m->kind == JSONRPC_NOTIFICATION) != (m->id.p == NULL && m->method != NULL))
				abort();
			if (m->method != NULL && strlen(m->method) > JSONRPC_METHOD_MAX)
				abort();
			if (m->name != NULL && strlen(m->name) > JSONRPC_NAME_MAX)
				abort();
			if (m->method != NULL) {
				(void)rules_match("tools/*:*a*b*", m->method, m->name);
				(void)jsonrpc_method_label(m->method);
			}
		}
	}
	jsonrpc_body_dispose(&b);
	return 0;
}
