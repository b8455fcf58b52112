/*
 * CIMD pure rules: every client_id URL rule, the host policy (exact and
 * wildcard patterns, denied wins) and every document rule, including the
 * seed's four troubleshooting causes and a real VS Code document. Pure
 * functions on strings: no network, no loop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/cimd/cimd.h"
#include "auth/cimd/cimd_doc.h"
#include "auth/client/client.h"
#include "auth/crypto/keyset.h"
#include "config/config.h"
#include "test/unit/unit.h"

struct url_case {
	const char *url;
	const char *host; /* expected host when valid, NULL when refused */
	const char *why;  /* substring of the reason when refused */
};

static const struct url_case url_cases[] = {
	{ "https://vscode.dev/oauth/client-metadata.json", "vscode.dev", NULL },
	{ "https://Example.COM/c.json", "example.com", NULL },
	{ "https://example.com:8443/c.json", "example.com", NULL },
	{ "https://127.0.0.1:4443/x", "127.0.0.1", NULL },
	{ "https://[::1]:4443/x", "[::1]", NULL },
	{ "https://example.com/a/b.json?v=1", "example.com", NULL },
	{ "https://example.com/.well-known/x", "example.com", NULL },
	{ "https://example.com/a..b/c", "example.com", NULL },
	{ "https://example.com/...", "example.com", NULL },
	{ "https://example.com/%2e%2e%2e", "example.com", NULL },
	{ "https://example.com/a%20b", "example.com", NULL },
	{ "", NULL, "empty" },
	{ "http://example.com/c.json", NULL, "must use the https scheme" },
	{ "HTTPS://example.com/c.json", NULL, "lower-case https" },
	{ "Https://example.com/c.json", NULL, "lower-case https" },
	{ "ftp://example.com/c.json", NULL, "https scheme" },
	{ "example.com/c.json", NULL, "https scheme" },
	{ "https:/example.com/c.json", NULL, "https scheme" },
	{ "https:///c.json", NULL, "no host" },
	{ "https://:443/c.json", NULL, "no host" },
	{ "https://example.com", NULL, "path other than /" },
	{ "https://example.com/", NULL, "path other than /" },
	{ "https://example.com?x=1", NULL, "path other than /" },
	{ "https://example.com/?x=1", NULL, "path other than /" },
	{ "https://example.com/c.json#frag", NULL, "fragment" },
	{ "https://example.com/c.json#", NULL, "fragment" },
	{ "https://user@example.com/c.json", NULL, "userinfo" },
	{ "https://user:pw@example.com/c.json", NULL, "userinfo" },
	{ "https://example.com/./c.json", NULL, ". or .." },
	{ "https://example.com/../c.json", NULL, ". or .." },
	{ "https://example.com/a/..", NULL, ". or .." },
	{ "https://example.com/a/.", NULL, ". or .." },
	{ "https://example.com/a/../b", NULL, ". or .." },
	{ "https://example.com/a/..?x", NULL, ". or .." },
	{ "https://example.com/%2e/c.json", NULL, ". or .." },
	{ "https://example.com/%2E/c.json", NULL, ". or .." },
	{ "https://example.com/%2e%2e/c.json", NULL, ". or .." },
	{ "https://example.com/%2E%2e/c.json", NULL, ". or .." },
	{ "https://example.com/.%2e/c.json", NULL, ". or .." },
	{ "https://example.com/a/%2e%2E", NULL, ". or .." },
	{ "https://example.com/%zz", NULL, "percent-encoding" },
	{ "https://example.com/%2", NULL, "percent-encoding" },
	{ "https://exa%6dple.com/c.json", NULL, "percent-encoded" },
	{ "https://exa_mple.com/c.json", NULL, "invalid character" },
	{ "https://example..com/c.json", NULL, "empty label" },
	{ "https://.example.com/c.json", NULL, "empty label" },
	{ "https://example.com./c.json", NULL, "end with a dot" },
	{ "https://example.com:/c.json", NULL, "invalid port" },
	{ "https://example.com:0/c.json", NULL, "invalid port" },
	{ "https://example.com:65536/c.json", NULL, "invalid port" },
	{ "https://example.com:123456/c.json", NULL, "invalid port" },
	{ "https://example.com:44a/c.json", NULL, "invalid port" },
	{ "https://[::1/c.json", NULL, "IPv6" },
	{ "https://[]/c.json", NULL, "IPv6" },
	{ "https://[::1]x/c.json", NULL, "invalid port" },
	{ "https://exa mple.com/c.json", NULL, "percent-encoded" },
	{ "https://example.com/c json", NULL, "percent-encoded" },
	{ "https://example.com/c\\d", NULL, "percent-encoded" },
	{ "https://example.com/c\x7f", NULL, "percent-encoded" },
	{ "https://example.com/\xc3\xa9", NULL, "percent-encoded" },
	{ "https://example.com/<x>", NULL, "percent-encoded" },
};

