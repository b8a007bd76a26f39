/* Periodic repairs. pub/sub may drop events and a process may die between a commit and the
 * Redis write that follows it; these sweeps find what such a gap left behind, from Postgres (the
 * truth), and re-issue the idempotent job. Every replica may run them: a Redis lock keeps it to
 * one per period, and a duplicate would be harmless anyway. */
#include <stdio.h>
#include <stdlib.h>

#include "error.h"
#include "log.h"
#include "scheduler.h"

PL_DB_STMT(stuck_dialing_stmt) = {
    "sweep_stuck_dialing",
    "SELECT e.id, e.attempt FROM executions e WHERE e.status IN ('initiated', 'ringing')"
    " AND e.updated_at < now() - make_interval(secs => $1::int) ORDER BY e.updated_at LIMIT 500",
    1,
};

PL_DB_STMT(stuck_queued_stmt) = {
    "sweep_stuck_queued",
    "SELECT e.id, e.attempt FROM executions e WHERE e.status = 'queued'"
    " AND e.updated_at < now() - make_interval(secs => $1::int) ORDER BY e.updated_at LIMIT 500",
    1,
};

PL_DB_STMT(overdue_scheduled_stmt) = {
    "sweep_overdue_scheduled",
    "SELECT e.id, e.attempt FROM executions e WHERE e.status = 'scheduled'"
    " AND e.scheduled_at < now() - make_interval(secs => $1::int) ORDER BY e.scheduled_at"
    " LIMIT 500",
    1,
};

/* Inbound calls end with their media stream (docs/inbound.md): no carrier callback reports the
 * end of a call whose gateway died with the stream. Each live inbound call is checked with its
 * carrier once per period: the reconcile touches the attempt (updated_at) when the carrier says
 * it is still live, and settles it when the carrier says it is over. */
PL_DB_STMT(unheard_inbound_stmt) = {
    "sweep_unheard_inbound",
    "SELECT e.id, ca.attempt FROM executions e"
    " JOIN call_attempts ca ON ca.execution_id = e.id AND ca.attempt = e.attempt"
    " WHERE e.status = 'in-progress' AND e.call_type = 'inbound'"
    " AND ca.updated_at < now() - make_interval(secs => $1::int) ORDER BY ca.updated_at LIMIT 500",
    1,
};

/* Runs a sweep query and, for each row, pushes {prefix fields, execution_id, attempt}. */
static int reissue(scheduler *s, pl_dbconn *c, pl_rconn *rc, const pl_db_stmt *st, long secs,
                   const char *stream, const char *action)
{
    char secs_s[16];
    snprintf(secs_s, sizeof(secs_s), "%ld", secs);
    const char *p[1] = {secs_s};
    PGresult *r = pl_db_exec(c, st, p);
    if (!pl_db_ok(r)) {
        PL_ERROR("sweep %s: %s", st->name, PQresultErrorMessage(r));
        PQclear(r);
        return 0;
    }
    int n = PQntuples(r);
    for (int i = 0; i < n; i++) {
        const char *kv[6] = {"execution_id", PQgetvalue(r, i, 0), "attempt", PQgetvalue(r, i, 1)};
        if (action != NULL) {
            const char *with_action[6] = {"action", action, kv[0], kv[1], kv[2], kv[3]};
            pl_queue_push(s->redis, rc, stream, with_action, 3, NULL);
        } else {
            pl_queue_push(s->redis, rc, stream, kv, 2, NULL);
        }
    }
    if (n > 0)
        PL_INFO("sweep %s: re-issued %d job(s)", st->name, n);
    pl_metric_add(s->swept, n);
    PQclear(r);
    return n;
}

void scheduler_sweep(scheduler *s, pl_rconn *rc)
{
    char key[128];
    redisReply *lock = pl_redis_cmd(rc, "SET %s %s NX PX %ld",
                                    pl_redis_key(s->redis, key, sizeof(key), "lock:sweep"),
                                    s->consumer, s->cfg.sweep_ms);
    int mine = lock != NULL && lock->type == REDIS_REPLY_STATUS;
    if (lock != NULL)
        freeReplyObject(lock);
    if (!mine)
        return;
    pl_dbconn *c = pl_db_acquire(s->db);
    reissue(s, c, rc, &stuck_dialing_stmt, s->cfg.ring_timeout_s + 30, TELEPHONY_STREAM,
            "reconcile");
    reissue(s, c, rc, &unheard_inbound_stmt, s->cfg.inbound_check_s, TELEPHONY_STREAM, "reconcile");
    reissue(s, c, rc, &stuck_queued_stmt, s->cfg.stuck_queued_s, DIAL_STREAM, NULL);
    reissue(s, c, rc, &overdue_scheduled_stmt, s->cfg.stuck_queued_s, DIAL_STREAM, NULL);
    pl_db_release(s->db, c);
}
