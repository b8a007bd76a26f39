#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"

/* A waiter parks on its own condition variable; release hands the item straight to the oldest
 * waiter. First come, first served (no starvation, so a bounded tail latency under load), and
 * one wake-up per release instead of a herd. */
typedef struct waiter {
    pthread_cond_t cv;
    void *item;
    struct waiter *next;
} waiter;

struct pl_pool {
    pthread_mutex_t mu;
    int nfree;
    void **free_items; /* a stack: the most recently used item is reused first (warm caches) */
    waiter *head, *tail;
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
    return p;
}

void pl_pool_free(pl_pool *p)
{
    if (p == NULL)
        return;
    pthread_mutex_destroy(&p->mu);
    free(p->free_items);
    free(p);
}

void *pl_pool_acquire(pl_pool *p)
{
    pthread_mutex_lock(&p->mu);
    if (p->nfree > 0 && p->head == NULL) {
        void *item = p->free_items[--p->nfree];
        pthread_mutex_unlock(&p->mu);
        return item;
    }
    waiter w = {.item = NULL, .next = NULL};
    pthread_cond_init(&w.cv, NULL);
    if (p->tail != NULL)
        p->tail->next = &w;
    else
        p->head = &w;
    p->tail = &w;
    while (w.item == NULL)
        pthread_cond_wait(&w.cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
    pthread_cond_destroy(&w.cv);
    return w.item;
}

void pl_pool_release(pl_pool *p, void *item)
{
    pthread_mutex_lock(&p->mu);
    waiter *w = p->head;
    if (w != NULL) {
        p->head = w->next;
        if (p->head == NULL)
            p->tail = NULL;
        w->item = item; /* hand-off: the waiter owns it from here */
        pthread_cond_signal(&w->cv);
    } else {
        p->free_items[p->nfree++] = item;
    }
    pthread_mutex_unlock(&p->mu);
}
