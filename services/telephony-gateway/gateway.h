/* telephony-gateway: everything carrier-specific (docs/dialing.md, step 3). Dial workers consume
 * the `telephony` stream and speak each carrier's REST API; civetweb serves the signed status
 * callbacks and answer documents; a second civetweb context accepts the carriers' media
 * WebSockets and turns their audio into 20 ms PCM16 frames.
 *
 * Threads and what blocks where:
 *   - PL_GATEWAY_WORKERS dial workers (dialer.c): block on XREADGROUP (≤ 1 s), Postgres, and a
 *     carrier REST call (≤ PL_CARRIER_TIMEOUT_MS);
 *   - one lease thread (live.c): every PL_LEASE_RENEW_MS one Postgres query and one Redis script
 *     per live call;
 *   - civetweb HTTP workers (callbacks.c): Postgres, Redis (delayed retry jobs, leases); never a
 *     carrier;
 *   - civetweb media workers (media.c), one per open WebSocket for the call's lifetime:
 *     Postgres and Redis at start, a carrier REST hang-up when a call cannot be served;
 *   - the media relay (relay.c): one nng receive thread writing the workers' audio, marks and
 *     clears to the carrier sockets (never Postgres, Redis or a carrier's REST API), and one
 *     flusher thread sending every worker its batch of records each 20 ms;
 *   - one control thread (control.c): the workers' HANGUP and STOP requests, which need
 *     Postgres and a carrier REST call.
 */
#ifndef GATEWAY_H
#define GATEWAY_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "bus.h"
#include "carrier.h"
#include "config.h"
#include "db.h"
#include "http.h"
#include "metrics.h"
#include "redis.h"
#include "relay.h"
#include "service.h"
#include "sink.h"
#include "state.h"

#define GW_TELEPHONY_STREAM "telephony"
#define GW_TELEPHONY_GROUP  "gateway"
#define GW_DIAL_STREAM      "dial"
#define GW_PIPELINE_WORKERS                                                                        \
    "pipeline:workers"                   /* hash: worker id -> {addr, load, capacity, expires} */
#define GW_MEDIA_CLAIMS "media:claimed:" /* + media_token: set NX when a WebSocket takes it */

typedef struct {
    pl_common_config common;
    const char *http_port;
    long http_threads;
    long keepalive_ms;
    long max_body;
    const char *public_url;
    const char *media_url;
    const char *media_port;
    long media_threads;
    long media_idle_ms;
    long media_max_message;
    const char *twilio_base_url, *twilio_sid, *twilio_token, *twilio_from;
    const char *plivo_base_url, *plivo_id, *plivo_token, *plivo_from;
    const char *exotel_base_url, *exotel_sid, *exotel_key, *exotel_token, *exotel_caller_id;
    long carrier_timeout_ms;
    long ring_timeout_s;
    long workers;
    long claim_idle_ms;
    long lease_ttl_ms;
    long lease_renew_ms;
    long retry_minute_ms;
    long db_pool;
    long drain_ms;
    const char *relay_listen; /* our media relay endpoint (nng PULL) */
    const char *relay_host;   /* host workers reach it at ("" = from relay_listen / 127.0.0.1) */
    const char *busy_message; /* said to an inbound caller over the account's cap */
    long ingest_timeout_ms;   /* the agent's ingest source, per inbound call */
    int ingest_allow_private; /* 1: no SSRF guard on the ingest source (tests, make run) */
    long ingest_max;          /* ingest requests in flight at most (each holds an HTTP worker) */
} gw_config;

typedef struct gw_live gw_live;
typedef struct gw_media gw_media;
typedef struct gw_dialer gw_dialer;
typedef struct gw_relay gw_relay;
typedef struct gw_control gw_control;
typedef struct gw_session gw_session;