static void
test_url_rules(void)
{
	char host[CIMD_HOST_MAX];
	const char *why;

	for (size_t i = 0; i < sizeof url_cases / sizeof url_cases[0]; i++) {
		const struct url_case *t = &url_cases[i];
		int rc;

		why = NULL;
		rc = cimd_url_check(t->url, host, sizeof host, &why);
		if (t->host != NULL) {
			if (rc != 0)
				fprintf(stderr, "url %s refused: %s\n", t->url, why);
			CU_ASSERT_EQUAL(rc, 0);
			if (rc == 0)
				CU_ASSERT_STRING_EQUAL(host, t->host);
		} else {
			if (rc == 0 || why == NULL || strstr(why, t->why) == NULL)
				fprintf(stderr, "url %s: rc %d why %s (want %s)\n", t->url, rc,
				    why ? why : "-", t->why);
			CU_ASSERT_EQUAL(rc, -1);
			CU_ASSERT_PTR_NOT_NULL_FATAL(why);
			CU_ASSERT_PTR_NOT_NULL(strstr(why, t->why));
		}
	}
}

static void
test_url_length(void)
{
	char url[CIMD_URL_MAX + 2], host[CIMD_HOST_MAX];
	const char *why = NULL;
	size_t pre = strlen("https://example.com/");

	memcpy(url, "https://example.com/", pre);
	memset(url + pre, 'a', CIMD_URL_MAX - pre);
	url[CIMD_URL_MAX] = '\0';
	CU_ASSERT_EQUAL(cimd_url_check(url, host, sizeof host, &why), 0);
	url[CIMD_URL_MAX] = 'a';
	url[CIMD_URL_MAX + 1] = '\0';
	CU_ASSERT_EQUAL(cimd_url_check(url, host, sizeof host, &why), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "2048"));

	/* A host longer than the buffer the caller gave. */
	CU_ASSERT_EQUAL(cimd_url_check("https://example.com/x", host, 5, &why), -1);
}

static void
test_is_url(void)
{
	CU_ASSERT_TRUE(cimd_is_url("https://vscode.dev/oauth/client-metadata.json"));
	CU_ASSERT_TRUE(cimd_is_url("HTTPS://x/y"));
	CU_ASSERT_FALSE(cimd_is_url("http://x/y"));
	CU_ASSERT_FALSE(cimd_is_url("3f2a0c1e-uuid"));
	CU_ASSERT_FALSE(cimd_is_url(""));
	CU_ASSERT_FALSE(cimd_is_url(NULL));
}

struct host_case {
	const char *pattern;
	const char *host;
	bool match;
};

static const struct host_case host_cases[] = {
	{ "example.com", "example.com", true },
	{ "example.com", "EXAMPLE.com", true },
	{ "Example.COM", "example.com", true },
	{ "example.com", "a.example.com", false },
	{ "example.com", "example.co", false },
	{ "*.example.com", "a.example.com", true },
	{ "*.example.com", "A.Example.Com", true },
	{ "*.example.com", "a.b.example.com", true },
	{ "*.example.com", "example.com", false },
	{ "*.example.com", "aexample.com", false },
	{ "*.example.com", ".example.com", false },
	{ "*.example.com", "example.com.evil.net", false },
	{ "*.EXAMPLE.com", "x.example.COM", true },
	{ "127.0.0.1", "127.0.0.1", true },
};

static void
test_host_match(void)
{
	for (size_t i = 0; i < sizeof host_cases / sizeof host_cases[0]; i++) {
		const struct host_case *t = &host_cases[i];

		if (cimd_host_match(t->pattern, t->host) != t->match)
			fprintf(stderr, "pattern %s host %s: want %d\n", t->pattern, t->host,
			    t->match);
		CU_ASSERT_EQUAL(cimd_host_match(t->pattern, t->host), t->match);
	}
}

