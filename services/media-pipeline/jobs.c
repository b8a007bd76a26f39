/* The job pool: a fixed set of threads taking intrusive jobs in FIFO order. Posting never
 * allocates (the job is the caller's), so an STT pump woken fifty times a second costs a lock,
 * not a malloc. */
#include <pthread.h>
#include <stdlib.h>

#include "log.h"
#include "mp.h"

struct mp_jobs {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    mp_job *head, *tail;
    int stopping;
    int n;
    pthread_t *threads;
};

static void *run(void *arg)
{
    mp_jobs *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->head == NULL && !p->stopping)
            pthread_cond_wait(&p->cv, &p->mu);
        mp_job *j = p->head;
        if (j == NULL)
            break; /* stopping and drained */
        p->head = j->next;
        if (p->head == NULL)
            p->tail = NULL;
        pthread_mutex_unlock(&p->mu);
        j->next = NULL;
        j->fn(j);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

mp_jobs *mp_jobs_new(int threads)
{
    mp_jobs *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->threads = calloc((size_t)threads, sizeof(pthread_t));
    if (p->threads == NULL) {
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&p->threads[i], NULL, run, p) != 0) {
            PL_ERROR("jobs: cannot start thread %d", i);
            break;
        }
        p->n++;
    }
    if (p->n == 0) {
        mp_jobs_free(p);
        return NULL;
    }
    return p;
}

void mp_jobs_post(mp_jobs *p, mp_job *j)
{
    j->next = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->tail != NULL)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

void mp_jobs_free(mp_jobs *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n; i++)
        pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->threads);
    free(p);
}
