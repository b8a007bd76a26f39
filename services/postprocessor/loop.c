/* loop: the worker threads, and the main thread's loop that feeds them (pp.h). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "bus.h"
#include "error.h"
#include "log.h"
#include "pp.h"
#include "queue.h"
#include "validate.h"

#define TOPIC "exec.status.call-disconnected"

static pthread_t *threads;
static int nthreads;

static void *worker(void *arg)
{
    pp *app = arg;
    char id[PP_ID_CAP];
    while (pp_workq_take(app->q, id) == 0) {
        int64_t retry_at = 0;
        pp_job_run(app, id, &retry_at);
        pp_workq_done(app->q, id, retry_at);
    }
    return NULL;
}

int pp_workers_start(pp *app)
{
    threads = calloc((size_t)app->cfg.workers, sizeof(pthread_t));
    if (threads == NULL)
        return PL_ERR_NOMEM;
    for (nthreads = 0; nthreads < app->cfg.workers; nthreads++)
        if (pthread_create(&threads[nthreads], NULL, worker, app) != 0) {
            PL_ERROR("cannot start worker thread %d", nthreads);
            return PL_ERR_NOMEM;
        }
    return PL_OK;
}

/* "exec.status.call-disconnected {...,"execution_id":"<uuid>",...}" -> queued now. */
static void on_event(pp *app, const char *payload)
{
    cJSON *j = cJSON_Parse(payload);
    const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "execution_id"));
    if (id != NULL && pl_is_uuid(id))
        pp_workq_add(app->q, id, pl_now_ms());
    else
        PL_WARN("bus: %s event without a valid execution_id ignored", TOPIC);
    cJSON_Delete(j);
}

void pp_run(pp *app, volatile int *stop)
{
    const char *prefixes[1] = {TOPIC};
    pl_bus_sub *sub = pl_bus_sub_open(app->svc.redis, prefixes, 1, NULL);
    if (sub == NULL)
        PL_WARN("bus: cannot subscribe to %s; relying on the sweep alone", TOPIC);
    int64_t next_sweep = 0;
    while (!*stop) {
        int64_t now = pl_now_ms();
        if (now >= next_sweep) {
            next_sweep = now + app->cfg.sweep_ms;
            pp_sweep(app);
        }
        int wait = (int)(next_sweep - now < 100 ? next_sweep - now : 100);
        char *msg = NULL;
        size_t tlen = 0;
        const char *payload = NULL;
        if (sub == NULL) {
            struct timespec ts = {0, (long)(wait > 0 ? wait : 1) * 1000000L};
            nanosleep(&ts, NULL);
        } else if (pl_bus_recv(sub, wait > 0 ? wait : 1, &msg, &tlen, &payload) == PL_OK) {
            on_event(app, payload);
            free(msg);
        }
    }
    /* SIGTERM: stop taking work; each worker finishes the job in hand, then exits. */
    PL_INFO("stopping: finishing the jobs in hand");
    pp_workq_close(app->q);
    for (int i = 0; i < nthreads; i++)
        pthread_join(threads[i], NULL);
    free(threads);
    threads = NULL;
    nthreads = 0;
    pl_bus_sub_close(sub);
}
