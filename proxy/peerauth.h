/*
 * How replicas trust each other's requests on the peer listener: the
 * forwarding replica signs each request with HMAC-SHA256 under a key
 * derived from the shared peer secret, over its method, target, a Unix
 * time, a random nonce and its MCP session id, in three headers
 * (Mcp-Peer-Time, Mcp-Peer-Nonce, Mcp-Peer-Auth). The nonce is what lets
 * two identical requests of one session within one second both pass the
 * replay check. The owner refuses a wrong MAC (constant-time compare),
 * a time more than PEERAUTH_SKEW_S away from its clock, and a MAC it has
 * accepted before (a bounded replay set that fails closed when full).
 */
#ifndef PROXY_PEERAUTH_H
#define PROXY_PEERAUTH_H

#include <stddef.h>
#include <stdint.h>

#define PEERAUTH_TIME_HEADER "Mcp-Peer-Time"
#define PEERAUTH_NONCE_HEADER "Mcp-Peer-Nonce"
#define PEERAUTH_AUTH_HEADER "Mcp-Peer-Auth"
#define PEERAUTH_NONCE_HEX 32 /* 16 bytes: 8 random per process, a counter */
#define PEERAUTH_MAC_HEX 64
#define PEERAUTH_SKEW_S 30
/* MACs remembered at most: a MAC lives up to 2 * PEERAUTH_SKEW_S, so this
 * holds a sustained ~17000 peer requests per second (32 MiB at most). */
#define PEERAUTH_REPLAY_MAX (1u << 20)

struct peerauth;

enum peerauth_result {
	PEERAUTH_OK,
	PEERAUTH_MISSING, /* no or malformed headers */
	PEERAUTH_BAD_MAC,
	PEERAUTH_STALE,  /* time off by more than PEERAUTH_SKEW_S */
	PEERAUTH_REPLAY, /* this MAC was accepted before */
	PEERAUTH_FULL,   /* the replay set is full: refused, not forgotten */
};

/* Keys from the peer secret; replay_max bounds the replay set (0: the
 * default PEERAUTH_REPLAY_MAX). */
struct peerauth *peerauth_new(const void *secret, size_t len, size_t replay_max);
void peerauth_free(struct peerauth *pa);
/* Sign a request at wall time t with a nonce (PEERAUTH_NONCE_HEX lower-case
 * hex digits; peerauth_nonce() draws one): out gets the MAC in hex,
 * NUL-terminated. sid NULL: no session. pa's MAC context is reused: one
 * event loop's, not shared across threads. */
void peerauth_sign(struct peerauth *pa, const char *method, const char *target, int64_t t,
    const char *nonce, const char *sid, char out[PEERAUTH_MAC_HEX + 1]);
/* A nonce never drawn before by this process (a random prefix drawn once,
 * then a counter) in hex, NUL-terminated. Event loop only. */
void peerauth_nonce(char out[PEERAUTH_NONCE_HEX + 1]);
/* Check a request's headers (NULL when absent) at the wall clock
 * (common/clock.h); remembers the MAC when it is accepted. */
enum peerauth_result peerauth_verify(struct peerauth *pa, const char *method, const char *target,
    const char *sid, const char *time_hdr, const char *nonce_hdr, const char *mac_hdr);
/* A metrics label for r ("ok", "bad_mac", ...). */
const char *peerauth_result_name(enum peerauth_result r);
/* MACs remembered now (tests). */
size_t peerauth_replay_count(const struct peerauth *pa);

#endif
