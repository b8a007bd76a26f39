#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "error.h"
#include "exec_cache.h"
#include "log.h"
#include "metrics.h"
#include "queue.h"

#define MAX_JSON (64 * 1024) /* larger objects are not cached */

typedef struct {
    pthread_mutex_t mu;
    uint64_t gen;
    char id[40];
    char account[40];
    char *json;
    size_t len;
    int64_t filled_ms;
} slot;

struct exec_cache {
    slot *slots;
    size_t n;
    long ttl_ms;
    pl_bus_sub *sub;
    pthread_t thread;
    atomic_int stop;
    pl_metric *hits, *misses, *invalidations;
};

static size_t slot_of(const exec_cache *c, const char *id)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 1099511628211ULL;
    return (size_t)(h % c->n);
}

exec_cache *exec_cache_new(size_t slots, long ttl_ms)
{
    exec_cache *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->n = slots > 0 ? slots : 1;
    c->ttl_ms = ttl_ms;
    c->slots = calloc(c->n, sizeof(slot));
    if (c->slots == NULL) {
        free(c);
        return NULL;
    }
    for (size_t i = 0; i < c->n; i++)
        pthread_mutex_init(&c->slots[i].mu, NULL);
    c->hits = pl_metric_counter("pl_api_exec_cache_total", "result=\"hit\"",
                                "GET /executions lookups by cache result");
    c->misses = pl_metric_counter("pl_api_exec_cache_total", "result=\"miss\"",
                                  "GET /executions lookups by cache result");
    c->invalidations = pl_metric_counter("pl_api_exec_cache_invalidations_total", NULL,
                                         "execution cache entries dropped by events or writes");
    return c;
}

void exec_cache_free(exec_cache *c)
{
    if (c == NULL)
        return;
    if (c->sub != NULL) {
        atomic_store(&c->stop, 1);
        pthread_join(c->thread, NULL);
        pl_bus_sub_close(c->sub);
    }
    for (size_t i = 0; i < c->n; i++) {
        free(c->slots[i].json);
        pthread_mutex_destroy(&c->slots[i].mu);
    }
    free(c->slots);
    free(c);
}

int exec_cache_get(exec_cache *c, const char *id, const char *account, char **json, size_t *len,
                   uint64_t *gen)
{
    *gen = 0;
    if (c->ttl_ms <= 0)
        return 0;
    slot *s = &c->slots[slot_of(c, id)];
    int hit = 0;
    pthread_mutex_lock(&s->mu);
    *gen = s->gen;
    if (s->json != NULL && strcmp(s->id, id) == 0 && strcmp(s->account, account) == 0 &&
        pl_now_ms() - s->filled_ms < c->ttl_ms && (*json = malloc(s->len)) != NULL) {
        memcpy(*json, s->json, s->len);
        *len = s->len;
        hit = 1;
    }
    pthread_mutex_unlock(&s->mu);
    pl_metric_add(hit ? c->hits : c->misses, 1);
    return hit;
}

void exec_cache_put(exec_cache *c, const char *id, const char *account, const char *json,
                    size_t len, uint64_t gen)
{
    if (c->ttl_ms <= 0 || len > MAX_JSON || strlen(id) >= 40 || strlen(account) >= 40)
        return;
    char *copy = malloc(len);
    if (copy == NULL)
        return;
    memcpy(copy, json, len);
    slot *s = &c->slots[slot_of(c, id)];
    pthread_mutex_lock(&s->mu);
    if (s->gen == gen) { /* no invalidation since the caller read Postgres */
        free(s->json);
        s->json = copy;
        s->len = len;
        memcpy(s->id, id, strlen(id) + 1);
        memcpy(s->account, account, strlen(account) + 1);
        s->filled_ms = pl_now_ms();
        copy = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    free(copy);
}

void exec_cache_invalidate(exec_cache *c, const char *id)
{
    if (c->ttl_ms <= 0)
        return;
    slot *s = &c->slots[slot_of(c, id)];
    pthread_mutex_lock(&s->mu);
    /* Bump even when the slot holds another id: a fill of `id` may be in flight. */
    s->gen++;
    if (s->json != NULL && strcmp(s->id, id) == 0) {
        free(s->json);
        s->json = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    pl_metric_add(c->invalidations, 1);
}

static void *watch_main(void *arg)
{
    exec_cache *c = arg;
    static const char key[] = "\"execution_id\":\"";
    while (!atomic_load(&c->stop)) {
        char *msg;
        size_t tl;
        const char *payload;
        if (pl_bus_recv(c->sub, 200, &msg, &tl, &payload) != PL_OK)
            continue;
        const char *p = strstr(payload, key);
        if (p != NULL) {
            char id[40];
            p += sizeof(key) - 1;
            size_t n = strcspn(p, "\"");
            if (n < sizeof(id)) {
                memcpy(id, p, n);
                id[n] = '\0';
                exec_cache_invalidate(c, id);
            }
        }
        free(msg);
    }
    return NULL;
}

int exec_cache_watch(exec_cache *c, pl_redis *r, const char *self)
{
    if (c->ttl_ms <= 0)
        return PL_OK;
    static const char *const prefixes[1] = {"exec."};
    c->sub = pl_bus_sub_open(r, prefixes, 1, self);
    if (c->sub == NULL)
        return PL_ERR_BUS;
    if (pthread_create(&c->thread, NULL, watch_main, c) != 0)
        return PL_ERR_NOMEM;
    return PL_OK;
}
