/*
 * Fuzz cimd_doc_validate (auth/cimd_doc.h), the strict validation of a
 * client metadata document a third party serves. The first line is the
 * URL the document was "fetched" from (only URLs cimd_url_check accepts
 * get this far in production), the rest is the response body exactly as
 * fetch hands it over (NUL-terminated, possibly holding NULs). An accepted
 * document yields a public client under that URL with valid redirects.
 */
#include "auth/cimd/cimd_doc.h"
#include "auth/client/client.h"
#include "config/config.h"
#include "test/fuzz/fuzz.h"

static struct config *cfg;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	cfg = config_new();
	strlist_add(&cfg->eas.baseline_client_scopes, "mcp:tools");
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	char *url, *body, host[CIMD_HOST_MAX], err[CIMD_ERR_MAX];
	struct client *c;
	enum redirect_uri_kind kind;
	const char *why;
	size_t ulen = nl != NULL ? (size_t)(nl - data) : 0;

	if (nl == NULL)
		return 0;
	url = fuzz_str(data, ulen);
	if (cimd_url_check(url, host, sizeof host, &why) != 0) {
		free(url);
		return 0;
	}
	body = fuzz_str(nl + 1, size - ulen - 1);
	c = cimd_doc_validate(url, body, size - ulen - 1, cfg, err, sizeof err);
	if (c != NULL) {
		FUZZ_ASSERT(strcmp(c->client_id, url) == 0 && c->is_cimd && !c->has_secret);
		FUZZ_ASSERT(strcmp(c->token_endpoint_auth_method, "none") == 0);
		FUZZ_ASSERT(c->redirect_uris.n > 0);
		for (size_t i = 0; i < c->redirect_uris.n; i++)
			FUZZ_ASSERT(client_redirect_uri_check(c->redirect_uris.v[i], false, &kind,
					&why) == 0);
		FUZZ_ASSERT(strlist_contains(&c->grant_types, "authorization_code"));
		FUZZ_ASSERT(strlist_contains(&c->scopes, "mcp:tools"));
		for (size_t i = 0; i < c->scopes.n; i++)
			FUZZ_ASSERT(strlist_contains(&cfg->eas.scopes_supported, c->scopes.v[i]) ||
			    strcmp(c->scopes.v[i], "mcp:tools") == 0);
		client_unref(c);
	} else {
		FUZZ_ASSERT(err[0] != '\0' && memchr(err, '\0', sizeof err) != NULL);
	}
	free(body);
	free(url);
	return 0;
}
