#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "error.h"
#include "log.h"
#include "queue.h"

#define DELAYED_SET "delayed"

int64_t pl_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *pl_job_get(const pl_job *job, const char *key)
{
    for (int i = 0; i < job->nfields; i++)
        if (strcmp(job->keys[i], key) == 0)
            return job->vals[i];
    return NULL;
}

void pl_jobs_clear(pl_job *jobs, int n)
{
    for (int j = 0; j < n; j++) {
        for (int i = 0; i < jobs[j].nfields; i++) {
            free(jobs[j].keys[i]);
            free(jobs[j].vals[i]);
        }
        jobs[j].nfields = 0;
    }
}

int pl_queue_push(pl_redis *r, pl_rconn *c, const char *stream, const char *const *kv, int npairs,
                  char *id_out)
{
    char key[256];
    const char *argv[3 + 2 * PL_JOB_MAX_FIELDS];
    if (npairs > PL_JOB_MAX_FIELDS)
        return PL_ERR_INVALID;
    argv[0] = "XADD";
    argv[1] = pl_redis_key(r, key, sizeof(key), stream);
    argv[2] = "*";
    for (int i = 0; i < 2 * npairs; i++)
        argv[3 + i] = kv[i];
    redisReply *rep = pl_redis_argv(c, 3 + 2 * npairs, argv, NULL);
    int ok = pl_redis_ok(rep, "XADD");
    if (ok && id_out != NULL && rep->type == REDIS_REPLY_STRING)
        snprintf(id_out, 48, "%s", rep->str);
    if (rep != NULL)
        freeReplyObject(rep);
    return ok ? PL_OK : PL_ERR_REDIS;
}

int pl_queue_group(pl_redis *r, pl_rconn *c, const char *stream, const char *group,
                   const char *start)
{
    char key[256];
    redisReply *rep = pl_redis_cmd(c, "XGROUP CREATE %s %s %s MKSTREAM",
                                   pl_redis_key(r, key, sizeof(key), stream), group, start);
    int ok = rep != NULL && (rep->type != REDIS_REPLY_ERROR || strstr(rep->str, "BUSYGROUP"));
    if (!ok)
        pl_redis_ok(rep, "XGROUP CREATE");
    if (rep != NULL)
        freeReplyObject(rep);
    return ok ? PL_OK : PL_ERR_REDIS;
}

/* Parses one [id, [k, v, ...]] entry. A deleted entry (nil fields) yields 0 fields. */
static void parse_entry(const redisReply *e, pl_job *job)
{
    memset(job, 0, sizeof(*job));
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 2)
        return;
    snprintf(job->id, sizeof(job->id), "%s", e->element[0]->str);
    const redisReply *f = e->element[1];
    if (f->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 0; i + 1 < f->elements && job->nfields < PL_JOB_MAX_FIELDS; i += 2) {
        job->keys[job->nfields] = strdup(f->element[i]->str);
        job->vals[job->nfields] = strdup(f->element[i + 1]->str);
        job->nfields++;
    }
}

static void parse_entries(const redisReply *arr, pl_job *jobs, int max, int *n)
{
    for (size_t i = 0; i < arr->elements && *n < max; i++)
        parse_entry(arr->element[i], &jobs[(*n)++]);
}

int pl_queue_read(pl_redis *r, pl_rconn *c, const char *stream, const char *group,
                  const char *consumer, int block_ms, pl_job *jobs, int max, int *n)
{
    char key[256];
    *n = 0;
    redisReply *rep;
    pl_redis_key(r, key, sizeof(key), stream);
    if (block_ms > 0)
        rep = pl_redis_cmd(c, "XREADGROUP GROUP %s %s COUNT %d BLOCK %d STREAMS %s >", group,
                           consumer, max, block_ms, key);
    else
        rep = pl_redis_cmd(c, "XREADGROUP GROUP %s %s COUNT %d STREAMS %s >", group, consumer, max,
                           key);
    if (!pl_redis_ok(rep, "XREADGROUP")) {
        if (rep != NULL)
            freeReplyObject(rep);
        return PL_ERR_REDIS;
    }
    /* [[stream, [entries...]]] or nil on timeout */
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements > 0 &&
        rep->element[0]->type == REDIS_REPLY_ARRAY && rep->element[0]->elements == 2)
        parse_entries(rep->element[0]->element[1], jobs, max, n);
    freeReplyObject(rep);
    return PL_OK;
}

