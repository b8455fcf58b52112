/*
 * The Redis backend of the store (see store.h and store_backend.h): every
 * verb is one command or one Lua script (EVALSHA through redis.c, the
 * script sent again on NOSCRIPT), with the semantics of store_memory.c,
 * so that any number of replicas share logins, codes, refresh tokens,
 * revocations, upstream sessions and DCR clients. It never waits for
 * Redis on the hot path and never writes a token, a code or a secret in
 * clear to Redis or to a log.
 *
 * Keys (P = keyPrefix, H = SHA-256 hex; {…} is the hash tag):
 *
 *   P pd:{H(state)}     a pending login: sealed JSON            PX the login's TTL
 *   P code:{hash}       a code: wrapped, then its tombstone     PX the code's TTL
 *                       {"spent":true,"family":…} (KEEPTTL)
 *   P rt:{hash}         a refresh token: wrapped, tombstone     PX the token's TTL
 *   P fam:{family}      {"r":revoked,"j":[[jti,exp_s]…]}        PX the longest TTL given
 *   P up:{H(tsid)}      hash {v: sealed JSON, n: version}       PX the session's TTL
 *   P as:{H(len:client_id jti)}  an assertion id seen ("1")      PX exp + 60 s
 *   P {dl}:jti          zset jti → expiry ms (exp + 60 s)       PX the latest expiry
 *   P {dl}:gen          the deny-list's generation              PX the latest expiry
 *   P {cl}:c:<id>       a DCR client: JSON (client_codec)       PX 30 days, sliding
 *   P {cl}:lru          zset client id → last use (wall ms)     PX 30 days, sliding
 *   channel P revoked   {"p":prev gen,"g":gen,"j":[[jti,exp_ms]…]}
 *
 * Keys hold hashes: codes and refresh tokens come hashed from the callers;
 * the state and the tsid are hashed here (the tsid is inside our access
 * tokens: key names are listed by SCAN, MONITOR and keyspace events more
 * widely than values are read, and values holding upstream tokens are
 * sealed anyway). jtis and family ids are random ids that grant nothing
 * and are kept as they are. Every record is sealed (AES-256-GCM, the
 * key's name as associated data, seal.h): pending logins and upstream
 * tokens whole, codes and refresh tokens "wrapped" as
 * {"family":…,"client_id":…,"rec":sealed JSON}, the two fields the
 * scripts need in clear and the rest (subject, session id, scope) sealed.
 * The scripts treat sealed text as opaque. Every key has a TTL.
 *
 * Hash tags: a single-key verb is in its key's slot; the deny-list and its
 * generation share {dl}, the clients and their LRU index share {cl}. The
 * verbs that reach a family (redeem, issue, rotate, revoke) span the
 * slots of the token, the family, the session and {dl}, and find the
 * family inside the script: that is fine standalone and with Sentinel
 * (clusterMode is refused); cluster mode must put the family in the
 * token's tag (e.g. tokens that carry their family id) and declare every
 * key in KEYS.
 *
 * The hot path's checks are local: store_jti_revoked() reads a local set
 * of revoked jtis, filled by our own replies and by every replica's
 * revocations published on P revoked (a second connection subscribes). A
 * message whose previous generation is not ours, a subscriber that came
 * back, or the generation polled every second that differs from ours
 * reloads the whole deny-list (ZRANGEBYSCORE now +inf): a lost message
 * keeps a revoked token alive a second at most. The set is merged, never
 * replaced (what Redis lost, we still deny). store_upstream_cached() reads
 * a bounded local cache filled by the upstream verbs' replies.
 */
#include "auth/store/store_backend.h"

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "auth/client/client.h"
#include "auth/client/client_codec.h"
#include "auth/store/redis.h"
#include "auth/store/seal.h"
#include "auth/store/store_codec.h"
#include "common/clock.h"
#include "common/hash.h"
#include "common/xalloc.h"
#include "common/xevent.h"
#include "config/config.h"
#include "proxy/log.h"
#include "proxy/metrics.h"

#define RS_POLL_MS 1000
#define RS_LEEWAY_S 60 /* a deny-listed jti outlives its token by the verifier's leeway */
/* The local deny-list mirrors Redis's, which the scripts bound to
 * STORE_MAX_JTIS: twice that leaves room for skewed expiries. */
#define RS_LOCAL_JTIS_MAX (2 * STORE_MAX_JTIS)
#define RS_UPSTREAM_CACHE_MAX 10000
#define RS_UPSTREAM_CACHE_UNKNOWN_MS 60000 /* a session whose expiry is unknown */
#define RS_MAX_ARGS 16

enum rs_script {
	RS_REDEEM,
	RS_ISSUE,
	RS_ROTATE,
	RS_RREVOKE,
	RS_FREVOKE,
	RS_JREVOKE,
	RS_UP_PUT,
	RS_UP_CAS,
	RS_UP_LEASE,
	RS_CL_PUT,
	RS_CL_GET,
	RS_RATE,
	RS_RESYNC,
	RS_POLL,
	RS_N_SCRIPTS
};

/* Every script starts with this: ARGV[1] the prefix, ARGV[2] now (wall
 * ms), ARGV[3] the deny-list's bound; %d is STORE_FAMILY_MAX_JTIS. */
static const char rs_prelude[] =
    "local P, now, max_jtis = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "local function extend(k, ttl)\n"
    "  local t = redis.call('PTTL', k)\n"
    "  if t == -1 or (t >= 0 and t < ttl) then redis.call('PEXPIRE', k, ttl) end\n"
    "end\n"
    /* Deny-list jtis (flat jti, exp_s): what is not expired; the bound is
     * never passed (full). Publishes what it added, with the generation. */
    "local function deny(list)\n"
    "  local dl, gk = P .. '{dl}:jti', P .. '{dl}:gen'\n"
    "  redis.call('ZREMRANGEBYSCORE', dl, '-inf', now)\n"
    "  local n = redis.call('ZCARD', dl)\n"
    "  local out, full = {}, false\n"
    "  for i = 1, #list, 2 do\n"
    "    local jti, exp_s = list[i], tonumber(list[i + 1])\n"
    "    local exp = (exp_s + 60) * 1000\n"
    "    if jti ~= '' and exp_s * 1000 > now then\n"
    "      local s = redis.call('ZSCORE', dl, jti)\n"
    "      if s then\n"
    "        if tonumber(s) < exp then redis.call('ZADD', dl, exp, jti) end\n"
    "        out[#out + 1] = {jti, exp}\n"
    "      elseif n >= max_jtis then\n"
    "        full = true\n"
    "      else\n"
    "        redis.call('ZADD', dl, exp, jti)\n"
    "        n = n + 1\n"
    "        out[#out + 1] = {jti, exp}\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  if #out > 0 then\n"
    "    local g = tonumber(redis.call('GET', gk) or '0')\n"
    "    local ng = g + 1\n"
    "    if ng < now then ng = now end\n"
    "    redis.call('SET', gk, string.format('%%d', ng))\n"
    "    local top = redis.call('ZRANGE', dl, -1, -1, 'WITHSCORES')\n"
    "    local ttl = tonumber(top[2]) - now\n"
    "    redis.call('PEXPIRE', dl, ttl)\n"
    "    redis.call('PEXPIRE', gk, ttl)\n"
    "    redis.call('PUBLISH', P .. 'revoked', cjson.encode({p = string.format('%%d', g),\n"
    "      g = string.format('%%d', ng), j = out}))\n"
    "  end\n"
    "  return full, out\n"
    "end\n"
    "local function fam_get(f)\n"
    "  local k = P .. 'fam:{' .. f .. '}'\n"
    "  local v = redis.call('GET', k)\n"
    "  if v then return k, cjson.decode(v) end\n"
    "  return k, {r = false, j = {}}\n"
    "end\n"
    "local function fam_set(k, f, ttl)\n"
    "  local t = redis.call('PTTL', k)\n"
    "  if t > ttl then ttl = t end\n"
    "  if ttl < 1 then ttl = 1 end\n"
    "  redis.call('SET', k, cjson.encode(f), 'PX', ttl)\n"
    "end\n"
    "local function fam_revoke(fam, ttl)\n"
    "  local k, f = fam_get(fam)\n"
    "  f.r = true\n"
    "  fam_set(k, f, ttl)\n"
    "  local list = {}\n"
    "  for _, e in ipairs(f.j or {}) do\n"
    "    list[#list + 1] = e[1]\n"
    "    list[#list + 1] = e[2]\n"
    "  end\n"
    "  return deny(list)\n"
    "end\n"
    /* fam, jti, jti_exp, refresh key or '', its record, session key or '', ttl */
    "local function issue(fam, jti, jexp, rk, rv, uk, ttl)\n"
    "  local k, f = fam_get(fam)\n"
    "  if f.r then\n"
    "    local full, out = deny({jti, jexp})\n"
    "    if full then return 'FULL', out end\n"
    "    return 'REVOKED', out\n"
    "  end\n"
    "  local j = f.j or {}\n"
    "  while #j >= %d do table.remove(j, 1) end\n"
    "  if jti ~= '' then j[#j + 1] = {jti, tonumber(jexp)} end\n"
    "  f.j = j\n"
    "  fam_set(k, f, ttl)\n"
    "  if rk ~= '' then redis.call('SET', rk, rv, 'PX', math.max(ttl, 1)) end\n"
    "  if uk ~= '' then extend(uk, ttl) end\n"
    "  return 'OK', {}\n"
    "end\n"
    /* {status, extra, jti, exp_ms, …}: the jtis deny-listed, for our own set */
    "local function reply(status, extra, full, out)\n"
    "  if full then status = 'FULL' end\n"
    "  local t = {status, extra}\n"
    "  for _, e in ipairs(out or {}) do\n"
    "    t[#t + 1] = e[1]\n"
    "    t[#t + 1] = e[2]\n"
    "  end\n"
    "  return t\n"
    "end\n"
    "local function spent(v)\n"
    "  local r = cjson.decode(v)\n"
    "  if r.spent then return r, true end\n"
    "  return r, false\n"
    "end\n"
    "local function tombstone(k, fam)\n"
    "  redis.call('SET', k, cjson.encode({spent = true, family = fam}), 'KEEPTTL')\n"
    "end\n";

