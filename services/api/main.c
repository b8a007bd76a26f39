/* api: wiring only. Configuration, connections, migrations, event bus, HTTP, signals. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
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
    api_ctx app;
    memset(&app, 0, sizeof(app));
    int rc = pl_config_cli(argc, argv, "api", "the Bolna-compatible REST API", api_config_opts,
                           api_config_nopts, &app.cfg);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    pl_log_init("api", app.cfg.common.log_level);
    char err[600];
    if (api_config_check(&app.cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "api: %s\n", err);
        PL_ERROR("%s", err);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);

    if (pl_service_open(&app.svc, "api", &app.cfg.common, (int)app.cfg.db_pool,
                        (int)app.cfg.redis_pool) != PL_OK)
        return 1;
    app.db = app.svc.db;
    app.redis = app.svc.redis;
    app.bus = app.svc.bus;

    app.executions = exec_cache_new(16384, app.cfg.exec_cache_ms);
    if (app.cfg.rate_limit > 0 &&
        (app.limits = pl_ratelimit_new((double)app.cfg.rate_limit, (double)app.cfg.rate_burst,
                                       16384)) == NULL)
        return 1;
    if (app.executions == NULL ||
        exec_cache_watch(app.executions, app.redis, pl_bus_pub_url(app.bus)) != PL_OK)
        return 1;

    pl_http_opts ho = {
        .port = app.cfg.http_port,
        .threads = (int)app.cfg.http_threads,
        .keepalive_ms = (int)app.cfg.keepalive_ms,
        .max_body = (size_t)app.cfg.max_body,
        .ready = api_ready,
    };
    pl_http *http = pl_http_start(&ho, api_routes, api_nroutes, &app);
    if (http == NULL)
        return 1;
    PL_INFO("api ready");
    while (!stopping)
        pause();
    PL_INFO("api stopping: finishing requests in flight");
    pl_http_stop(http); /* returns once in-flight requests are done */
    exec_cache_free(app.executions);
    pl_ratelimit_free(app.limits);
    pl_service_close(&app.svc);
    PL_INFO("api stopped");
    return 0;
}
