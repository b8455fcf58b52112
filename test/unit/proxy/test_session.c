/*
 * Unit tests for proxy/session (sealed session ids) and proxy/peerauth
 * (peer request MACs, the skew window and the replay set, on the injected
 * clock).
 */
#include "proxy/peerauth.h"
#include "proxy/session.h"

#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "test/unit/unit.h"

static const char secret[] = "0123456789abcdef0123456789abcdef-peer";
#define N "00112233445566778899aabbccddeeff" /* a nonce */
#define N2 "00112233445566778899aabbccddeef0"

static void
test_seal_roundtrip(void)
{
	struct session_key *k = session_key_new(secret, sizeof secret - 1);
	char *a, *b, *owner, *id;

	a = session_seal(k, "127.0.0.7:9000", "3f1c0b9e-aaaa-bbbb");
	b = session_seal(k, "127.0.0.7:9000", "3f1c0b9e-aaaa-bbbb");
	CU_ASSERT_EQUAL(strncmp(a, "p1.", 3), 0);
	CU_ASSERT_STRING_NOT_EQUAL(a, b);   /* fresh nonce each time */
	CU_ASSERT_PTR_NULL(strchr(a, '=')); /* a header value: no padding, no '+', '/' */
	CU_ASSERT_PTR_NULL(strchr(a, '+'));
	CU_ASSERT_EQUAL_FATAL(session_open(k, a, &owner, &id), 0);
	CU_ASSERT_STRING_EQUAL(owner, "127.0.0.7:9000");
	CU_ASSERT_STRING_EQUAL(id, "3f1c0b9e-aaaa-bbbb");
	free(owner);
	free(id);
	CU_ASSERT_EQUAL(session_open(k, b, &owner, &id), 0);
	free(owner);
	free(id);
	free(a);
	free(b);
	session_key_free(k);
}

static void
test_seal_refuses(void)
{
	struct session_key *k = session_key_new(secret, sizeof secret - 1);
	struct session_key *other = session_key_new("another secret of at least 32 bytes!", 36);
	char *a, *owner = (char *)"x", *id = (char *)"x", *big;
	size_t n;

	a = session_seal(k, "[fd00::1]:9000", "abc");
	/* another key (another deployment) */
	CU_ASSERT_EQUAL(session_open(other, a, &owner, &id), -1);
	CU_ASSERT_PTR_NULL(owner);
	CU_ASSERT_PTR_NULL(id);
	/* one character changed anywhere */
	n = strlen(a);
	for (size_t i = 3; i < n; i += 7) {
		char save = a[i];

		a[i] = a[i] == 'A' ? 'B' : 'A';
		CU_ASSERT_EQUAL(session_open(k, a, &owner, &id), -1);
		a[i] = save;
	}
	/* the reused context opens again after all those refusals */
	CU_ASSERT_EQUAL_FATAL(session_open(k, a, &owner, &id), 0);
	CU_ASSERT_STRING_EQUAL(owner, "[fd00::1]:9000");
	CU_ASSERT_STRING_EQUAL(id, "abc");
	free(owner);
	free(id);
	/* truncated, wrong prefix, not base64url, a backend's own id, empty */
	a[n - 1] = '\0';
	CU_ASSERT_EQUAL(session_open(k, a, &owner, &id), -1);
	a[0] = 'q';
	CU_ASSERT_EQUAL(session_open(k, a, &owner, &id), -1);
	CU_ASSERT_EQUAL(session_open(k, "p1.****", &owner, &id), -1);
	CU_ASSERT_EQUAL(session_open(k, "3f1c0b9e-aaaa-bbbb", &owner, &id), -1);
	CU_ASSERT_EQUAL(session_open(k, "", &owner, &id), -1);
	CU_ASSERT_EQUAL(session_open(k, "p1.", &owner, &id), -1);
	free(a);
	/* an id longer than we open */
	big = malloc(SESSION_SEALED_MAX + 10);
	memset(big, 'A', SESSION_SEALED_MAX + 9);
	memcpy(big, "p1.", 3);
	big[SESSION_SEALED_MAX + 9] = '\0';
	CU_ASSERT_EQUAL(session_open(k, big, &owner, &id), -1);
	free(big);
	/* what would split a header line never comes out */
	a = session_seal(k, "127.0.0.7:9000", "abc\r\nX-Evil: 1");
	CU_ASSERT_EQUAL(session_open(k, a, &owner, &id), -1);
	free(a);
	a = session_seal(k, "", "abc");
	CU_ASSERT_EQUAL(session_open(k, a, &owner, &id), -1);
	free(a);
	session_key_free(k);
	session_key_free(other);
}