static const char *const rs_scripts[RS_N_SCRIPTS] = {
	/* KEYS[1] the code; ARGV[4] the family's TTL */
	[RS_REDEEM] = "local v = redis.call('GET', KEYS[1])\n"
		      "if not v then return {'NOT_FOUND', ''} end\n"
		      "local r, s = spent(v)\n"
		      "if s then\n"
		      "  if type(r.family) ~= 'string' then return {'NOT_FOUND', ''} end\n"
		      "  return reply('SPENT', r.family, fam_revoke(r.family, tonumber(ARGV[4])))\n"
		      "end\n"
		      "tombstone(KEYS[1], r.family)\n"
		      "return {'OK', v}\n",
	/* ARGV[4..10]: the issue */
	[RS_ISSUE] = "local s, out = issue(ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9],\n"
		     "  tonumber(ARGV[10]))\n"
		     "return reply(s, '', false, out)\n",
	/* KEYS[1] the old token; ARGV[4..10]: the issue */
	[RS_ROTATE] = "local v = redis.call('GET', KEYS[1])\n"
		      "if not v then return {'NOT_FOUND', ''} end\n"
		      "local ttl = tonumber(ARGV[10])\n"
		      "local r, s = spent(v)\n"
		      "if s then\n"
		      "  if type(r.family) ~= 'string' then return {'NOT_FOUND', ''} end\n"
		      "  return reply('SPENT', r.family, fam_revoke(r.family, ttl))\n"
		      "end\n"
		      "local _, f = fam_get(r.family)\n"
		      "if f.r then return {'REVOKED', ''} end\n"
		      "tombstone(KEYS[1], r.family)\n"
		      "local st, out = issue(ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], "
		      "ttl)\n"
		      "if st ~= 'OK' then redis.call('SET', KEYS[1], v, 'KEEPTTL') end\n"
		      "return reply(st, '', false, out)\n",
	/* KEYS[1] the token; ARGV[4] the client, ARGV[5] the family's TTL */
	[RS_RREVOKE] = "local v = redis.call('GET', KEYS[1])\n"
		       "if not v then return {'NOT_FOUND', ''} end\n"
		       "local r, s = spent(v)\n"
		       "if s then return {'NOT_FOUND', ''} end\n"
		       "if r.client_id ~= ARGV[4] then return {'FOREIGN', ''} end\n"
		       "tombstone(KEYS[1], r.family)\n"
		       "return reply('OK', '', fam_revoke(r.family, tonumber(ARGV[5])))\n",
	/* ARGV[4] the family, ARGV[5] its TTL */
	[RS_FREVOKE] = "return reply('OK', '', fam_revoke(ARGV[4], tonumber(ARGV[5])))\n",
	/* ARGV[4] the jti, ARGV[5] its exp (wall s) */
	[RS_JREVOKE] = "return reply('OK', '', deny({ARGV[4], ARGV[5]}))\n",
	/* KEYS[1] the session; ARGV[4] sealed, ARGV[5] TTL */
	[RS_UP_PUT] = "local n = redis.call('HINCRBY', KEYS[1], 'n', 1)\n"
		      "redis.call('HSET', KEYS[1], 'v', ARGV[4])\n"
		      "redis.call('HDEL', KEYS[1], 'l')\n"
		      "redis.call('PEXPIRE', KEYS[1], ARGV[5])\n"
		      "return {'OK', n}\n",
	/* KEYS[1] the session; ARGV[4] the version, ARGV[5] sealed, ARGV[6] TTL */
	[RS_UP_CAS] =
	    "local cur = redis.call('HMGET', KEYS[1], 'v', 'n')\n"
	    "if not cur[1] then return {'NOT_FOUND'} end\n"
	    "if cur[2] ~= ARGV[4] then return {'CONFLICT', cur[1], tonumber(cur[2])} end\n"
	    "local n = redis.call('HINCRBY', KEYS[1], 'n', 1)\n"
	    "redis.call('HSET', KEYS[1], 'v', ARGV[5])\n"
	    "redis.call('HDEL', KEYS[1], 'l')\n"
	    "extend(KEYS[1], tonumber(ARGV[6]))\n"
	    "return {'OK', n}\n",
	/* KEYS[1] the session; ARGV[4] the version, ARGV[5] the lease ms. The
	 * lease ('l': until when, wall ms) lives in the session's hash: it
	 * goes with it, and a compare-and-swap or a put ends it. */
	[RS_UP_LEASE] =
	    "local cur = redis.call('HMGET', KEYS[1], 'v', 'n', 'l')\n"
	    "if not cur[1] then return {'NOT_FOUND'} end\n"
	    "if cur[2] ~= ARGV[4] then return {'CONFLICT', cur[1], tonumber(cur[2])} end\n"
	    "if cur[3] and tonumber(cur[3]) > now then return {'BUSY'} end\n"
	    "redis.call('HSET', KEYS[1], 'l', tostring(now + tonumber(ARGV[5])))\n"
	    "return {'OK'}\n",
	/* KEYS[1] the client, KEYS[2] the LRU index; ARGV[4] its id, ARGV[5]
	 * its JSON, ARGV[6] the cap, ARGV[7] grace ms, ARGV[8] idle ms */
	[RS_CL_PUT] = "local lru, id = KEYS[2], ARGV[4]\n"
		      "local max, grace, idle = tonumber(ARGV[6]), tonumber(ARGV[7]), "
		      "tonumber(ARGV[8])\n"
		      "redis.call('ZREMRANGEBYSCORE', lru, '-inf', now - idle)\n"
		      "local evicted = 0\n"
		      "if not redis.call('ZSCORE', lru, id) then\n"
		      "  while redis.call('ZCARD', lru) >= max do\n"
		      "    local o = redis.call('ZRANGE', lru, 0, 0, 'WITHSCORES')\n"
		      "    if #o == 0 or tonumber(o[2]) >= now - grace then\n"
		      "      return {'FULL', evicted, redis.call('ZCARD', lru)}\n"
		      "    end\n"
		      "    redis.call('DEL', P .. '{cl}:c:' .. o[1])\n"
		      "    redis.call('ZREM', lru, o[1])\n"
		      "    evicted = evicted + 1\n"
		      "  end\n"
		      "end\n"
		      "redis.call('SET', KEYS[1], ARGV[5], 'PX', idle)\n"
		      "redis.call('ZADD', lru, now, id)\n"
		      "redis.call('PEXPIRE', lru, idle)\n"
		      "return {'OK', evicted, redis.call('ZCARD', lru)}\n",
	/* KEYS[1] the client, KEYS[2] the LRU index; ARGV[4] its id, ARGV[5] idle ms */
	[RS_CL_GET] = "local v = redis.call('GET', KEYS[1])\n"
		      "if not v then\n"
		      "  redis.call('ZREM', KEYS[2], ARGV[4])\n"
		      "  return {'NOT_FOUND', '', redis.call('ZCARD', KEYS[2])}\n"
		      "end\n"
		      "redis.call('PEXPIRE', KEYS[1], ARGV[5])\n"
		      "redis.call('ZADD', KEYS[2], now, ARGV[4])\n"
		      "redis.call('PEXPIRE', KEYS[2], ARGV[5])\n"
		      "return {'OK', v, redis.call('ZCARD', KEYS[2])}\n",
	/* KEYS[1] the bucket {t tokens, ts ms}; ARGV[4] tokens a second, ARGV[5] burst */
	[RS_RATE] = "local rate, burst = tonumber(ARGV[4]), tonumber(ARGV[5])\n"
		    "local b = redis.call('HMGET', KEYS[1], 't', 'ts')\n"
		    "local t, ts = tonumber(b[1]), tonumber(b[2])\n"
		    "if not t or not ts then t, ts = burst, now end\n"
		    "if now > ts then\n"
		    "  t = math.min(burst, t + (now - ts) * rate / 1000)\n"
		    "  ts = now\n"
		    "end\n"
		    "local ttl = math.ceil(burst / rate * 1000) + 1000\n"
		    "if t >= 1 then\n"
		    "  redis.call('HSET', KEYS[1], 't', tostring(t - 1), 'ts', tostring(ts))\n"
		    "  redis.call('PEXPIRE', KEYS[1], ttl)\n"
		    "  return {'OK', 0}\n"
		    "end\n"
		    "return {'FULL', math.max(1, math.ceil((1 - t) / rate))}\n",
	/* KEYS[1] the deny-list, KEYS[2] its generation */
	/* (parenthesised: clang's -Wstring-concatenation takes two literals in
	 * an array initializer for a missing comma) */
	[RS_RESYNC] =
	    ("return {redis.call('GET', KEYS[2]) or '0',\n"
	     "  redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf', 'WITHSCORES')}\n"),
	/* KEYS[1] the generation, KEYS[2] the LRU index */
	[RS_POLL] = "return {redis.call('GET', KEYS[1]) or '0', redis.call('ZCARD', KEYS[2])}\n",
};