/* Counters by carrier (index gw_carrier_id). */
typedef struct {
    pl_metric *dials_ok[GW_NCARRIERS], *dials_rejected[GW_NCARRIERS],
        *dials_unavailable[GW_NCARRIERS];
    pl_metric *cb_applied[GW_NCARRIERS], *cb_refused[GW_NCARRIERS], *cb_forged[GW_NCARRIERS],
        *cb_unknown[GW_NCARRIERS], *cb_invalid[GW_NCARRIERS];
    pl_metric *media_accepted[GW_NCARRIERS], *media_rejected[GW_NCARRIERS],
        *media_no_capacity[GW_NCARRIERS], *media_frames[GW_NCARRIERS];
    pl_metric *media_live, *live_calls, *jobs, *jobs_failed, *lease_lost, *hangups;
    /* media relay: messages and records each way; messages that could not be queued to a
     * worker; records for calls this process does not hold; malformed messages; the calls
     * workers ended (HANGUP) or gave up (STOP) */
    pl_metric *relay_msgs_in, *relay_msgs_out, *relay_records_in, *relay_records_out;
    pl_metric *relay_dropped, *relay_unknown, *relay_invalid, *relay_hangups, *relay_stops;
    /* inbound webhooks: answered (streamed, or busy over the cap), repeated, rejected, forged */
    pl_metric *in_accepted[GW_NCARRIERS], *in_busy[GW_NCARRIERS], *in_repeated[GW_NCARRIERS],
        *in_rejected[GW_NCARRIERS], *in_forged[GW_NCARRIERS];
} gw_stats;

typedef struct gw {
    gw_config cfg;
    pl_service svc; /* id, db, redis, bus */
    pl_db *db;
    pl_redis *redis;
    pl_bus_pub *bus;
    gw_carrier_conf conf[GW_NCARRIERS];
    gw_live *live;
    gw_media *media;
    gw_dialer *dialer;
    gw_relay *relay;
    gw_stats stats;
    atomic_long ingest_inflight; /* ingest.c: requests to ingest sources in flight */
} gw;

/* settings.c */
extern const pl_cfg_opt gw_config_opts[];
extern const size_t gw_config_nopts;
/* Fills g->conf from g->cfg (trailing slashes trimmed). 0, or -1 with the reason in err. */
int gw_config_carriers(gw *g, char *err, size_t cap);

/* A carrier's conf with the credentials of set `ref` (docs/inbound.md, "Credential sets"):
 * "" or "default" is g->conf itself; another name N reads PL_<CARRIER>_CREDENTIALS_<N>
 * ("account:token", Exotel "sid:key:token") into the caller's *buf. NULL when that variable is
 * missing or malformed. */
typedef struct {
    gw_carrier_conf conf;
    char text[512];
} gw_cred_buf;
const gw_carrier_conf *gw_credentials(const gw *g, const gw_carrier *car, const char *ref,
                                      gw_cred_buf *buf);

/* stats.c */
void gw_stats_init(gw_stats *s);

/* routes.c */
extern const pl_route gw_routes[];
extern const int gw_nroutes;
int gw_ready(void *app, char *why, size_t cap);

/* ---- attempts.c: call_attempts and the execution fields the gateway needs ---- */

typedef struct {
    char execution_id[40];
    int attempt;
    char account_id[40];
    int concurrency_max;
    pl_status status;   /* the execution's status when loaded */
    char *retry_config; /* JSON text or NULL; owned (gw_attempt_clear) */
    char provider[16];
    char call_id[128]; /* provider_call_id, "" before the carrier answered the dial */
    char media_token[72];
    char callback_token[72];
    int64_t dial_ms;          /* dial_requested_at, Unix ms */
    int64_t answered_ms;      /* answered_at, 0 when not answered */
    int ended;                /* ended_at is set */
    char hangup_by[24];       /* telephony_data.hangup_by already recorded, "" if none */
    int event_recorded;       /* loaded by gw_attempt_event: the event is already on the row */
    int inbound;              /* call_type inbound: the media stream's end is the call's end */
    char credentials_ref[40]; /* the carrier credential set, "" for the default */
} gw_attempt;

void gw_attempt_clear(gw_attempt *a);
/* Loads attempt n of an execution: PL_OK, PL_ERR_NOTFOUND, PL_ERR_INVALID (not a UUID), or
 * PL_ERR_DB. */
int gw_attempt_load(gw *g, pl_dbconn *c, const char *execution_id, int n, gw_attempt *a);
/* A callback's one round trip when its carrier is authenticated without the attempt (Twilio,
 * Plivo) and the event does not end the call (none, initiated, ringing, answered): loads attempt
 * n of `provider` as gw_attempt_load does (its values before this event) and records the event's
 * status word, call id and answer on it, as gw_attempt_update would after the transition. Sets
 * a->event_recorded so gw_apply_event does not write them again. PL_ERR_NOTFOUND also when the
 * attempt belongs to another provider. */
