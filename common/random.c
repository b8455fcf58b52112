/*
 * CSPRNG wrappers (see random.h). Never falls back to a weaker source.
 */
#include "common/random.h"

#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/b64url.h"
#include "common/xalloc.h"

void
random_bytes(void *buf, size_t len)
{
	unsigned char *p = buf;
	size_t chunk;

	while (len > 0) {
		chunk = len > INT_MAX ? INT_MAX : len;
		if (RAND_bytes(p, (int)chunk) != 1) {
			fprintf(stderr,
			    "{\"level\":\"fatal\",\"msg\":"
			    "\"RAND_bytes failed\"}\n");
			abort();
		}
		p += chunk;
		len -= chunk;
	}
}

char *
random_token(size_t nbytes)
{
	unsigned char *buf = xmalloc(nbytes);
	char *s;

	random_bytes(buf, nbytes);
	s = b64url_encode(buf, nbytes);
	OPENSSL_cleanse(buf, nbytes);
	free(buf);
	return s;
}

char *
random_uuid_v4(void)
{
	unsigned char u[16];

	random_bytes(u, sizeof u);
	u[6] = (u[6] & 0x0f) | 0x40; /* version 4 */
	u[8] = (u[8] & 0x3f) | 0x80; /* variant 10xx */
	return xasprintf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
			 "%02x%02x%02x%02x%02x%02x",
	    u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13],
	    u[14], u[15]);
}
