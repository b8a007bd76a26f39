/* The calls this process watches, and their concurrency leases.
 *
 * The scheduler takes a call's lease before the dial; the gateway keeps it alive while the call
 * lives and releases it when the call is over (docs/dialing.md, "Leases"). Any replica that
 * sees a call alive (a dial, a ringing or answered callback) adds it here; the renew thread then
 * asks Postgres which of them are still live before renewing, so a call that another replica
 * ended is dropped (and its lease released again, harmlessly) instead of renewed back into
 * existence. A crashed replica's calls keep their leases only until PL_LEASE_TTL_MS runs out.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "gateway.h"
#include "lease.h"
#include "log.h"
#include "queue.h"

typedef struct {
    char execution_id[40];
    char account_id[40];
    int max;
} live_call;

struct gw_live {
    gw *g;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    live_call *calls;
    int n, cap;
    int stop;
    int running;
    pthread_t thread;
};

gw_live *gw_live_new(gw *g)
{
    gw_live *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    l->g = g;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    return l;
}

void gw_live_free(gw_live *l)
{
    if (l == NULL)
        return;
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    free(l->calls);
    free(l);
}

static int find(gw_live *l, const char *execution_id)
{
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->calls[i].execution_id, execution_id) == 0)
            return i;
    return -1;
}

void gw_live_add(gw_live *l, const char *execution_id, const char *account_id, int max)
{
    pthread_mutex_lock(&l->mu);
    if (find(l, execution_id) < 0) {
        if (l->n == l->cap) {
            int cap = l->cap > 0 ? l->cap * 2 : 64;
            live_call *calls = realloc(l->calls, (size_t)cap * sizeof(*calls));
            if (calls == NULL) {
                pthread_mutex_unlock(&l->mu);
                PL_ERROR("live calls: out of memory; %s not renewed", execution_id);
                return;
            }
            l->calls = calls;
            l->cap = cap;
        }
        live_call *lc = &l->calls[l->n++];
        gw_copy(lc->execution_id, sizeof(lc->execution_id), execution_id);
        gw_copy(lc->account_id, sizeof(lc->account_id), account_id);
        lc->max = max;
        pl_metric_set(l->g->stats.live_calls, l->n);
    }
    pthread_mutex_unlock(&l->mu);
}

static void forget(gw_live *l, const char *execution_id)
{
    pthread_mutex_lock(&l->mu);
    int i = find(l, execution_id);
    if (i >= 0) {
        l->calls[i] = l->calls[--l->n];
        pl_metric_set(l->g->stats.live_calls, l->n);
    }
    pthread_mutex_unlock(&l->mu);
}

int gw_live_count(gw_live *l)
{
    pthread_mutex_lock(&l->mu);
    int n = l->n;
    pthread_mutex_unlock(&l->mu);
    return n;
}

void gw_release(gw *g, const char *execution_id, const char *account_id)
{
    forget(g->live, execution_id);
    pl_rconn *rc = pl_redis_acquire(g->redis);
    if (pl_lease_release(g->redis, rc, account_id, execution_id) != PL_OK)
        PL_WARN("lease of %s not released (it expires by itself)", execution_id);
    pl_redis_release(g->redis, rc);
}

/* One pass: drop calls that are no longer live, renew the rest. Works on a snapshot so the
 * registry's lock is never held across I/O. */
static void renew_all(gw_live *l)
{
    gw *g = l->g;
    pthread_mutex_lock(&l->mu);
    int n = l->n;
    live_call *snap = n > 0 ? malloc((size_t)n * sizeof(*snap)) : NULL;
    if (snap != NULL)
        memcpy(snap, l->calls, (size_t)n * sizeof(*snap));
    pthread_mutex_unlock(&l->mu);
    if (snap == NULL)
        return;
    const char **ids = malloc((size_t)n * sizeof(*ids));
    pl_status *st = malloc((size_t)n * sizeof(*st));
    int rc = ids != NULL && st != NULL ? PL_OK : PL_ERR_NOMEM;
    for (int i = 0; rc == PL_OK && i < n; i++)
        ids[i] = snap[i].execution_id;
    if (rc == PL_OK) {
        pl_dbconn *c = pl_db_acquire(g->db);
        rc = gw_statuses(g, c, ids, n, st);
        pl_db_release(g->db, c);
    }
    for (int i = 0; i < n; i++) {
        live_call *lc = &snap[i];
        /* Without an answer from Postgres, renew everything: losing a slot is worse. */
        if (rc == PL_OK && st[i] != PL_ST_INITIATED && st[i] != PL_ST_RINGING &&
            st[i] != PL_ST_IN_PROGRESS) {
            PL_DEBUG("live call %s is %s: lease released", lc->execution_id, pl_status_name(st[i]));
            gw_release(g, lc->execution_id, lc->account_id);
            continue;
        }
        int held = 0;
        pl_rconn *r = pl_redis_acquire(g->redis);
        int lr = pl_lease_renew(g->redis, r, lc->account_id, lc->execution_id, lc->max,
                                g->cfg.lease_ttl_ms, &held);
        pl_redis_release(g->redis, r);
        if (lr == PL_OK && !held) {
            pl_metric_add(g->stats.lease_lost, 1);
            PL_WARN("lease of live call %s had expired and no slot is free (account %s at its "
                    "limit of %d)",
                    lc->execution_id, lc->account_id, lc->max);
        }
    }
    free(ids);
    free(st);
    free(snap);
}

static void *renew_loop(void *arg)
{
    gw_live *l = arg;
    pthread_mutex_lock(&l->mu);
    while (!l->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        long ms = l->g->cfg.lease_renew_ms;
        until.tv_sec += ms / 1000;
        until.tv_nsec += (ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&l->cv, &l->mu, &until);
        if (l->stop)
            break;
        pthread_mutex_unlock(&l->mu);
        renew_all(l);
        pthread_mutex_lock(&l->mu);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

int gw_live_start(gw_live *l)
{
    if (pthread_create(&l->thread, NULL, renew_loop, l) != 0)
        return PL_ERR_NOMEM;
    l->running = 1;
    return PL_OK;
}

void gw_live_stop(gw_live *l)
{
    if (l == NULL || !l->running)
        return;
    pthread_mutex_lock(&l->mu);
    l->stop = 1;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->thread, NULL);
    l->running = 0;
}
