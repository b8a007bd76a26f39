/* webhook-dispatcher: POSTs the execution object to the agent's webhook_url at every status
 * change (docs/webhooks.md). At least once, in order per execution, signed, retried with
 * backoff, logged in webhook_deliveries (proto/sql/005_webhooks.sql), never changing an
 * execution.
 *
 * Shape: one event-loop thread (loop.c) claims due deliveries from Postgres (outbox.c), runs
 * them concurrently through libcurl's multi interface (deliver.c) and records their outcomes in
 * batches, its Postgres statements sent without blocking (pgasync.c); a bus thread (wake.c)
 * wakes the loop when a status changes; a poll is the durable fallback. Pure parts:
 * signature.c, backoff.c and wd_judge in deliver.c; the SSRF guard's address classes are
 * common/ssrf.c.
 */
#ifndef DISPATCHER_H
#define DISPATCHER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "db.h"
#include "metrics.h"
#include "service.h"

typedef struct {
    pl_common_config common;
    const char *http_port;
    long max_attempts;
    long backoff_base_ms;
    long backoff_cap_ms;
    long timeout_ms;
    long concurrency;
    long url_concurrency;
    long batch;
    long poll_ms;
    long sweep_ms;
    long drain_ms;
    int allow_private;
    int async_commit;
} wd_config;

/* settings.c */
extern const pl_cfg_opt wd_config_opts[];
extern const size_t wd_config_nopts;

/* A lease outlives the request timeout by this much: time to record the outcome. When a lease
 * runs out (the replica died), the delivery is due again for any replica. */
#define WD_LEASE_MARGIN_MS 5000
/* Response bytes read at most; the rest is dropped (only the status matters). */
#define WD_MAX_RESPONSE (64 * 1024)

/* ---- signature.c ---- */

/* Room for "t=<unix>,v1=<64 hex>" and its NUL. */
#define WD_SIG_CAP 96

/* The X-Parley-Signature value: t=<t>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>. Returns 0, or
 * PL_ERR_NOMEM. */
int wd_signature(const char *secret, long long t, const char *body, size_t len,
                 char out[WD_SIG_CAP]);

/* ---- backoff.c ---- */

/* The wait before the next attempt after `failed` attempts have failed (failed >= 1):
 * base * 3^(failed-1), capped at cap, then scaled by a jitter factor in [0.8, 1.2) taken from
 * unit (a uniform random number in [0, 1)). */
int64_t wd_backoff_ms(int failed, int64_t base_ms, int64_t cap_ms, double unit);

/* A uniform random number in [0, 1) (thread-safe, not for secrets). */
double wd_random_unit(void);

/* ---- the service ---- */

/* One claimed delivery: what outbox.c read, then what deliver.c did with it. */
typedef struct wd_delivery {
    long long event_id;
    int claims;   /* fencing token of this claim */
    int attempts; /* attempts finished before this one */
    char execution_id[40];
    char status[24];
    char *url;
    char *body;
    size_t body_len;
    char *secret;
    int64_t created_ms; /* when the event was recorded (Unix ms) */

    /* deliver.c */
    void *http;                       /* the wd_http running it */
    void *easy;                       /* CURL * */
    void *headers;                    /* struct curl_slist * */
    int guard_allowed, guard_refused; /* addresses the SSRF guard let through / refused */
    char refused[200];                /* the guard's reason for the last address it refused */
    char curl_error[256];             /* CURLOPT_ERRORBUFFER */
    char response_head[160];          /* first bytes of the response body, for the log */
    size_t response_len;
    int64_t started_us;                      /* CLOCK_MONOTONIC */
    struct wd_delivery *prev_run, *next_run; /* deliver.c's list of running transfers */
    struct wd_delivery *next;                /* the list it is on: claimed, done */
} wd_delivery;

void wd_delivery_free(wd_delivery *d);

/* The outcome of one attempt, as webhook_finish records it. */
typedef enum { WD_DELIVERED, WD_RETRY, WD_DEAD } wd_outcome;

typedef struct {
    long long event_id;
    int claims;
    int code;        /* HTTP status; 0 when none arrived */
    char error[300]; /* empty when delivered */
    wd_outcome outcome;
    int64_t delay_ms; /* WD_RETRY: wait before the next attempt */
} wd_result;

typedef struct wd wd;

/* ---- pgasync.c: one statement at a time, without blocking the loop ---- */

typedef struct {
    pl_db *db;
    pl_dbconn *c;   /* taken from the pool for the life of the loop */
    int busy;       /* a statement is in flight */
    int want_write; /* part of it is still to be sent */
    int pid;        /* the backend the statements were prepared on */
    int async_commit;
    const pl_db_stmt *const *stmts;
    int nstmts;
} wd_pg;

/* Takes a connection, turns synchronous_commit off when async_commit, prepares stmts and makes
 * it non-blocking. 0 or PL_ERR_DB (the connection is kept; wd_pg_send retries the set-up). */
int wd_pg_open(wd_pg *p, pl_db *db, int async_commit, const pl_db_stmt *const *stmts, int n);
void wd_pg_close(wd_pg *p);
/* Sends one of the prepared statements. 0, or PL_ERR_DB (nothing in flight). */
int wd_pg_send(wd_pg *p, const pl_db_stmt *st, const char *const *params);
/* When a statement is in flight: 1 and the socket to poll (for writing too when *write). */
int wd_pg_fd(const wd_pg *p, int *fd, int *write);
/* Reads what has arrived. 1 when the statement is done: *out is its result (the caller's to
 * PQclear), or NULL when the connection failed; 0 while it is still running. */
