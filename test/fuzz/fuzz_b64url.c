/*
 * Fuzz auth/b64url: the strict decoder on arbitrary text, and the promise
 * that one value has exactly one spelling: whatever decodes re-encodes to
 * the same characters, and whatever is encoded decodes back to its bytes.
 */
#include "common/b64url.h"
#include "test/fuzz/fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	unsigned char *out, small[16];
	size_t outlen, n;
	char *enc;

	if (b64url_decode(s, size, &out, &outlen) == 0) {
		FUZZ_ASSERT(outlen <= b64url_decoded_max(size));
		FUZZ_ASSERT(b64url_encoded_len(outlen) == size);
		enc = b64url_encode(out, outlen);
		FUZZ_ASSERT(strlen(enc) == size && memcmp(enc, s, size) == 0);
		free(enc);
		free(out);
	}
	/* The bounded variant must refuse, not overflow, a short buffer. */
	if (b64url_decode_buf(s, size, small, sizeof small, &n) == 0)
		FUZZ_ASSERT(n <= sizeof small);

	enc = b64url_encode(data, size);
	FUZZ_ASSERT(strlen(enc) == b64url_encoded_len(size));
	FUZZ_ASSERT(b64url_decode(enc, strlen(enc), &out, &outlen) == 0);
	FUZZ_ASSERT(outlen == size && (size == 0 || memcmp(out, data, size) == 0));
	free(out);
	free(enc);
	return 0;
}
