/*
 * Fuzz auth/form: strict x-www-form-urlencoded parsing of request bodies
 * and query strings, and the encoder we build redirects with. Parsed
 * parameters are unique, non-empty and findable; re-encoding them with the
 * builder and parsing again gives the same parameters; decoding an encoded
 * string gives the string back.
 */
#include <stdbool.h>

#include "common/form.h"
#include "test/fuzz/fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct form f, g;
	struct form_builder b = { 0 };
	char err[256], *s, *enc, *dec, *body;

	if (form_parse(&f, (const char *)data, size, err, sizeof err) == 0) {
		FUZZ_ASSERT(f.n <= FORM_MAX_PARAMS);
		for (size_t i = 0; i < f.n; i++) {
			FUZZ_ASSERT(*f.v[i].name != '\0' && *f.v[i].value != '\0');
			FUZZ_ASSERT(form_get(&f, f.v[i].name) == f.v[i].value);
			form_add(&b, f.v[i].name, f.v[i].value);
		}
		body = form_finish(&b);
		FUZZ_ASSERT(form_parse(&g, body, strlen(body), err, sizeof err) == 0);
		FUZZ_ASSERT(g.n == f.n);
		for (size_t i = 0; i < f.n; i++) {
			FUZZ_ASSERT(strcmp(f.v[i].name, g.v[i].name) == 0);
			FUZZ_ASSERT(strcmp(f.v[i].value, g.v[i].value) == 0);
		}
		form_dispose(&g);
		free(body);
		form_dispose(&f);
	} else {
		FUZZ_ASSERT(f.n == 0 && memchr(err, '\0', sizeof err) != NULL);
	}
	form_dispose(&f); /* safe twice */

	for (int plus = 0; plus < 2; plus++) {
		if ((dec = form_decode((const char *)data, size, plus)) != NULL) {
			FUZZ_ASSERT(strlen(dec) <= size);
			free(dec);
		}
	}
	s = fuzz_str(data, size);
	enc = form_encode(s);
	dec = form_decode(enc, strlen(enc), false);
	FUZZ_ASSERT(dec != NULL && strcmp(dec, s) == 0);
	free(dec);
	free(enc);
	free(s);
	return 0;
}
