/* postprocessor: wiring only. Configuration, pricing, connections, workers, health endpoints,
 * the listen-and-sweep loop, signals. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "http.h"
#include "httpc.h"
#include "log.h"
#include "pp.h"
#include "recording.h"

static volatile int stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static int ready(void *app, char *why, size_t cap)
{
    pp *p = app;
    return pl_service_ready(&p->svc, why, cap);
}

static void init_metrics(pp_stats *s)
{
    s->completed =
        pl_metric_counter("pl_postprocess_completed_total", NULL, "executions moved to completed");
    s->priced_zero = pl_metric_counter("pl_postprocess_zero_cost_total", NULL,
                                       "unanswered executions given a zero cost");
    s->without_media = pl_metric_counter("pl_postprocess_without_media_total", NULL,
                                         "completed without the media-pipeline's figures");
    s->contended = pl_metric_counter("pl_postprocess_contended_total", NULL,
                                     "jobs skipped: another replica held the execution");
    s->task_failures = pl_metric_counter("pl_postprocess_task_failures_total", NULL,
                                         "extractions or summaries recorded as failed");
    s->errors = pl_metric_counter("pl_postprocess_errors_total", NULL,
                                  "jobs that failed (database) and are tried again later");
    s->queued = pl_metric_gauge("pl_postprocess_queued", NULL, "executions queued or in work");
    s->latency = pl_histogram_new("pl_postprocess_seconds", NULL,
                                  "call-disconnected committed to completed committed");
}

int main(int argc, char **argv)
{
    static pp app;
    int rc = pl_config_cli(argc, argv, "postprocessor",
                           "after call-disconnected: transcript, cost, extraction, recording URL, "
                           "completed",
                           pp_config_opts, pp_config_nopts, &app.cfg);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    pl_log_init("postprocessor", app.cfg.common.log_level);
    char err[600];
    if (pp_config_check(&app.cfg, err, sizeof(err)) != 0 ||
        pp_pricing_load(app.cfg.pricing_file, &app.pricing, err, sizeof(err)) != 0) {
        fprintf(stderr, "postprocessor: %s\n", err);
        PL_ERROR("%s", err);
        return 2;
    }
    if (strcmp(app.cfg.recording_key, PL_RECORDING_DEFAULT_KEY) == 0)
        PL_WARN("PL_RECORDING_SIGNING_KEY is the built-in default: fine locally, but anyone can "
                "sign recording URLs; set a secret in production");
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    pl_httpc_init();
    init_metrics(&app.stats);
    if (pl_service_open(&app.svc, "postprocessor", &app.cfg.common, (int)app.cfg.workers + 2, 2) !=
        PL_OK)
        return 1;
    app.q = pp_workq_new(4096);
    if (app.q == NULL || pp_workers_start(&app) != PL_OK)
        return 1;
    pl_http_opts ho = {.port = app.cfg.http_port,
                       .threads = 4,
                       .keepalive_ms = 5000,
                       .max_body = 4096,
                       .ready = ready};
    pl_http *http = pl_http_start(&ho, NULL, 0, &app);
    if (http == NULL)
        return 1;
    PL_INFO("postprocessor %s ready: %ld worker(s), pricing %s", app.svc.id, app.cfg.workers,
            app.cfg.pricing_file);
    pp_run(&app, &stopping); /* returns once the jobs in hand are done */
    PL_INFO("postprocessor stopping");
    pl_http_stop(http);
    pp_workq_free(app.q);
    pl_service_close(&app.svc);
    pp_pricing_free(&app.pricing);
    return 0;
}
