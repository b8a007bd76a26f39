/* Work queues on Redis Streams with consumer groups, and a delayed-work sorted set.
 *
 * A stream is named without the deployment prefix ("dial"); the prefix is added here. A job is a
 * flat list of string fields. Consumers read with a group, act, commit their effect in Postgres,
 * and only then acknowledge, so a crash repeats a job and never loses it; jobs must therefore be
 * idempotent. pl_queue_claim takes over jobs a dead consumer read but never acknowledged.
 *
 * Delayed work: pl_delay_add stores (stream, fields) with a due time in one sorted set;
 * pl_delay_promote moves every due entry into its stream atomically (one Lua script), so a
 * crash between "take" and "enqueue" cannot lose a job.
 */
#ifndef PL_QUEUE_H
#define PL_QUEUE_H

#include <stdint.h>

#include "redis.h"

#define PL_JOB_MAX_FIELDS 12

typedef struct {
    char id[48]; /* stream entry id, "1700000000000-0" */
    int nfields;
    char *keys[PL_JOB_MAX_FIELDS];
    char *vals[PL_JOB_MAX_FIELDS];
    int deliveries; /* filled by pl_queue_claim: times delivered so far, else 0 */
} pl_job;

/* Value of field `key`, or NULL. */
const char *pl_job_get(const pl_job *job, const char *key);
/* Frees the fields of each job (not the array). */
void pl_jobs_clear(pl_job *jobs, int n);

/* XADD prefix+stream * k1 v1 ... ; kv holds 2*npairs strings. id_out (≥ 48 bytes) may be NULL. */
int pl_queue_push(pl_redis *r, pl_rconn *c, const char *stream, const char *const *kv, int npairs,
                  char *id_out);

/* XGROUP CREATE ... $ MKSTREAM, treating an existing group as success. start "0" reads history. */
int pl_queue_group(pl_redis *r, pl_rconn *c, const char *stream, const char *group,
                   const char *start);

/* XREADGROUP new entries: up to max jobs, blocking up to block_ms (0: do not block). */
int pl_queue_read(pl_redis *r, pl_rconn *c, const char *stream, const char *group,
                  const char *consumer, int block_ms, pl_job *jobs, int max, int *n);

/* XAUTOCLAIM entries pending longer than min_idle_ms for `consumer`. */
int pl_queue_claim(pl_redis *r, pl_rconn *c, const char *stream, const char *group,
                   const char *consumer, int64_t min_idle_ms, pl_job *jobs, int max, int *n);

int pl_queue_ack(pl_redis *r, pl_rconn *c, const char *stream, const char *group, const char *id);

/* Number of entries in the stream (XLEN). */
int pl_queue_len(pl_redis *r, pl_rconn *c, const char *stream, long long *len);

/* Schedules a job for `stream` at due_ms (Unix ms). Adding the same (stream, fields) twice keeps
 * one entry with the later due time: the member is the canonical encoding of the job. */
int pl_delay_add(pl_redis *r, pl_rconn *c, const char *stream, const char *const *kv, int npairs,
                 int64_t due_ms);

/* Removes a scheduled job added with the same stream and fields; *removed is 0 or 1. */
int pl_delay_remove(pl_redis *r, pl_rconn *c, const char *stream, const char *const *kv, int npairs,
                    int *removed);

/* Moves up to max jobs due at or before now_ms into their streams; *moved counts them. */
int pl_delay_promote(pl_redis *r, pl_rconn *c, int64_t now_ms, int max, int *moved);

/* Unix time in milliseconds (CLOCK_REALTIME). */
int64_t pl_now_ms(void);

#endif