static void
test_host_policy(void)
{
	struct strlist allowed = { 0 }, denied = { 0 };
	const char *why = NULL;

	/* Default: everything allowed. */
	CU_ASSERT_TRUE(cimd_host_allowed(&allowed, &denied, "vscode.dev", &why));
	CU_ASSERT_TRUE(cimd_host_allowed(NULL, NULL, "vscode.dev", &why));

	strlist_add(&denied, "*.evil.example");
	strlist_add(&denied, "bad.example");
	CU_ASSERT_TRUE(cimd_host_allowed(&allowed, &denied, "vscode.dev", &why));
	CU_ASSERT_FALSE(cimd_host_allowed(&allowed, &denied, "x.evil.example", &why));
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "denied"));
	CU_ASSERT_FALSE(cimd_host_allowed(&allowed, &denied, "BAD.example", &why));
	CU_ASSERT_TRUE(cimd_host_allowed(&allowed, &denied, "evil.example", &why));

	strlist_add(&allowed, "vscode.dev");
	strlist_add(&allowed, "*.example");
	CU_ASSERT_TRUE(cimd_host_allowed(&allowed, &denied, "vscode.dev", &why));
	CU_ASSERT_TRUE(cimd_host_allowed(&allowed, &denied, "good.example", &why));
	CU_ASSERT_FALSE(cimd_host_allowed(&allowed, &denied, "example", &why));
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "not in the allowed hosts"));
	CU_ASSERT_FALSE(cimd_host_allowed(&allowed, &denied, "other.dev", &why));
	/* Denied wins over allowed. */
	CU_ASSERT_FALSE(cimd_host_allowed(&allowed, &denied, "a.evil.example", &why));
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "denied"));
	strlist_dispose(&allowed);
	strlist_dispose(&denied);
}

#define URL "https://app.example.com/client.json"
#define NAMELESS(extra) \
	"{\"client_id\":\"" URL "\",\"redirect_uris\":[\"https://app.example.com/cb\"]" extra "}"
#define OKDOC(extra) NAMELESS(",\"client_name\":\"Test client\"" extra)
/* Public keys (test/unit/data/keys/rsa2048-pub.pem, p256-pub.pem) as JWKs. */
#define RSA_N \
	"0MwFC4hDN-eaL4h_jNK3vzrY71FpPBR9v7wrFkHmKzA6GO82A9Z0l6UWTjCdKtwut_YvfL8Zcpsnr94VLpaiqxsX" \
	"M6U4nr4cMsfWpwubrz0l4BTQFnAL8D_vVd0Xq2OJxQqILSQpwbqWx2DV1dzceloVtU5J9PpUJC_WHpBcVzJ0Ua-" \
	"30tlBAKhYFTB0iYkxdXttAlF5sHyRWDqbANtGhCzpKU_WWZ92gTg0soBIDNS4I1DOo3ikLmbkwWIjgi8W0tyCfNg" \
	"A_GgHVvoZIe7Apqg5nm7bYuvrZ7GdFjraONvP5_j5GnN3C7sIsAoBp5YRUgIRJ2yVH99y38ALyG5bbQ"
#define RSA_JWK(extra) "{\"kty\":\"RSA\",\"kid\":\"r1\",\"n\":\"" RSA_N "\",\"e\":\"AQAB\"" extra "}"
#define EC_JWK(extra) \
	"{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"e1\"," \
	"\"x\":\"y4v1Xc71A3XgVAMtooSt5R7N4cBERHI1hqWBiKR3Ung\"," \
	"\"y\":\"mzmlHY4QV2_tsgWvVEePcDRSvg2visa7UnT_szsHlEM\"" extra "}"
#define PKJWT ",\"token_endpoint_auth_method\":\"private_key_jwt\""
#define JWKS_URI ",\"jwks_uri\":\"https://app.example.com/jwks.json\""

struct doc_case {
	const char *name;
	const char *text;
	const char *why; /* NULL when valid */
};

