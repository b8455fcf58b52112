/*
 * Special-use address classification for the SSRF guard (see netguard.h).
 * The tables follow the IANA special-purpose registries (RFC 6890 and its
 * updates) plus ranges that reach a private network through a translator
 * (NAT64, 6to4, Teredo). The guard runs on the sockaddr libcurl is about to
 * connect to, so it must judge bits, never text: every notation of an
 * address has already become the same bytes by the time it gets here.
 */
#include "proxy/netguard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

struct netguard_v4 {
	uint32_t prefix;
	unsigned bits;
	const char *why;
};

struct netguard_v6 {
	uint8_t prefix[16];
	unsigned bits;
	const char *why;
};

#define V4(a, b, c, d) \
	(((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (uint32_t)(d))

static const struct netguard_v4 netguard_v4_table[] = {
	{ V4(0, 0, 0, 0), 8, "this-network" },
	{ V4(10, 0, 0, 0), 8, "private-use" },
	{ V4(100, 64, 0, 0), 10, "shared-address-space" },
	{ V4(127, 0, 0, 0), 8, "loopback" },
	{ V4(169, 254, 0, 0), 16, "link-local" },
	{ V4(172, 16, 0, 0), 12, "private-use" },
	{ V4(192, 0, 0, 0), 24, "ietf-protocol-assignments" },
	{ V4(192, 0, 2, 0), 24, "documentation" },
	{ V4(192, 88, 99, 0), 24, "6to4-relay-anycast" },
	{ V4(192, 168, 0, 0), 16, "private-use" },
	{ V4(198, 18, 0, 0), 15, "benchmarking" },
	{ V4(198, 51, 100, 0), 24, "documentation" },
	{ V4(203, 0, 113, 0), 24, "documentation" },
	{ V4(224, 0, 0, 0), 4, "multicast" },
	{ V4(255, 255, 255, 255), 32, "limited-broadcast" }, /* before 240/4, which holds it */
	{ V4(240, 0, 0, 0), 4, "reserved" },
};

static const struct netguard_v6 netguard_v6_table[] = {
	{ { 0x00, 0x64, 0xff, 0x9b }, 96, "nat64" },
	{ { 0x00, 0x64, 0xff, 0x9b, 0x00, 0x01 }, 48, "nat64-local-use" },
	{ { 0x01, 0x00 }, 64, "discard-only" },
	{ { 0x20, 0x01, 0x00, 0x00 }, 32, "teredo" },
	{ { 0x20, 0x01, 0x00, 0x02, 0x00, 0x00 }, 48, "benchmarking" },
	{ { 0x20, 0x01, 0x00, 0x10 }, 28, "orchid" },
	{ { 0x20, 0x01, 0x00, 0x20 }, 28, "orchid-v2" },
	{ { 0x20, 0x01, 0x0d, 0xb8 }, 32, "documentation" },
	{ { 0x20, 0x02 }, 16, "6to4" },
	{ { 0x3f, 0xff }, 20, "documentation" },
	{ { 0xfc }, 7, "unique-local" },
	{ { 0xfe, 0x80 }, 10, "link-local" },
	{ { 0xfe, 0xc0 }, 10, "site-local" },
	{ { 0xff }, 8, "multicast" },
};

/* Match the first bits of a against prefix. */
static int
netguard_prefix_match(const uint8_t *a, const uint8_t *prefix, unsigned bits)
{
	unsigned full = bits / 8, rest = bits % 8;
	uint8_t mask;

	if (memcmp(a, prefix, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	mask = (uint8_t)(0xff << (8 - rest));
	return (a[full] & mask) == (prefix[full] & mask);
}

/* Classify an IPv4 address in host byte order. */
static int
netguard_v4_special(uint32_t a, bool allow_loopback, const char **why)
{
	const struct netguard_v4 *r;
	uint32_t mask;
	size_t i;

	for (i = 0; i < sizeof netguard_v4_table / sizeof netguard_v4_table[0]; i++) {
		r = &netguard_v4_table[i];
		mask = r->bits == 0 ? 0 : 0xffffffffu << (32 - r->bits);
		if ((a & mask) != r->prefix)
			continue;
		if (allow_loopback && r->prefix == V4(127, 0, 0, 0))
			return 0;
		*why = r->why;
		return 1;
	}
	return 0;
}

static int
netguard_v6_special(const uint8_t *a, bool allow_loopback, const char **why)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	static const uint8_t zero[16] = { 0 };
	uint32_t v4;
	size_t i;

	if (memcmp(a, zero, 16) == 0) {
		*why = "unspecified";
		return 1;
	}
	if (memcmp(a, zero, 15) == 0 && a[15] == 1) {
		if (allow_loopback)
			return 0;
		*why = "loopback";
		return 1;
	}
	/* ::ffff:0:0/96 (mapped) and ::/96 (compatible) carry an IPv4 address. */
	if (memcmp(a, mapped, 12) == 0 || memcmp(a, zero, 12) == 0) {
		v4 = ((uint32_t)a[12] << 24) | ((uint32_t)a[13] << 16) | ((uint32_t)a[14] << 8) |
		    (uint32_t)a[15];
		return netguard_v4_special(v4, allow_loopback, why);
	}
	for (i = 0; i < sizeof netguard_v6_table / sizeof netguard_v6_table[0]; i++) {
		if (netguard_prefix_match(a, netguard_v6_table[i].prefix,
			netguard_v6_table[i].bits)) {
			*why = netguard_v6_table[i].why;
			return 1;
		}
	}
	return 0;
}

bool
netguard_is_special(const struct sockaddr *sa, bool allow_loopback, const char **why)
{
	const char *dummy;
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;

	if (why == NULL)
		why = &dummy;
	*why = NULL;
	if (sa == NULL) {
		*why = "no-address";
		return true;
	}
	switch (sa->sa_family) {
	case AF_INET:
		memcpy(&sin, sa, sizeof sin);
		return netguard_v4_special(ntohl(sin.sin_addr.s_addr), allow_loopback, why);
	case AF_INET6:
		memcpy(&sin6, sa, sizeof sin6);
		return netguard_v6_special(sin6.sin6_addr.s6_addr, allow_loopback, why);
	default:
		*why = "unsupported-address-family";
		return true;
	}
}

bool
netguard_is_loopback(const struct sockaddr *sa)
{
	const char *why = NULL;

	/* Loopback is the one range allow_loopback lifts. */
	return netguard_is_special(sa, false, &why) && why != NULL && strcmp(why, "loopback") == 0;
}

int
netguard_parse(const char *text, struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	char buf[INET6_ADDRSTRLEN + 2];
	size_t len;

	memset(ss, 0, sizeof *ss);
	if (text == NULL)
		return -1;
	len = strlen(text);
	if (len >= 2 && text[0] == '[' && text[len - 1] == ']') {
		if (len - 2 >= sizeof buf)
			return -1;
		memcpy(buf, text + 1, len - 2);
		buf[len - 2] = '\0';
		text = buf;
	}
	if (inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		return 0;
	}
	if (text == buf)
		return -1;
	if (inet_pton(AF_INET, text, &sin->sin_addr) == 1 || inet_aton(text, &sin->sin_addr) != 0) {
		sin->sin_family = AF_INET;
		return 0;
	}
	memset(ss, 0, sizeof *ss);
	return -1;
}
