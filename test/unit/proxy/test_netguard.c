/*
 * Netguard: the special-use address classifier as a pure function on
 * parsed addresses. Table-driven: every range with its first and last
 * address and the neighbours just outside, public examples, mapped,
 * compatible, NAT64, 6to4 and Teredo forms, and allow_loopback. No
 * traffic is sent anywhere.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "proxy/netguard.h"
#include "test/unit/unit.h"

struct case_ {
	const char *addr;
	bool special;          /* with allow_loopback = false */
	bool special_loopback; /* with allow_loopback = true */
	const char *why;       /* expected range name when special (without allow_loopback) */
};

/* R: refused either way; A: allowed either way; L: loopback (refused only without the switch). */
#define R(a, w) { a, true, true, w }
#define A(a) { a, false, false, NULL }
#define L(a) { a, true, false, "loopback" }

static const struct case_ cases[] = {
	/* 0.0.0.0/8 */
	R("0.0.0.0", "this-network"), R("0.255.255.255", "this-network"), A("1.0.0.0"),
	/* 10/8 */
	A("9.255.255.255"), R("10.0.0.0", "private-use"), R("10.255.255.255", "private-use"),
	A("11.0.0.0"),
	/* 100.64/10 */
	A("100.63.255.255"), R("100.64.0.0", "shared-address-space"),
	R("100.127.255.255", "shared-address-space"), A("100.128.0.0"),
	/* 127/8 */
	A("126.255.255.255"), L("127.0.0.0"), L("127.0.0.1"), L("127.255.255.255"), A("128.0.0.0"),
	/* 169.254/16 */
	A("169.253.255.255"), R("169.254.0.0", "link-local"), R("169.254.169.254", "link-local"),
	R("169.254.255.255", "link-local"), A("169.255.0.0"),
	/* 172.16/12 */
	A("172.15.255.255"), R("172.16.0.0", "private-use"), R("172.31.255.255", "private-use"),
	A("172.32.0.0"),
	/* 192.0.0/24, 192.0.2/24 */
	A("191.255.255.255"), R("192.0.0.0", "ietf-protocol-assignments"),
	R("192.0.0.255", "ietf-protocol-assignments"), A("192.0.1.0"), A("192.0.1.255"),
	R("192.0.2.0", "documentation"), R("192.0.2.255", "documentation"), A("192.0.3.0"),
	/* 192.88.99/24 */
	A("192.88.98.255"), R("192.88.99.0", "6to4-relay-anycast"),
	R("192.88.99.255", "6to4-relay-anycast"), A("192.88.100.0"),
	/* 192.168/16 */
	A("192.167.255.255"), R("192.168.0.0", "private-use"), R("192.168.255.255", "private-use"),
	A("192.169.0.0"),
	/* 198.18/15 */
	A("198.17.255.255"), R("198.18.0.0", "benchmarking"), R("198.19.255.255", "benchmarking"),
	A("198.20.0.0"),
	/* 198.51.100/24, 203.0.113/24 */
	A("198.51.99.255"), R("198.51.100.0", "documentation"), R("198.51.100.255", "documentation"),
	A("198.51.101.0"), A("203.0.112.255"), R("203.0.113.0", "documentation"),
	R("203.0.113.255", "documentation"), A("203.0.114.0"),
	/* 224/4, 240/4, broadcast */
	A("223.255.255.255"), R("224.0.0.0", "multicast"), R("239.255.255.255", "multicast"),
	R("240.0.0.0", "reserved"), R("255.255.255.254", "reserved"),
	R("255.255.255.255", "limited-broadcast"),
	/* public IPv4 */
	A("8.8.8.8"), A("1.1.1.1"), A("93.184.216.34"),
	/* inet_aton notations of loopback */
	L("127.1"), L("2130706433"), L("0x7f000001"), L("0177.0.0.1"), L("127.0.1"),
	R("0", "this-network"), R("167772161", "private-use"),
	/* IPv6 unspecified, loopback */
	R("::", "unspecified"), L("::1"), L("[::1]"), A("::2:0:0:1"),
	/* IPv4-mapped: judged by the embedded address */
	L("::ffff:127.0.0.1"), L("[::ffff:127.0.0.1]"), L("::ffff:7f00:1"), L("::ffff:127.255.255.255"),
	R("::ffff:10.0.0.1", "private-use"), R("::ffff:169.254.169.254", "link-local"),
	R("::ffff:0.0.0.0", "this-network"), R("::ffff:192.168.1.1", "private-use"),
	A("::ffff:8.8.8.8"), A("::ffff:1.1.1.1"),
	/* IPv4-compatible (::/96) */
	L("::127.0.0.1"), R("::10.1.2.3", "private-use"), R("::0.0.0.2", "this-network"),
	A("::8.8.8.8"),
	/* NAT64 */
	A("64:ff9a:ffff:ffff:ffff:ffff:ffff:ffff"), R("64:ff9b::", "nat64"), R("64:ff9b::7f00:1", "nat64"),
	R("64:ff9b::8.8.8.8", "nat64"), R("64:ff9b::ffff:ffff", "nat64"), A("64:ff9b::1:0:0:0"),
	R("64:ff9b:1::", "nat64-local-use"), R("64:ff9b:1:ffff:ffff:ffff:ffff:ffff", "nat64-local-use"),
	A("64:ff9b:2::"),
	/* discard 100::/64 */
	A("ff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), R("100::", "discard-only"),
	R("100::ffff:ffff:ffff:ffff", "discard-only"), A("100:0:0:1::"),
	/* Teredo 2001::/32, benchmarking 2001:2::/48, ORCHID, documentation */
	A("2000:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), R("2001::", "teredo"),
	R("2001:0:4136:e378:8000:63bf:3fff:fdd2", "teredo"), R("2001:0:ffff:ffff:ffff:ffff:ffff:ffff", "teredo"),
	A("2001:1::1"), R("2001:2::1", "benchmarking"), A("2001:2:1::"),
	A("2001:f:ffff:ffff:ffff:ffff:ffff:ffff"), R("2001:10::", "orchid"),
	R("2001:1f:ffff:ffff:ffff:ffff:ffff:ffff", "orchid"), R("2001:20::", "orchid-v2"),
	R("2001:2f:ffff:ffff:ffff:ffff:ffff:ffff", "orchid-v2"), A("2001:30::"),
	A("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff"), R("2001:db8::", "documentation"),
	R("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "documentation"), A("2001:db9::"),
	R("3fff::1", "documentation"), A("3fff:1000::"),
	/* 6to4 2002::/16 (2002:7f00:1:: embeds 127.0.0.1 and must not pass) */
	A("2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), R("2002::", "6to4"), R("2002:7f00:1::", "6to4"),
	R("2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "6to4"), A("2003::"),
	/* ULA fc00::/7 */
	A("fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), R("fc00::", "unique-local"), R("fd12:3456::1", "unique-local"),
	R("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "unique-local"), A("fe00::"),
	/* link-local fe80::/10, site-local fec0::/10 */
	A("fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), R("fe80::", "link-local"), R("fe80::1", "link-local"),
	R("febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "link-local"), R("fec0::", "site-local"),
	R("feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "site-local"),
	/* multicast ff00::/8 */
	R("ff00::", "multicast"), R("ff02::1", "multicast"), R("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "multicast"),
	/* public IPv6 */
	A("2606:4700::1111"), A("2001:4860:4860::8888"), A("2a00:1450::1"),
	{ NULL, false, false, NULL },
};

static void
test_table(void)
{
	struct sockaddr_storage ss;
	const struct case_ *c;
	const char *why;
	bool got;
	int n = 0;

	for (c = cases; c->addr != NULL; c++, n++) {
		if (netguard_parse(c->addr, &ss) != 0) {
			fprintf(stderr, "\n  cannot parse %s\n", c->addr);
			CU_FAIL("parse");
			continue;
		}
		why = "unset";
		got = netguard_is_special((struct sockaddr *)&ss, false, &why);
		if (got != c->special || (got && strcmp(why, c->why) != 0) || (!got && why != NULL)) {
			fprintf(stderr, "\n  %s: special=%d why=%s, want special=%d why=%s\n", c->addr,
			    got, why ? why : "(null)", c->special, c->why ? c->why : "(null)");
			CU_FAIL("classification without allow_loopback");
		}
		got = netguard_is_special((struct sockaddr *)&ss, true, &why);
		if (got != c->special_loopback) {
			fprintf(stderr, "\n  %s with allow_loopback: special=%d, want %d\n", c->addr, got,
			    c->special_loopback);
			CU_FAIL("classification with allow_loopback");
		}
		CU_ASSERT_EQUAL(netguard_is_loopback((struct sockaddr *)&ss),
		    c->special && !c->special_loopback);
	}
	CU_ASSERT(n >= 60);
	printf("\n  %d addresses classified\n", n);
}

static void
test_parse(void)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	const char *bad[] = { "", "localhost", "example.com", "1.2.3.4.5", "::1::2", "[127.0.0.1]",
		"[::1", "::1]", "256.0.0.1x", "fe80::1%eth0", NULL };

	CU_ASSERT_EQUAL(netguard_parse("127.1", &ss), 0);
	CU_ASSERT_EQUAL(ss.ss_family, AF_INET);
	CU_ASSERT_EQUAL(ntohl(sin->sin_addr.s_addr), 0x7f000001u);
	CU_ASSERT_EQUAL(netguard_parse("0x7f000001", &ss), 0);
	CU_ASSERT_EQUAL(ntohl(sin->sin_addr.s_addr), 0x7f000001u);
	CU_ASSERT_EQUAL(netguard_parse("2130706433", &ss), 0);
	CU_ASSERT_EQUAL(ntohl(sin->sin_addr.s_addr), 0x7f000001u);
	CU_ASSERT_EQUAL(netguard_parse("[::ffff:127.0.0.1]", &ss), 0);
	CU_ASSERT_EQUAL(ss.ss_family, AF_INET6);
	CU_ASSERT_EQUAL(sin6->sin6_addr.s6_addr[10], 0xff);
	CU_ASSERT_EQUAL(sin6->sin6_addr.s6_addr[12], 127);
	CU_ASSERT_EQUAL(sin6->sin6_addr.s6_addr[15], 1);
	for (int i = 0; bad[i] != NULL; i++) {
		if (netguard_parse(bad[i], &ss) != -1) {
			fprintf(stderr, "\n  parsed %s\n", bad[i]);
			CU_FAIL("parsed a non-address");
		}
	}
	CU_ASSERT_EQUAL(netguard_parse(NULL, &ss), -1);
}

static void
test_other_families(void)
{
	struct sockaddr_un sun;
	const char *why = NULL;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	CU_ASSERT_TRUE(netguard_is_special((struct sockaddr *)&sun, true, &why));
	CU_ASSERT_STRING_EQUAL(why, "unsupported-address-family");
	CU_ASSERT_TRUE(netguard_is_special(NULL, true, &why));
	CU_ASSERT_FALSE(netguard_is_loopback((struct sockaddr *)&sun));
}

static void
test_why_optional(void)
{
	struct sockaddr_storage ss;

	CU_ASSERT_EQUAL(netguard_parse("10.0.0.1", &ss), 0);
	CU_ASSERT_TRUE(netguard_is_special((struct sockaddr *)&ss, false, NULL));
	CU_ASSERT_EQUAL(netguard_parse("8.8.8.8", &ss), 0);
	CU_ASSERT_FALSE(netguard_is_special((struct sockaddr *)&ss, false, NULL));
}

int
main(void)
{
	static const struct unit_test tests[] = {
		{ "classification table", test_table },
		{ "parse notations", test_parse },
		{ "other address families", test_other_families },
		{ "why is optional", test_why_optional },
		{ NULL, NULL },
	};

	return unit_run("netguard", tests);
}