static const struct doc_case doc_cases[] = {
	{ "minimal", OKDOC(""), NULL },
	{ "auth none", OKDOC(",\"token_endpoint_auth_method\":\"none\""), NULL },
	{ "loopback redirect",
	    "{\"client_id\":\"" URL "\",\"client_name\":\"x\",\"redirect_uris\":"
	    "[\"http://127.0.0.1/cb\",\"http://[::1]:8080/\",\"http://localhost/x\"]}",
	    NULL },
	{ "unknown members ignored", OKDOC(",\"x_vendor\":{\"a\":[1,2,{\"b\":null}]}"), NULL },
	{ "device_code ignored",
	    OKDOC(",\"grant_types\":[\"authorization_code\","
		  "\"urn:ietf:params:oauth:grant-type:device_code\"]"),
	    NULL },
	{ "trailing whitespace", OKDOC("") " \n", NULL },

	/* JSON shape */
	{ "empty", "", "not valid JSON" },
	{ "garbage", "hello", "not valid JSON" },
	{ "truncated", "{\"client_id\":", "not valid JSON" },
	{ "array", "[1]", "not a JSON object" },
	{ "string", "\"https://x/y\"", "not a JSON object" },
	{ "trailing bytes", OKDOC("") "{}", "not valid JSON" },
	{ "trailing comma", "{\"client_id\":\"" URL "\",}", "not valid JSON" },
	{ "single quotes", "{'client_id':'" URL "'}", "not valid JSON" },
	{ "comment", "/*x*/" OKDOC(""), "not valid JSON" },
	{ "bad utf-8", NAMELESS(",\"client_name\":\"\xff\xfe\""), "not valid JSON" },
	{ "too deep", OKDOC(",\"x\":[[[[[[[[[[[[1]]]]]]]]]]]]"), "not valid JSON" },
	{ "duplicate client_id",
	    "{\"client_id\":\"https://evil.example/x\",\"client_id\":\"" URL
	    "\",\"redirect_uris\":[\"https://app.example.com/cb\"]}",
	    "duplicate keys" },
	{ "duplicate escaped", OKDOC(",\"scope\":\"openid\",\"sc\\u006fpe\":\"profile\""),
	    "duplicate keys" },
	{ "duplicate nested", OKDOC(",\"x\":{\"a\":1,\"a\":2}"), "duplicate keys" },

	/* client_id (seed cause 1) */
	{ "no client_id", "{\"redirect_uris\":[\"https://a.example/cb\"]}", "has no client_id" },
	{ "client_id number", "{\"client_id\":5}", "client_id must be a string" },
	{ "client_id null", "{\"client_id\":null}", "client_id must be a string" },
	{ "client_id other",
	    "{\"client_id\":\"https://app.example.com/other.json\","
	    "\"redirect_uris\":[\"https://app.example.com/cb\"]}",
	    "client_id does not match" },
	{ "client_id trailing slash", "{\"client_id\":\"" URL "/\"}", "client_id does not match" },
	{ "client_id case", "{\"client_id\":\"https://APP.example.com/client.json\"}",
	    "client_id does not match" },

	/* auth method (seed cause 2) */
	{ "client_secret_post", OKDOC(",\"token_endpoint_auth_method\":\"client_secret_post\""),
	    "token_endpoint_auth_method client_secret_post uses a shared secret" },
	{ "client_secret_basic", OKDOC(",\"token_endpoint_auth_method\":\"client_secret_basic\""),
	    "token_endpoint_auth_method client_secret_basic uses a shared secret" },
	{ "client_secret_jwt", OKDOC(",\"token_endpoint_auth_method\":\"client_secret_jwt\""),
	    "token_endpoint_auth_method client_secret_jwt uses a shared secret" },
	{ "private_key_jwt without keys", OKDOC(PKJWT),
	    "private_key_jwt needs jwks_uri or jwks" },
	{ "private_key_jwt jwks_uri", OKDOC(PKJWT JWKS_URI), NULL },
	{ "private_key_jwt chatgpt-shaped",
	    OKDOC(PKJWT ",\"token_endpoint_auth_signing_alg\":\"RS256\"" JWKS_URI
			",\"token_endpoint_auth_methods_supported\":[\"none\",\"private_key_jwt\"]"),
	    NULL },
	{ "private_key_jwt inline jwks", OKDOC(PKJWT ",\"jwks\":{\"keys\":[" EC_JWK("") "]}"),
	    NULL },
	{ "private_key_jwt inline rsa", OKDOC(PKJWT ",\"jwks\":{\"keys\":[" RSA_JWK("") "]}"),
	    NULL },
	{ "private_key_jwt both", OKDOC(PKJWT JWKS_URI ",\"jwks\":{\"keys\":[" EC_JWK("") "]}"),
	    "must not have both jwks_uri and jwks" },
	{ "private_key_jwt only in methods_supported",
	    OKDOC(",\"token_endpoint_auth_methods_supported\":[\"private_key_jwt\"]"),
	    "private_key_jwt needs jwks_uri or jwks" },
	{ "methods_supported none only",
	    OKDOC(",\"token_endpoint_auth_methods_supported\":[\"none\",\"tls_client_auth\"]"),
	    NULL },
	{ "methods_supported shared secret",
	    OKDOC(",\"token_endpoint_auth_methods_supported\":[\"none\",\"client_secret_basic\"]"),
	    "token_endpoint_auth_methods_supported client_secret_basic uses a shared secret" },
	{ "methods_supported not strings",
	    OKDOC(",\"token_endpoint_auth_methods_supported\":\"none\""),
	    "token_endpoint_auth_methods_supported must be an array of strings" },
	{ "jwks_uri http", OKDOC(PKJWT ",\"jwks_uri\":\"http://app.example.com/jwks.json\""),
	    "jwks_uri is invalid: " },
	{ "jwks_uri root", OKDOC(PKJWT ",\"jwks_uri\":\"https://app.example.com/\""),
	    "jwks_uri is invalid: " },
	{ "jwks_uri userinfo", OKDOC(PKJWT ",\"jwks_uri\":\"https://u@app.example.com/k\""),
	    "jwks_uri is invalid: " },
	{ "jwks_uri number", OKDOC(PKJWT ",\"jwks_uri\":5"), "jwks_uri must be a string" },
	{ "jwks no keys", OKDOC(PKJWT ",\"jwks\":{}"), "jwks is not usable" },
	{ "jwks only enc keys",
	    OKDOC(PKJWT ",\"jwks\":{\"keys\":[" EC_JWK(",\"use\":\"enc\"") "]}"),
	    "jwks is not usable" },
	{ "signing alg HS256", OKDOC(PKJWT JWKS_URI ",\"token_endpoint_auth_signing_alg\":\"HS256\""),
	    "token_endpoint_auth_signing_alg HS256 is not supported" },
	{ "signing alg none", OKDOC(PKJWT JWKS_URI ",\"token_endpoint_auth_signing_alg\":\"none\""),
	    "token_endpoint_auth_signing_alg none is not supported" },

	/* private or symmetric key material, wherever it is */
	{ "jwks with d", OKDOC(PKJWT ",\"jwks\":{\"keys\":[" EC_JWK(",\"d\":\"AAAA\"") "]}"),
	    "private key material (a JWK with \"d\")" },
	{ "jwks rsa with p",
	    OKDOC(PKJWT ",\"jwks\":{\"keys\":[" RSA_JWK(",\"p\":\"AAAA\",\"q\":\"AAAA\"") "]}"),
	    "private key material (a JWK with \"p\")" },
	{ "jwks oct", OKDOC(PKJWT ",\"jwks\":{\"keys\":[{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}]}"),
	    "symmetric key (kty oct)" },
	{ "jwks k without kty", OKDOC(PKJWT ",\"jwks\":{\"keys\":[{\"k\":\"c2VjcmV0\"}]}"),
	    "private key material (a JWK with \"k\")" },
	{ "private jwk elsewhere, client none",
	    OKDOC(",\"x_debug\":{\"key\":" EC_JWK(",\"d\":\"AAAA\"") "}"),
	    "private key material" },
	{ "private jwk in jwks, client none", OKDOC(",\"jwks\":{\"keys\":[{\"kty\":\"oct\"}]}"),
	    "symmetric key" },
	{ "pem private key",
	    OKDOC(",\"x_key\":\"-----BEGIN PRIVATE KEY-----\\nMIIB\\n-----END PRIVATE KEY-----\""),
	    "contains a PEM private key" },
	{ "pem rsa private key", OKDOC(",\"software_statement\":\"-----BEGIN RSA PRIVATE KEY-----\""),
	    "contains a PEM private key" },
	{ "tls_client_auth", OKDOC(",\"token_endpoint_auth_method\":\"tls_client_auth\""),
	    "not supported; only none and private_key_jwt are" },
	{ "auth method number", OKDOC(",\"token_endpoint_auth_method\":1"),
	    "token_endpoint_auth_method must be a string" },
	{ "client_secret", OKDOC(",\"client_secret\":\"s3cr3t\""),
	    "must not contain a client_secret" },
	{ "client_secret_expires_at", OKDOC(",\"client_secret_expires_at\":0"),
	    "must not contain a client_secret" },

	/* grant and response types (seed cause 3) */
	{ "grant_types no code", OKDOC(",\"grant_types\":[\"client_credentials\"]"),
	    "grant_types must include authorization_code" },
	{ "grant_types empty", OKDOC(",\"grant_types\":[]"),
	    "grant_types must include authorization_code" },
	{ "grant_types implicit", OKDOC(",\"grant_types\":[\"implicit\"]"),
	    "grant_types must include authorization_code" },
	{ "grant_types string", OKDOC(",\"grant_types\":\"authorization_code\""),
	    "grant_types must be an array of strings" },
	{ "grant_types number", OKDOC(",\"grant_types\":[\"authorization_code\",1]"),
	    "grant_types must be an array of strings" },
	{ "response_types token", OKDOC(",\"response_types\":[\"token\"]"),
	    "response_types must be exactly [\"code\"]" },
	{ "response_types code token", OKDOC(",\"response_types\":[\"code\",\"token\"]"),
	    "response_types must be exactly [\"code\"]" },
	{ "response_types empty", OKDOC(",\"response_types\":[]"),
	    "response_types must be exactly [\"code\"]" },
	{ "response_types id_token", OKDOC(",\"response_types\":[\"code id_token\"]"),
	    "response_types must be exactly [\"code\"]" },
	{ "response_types string", OKDOC(",\"response_types\":\"code\""),
	    "response_types must be an array of strings" },

	/* redirect_uris (seed cause 4) */
	{ "no redirect_uris", "{\"client_id\":\"" URL "\"}", "redirect_uris is missing or empty" },
	{ "empty redirect_uris", "{\"client_id\":\"" URL "\",\"redirect_uris\":[]}",
	    "redirect_uris is missing or empty" },
	{ "redirect_uris string", "{\"client_id\":\"" URL "\",\"redirect_uris\":\"https://a/b\"}",
	    "redirect_uris must be an array of strings" },
	{ "redirect_uris null entry", "{\"client_id\":\"" URL "\",\"redirect_uris\":[null]}",
	    "redirect_uris must be an array of strings" },
	{ "redirect custom scheme",
	    "{\"client_id\":\"" URL "\",\"redirect_uris\":"
	    "[\"https://a.example/cb\",\"vscode://callback\"]}",
	    "redirect_uris[1] is invalid" },
	{ "redirect http remote",
	    "{\"client_id\":\"" URL "\",\"redirect_uris\":"
	    "[\"http://a.example/cb\"]}",
	    "redirect_uris[0] is invalid: http redirect_uris" },
	{ "redirect fragment",
	    "{\"client_id\":\"" URL "\",\"redirect_uris\":"
	    "[\"https://a.example/cb#x\"]}",
	    "fragment" },
	{ "redirect relative", "{\"client_id\":\"" URL "\",\"redirect_uris\":[\"/cb\"]}",
	    "redirect_uris[0] is invalid" },
	{ "redirect empty", "{\"client_id\":\"" URL "\",\"redirect_uris\":[\"\"]}",
	    "redirect_uris[0] is invalid" },
	{ "redirect javascript",
	    "{\"client_id\":\"" URL "\",\"redirect_uris\":"
	    "[\"javascript:alert(1)\"]}",
	    "redirect_uris[0] is invalid" },
	{ "redirect userinfo",
	    "{\"client_id\":\"" URL "\",\"redirect_uris\":"
	    "[\"https://u@a.example/cb\"]}",
	    "userinfo" },
	{ "too many redirect_uris",
	    "{\"client_id\":\"" URL "\",\"redirect_uris\":["
	    "\"https://a/1\",\"https://a/2\",\"https://a/3\",\"https://a/4\",\"https://a/5\","
	    "\"https://a/6\",\"https://a/7\",\"https://a/8\",\"https://a/9\",\"https://a/10\","
	    "\"https://a/11\",\"https://a/12\",\"https://a/13\",\"https://a/14\",\"https://a/15\","
	    "\"https://a/16\",\"https://a/17\"]}",
	    "redirect_uris has more than 16 entries" },

	/* scope */
	{ "scope subset", OKDOC(",\"scope\":\"openid profile\""), NULL },
	{ "scope unsupported", OKDOC(",\"scope\":\"openid admin\""),
	    "scope \"admin\" is not supported" },
	{ "scope array", OKDOC(",\"scope\":[\"openid\"]"), "scope must be a string" },
	{ "scope bad char", OKDOC(",\"scope\":\"open\\\"id\""),
	    "scope contains an invalid character" },

	/* types of the rest */
	{ "client_name number", NAMELESS(",\"client_name\":42"), "client_name must be a string" },
	{ "client_name control", NAMELESS(",\"client_name\":\"a\\nb\""),
	    "client_name contains a control" },
	{ "no client_name", NAMELESS(""), "has no client_name" },
	{ "empty client_name", NAMELESS(",\"client_name\":\"\""), "has no client_name" },
	{ "client_uri object", OKDOC(",\"client_uri\":{}"), "client_uri must be a string" },
	{ "logo_uri bool", OKDOC(",\"logo_uri\":true"), "logo_uri must be a string" },
	{ "contacts string", OKDOC(",\"contacts\":\"a@b\""),
	    "contacts must be an array of strings" },
	{ "jwks array", OKDOC(",\"jwks\":[]"), "jwks must be an object" },
};

