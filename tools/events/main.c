/* parley-events: prints every event on the bus whose topic starts with one of the given prefixes,
 * one line each: "<topic> <payload>". For operators (watch a deployment) and for tests (see what
 * a service published). Settings: PL_REDIS_URL, PL_REDIS_PREFIX.
 *
 *   parley-events [prefix ...]      (default: every topic)
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "bus.h"
#include "error.h"
#include "log.h"

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

int main(int argc, char **argv)
{
    pl_log_init("events", getenv("PL_LOG_LEVEL"));
    const char *url = getenv("PL_REDIS_URL");
    const char *prefix = getenv("PL_REDIS_PREFIX");
    pl_redis *r = pl_redis_open(url != NULL ? url : "redis://127.0.0.1:6379",
                                prefix != NULL ? prefix : "parley:", 2);
    if (r == NULL)
        return 1;
    static const char *const all[1] = {""};
    const char *const *prefixes = argc > 1 ? (const char *const *)(argv + 1) : all;
    pl_bus_sub *s = pl_bus_sub_open(r, prefixes, argc > 1 ? argc - 1 : 1, NULL);
    if (s == NULL)
        return 1;
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    fprintf(stderr, "parley-events: subscribed (%d publishers)\n", pl_bus_sub_peers(s));
    while (!stopping) {
        char *msg;
        size_t tl;
        const char *payload;
        int rc = pl_bus_recv(s, 200, &msg, &tl, &payload);
        if (rc == PL_ERR_TIMEOUT)
            continue;
        if (rc != PL_OK)
            break;
        printf("%s\n", msg);
        fflush(stdout);
        free(msg);
    }
    pl_bus_sub_close(s);
    pl_redis_close(r);
    return 0;
}
