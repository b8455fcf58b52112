/*
 * Fuzz what a remote issuer's JWKS document and any JOSE JSON go through:
 * jwt_json_parse (the strict parser under JWT headers, payloads and JWKS)
 * and keyset_from_jwks (auth/crypto/keyset.h). A keyset built from the input has
 * only verification keys with a supported alg and unique kids, and its
 * published JWKS parses back into the same keys.
 */
#include <json-c/json.h>

#include "auth/crypto/jwt.h"
#include "auth/crypto/keyset.h"
#include "test/fuzz/fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data, *strs[4];
	struct keyset *ks, *again;
	json_object *o;
	char err[256], *jwks, *s;
	int64_t i64;

	s = fuzz_str(data, size);
	if ((o = jwt_json_parse(s, size)) != NULL) {
		if (json_object_is_type(o, json_type_object)) {
			(void)jwt_claim_string(o, "iss");
			(void)jwt_claim_int(o, "exp", &i64);
			(void)jwt_claim_strings(o, "aud", strs, 4);
		}
		json_object_put(o);
	}
	/* Also as an exact-length buffer, without a terminating NUL. */
	if ((o = jwt_json_parse(text, size)) != NULL)
		json_object_put(o);

	if ((ks = keyset_from_jwks(s, size, err, sizeof err)) != NULL) {
		FUZZ_ASSERT(keyset_count(ks) > 0 && keyset_count(ks) <= KEYSET_MAX_KEYS);
		FUZZ_ASSERT(keyset_signing_key(ks) == NULL);
		for (size_t i = 0; i < keyset_count(ks); i++) {
			const struct keyset_key *k = keyset_at(ks, i);

			FUZZ_ASSERT(!keyset_key_can_sign(k));
			FUZZ_ASSERT(keyset_alg_name(keyset_key_alg(k)) != NULL);
			FUZZ_ASSERT(keyset_find(ks, keyset_key_kid(k)) == k);
			FUZZ_ASSERT(keyset_key_thumbprint(k) != NULL);
		}
		jwks = keyset_jwks_json(ks);
		again = keyset_from_jwks(jwks, strlen(jwks), err, sizeof err);
		FUZZ_ASSERT(again != NULL && keyset_count(again) == keyset_count(ks));
		for (size_t i = 0; i < keyset_count(ks); i++) {
			const struct keyset_key *k = keyset_at(ks, i), *k2 = keyset_at(again, i);

			FUZZ_ASSERT(strcmp(keyset_key_kid(k), keyset_key_kid(k2)) == 0);
			FUZZ_ASSERT(keyset_key_alg(k) == keyset_key_alg(k2));
			FUZZ_ASSERT(strcmp(keyset_key_thumbprint(k), keyset_key_thumbprint(k2)) == 0);
		}
		keyset_free(again);
		free(jwks);
		keyset_free(ks);
	}
	free(s);
	return 0;
}
