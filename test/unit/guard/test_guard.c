/*
 * Unit tests for auth/guard. The pure parts (Authorization parsing, the
 * WWW-Authenticate challenge, scope coverage) are tested as functions; the
 * handler runs on a real loop: our server with the guard as fallback, a
 * tiny evhttp backend that records the headers it receives, and a fake
 * embedded AS (keyset, revocation list, memory store, scripted upstream
 * refresh). The token attack battery goes through HTTP: every forgery is
 * a 401 invalid_token, the backend never sees it, and the proxy still
 * serves a valid token afterwards.
 */
#include "auth/guard/guard.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/b64url.h"
#include "auth/crypto/jwt.h"
#include "auth/crypto/keyset.h"
#include "auth/guard/prm.h"
#include "auth/store/store.h"
#include "common/clock.h"
#include "common/scope.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "proxy/forward.h"
#include "proxy/log.h"
#include "proxy/metrics.h"
#include "proxy/server.h"
#include "test/unit/store_sync.h"
#include "test/unit/unit.h"

#define ISS "https://auth.example.com"
#define AUD "https://mcp.example.com/mcp"
#define META "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"

/* --- pure parts --- */

static void
test_parse_authorization(void)
{
	static const struct {
		const char *value;
		enum guard_auth want;
		const char *token;
	} cases[] = {
		{ "Bearer abc.def.ghi", GUARD_AUTH_OK, "abc.def.ghi" },
		{ "bearer abc", GUARD_AUTH_OK, "abc" },
		{ "BEARER a-b_c~d+e/f==", GUARD_AUTH_OK, "a-b_c~d+e/f==" },
		{ "Bearer  abc", GUARD_AUTH_MALFORMED, NULL }, /* two spaces */
		{ "Bearer\tabc", GUARD_AUTH_MALFORMED, NULL },
		{ "Bearer abc ", GUARD_AUTH_MALFORMED, NULL }, /* trailing space */
		{ "Bearer abc def", GUARD_AUTH_MALFORMED, NULL },
		{ "Bearer ", GUARD_AUTH_MALFORMED, NULL },
		{ "Bearer", GUARD_AUTH_MALFORMED, NULL },
		{ "Bearer =abc", GUARD_AUTH_MALFORMED, NULL }, /* padding only at the end */
		{ "Bearer ab=c", GUARD_AUTH_MALFORMED, NULL },
		{ "Bearer a\"b", GUARD_AUTH_MALFORMED, NULL },
		{ "Bearer abc,def", GUARD_AUTH_MALFORMED, NULL },
		{ "Basic dXNlcjpwYXNz", GUARD_AUTH_MALFORMED, NULL },
		{ "Bearerabc", GUARD_AUTH_MALFORMED, NULL },
		{ "", GUARD_AUTH_MALFORMED, NULL },
		{ NULL, GUARD_AUTH_MISSING, NULL },
	};
	const char *tok;
	size_t len;
	char *big;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		enum guard_auth got = guard_parse_authorization(cases[i].value, &tok, &len);

		if (got != cases[i].want)
			fprintf(stderr, "\ncase %zu \"%s\": got %d want %d\n", i,
			    cases[i].value ? cases[i].value : "(null)", got, cases[i].want);
		CU_ASSERT_EQUAL(got, cases[i].want);
		if (cases[i].token != NULL) {
			CU_ASSERT_EQUAL(len, strlen(cases[i].token));
			CU_ASSERT_EQUAL(strncmp(tok, cases[i].token, len), 0);
		} else {
			CU_ASSERT_PTR_NULL(tok);
		}
	}
	/* the size bound is checked before anything else */
	big = xmalloc(7 + GUARD_TOKEN_MAX + 2);
	memcpy(big, "Bearer ", 7);
	memset(big + 7, 'a', GUARD_TOKEN_MAX);
	big[7 + GUARD_TOKEN_MAX] = '\0';
	CU_ASSERT_EQUAL(guard_parse_authorization(big, &tok, &len), GUARD_AUTH_OK);
	CU_ASSERT_EQUAL(len, GUARD_TOKEN_MAX);
	big[7 + GUARD_TOKEN_MAX] = 'a';
	big[7 + GUARD_TOKEN_MAX + 1] = '\0';
	CU_ASSERT_EQUAL(guard_parse_authorization(big, &tok, &len), GUARD_AUTH_TOO_LARGE);
	big[0] = 'X';
	CU_ASSERT_EQUAL(guard_parse_authorization(big, &tok, &len), GUARD_AUTH_TOO_LARGE);
	free(big);
	/* the cheap half leaves the characters to guard_token68() */
	CU_ASSERT_EQUAL(guard_split_authorization("Bearer a\"b", &tok, &len), GUARD_AUTH_OK);
	CU_ASSERT_EQUAL(len, 3);
	CU_ASSERT_FALSE(guard_token68(tok, len));
	CU_ASSERT_EQUAL(guard_split_authorization("Bearer ", &tok, &len), GUARD_AUTH_MALFORMED);
	CU_ASSERT_EQUAL(guard_split_authorization("Basic abc", &tok, &len), GUARD_AUTH_MALFORMED);
	CU_ASSERT_EQUAL(guard_split_authorization(NULL, &tok, &len), GUARD_AUTH_MISSING);
	CU_ASSERT_TRUE(guard_token68("a.b-c_d~e+f/g==", 15));
	CU_ASSERT_FALSE(guard_token68("ab=c", 4));
	CU_ASSERT_FALSE(guard_token68("=", 1));
	CU_ASSERT_FALSE(guard_token68("", 0));
}

