/*
 * Strict base64url without padding (RFC 4648 §5, RFC 7515 §2), the only
 * encoding JOSE and PKCE use. The decoder refuses everything a lenient one
 * would let through (padding, '+', '/', whitespace, impossible lengths,
 * non-zero trailing bits) so that one value has exactly one spelling.
 */
#ifndef AUTH_B64URL_H
#define AUTH_B64URL_H

#include <stddef.h>

/* Length of the encoding of len bytes, without the terminating NUL. */
size_t b64url_encoded_len(size_t len);
/* Upper bound of the bytes a len-character encoding decodes to. */
size_t b64url_decoded_max(size_t len);
/* Encode len bytes into a new NUL-terminated string. */
char *b64url_encode(const void *data, size_t len);
/* Encode into dst, which holds b64url_encoded_len(len) + 1 bytes. */
void b64url_encode_buf(const void *data, size_t len, char *dst);
/*
 * Decode the len characters at s into dst (room for dstsize bytes).
 * Returns 0 and the byte count in *outlen, or -1 if the input is not
 * canonical unpadded base64url or does not fit.
 */
int b64url_decode_buf(const char *s, size_t len, unsigned char *dst, size_t dstsize,
    size_t *outlen);
/*
 * Decode into a new buffer (NUL-terminated one past *outlen, so text can
 * be read as a string). Returns 0, or -1 with *out set to NULL.
 */
int b64url_decode(const char *s, size_t len, unsigned char **out, size_t *outlen);
/*
 * Decode text an operator pasted (a key in a Secret): standard or URL
 * alphabet, padding optional, whitespace anywhere ignored, at most 4 KiB.
 * Returns 0 and the byte count in *outlen, or -1.
 */
int b64_decode_lenient(const char *text, unsigned char *dst, size_t dstsize, size_t *outlen);

#endif