static const char *const rs_verb_names[] = {
	[STORE_V_PENDING_PUT] = "pending_put",
	[STORE_V_PENDING_TAKE] = "pending_take",
	[STORE_V_CODE_PUT] = "code_put",
	[STORE_V_CODE_REDEEM] = "code_redeem",
	[STORE_V_ISSUE] = "issue",
	[STORE_V_REFRESH_GET] = "refresh_get",
	[STORE_V_REFRESH_ROTATE] = "refresh_rotate",
	[STORE_V_REFRESH_REVOKE] = "refresh_revoke",
	[STORE_V_FAMILY_REVOKE] = "family_revoke",
	[STORE_V_JTI_REVOKE] = "jti_revoke",
	[STORE_V_UPSTREAM_PUT] = "upstream_put",
	[STORE_V_UPSTREAM_GET] = "upstream_get",
	[STORE_V_UPSTREAM_CAS] = "upstream_cas",
	[STORE_V_UPSTREAM_LEASE] = "upstream_lease",
	[STORE_V_ASSERTION_SEEN] = "assertion_seen",
	[STORE_V_CLIENT_PUT] = "client_put",
	[STORE_V_CLIENT_GET] = "client_get",
	[STORE_V_RATE_TAKE] = "rate_take",
};

/* A revoked jti in the local set. */
struct rs_jti {
	char *jti;
	uint64_t hash;
	int64_t exp_ms; /* wall */
	struct rs_jti *next;
};

/* A session's upstream tokens in the local cache. */
struct rs_up {
	char *tsid;
	uint64_t hash;
	struct store_upstream *u;
	uint64_t version;
	int64_t expires_ms; /* monotonic */
	struct rs_up *next;
	TAILQ_ENTRY(rs_up) order;
};

struct rstore;

/* One verb in flight. */
struct rs_op {
	struct rstore *rs;
	struct store_op *op;
	struct redis_cmd *cmd;
	char *key; /* the record's key (the sealing's associated data) */
	TAILQ_ENTRY(rs_op) entry;
};

struct rstore {
	struct store_backend be; /* first: the front's handle */
	struct redis *r;         /* commands and scripts */
	struct redis *sub;       /* subscribed to P revoked */
	struct seal *seal;
	SSL_CTX *tls, *sentinel_tls;
	char *prefix;
	char *k_dl, *k_gen, *k_lru, *channel;
	int script[RS_N_SCRIPTS];
	TAILQ_HEAD(, rs_op) ops;

	/* the local deny-list */
	struct rs_jti **jtis;
	size_t n_jti_buckets, n_jtis;
	bool jtis_overflow; /* fail closed: every jti is revoked until a resync */
	uint64_t gen;       /* of what the set holds */
	bool have_gen;
	bool sub_up;
	struct event *poll;
	struct redis_cmd *poll_cmd, *resync_cmd;

	/* the upstream cache */
	struct rs_up **ups;
	size_t n_up_buckets, n_ups;
	TAILQ_HEAD(, rs_up) up_order;

	size_t n_clients; /* as the last reply said */
	struct metric *m_errors;
};

/* --- small helpers --- */

static int64_t
rs_now_ms(void)
{
	return clock_wall_s() * 1000;
}