static void
test_www_authenticate(void)
{
	char *s;

	s = guard_www_authenticate(META, "mcp:tools openid", NULL, NULL);
	CU_ASSERT_STRING_EQUAL(s,
	    "Bearer resource_metadata=\"" META "\", scope=\"mcp:tools openid\"");
	free(s);
	s = guard_www_authenticate(META, "mcp:tools", "invalid_token",
	    "the access token has expired");
	CU_ASSERT_STRING_EQUAL(s,
	    "Bearer resource_metadata=\"" META "\", scope=\"mcp:tools\", "
	    "error=\"invalid_token\", error_description=\"the access token has expired\"");
	free(s);
	s = guard_www_authenticate(META, NULL, "invalid_token", NULL);
	CU_ASSERT_STRING_EQUAL(s, "Bearer resource_metadata=\"" META "\", error=\"invalid_token\"");
	free(s);
	s = guard_www_authenticate(NULL, "", NULL, NULL);
	CU_ASSERT_STRING_EQUAL(s, "Bearer");
	free(s);
	/* quotes and backslashes escaped, control characters dropped */
	s = guard_www_authenticate(META, NULL, "invalid_token", "a \"b\" \\c\r\nd\x01");
	CU_ASSERT_STRING_EQUAL(s,
	    "Bearer resource_metadata=\"" META "\", error=\"invalid_token\", "
	    "error_description=\"a \\\"b\\\" \\\\cd\"");
	free(s);
}

static void
test_scopes_cover(void)
{
	struct strlist req = { 0 };
	const char *missing;

	CU_ASSERT_TRUE(scope_cover(NULL, &req, &missing));
	CU_ASSERT_PTR_NULL(missing);
	strlist_add(&req, "mcp:tools");
	CU_ASSERT_TRUE(scope_cover("openid mcp:tools", &req, &missing));
	CU_ASSERT_TRUE(scope_cover("  mcp:tools  ", &req, &missing));
	CU_ASSERT_FALSE(scope_cover("openid mcp:toolsx", &req, &missing));
	CU_ASSERT_STRING_EQUAL(missing, "mcp:tools");
	CU_ASSERT_FALSE(scope_cover("mcp:tool", &req, &missing));
	CU_ASSERT_FALSE(scope_cover("", &req, &missing));
	CU_ASSERT_FALSE(scope_cover(NULL, &req, &missing));
	strlist_add(&req, "admin");
	CU_ASSERT_FALSE(scope_cover("mcp:tools", &req, &missing));
	CU_ASSERT_STRING_EQUAL(missing, "admin");
	CU_ASSERT_TRUE(scope_cover("admin mcp:tools", &req, &missing));
	strlist_dispose(&req);
}

/* --- the loop fixture --- */

static struct event_base *base;
static struct config *cfg;
static struct server *srv;
static struct forwarder *fw;
static struct req_router router;
static struct prm *prm;
static struct guard *guard;
static struct store *st;
static struct keyset *ks, *other;
static struct evhttp *backend;
static int mcp_port;

static char revoked[8][64];
static size_t n_revoked;

/* what the backend saw last */
static int backend_hits;
static char *seen_auth, *seen_cookie, *seen_custom, *seen_proxy_auth;

/* the scripted upstream refresh */
struct fake_refresh {
	struct event *ev;
	guard_refresh_done_cb done;
	void *arg;
};
static int refresh_calls, refresh_cancels;
static bool refresh_fail;
/* refresh_hold: a refresh waits for release_refresh() instead of a timer,
 * so that a test can act while it is surely in flight */
static bool refresh_hold;
static struct fake_refresh *held;
static char *refresh_seen_rt;

static const char *
fake_issuer(void *as)
{
	return ISS;
}

static const struct keyset *
fake_keyset(void *as)
{
	return ks;
}

static bool
fake_revoked(void *as, const char *jti)
{
	for (size_t i = 0; i < n_revoked; i++) {
		if (strcmp(revoked[i], jti) == 0)
			return true;
	}
	return false;
}

static struct store *
fake_store(void *as)
{
	return st;
}

static void
fake_refresh_fire(evutil_socket_t fd, short what, void *arg)
{
	struct fake_refresh *fr = arg;
	guard_refresh_done_cb done = fr->done;
	void *darg = fr->arg;
	struct store_upstream *u = NULL;

	if (fr == held)
		held = NULL;
	event_free(fr->ev);
	free(fr);
	if (!refresh_fail) {
		u = xcalloc(1, sizeof *u);
		u->access_token = xstrdup("upstream-access-2");
		u->refresh_token = NULL; /* not rotated: the guard keeps the old one */
		u->expires_at = clock_wall_s() + 3600;
	}
	done(u, refresh_fail ? "invalid_grant" : NULL, darg);
}

static void *
fake_upstream_refresh(void *as, const char *rt, guard_refresh_done_cb done, void *arg)
{
	struct fake_refresh *fr = xcalloc(1, sizeof *fr);
	struct timeval tv = { 0, 30 * 1000 };

	refresh_calls++;
	free(refresh_seen_rt);
	refresh_seen_rt = xstrdup(rt);
	fr->done = done;
	fr->arg = arg;
	fr->ev = evtimer_new(base, fake_refresh_fire, fr);
	if (refresh_hold)
		held = fr;
	else
		evtimer_add(fr->ev, &tv);
	return fr;
}

/* Let the held refresh answer on the next loop turn. */
static void
release_refresh(void)
{
	struct timeval now = { 0, 0 };

	CU_ASSERT_PTR_NOT_NULL_FATAL(held);
	evtimer_add(held->ev, &now);
}

/* Run the loop until *counter reaches want (or 10 s): an outcome, not a
 * guess at how long it takes. */
