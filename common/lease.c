#include <stdio.h>

#include "error.h"
#include "lease.h"
#include "queue.h"

/* KEYS[1] lease set; ARGV: now, expiry, max, member. Returns 1 if held after the call. */
static const char acquire_lua[] = "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])\n"
                                  "if redis.call('ZSCORE', KEYS[1], ARGV[4]) then\n"
                                  "  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])\n"
                                  "  return 1\n"
                                  "end\n"
                                  "if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then\n"
                                  "  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])\n"
                                  "  redis.call('PEXPIRE', KEYS[1], ARGV[5])\n"
                                  "  return 1\n"
                                  "end\n"
                                  "return 0\n";

static void lease_key(pl_redis *r, char *buf, size_t cap, const char *account_id)
{
    char name[96];
    snprintf(name, sizeof(name), "lease:%s", account_id);
    pl_redis_key(r, buf, cap, name);
}

int pl_lease_acquire(pl_redis *r, pl_rconn *c, const char *account_id, const char *execution_id,
                     int max, int64_t ttl_ms, int *granted)
{
    char key[160];
    lease_key(r, key, sizeof(key), account_id);
    int64_t now = pl_now_ms();
    redisReply *rep =
        pl_redis_cmd(c, "EVAL %s 1 %s %lld %lld %d %s %lld", acquire_lua, key, (long long)now,
                     (long long)(now + ttl_ms), max, execution_id, (long long)(ttl_ms * 4));
    int ok = pl_redis_ok(rep, "lease acquire") && rep->type == REDIS_REPLY_INTEGER;
    *granted = ok ? (int)rep->integer : 0;
    if (rep != NULL)
        freeReplyObject(rep);
    return ok ? PL_OK : PL_ERR_REDIS;
}

int pl_lease_renew(pl_redis *r, pl_rconn *c, const char *account_id, const char *execution_id,
                   int max, int64_t ttl_ms, int *held)
{
    return pl_lease_acquire(r, c, account_id, execution_id, max, ttl_ms, held);
}

int pl_lease_release(pl_redis *r, pl_rconn *c, const char *account_id, const char *execution_id)
{
    char key[160];
    lease_key(r, key, sizeof(key), account_id);
    redisReply *rep = pl_redis_cmd(c, "ZREM %s %s", key, execution_id);
    int ok = pl_redis_ok(rep, "lease release");
    if (rep != NULL)
        freeReplyObject(rep);
    return ok ? PL_OK : PL_ERR_REDIS;
}

int pl_lease_count(pl_redis *r, pl_rconn *c, const char *account_id, int *count)
{
    char key[160];
    lease_key(r, key, sizeof(key), account_id);
    redisReply *rep = pl_redis_cmd(c, "ZCOUNT %s %lld +inf", key, (long long)pl_now_ms());
    int ok = pl_redis_ok(rep, "lease count") && rep->type == REDIS_REPLY_INTEGER;
    *count = ok ? (int)rep->integer : 0;
    if (rep != NULL)
        freeReplyObject(rep);
    return ok ? PL_OK : PL_ERR_REDIS;
}
