/*
 * The SSRF guard's address classifier: decides whether an address a fetch
 * is about to connect to is special-use (RFC 6890 and friends: private,
 * loopback, link-local, documentation, multicast, NAT64, 6to4, ...) and so
 * must not be reached with a URL a client supplied. Pure functions on
 * parsed addresses: it never resolves a name and never touches the network.
 */
#ifndef PROXY_NETGUARD_H
#define PROXY_NETGUARD_H

#include <stdbool.h>
#include <sys/socket.h>

/*
 * Return true when sa must be refused for an untrusted fetch; *why (if not
 * NULL) then names the range ("loopback", "private-use", ...). IPv4-mapped
 * and IPv4-compatible IPv6 addresses are judged by the IPv4 address they
 * embed. With allow_loopback (a development switch) 127/8, ::1 and their
 * mapped forms pass; every other special-use range is still refused. An
 * address family other than AF_INET/AF_INET6 is always refused.
 */
bool netguard_is_special(const struct sockaddr *sa, bool allow_loopback, const char **why);

/* True when sa is a loopback address: 127/8, ::1, or 127/8 mapped/compatible. */
bool netguard_is_loopback(const struct sockaddr *sa);

/*
 * Parse a numeric address into ss (port 0): IPv6 (brackets allowed), dotted
 * IPv4, and the classic inet_aton forms ("127.1", "2130706433",
 * "0x7f000001", "0177.0.0.1"). Returns 0, or -1 when text is not an address.
 */
int netguard_parse(const char *text, struct sockaddr_storage *ss);

#endif