static void
spin_until(const int *counter, int want)
{
	for (int i = 0; i < 1000 && *counter < want; i++) {
		struct timeval tv = { 0, 10 * 1000 };

		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
	CU_ASSERT_EQUAL(*counter, want);
}

static void
fake_upstream_cancel(void *handle)
{
	struct fake_refresh *fr = handle;

	refresh_cancels++;
	if (fr == held)
		held = NULL;
	event_free(fr->ev);
	free(fr);
}

static char *
header_dup(struct evkeyvalq *h, const char *name)
{
	const char *v = evhttp_find_header(h, name);

	return v != NULL ? xstrdup(v) : NULL;
}

static void
backend_cb(struct evhttp_request *req, void *arg)
{
	struct evkeyvalq *h = evhttp_request_get_input_headers(req);
	struct evbuffer *b = evbuffer_new();

	backend_hits++;
	free(seen_auth);
	free(seen_cookie);
	free(seen_custom);
	free(seen_proxy_auth);
	seen_auth = header_dup(h, "Authorization");
	seen_cookie = header_dup(h, "Cookie");
	seen_custom = header_dup(h, "X-Upstream-Token");
	seen_proxy_auth = header_dup(h, "Proxy-Authorization");
	evbuffer_add_printf(b, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}");
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	    "application/json");
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
}

