/*
 * MCP sessions across replicas: the owner of a session is sealed into the
 * session id the client sees. The backend's Mcp-Session-Id X becomes
 * "p1." + base64url(nonce | AES-256-GCM(owner "\n" X) | tag) under a key
 * derived from the replicas' shared peer secret, so any replica learns from
 * the id alone, without a lookup, which replica's backend holds the session
 * (its peer address) and which id that backend issued. Nothing else about
 * sessions is kept anywhere: a DELETE needs no record to remove, and an id
 * that does not open is a session nobody knows (404).
 */
#ifndef PROXY_SESSION_H
#define PROXY_SESSION_H

#include <stddef.h>

/* Longest sealed id we open (a header value a client chooses). */
#define SESSION_SEALED_MAX 2048

/* The sealing key, derived once, with its cipher contexts keyed once: a
 * seal or an open on the request path allocates nothing inside OpenSSL.
 * One event loop's: the contexts are reused, so not shared across threads. */
struct session_key;

/* The sealing key from the peer secret (HKDF, its own label). */
struct session_key *session_key_new(const void *secret, size_t len);
void session_key_free(struct session_key *key);
/* Seal owner and the backend's id into the id a client sees (new string).
 * A fresh random nonce each time: two seals of one session differ. */
char *session_seal(struct session_key *key, const char *owner, const char *id);
/* Open a client's id: 0 with *owner and *id (new strings), or -1 when it
 * was not sealed by us under this key (tampered, foreign, too long, or an
 * owner or id that could not be a header value). */
int session_open(struct session_key *key, const char *sealed, char **owner, char **id);

#endif