static void
rs_sha256_hex(const char *s, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int n = 0;

	if (EVP_Digest(s, len, md, &n, EVP_sha256(), NULL) != 1)
		abort();
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* P kind {H(id)} */
static char *
rs_key_hashed(const struct rstore *rs, const char *kind, const char *id)
{
	char h[65];

	rs_sha256_hex(id, strlen(id), h);
	return xasprintf("%s%s:{%s}", rs->prefix, kind, h);
}

static char *
rs_key(const struct rstore *rs, const char *kind, const char *id)
{
	return xasprintf("%s%s:{%s}", rs->prefix, kind, id);
}

/* Arguments of one command: copies where they are made here (sealed
 * values are wiped when freed). */
struct rs_args {
	int n;
	const char *v[RS_MAX_ARGS];
	size_t len[RS_MAX_ARGS];
	char *own[RS_MAX_ARGS];
};

static void
rs_arg(struct rs_args *a, const char *s)
{
	if (a->n == RS_MAX_ARGS)
		abort();
	a->v[a->n] = s != NULL ? s : "";
	a->len[a->n] = strlen(a->v[a->n]);
	a->n++;
}

/* Takes s. */
static void
rs_arg_own(struct rs_args *a, char *s)
{
	a->own[a->n] = s;
	rs_arg(a, s);
}

static void
rs_arg_i64(struct rs_args *a, int64_t v)
{
	rs_arg_own(a, xasprintf("%" PRId64, v));
}

static void
rs_args_dispose(struct rs_args *a)
{
	for (int i = 0; i < a->n; i++)
		xfree_secret(a->own[i]);
	memset(a, 0, sizeof *a);
}

/* The arguments every script starts with. */
static void
rs_args_script(struct rs_args *a, const struct rstore *rs)
{
	rs_arg(a, rs->prefix);
	rs_arg_i64(a, rs_now_ms());
	rs_arg_i64(a, STORE_MAX_JTIS);
}

static int64_t
rs_ttl(int64_t ttl_ms)
{
	return ttl_ms < 1 ? 1 : ttl_ms;
}

static void
rs_count_error(struct rstore *rs, struct store_op *op, const char *kind)
{
	metrics_add(rs->m_errors, 1, rs_verb_names[op->verb], kind);
}

/* --- the local deny-list --- */

static void
rs_jtis_grow(struct rstore *rs)
{
	size_t nb = rs->n_jti_buckets * 2;
	struct rs_jti **b = xcalloc(nb, sizeof *b), *e, *next;

	for (size_t i = 0; i < rs->n_jti_buckets; i++) {
		for (e = rs->jtis[i]; e != NULL; e = next) {
			next = e->next;
			e->next = b[e->hash & (nb - 1)];
			b[e->hash & (nb - 1)] = e;
		}
	}
	free(rs->jtis);
	rs->jtis = b;
	rs->n_jti_buckets = nb;
}

static struct rs_jti **
rs_jti_find(struct rstore *rs, const char *jti, uint64_t h)
{
	struct rs_jti **pp = &rs->jtis[h & (rs->n_jti_buckets - 1)];

	while (*pp != NULL && ((*pp)->hash != h || strcmp((*pp)->jti, jti) != 0))
		pp = &(*pp)->next;
	return pp;
}

static void
rs_jti_remove(struct rstore *rs, struct rs_jti **pp)
{
	struct rs_jti *e = *pp;

	*pp = e->next;
	free(e->jti);
	free(e);
	rs->n_jtis--;
}

/* Deny jti until exp_ms (wall). A set that would pass its bound fails
 * closed (every jti revoked) until expiries make room and a resync has
 * filled it again: an unexpired revocation is never forgotten. */
static void
rs_jti_add(struct rstore *rs, const char *jti, int64_t exp_ms)
{
	uint64_t h = hash_str(jti);
	struct rs_jti **pp = rs_jti_find(rs, jti, h), *e;

	if (*pp != NULL) {
		if ((*pp)->exp_ms < exp_ms)
			(*pp)->exp_ms = exp_ms;
		return;
	}
	if (exp_ms <= rs_now_ms())
		return;
	if (rs->n_jtis >= RS_LOCAL_JTIS_MAX) {
		if (!rs->jtis_overflow)
			log_error("store: the local deny-list is full: every access token is "
				  "refused "
				  "until revocations expire",
			    LOG_I("max", RS_LOCAL_JTIS_MAX));
		rs->jtis_overflow = true;
		rs->have_gen = false; /* reload once there is room */
		return;
	}
	if (rs->n_jtis + 1 > rs->n_jti_buckets)
		rs_jtis_grow(rs);
	e = xcalloc(1, sizeof *e);
	e->jti = xstrdup(jti);
	e->hash = h;
	e->exp_ms = exp_ms;
	pp = &rs->jtis[h & (rs->n_jti_buckets - 1)];
	e->next = *pp;
	*pp = e;
	rs->n_jtis++;
}

static size_t
rs_jtis_sweep(struct rstore *rs)
{
	int64_t now = rs_now_ms();
	size_t n = 0;

	for (size_t i = 0; i < rs->n_jti_buckets; i++) {
		struct rs_jti **pp = &rs->jtis[i];

		while (*pp != NULL) {
			if ((*pp)->exp_ms <= now) {
				rs_jti_remove(rs, pp);
				n++;
			} else {
				pp = &(*pp)->next;
			}
		}
	}
	return n;
}

static bool
rs_jti_revoked(struct store_backend *be, const char *jti)
{
	struct rstore *rs = (struct rstore *)be;
	uint64_t h;
	struct rs_jti **pp;

	if (rs->jtis_overflow)
		return true;
	h = hash_str(jti);
	pp = rs_jti_find(rs, jti, h);
	if (*pp == NULL)
		return false;
	if ((*pp)->exp_ms > rs_now_ms())
		return true;
	rs_jti_remove(rs, pp);
	return false;
}

/* The pairs (jti, exp_ms) a revoking script returns after its first two
 * elements: into our set at once, before any message comes back. */
static void
rs_jtis_from_reply(struct rstore *rs, const redisReply *rep, size_t first)
{
	for (size_t i = first; i + 1 < rep->elements; i += 2) {
		const redisReply *j = rep->element[i], *e = rep->element[i + 1];

		if (j->type == REDIS_REPLY_STRING && e->type == REDIS_REPLY_INTEGER)
			rs_jti_add(rs, j->str, e->integer);
	}
}

/* --- the upstream cache --- */

static struct rs_up **
rs_up_find(struct rstore *rs, const char *tsid, uint64_t h)
{
	struct rs_up **pp = &rs->ups[h & (rs->n_up_buckets - 1)];

	while (*pp != NULL && ((*pp)->hash != h || strcmp((*pp)->tsid, tsid) != 0))
		pp = &(*pp)->next;
	return pp;
}

static void
rs_up_remove(struct rstore *rs, struct rs_up **pp)
{
	struct rs_up *e = *pp;

	*pp = e->next;
	TAILQ_REMOVE(&rs->up_order, e, order);
	store_upstream_free(e->u);
	free(e->tsid);
	free(e);
	rs->n_ups--;
}

/* Cache a copy of u at version until its access token expires (or a
 * minute, when unknown); the oldest entry goes to make room. */
static void
rs_up_cache(struct rstore *rs, const char *tsid, const struct store_upstream *u, uint64_t version)
{
	uint64_t h = hash_str(tsid);
	struct rs_up **pp = rs_up_find(rs, tsid, h), *e;
	int64_t left_ms;

	if (*pp != NULL)
		rs_up_remove(rs, pp);
	left_ms = u->expires_at > 0 ? (u->expires_at - clock_wall_s()) * 1000
				    : RS_UPSTREAM_CACHE_UNKNOWN_MS;
	if (left_ms <= 0)
		return;
	if (rs->n_ups >= RS_UPSTREAM_CACHE_MAX) {
		struct rs_up *old = TAILQ_FIRST(&rs->up_order);

		rs_up_remove(rs, rs_up_find(rs, old->tsid, old->hash));
	}
	e = xcalloc(1, sizeof *e);
	e->tsid = xstrdup(tsid);
	e->hash = h;
	e->u = store_upstream_dup(u);
	e->version = version;
	e->expires_ms = clock_mono_ms() + left_ms;
	pp = &rs->ups[h & (rs->n_up_buckets - 1)];
	e->next = *pp;
	*pp = e;
	TAILQ_INSERT_TAIL(&rs->up_order, e, order);
	rs->n_ups++;
}

static const struct store_upstream *
rs_upstream_cached(struct store_backend *be, const char *tsid, uint64_t *version)
{
	struct rstore *rs = (struct rstore *)be;
	struct rs_up **pp = rs_up_find(rs, tsid, hash_str(tsid));

	if (*pp == NULL)
		return NULL;
	if ((*pp)->expires_ms <= clock_mono_ms()) {
		rs_up_remove(rs, pp);
		return NULL;
	}
	if (version != NULL)
		*version = (*pp)->version;
	return (*pp)->u;
}

static size_t
rs_ups_sweep(struct rstore *rs)
{
	struct rs_up *e, *next;
	int64_t now = clock_mono_ms();
	size_t n = 0;

	for (e = TAILQ_FIRST(&rs->up_order); e != NULL; e = next) {
		next = TAILQ_NEXT(e, order);
		if (e->expires_ms <= now) {
			rs_up_remove(rs, rs_up_find(rs, e->tsid, e->hash));
			n++;
		}
	}
	return n;
}

/* --- replies --- */

static enum store_status
rs_status(const char *s)
{
	static const struct {
		const char *name;
		enum store_status st;
	} map[] = {
		{ "OK", STORE_OK },
		{ "NOT_FOUND", STORE_NOT_FOUND },
		{ "SPENT", STORE_SPENT },
		{ "REVOKED", STORE_REVOKED },
		{ "FOREIGN", STORE_FOREIGN },
		{ "CONFLICT", STORE_CONFLICT },
		{ "FULL", STORE_FULL },
		{ "BUSY", STORE_BUSY },
	};

	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
		if (strcmp(s, map[i].name) == 0)
			return map[i].st;
	}
	return STORE_UNAVAILABLE;
}

/* A script's reply: an array whose first element is a status. */
static bool
rs_is_status_array(const redisReply *rep, size_t min)
{
	return rep->type == REDIS_REPLY_ARRAY && rep->elements >= min &&
	    rep->element[0]->type == REDIS_REPLY_STRING;
}

/* A sealed value opened: its plain text (wipe it), or NULL. */
static char *
rs_open(struct rstore *rs, struct store_op *op, const char *sealed, const char *aad, size_t *len)
{
	char *plain = NULL;

	if (seal_open(rs->seal, sealed, aad, &plain, len) != 0) {
		rs_count_error(rs, op, "unreadable");
		log_warn("store: a sealed record does not open (another key, or altered); taken "
			 "as absent",
		    LOG_S("verb", rs_verb_names[op->verb]));
		return NULL;
	}
	return plain;
}

static void
rs_unreadable(struct rstore *rs, struct store_op *op)
{
	rs_count_error(rs, op, "unreadable");
	log_warn("store: a record in Redis is not readable; taken as absent",
	    LOG_S("verb", rs_verb_names[op->verb]));
	op->res.status = STORE_NOT_FOUND;
}