static char *
read_file(const char *name, size_t *len)
{
	const char *dir = getenv("MCP_SOURCE_DIR");
	char path[512], *buf;
	FILE *f;
	long n;

	snprintf(path, sizeof path, "%s/test/unit/data/keys/%s", dir ? dir : ".", name);
	if ((f = fopen(path, "rb")) == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = xmalloc((size_t)n + 1);
	*len = fread(buf, 1, (size_t)n, f);
	buf[*len] = '\0';
	fclose(f);
	return buf;
}

/* What the guard handed the next hop last (struct req_principal, copied). */
static char *pass_sub, *pass_scope, *pass_client_id, *pass_claims;
static int pass_calls;

static void
spy_pass(struct req *sr, const struct req_pass_opts *opts, void *arg)
{
	const struct req_principal *p = opts != NULL ? opts->principal : NULL;

	pass_calls++;
	free(pass_sub);
	free(pass_scope);
	free(pass_client_id);
	free(pass_claims);
	pass_sub = p != NULL && p->sub != NULL ? xstrdup(p->sub) : NULL;
	pass_scope = p != NULL && p->scope != NULL ? xstrdup(p->scope) : NULL;
	pass_client_id = p != NULL && p->client_id != NULL ? xstrdup(p->client_id) : NULL;
	pass_claims = p != NULL && p->claims_json != NULL ? xstrdup(p->claims_json) : NULL;
	forward_pass(sr, opts, arg);
}

static void
put_upstream(const char *tsid, const char *access, int64_t expires_at)
{
	struct store_upstream *u = xcalloc(1, sizeof *u);
	struct sx x;

	SX_START(x);
	u->claims_json = xstrdup("{\"sub\":\"alice\",\"groups\":[\"admins\"]}");
	u->subject = xstrdup("alice");
	u->access_token = xstrdup(access);
	u->refresh_token = xstrdup("upstream-refresh-1");
	u->expires_at = expires_at;
	store_upstream_put(st, tsid, u, 3600 * 1000, sx_cb, &x);
	sx_wait(base, &x);
	sx_dispose(&x);
}

static void
setup(void)
{
	struct guard_as_ops ops = {
		.as = NULL,
		.issuer = fake_issuer,
		.keyset = fake_keyset,
		.token_revoked = fake_revoked,
		.store = fake_store,
		.upstream_refresh = fake_upstream_refresh,
		.upstream_cancel = fake_upstream_cancel,
	};
	struct evhttp_bound_socket *bs;
	struct sockaddr_in sin;
	socklen_t sl = sizeof sin;
	char err[256], *pem;
	size_t len;

	log_set_level(LOG_ERROR);
	base = event_base_new();
	cfg = config_new();
	free(cfg->server.listen);
	cfg->server.listen = xstrdup("127.0.0.1:0");
	free(cfg->server.diagnostics_listen);
	cfg->server.diagnostics_listen = xstrdup("127.0.0.1:0");
	cfg->server.resource_url = xstrdup(AUD);
	cfg->eas.issuer = xstrdup(ISS "/");
	strlist_add(&cfg->auth.required_scopes, "mcp:tools");

	backend = evhttp_new(base);
	bs = evhttp_bind_socket_with_handle(backend, "127.0.0.1", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(bs);
	getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &sl);
	evhttp_set_gencb(backend, backend_cb, NULL);
	free(cfg->backend.url);
	cfg->backend.url = xasprintf("http://127.0.0.1:%d", ntohs(sin.sin_port));

	ks = keyset_new();
	pem = read_file("p256.pem", &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(pem);
	CU_ASSERT_EQUAL_FATAL(keyset_add_pem(ks, pem, len, err, sizeof err), 0);
	free(pem);
	pem = read_file("rsa2048.pem", &len);
	CU_ASSERT_EQUAL_FATAL(keyset_add_pem(ks, pem, len, err, sizeof err), 0);
	free(pem);
	other = keyset_new();
	CU_ASSERT_EQUAL_FATAL(keyset_generate_es256(other, err, sizeof err), 0);
	st = store_new(cfg, base, NULL, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);

	srv = server_new(base, cfg);
	CU_ASSERT_EQUAL_FATAL(server_listen(srv, err, sizeof err), 0);
	mcp_port = server_port(srv, SERVER_MCP);
	fw = forwarder_new(base, server_dns(srv), cfg);
	prm = prm_new(cfg);
	CU_ASSERT_PTR_NOT_NULL_FATAL(prm);
	router = server_router(srv, SERVER_MCP);
	prm_register(prm, &router);
	guard = guard_new(base, cfg, spy_pass, fw, NULL, prm, &ops, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(guard);
	server_set_fallback(srv, "mcp", guard_handler, guard);
	n_revoked = 0;
	backend_hits = refresh_calls = refresh_cancels = pass_calls = 0;
	refresh_fail = false;
	put_upstream("sess-1", "upstream-access-1", clock_wall_s() + 3600);
}

static void
teardown(void)
{
	guard_free(guard);
	server_free(srv);
	forwarder_free(fw);
	prm_free(prm);
	evhttp_free(backend);
	store_free(st);
	keyset_free(ks);
	keyset_free(other);
	config_free(cfg);
	event_base_free(base);
	metrics_reset();
	free(pass_sub);
	free(pass_scope);
	free(pass_client_id);
	free(pass_claims);
	pass_sub = pass_scope = pass_client_id = pass_claims = NULL;
	free(seen_auth);
	free(seen_cookie);
	free(seen_custom);
	free(seen_proxy_auth);
	free(refresh_seen_rt);
	seen_auth = seen_cookie = seen_custom = seen_proxy_auth = refresh_seen_rt = NULL;
}

/* --- a client --- */

struct reply {
	int status;
	char *www;
	char *body;
	bool done;
	struct evhttp_connection *conn;
};

static int pending;

static void
reply_cb(struct evhttp_request *req, void *arg)
{
	struct reply *r = arg;
	struct evbuffer *b;
	size_t n;

	r->done = true;
	if (req != NULL) {
		r->status = evhttp_request_get_response_code(req);
		r->www = header_dup(evhttp_request_get_input_headers(req), "WWW-Authenticate");
		b = evhttp_request_get_input_buffer(req);
		n = evbuffer_get_length(b);
		r->body = xmalloc(n + 1);
		evbuffer_remove(b, r->body, n);
		r->body[n] = '\0';
	}
	if (--pending == 0)
		event_base_loopbreak(base);
}

/* Start a POST /mcp with the given Authorization (NULL: none) and extra
 * header lines ("Name: value"). */
static void
start(struct reply *r, const char *authz, const char *extra_name, const char *extra_value)
{
	struct evhttp_request *req = evhttp_request_new(reply_cb, r);
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	const char *body = "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\"}";

	memset(r, 0, sizeof *r);
	r->conn = evhttp_connection_base_new(base, NULL, "127.0.0.1", (unsigned short)mcp_port);
	evhttp_add_header(h, "Host", "mcp.example.com");
	evhttp_add_header(h, "Content-Type", "application/json");
	evhttp_add_header(h, "Cookie", "session=client-cookie");
	evhttp_add_header(h, "Proxy-Authorization", "Basic cHJveHk6c2VjcmV0");
	if (authz != NULL)
		evhttp_add_header(h, "Authorization", authz);
	if (extra_name != NULL)
		evhttp_add_header(h, extra_name, extra_value);
	evbuffer_add(evhttp_request_get_output_buffer(req), body, strlen(body));
	pending++;
	evhttp_make_request(r->conn, req, EVHTTP_REQ_POST, "/mcp");
}

/* Until every started request has its reply, or 10 s. */
static void
run(void)
{
	UNIT_LOOP_UNTIL(base, pending <= 0, 10000);
}

static void
reply_dispose(struct reply *r)
{
	if (r->conn != NULL)
		evhttp_connection_free(r->conn);
	free(r->www);
	free(r->body);
	memset(r, 0, sizeof *r);
}

/* One request, answered. */
static void
call(struct reply *r, const char *authz)
{
	start(r, authz, NULL, NULL);
	run();
	CU_ASSERT_TRUE(r->done);
}

/* --- tokens --- */

static int jti_seq;

/* Our claims, valid now; tweak with the arguments. */
static json_object *
claims(const char *iss, const char *aud, int64_t dexp, int64_t dnbf, const char *scope)
{
	json_object *c = json_object_new_object();
	int64_t now = clock_wall_s();
	char jti[32];

	snprintf(jti, sizeof jti, "jti-%d", ++jti_seq);
	json_object_object_add(c, "iss", json_object_new_string(iss));
	json_object_object_add(c, "sub", json_object_new_string("alice"));
	json_object_object_add(c, "aud", json_object_new_string(aud));
	json_object_object_add(c, "exp", json_object_new_int64(now + dexp));
	json_object_object_add(c, "iat", json_object_new_int64(now));
	json_object_object_add(c, "nbf", json_object_new_int64(now + dnbf));
	json_object_object_add(c, "jti", json_object_new_string(jti));
	json_object_object_add(c, "client_id", json_object_new_string("client-1"));
	json_object_object_add(c, "scope", json_object_new_string(scope));
	json_object_object_add(c, "tsid", json_object_new_string("sess-1"));
	return c;
}

static char *
sign_with(const struct keyset_key *key, json_object *c)
{
	char err[128], *tok = jwt_sign(key, "at+jwt", c, err, sizeof err);

	CU_ASSERT_PTR_NOT_NULL_FATAL(tok);
	json_object_put(c);
	return tok;
}

static char *
good_token(void)
{
	return sign_with(keyset_signing_key(ks), claims(ISS, AUD, 300, 0, "openid mcp:tools"));
}

static char *
bearer(const char *tok)
{
	return xasprintf("Bearer %s", tok);
}

/* header.payload with an HMAC-SHA256 "signature" keyed with secret. */
static char *
forge_hs256(const char *hdr, const char *payload, const void *secret, size_t secretlen)
{
	char *h = b64url_encode(hdr, strlen(hdr)), *p = b64url_encode(payload, strlen(payload));
	char *input = xasprintf("%s.%s", h, p), *s, *tok;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;

	HMAC(EVP_sha256(), secret, (int)secretlen, (unsigned char *)input, strlen(input), mac,
	    &maclen);
	s = b64url_encode(mac, maclen);
	tok = xasprintf("%s.%s", input, s);
	free(h);
	free(p);
	free(input);
	free(s);
	return tok;
}

static char *
payload_json(void)
{
	json_object *c = claims(ISS, AUD, 300, 0, "openid mcp:tools");
	char *s = xstrdup(json_object_to_json_string_ext(c, JSON_C_TO_STRING_PLAIN));

	json_object_put(c);
	return s;
}

/* Request with tok and assert a 401 invalid_token the backend never saw. */
static void
assert_rejected(const char *what, const char *authz)
{
	struct reply r;
	int hits = backend_hits;

	call(&r, authz);
	if (r.status != 401 || r.www == NULL || strstr(r.www, "error=\"invalid_token\"") == NULL)
		fprintf(stderr, "\n%s: status %d www %s\n", what, r.status, r.www ? r.www : "-");
	CU_ASSERT_EQUAL(r.status, 401);
	CU_ASSERT_PTR_NOT_NULL(r.www);
	if (r.www != NULL) {
		CU_ASSERT_PTR_NOT_NULL(strstr(r.www,
		    "Bearer resource_metadata=\"" META "\", "
		    "scope=\"mcp:tools\", error=\"invalid_token\", error_description=\""));
	}
	/* a JSON-RPC request gets a JSON-RPC error with its id */
	CU_ASSERT_PTR_NOT_NULL(r.body != NULL ? strstr(r.body, "\"id\":7") : NULL);
	CU_ASSERT_EQUAL(backend_hits, hits);
	reply_dispose(&r);
}

static void
assert_allowed(const char *authz)
{
	struct reply r;
	int hits = backend_hits;

	call(&r, authz);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_EQUAL(backend_hits, hits + 1);
	reply_dispose(&r);
}

/* --- handler tests --- */

static void
test_no_token(void)
{
	struct reply r;

	setup();
	call(&r, NULL);
	CU_ASSERT_EQUAL(r.status, 401);
	CU_ASSERT_STRING_EQUAL(r.www, "Bearer resource_metadata=\"" META "\", scope=\"mcp:tools\"");
	CU_ASSERT_STRING_EQUAL(r.body,
	    "{\"jsonrpc\":\"2.0\",\"id\":7,\"error\":{\"code\":-32001,"
	    "\"message\":\"an access token is required\",\"data\":{\"error\":\"unauthorized\"}}}");
	CU_ASSERT_EQUAL(backend_hits, 0);
	reply_dispose(&r);
	teardown();
}

static void
test_attack_battery(void)
{
	char *tok, *hdr, *p, *pem, *authz, *dot, *tampered, *h64, *p64;
	const struct keyset_key *rsa;
	json_object *c;
	size_t len;

	setup();
	rsa = keyset_at(ks, 1);
	p = payload_json();

	/* alg none, unsigned */
	hdr = xasprintf("{\"alg\":\"none\",\"typ\":\"at+jwt\",\"kid\":\"%s\"}",
	    keyset_key_kid(keyset_signing_key(ks)));
	h64 = b64url_encode(hdr, strlen(hdr));
	p64 = b64url_encode(p, strlen(p));
	authz = xasprintf("Bearer %s.%s.", h64, p64);
	assert_rejected("alg none", authz);
	free(authz);
	free(h64);
	free(p64);
	free(hdr);

	/* HS256 keyed with our RSA public key (PEM) under its kid */
	hdr = xasprintf("{\"alg\":\"HS256\",\"typ\":\"at+jwt\",\"kid\":\"%s\"}",
	    keyset_key_kid(rsa));
	pem = read_file("rsa2048-pub.pem", &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(pem);
	tok = forge_hs256(hdr, p, pem, len);
	authz = bearer(tok);
	assert_rejected("HS256 with the public key", authz);
	free(authz);
	free(tok);
	free(pem);
	free(hdr);

	/* unknown kid: a key we never published */
	tok = sign_with(keyset_at(other, 0), claims(ISS, AUD, 300, 0, "mcp:tools"));
	authz = bearer(tok);
	assert_rejected("unknown kid", authz);
	free(authz);
	free(tok);

	/* expired beyond the leeway; nbf in the future beyond it */
	tok = sign_with(keyset_signing_key(ks), claims(ISS, AUD, -61, -3600, "mcp:tools"));
	authz = bearer(tok);
	assert_rejected("expired", authz);
	free(authz);
	free(tok);
	tok = sign_with(keyset_signing_key(ks), claims(ISS, AUD, 3600, 120, "mcp:tools"));
	authz = bearer(tok);
	assert_rejected("nbf in the future", authz);
	free(authz);
	free(tok);

	/* wrong audience, wrong issuer */
	tok = sign_with(keyset_signing_key(ks),
	    claims(ISS, "https://other.example.com/mcp", 300, 0, "mcp:tools"));
	authz = bearer(tok);
	assert_rejected("wrong aud", authz);
	free(authz);
	free(tok);
	tok = sign_with(keyset_signing_key(ks),
	    claims("https://evil.example.com", AUD, 300, 0, "mcp:tools"));
	authz = bearer(tok);
	assert_rejected("wrong iss", authz);
	free(authz);
	free(tok);

	/* a wrong typ (an ID token, say) */
	c = claims(ISS, AUD, 300, 0, "mcp:tools");
	{
		char err[128];

		tok = jwt_sign(keyset_signing_key(ks), "JWT", c, err, sizeof err);
	}
	json_object_put(c);
	authz = bearer(tok);
	assert_rejected("typ JWT", authz);
	free(authz);
	free(tok);

	/* tampered payload: another scope under the original signature */
	tok = good_token();
	dot = strchr(tok, '.');
	c = claims(ISS, AUD, 300, 0, "mcp:tools admin");
	{
		const char *js = json_object_to_json_string_ext(c, JSON_C_TO_STRING_PLAIN);

		p64 = b64url_encode(js, strlen(js));
	}
	json_object_put(c);
	tampered = xasprintf("%.*s.%s%s", (int)(dot - tok), tok, p64, strrchr(tok, '.'));
	authz = bearer(tampered);
	assert_rejected("tampered payload", authz);
	free(authz);
	free(tampered);
	free(p64);

	/* truncated signature, truncated to two parts */
	tok[strlen(tok) - 10] = '\0';
	authz = bearer(tok);
	assert_rejected("truncated", authz);
	free(authz);
	*strrchr(tok, '.') = '\0';
	authz = bearer(tok);
	assert_rejected("two parts", authz);
	free(authz);
	free(tok);

	/* not base64url / not token68 / not JSON */
	assert_rejected("not token68", "Bearer abc!def.ghi.jkl");
	assert_rejected("base64 not url", "Bearer a+b/c.d+e/f.g+h/");
	assert_rejected("not JSON", "Bearer Zm9v.YmFy.YmF6");
	assert_rejected("empty parts", "Bearer ..");
	assert_rejected("opaque", "Bearer 0123456789abcdef");
	assert_rejected("other scheme", "Basic dXNlcjpwYXNz");

	/* 64 KiB header: refused without parsing */
	authz = xmalloc(7 + 64 * 1024 + 1);
	memcpy(authz, "Bearer ", 7);
	memset(authz + 7, 'e', 64 * 1024);
	authz[7 + 64 * 1024] = '\0';
	assert_rejected("64 KiB", authz);
	free(authz);

	/* a revoked token, revoked before first use */
	c = claims(ISS, AUD, 300, 0, "mcp:tools");
	snprintf(revoked[n_revoked++], sizeof revoked[0], "%s",
	    json_object_get_string(json_object_object_get(c, "jti")));
	tok = sign_with(keyset_signing_key(ks), c);
	authz = bearer(tok);
	assert_rejected("revoked", authz);
	free(authz);
	free(tok);

	/* the proxy is unharmed: a good token still passes */
	tok = good_token();
	authz = bearer(tok);
	assert_allowed(authz);
	free(authz);
	free(tok);
	free(p);
	CU_ASSERT_EQUAL(backend_hits, 1);
	teardown();
}

static void
test_two_authorization_headers(void)
{
	char *tok, *authz;
	struct reply r;

	setup();
	tok = good_token();
	authz = bearer(tok);
	start(&r, authz, "Authorization", authz);
	run();
	CU_ASSERT_EQUAL(r.status, 401);
	CU_ASSERT_EQUAL(backend_hits, 0);
	reply_dispose(&r);
	free(tok);
	free(authz);
	teardown();
}

static void
test_revoked_after_cache(void)
{
	char *tok, *authz;
	json_object *c;

	setup();
	c = claims(ISS, AUD, 300, 0, "mcp:tools");
	snprintf(revoked[0], sizeof revoked[0], "%s",
	    json_object_get_string(json_object_object_get(c, "jti")));
	tok = sign_with(keyset_signing_key(ks), c);
	authz = bearer(tok);
	assert_allowed(authz);
	assert_allowed(authz);
	CU_ASSERT_EQUAL(tokencache_count(guard_tokencache(guard)), 1);
	CU_ASSERT_EQUAL(metrics_value(metrics_counter("mcp_proxy_guard_token_cache_total", "",
					  "result"),
			    "hit"),
	    1);
	n_revoked = 1; /* revoked now: the cached verification does not help */
	assert_rejected("revoked after caching", authz);
	CU_ASSERT_EQUAL(tokencache_count(guard_tokencache(guard)), 0);
	free(authz);
	free(tok);
	teardown();
}

static void
test_insufficient_scope(void)
{
	char *tok, *authz;
	struct reply r;

	setup();
	tok = sign_with(keyset_signing_key(ks), claims(ISS, AUD, 300, 0, "openid profile"));
	authz = bearer(tok);
	call(&r, authz);
	CU_ASSERT_EQUAL(r.status, 403);
	CU_ASSERT_STRING_EQUAL(r.www,
	    "Bearer resource_metadata=\"" META "\", scope=\"mcp:tools\", "
	    "error=\"insufficient_scope\", "
	    "error_description=\"the access token lacks the scope mcp:tools\"");
	CU_ASSERT_EQUAL(backend_hits, 0);
	reply_dispose(&r);
	free(authz);
	free(tok);
	teardown();
}

static void
test_injection(void)
{
	char *tok = NULL, *authz;

	setup();
	tok = good_token();
	authz = bearer(tok);
	/* default: the session's upstream token, never ours, never cookies */
	assert_allowed(authz);
	CU_ASSERT_STRING_EQUAL(seen_auth, "Bearer upstream-access-1");
	/* the next hop learns the token's claims and the session's upstream ones */
	CU_ASSERT_STRING_EQUAL(pass_sub, "alice");
	CU_ASSERT_STRING_EQUAL(pass_client_id, "client-1");
	CU_ASSERT_STRING_EQUAL(pass_scope, "openid mcp:tools");
	CU_ASSERT_STRING_EQUAL(pass_claims, "{\"sub\":\"alice\",\"groups\":[\"admins\"]}");
	CU_ASSERT_PTR_NULL(seen_cookie);
	CU_ASSERT_PTR_NULL(seen_proxy_auth);
	CU_ASSERT_PTR_NULL(seen_custom);

	/* a custom header: Authorization stays away */
	cfg->auth.upstream_token_header = xstrdup("X-Upstream-Token");
	assert_allowed(authz);
	CU_ASSERT_PTR_NULL(seen_auth);
	CU_ASSERT_STRING_EQUAL(seen_custom, "upstream-access-1");
	CU_ASSERT_PTR_NULL(seen_cookie);
	free(cfg->auth.upstream_token_header);
	cfg->auth.upstream_token_header = NULL;

	/* injection off: no credential at all */
	cfg->eas.disable_upstream_token_injection = true;
	assert_allowed(authz);
	CU_ASSERT_STRING_EQUAL(pass_claims, "{\"sub\":\"alice\",\"groups\":[\"admins\"]}");
	CU_ASSERT_PTR_NULL(seen_auth);
	CU_ASSERT_PTR_NULL(seen_custom);
	CU_ASSERT_PTR_NULL(seen_cookie);
	CU_ASSERT_PTR_NULL(seen_proxy_auth);
	cfg->eas.disable_upstream_token_injection = false;
	free(authz);
	free(tok);

	/* a token whose session is unknown: sign in again */
	{
		json_object *c = claims(ISS, AUD, 300, 0, "mcp:tools");

		json_object_object_add(c, "tsid", json_object_new_string("sess-gone"));
		tok = sign_with(keyset_signing_key(ks), c);
	}
	authz = bearer(tok);
	assert_rejected("session gone", authz);
	free(authz);
	free(tok);
	teardown();
}

static void
test_refresh_single_flight(void)
{
	struct reply r[5];
	char *tok, *authz;
	const struct store_upstream *u;

	setup();
	put_upstream("sess-1", "upstream-access-1", clock_wall_s() - 1);
	tok = good_token();
	authz = bearer(tok);
	for (int i = 0; i < 5; i++)
		start(&r[i], authz, NULL, NULL);
	run();
	CU_ASSERT_EQUAL(refresh_calls, 1);
	CU_ASSERT_STRING_EQUAL(refresh_seen_rt, "upstream-refresh-1");
	for (int i = 0; i < 5; i++) {
		CU_ASSERT_EQUAL(r[i].status, 200);
		reply_dispose(&r[i]);
	}
	CU_ASSERT_EQUAL(backend_hits, 5);
	CU_ASSERT_STRING_EQUAL(seen_auth, "Bearer upstream-access-2");
	/* the waiters' claims reach the next hop too, with the session's */
	CU_ASSERT_EQUAL(pass_calls, 5);
	CU_ASSERT_STRING_EQUAL(pass_client_id, "client-1");
	CU_ASSERT_STRING_EQUAL(pass_scope, "openid mcp:tools");
	CU_ASSERT_STRING_EQUAL(pass_claims, "{\"sub\":\"alice\",\"groups\":[\"admins\"]}");
	u = store_upstream_cached(st, "sess-1", NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(u);
	CU_ASSERT_STRING_EQUAL(u->access_token, "upstream-access-2");
	/* not rotated by the IdP: the old refresh token is kept, and the subject */
	CU_ASSERT_STRING_EQUAL(u->refresh_token, "upstream-refresh-1");
	CU_ASSERT_STRING_EQUAL(u->subject, "alice");
	/* fresh now: no second refresh */
	assert_allowed(authz);
	CU_ASSERT_EQUAL(refresh_calls, 1);
	free(authz);
	free(tok);
	teardown();
}

static void
test_refresh_failure(void)
{
	struct reply r[3];
	char *tok, *authz;

	setup();
	put_upstream("sess-1", "upstream-access-1", clock_wall_s() + 2); /* within the skew */
	refresh_fail = true;
	tok = good_token();
	authz = bearer(tok);
	for (int i = 0; i < 3; i++)
		start(&r[i], authz, NULL, NULL);
	run();
	CU_ASSERT_EQUAL(refresh_calls, 1);
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(r[i].status, 401);
		CU_ASSERT_PTR_NOT_NULL(
		    r[i].www ? strstr(r[i].www, "error=\"invalid_token\"") : NULL);
		reply_dispose(&r[i]);
	}
	CU_ASSERT_EQUAL(backend_hits, 0);
	free(authz);
	free(tok);
	teardown();
}

/* Another replica refreshed the same session first (the compare-and-swap
 * of ours loses): the waiting request goes on with the winner's token and
 * the store keeps the winner's rotation, not ours. */
static void
test_refresh_lost_to_another_replica(void)
{
	struct reply r;
	char *tok, *authz;
	const struct store_upstream *u;

	setup();
	refresh_hold = true;
	put_upstream("sess-1", "upstream-access-1", clock_wall_s() - 1);
	tok = good_token();
	authz = bearer(tok);
	start(&r, authz, NULL, NULL);
	spin_until(&refresh_calls, 1);
	/* the other replica's rotation lands while ours is in flight */
	put_upstream("sess-1", "upstream-access-9", clock_wall_s() + 3600);
	release_refresh();
	run();
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(seen_auth, "Bearer upstream-access-9");
	u = store_upstream_cached(st, "sess-1", NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(u);
	CU_ASSERT_STRING_EQUAL(u->access_token, "upstream-access-9");
	reply_dispose(&r);
	refresh_hold = false;
	free(authz);
	free(tok);
	teardown();
}

/* Our refresh fails at the IdP because another replica spent the refresh
 * token first (it rotates): the session is read again and the request
 * goes on with the other replica's tokens instead of a 401. */
static void
test_refresh_failed_but_another_replica_did(void)
{
	struct reply r;
	char *tok, *authz;

	setup();
	refresh_hold = true;
	refresh_fail = true;
	put_upstream("sess-1", "upstream-access-1", clock_wall_s() - 1);
	tok = good_token();
	authz = bearer(tok);
	start(&r, authz, NULL, NULL);
	spin_until(&refresh_calls, 1);
	put_upstream("sess-1", "upstream-access-9", clock_wall_s() + 3600);
	release_refresh();
	run();
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(seen_auth, "Bearer upstream-access-9");
	reply_dispose(&r);
	refresh_hold = false;
	free(authz);
	free(tok);
	teardown();
}

/* Clients that leave while their request waits for a refresh. */
static void
test_refresh_client_gone(void)
{
	struct reply r[2];
	char *tok, *authz;

	setup();
	refresh_hold = true;
	put_upstream("sess-1", "upstream-access-1", clock_wall_s() - 1);
	tok = good_token();
	authz = bearer(tok);
	start(&r[0], authz, NULL, NULL);
	start(&r[1], authz, NULL, NULL);
	spin_until(&refresh_calls, 1);
	CU_ASSERT_FALSE(r[0].done);
	evhttp_connection_free(r[0].conn);
	r[0].conn = NULL;
	pending = 1;
	release_refresh();
	run();
	CU_ASSERT_TRUE(r[1].done);
	CU_ASSERT_EQUAL(r[1].status, 200);
	/* the server may or may not have noticed the first client leave */
	CU_ASSERT_TRUE(backend_hits == 1 || backend_hits == 2);
	CU_ASSERT_STRING_EQUAL(store_upstream_cached(st, "sess-1", NULL)->access_token,
	    "upstream-access-2");
	reply_dispose(&r[0]);
	reply_dispose(&r[1]);

	/* the server shut (aborting the waiting request), then the guard
	 * freed while the refresh is still pending */
	put_upstream("sess-1", "upstream-access-1", clock_wall_s() - 1);
	start(&r[0], authz, NULL, NULL);
	spin_until(&refresh_calls, 2);
	server_free(srv);
	srv = NULL;
	guard_free(guard);
	guard = NULL;
	CU_ASSERT_EQUAL(refresh_cancels, 1);
	CU_ASSERT_PTR_NULL(held);
	refresh_hold = false;
	reply_dispose(&r[0]);
	pending = 0;
	free(authz);
	free(tok);
	teardown();
}

/* The decision function alone, without HTTP. */
static void
test_check_embedded(void)
{
	const struct tokencache_claims *c;
	char desc[160], *tok;

	setup();
	tok = good_token();
	CU_ASSERT_EQUAL(guard_check_embedded(guard, tok, strlen(tok), &c, desc, sizeof desc),
	    GUARD_ALLOW);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_STRING_EQUAL(c->tsid, "sess-1");
	CU_ASSERT_STRING_EQUAL(c->sub, "alice");
	CU_ASSERT_STRING_EQUAL(c->client_id, "client-1");
	free(tok);
	tok = sign_with(keyset_signing_key(ks), claims(ISS, AUD, -6, -3600, "mcp:tools"));
	CU_ASSERT_EQUAL(guard_check_embedded(guard, tok, strlen(tok), &c, desc, sizeof desc),
	    GUARD_INVALID_TOKEN);
	CU_ASSERT_STRING_EQUAL(desc, "the access token has expired");
	free(tok);
	/* within the leeway */
	tok = sign_with(keyset_signing_key(ks), claims(ISS, AUD, -3, -3600, "mcp:tools"));
	CU_ASSERT_EQUAL(guard_check_embedded(guard, tok, strlen(tok), &c, desc, sizeof desc),
	    GUARD_ALLOW);
	free(tok);
	tok = sign_with(keyset_signing_key(ks), claims(ISS, AUD, 300, 0, "openid"));
	CU_ASSERT_EQUAL(guard_check_embedded(guard, tok, strlen(tok), &c, desc, sizeof desc),
	    GUARD_INSUFFICIENT_SCOPE);
	free(tok);
	/* no jti: cannot be revoked, so not accepted */
	{
		json_object *cl = claims(ISS, AUD, 300, 0, "mcp:tools");

		json_object_object_del(cl, "jti");
		tok = sign_with(keyset_signing_key(ks), cl);
	}
	CU_ASSERT_EQUAL(guard_check_embedded(guard, tok, strlen(tok), &c, desc, sizeof desc),
	    GUARD_INVALID_TOKEN);
	free(tok);
	/* not token68 (checked on a cache miss only) and a NUL inside */
	CU_ASSERT_EQUAL(guard_check_embedded(guard, "ab\"c.d.e", 8, &c, desc, sizeof desc),
	    GUARD_INVALID_TOKEN);
	CU_ASSERT_PTR_NOT_NULL(strstr(desc, "Bearer"));
	CU_ASSERT_EQUAL(guard_check_embedded(guard, "ab\0c.d.e", 8, &c, desc, sizeof desc),
	    GUARD_INVALID_TOKEN);
	teardown();
}

int
main(void)
{
	static const struct unit_test tests[] = {
		{ "Authorization header parsing", test_parse_authorization },
		{ "WWW-Authenticate text", test_www_authenticate },
		{ "scope coverage", test_scopes_cover },
		{ "decision without HTTP", test_check_embedded },
		{ "401 without a token", test_no_token },
		{ "token attack battery", test_attack_battery },
		{ "two Authorization headers", test_two_authorization_headers },
		{ "revocation checked on cache hits", test_revoked_after_cache },
		{ "403 insufficient_scope", test_insufficient_scope },
		{ "upstream token injection", test_injection },
		{ "upstream refresh, single flight", test_refresh_single_flight },
		{ "upstream refresh failure", test_refresh_failure },
		{ "upstream refresh lost to another replica's",
		    test_refresh_lost_to_another_replica },
		{ "upstream refresh refused, another replica's found",
		    test_refresh_failed_but_another_replica_did },
		{ "clients and guard gone during a refresh", test_refresh_client_gone },
		{ NULL, NULL },
	};

	return unit_run("guard", tests);
}
