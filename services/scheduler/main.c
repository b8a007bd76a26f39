/* scheduler: wiring only. Configuration, connections, health endpoints, the loop, signals. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "http.h"
#include "log.h"
#include "scheduler.h"

static volatile int stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static int ready(void *app, char *why, size_t cap)
{
    scheduler *s = app;
    return pl_service_ready(&s->svc, why, cap);
}

static void init_metrics(scheduler *s)
{
    s->jobs = pl_metric_counter("pl_scheduler_jobs_total", NULL, "dial jobs handled");
    s->dialed = pl_metric_counter("pl_scheduler_dials_total", NULL, "calls handed to the gateway");
    s->deferred_cap = pl_metric_counter("pl_scheduler_deferred_total", "reason=\"concurrency\"",
                                        "dial jobs deferred");
    s->deferred_hours = pl_metric_counter("pl_scheduler_deferred_total", "reason=\"calling_hours\"",
                                          "dial jobs deferred");
    s->balance_low =
        pl_metric_counter("pl_scheduler_balance_low_total", NULL, "calls refused for balance");
    s->dropped = pl_metric_counter("pl_scheduler_dropped_total", NULL,
                                   "obsolete dial jobs (stopped, already dialled)");
    s->swept = pl_metric_counter("pl_scheduler_swept_total", NULL, "jobs re-issued by sweeps");
}

int main(int argc, char **argv)
{
    scheduler s;
    memset(&s, 0, sizeof(s));
    int rc = pl_config_cli(argc, argv, "scheduler", "decides when executions dial",
                           scheduler_config_opts, scheduler_config_nopts, &s.cfg);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    pl_log_init("scheduler", s.cfg.common.log_level);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    init_metrics(&s);
    /* a connection of each kind per worker, and one for health checks and the bus registry */
    int pool = (int)s.cfg.workers + 1;
    if (pl_service_open(&s.svc, "scheduler", &s.cfg.common, pool, pool) != PL_OK)
        return 1;
    s.db = s.svc.db;
    s.redis = s.svc.redis;
    s.bus = s.svc.bus;
    s.consumer = s.svc.id;
    pl_http_opts ho = {.port = s.cfg.http_port,
                       .threads = 4,
                       .keepalive_ms = 5000,
                       .max_body = 4096,
                       .ready = ready};
    pl_http *http = pl_http_start(&ho, NULL, 0, &s);
    if (http == NULL)
        return 1;
    PL_INFO("scheduler %s ready", s.consumer);
    scheduler_run(&s, &stopping); /* returns after the job in hand is done */
    PL_INFO("scheduler stopping");
    pl_http_stop(http);
    pl_service_close(&s.svc);
    return 0;
}