/* res.upstream from a sealed value (NOT_FOUND when it does not open). */
static void
rs_upstream_from(struct rstore *rs, struct rs_op *ro, const char *sealed, uint64_t version)
{
	struct store_op *op = ro->op;
	size_t len;
	char *plain = rs_open(rs, op, sealed, ro->key, &len);

	if (plain != NULL)
		op->res.upstream = store_upstream_decode(plain, len);
	xfree_secret(plain);
	if (op->res.upstream == NULL) {
		if (plain != NULL)
			rs_unreadable(rs, op);
		op->res.status = STORE_NOT_FOUND;
		return;
	}
	op->res.version = version;
	rs_up_cache(rs, op->key, op->res.upstream, version);
}

/* A code's or refresh token's value: what the scripts read in clear (the
 * family, the client) around the sealed record,
 * {"family":…,"client_id":…,"rec":sealed JSON}. Takes json (wiped). */
static char *
rs_wrap(struct rstore *rs, const char *key, const char *family, const char *client_id, char *json)
{
	json_object *o = json_object_new_object();
	char *sealed = seal_seal(rs->seal, json, strlen(json), key), *out;

	xfree_secret(json);
	json_object_object_add(o, "family", json_object_new_string(family != NULL ? family : ""));
	json_object_object_add(o, "client_id",
	    json_object_new_string(client_id != NULL ? client_id : ""));
	json_object_object_add(o, "rec", json_object_new_string(sealed));
	out = xstrdup(json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	free(sealed);
	return out;
}

/* The record inside a wrapped value (its JSON, to wipe), or NULL. */
static char *
rs_unwrap(struct rstore *rs, struct store_op *op, const char *key, const char *text, size_t *len)
{
	json_object *o = json_tokener_parse(text), *v;
	char *plain = NULL;

	if (o != NULL && json_object_is_type(o, json_type_object) &&
	    json_object_object_get_ex(o, "rec", &v) && json_object_is_type(v, json_type_string))
		plain = rs_open(rs, op, json_object_get_string(v), key, len);
	json_object_put(o);
	return plain;
}

/* A tombstone {"spent":true,"family":…}: true, and its family (a copy). */
static bool
rs_tombstone(const char *text, size_t len, char **family)
{
	json_object *o = json_tokener_parse(text), *v;
	bool spent = false;

	(void)len;
	*family = NULL;
	if (o != NULL && json_object_is_type(o, json_type_object) &&
	    json_object_object_get_ex(o, "spent", &v) && json_object_get_boolean(v)) {
		spent = true;
		if (json_object_object_get_ex(o, "family", &v) &&
		    json_object_is_type(v, json_type_string))
			*family = xstrdup(json_object_get_string(v));
	}
	json_object_put(o);
	return spent;
}

/* Fill op->res from the reply of its verb. */
static void
rs_parse(struct rstore *rs, struct rs_op *ro, const redisReply *rep)
{
	struct store_op *op = ro->op;
	const redisReply *e1 = rep->element != NULL && rep->elements > 1 ? rep->element[1] : NULL;
	char err[128];
	size_t len;
	char *plain;

	switch (op->verb) {
	case STORE_V_PENDING_PUT:
	case STORE_V_CODE_PUT:
		op->res.status = rep->type == REDIS_REPLY_STATUS ? STORE_OK : STORE_UNAVAILABLE;
		break;
	case STORE_V_PENDING_TAKE:
		if (rep->type == REDIS_REPLY_NIL) {
			op->res.status = STORE_NOT_FOUND;
			break;
		}
		if (rep->type != REDIS_REPLY_STRING)
			goto bad;
		if ((plain = rs_open(rs, op, rep->str, ro->key, &len)) == NULL) {
			op->res.status = STORE_NOT_FOUND;
			break;
		}
		op->res.pending = store_pending_decode(plain, len);
		xfree_secret(plain);
		if (op->res.pending == NULL)
			rs_unreadable(rs, op);
		else
			op->res.status = STORE_OK;
		break;
	case STORE_V_CODE_REDEEM:
		if (!rs_is_status_array(rep, 2) || e1->type != REDIS_REPLY_STRING)
			goto bad;
		op->res.status = rs_status(rep->element[0]->str);
		if (op->res.status == STORE_OK) {
			if ((plain = rs_unwrap(rs, op, ro->key, e1->str, &len)) != NULL)
				op->res.code = store_code_decode(plain, len);
			xfree_secret(plain);
			if (op->res.code == NULL)
				rs_unreadable(rs, op);
		} else if (e1->len > 0) {
			op->res.family = xstrdup(e1->str);
		}
		rs_jtis_from_reply(rs, rep, 2);
		break;
	case STORE_V_ISSUE:
	case STORE_V_REFRESH_ROTATE:
	case STORE_V_REFRESH_REVOKE:
	case STORE_V_FAMILY_REVOKE:
	case STORE_V_JTI_REVOKE:
		if (!rs_is_status_array(rep, 2) || e1->type != REDIS_REPLY_STRING)
			goto bad;
		op->res.status = rs_status(rep->element[0]->str);
		if (e1->len > 0)
			op->res.family = xstrdup(e1->str);
		rs_jtis_from_reply(rs, rep, 2);
		break;
	case STORE_V_REFRESH_GET:
		if (rep->type == REDIS_REPLY_NIL) {
			op->res.status = STORE_NOT_FOUND;
			break;
		}
		if (rep->type != REDIS_REPLY_STRING)
			goto bad;
		if (rs_tombstone(rep->str, rep->len, &op->res.family)) {
			op->res.status = op->res.family != NULL ? STORE_SPENT : STORE_NOT_FOUND;
			break;
		}
		if ((plain = rs_unwrap(rs, op, ro->key, rep->str, &len)) != NULL)
			op->res.refresh = store_refresh_decode(plain, len);
		xfree_secret(plain);
		if (op->res.refresh == NULL)
			rs_unreadable(rs, op);
		else
			op->res.status = STORE_OK;
		break;
	case STORE_V_UPSTREAM_PUT:
		if (!rs_is_status_array(rep, 2) || e1->type != REDIS_REPLY_INTEGER)
			goto bad;
		op->res.status = STORE_OK;
		op->res.version = (uint64_t)e1->integer;
		if (op->upstream != NULL)
			rs_up_cache(rs, op->key, op->upstream, op->res.version);
		break;
	case STORE_V_UPSTREAM_GET:
		/* HMGET v n */
		if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2)
			goto bad;
		if (rep->element[0]->type != REDIS_REPLY_STRING ||
		    rep->element[1]->type != REDIS_REPLY_STRING) {
			op->res.status = STORE_NOT_FOUND;
			break;
		}
		op->res.status = STORE_OK;
		rs_upstream_from(rs, ro, rep->element[0]->str,
		    strtoull(rep->element[1]->str, NULL, 10));
		break;
	case STORE_V_UPSTREAM_CAS:
		if (!rs_is_status_array(rep, 1))
			goto bad;
		op->res.status = rs_status(rep->element[0]->str);
		if (op->res.status == STORE_OK && e1 != NULL && e1->type == REDIS_REPLY_INTEGER) {
			op->res.version = (uint64_t)e1->integer;
			rs_up_cache(rs, op->key, op->upstream, op->res.version);
		} else if (op->res.status == STORE_CONFLICT && rep->elements == 3 &&
		    e1->type == REDIS_REPLY_STRING &&
		    rep->element[2]->type == REDIS_REPLY_INTEGER) {
			rs_upstream_from(rs, ro, e1->str, (uint64_t)rep->element[2]->integer);
		} else if (op->res.status != STORE_NOT_FOUND) {
			goto bad;
		}
		break;
	case STORE_V_UPSTREAM_LEASE:
		if (!rs_is_status_array(rep, 1))
			goto bad;
		op->res.status = rs_status(rep->element[0]->str);
		if (op->res.status == STORE_CONFLICT && rep->elements == 3 &&
		    e1->type == REDIS_REPLY_STRING && rep->element[2]->type == REDIS_REPLY_INTEGER)
			rs_upstream_from(rs, ro, e1->str, (uint64_t)rep->element[2]->integer);
		else if (op->res.status != STORE_OK && op->res.status != STORE_BUSY &&
		    op->res.status != STORE_NOT_FOUND)
			goto bad;
		break;
	case STORE_V_ASSERTION_SEEN:
		op->res.status = rep->type == REDIS_REPLY_NIL ? STORE_REPLAYED
		    : rep->type == REDIS_REPLY_STATUS         ? STORE_OK
							      : STORE_UNAVAILABLE;
		break;
	case STORE_V_CLIENT_PUT:
		if (!rs_is_status_array(rep, 3) || e1->type != REDIS_REPLY_INTEGER ||
		    rep->element[2]->type != REDIS_REPLY_INTEGER)
			goto bad;
		op->res.status = rs_status(rep->element[0]->str);
		op->res.evicted = (unsigned)e1->integer;
		rs->n_clients = (size_t)rep->element[2]->integer;
		break;
	case STORE_V_CLIENT_GET:
		if (!rs_is_status_array(rep, 3) || e1->type != REDIS_REPLY_STRING ||
		    rep->element[2]->type != REDIS_REPLY_INTEGER)
			goto bad;
		op->res.status = rs_status(rep->element[0]->str);
		rs->n_clients = (size_t)rep->element[2]->integer;
		if (op->res.status != STORE_OK)
			break;
		if ((op->res.client = client_from_json(e1->str, e1->len, err, sizeof err)) ==
		    NULL) {
			rs_unreadable(rs, op);
			break;
		}
		op->res.client->last_used_ms = clock_mono_ms();
		break;
	case STORE_V_RATE_TAKE:
		if (!rs_is_status_array(rep, 2) || e1->type != REDIS_REPLY_INTEGER)
			goto bad;
		op->res.status = rs_status(rep->element[0]->str);
		op->res.retry_after_s = (int)e1->integer;
		break;
	}
	return;
bad:
	rs_count_error(rs, op, "reply");
	log_warn("store: an unexpected reply from Redis", LOG_S("verb", rs_verb_names[op->verb]),
	    LOG_I("type", rep->type));
	store_result_dispose(&op->res);
	op->res.status = STORE_UNAVAILABLE;
}

