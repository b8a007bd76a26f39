#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"
#include "pool.h"
#include "redis.h"

struct pl_rconn {
    redisContext *ctx;
    int broken;
};

struct pl_redis {
    char host[256];
    int port;
    int db;
    char prefix[64];
    pl_rconn *conns;
    int size;
    pl_pool *pool;
};

static int parse_url(pl_redis *r, const char *url)
{
    const char *p = url;
    if (strncmp(p, "redis://", 8) == 0)
        p += 8;
    const char *colon = strrchr(p, ':');
    const char *slash = strchr(p, '/');
    size_t hostlen =
        colon != NULL ? (size_t)(colon - p) : (slash ? (size_t)(slash - p) : strlen(p));
    if (hostlen == 0 || hostlen >= sizeof(r->host))
        return PL_ERR_INVALID;
    memcpy(r->host, p, hostlen);
    r->host[hostlen] = '\0';
    r->port = colon != NULL ? (int)strtol(colon + 1, NULL, 10) : 6379;
    r->db = slash != NULL ? (int)strtol(slash + 1, NULL, 10) : 0;
    return r->port > 0 && r->port < 65536 ? PL_OK : PL_ERR_INVALID;
}

static int conn_open(pl_redis *r, pl_rconn *c)
{
    struct timeval tv = {2, 0};
    if (c->ctx != NULL)
        redisFree(c->ctx);
    c->ctx = redisConnectWithTimeout(r->host, r->port, tv);
    c->broken = 1;
    if (c->ctx == NULL || c->ctx->err) {
        PL_ERROR("redis connect %s:%d failed: %s", r->host, r->port,
                 c->ctx ? c->ctx->errstr : "no memory");
        return PL_ERR_REDIS;
    }
    struct timeval io = {10, 0};
    redisSetTimeout(c->ctx, io);
    if (r->db != 0) {
        redisReply *rep = redisCommand(c->ctx, "SELECT %d", r->db);
        int ok = rep != NULL && rep->type != REDIS_REPLY_ERROR;
        if (rep != NULL)
            freeReplyObject(rep);
        if (!ok)
            return PL_ERR_REDIS;
    }
    c->broken = 0;
    return PL_OK;
}

pl_redis *pl_redis_open(const char *url, const char *prefix, int size)
{
    if (size < 1 || size > PL_POOL_MAX)
        return NULL;
    pl_redis *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    if (parse_url(r, url) != PL_OK) {
        PL_ERROR("PL_REDIS_URL '%s' is not redis://host:port[/db]", url);
        free(r);
        return NULL;
    }
    snprintf(r->prefix, sizeof(r->prefix), "%s", prefix != NULL ? prefix : "parley:");
    r->conns = calloc((size_t)size, sizeof(pl_rconn));
    r->size = size;
    void *items[PL_POOL_MAX];
    int rc = r->conns != NULL ? PL_OK : PL_ERR_NOMEM;
    for (int i = 0; i < size && rc == PL_OK; i++) {
        items[i] = &r->conns[i];
        rc = conn_open(r, &r->conns[i]);
    }
    if (rc == PL_OK && (r->pool = pl_pool_new(items, size)) != NULL)
        return r;
    pl_redis_close(r);
    return NULL;
}

void pl_redis_close(pl_redis *r)
{
    if (r == NULL)
        return;
    for (int i = 0; r->conns != NULL && i < r->size; i++)
        if (r->conns[i].ctx != NULL)
            redisFree(r->conns[i].ctx);
    free(r->conns);
    pl_pool_free(r->pool);
    free(r);
}

pl_rconn *pl_redis_acquire(pl_redis *r)
{
    pl_rconn *c = pl_pool_acquire(r->pool);
    if (c->broken || c->ctx == NULL || c->ctx->err) {
        PL_WARN("redis connection lost; reconnecting");
        conn_open(r, c);
    }
    return c;
}

void pl_redis_release(pl_redis *r, pl_rconn *c)
{
    pl_pool_release(r->pool, c);
}

const char *pl_redis_prefix(const pl_redis *r)
{
    return r->prefix;
}

char *pl_redis_key(const pl_redis *r, char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s%s", r->prefix, name);
    return buf;
}

redisReply *pl_redis_cmd(pl_rconn *c, const char *fmt, ...)
{
    if (c->broken)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    redisReply *rep = redisvCommand(c->ctx, fmt, ap);
    va_end(ap);
    if (rep == NULL)
        c->broken = 1;
    return rep;
}

redisReply *pl_redis_argv(pl_rconn *c, int argc, const char **argv, const size_t *lens)
{
    if (c->broken)
        return NULL;
    redisReply *rep = redisCommandArgv(c->ctx, argc, argv, lens);
    if (rep == NULL)
        c->broken = 1;
    return rep;
}

int pl_redis_ok(const redisReply *r, const char *what)
{
    if (r == NULL) {
        PL_ERROR("redis %s: connection failed", what);
        return 0;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        PL_ERROR("redis %s: %s", what, r->str);
        return 0;
    }
    return 1;
}

int pl_redis_ping(pl_redis *r)
{
    pl_rconn *c = pl_redis_acquire(r);
    redisReply *rep = pl_redis_cmd(c, "PING");
    int ok = rep != NULL && rep->type == REDIS_REPLY_STATUS;
    if (rep != NULL)
        freeReplyObject(rep);
    pl_redis_release(r, c);
    return ok ? PL_OK : PL_ERR_REDIS;
}