int gw_attempt_event(gw *g, pl_dbconn *c, const char *execution_id, int n, const char *provider,
                     const gw_event *ev, gw_attempt *a);
/* The latest attempt of an execution (n < 0) — for reconcile and hangup jobs. */
int gw_attempt_latest(gw *g, pl_dbconn *c, const char *execution_id, gw_attempt *a);
int gw_attempt_by_media_token(gw *g, pl_dbconn *c, const char *token, gw_attempt *a);

typedef struct {
    pl_status status;
    char account_id[40];
    int concurrency_max;
    char provider[16]; /* "" when the execution names none */
    char to[40];
    char from[40]; /* "" when none */
} gw_execution;

int gw_execution_load(gw *g, pl_dbconn *c, const char *execution_id, gw_execution *e);

/* A dial job's load and claim in one statement: fills e (provider "twilio" when the execution
 * names none) and, when the execution is initiated and its provider one we speak, claims attempt
 * n with these tokens (*claimed is 1 for the one caller that inserted the row), sets its attempt
 * and from number (the carrier's default when it names none) and starts telephony_data afresh.
 * PL_OK, PL_ERR_NOTFOUND, PL_ERR_INVALID (not a UUID) or PL_ERR_DB. */
int gw_load_claim(gw *g, pl_dbconn *c, const char *execution_id, int n, const char *media_token,
                  const char *callback_token, gw_execution *e, int *claimed);
/* Records the carrier's call id on the attempt and in telephony_data. */
int gw_attempt_dialed(gw *g, pl_dbconn *c, const char *execution_id, int n, const char *provider,
                      const char *call_id);
/* Records what the carrier said about attempt n: its status word, its call id (when not ""),
 * answered/ended moments, and the outcome (an execution status name, or NULL). */
int gw_attempt_update(gw *g, pl_dbconn *c, const gw_attempt *a, const char *carrier_status,
                      const char *call_id, int answered, int ended, const char *outcome);
/* Merges patch into telephony_data without a status change (e.g. who asked for a hang-up). */
int gw_telephony_patch(gw *g, pl_dbconn *c, const char *execution_id, const char *patch_json);
/* Sets answered_by_voice_mail. */
int gw_mark_voicemail(gw *g, pl_dbconn *c, const char *execution_id);
/* Prepares the hot statements on every pooled connection (no row changes); before threads
 * start. */
void gw_db_warm(gw *g);
/* Statuses of the given executions: fills status[i] (PL_ST__COUNT when not found). */
int gw_statuses(gw *g, pl_dbconn *c, const char *const *ids, int n, pl_status *status);

/* ---- lifecycle.c: carrier events -> execution statuses ---- */

/* Applies a normalized carrier event to attempt a (docs/dialing.md, "Carrier status →
 * execution status"). Transitions go through pl_state_apply (never backwards: a refused edge is
 * logged at debug and is not an error) and are published after their commit; final outcomes
 * consult pl_retry_due and may reschedule with a delayed dial job; leases are released when the
 * call is over. Returns PL_OK, or PL_ERR_DB / PL_ERR_REDIS when the carrier should retry.
 * *applied (may be NULL) is 1 when the execution's status changed. */
int gw_apply_event(gw *g, pl_dbconn *c, gw_attempt *a, const gw_event *ev, int *applied);

/* Ends an attempt that the gateway itself gives up on: status `to` (failed / error), telephony
 * patch {hangup_by, hangup_reason, hangup_provider_code when code ≥ 0}, error_message when
 * given; a retry when `retry` and pl_retry_due say so. Releases the lease. */
int gw_end_attempt(gw *g, pl_dbconn *c, gw_attempt *a, pl_status to, const char *hangup_by,
                   const char *reason, int code, const char *error_message, int retry);

/* Moves the execution along one edge and publishes it; PL_OK, PL_ERR_CONFLICT (refused, logged
 * at debug; *from set), or PL_ERR_DB. */
int gw_transition(gw *g, pl_dbconn *c, const char *execution_id, pl_status to, const char *patch,
                  const char *error_message, pl_status *from);

/* ---- live.c: calls this process watches, and their leases ---- */