static void
rs_op_done(struct rs_op *ro)
{
	struct store_op *op = ro->op;

	TAILQ_REMOVE(&ro->rs->ops, ro, entry);
	op->be_data = NULL;
	free(ro->key);
	free(ro);
	store_op_finish(op);
}

static void
rs_reply(const redisReply *rep, const char *error, void *arg)
{
	struct rs_op *ro = arg;
	struct rstore *rs = ro->rs;
	struct store_op *op = ro->op;

	ro->cmd = NULL;
	if (rep == NULL) {
		/* Down (redis.c said why, once): fail at once, 503. */
		(void)error;
		rs_count_error(rs, op, "unavailable");
		op->res.status = STORE_UNAVAILABLE;
	} else if (rep->type == REDIS_REPLY_ERROR) {
		/* Redis's own text names the failing step, never our arguments. */
		bool oom = strncmp(rep->str, "OOM", 3) == 0;

		rs_count_error(rs, op, oom ? "full" : "error");
		log_warn("store: Redis refused a verb", LOG_S("verb", rs_verb_names[op->verb]),
		    LOG_S("error", rep->len > 160 ? "(long error text)" : rep->str));
		op->res.status = oom ? STORE_FULL : STORE_UNAVAILABLE;
	} else {
		rs_parse(rs, ro, rep);
	}
	rs_op_done(ro);
}

/* --- the verbs --- */

/* Seal text (a record's JSON, wiped here) under key: a new string. */
static char *
rs_seal(struct rstore *rs, char *text, const char *key)
{
	char *sealed = seal_seal(rs->seal, text, strlen(text), key);

	xfree_secret(text);
	return sealed;
}

static void
rs_issue_args(struct rstore *rs, struct rs_args *a, const struct store_issue *is)
{
	rs_arg(a, is->family);
	rs_arg(a, is->jti);
	rs_arg_i64(a, is->jti_exp);
	if (is->refresh_hash != NULL && is->refresh != NULL) {
		char *rk = rs_key(rs, "rt", is->refresh_hash);

		rs_arg_own(a, rk);
		rs_arg_own(a,
		    rs_wrap(rs, rk, is->refresh->family, is->refresh->client_id,
			store_refresh_encode(is->refresh)));
	} else {
		rs_arg(a, "");
		rs_arg(a, "");
	}
	if (is->tsid != NULL)
		rs_arg_own(a, rs_key_hashed(rs, "up", is->tsid));
	else
		rs_arg(a, "");
	rs_arg_i64(a, is->ttl_ms);
}

static void
rs_start(struct store_backend *be, struct store_op *op)
{
	struct rstore *rs = (struct rstore *)be;
	struct rs_op *ro;
	struct rs_args a = { 0 };
	int script = -1, nkeys = 0;
	char *id;

	if (op->verb == STORE_V_RATE_TAKE && op->rate <= 0) {
		op->res.status = STORE_OK; /* no limit: nothing to ask */
		store_op_finish(op);
		return;
	}
	ro = xcalloc(1, sizeof *ro);
	ro->rs = rs;
	ro->op = op;
	op->be_data = ro;
	TAILQ_INSERT_TAIL(&rs->ops, ro, entry);
	switch (op->verb) {
	case STORE_V_PENDING_PUT:
		ro->key = rs_key_hashed(rs, "pd", op->key);
		rs_arg(&a, "SET");
		rs_arg(&a, ro->key);
		rs_arg_own(&a, rs_seal(rs, store_pending_encode(op->pending), ro->key));
		rs_arg(&a, "PX");
		rs_arg_i64(&a, rs_ttl(op->ttl_ms));
		break;
	case STORE_V_PENDING_TAKE:
		ro->key = rs_key_hashed(rs, "pd", op->key);
		rs_arg(&a, "GETDEL");
		rs_arg(&a, ro->key);
		break;
	case STORE_V_CODE_PUT:
		ro->key = rs_key(rs, "code", op->key);
		rs_arg(&a, "SET");
		rs_arg(&a, ro->key);
		rs_arg_own(&a,
		    rs_wrap(rs, ro->key, op->code->family, op->code->client_id,
			store_code_encode(op->code)));
		rs_arg(&a, "PX");
		rs_arg_i64(&a, rs_ttl(op->ttl_ms));
		break;
	case STORE_V_CODE_REDEEM:
		ro->key = rs_key(rs, "code", op->key);
		script = RS_REDEEM;
		nkeys = 1;
		rs_arg(&a, ro->key);
		rs_args_script(&a, rs);
		rs_arg_i64(&a, op->ttl_ms);
		break;
	case STORE_V_ISSUE:
		script = RS_ISSUE;
		rs_args_script(&a, rs);
		rs_issue_args(rs, &a, &op->issue);
		break;
	case STORE_V_REFRESH_GET:
		ro->key = rs_key(rs, "rt", op->key);
		rs_arg(&a, "GET");
		rs_arg(&a, ro->key);
		break;
	case STORE_V_REFRESH_ROTATE:
		ro->key = rs_key(rs, "rt", op->key);
		script = RS_ROTATE;
		nkeys = 1;
		rs_arg(&a, ro->key);
		rs_args_script(&a, rs);
		rs_issue_args(rs, &a, &op->issue);
		break;
	case STORE_V_REFRESH_REVOKE:
		ro->key = rs_key(rs, "rt", op->key);
		script = RS_RREVOKE;
		nkeys = 1;
		rs_arg(&a, ro->key);
		rs_args_script(&a, rs);
		rs_arg(&a, op->key2);
		rs_arg_i64(&a, op->ttl_ms);
		break;
	case STORE_V_FAMILY_REVOKE:
		script = RS_FREVOKE;
		rs_args_script(&a, rs);
		rs_arg(&a, op->key);
		rs_arg_i64(&a, op->ttl_ms);
		break;
	case STORE_V_JTI_REVOKE:
		script = RS_JREVOKE;
		rs_args_script(&a, rs);
		rs_arg(&a, op->key);
		rs_arg_i64(&a, op->exp_wall_s);
		break;
	case STORE_V_UPSTREAM_PUT:
		ro->key = rs_key_hashed(rs, "up", op->key);
		script = RS_UP_PUT;
		nkeys = 1;
		rs_arg(&a, ro->key);
		rs_args_script(&a, rs);
		rs_arg_own(&a, rs_seal(rs, store_upstream_encode(op->upstream), ro->key));
		rs_arg_i64(&a, op->ttl_ms);
		break;
	case STORE_V_UPSTREAM_GET:
		ro->key = rs_key_hashed(rs, "up", op->key);
		rs_arg(&a, "HMGET");
		rs_arg(&a, ro->key);
		rs_arg(&a, "v");
		rs_arg(&a, "n");
		break;
	case STORE_V_UPSTREAM_CAS:
		ro->key = rs_key_hashed(rs, "up", op->key);
		script = RS_UP_CAS;
		nkeys = 1;
		rs_arg(&a, ro->key);
		rs_args_script(&a, rs);
		rs_arg_own(&a, xasprintf("%" PRIu64, op->version));
		rs_arg_own(&a, rs_seal(rs, store_upstream_encode(op->upstream), ro->key));
		rs_arg_i64(&a, op->ttl_ms);
		break;
	case STORE_V_UPSTREAM_LEASE:
		ro->key = rs_key_hashed(rs, "up", op->key);
		script = RS_UP_LEASE;
		nkeys = 1;
		rs_arg(&a, ro->key);
		rs_args_script(&a, rs);
		rs_arg_own(&a, xasprintf("%" PRIu64, op->version));
		rs_arg_i64(&a, op->ttl_ms);
		break;
	case STORE_V_ASSERTION_SEEN: {
		int64_t left_s = op->exp_wall_s - clock_wall_s();

		/* Length-prefixed: no client_id and jti pair can spell another's. */
		id = xasprintf("%zu:%s%s", strlen(op->key2), op->key2, op->key);
		ro->key = rs_key_hashed(rs, "as", id);
		free(id);
		rs_arg(&a, "SET");
		rs_arg(&a, ro->key);
		rs_arg(&a, "1");
		rs_arg(&a, "NX");
		rs_arg(&a, "PX");
		rs_arg_i64(&a, ((left_s > 0 ? left_s : 0) + RS_LEEWAY_S) * 1000);
		break;
	}
	case STORE_V_CLIENT_PUT:
		ro->key = xasprintf("%s{cl}:c:%s", rs->prefix, op->client->client_id);
		script = RS_CL_PUT;
		nkeys = 2;
		rs_arg(&a, ro->key);
		rs_arg(&a, rs->k_lru);
		rs_args_script(&a, rs);
		rs_arg(&a, op->client->client_id);
		rs_arg_own(&a, client_to_json(op->client));
		rs_arg_i64(&a, (int64_t)op->max);
		rs_arg_i64(&a, op->grace_ms);
		rs_arg_i64(&a, STORE_CLIENT_IDLE_MS);
		break;
	case STORE_V_CLIENT_GET:
		ro->key = xasprintf("%s{cl}:c:%s", rs->prefix, op->key);
		script = RS_CL_GET;
		nkeys = 2;
		rs_arg(&a, ro->key);
		rs_arg(&a, rs->k_lru);
		rs_args_script(&a, rs);
		rs_arg(&a, op->key);
		rs_arg_i64(&a, STORE_CLIENT_IDLE_MS);
		break;
	case STORE_V_RATE_TAKE:
		ro->key = rs_key(rs, "rl", op->key);
		script = RS_RATE;
		nkeys = 1;
		rs_arg(&a, ro->key);
		rs_args_script(&a, rs);
		rs_arg_own(&a, xasprintf("%.6f", op->rate));
		rs_arg_own(&a, xasprintf("%.6f", op->burst));
		break;
	}
	if (script >= 0)
		ro->cmd = redis_eval(rs->r, rs->script[script], nkeys, a.n, a.v, a.len, rs_reply,
		    ro);
	else
		ro->cmd = redis_command(rs->r, a.n, a.v, a.len, rs_reply, ro);
	rs_args_dispose(&a);
}

