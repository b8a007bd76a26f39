/* router: the relay's receive callback. A gateway's message holds records of many calls; each
 * goes to the inbox of the loop that owns its call (a call's loop is a hash of its execution id,
 * so no table is needed and a call's records always reach the same loop, in order). */
#include "log.h"
#include "mp.h"

#define MAX_LOOPS 256

static int loop_index(const mp *app, const uint8_t call[16])
{
    /* The last bytes of a uuid (v4 or v7) are random. */
    uint32_t h =
        (uint32_t)call[12] << 24 | (uint32_t)call[13] << 16 | (uint32_t)call[14] << 8 | call[15];
    return (int)(h % (uint32_t)app->nloops);
}

mp_loop *mp_loop_of(mp *app, const uint8_t call[16])
{
    return app->loops[loop_index(app, call)];
}

void mp_relay_recv(void *user, const uint8_t *msg, size_t len)
{
    mp *app = user;
    unsigned char touched[MAX_LOOPS] = {0};
    size_t off = 0;
    pl_relay_rec r;
    int rc;
    while ((rc = pl_relay_next(msg, len, &off, &r)) == 1) {
        int i = loop_index(app, r.call);
        mp_loop_deliver(app->loops[i], &r);
        touched[i] = 1;
    }
    if (rc < 0) {
        pl_metric_add(app->stats.relay_bad, 1);
        PL_WARN("relay: a truncated record at byte %zu of a %zu-byte message; rest dropped", off,
                len);
    }
    for (int i = 0; i < app->nloops; i++)
        if (touched[i])
            mp_loop_wake(app->loops[i]);
}
