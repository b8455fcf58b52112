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

/* Value of one base64url character, or -1. */
static int
b64url_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

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
	uint32_t v = 0;
	size_t i, n = 0, rest = len % 4;
	int c;

	if (rest == 1 || b64url_decoded_max(len) > dstsize)
		return -1;
	for (i = 0; i < len; i++) {
		if ((c = b64url_value((unsigned char)s[i])) < 0)
			return -1;
		v = v << 6 | (uint32_t)c;
		if (i % 4 == 3) {
			dst[n++] = (v >> 16) & 0xff;
			dst[n++] = (v >> 8) & 0xff;
			dst[n++] = v & 0xff;
			v = 0;
		}
	}
	/* A canonical encoder leaves the unused low bits of the tail zero. */
	if (rest == 2) {
		if (v & 0x0f)
			return -1;
		dst[n++] = (v >> 4) & 0xff;
	} else if (rest == 3) {
		if (v & 0x03)
			return -1;
		dst[n++] = (v >> 10) & 0xff;
		dst[n++] = (v >> 2) & 0xff;
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
