/* registry: this worker's entry in the Redis hash <prefix>pipeline:workers, which gateways read
 * to choose a worker for each answered call (telephony-gateway/pipeline.c). Field = service id,
 * value = {"addr","load","capacity","expires"}; refreshed every second with a 5 s expiry, so a
 * worker that dies stops receiving calls within 5 s. Withdrawn (HDEL) when draining. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "mp.h"
#include "queue.h"

#define WORKERS_KEY  "pipeline:workers"
#define HEARTBEAT_MS 1000
#define EXPIRY_MS    5000

struct mp_registry {
    mp *app;
    pthread_t th;
    atomic_int stop;
    atomic_int withdrawn;
    pthread_mutex_t mu; /* one Redis command at a time from this module */
};

static void publish(mp_registry *r)
{
    mp *app = r->app;
    char key[160], value[512];
    pl_redis_key(app->svc.redis, key, sizeof(key), WORKERS_KEY);
    snprintf(value, sizeof(value),
             "{\"addr\":\"%s\",\"load\":%d,\"capacity\":%ld,\"expires\":%lld}",
             pl_relay_url(app->relay), atomic_load(&app->live), app->cfg.capacity,
             (long long)(pl_now_ms() + EXPIRY_MS));
    pl_rconn *c = pl_redis_acquire(app->svc.redis);
    redisReply *rep = pl_redis_cmd(c, "HSET %s %s %s", key, app->svc.id, value);
    pl_redis_release(app->svc.redis, c);
    pl_redis_ok(rep, "HSET pipeline worker");
    if (rep != NULL)
        freeReplyObject(rep);
}

static void *run(void *arg)
{
    mp_registry *r = arg;
    while (!atomic_load(&r->stop)) {
        pthread_mutex_lock(&r->mu);
        if (!atomic_load(&r->withdrawn))
            publish(r);
        pthread_mutex_unlock(&r->mu);
        for (int i = 0; i < HEARTBEAT_MS / 50 && !atomic_load(&r->stop); i++)
            usleep(50 * 1000);
    }
    return NULL;
}

mp_registry *mp_registry_start(mp *app)
{
    mp_registry *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->app = app;
    pthread_mutex_init(&r->mu, NULL);
    publish(r); /* registered before main says ready */
    if (pthread_create(&r->th, NULL, run, r) != 0) {
        pthread_mutex_destroy(&r->mu);
        free(r);
        return NULL;
    }
    return r;
}

void mp_registry_withdraw(mp_registry *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->mu);
    atomic_store(&r->withdrawn, 1);
    char key[160];
    pl_redis_key(r->app->svc.redis, key, sizeof(key), WORKERS_KEY);
    pl_rconn *c = pl_redis_acquire(r->app->svc.redis);
    redisReply *rep = pl_redis_cmd(c, "HDEL %s %s", key, r->app->svc.id);
    pl_redis_release(r->app->svc.redis, c);
    pl_redis_ok(rep, "HDEL pipeline worker");
    if (rep != NULL)
        freeReplyObject(rep);
    pthread_mutex_unlock(&r->mu);
    PL_INFO("withdrawn from the worker registry");
}

void mp_registry_stop(mp_registry *r)
{
    if (r == NULL)
        return;
    atomic_store(&r->stop, 1);
    pthread_join(r->th, NULL);
    pthread_mutex_destroy(&r->mu);
    free(r);
}
