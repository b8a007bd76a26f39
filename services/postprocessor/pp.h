/* postprocessor: after call-disconnected, assembles the transcript, usage, costs, extracted
 * data, summary and recording URL, moves the execution to completed and debits the wallet, in
 * one transaction (docs/postprocess.md). Nothing here is real-time.
 *
 * Threads: the main thread listens to the bus ("exec.status.call-disconnected") and runs the
 * periodic sweep, both only queueing ids (workq.h); `workers` threads take ids and run one job
 * each at a time (job.c), blocking on Postgres and on LLM providers as they must.
 */
#ifndef PP_H
#define PP_H

#include <stdint.h>

#include "config.h"
#include "metrics.h"
#include "pricing.h"
#include "service.h"
#include "workq.h"

typedef struct {
    pl_common_config common;
    const char *http_port;
    const char *pricing_file;
    const char *public_api_url;
    const char *recording_key;
    long recording_ttl_s;
    long sweep_ms;
    long media_wait_ms;
    long workers;
    long llm_timeout_ms;
    long batch;
} pp_config;

typedef struct {
    pl_metric *completed;     /* executions moved to completed */
    pl_metric *priced_zero;   /* unanswered executions given a zero cost */
    pl_metric *without_media; /* completed without the pipeline's figures */
    pl_metric *contended;     /* jobs skipped: another replica holds the execution */
    pl_metric *task_failures; /* extraction/summarization recorded as failed */
    pl_metric *errors;        /* jobs that failed (database); tried again 10 s later */
    pl_metric *queued;        /* gauge: ids queued or in flight */
    pl_histogram *latency;    /* call-disconnected committed -> completed committed */
} pp_stats;

typedef struct {
    pp_config cfg;
    pl_service svc;
    pp_pricing pricing;
    pp_workq *q;
    pp_stats stats;
} pp;

/* settings.c */
extern const pl_cfg_opt pp_config_opts[];
extern const size_t pp_config_nopts;
/* Checks what the table cannot (URL shape); 0, or -1 with the variable named in err. */
int pp_config_check(const pp_config *c, char *err, size_t cap);

/* job.c: post-processes one execution if it is (still) in call-disconnected and no other
 * replica holds it. Sets *retry_at_ms (Unix ms) when the job must run again later (waiting for
 * the media-pipeline's figures, or 10 s after a database error, which is logged), else 0. */
void pp_job_run(pp *app, const char *execution_id, int64_t *retry_at_ms);

/* sweep.c: queues every execution waiting in call-disconnected, and gives executions that ended
 * unanswered their zero cost. Safe on every replica, at any time. */
void pp_sweep(pp *app);

/* loop.c: the workers, and the main thread's listen-and-sweep loop until *stop. On return the
 * workers have finished the jobs in hand and exited. */
int pp_workers_start(pp *app);
void pp_run(pp *app, volatile int *stop);

#endif
