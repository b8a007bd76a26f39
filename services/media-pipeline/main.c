/* media-pipeline: wiring only. Configuration, connections, speech engines, the job pool, the
 * loops, the relay endpoint, the worker registry, health endpoints, signals and the drain. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "error.h"
#include "http.h"
#include "log.h"
#include "mp.h"
#include "queue.h"

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static int ready(void *app, char *why, size_t cap)
{
    mp *m = app;
    if (atomic_load(&m->draining)) {
        snprintf(why, cap, "draining");
        return -1;
    }
    return pl_service_ready(&m->svc, why, cap);
}

static void init_metrics(mp_stats *s)
{
    s->calls = pl_metric_counter("pl_pipeline_calls_total", NULL, "calls started");
    s->calls_live = pl_metric_gauge("pl_pipeline_calls_live", NULL, "calls being served");
    s->calls_refused =
        pl_metric_counter("pl_pipeline_calls_refused_total", NULL, "START records refused");
    s->turns = pl_metric_counter("pl_pipeline_turns_total", NULL, "caller turns answered");
    s->bargeins = pl_metric_counter("pl_pipeline_bargeins_total", NULL, "barge-ins");
    s->hangups = pl_metric_counter("pl_pipeline_hangups_total", NULL, "calls the agent ended");
    s->frames_in = pl_metric_counter("pl_pipeline_frames_total", "dir=\"in\"", "20 ms frames");
    s->frames_out = pl_metric_counter("pl_pipeline_frames_total", "dir=\"out\"", "20 ms frames");
    s->relay_bad =
        pl_metric_counter("pl_pipeline_relay_malformed_total", NULL, "truncated relay messages");
    s->relay_unknown = pl_metric_counter("pl_pipeline_relay_unknown_total", NULL,
                                         "records for calls not served here");
    s->stt_dropped =
        pl_metric_counter("pl_pipeline_stt_dropped_total", NULL, "frames the transcriber refused");
    s->llm_errors =
        pl_metric_counter("pl_pipeline_provider_errors_total", "kind=\"llm\"", "provider failures");
    s->tts_errors = pl_metric_counter("pl_pipeline_provider_errors_total", "kind=\"synthesizer\"",
                                      "provider failures");
    s->stt_errors = pl_metric_counter("pl_pipeline_provider_errors_total", "kind=\"transcriber\"",
                                      "provider failures");
}

static int open_engines(mp *m)
{
    mp_stt_local_config sc = {
        .max_decoders = (int)m->cfg.stt_decoders, .preload = 1, .preload_lm = 1};
    if (mp_stt_local_new(&sc, &m->stt) != PL_OK) {
        PL_ERROR("local transcriber: models missing under %s", MP_STT_LOCAL_MODEL_DIR);
        return -1;
    }
    if (mp_tts_local_new(&m->tts) != PL_OK) {
        PL_ERROR("local synthesizer could not start");
        return -1;
    }
    return 0;
}

static int start_loops(mp *m)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    m->nloops = (int)(m->cfg.loops > 0 ? m->cfg.loops : (cores > 0 ? cores : 1));
    m->loops = calloc((size_t)m->nloops, sizeof(mp_loop *));
    if (m->loops == NULL)
        return -1;
    for (int i = 0; i < m->nloops; i++) {
        m->loops[i] = mp_loop_new(m, i);
        if (m->loops[i] == NULL || mp_loop_start(m->loops[i]) != PL_OK)
            return -1;
    }
    return 0;
}

static int live_calls(mp *m)
{
    int n = 0;
    for (int i = 0; i < m->nloops; i++)
        n += mp_loop_calls(m->loops[i]);
    return n;
}

/* SIGTERM: leave the registry, let live calls finish (up to drain_ms), then end the rest. */
static void drain(mp *m)
{
    atomic_store(&m->draining, 1);
    mp_registry_withdraw(m->registry);
    int64_t end = pl_now_ms() + m->cfg.drain_ms;
    int n;
    while ((n = live_calls(m)) > 0 && pl_now_ms() < end)
        usleep(100 * 1000);
    if (n > 0)
        PL_WARN("drain: %d calls still live after %ld ms; hanging them up", n, m->cfg.drain_ms);
    for (int i = 0; i < m->nloops; i++)
        mp_loop_stop(m->loops[i], n > 0);
    for (int i = 0; i < m->nloops; i++)
        mp_loop_join(m->loops[i]);
}

static void shut(mp *m)
{
    if (m->relay != NULL)
        pl_relay_close(m->relay); /* no record reaches a loop after this */
    for (int i = 0; m->loops != NULL && i < m->nloops; i++)
        if (m->loops[i] != NULL)
            mp_loop_stop(m->loops[i], 1);
    for (int i = 0; m->loops != NULL && i < m->nloops; i++)
        mp_loop_join(m->loops[i]);
    mp_jobs_free(m->jobs); /* runs the last pumps and stores, which may post to loops */
    for (int i = 0; m->loops != NULL && i < m->nloops; i++)
        mp_loop_free(m->loops[i]);
    free(m->loops);
    mp_registry_stop(m->registry);
    mp_stt_engine_free(m->stt);
    mp_tts_engine_free(m->tts);
    pl_service_close(&m->svc);
}

int main(int argc, char **argv)
{
    static mp m;
    int rc = pl_config_cli(argc, argv, "media-pipeline", "runs the conversations of answered calls",
                           mp_config_opts, mp_config_nopts, &m.cfg);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    pl_log_init("media-pipeline", m.cfg.common.log_level);
    char err[300];
    if (mp_config_check(&m.cfg, err, sizeof(err)) != 0) {
        PL_ERROR("%s", err);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    init_metrics(&m.stats);
    if (pl_service_open(&m.svc, "media-pipeline", &m.cfg.common, 4, 2) != PL_OK)
        return 1;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int jobs = (int)(m.cfg.jobs > 0 ? m.cfg.jobs : (cores > 1 ? cores : 2));
    if (open_engines(&m) != 0 || (m.jobs = mp_jobs_new(jobs)) == NULL || start_loops(&m) != 0) {
        shut(&m);
        return 1;
    }
    m.relay = pl_relay_open(m.cfg.relay_listen, m.cfg.relay_host, mp_relay_recv, &m);
    if (m.relay == NULL || (m.registry = mp_registry_start(&m)) == NULL) {
        shut(&m);
        return 1;
    }
    pl_http_opts ho = {.port = m.cfg.http_port,
                       .threads = 4,
                       .keepalive_ms = 5000,
                       .max_body = 4096,
                       .ready = ready};
    pl_http *http = pl_http_start(&ho, NULL, 0, &m);
    if (http == NULL) {
        shut(&m);
        return 1;
    }
    PL_INFO("media-pipeline %s ready: relay %s, %d loops, %d job threads, capacity %ld", m.svc.id,
            pl_relay_url(m.relay), m.nloops, jobs, m.cfg.capacity);
    while (!stopping)
        usleep(100 * 1000);
    PL_INFO("media-pipeline stopping: draining %d live calls", live_calls(&m));
    drain(&m);
    pl_http_stop(http);
    shut(&m);
    curl_global_cleanup();
    return 0;
}
