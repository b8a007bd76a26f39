/* Redis connections (hiredis, RESP2) pooled for a service's threads.
 *
 * pl_redis_acquire returns a connected context, reconnecting one that failed earlier. A command
 * that fails at the connection level returns NULL and marks the connection for reconnect; it is
 * not retried, because the server may have applied it. Replies are owned by the caller
 * (freeReplyObject).
 */
#ifndef PL_REDIS_H
#define PL_REDIS_H

#include <hiredis/hiredis.h>
#include <stddef.h>

typedef struct pl_redis pl_redis;
typedef struct pl_rconn pl_rconn;

/* url: redis://host:port[/db]. NULL when the first connection fails (logged). */
pl_redis *pl_redis_open(const char *url, const char *prefix, int size);
void pl_redis_close(pl_redis *r);

pl_rconn *pl_redis_acquire(pl_redis *r);
void pl_redis_release(pl_redis *r, pl_rconn *c);

/* The key prefix ("parley:") of this deployment. */
const char *pl_redis_prefix(const pl_redis *r);

/* Formats prefix + name into buf; returns buf. */
char *pl_redis_key(const pl_redis *r, char *buf, size_t cap, const char *name);

/* redisCommand with connection-failure bookkeeping. NULL on connection error. */
redisReply *pl_redis_cmd(pl_rconn *c, const char *fmt, ...);
redisReply *pl_redis_argv(pl_rconn *c, int argc, const char **argv, const size_t *lens);

/* 1 if the reply is non-NULL and not an error (logs the error text otherwise). */
int pl_redis_ok(const redisReply *r, const char *what);

int pl_redis_ping(pl_redis *r);

#endif