gw_live *gw_live_new(gw *g);
/* Starts the renew thread. */
int gw_live_start(gw_live *l);
void gw_live_stop(gw_live *l);
void gw_live_free(gw_live *l);
/* Remembers a live call (idempotent). */
void gw_live_add(gw_live *l, const char *execution_id, const char *account_id, int max);
int gw_live_count(gw_live *l);
/* Forgets the call and releases its lease (idempotent; a Redis failure is logged: the lease
 * then expires by itself within PL_LEASE_TTL_MS). */
void gw_release(gw *g, const char *execution_id, const char *account_id);

/* ---- dialer.c: the telephony stream ---- */

gw_dialer *gw_dialer_start(gw *g);
/* Stops taking jobs, waits (up to PL_GATEWAY_DRAIN_MS) for the jobs in flight, joins the
 * workers. */
void gw_dialer_stop(gw_dialer *d);

/* ---- pipeline.c: the media-pipeline worker registry ---- */

/* Picks the live worker with the most spare capacity: PL_OK and its nng address in addr,
 * PL_ERR_NOTFOUND when none is live with room, PL_ERR_REDIS. */
int gw_pipeline_pick(gw *g, char *addr, size_t cap);

/* ---- media.c: the media WebSocket server ---- */

/* Serves the carriers' media WebSockets; every started stream's audio and events go to `sink`
 * (opened with sink_ctx). */
gw_media *gw_media_start(gw *g, const gw_sink_ops *sink, void *sink_ctx);
/* Closes every stream; their close handlers (and sink closes) have run when it returns. m stays
 * valid for gw_media_get (which then finds nothing) until gw_media_free. */
void gw_media_stop(gw_media *m);
void gw_media_free(gw_media *m);
/* Closes the media WebSocket of an execution if this process holds it; 1 if it did. */
int gw_media_close(gw_media *m, const char *execution_id);

/* The relay's side of a started session (relay.c, control.c). gw_media_get returns the live
 * session of the call (execution id bytes) and attempt with a reference, or NULL: it is not
 * freed before gw_media_put (its socket may close meanwhile; writes then fail quietly). The
 * writers below serialize on the session's own lock, may block while the carrier's socket is
 * full (civetweb's write timeout), and never touch Postgres or Redis. */
gw_session *gw_media_get(gw_media *m, const uint8_t call[16], int attempt);
void gw_media_put(gw_session *s);
/* Audio / end of a relay message / mark / clear: see playout.h. */
void gw_media_play(gw_session *s, const uint8_t *pcm16le, size_t bytes);
void gw_media_flush(gw_session *s, int pad);
int gw_media_mark(gw_session *s, const char *name, size_t len);
void gw_media_clear(gw_session *s);
/* The pipeline worker the session's audio goes to (for logs). */
const char *gw_media_worker(const gw_session *s);
/* Attempt n cannot be served after all (its worker said so): ends it as a call without pipeline
 * capacity is ended, with `reason` as hangup_reason and error_message. Blocks on Postgres and
 * the carrier: the control thread's work. */
void gw_media_unserved(gw_media *m, const char *execution_id, int n, const char *reason);

/* ---- relay.c: the media relay to media-pipeline workers (docs/media.md) ---- */

/* Opens the relay endpoint (PL_GATEWAY_RELAY_LISTEN), starts its flusher and control threads.
 * NULL on error (logged). */
gw_relay *gw_relay_start(gw *g);
/* Sends what is batched, stops receiving, serves the control requests already queued, joins
 * the threads and closes the endpoint. Call after gw_media_stop (its sink closes still send). */
void gw_relay_stop(gw_relay *r);
/* The sink media.c hands every started stream to (sink_ctx: the gw_relay). */
extern const gw_sink_ops gw_relay_sink;

/* ---- control.c: the workers' HANGUP and STOP requests, off the relay's receive thread ---- */

gw_control *gw_control_start(gw *g);
/* Queues a HANGUP ({"by","reason"}) or STOP ({"reason"}) record of attempt n of call; never
 * blocks (a full queue drops the request, logged). */
void gw_control_post(gw_control *c, const pl_relay_rec *rec);
/* Serves what is queued, then joins the thread. */
void gw_control_stop(gw_control *c);

/* ---- numbers.c: phone numbers and inbound executions in Postgres (docs/inbound.md) ---- */