/* --- keeping the deny-list current --- */

static void rs_resync(struct rstore *rs);

static void
rs_resync_reply(const redisReply *rep, const char *error, void *arg)
{
	struct rstore *rs = arg;
	const redisReply *list;

	(void)error;
	rs->resync_cmd = NULL;
	if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
	    rep->element[0]->type != REDIS_REPLY_STRING ||
	    rep->element[1]->type != REDIS_REPLY_ARRAY)
		return; /* the next poll tries again */
	list = rep->element[1];
	if (rs->jtis_overflow) {
		/* Room again? Start over from what Redis holds. */
		rs_jtis_sweep(rs);
		if (rs->n_jtis + list->elements / 2 >= RS_LOCAL_JTIS_MAX)
			return;
		rs->jtis_overflow = false;
		log_info("store: the local deny-list has room again",
		    LOG_I("revoked", (int64_t)rs->n_jtis));
	}
	for (size_t i = 0; i + 1 < list->elements; i += 2) {
		if (list->element[i]->type == REDIS_REPLY_STRING &&
		    list->element[i + 1]->type == REDIS_REPLY_STRING)
			rs_jti_add(rs, list->element[i]->str,
			    strtoll(list->element[i + 1]->str, NULL, 10));
	}
	if (!rs->jtis_overflow) {
		rs->gen = strtoull(rep->element[0]->str, NULL, 10);
		rs->have_gen = true;
	}
}

/* Reload the whole deny-list (one in flight at most). */
static void
rs_resync(struct rstore *rs)
{
	struct rs_args a = { 0 };

	if (rs->resync_cmd != NULL)
		return;
	rs_arg(&a, rs->k_dl);
	rs_arg(&a, rs->k_gen);
	rs_args_script(&a, rs);
	rs->resync_cmd = redis_eval(rs->r, rs->script[RS_RESYNC], 2, a.n, a.v, a.len,
	    rs_resync_reply, rs);
	rs_args_dispose(&a);
}

static void
rs_poll_reply(const redisReply *rep, const char *error, void *arg)
{
	struct rstore *rs = arg;

	(void)error;
	rs->poll_cmd = NULL;
	if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
	    rep->element[0]->type != REDIS_REPLY_STRING ||
	    rep->element[1]->type != REDIS_REPLY_INTEGER)
		return;
	rs->n_clients = (size_t)rep->element[1]->integer;
	if (!rs->have_gen || strtoull(rep->element[0]->str, NULL, 10) != rs->gen)
		rs_resync(rs);
}

/* Every second: a subscriber that came back, or a generation that moved
 * without us hearing of it, reloads the deny-list. */
static void
rs_poll_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rstore *rs = arg;
	struct rs_args a = { 0 };
	bool up = redis_up(rs->sub);

	(void)fd;
	(void)what;
	if (up && !rs->sub_up)
		rs->have_gen = false;
	rs->sub_up = up;
	if (rs->poll_cmd != NULL || !redis_up(rs->r))
		return;
	if (rs->jtis_overflow)
		rs_jtis_sweep(rs);
	rs_arg(&a, rs->k_gen);
	rs_arg(&a, rs->k_lru);
	rs_args_script(&a, rs);
	rs->poll_cmd = redis_eval(rs->r, rs->script[RS_POLL], 2, a.n, a.v, a.len, rs_poll_reply,
	    rs);
	rs_args_dispose(&a);
}

/* A revocation published by a replica (us included):
 * {"p": previous generation, "g": generation, "j": [[jti, exp_ms], …]}. */
static void
rs_message(const char *channel, const char *payload, size_t len, void *arg)
{
	struct rstore *rs = arg;
	struct json_tokener *tok = json_tokener_new_ex(4);
	json_object *o, *p, *g, *j;
	uint64_t prev, gen;

	(void)channel;
	if (tok == NULL)
		abort();
	o = json_tokener_parse_ex(tok, payload, (int)len);
	if (o == NULL || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, "p", &p) || !json_object_object_get_ex(o, "g", &g) ||
	    !json_object_object_get_ex(o, "j", &j) || !json_object_is_type(j, json_type_array)) {
		rs->have_gen = false; /* something we cannot read: reload */
		rs_resync(rs);
		goto out;
	}
	for (size_t i = 0; i < json_object_array_length(j); i++) {
		json_object *e = json_object_array_get_idx(j, i);

		if (json_object_is_type(e, json_type_array) && json_object_array_length(e) == 2)
			rs_jti_add(rs, json_object_get_string(json_object_array_get_idx(e, 0)),
			    json_object_get_int64(json_object_array_get_idx(e, 1)));
	}
	prev = strtoull(json_object_get_string(p), NULL, 10);
	gen = strtoull(json_object_get_string(g), NULL, 10);
	if (rs->have_gen && prev == rs->gen)
		rs->gen = gen;
	else if (!rs->have_gen || gen > rs->gen)
		rs_resync(rs); /* we missed some */
out:
	json_object_put(o);
	json_tokener_free(tok);
}

/* --- the rest of the backend --- */

static size_t
rs_sweep(struct store_backend *be)
{
	struct rstore *rs = (struct rstore *)be;

	/* Redis expires its own keys; these are the local copies. */
	return rs_jtis_sweep(rs) + rs_ups_sweep(rs);
}

