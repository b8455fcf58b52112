/*
 * Strict unpadded base64url (see b64url.h). Never accepts two spellings of
 * one value: signature and thumbprint comparisons rely on that.
 */
#include "common/b64url.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* The value of each base64url character, 255 for every other byte. */
/* clang-format off */
static const unsigned char b64url_values[256] = {
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 62, 255, 255,
	52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 255, 255, 255, 255, 255, 255,
	255, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
	15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 255, 255, 255, 255, 63,
	255, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
	41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
	255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
};
/* clang-format on */

size_t
b64url_encoded_len(size_t len)
{
	return (len / 3) * 4 + (len % 3 == 0 ? 0 : len % 3 + 1);
}

size_t
b64url_decoded_max(size_t len)
{
	return (len / 4) * 3 + (len % 4 == 0 ? 0 : len % 4 - 1);
}

void
b64url_encode_buf(const void *data, size_t len, char *dst)
{
	const unsigned char *p = data;
	uint32_t v;
	size_t i;
	char *o = dst;

	for (i = 0; i + 3 <= len; i += 3) {
		v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		*o++ = b64url_alphabet[(v >> 18) & 63];
		*o++ = b64url_alphabet[(v >> 12) & 63];
		*o++ = b64url_alphabet[(v >> 6) & 63];
		*o++ = b64url_alphabet[v & 63];
	}
	if (len - i == 1) {
		v = (uint32_t)p[i] << 16;
		*o++ = b64url_alphabet[(v >> 18) & 63];
		*o++ = b64url_alphabet[(v >> 12) & 63];
	} else if (len - i == 2) {
		v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
		*o++ = b64url_alphabet[(v >> 18) & 63];
		*o++ = b64url_alphabet[(v >> 12) & 63];
		*o++ = b64url_alphabet[(v >> 6) & 63];
	}
	*o = '\0';
}

char *
b64url_encode(const void *data, size_t len)
{
	char *s = xmalloc(b64url_encoded_len(len) + 1);

	b64url_encode_buf(data, len, s);
	return s;
}

int
b64url_decode_buf(const char *s, size_t len, unsigned char *dst, size_t dstsize, size_t *outlen)
{
	const unsigned char *p = (const unsigned char *)s;
	const unsigned char *t = b64url_values;
	size_t i, n = 0, rest = len % 4;
	uint32_t v;

	if (rest == 1 || b64url_decoded_max(len) > dstsize)
		return -1;
	/* four characters, three bytes at a time; any byte not of the alphabet
	 * has the high bit of its value set */
	for (i = 0; i + 4 <= len; i += 4) {
		uint32_t a = t[p[i]], b = t[p[i + 1]], c = t[p[i + 2]], d = t[p[i + 3]];

		if ((a | b | c | d) & 0x80)
			return -1;
		v = a << 18 | b << 12 | c << 6 | d;
		dst[n++] = (unsigned char)(v >> 16);
		dst[n++] = (unsigned char)(v >> 8);
		dst[n++] = (unsigned char)v;
	}
	/* A canonical encoder leaves the unused low bits of the tail zero. */
	if (rest == 2) {
		uint32_t a = t[p[i]], b = t[p[i + 1]];

		if ((a | b) & 0x80 || (b & 0x0f))
			return -1;
		dst[n++] = (unsigned char)(a << 2 | b >> 4);
	} else if (rest == 3) {
		uint32_t a = t[p[i]], b = t[p[i + 1]], c = t[p[i + 2]];

		if ((a | b | c) & 0x80 || (c & 0x03))
			return -1;
		v = a << 12 | b << 6 | c;
		dst[n++] = (unsigned char)(v >> 10);
		dst[n++] = (unsigned char)(v >> 2);
	}
	*outlen = n;
	return 0;
}

int
b64url_decode(const char *s, size_t len, unsigned char **out, size_t *outlen)
{
	size_t max = b64url_decoded_max(len);
	unsigned char *buf;

	*out = NULL;
	if (len % 4 == 1)
		return -1;
	buf = xmalloc(max + 1);
	if (b64url_decode_buf(s, len, buf, max, outlen) != 0) {
		free(buf);
		return -1;
	}
	buf[*outlen] = '\0';
	*out = buf;
	return 0;
}

int
b64_decode_lenient(const char *text, unsigned char *dst, size_t dstsize, size_t *outlen)
{
	char *buf = xmalloc(4097);
	size_t n = 0;
	int rc = -1;

	for (const char *p = text; *p != '\0'; p++) {
		char c = *p;

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '=')
			continue;
		if (n == 4096)
			goto out;
		buf[n++] = c == '+' ? '-' : c == '/' ? '_' : c;
	}
	if (n > 0)
		rc = b64url_decode_buf(buf, n, dst, dstsize, outlen);
out:
	explicit_bzero(buf, n);
	free(buf);
	return rc;
}