static struct config *
doc_config(void)
{
	struct config *cfg = config_new();

	cfg->eas.cimd.enabled = true;
	return cfg;
}

static void
test_doc_rules(void)
{
	struct config *cfg = doc_config();
	char err[CIMD_ERR_MAX];

	for (size_t i = 0; i < sizeof doc_cases / sizeof doc_cases[0]; i++) {
		const struct doc_case *t = &doc_cases[i];
		struct client *c;

		err[0] = '\0';
		c = cimd_doc_validate(URL, t->text, strlen(t->text), cfg, err, sizeof err);
		if ((c != NULL) != (t->why == NULL) ||
		    (t->why != NULL && strstr(err, t->why) == NULL))
			fprintf(stderr, "doc case \"%s\": got %s \"%s\", want \"%s\"\n", t->name,
			    c ? "ok" : "error", err, t->why ? t->why : "ok");
		if (t->why == NULL) {
			CU_ASSERT_PTR_NOT_NULL(c);
		} else {
			CU_ASSERT_PTR_NULL(c);
			CU_ASSERT_PTR_NOT_NULL(strstr(err, t->why));
			CU_ASSERT_PTR_NOT_NULL(strstr(err, "client metadata document"));
		}
		client_unref(c);
	}
	config_free(cfg);
}

