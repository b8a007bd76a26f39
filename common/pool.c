#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"

struct pl_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int nfree;
    void **free_items; /* a stack: the most recently used item is reused first (warm caches) */
};

pl_pool *pl_pool_new(void *const *items, int n)
{
    pl_pool *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->free_items = calloc((size_t)n, sizeof(void *));
    if (p->free_items == NULL) {
        free(p);
        return NULL;
    }
    memcpy(p->free_items, items, (size_t)n * sizeof(void *));
    p->nfree = n;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    return p;
}

void pl_pool_free(pl_pool *p)
{
    if (p == NULL)
        return;
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->free_items);
    free(p);
}

void *pl_pool_acquire(pl_pool *p)
{
    pthread_mutex_lock(&p->mu);
    while (p->nfree == 0)
        pthread_cond_wait(&p->cv, &p->mu);
    void *item = p->free_items[--p->nfree];
    pthread_mutex_unlock(&p->mu);
    return item;
}

void pl_pool_release(pl_pool *p, void *item)
{
    pthread_mutex_lock(&p->mu);
    p->free_items[p->nfree++] = item;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}
