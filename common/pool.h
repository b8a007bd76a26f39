/* A fixed set of reusable items (connections) shared by threads: acquire blocks until one is
 * free. The pool does not own the items; whoever filled it frees them after pl_pool_free. */
#ifndef PL_POOL_H
#define PL_POOL_H

typedef struct pl_pool pl_pool;

#define PL_POOL_MAX 512 /* most items one pool holds */

/* Copies the n item pointers. NULL on allocation failure. */
pl_pool *pl_pool_new(void *const *items, int n);
void pl_pool_free(pl_pool *p);
void *pl_pool_acquire(pl_pool *p);
void pl_pool_release(pl_pool *p, void *item);

#endif
