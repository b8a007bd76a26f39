/* Wakes the loop when something may have become deliverable: a status change anywhere
 * ("exec.status.", published by every writer after its commit) or a redelivery requested
 * through the api ("webhook."). pub/sub may drop messages; the loop's poll is the fallback, so
 * a lost event delays a delivery by at most PL_WEBHOOK_POLL_MS and never loses it. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "bus.h"
#include "dispatcher.h"
#include "error.h"
#include "log.h"

struct wd_wake {
    wd *w;
    pl_bus_sub *sub;
    pthread_t thread;
    atomic_int stop;
};

static void *wake_main(void *arg)
{
    wd_wake *k = arg;
    while (!atomic_load(&k->stop)) {
        char *msg;
        size_t tlen;
        const char *payload;
        if (pl_bus_recv(k->sub, 200, &msg, &tlen, &payload) != PL_OK)
            continue;
        free(msg);
        /* Many events, one wake-up: the loop claims everything due in one query. */
        if (atomic_exchange(&k->w->woken, 1) == 0)
            wd_http_wakeup(k->w->http);
    }
    return NULL;
}

wd_wake *wd_wake_start(wd *w)
{
    static const char *const topics[] = {"exec.status.", "webhook."};
    wd_wake *k = calloc(1, sizeof(*k));
    if (k == NULL)
        return NULL;
    k->w = w;
    k->sub = pl_bus_sub_open(w->svc.redis, topics, 2, pl_bus_pub_url(w->svc.bus));
    if (k->sub == NULL || pthread_create(&k->thread, NULL, wake_main, k) != 0) {
        PL_ERROR("webhooks: bus subscription failed");
        pl_bus_sub_close(k->sub);
        free(k);
        return NULL;
    }
    return k;
}

void wd_wake_stop(wd_wake *k)
{
    if (k == NULL)
        return;
    atomic_store(&k->stop, 1);
    pthread_join(k->thread, NULL);
    pl_bus_sub_close(k->sub);
    free(k);
}