int wd_pg_result(wd_pg *p, PGresult **out);
/* The connection for a blocking call (pl_db_exec) when no statement is in flight, else NULL. */
pl_dbconn *wd_pg_conn(wd_pg *p);

/* ---- outbox.c: the durable state in webhook_deliveries ---- */

/* The statements the loop runs asynchronously (to prepare with wd_pg_open). */
extern const pl_db_stmt *const wd_outbox_async_stmts[];
extern const int wd_outbox_nasync;

/* Claims up to max due deliveries (oldest due first, only the first pending event of each
 * execution, none whose URL is in the `saturated` list) under a lease of timeout + margin.
 * _claim runs it and appends the rows to *out, returning how many or a negative pl_err;
 * _claim_send starts it on p, and _claimed reads its result (a NULL result is PL_ERR_DB). */
int wd_outbox_claim(wd *w, pl_dbconn *c, int max, const char *const *saturated, int nsaturated,
                    wd_delivery **out);
int wd_outbox_claim_send(wd *w, wd_pg *p, int max, const char *const *saturated, int nsaturated);
int wd_outbox_claimed(PGresult *r, wd_delivery **out);

/* Records the outcomes (one statement) and unblocks the next event of executions whose
 * delivery ended. Outcomes that cannot be recorded are lost harmlessly: the leases run out and
 * the deliveries are attempted again, which at-least-once allows. _finish runs it (0 or
 * PL_ERR_DB); _finish_send starts it on p and _finished reads its result: the number of events
 * it unblocked (due now), or PL_ERR_DB. */
int wd_outbox_finish(pl_dbconn *c, const wd_result *res, int n);
int wd_outbox_finish_send(wd_pg *p, const wd_result *res, int n);
int wd_outbox_finished(PGresult *r, int n);

/* Gives claimed deliveries back without an outcome (at shutdown): they are due again at once. */
int wd_outbox_release(pl_dbconn *c, const wd_delivery *list);

/* Milliseconds until the earliest pending delivery is due (0 if one is due now), or -1 when
 * none is pending. Blocked rows do not count. */
int64_t wd_outbox_next_due_ms(pl_dbconn *c);

/* Unblocks events whose predecessors all ended but which no finish unblocked (repair; normally
 * finds nothing). Returns how many, or a negative pl_err. */
int wd_outbox_sweep(pl_dbconn *c);

/* ---- deliver.c: HTTP through libcurl's multi interface ---- */

typedef struct wd_http wd_http;

wd_http *wd_http_new(const wd_config *cfg);
void wd_http_free(wd_http *h);
/* Wakes wd_http_wait from any thread. */
void wd_http_wakeup(wd_http *h);
/* Starts the POST of d (which the transfer now references until it completes). 0, or a
 * negative pl_err with a reason in d->curl_error (then nothing was started). */
int wd_http_start(wd_http *h, wd_delivery *d);
/* Drives transfers; for up to max completed ones fills done[i] (the delivery, the caller's
 * again) and res[i] (its judged outcome; delay_ms left 0). Returns the number completed. */
int wd_http_progress(wd_http *h, wd_delivery **done, wd_result *res, int max);
/* Waits up to timeout_ms for activity on a transfer or on one of the n extra sockets (fds[i],
 * for reading, and for writing too when writes[i]), or for a wakeup. */
void wd_http_wait(wd_http *h, int timeout_ms, const int *fds, const int *writes, int n);
/* Cancels every running transfer and returns them as a list (for release). */
wd_delivery *wd_http_cancel_all(wd_http *h);
int wd_http_running(const wd_http *h);

/* Judges a finished attempt: delivered, retry or dead, with the reason. Pure (deliver.c):
 *   curl_code  CURLcode of the transfer, http_code the status received (0: none),
 *   refused    the SSRF guard's reason or "" when it refused nothing,
 *   response   the first bytes of the body (for the log), location the redirect target or NULL,
 *   attempts   attempts finished before this one, max_attempts the limit. */
void wd_judge(int curl_code, long http_code, const char *curl_error, const char *refused,
              const char *response, const char *location, int attempts, int max_attempts,
              long timeout_ms, wd_result *out);

/* ---- wake.c: the bus subscription that wakes the loop ---- */

typedef struct wd_wake wd_wake;
wd_wake *wd_wake_start(wd *w);
void wd_wake_stop(wd_wake *k);

/* ---- loop.c ---- */

struct wd {
    wd_config cfg;
    pl_service svc;
    wd_http *http;
    atomic_int woken; /* set by wake.c: a status changed; claim now */
    pl_metric *delivered, *retried, *dead, *refused, *claimed, *inflight, *db_errors;
    pl_histogram *attempt_seconds, *lag_seconds, *claim_seconds, *finish_seconds;
};

/* Runs until *stop, then drains: no new claims, in-flight deliveries finish within drain_ms,
 * whatever is still running then is released for another replica. */
void wd_run(wd *w, volatile int *stop);

#endif
