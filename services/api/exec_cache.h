/* A read cache of rendered execution objects for GET /executions/{id}.
 *
 * Clients poll executions; rendering one costs Postgres ~80 µs of CPU and a round trip. This
 * cache keeps the rendered JSON and drops an entry when:
 *   - any service publishes an event about that execution on the bus ("exec." topics: every
 *     status change, transcript turn...), which arrives within microseconds of the commit;
 *   - this api changes it itself (invalidated before the reply, so a client never reads its own
 *     write stale);
 *   - the entry is older than ttl_ms: the bound on staleness should an event be lost, since
 *     pub/sub may drop messages. ttl_ms 0 disables the cache (every GET reads Postgres).
 *
 * A fill races an invalidation safely: each slot has a generation bumped by invalidation, and
 * a fill only lands if the generation it saw before reading Postgres is unchanged.
 * All functions are thread-safe.
 */
#ifndef API_EXEC_CACHE_H
#define API_EXEC_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "redis.h"

typedef struct exec_cache exec_cache;

exec_cache *exec_cache_new(size_t slots, long ttl_ms);
void exec_cache_free(exec_cache *c);

/* On a hit copies the JSON into a new buffer (*json, caller frees) and returns 1. On a miss
 * returns 0 and sets *gen, to be passed to exec_cache_put. */
int exec_cache_get(exec_cache *c, const char *id, const char *account, char **json, size_t *len,
                   uint64_t *gen);
void exec_cache_put(exec_cache *c, const char *id, const char *account, const char *json,
                    size_t len, uint64_t gen);
void exec_cache_invalidate(exec_cache *c, const char *id);

/* Starts a thread that invalidates entries named by "exec." events on the bus. `self` is this
 * process's own publisher, not listened to: its writes invalidate directly. */
int exec_cache_watch(exec_cache *c, pl_redis *r, const char *self);

#endif
