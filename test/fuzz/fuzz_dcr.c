/*
 * Fuzz dcr_validate (auth/dcr.h): an RFC 7591 registration request body as
 * any client on the network may POST it, NUL-terminated as the AS reads
 * it. Each input is judged by a server that registers public clients only
 * and by one that also allows confidential clients. An accepted request is
 * a client with valid redirects and authorization_code, whose registration
 * response is JSON; a refusal names an RFC 7591 error.
 */
#include <json-c/json.h>

#include "auth/client/client.h"
#include "auth/registry/dcr.h"
#include "config/config.h"
#include "test/fuzz/fuzz.h"

static struct config *cfgs[2];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	cfgs[0] = config_new();
	cfgs[1] = config_new();
	cfgs[1]->eas.allow_confidential_client_registration = true;
	strlist_add(&cfgs[1]->eas.baseline_client_scopes, "mcp:tools");
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *body = fuzz_str(data, size), *json;
	struct dcr_result res;
	enum redirect_uri_kind kind;
	const char *why;
	json_object *o;

	for (size_t i = 0; i < 2; i++) {
		if (dcr_validate(body, size, cfgs[i], &res) == 0) {
			struct client *c = res.client;

			FUZZ_ASSERT(c != NULL && res.error == NULL);
			FUZZ_ASSERT(
			    c->redirect_uris.n > 0 && c->redirect_uris.n <= DCR_MAX_REDIRECT_URIS);
			for (size_t j = 0; j < c->redirect_uris.n; j++)
				FUZZ_ASSERT(client_redirect_uri_check(c->redirect_uris.v[j], true,
						&kind, &why) == 0);
			FUZZ_ASSERT(strlist_contains(&c->grant_types, "authorization_code"));
			FUZZ_ASSERT(c->has_secret == (res.client_secret != NULL));
			FUZZ_ASSERT(i == 1 || !c->has_secret);
			json = dcr_response_json(c, res.client_secret);
			FUZZ_ASSERT((o = json_tokener_parse(json)) != NULL);
			json_object_put(o);
			free(json);
		} else {
			FUZZ_ASSERT(res.client == NULL && res.error != NULL);
			FUZZ_ASSERT(strcmp(res.error, "invalid_client_metadata") == 0 ||
			    strcmp(res.error, "invalid_redirect_uri") == 0);
		}
		dcr_result_dispose(&res);
	}
	free(body);
	return 0;
}
