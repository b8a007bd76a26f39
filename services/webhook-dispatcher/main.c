/* webhook-dispatcher: wiring only. Configuration, connections, health endpoints, the bus
 * wake-up, the loop, signals. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "dispatcher.h"
#include "error.h"
#include "http.h"
#include "log.h"

static volatile int stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static int ready(void *app, char *why, size_t cap)
{
    wd *w = app;
    return pl_service_ready(&w->svc, why, cap);
}

static void init_metrics(wd *w)
{
    w->delivered = pl_metric_counter("pl_webhook_attempts_total", "outcome=\"delivered\"",
                                     "webhook attempts by outcome");
    w->retried = pl_metric_counter("pl_webhook_attempts_total", "outcome=\"retry\"",
                                   "webhook attempts by outcome");
    w->dead = pl_metric_counter("pl_webhook_attempts_total", "outcome=\"dead\"",
                                "webhook attempts by outcome");
    w->refused = pl_metric_counter("pl_webhook_ssrf_refused_total", NULL,
                                   "deliveries refused by the SSRF guard");
    w->claimed = pl_metric_counter("pl_webhook_claims_total", NULL, "deliveries claimed");
    w->db_errors =
        pl_metric_counter("pl_webhook_db_errors_total", NULL, "claims or outcomes not recorded");
    w->inflight = pl_metric_gauge("pl_webhook_inflight", NULL, "deliveries in flight");
    w->attempt_seconds =
        pl_histogram_new("pl_webhook_attempt_seconds", NULL, "duration of one HTTP attempt");
    w->lag_seconds = pl_histogram_new("pl_webhook_delivery_lag_seconds", NULL,
                                      "status change committed to webhook delivered");
    w->claim_seconds = pl_histogram_new("pl_webhook_db_seconds", "op=\"claim\"",
                                        "Postgres round trips of the loop");
    w->finish_seconds = pl_histogram_new("pl_webhook_db_seconds", "op=\"finish\"",
                                         "Postgres round trips of the loop");
}

int main(int argc, char **argv)
{
    static wd w;
    int rc = pl_config_cli(argc, argv, "webhook-dispatcher",
                           "delivers every status change to the agent's webhook_url",
                           wd_config_opts, wd_config_nopts, &w.cfg);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    pl_log_init("webhook-dispatcher", w.cfg.common.log_level);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    init_metrics(&w);
    /* Postgres: the loop's two connections (claims, outcomes) and one for /readyz. */
    if (pl_service_open(&w.svc, "webhook-dispatcher", &w.cfg.common, 3, 1) != PL_OK)
        return 1;
    w.http = wd_http_new(&w.cfg);
    if (w.http == NULL)
        return 1;
    pl_http_opts ho = {.port = w.cfg.http_port,
                       .threads = 4,
                       .keepalive_ms = 5000,
                       .max_body = 4096,
                       .ready = ready};
    pl_http *health = pl_http_start(&ho, NULL, 0, &w);
    if (health == NULL)
        return 1;
    wd_wake *wake = wd_wake_start(&w);
    if (wake == NULL)
        PL_WARN("webhooks: no bus wake-up; deliveries start within PL_WEBHOOK_POLL_MS");
    if (w.cfg.allow_private)
        PL_WARN("webhooks: PL_WEBHOOK_ALLOW_PRIVATE=1: loopback and private targets allowed");
    PL_INFO("webhook-dispatcher %s ready", w.svc.id);
    wd_run(&w, &stopping); /* returns after in-flight deliveries finished or were given back */
    PL_INFO("webhook-dispatcher stopping");
    wd_wake_stop(wake);
    pl_http_stop(health);
    wd_http_free(w.http);
    pl_service_close(&w.svc);
    curl_global_cleanup();
    return 0;
}