static char *
read_data(const char *name, size_t *len)
{
	const char *dir = getenv("MCP_SOURCE_DIR");
	char path[1024];
	FILE *f;
	char *buf = calloc(1, 65536);

	snprintf(path, sizeof path, "%s/test/unit/data/cimd/%s", dir ? dir : ".", name);
	f = fopen(path, "rb");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	*len = fread(buf, 1, 65535, f);
	fclose(f);
	return buf;
}

static void
test_vscode_document(void)
{
	struct config *cfg = doc_config();
	char err[CIMD_ERR_MAX] = "";
	struct client *c;
	size_t len;
	char *text = read_data("vscode.json", &len);

	c = cimd_doc_validate("https://vscode.dev/oauth/client-metadata.json", text, len, cfg, err,
	    sizeof err);
	if (c == NULL)
		fprintf(stderr, "vscode: %s\n", err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_TRUE(c->is_cimd);
	CU_ASSERT_EQUAL(c->refs, 1);
	CU_ASSERT_STRING_EQUAL(c->client_id, "https://vscode.dev/oauth/client-metadata.json");
	CU_ASSERT_STRING_EQUAL(c->client_name, "Visual Studio Code");
	CU_ASSERT_STRING_EQUAL(c->token_endpoint_auth_method, "none");
	CU_ASSERT_FALSE(c->has_secret);
	CU_ASSERT_EQUAL(c->redirect_uris.n, 2);
	CU_ASSERT_STRING_EQUAL(c->redirect_uris.v[0], "http://127.0.0.1:33418/");
	CU_ASSERT_STRING_EQUAL(c->redirect_uris.v[1], "https://vscode.dev/redirect");
	/* device_code is ignored, not fatal and not granted. */
	CU_ASSERT_EQUAL(c->grant_types.n, 2);
	CU_ASSERT_TRUE(strlist_contains(&c->grant_types, "authorization_code"));
	CU_ASSERT_TRUE(strlist_contains(&c->grant_types, "refresh_token"));
	/* No scope declared: scopes_supported. */
	CU_ASSERT_EQUAL(c->scopes.n, cfg->eas.scopes_supported.n);
	/* The loopback redirect on another port matches (RFC 8252). */
	CU_ASSERT_TRUE(client_redirect_uri_matches(&c->redirect_uris, "http://127.0.0.1:50123/"));
	CU_ASSERT_FALSE(client_redirect_uri_matches(&c->redirect_uris, "https://vscode.dev/other"));
	client_unref(c);

	/* Served from another URL it is a mismatch. */
	c = cimd_doc_validate("https://vscode.dev/oauth/client-metadata.json?x", text, len, cfg,
	    err, sizeof err);
	CU_ASSERT_PTR_NULL(c);
	free(text);
	config_free(cfg);
}

static void
test_doc_defaults_and_scopes(void)
{
	struct config *cfg = doc_config();
	char err[CIMD_ERR_MAX];
	struct client *c;
	const char *t = OKDOC(",\"scope\":\"openid  profile openid\"");

	strlist_add(&cfg->eas.baseline_client_scopes, "offline_access");
	strlist_add(&cfg->eas.baseline_client_scopes, "mcp:tools");
	c = cimd_doc_validate(URL, t, strlen(t), cfg, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	/* Declared (deduplicated) ∪ baseline. */
	CU_ASSERT_EQUAL(c->scopes.n, 4);
	CU_ASSERT_STRING_EQUAL(c->scopes.v[0], "openid");
	CU_ASSERT_STRING_EQUAL(c->scopes.v[1], "profile");
	CU_ASSERT_STRING_EQUAL(c->scopes.v[2], "offline_access");
	CU_ASSERT_STRING_EQUAL(c->scopes.v[3], "mcp:tools");
	/* No grant_types: [authorization_code]. */
	CU_ASSERT_EQUAL(c->grant_types.n, 1);
	CU_ASSERT_STRING_EQUAL(c->grant_types.v[0], "authorization_code");
	CU_ASSERT_STRING_EQUAL(c->client_name, "Test client");
	CU_ASSERT_STRING_EQUAL(c->token_endpoint_auth_method, "none");
	CU_ASSERT_PTR_NULL(c->jwks_uri);
	CU_ASSERT_PTR_NULL(c->jwks);
	client_unref(c);

	/* An unsupported scope's value is echoed only in a safe, bounded form. */
	t = OKDOC(",\"scope\":\"<script>alert(1)</"
		  "script>xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"");
	c = cimd_doc_validate(URL, t, strlen(t), cfg, err, sizeof err);
	CU_ASSERT_PTR_NULL(c);
	CU_ASSERT_PTR_NULL(strchr(err, '<'));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "..."));
	config_free(cfg);
}

static void
test_doc_bounds(void)
{
	struct config *cfg = doc_config();
	char err[CIMD_ERR_MAX], *t;
	struct client *c;
	char name[CIMD_CLIENT_NAME_MAX + 2];

	memset(name, 'n', sizeof name - 1);
	name[sizeof name - 1] = '\0';
	t = NULL;
	if (asprintf(&t, NAMELESS(",\"client_name\":\"%s\""), name) < 0)
		CU_FAIL_FATAL("asprintf");
	c = cimd_doc_validate(URL, t, strlen(t), cfg, err, sizeof err);
	CU_ASSERT_PTR_NULL(c);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "client_name is longer than"));
	free(t);

	/* An embedded NUL is refused even when the JSON before it is fine. */
	{
		const char nul[] = OKDOC("") "\0";

		c = cimd_doc_validate(URL, nul, sizeof nul - 1, cfg, err, sizeof err);
		CU_ASSERT_PTR_NULL(c);
	}
	config_free(cfg);
}