int pl_queue_claim(pl_redis *r, pl_rconn *c, const char *stream, const char *group,
                   const char *consumer, int64_t min_idle_ms, pl_job *jobs, int max, int *n)
{
    char key[256];
    *n = 0;
    pl_redis_key(r, key, sizeof(key), stream);
    redisReply *rep = pl_redis_cmd(c, "XAUTOCLAIM %s %s %s %lld 0-0 COUNT %d", key, group, consumer,
                                   (long long)min_idle_ms, max);
    if (!pl_redis_ok(rep, "XAUTOCLAIM")) {
        if (rep != NULL)
            freeReplyObject(rep);
        return PL_ERR_REDIS;
    }
    /* [next-cursor, [entries...], [deleted ids...]] */
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements >= 2)
        parse_entries(rep->element[1], jobs, max, n);
    freeReplyObject(rep);
    return PL_OK;
}

int pl_queue_ack(pl_redis *r, pl_rconn *c, const char *stream, const char *group, const char *id)
{
    char key[256];
    redisReply *rep =
        pl_redis_cmd(c, "XACK %s %s %s", pl_redis_key(r, key, sizeof(key), stream), group, id);
    int ok = pl_redis_ok(rep, "XACK");
    if (rep != NULL)
        freeReplyObject(rep);
    return ok ? PL_OK : PL_ERR_REDIS;
}

int pl_queue_len(pl_redis *r, pl_rconn *c, const char *stream, long long *len)
{
    char key[256];
    redisReply *rep = pl_redis_cmd(c, "XLEN %s", pl_redis_key(r, key, sizeof(key), stream));
    int ok = pl_redis_ok(rep, "XLEN") && rep->type == REDIS_REPLY_INTEGER;
    if (ok)
        *len = rep->integer;
    if (rep != NULL)
        freeReplyObject(rep);
    return ok ? PL_OK : PL_ERR_REDIS;
}

/* The canonical member: {"s":stream,"f":[k1,v1,...]} with fields in the caller's order. */
static char *delay_member(const char *stream, const char *const *kv, int npairs)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "s", stream);
    cJSON *f = cJSON_AddArrayToObject(o, "f");
    for (int i = 0; i < 2 * npairs; i++)
        cJSON_AddItemToArray(f, cJSON_CreateString(kv[i]));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

int pl_delay_add(pl_redis *r, pl_rconn *c, const char *stream, const char *const *kv, int npairs,
                 int64_t due_ms)
{
    char key[256];
    char *m = delay_member(stream, kv, npairs);
    if (m == NULL)
        return PL_ERR_NOMEM;
    redisReply *rep = pl_redis_cmd(
        c, "ZADD %s %lld %s", pl_redis_key(r, key, sizeof(key), DELAYED_SET), (long long)due_ms, m);
    free(m);
    int ok = pl_redis_ok(rep, "ZADD");
    if (rep != NULL)
        freeReplyObject(rep);
    return ok ? PL_OK : PL_ERR_REDIS;
}

int pl_delay_remove(pl_redis *r, pl_rconn *c, const char *stream, const char *const *kv, int npairs,
                    int *removed)
{
    char key[256];
    char *m = delay_member(stream, kv, npairs);
    if (m == NULL)
        return PL_ERR_NOMEM;
    redisReply *rep =
        pl_redis_cmd(c, "ZREM %s %s", pl_redis_key(r, key, sizeof(key), DELAYED_SET), m);
    free(m);
    int ok = pl_redis_ok(rep, "ZREM");
    if (ok)
        *removed = (int)rep->integer;
    if (rep != NULL)
        freeReplyObject(rep);
    return ok ? PL_OK : PL_ERR_REDIS;
}

/* Atomic: each due member is appended to its stream and removed from the set in one script. */
static const char promote_lua[] =
    "local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])\n"
    "for _, m in ipairs(due) do\n"
    "  local j = cjson.decode(m)\n"
    "  local args = {ARGV[3] .. j.s, '*'}\n"
    "  for _, v in ipairs(j.f) do args[#args + 1] = v end\n"
    "  redis.call('XADD', unpack(args))\n"
    "  redis.call('ZREM', KEYS[1], m)\n"
    "end\n"
    "return #due\n";

int pl_delay_promote(pl_redis *r, pl_rconn *c, int64_t now_ms, int max, int *moved)
{
    char key[256];
    redisReply *rep = pl_redis_cmd(c, "EVAL %s 1 %s %lld %d %s", promote_lua,
                                   pl_redis_key(r, key, sizeof(key), DELAYED_SET),
                                   (long long)now_ms, max, pl_redis_prefix(r));
    int ok = pl_redis_ok(rep, "delay promote") && rep->type == REDIS_REPLY_INTEGER;
    *moved = ok ? (int)rep->integer : 0;
    if (rep != NULL)
        freeReplyObject(rep);
    return ok ? PL_OK : PL_ERR_REDIS;
}
