/* scheduler: decides when an execution dials (docs/dialing.md, step 2). One loop thread reads
 * the `dial` stream, promotes due delayed jobs and runs the periodic sweeps, and
 * PL_SCHEDULER_WORKERS - 1 more threads read and dispatch dial jobs beside it; nothing here
 * speaks a carrier's protocol. */
#ifndef SCHEDULER_H
#define SCHEDULER_H

#include <stdint.h>

#include "bus.h"
#include "config.h"
#include "db.h"
#include "metrics.h"
#include "queue.h"
#include "redis.h"
#include "service.h"

typedef struct {
    pl_common_config common;
    const char *http_port;
    long cap_retry_ms;
    long lease_ttl_ms;
    long ring_timeout_s;
    long sweep_ms;
    long stuck_queued_s;
    long inbound_check_s;
    long claim_idle_ms;
    long batch;
    long workers;
} scheduler_config;

typedef struct {
    scheduler_config cfg;
    pl_service svc;
    pl_db *db; /* = svc.db, svc.redis, svc.bus */
    pl_redis *redis;
    pl_bus_pub *bus;
    const char *consumer; /* = svc.id */
    pl_metric *jobs, *dialed, *deferred_cap, *deferred_hours, *balance_low, *dropped, *swept;
} scheduler;

/* settings.c */
extern const pl_cfg_opt scheduler_config_opts[];
extern const size_t scheduler_config_nopts;

/* dispatch.c: handles one dial job (stream entry job_id, or NULL for none); returns 0 when the
 * job may be acknowledged (its effect is committed, or it is obsolete), non-zero to leave it
 * pending for a retry. *acked is 1 when the hand-off to the gateway acknowledged the job in the
 * same script (the caller then must not acknowledge it again). */
int scheduler_dispatch(scheduler *s, pl_rconn *rc, const char *job_id, const char *execution_id,
                       int attempt, int *acked);

/* sweep.c: the periodic repairs (stuck dials, lost jobs); safe to run on every replica. */
void scheduler_sweep(scheduler *s, pl_rconn *rc);

/* loop.c: runs until *stop becomes non-zero, then waits for the workers' jobs in hand. */
void scheduler_run(scheduler *s, volatile int *stop);

#define DIAL_STREAM      "dial"
#define TELEPHONY_STREAM "telephony"
#define DIAL_GROUP       "scheduler"

#endif