static size_t
rs_client_count(struct store_backend *be)
{
	return ((struct rstore *)be)->n_clients;
}

static void
rs_health(struct store_backend *be, struct store_health *out)
{
	struct rstore *rs = (struct rstore *)be;

	out->type = "redis";
	out->reachable = redis_up(rs->r);
	out->detail = out->reachable ? NULL : redis_error(rs->r);
	if (out->detail != NULL && out->detail[0] == '\0')
		out->detail = "connecting";
}

static void
rs_free(struct store_backend *be)
{
	struct rstore *rs = (struct rstore *)be;
	struct rs_op *ro;

	while ((ro = TAILQ_FIRST(&rs->ops)) != NULL) {
		redis_cancel(ro->cmd);
		ro->op->res.status = STORE_UNAVAILABLE;
		rs_op_done(ro);
	}
	redis_cancel(rs->poll_cmd);
	redis_cancel(rs->resync_cmd);
	if (rs->poll != NULL)
		event_free(rs->poll);
	redis_free(rs->sub);
	redis_free(rs->r);
	for (size_t i = 0; i < rs->n_jti_buckets; i++) {
		while (rs->jtis[i] != NULL)
			rs_jti_remove(rs, &rs->jtis[i]);
	}
	free(rs->jtis);
	while (!TAILQ_EMPTY(&rs->up_order)) {
		struct rs_up *e = TAILQ_FIRST(&rs->up_order);

		rs_up_remove(rs, rs_up_find(rs, e->tsid, e->hash));
	}
	free(rs->ups);
	seal_free(rs->seal);
	SSL_CTX_free(rs->tls);
	SSL_CTX_free(rs->sentinel_tls);
	free(rs->prefix);
	free(rs->k_dl);
	free(rs->k_gen);
	free(rs->k_lru);
	free(rs->channel);
	free(rs);
}

/* TLS towards Redis or the sentinels: off unless a CA is given or
 * verification is skipped (development); the CA is the Secret's PEM. */
static int
rs_tls_ctx(const struct secret_ref *ca, bool insecure, const char *what, SSL_CTX **out, char *err,
    size_t errlen)
{
	SSL_CTX *ctx;
	BIO *bio;
	X509 *x;
	int n = 0;

	*out = NULL;
	if (ca->value == NULL && !insecure)
		return 0;
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		abort();
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (insecure) {
		log_warn("store: TLS without verifying the server's certificate "
			 "(insecureSkipVerify)",
		    LOG_S("to", what));
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
		*out = ctx;
		return 0;
	}
	if ((bio = BIO_new_mem_buf(ca->value, (int)ca->value_len)) == NULL)
		abort();
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), x) == 1)
			n++;
		X509_free(x);
	}
	BIO_free(bio);
	if (n == 0) {
		snprintf(err, errlen, "%s: caCertSecretRef holds no PEM certificate", what);
		SSL_CTX_free(ctx);
		return -1;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	*out = ctx;
	return 0;
}

/* "host:port" or "[v6]:port" (6379 when the port is absent). */
static char *
rs_split_addr(const char *addr, int *port)
{
	const char *colon = strrchr(addr, ':');
	size_t n;

	*port = 6379;
	if (addr[0] == '[') {
		const char *end = strchr(addr, ']');

		if (end == NULL)
			return xstrdup(addr);
		if (end[1] == ':')
			*port = atoi(end + 2);
		return xstrndup(addr + 1, (size_t)(end - addr - 1));
	}
	if (colon == NULL)
		return xstrdup(addr);
	n = (size_t)(colon - addr);
	*port = atoi(colon + 1);
	return xstrndup(addr, n);
}

struct store_backend *
store_redis_new(const struct config *cfg, struct event_base *base, struct evdns_base *dns,
    char *err, size_t errlen)
{
	const struct storage_redis *c = &cfg->eas.storage.redis;
	struct rstore *rs = xcalloc(1, sizeof *rs);
	struct redis_params p = { 0 };
	char *host = NULL, *prelude = NULL, *lua;
	const char **sentinels = NULL;

	rs->be.type = "redis";
	rs->be.start = rs_start;
	rs->be.jti_revoked = rs_jti_revoked;
	rs->be.upstream_cached = rs_upstream_cached;
	rs->be.sweep = rs_sweep;
	rs->be.client_count = rs_client_count;
	rs->be.health = rs_health;
	rs->be.free = rs_free;
	TAILQ_INIT(&rs->ops);
	TAILQ_INIT(&rs->up_order);
	rs->n_jti_buckets = 64;
	rs->jtis = xcalloc(rs->n_jti_buckets, sizeof *rs->jtis);
	rs->n_up_buckets = 4096;
	rs->ups = xcalloc(rs->n_up_buckets, sizeof *rs->ups);
	rs->seal = seal_new();
	if (c->encryption_key.value == NULL) {
		snprintf(err, errlen,
		    "embeddedAuthServer.storage.redis.encryptionKeySecretRef: required with "
		    "storage.type redis");
		goto fail;
	}
	if (seal_add_keys_text(rs->seal, c->encryption_key.value, err, errlen) < 0)
		goto fail;
	if (c->addr == NULL && c->sentinel.master_name == NULL) {
		snprintf(err, errlen, "storage.type redis needs addr or sentinelConfig");
		goto fail;
	}
	if (rs_tls_ctx(&c->tls.ca_cert, c->tls.insecure_skip_verify, "redis", &rs->tls, err,
		errlen) != 0 ||
	    rs_tls_ctx(&c->sentinel_tls.ca_cert, c->sentinel_tls.insecure_skip_verify, "sentinel",
		&rs->sentinel_tls, err, errlen) != 0)
		goto fail;
	rs->prefix = xstrdup(c->key_prefix != NULL ? c->key_prefix : "mcp-proxy:");
	rs->k_dl = xasprintf("%s{dl}:jti", rs->prefix);
	rs->k_gen = xasprintf("%s{dl}:gen", rs->prefix);
	rs->k_lru = xasprintf("%s{cl}:lru", rs->prefix);
	rs->channel = xasprintf("%srevoked", rs->prefix);
	rs->m_errors = metrics_counter("mcp_proxy_store_errors_total",
	    "Errors talking to the shared store, by verb (empty: the connection) and kind.",
	    "verb,kind");

	if (c->sentinel.master_name != NULL) {
		sentinels = xcalloc(c->sentinel.sentinel_addrs.n, sizeof *sentinels);
		for (size_t i = 0; i < c->sentinel.sentinel_addrs.n; i++)
			sentinels[i] = c->sentinel.sentinel_addrs.v[i];
		p.master_name = c->sentinel.master_name;
		p.sentinels = sentinels;
		p.n_sentinels = c->sentinel.sentinel_addrs.n;
		p.host = "";
	} else {
		host = rs_split_addr(c->addr, &p.port);
		p.host = host;
	}
	p.username = c->username.value;
	p.password = c->password.value;
	p.db = (int)c->sentinel.db;
	p.dial_timeout_ms = c->dial_timeout_ms;
	p.read_timeout_ms = c->read_timeout_ms;
	p.write_timeout_ms = c->write_timeout_ms;
	p.tls = rs->tls;
	p.sentinel_tls = rs->sentinel_tls;
	p.log_name = "redis";
	rs->r = redis_new(base, dns, &p);
	prelude = xasprintf(rs_prelude, STORE_FAMILY_MAX_JTIS);
	for (int i = 0; i < RS_N_SCRIPTS; i++) {
		lua = xasprintf("%s%s", prelude, rs_scripts[i]);
		rs->script[i] = redis_script(rs->r, lua);
		free(lua);
		if (rs->script[i] < 0)
			abort(); /* RS_N_SCRIPTS <= REDIS_MAX_SCRIPTS */
	}
	p.log_name = "redis-subscriber";
	rs->sub = redis_new(base, dns, &p);
	redis_subscribe(rs->sub, rs->channel, rs_message, rs);
	rs->poll = xevent_new(base, -1, EV_PERSIST, rs_poll_cb, rs);
	{
		struct timeval tv = { RS_POLL_MS / 1000, (RS_POLL_MS % 1000) * 1000 };

		event_add(rs->poll, &tv);
	}
	/* The first reload as soon as the connection is up. */
	rs_resync(rs);
	free(prelude);
	free(host);
	free(sentinels);
	return &rs->be;
fail:
	free(host);
	free(sentinels);
	rs_free(&rs->be);
	return NULL;
}
