/* The scheduler's loop: read dial jobs (blocking at most 100 ms), then promote due delayed jobs
 * (at most every 20 ms), then, when due, take over a dead replica's pending jobs and run the
 * sweeps. PL_SCHEDULER_WORKERS - 1 more threads only read and dispatch dial jobs, one at a time
 * each, under consumer names of their own: jobs are idempotent and every transition is guarded,
 * so they may run side by side like replicas do, and their commits overlap. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "error.h"
#include "log.h"
#include "validate.h"
#include "scheduler.h"

#define BLOCK_MS   100
#define PROMOTE_MS 20
#define MAX_BATCH  1000

static void handle(scheduler *s, pl_rconn *rc, pl_job *jobs, int n)
{
    for (int i = 0; i < n; i++) {
        const char *id = pl_job_get(&jobs[i], "execution_id");
        const char *attempt = pl_job_get(&jobs[i], "attempt");
        if (id == NULL) {
            PL_WARN("dial job %s without execution_id dropped", jobs[i].id);
            pl_queue_ack(s->redis, rc, DIAL_STREAM, DIAL_GROUP, jobs[i].id);
            continue;
        }
        int n_attempt;
        if (attempt != NULL && pl_parse_int(attempt, 0, 1000, 0, &n_attempt) != PL_OK) {
            PL_WARN("dial job %s: attempt '%s' is not a number; dropped", jobs[i].id, attempt);
            pl_queue_ack(s->redis, rc, DIAL_STREAM, DIAL_GROUP, jobs[i].id);
            continue;
        }
        int acked = 0;
        if (scheduler_dispatch(s, rc, jobs[i].id, id, attempt != NULL ? n_attempt : 0, &acked) ==
                PL_OK &&
            !acked)
            pl_queue_ack(s->redis, rc, DIAL_STREAM, DIAL_GROUP, jobs[i].id);
        /* else: left pending; taken over again after claim_idle_ms */
    }
}

static void backoff(scheduler *s, pl_rconn **rc)
{
    /* Redis is down or the group vanished (a flushed Redis): back off, recreate. */
    pl_redis_release(s->redis, *rc);
    struct timespec ts = {0, 200 * 1000 * 1000};
    nanosleep(&ts, NULL);
    *rc = pl_redis_acquire(s->redis);
    pl_queue_group(s->redis, *rc, DIAL_STREAM, DIAL_GROUP, "0");
}

typedef struct {
    scheduler *s;
    volatile int *stop;
    char consumer[192];
    pthread_t thread;
} worker;

/* A worker: reads one job at a time, so jobs spread over the workers, and dispatches it. */
static void *work(void *arg)
{
    worker *w = arg;
    scheduler *s = w->s;
    pl_rconn *rc = pl_redis_acquire(s->redis);
    while (!*w->stop) {
        pl_job job;
        int n = 0;
        if (pl_queue_read(s->redis, rc, DIAL_STREAM, DIAL_GROUP, w->consumer, BLOCK_MS, &job, 1,
                          &n) != PL_OK) {
            backoff(s, &rc);
            continue;
        }
        handle(s, rc, &job, n);
        pl_jobs_clear(&job, n);
    }
    pl_redis_release(s->redis, rc);
    return NULL;
}

void scheduler_run(scheduler *s, volatile int *stop)
{
    static pl_job jobs[MAX_BATCH];
    int max = (int)(s->cfg.batch < MAX_BATCH ? s->cfg.batch : MAX_BATCH);
    pl_rconn *rc = pl_redis_acquire(s->redis);
    pl_queue_group(s->redis, rc, DIAL_STREAM, DIAL_GROUP, "0");
    int nw = (int)s->cfg.workers - 1;
    worker *ws = nw > 0 ? calloc((size_t)nw, sizeof(*ws)) : NULL;
    if (ws == NULL)
        nw = 0;
    for (int i = 0; i < nw; i++) {
        ws[i].s = s;
        ws[i].stop = stop;
        snprintf(ws[i].consumer, sizeof(ws[i].consumer), "%s-%d", s->consumer, i + 1);
        if (pthread_create(&ws[i].thread, NULL, work, &ws[i]) != 0) {
            PL_ERROR("cannot start scheduler worker %d", i + 1);
            nw = i;
            break;
        }
    }
    /* With workers beside it, this loop reads one job at a time too: a batch read here would
     * queue jobs behind each other while the workers wait. */
    int read_max = nw > 0 ? 1 : max;
    int64_t next_sweep = 0, next_claim = 0, next_promote = 0;
    while (!*stop) {
        int n = 0, moved = 0;
        if (pl_queue_read(s->redis, rc, DIAL_STREAM, DIAL_GROUP, s->consumer, BLOCK_MS, jobs,
                          read_max, &n) != PL_OK) {
            backoff(s, &rc);
            continue;
        }
        handle(s, rc, jobs, n);
        pl_jobs_clear(jobs, n);
        int64_t now = pl_now_ms();
        /* Due delayed jobs move at most PROMOTE_MS late: after every read when idle, not after
         * every read under load, where reads return a job or two each and a promote script per
         * read would add a Redis round trip per job. */
        if (n == 0 || now >= next_promote) {
            pl_delay_promote(s->redis, rc, now, 1000, &moved);
            next_promote = now + PROMOTE_MS;
        }
        if (now >= next_claim) {
            next_claim = now + s->cfg.claim_idle_ms / 2;
            if (pl_queue_claim(s->redis, rc, DIAL_STREAM, DIAL_GROUP, s->consumer,
                               s->cfg.claim_idle_ms, jobs, max, &n) == PL_OK &&
                n > 0) {
                PL_INFO("took over %d dial job(s) of a stopped scheduler", n);
                handle(s, rc, jobs, n);
                pl_jobs_clear(jobs, n);
            }
        }
        if (now >= next_sweep) {
            next_sweep = now + s->cfg.sweep_ms;
            scheduler_sweep(s, rc);
        }
    }
    for (int i = 0; i < nw; i++) /* each finishes its job in hand (a read blocks 100 ms) */
        pthread_join(ws[i].thread, NULL);
    free(ws);
    pl_redis_release(s->redis, rc);
}