typedef struct {
    char id[40];
    char account_id[40];
    char phone_number[40];
    char provider[16];
    char credentials_ref[40];
    char inbound_secret[80];
    char agent_id[40];  /* "" when not linked (or the agent was deleted) */
    char *agent_config; /* JSON text, NULL when not linked; owned (gw_number_clear) */
    int concurrency_max;
    int funded; /* the account's wallet is above 0 (as the scheduler requires of a dial) */
} gw_number;

void gw_number_clear(gw_number *n);
/* The live number with this id (32 hex or a dashed UUID): PL_OK, PL_ERR_NOTFOUND (also for an id
 * that is no UUID), or PL_ERR_DB. */
int gw_number_load(gw *g, pl_dbconn *c, const char *id, gw_number *n);

/* What inbound_accept (proto/sql/006_inbound.sql) decided. */
typedef enum { GW_IN_CREATED, GW_IN_EXISTING, GW_IN_LIMIT } gw_in_outcome;

typedef struct {
    const char *execution_id; /* new execution's id (a UUID the caller made) */
    const char *provider;
    const gw_inbound_call *call;
    const char *user_data; /* JSON object text */
    const char *telephony; /* JSON object text: telephony_data */
    const char *media_token, *callback_token;
    int limit; /* inbound_limit; -1 unlimited */
} gw_in_request;

typedef struct {
    gw_in_outcome outcome;
    char execution_id[40]; /* created or existing */
    char media_token[72];
    long long event_id; /* created: the outbox event */
} gw_in_result;

/* Accepts an inbound call for number n: PL_OK with out filled, or PL_ERR_DB. */
int gw_inbound_accept(gw *g, pl_dbconn *c, const gw_number *n, const gw_in_request *req,
                      gw_in_result *out);

/* ---- ingest.c: the caller's data from the agent's ingest source ---- */

/* Fetches what the agent's ingest_source_config (agent_config JSON, may be NULL) knows of the
 * caller: a JSON object (owned by the caller) when the source answered one, else NULL with the
 * reason in why ("" when the agent has no source). Blocks up to PL_INBOUND_INGEST_TIMEOUT_MS. */
cJSON *gw_ingest_fetch(gw *g, const cJSON *agent_config, const char *caller, char *why, size_t cap);

/* ---- inbound.c: the carriers' inbound voice webhooks ---- */
int gw_cb_inbound_twilio(pl_req *r);
int gw_cb_inbound_plivo(pl_req *r);
int gw_cb_inbound_exotel(pl_req *r);
/* The media stream of an inbound attempt ended (the carrier's stop or the socket's close): the
 * call is over (docs/inbound.md, "The end of an inbound call"). Blocks on Postgres. */
void gw_inbound_ended(gw *g, const char *execution_id, int attempt);

/* ---- callbacks.c: HTTP handlers ---- */

/* Reads a callback's form body into params (initialised here; free it in every case): 0, or the
 * HTTP status to refuse it with (400 not form data, 413 too large, 500 unreadable). */
int gw_read_form(pl_req *r, pl_form *params);
/* The URL the carrier requested and signed: conf->public_url + raw path (+ "?" + query). */
void gw_request_url(const pl_req *r, const gw_carrier_conf *conf, char *url, size_t cap);
int gw_cb_twilio_status(pl_req *r);
int gw_cb_twilio_answer(pl_req *r);
int gw_cb_plivo_answer(pl_req *r);
int gw_cb_plivo_ring(pl_req *r);
int gw_cb_plivo_hangup(pl_req *r);
int gw_cb_exotel_status(pl_req *r);

/* Asks the carrier to end the attempt's call (or closes its media WebSocket for Exotel, or when
 * the REST request fails and this process holds the stream), after recording
 * hangup_by/hangup_reason so the final callback keeps them. */
int gw_hangup(gw *g, pl_dbconn *c, const gw_attempt *a, const char *hangup_by, const char *reason);
/* The carrier's REST hang-up of the attempt's call with the attempt's credential set: as
 * gw_carrier.hangup, PL_ERR_IO (err says so) when that set is not configured. */
int gw_carrier_hangup(gw *g, const gw_carrier *car, const gw_attempt *a, char *err, size_t cap);
/* gw_hangup of attempt n (n < 0: the latest) of an execution when it is still live (a call that
 * is over is left alone, logged). PL_OK, PL_ERR_NOTFOUND, or PL_ERR_DB. */
int gw_hangup_live(gw *g, const char *execution_id, int n, const char *hangup_by,
                   const char *reason);

#endif
