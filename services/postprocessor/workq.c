/* workq: a small array scanned linearly (it holds at most a few thousand ids, and each job costs
 * milliseconds of database work), one mutex, one condition variable. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "queue.h"
#include "workq.h"

typedef struct {
    char id[PP_ID_CAP];
    int64_t due_ms;
    int used, in_flight;
} entry;

struct pp_workq {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    entry *e;
    int cap;
    int closed;
};

pp_workq *pp_workq_new(int capacity)
{
    pp_workq *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return NULL;
    q->e = calloc((size_t)capacity, sizeof(entry));
    if (q->e == NULL) {
        free(q);
        return NULL;
    }
    q->cap = capacity;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    return q;
}

void pp_workq_free(pp_workq *q)
{
    if (q == NULL)
        return;
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
    free(q->e);
    free(q);
}

static entry *find(pp_workq *q, const char *id)
{
    for (int i = 0; i < q->cap; i++)
        if (q->e[i].used && strcmp(q->e[i].id, id) == 0)
            return &q->e[i];
    return NULL;
}

static int put(pp_workq *q, const char *id, int64_t due_ms)
{
    for (int i = 0; i < q->cap; i++)
        if (!q->e[i].used) {
            entry *e = &q->e[i];
            memcpy(e->id, id, strlen(id) + 1);
            e->due_ms = due_ms;
            e->used = 1;
            e->in_flight = 0;
            pthread_cond_broadcast(&q->cv);
            return 1;
        }
    return -1;
}

int pp_workq_add(pp_workq *q, const char *id, int64_t due_ms)
{
    if (strlen(id) >= PP_ID_CAP)
        return -1;
    pthread_mutex_lock(&q->mu);
    int rc = find(q, id) != NULL ? 0 : put(q, id, due_ms);
    pthread_mutex_unlock(&q->mu);
    return rc;
}

int pp_workq_take(pp_workq *q, char id[PP_ID_CAP])
{
    pthread_mutex_lock(&q->mu);
    for (;;) {
        if (q->closed) {
            pthread_mutex_unlock(&q->mu);
            return -1;
        }
        entry *best = NULL;
        for (int i = 0; i < q->cap; i++) {
            entry *e = &q->e[i];
            if (e->used && !e->in_flight && (best == NULL || e->due_ms < best->due_ms))
                best = e;
        }
        int64_t now = pl_now_ms();
        if (best != NULL && best->due_ms <= now) {
            best->in_flight = 1;
            memcpy(id, best->id, PP_ID_CAP);
            pthread_mutex_unlock(&q->mu);
            return 0;
        }
        if (best == NULL) {
            pthread_cond_wait(&q->cv, &q->mu);
        } else {
            /* Entries are due in Unix (realtime) ms, the condition variable's default clock. */
            struct timespec ts = {(time_t)(best->due_ms / 1000),
                                  (long)(best->due_ms % 1000) * 1000000L};
            pthread_cond_timedwait(&q->cv, &q->mu, &ts);
        }
    }
}

void pp_workq_done(pp_workq *q, const char *id, int64_t retry_at_ms)
{
    pthread_mutex_lock(&q->mu);
    entry *e = find(q, id);
    if (e != NULL) {
        if (retry_at_ms > 0) {
            e->in_flight = 0;
            e->due_ms = retry_at_ms;
            pthread_cond_broadcast(&q->cv);
        } else {
            e->used = 0;
        }
    }
    pthread_mutex_unlock(&q->mu);
}

void pp_workq_close(pp_workq *q)
{
    pthread_mutex_lock(&q->mu);
    q->closed = 1;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

int pp_workq_size(pp_workq *q)
{
    pthread_mutex_lock(&q->mu);
    int n = 0;
    for (int i = 0; i < q->cap; i++)
        n += q->e[i].used;
    pthread_mutex_unlock(&q->mu);
    return n;
}