static void
test_peerauth_verify(void)
{
	struct peerauth *pa, *other;
	char mac[PEERAUTH_MAC_HEX + 1], nonce[PEERAUTH_NONCE_HEX + 1];

	clock_set_fake(1700000000, 1000);
	pa = peerauth_new(secret, sizeof secret - 1, 0);
	other = peerauth_new("another secret of at least 32 bytes!", 36, 0);
	peerauth_sign(pa, "POST", "/mcp", 1700000000, N, "p1.abc", mac);
	CU_ASSERT_EQUAL(strlen(mac), PEERAUTH_MAC_HEX);
	/* wrong secret, method, target, session, time */
	CU_ASSERT_EQUAL(peerauth_verify(other, "POST", "/mcp", "p1.abc", "1700000000", N, mac),
	    PEERAUTH_BAD_MAC);
	CU_ASSERT_EQUAL(peerauth_verify(pa, "GET", "/mcp", "p1.abc", "1700000000", N, mac),
	    PEERAUTH_BAD_MAC);
	CU_ASSERT_EQUAL(peerauth_verify(pa, "POST", "/mcp?x", "p1.abc", "1700000000", N, mac),
	    PEERAUTH_BAD_MAC);
	CU_ASSERT_EQUAL(peerauth_verify(pa, "POST", "/mcp", "p1.abd", "1700000000", N, mac),
	    PEERAUTH_BAD_MAC);
	CU_ASSERT_EQUAL(peerauth_verify(pa, "POST", "/mcp", NULL, "1700000000", N, mac),
	    PEERAUTH_BAD_MAC);
	CU_ASSERT_EQUAL(peerauth_verify(pa, "POST", "/mcp", "p1.abc", "1700000001", N, mac),
	    PEERAUTH_BAD_MAC);
	/* malformed or missing headers */
	CU_ASSERT_EQUAL(peerauth_verify(pa, "POST", "/mcp", "p1.abc", NULL, N, mac),
	    PEERAUTH_MISSING);
	CU_ASSERT_EQUAL(peerauth_verify(pa, "POST", "/mcp", "p1.abc", "1700000000", N, NULL),
	    PEERAUTH_MISSING);
	CU_ASSERT_EQUAL(peerauth_verify(pa, "POST", "/mcp", "p1.abc", "+1700000000", N, mac),
	    PEERAUTH_MISSING);
	CU_ASSERT_EQUAL(peerauth_verify(pa, "POST", "/mcp", "p1.abc", "01700000000", N, mac),
	    PEERAUTH_MISSING);
	CU_ASSERT_EQUAL(peerauth_verify(pa, "POST", "/mcp", "p1.abc", "1700000000", N, "abcd"),
	    PEERAUTH_MISSING);
	mac[0] = 'G';
	CU_ASSERT_EQUAL(peerauth_verify(pa, "POST", "/mcp", "p1.abc", "1700000000", N, mac),
	    PEERAUTH_MISSING);
	peerauth_sign(pa, "POST", "/mcp", 1700000000, N, "p1.abc", mac);
	/* the right one, once */
	CU_ASSERT_EQUAL(peerauth_verify(pa, "POST", "/mcp", "p1.abc", "1700000000", N, mac),
	    PEERAUTH_OK);
	CU_ASSERT_EQUAL(peerauth_verify(pa, "POST", "/mcp", "p1.abc", "1700000000", N, mac),
	    PEERAUTH_REPLAY);
	/* the same request again with another nonce is another request */
	peerauth_sign(pa, "POST", "/mcp", 1700000000, N2, "p1.abc", mac);
	CU_ASSERT_EQUAL(peerauth_verify(pa, "POST", "/mcp", "p1.abc", "1700000000", N, mac),
	    PEERAUTH_BAD_MAC);
	CU_ASSERT_EQUAL(peerauth_verify(pa, "POST", "/mcp", "p1.abc", "1700000000", N2, mac),
	    PEERAUTH_OK);
	CU_ASSERT_EQUAL(peerauth_verify(pa, "POST", "/mcp", "p1.abc", "1700000000", "00", mac),
	    PEERAUTH_MISSING);
	CU_ASSERT_EQUAL(peerauth_verify(pa, "POST", "/mcp", "p1.abc", "1700000000", NULL, mac),
	    PEERAUTH_MISSING);
	peerauth_nonce(nonce);
	CU_ASSERT_EQUAL(strlen(nonce), PEERAUTH_NONCE_HEX);
	{
		/* never the same twice: the process's random prefix, then a counter */
		char next[PEERAUTH_NONCE_HEX + 1];

		for (int i = 0; i < 300; i++) {
			peerauth_nonce(next);
			CU_ASSERT_EQUAL(strlen(next), PEERAUTH_NONCE_HEX);
			CU_ASSERT_NSTRING_EQUAL(next, nonce, 16);
			CU_ASSERT(strcmp(next, nonce) > 0);
			CU_ASSERT_EQUAL(strspn(next, "0123456789abcdef"), PEERAUTH_NONCE_HEX);
		}
		peerauth_nonce(nonce);
	}
	peerauth_sign(pa, "POST", "/mcp", 1700000000, nonce, "p1.abc", mac);
	CU_ASSERT_EQUAL(peerauth_verify(pa, "POST", "/mcp", "p1.abc", "1700000000", nonce, mac),
	    PEERAUTH_OK);
	/* the skew window: 30 s either way */
	peerauth_sign(pa, "GET", "/mcp", 1700000030, N, NULL, mac);
	CU_ASSERT_EQUAL(peerauth_verify(pa, "GET", "/mcp", NULL, "1700000030", N, mac),
	    PEERAUTH_OK);
	peerauth_sign(pa, "GET", "/mcp", 1700000031, N, NULL, mac);
	CU_ASSERT_EQUAL(peerauth_verify(pa, "GET", "/mcp", NULL, "1700000031", N, mac),
	    PEERAUTH_STALE);
	peerauth_sign(pa, "GET", "/mcp", 1699999969, N, NULL, mac);
	CU_ASSERT_EQUAL(peerauth_verify(pa, "GET", "/mcp", NULL, "1699999969", N, mac),
	    PEERAUTH_STALE);
	/* a replay after the window is stale, never accepted again */
	peerauth_sign(pa, "POST", "/mcp", 1700000000, N, "p1.abc", mac);
	clock_advance_fake_ms(31000);
	CU_ASSERT_EQUAL(peerauth_verify(pa, "POST", "/mcp", "p1.abc", "1700000000", N, mac),
	    PEERAUTH_STALE);
	CU_ASSERT_STRING_EQUAL(peerauth_result_name(PEERAUTH_BAD_MAC), "bad_mac");
	peerauth_free(pa);
	peerauth_free(other);
	clock_set_fake(-1, 0);
}

