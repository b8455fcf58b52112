/*
 * HKDF-SHA256 through OpenSSL 3's EVP_KDF (see hkdf.h).
 */
#include "common/hkdf.h"

#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
hkdf_sha256(const void *ikm, size_t ikm_len, const char *info, void *out, size_t outlen)
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *ctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
	OSSL_PARAM params[4];

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikm_len);
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info,
	    strlen(info));
	params[3] = OSSL_PARAM_construct_end();
	if (ctx == NULL || EVP_KDF_derive(ctx, out, outlen, params) != 1) {
		fprintf(stderr, "{\"level\":\"fatal\",\"msg\":\"HKDF failed\"}\n");
		abort();
	}
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
}
