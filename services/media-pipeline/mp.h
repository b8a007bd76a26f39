/* media-pipeline: the service's shared types (docs/media.md).
 *
 * Threads:
 *   - nng's receive thread (relay.c) decodes each message from a gateway and routes its records
 *     to the owning loop's inbox (a call belongs to loop hash(call uuid) % nloops);
 *   - loops (loop.c), one per core: each owns its calls, a libcurl multi handle (LLM streams),
 *     timers and a 20 ms tick that paces audio out and runs the calls' rules. Nothing on a loop
 *     blocks: decoding, synthesis, database and file work go to the job pool;
 *   - the job pool (jobs.c): a few threads running STT/TTS pumps and database/file jobs; results
 *     are posted back to the call's loop;
 *   - the registry heartbeat (registry.c): publishes this worker's address and load in Redis.
 */
#ifndef MP_H
#define MP_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "metrics.h"
#include "relay.h"
#include "service.h"
#include "stt.h"
#include "tts.h"

typedef struct {
    pl_common_config common;
    char *http_port;
    char *relay_listen;
    char *relay_host;
    long loops;    /* 0: one per core */
    long jobs;     /* job-pool threads; 0: one per core */
    long capacity; /* calls taken at once */
    char *recordings_dir;
    long stt_decoders;
    long drain_ms;
    long bargein_vad_ms; /* speech without words that still interrupts the agent */
    long lead_ms;        /* agent audio sent ahead of real time */
} mp_config;

extern const pl_cfg_opt mp_config_opts[];
extern const size_t mp_config_nopts;
int mp_config_check(const mp_config *c, char *err, size_t cap);

typedef struct mp_jobs mp_jobs;
typedef struct mp_loop mp_loop;
typedef struct mp_registry mp_registry;

typedef struct {
    pl_metric *calls, *calls_live, *calls_refused, *turns, *bargeins, *hangups;
    pl_metric *frames_in, *frames_out, *relay_bad, *relay_unknown, *stt_dropped;
    pl_metric *llm_errors, *tts_errors, *stt_errors;
} mp_stats;

typedef struct mp {
    mp_config cfg;
    pl_service svc;
    pl_relay *relay;
    mp_stt_engine *stt;
    mp_tts_engine *tts;
    mp_jobs *jobs;
    mp_loop **loops;
    int nloops;
    mp_registry *registry;
    atomic_int live;     /* calls being served */
    atomic_int draining; /* SIGTERM: take no new call */
    mp_stats stats;
} mp;

/* ---- jobs.c: the pool for CPU and blocking work ---- */

/* A job is intrusive: the owner embeds it (one outstanding run per job at a time) or allocates
 * it and frees it in fn. */
typedef struct mp_job {
    void (*fn)(struct mp_job *j);
    struct mp_job *next;
} mp_job;

mp_jobs *mp_jobs_new(int threads);
/* Queues j; fn(j) runs on a pool thread, jobs in FIFO order. */
void mp_jobs_post(mp_jobs *p, mp_job *j);
/* Runs what is queued, then stops the threads. */
void mp_jobs_free(mp_jobs *p);

/* ---- router.c: records from gateways to loops ---- */

/* The pl_relay receive callback (user = mp). */
void mp_relay_recv(void *user, const uint8_t *msg, size_t len);
/* The loop that owns a call. */
mp_loop *mp_loop_of(mp *app, const uint8_t call[16]);

/* ---- loop.c ---- */

mp_loop *mp_loop_new(mp *app, int idx);
int mp_loop_start(mp_loop *l);
/* Asks the loop to stop once its calls are gone (drain) or at once (force). */
void mp_loop_stop(mp_loop *l, int force);
/* Waits for the loop's thread to end. */
void mp_loop_join(mp_loop *l);
/* Frees a joined loop; posts still queued run (they find their calls gone). Jobs that may post
 * to the loop must be finished first (mp_jobs_free). */
void mp_loop_free(mp_loop *l);
/* Appends one record to the loop's inbox (any thread); mp_loop_wake then makes it look. */
void mp_loop_deliver(mp_loop *l, const pl_relay_rec *r);
void mp_loop_wake(mp_loop *l);
int mp_loop_calls(mp_loop *l);

/* ---- registry.c ---- */

mp_registry *mp_registry_start(mp *app);
/* Removes this worker from the registry (no new calls are routed here). */
void mp_registry_withdraw(mp_registry *r);
void mp_registry_stop(mp_registry *r);

#endif