static void
test_peerauth_replay_bound(void)
{
	struct peerauth *pa;
	char mac[PEERAUTH_MAC_HEX + 1], target[32];

	clock_set_fake(1700000000, 1000);
	pa = peerauth_new(secret, sizeof secret - 1, 4);
	for (int i = 0; i < 4; i++) {
		snprintf(target, sizeof target, "/mcp/%d", i);
		peerauth_sign(pa, "POST", target, 1700000000, N, NULL, mac);
		CU_ASSERT_EQUAL(peerauth_verify(pa, "POST", target, NULL, "1700000000", N, mac),
		    PEERAUTH_OK);
	}
	CU_ASSERT_EQUAL(peerauth_replay_count(pa), 4);
	/* full: a fresh, valid request is refused rather than a MAC forgotten */
	peerauth_sign(pa, "POST", "/mcp/9", 1700000000, N, NULL, mac);
	CU_ASSERT_EQUAL(peerauth_verify(pa, "POST", "/mcp/9", NULL, "1700000000", N, mac),
	    PEERAUTH_FULL);
	/* the old ones are still known as seen */
	peerauth_sign(pa, "POST", "/mcp/0", 1700000000, N, NULL, mac);
	CU_ASSERT_EQUAL(peerauth_verify(pa, "POST", "/mcp/0", NULL, "1700000000", N, mac),
	    PEERAUTH_REPLAY);
	/* once their times are out of the window they are forgotten */
	clock_advance_fake_ms(31000);
	peerauth_sign(pa, "POST", "/mcp/9", 1700000031, N, NULL, mac);
	CU_ASSERT_EQUAL(peerauth_verify(pa, "POST", "/mcp/9", NULL, "1700000031", N, mac),
	    PEERAUTH_OK);
	CU_ASSERT_EQUAL(peerauth_replay_count(pa), 1);
	for (int i = 0; i < 3; i++) {
		snprintf(target, sizeof target, "/mcp/%d", i);
		peerauth_sign(pa, "POST", target, 1700000031, N, NULL, mac);
		CU_ASSERT_EQUAL(peerauth_verify(pa, "POST", target, NULL, "1700000031", N, mac),
		    PEERAUTH_OK);
		CU_ASSERT_EQUAL(peerauth_verify(pa, "POST", target, NULL, "1700000031", N, mac),
		    PEERAUTH_REPLAY);
	}
	peerauth_free(pa);
	clock_set_fake(-1, 0);
}

int
main(void)
{
	static const struct unit_test tests[] = {
		{ "seal_roundtrip", test_seal_roundtrip },
		{ "seal_refuses", test_seal_refuses },
		{ "peerauth_verify", test_peerauth_verify },
		{ "peerauth_replay_bound", test_peerauth_replay_bound },
		{ NULL, NULL },
	};

	return unit_run("session", tests);
}