/* What a private_key_jwt document gives the client: the method, whether
 * none is accepted too, and the keys (a URL, or the parsed public keys). */
static void
test_doc_private_key_jwt(void)
{
	struct config *cfg = doc_config();
	char err[CIMD_ERR_MAX] = "";
	struct client *c;
	const char *t = OKDOC(PKJWT JWKS_URI);

	c = cimd_doc_validate(URL, t, strlen(t), cfg, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_STRING_EQUAL(c->token_endpoint_auth_method, "private_key_jwt");
	CU_ASSERT_FALSE(c->also_none);
	CU_ASSERT_STRING_EQUAL(c->jwks_uri, "https://app.example.com/jwks.json");
	CU_ASSERT_PTR_NULL(c->jwks);
	CU_ASSERT_TRUE(client_accepts_auth(c, "private_key_jwt"));
	CU_ASSERT_FALSE(client_accepts_auth(c, "none"));
	CU_ASSERT_FALSE(client_accepts_auth(c, "client_secret_post"));
	CU_ASSERT_PTR_NULL(c->token_endpoint_auth_signing_alg);
	client_unref(c);

	t = OKDOC(PKJWT JWKS_URI ",\"token_endpoint_auth_signing_alg\":\"RS256\"");
	c = cimd_doc_validate(URL, t, strlen(t), cfg, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_STRING_EQUAL(c->token_endpoint_auth_signing_alg, "RS256");
	client_unref(c);

	/* Listing both: either way. */
	t = OKDOC(JWKS_URI ",\"token_endpoint_auth_methods_supported\":[\"none\",\"private_key_jwt\"]");
	c = cimd_doc_validate(URL, t, strlen(t), cfg, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_STRING_EQUAL(c->token_endpoint_auth_method, "private_key_jwt");
	CU_ASSERT_TRUE(c->also_none);
	CU_ASSERT_TRUE(client_accepts_auth(c, "private_key_jwt"));
	CU_ASSERT_TRUE(client_accepts_auth(c, "none"));
	client_unref(c);

	/* Inline keys are parsed: kid and algorithm. */
	t = OKDOC(PKJWT ",\"jwks\":{\"keys\":[" EC_JWK("") "," RSA_JWK(",\"alg\":\"PS256\"") "]}");
	c = cimd_doc_validate(URL, t, strlen(t), cfg, err, sizeof err);
	if (c == NULL)
		fprintf(stderr, "inline: %s\n", err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_PTR_NULL(c->jwks_uri);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c->jwks);
	CU_ASSERT_EQUAL(keyset_count(c->jwks), 2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(keyset_find(c->jwks, "e1"));
	CU_ASSERT_EQUAL(keyset_key_alg(keyset_find(c->jwks, "e1")), KEYSET_ALG_ES256);
	CU_ASSERT_EQUAL(keyset_key_alg(keyset_find(c->jwks, "r1")), KEYSET_ALG_PS256);
	CU_ASSERT_FALSE(keyset_key_can_sign(keyset_find(c->jwks, "r1")));
	client_unref(c);

	/* A denied host is refused for jwks_uri as for a client_id. */
	strlist_add(&cfg->eas.cimd.denied_hosts, "keys.example");
	t = OKDOC(PKJWT ",\"jwks_uri\":\"https://keys.example/jwks\"");
	c = cimd_doc_validate(URL, t, strlen(t), cfg, err, sizeof err);
	CU_ASSERT_PTR_NULL(c);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "jwks_uri is refused"));
	config_free(cfg);
}

static const struct unit_test tests[] = {
	{ "url rules", test_url_rules },
	{ "url length", test_url_length },
	{ "is_url", test_is_url },
	{ "host match", test_host_match },
	{ "host policy", test_host_policy },
	{ "document rules", test_doc_rules },
	{ "vscode document", test_vscode_document },
	{ "defaults and scopes", test_doc_defaults_and_scopes },
	{ "bounds", test_doc_bounds },
	{ "private_key_jwt", test_doc_private_key_jwt },
	{ NULL, NULL },
};

int
main(void)
{
	return unit_run("cimd_doc", tests);
}
