/* /batches: Bolna's batch calling. A CSV of contacts is uploaded once, then scheduled into one
 * execution per valid contact.
 *
 * POST /batches reads the multipart body and the CSV whole in memory (the body limit bounds
 * both), validates every row, and writes the batch and its valid contacts in ONE statement:
 * a refused upload writes nothing. Invalid rows are kept on the batch (row, line, reason).
 *
 * POST /batches/{id}/schedule creates every execution (status scheduled or queued), its outbox
 * row and the contact -> execution link, and moves the batch out of `created`, in ONE
 * statement. After the commit it hands the dial jobs to Redis (one command per chunk of jobs:
 * a variadic ZADD for the delayed set, a Lua loop of XADDs for the `dial` stream) and publishes
 * the events. As with POST /call, a crash between the commit and the enqueue leaves `queued`
 * executions that the scheduler's sweep re-enqueues.
 *
 * Stop and delete first lock the batch row in a short transaction and only then count its
 * unfinished executions, with a snapshot taken after the lock: a concurrent schedule has
 * either committed (and its executions are counted) or not started (and finds the batch no
 * longer `created`).
 *
 * The batch status shown to clients is computed: a scheduled or queued batch whose executions
 * are all terminal is `executed`; a scheduled batch whose time has come is `queued`.
 * Every statement is scoped by the caller's account: another account's batch is a 404.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "batch_form.h"
#include "batch_upload.h"
#include "log.h"
#include "queue.h"
#include "state.h"
#include "validate.h"

#define DIAL_STREAM   "dial"
#define ENQUEUE_CHUNK 500 /* jobs per Redis command */

/* ---------------------------------------------------------------- statements */

/* The batch as GET /batches/{id} shows it; `b` is the batches row, `x` the LATERAL counts of
 * its executions, $3 the terminal statuses. */
#define BATCH_COUNTS                                                                               \
    " LEFT JOIN LATERAL (SELECT jsonb_object_agg(s.status, s.n) AS by_status,"                     \
    "  COALESCE(sum(s.n) FILTER (WHERE NOT s.status = ANY($3::text[])), 0) AS unfinished"          \
    "  FROM (SELECT e.status, count(*) AS n FROM executions e"                                     \
    "   WHERE e.batch_id = b.id AND e.account_id = b.account_id GROUP BY e.status) s) x ON true"
#define BATCH_JSON                                                                                 \
    "jsonb_build_object('batch_id', b.id, 'agent_id', b.agent_id,"                                 \
    " 'status', CASE WHEN b.status IN ('scheduled', 'queued') AND x.unfinished = 0"                \
    "   THEN 'executed' WHEN b.status = 'scheduled' AND b.scheduled_at <= now() THEN 'queued'"     \
    "   ELSE b.status END,"                                                                        \
    " 'scheduled_at', pl_ts(b.scheduled_at),"                                                      \
    " 'from_phone_numbers', COALESCE(b.from_phone_numbers, '[]'::jsonb),"                          \
    " 'file_name', b.file_name, 'valid_contacts', b.valid_contacts,"                               \
    " 'total_contacts', b.total_contacts,"                                                         \
    " 'execution_status', COALESCE(x.by_status, '{}'::jsonb),"                                     \
    " 'created_at', pl_ts(b.created_at), 'updated_at', pl_ts(b.updated_at))"

PL_DB_STMT(create_stmt) = {
    "batch_create",
    "WITH ag AS (SELECT id, account_id FROM agents"
    "  WHERE id = $1 AND account_id = $2 AND deleted_at IS NULL),"
    " b AS (INSERT INTO batches (id, account_id, agent_id, file_name, from_phone_numbers,"
    "  retry_config, total_contacts, valid_contacts, invalid_rows)"
    "  SELECT encode(gen_random_bytes(16), 'hex'), account_id, id, $3, $4::jsonb, $5::jsonb,"
    "   $6::int, $7::int, $8::jsonb FROM ag RETURNING id),"
    " c AS (INSERT INTO batch_contacts (batch_id, row_number, contact_number, variables)"
    "  SELECT b.id, x.r, x.n, x.v"
    "  FROM b, jsonb_to_recordset($9::jsonb) AS x(r int, n text, v jsonb) RETURNING 1)"
    " SELECT b.id, (SELECT count(*) FROM c) FROM b",
    9,
};

/* One execution per contact, its outbox row and the contact's link, and the batch leaves
 * `created`: all in one statement. from_number goes round-robin over from_phone_numbers in row
 * order. Rows: (agent_id, execution_id, event_id); one row with NULL ids for a batch without
 * contacts; none when the batch is not (or no longer) schedulable. */
PL_DB_STMT(schedule_stmt) = {
    "batch_schedule",
    "WITH b AS (UPDATE batches bt SET status = $3, updated_at = now(),"
    "   scheduled_at = COALESCE(to_timestamp($4::float8 / 1000), now())"
    "  WHERE bt.id = $1 AND bt.account_id = $2 AND bt.deleted_at IS NULL"
    "   AND bt.status = 'created' AND EXISTS (SELECT 1 FROM agents a"
    "    WHERE a.id = bt.agent_id AND a.deleted_at IS NULL)"
    "  RETURNING bt.id, bt.account_id, bt.agent_id, bt.from_phone_numbers, bt.retry_config),"
    " src AS (SELECT uuid_v7() AS eid, c.row_number, c.contact_number, c.variables,"
    "   b.from_phone_numbers ->> ((row_number() OVER (ORDER BY c.row_number) - 1)"
    "    % GREATEST(jsonb_array_length(b.from_phone_numbers), 1))::int AS from_number"
    "  FROM b JOIN batch_contacts c ON c.batch_id = b.id),"
    " ins AS (INSERT INTO executions (id, account_id, agent_id, batch_id, status, to_number,"
    "   from_number, user_data, retry_config, bypass_call_guardrails, scheduled_at, provider)"
    "  SELECT s.eid, b.account_id, b.agent_id, b.id, $3, s.contact_number, s.from_number,"
    "   s.variables, b.retry_config, $5::boolean, to_timestamp($4::float8 / 1000),"
    "   (SELECT a.telephony_provider FROM agents a WHERE a.id = b.agent_id)"
    "  FROM src s, b ORDER BY s.row_number RETURNING id, account_id, status),"
    " link AS (UPDATE batch_contacts c SET execution_id = s.eid FROM src s, b"
    "  WHERE c.batch_id = b.id AND c.row_number = s.row_number),"
    " ev AS (INSERT INTO execution_events (execution_id, account_id, status)"
    "  SELECT id, account_id, status FROM ins RETURNING id, execution_id)"
    " SELECT b.agent_id, ev.execution_id, ev.id FROM b LEFT JOIN ev ON true ORDER BY ev.id",
    5,
};

PL_DB_STMT(state_stmt) = {
    "batch_state",
    "SELECT b.status, EXISTS (SELECT 1 FROM agents a WHERE a.id = b.agent_id"
    "  AND a.deleted_at IS NULL), b.agent_id FROM batches b"
    " WHERE b.id = $1 AND b.account_id = $2 AND b.deleted_at IS NULL",
    2,
};

PL_DB_STMT(lock_stmt) = {
    "batch_lock",
    "SELECT status FROM batches WHERE id = $1 AND account_id = $2 AND deleted_at IS NULL"
    " FOR UPDATE",
    2,
};

PL_DB_STMT(unfinished_stmt) = {
    "batch_unfinished",
    "SELECT count(*) FROM executions WHERE batch_id = $1 AND account_id = $2"
    " AND NOT status = ANY($3::text[])",
    3,
};

PL_DB_STMT(mark_stopped_stmt) = {
    "batch_mark_stopped",
    "UPDATE batches SET status = 'stopped', updated_at = now() WHERE id = $1 AND account_id = $2",
    2,
};

PL_DB_STMT(mark_deleted_stmt) = {
    "batch_mark_deleted",
    "UPDATE batches SET deleted_at = now(), updated_at = now() WHERE id = $1 AND account_id = $2",
    2,
};

PL_DB_STMT(waiting_stmt) = {
    "batch_waiting",
    "SELECT id, attempt FROM executions WHERE batch_id = $1 AND account_id = $2"
    " AND status = ANY($3::text[]) ORDER BY id",
    3,
};

PL_DB_STMT(get_stmt) = {
    "batch_get",
    "SELECT (" BATCH_JSON " || jsonb_build_object('invalid_contacts', b.invalid_rows))::text"
    " FROM batches b" BATCH_COUNTS
    " WHERE b.id = $1 AND b.account_id = $2 AND b.deleted_at IS NULL",
    3,
};

PL_DB_STMT(list_stmt) = {
    "batch_list",
    "SELECT (SELECT COALESCE(jsonb_agg(" BATCH_JSON " ORDER BY b.created_at DESC, b.id),"
    "  '[]'::jsonb) FROM batches b" BATCH_COUNTS
    "  WHERE b.agent_id = a.id AND b.account_id = a.account_id AND b.deleted_at IS NULL)::text"
    " FROM agents a WHERE a.id = $1 AND a.account_id = $2 AND a.deleted_at IS NULL",
    3,
};

PL_DB_STMT(executions_stmt) = {
    "batch_executions",
    "SELECT (SELECT COALESCE(jsonb_agg(execution_json(e) ORDER BY c.row_number), '[]'::jsonb)"
    "  FROM batch_contacts c JOIN executions e ON e.id = c.execution_id"
    "  WHERE c.batch_id = b.id AND e.account_id = b.account_id)::text"
    " FROM batches b WHERE b.id = $1 AND b.account_id = $2 AND b.deleted_at IS NULL",
    2,
};

/* ---------------------------------------------------------------- small helpers */

/* "{completed,no-answer,...}": the terminal statuses, from the state machine's own table. */
static void terminal_statuses(char *buf, size_t cap)
{
    size_t len = (size_t)snprintf(buf, cap, "{");
    for (int s = 0; s < PL_ST__COUNT; s++)
        if (pl_status_is_terminal((pl_status)s) && len < cap)
            len += (size_t)snprintf(buf + len, cap - len, "%s%s", len > 1 ? "," : "",
                                    pl_status_name((pl_status)s));
    if (len < cap)
        snprintf(buf + len, cap - len, "}");
}

/* Checks a path batch id (32 hex) and copies it lowercased; otherwise replies 422. */
static int batch_path_id(pl_req *r, char out[33])
{
    const char *id = r->params[0];
    size_t n = strlen(id);
    int ok = n == 32;
    for (size_t i = 0; ok && i < n; i++)
        ok = isxdigit((unsigned char)id[i]);
    if (!ok) {
        pl_http_error(r, 422, "batch_id: '%s' is not a batch id (32 hexadecimal characters)", id);
        return -1;
    }
    for (size_t i = 0; i <= n; i++)
        out[i] = (char)tolower((unsigned char)id[i]);
    return 0;
}

/* The delayed-set member of a dial job (execution, attempt): the canonical encoding of
 * common/queue.c (pl_delay_add), so that POST /call/{id}/stop can remove it. */
static void delay_member(char *buf, size_t cap, const char *execution_id, const char *attempt)
{
    snprintf(buf, cap,
             "{\"s\":\"" DIAL_STREAM "\",\"f\":[\"execution_id\",\"%s\",\"attempt\",\"%s\"]}",
             execution_id, attempt);
}

/* ---------------------------------------------------------------- POST /batches */

int api_batch_create(pl_req *r)
{
    char account[40];
    int denied = api_auth(r, account);
    if (denied != 0)
        return denied;
    form f;
    batch_upload u;
    memset(&u, 0, sizeof(u));
    int status = form_read(r, &f, 0);
    if (status == 0)
        status = parse_upload(r, &f, &u);
    if (status != 0) {
        upload_free(&u);
        form_free(&f);
        return status;
    }
    char total[16], valid[16];
    snprintf(total, sizeof(total), "%d", u.total);
    snprintf(valid, sizeof(valid), "%d", u.valid);
    char *from = u.from != NULL ? cJSON_PrintUnformatted(u.from) : NULL;
    char *invalid = cJSON_PrintUnformatted(u.invalid);
    char *contacts = cJSON_PrintUnformatted(u.contacts);
    const char *p[9] = {u.agent_id, account, u.file_name, from,    u.retry,
                        total,      valid,   invalid,     contacts};
    api_ctx *app = r->app;
    PGresult *res = NULL;
    if (invalid == NULL || contacts == NULL) {
        status = pl_http_error(r, 500, "out of memory");
    } else {
        pl_dbconn *c = pl_db_acquire(app->db);
        res = pl_db_exec(c, &create_stmt, p);
        pl_db_release(app->db, c);
        if (!pl_db_ok(res))
            status = api_db_error(r, res, "batch create");
        else if (PQntuples(res) == 0)
            status = pl_http_error(r, 404, "agent_id: agent %s not found", u.agent_id);
    }
    if (status == 0) {
        cJSON *out = cJSON_CreateObject();
        cJSON_AddStringToObject(out, "batch_id", PQgetvalue(res, 0, 0));
        cJSON_AddStringToObject(out, "status", "created");
        cJSON_AddStringToObject(out, "state", "created");
        cJSON_AddStringToObject(out, "agent_id", u.agent_id);
        cJSON_AddItemToObject(out, "file_name",
                              u.file_name != NULL ? cJSON_CreateString(u.file_name)
                                                  : cJSON_CreateNull());
        cJSON_AddNumberToObject(out, "total_contacts", u.total);
        cJSON_AddNumberToObject(out, "valid_contacts", u.valid);
        cJSON_AddItemToObject(out, "invalid_contacts", u.invalid);
        u.invalid = NULL;
        status = pl_http_cjson(r, 200, out);
        cJSON_Delete(out);
    }
    PQclear(res);
    free(from);
    free(invalid);
    free(contacts);
    upload_free(&u);
    form_free(&f);
    return status;
}

/* ---------------------------------------------------------------- Redis hand-offs */

/* Appends every first-attempt dial job to the `dial` stream in order, one script per chunk. */
static const char xadd_lua[] =
    "for i = 1, #ARGV do\n"
    "  redis.call('XADD', KEYS[1], '*', 'execution_id', ARGV[i], 'attempt', '0')\n"
    "end\n"
    "return #ARGV\n";

/* Hands `n` committed executions to the scheduler: now (the dial stream) or at due_ms (the
 * delayed set). Failures are logged: the executions stay in Postgres, see the file comment. */
static void enqueue_dials(api_ctx *app, const pl_transition *t, int n, int64_t due_ms)
{
    char key[256], score[32], lua_keys[] = "1";
    const char **argv = malloc((3 + 2 * ENQUEUE_CHUNK) * sizeof(*argv));
    char(*members)[160] = malloc(ENQUEUE_CHUNK * sizeof(*members));
    int sent = 0;
    snprintf(score, sizeof(score), "%lld", (long long)due_ms);
    pl_rconn *rc = pl_redis_acquire(app->redis);
    for (int at = 0; argv != NULL && members != NULL && at < n; at += ENQUEUE_CHUNK) {
        int k = n - at < ENQUEUE_CHUNK ? n - at : ENQUEUE_CHUNK, argc;
        if (due_ms > 0) {
            argv[0] = "ZADD";
            argv[1] = pl_redis_key(app->redis, key, sizeof(key), "delayed");
            for (int i = 0; i < k; i++) {
                delay_member(members[i], sizeof(members[i]), t[at + i].execution_id, "0");
                argv[2 + 2 * i] = score;
                argv[3 + 2 * i] = members[i];
            }
            argc = 2 + 2 * k;
        } else {
            argv[0] = "EVAL";
            argv[1] = xadd_lua;
            argv[2] = lua_keys;
            argv[3] = pl_redis_key(app->redis, key, sizeof(key), DIAL_STREAM);
            for (int i = 0; i < k; i++)
                argv[4 + i] = t[at + i].execution_id;
            argc = 4 + k;
        }
        redisReply *rep = pl_redis_argv(rc, argc, argv, NULL);
        if (pl_redis_ok(rep, due_ms > 0 ? "batch ZADD" : "batch XADD"))
            sent += k;
        if (rep != NULL)
            freeReplyObject(rep);
    }
    pl_redis_release(app->redis, rc);
    free(argv);
    free(members);
    if (sent < n)
        PL_WARN("batch: %d of %d executions committed but not enqueued; the scheduler sweep "
                "re-enqueues queued ones",
                n - sent, n);
}

/* Removes the delayed jobs of stopped executions (ids[i] at attempts[i]). The scheduler would
 * skip them anyway by status; this keeps the delayed set to live work. */
static void unschedule(api_ctx *app, char (*ids)[40], char (*attempts)[16], int n)
{
    char key[256];
    const char **argv = malloc((2 + ENQUEUE_CHUNK) * sizeof(*argv));
    char(*members)[160] = malloc(ENQUEUE_CHUNK * sizeof(*members));
    pl_rconn *rc = pl_redis_acquire(app->redis);
    for (int at = 0; argv != NULL && members != NULL && at < n; at += ENQUEUE_CHUNK) {
        int k = n - at < ENQUEUE_CHUNK ? n - at : ENQUEUE_CHUNK;
        argv[0] = "ZREM";
        argv[1] = pl_redis_key(app->redis, key, sizeof(key), "delayed");
        for (int i = 0; i < k; i++) {
            delay_member(members[i], sizeof(members[i]), ids[at + i], attempts[at + i]);
            argv[2 + i] = members[i];
        }
        redisReply *rep = pl_redis_argv(rc, 2 + k, argv, NULL);
        pl_redis_ok(rep, "batch ZREM");
        if (rep != NULL)
            freeReplyObject(rep);
    }
    pl_redis_release(app->redis, rc);
    free(argv);
    free(members);
}

/* ---------------------------------------------------------------- POST /batches/{id}/schedule */

/* Reads scheduled_at (required; the past means now) and bypass_call_guardrails. 0 or replied. */
static int parse_schedule(pl_req *r, const form *f, int64_t *due_ms, int *bypass)
{
    char *v = NULL;
    int got = form_get(r, f, "scheduled_at", 0, &v);
    if (got < 0)
        return 422;
    int64_t ms;
    if (got == 0 || *form_trim(v) == '\0') {
        free(v);
        return pl_http_error(r, 422,
                             "scheduled_at: is required (ISO 8601 such as "
                             "2025-08-21T10:35:00+05:30; a time already past means now)");
    }
    if (pl_parse_iso8601(form_trim(v), &ms) != 0) {
        int s = pl_http_error(r, 422,
                              "scheduled_at: '%.60s' is not an ISO 8601 date-time such as "
                              "2025-08-21T10:35:00+05:30",
                              form_trim(v));
        free(v);
        return s;
    }
    free(v);
    *due_ms = ms > pl_now_ms() ? ms : 0;
    if ((got = form_get(r, f, "bypass_call_guardrails", 0, &v)) < 0)
        return 422;
    *bypass = 0;
    if (got == 1) {
        const char *b = form_trim(v);
        int ok = strcasecmp(b, "true") == 0 || strcasecmp(b, "false") == 0 || *b == '\0';
        *bypass = strcasecmp(b, "true") == 0;
        free(v);
        if (!ok)
            return pl_http_error(r, 422, "bypass_call_guardrails: must be true or false");
    }
    return 0;
}

/* Explains why a batch could not be scheduled: 404 or 409. */
static int schedule_refused(pl_req *r, pl_dbconn *c, const char *id, const char *account)
{
    const char *p[2] = {id, account};
    PGresult *res = pl_db_exec(c, &state_stmt, p);
    int status;
    if (!pl_db_ok(res))
        status = api_db_error(r, res, "batch schedule");
    else if (PQntuples(res) == 0)
        status = pl_http_error(r, 404, "batch %s not found", id);
    else if (strcmp(PQgetvalue(res, 0, 0), "created") != 0)
        status = pl_http_error(r, 409,
                               "batch %s is %s; only a batch that was never scheduled can be "
                               "scheduled",
                               id, PQgetvalue(res, 0, 0));
    else
        status = pl_http_error(r, 409, "batch %s: its agent %s has been deleted", id,
                               PQgetvalue(res, 0, 2));
    PQclear(res);
    return status;
}

int api_batch_schedule(pl_req *r)
{
    char account[40], id[33];
    int denied = api_auth(r, account);
    if (denied != 0)
        return denied;
    if (batch_path_id(r, id) != 0)
        return 422;
    form f;
    int64_t due_ms = 0;
    int bypass = 0;
    int status = form_read(r, &f, 1);
    if (status == 0)
        status = parse_schedule(r, &f, &due_ms, &bypass);
    form_free(&f);
    if (status != 0)
        return status;

    api_ctx *app = r->app;
    char due[32];
    snprintf(due, sizeof(due), "%lld", (long long)due_ms);
    pl_status to = due_ms > 0 ? PL_ST_SCHEDULED : PL_ST_QUEUED;
    const char *p[5] = {id, account, pl_status_name(to), due_ms > 0 ? due : NULL,
                        bypass ? "true" : "false"};
    pl_dbconn *c = pl_db_acquire(app->db);
    PGresult *res = pl_db_exec(c, &schedule_stmt, p);
    if (!pl_db_ok(res))
        status = api_db_error(r, res, "batch schedule");
    else if (PQntuples(res) == 0)
        status = schedule_refused(r, c, id, account);
    pl_db_release(app->db, c);
    if (status != 0) {
        PQclear(res);
        return status;
    }

    int rows = PQntuples(res), n = 0;
    pl_transition *t = calloc((size_t)rows, sizeof(*t));
    for (int i = 0; t != NULL && i < rows; i++) {
        if (PQgetisnull(res, i, 1))
            continue;
        pl_transition *e = &t[n++];
        snprintf(e->execution_id, sizeof(e->execution_id), "%s", PQgetvalue(res, i, 1));
        snprintf(e->account_id, sizeof(e->account_id), "%s", account);
        snprintf(e->agent_id, sizeof(e->agent_id), "%s", PQgetvalue(res, i, 0));
        e->event_id = strtoll(PQgetvalue(res, i, 2), NULL, 10);
        e->from = PL_ST__COUNT;
        e->to = to;
    }
    PQclear(res);
    if (t == NULL) {
        PL_ERROR("batch %s: %d executions committed; no memory to enqueue them", id, rows);
        return pl_http_error(r, 500, "internal error after scheduling batch %s", id);
    }
    enqueue_dials(app, t, n, due_ms);
    for (int i = 0; i < n; i++)
        pl_state_publish(app->bus, &t[i]);
    free(t);
    char out[200];
    snprintf(out, sizeof(out),
             "{\"message\":\"success\",\"state\":\"scheduled\",\"batch_status\":\"%s\","
             "\"executions\":%d}",
             pl_status_name(to), n);
    return pl_http_json(r, 200, out);
}

/* ---------------------------------------------------------------- stop and delete */

/* BEGIN, lock the batch row, then count its unfinished executions (a snapshot taken after the
 * lock). 1 locked (transaction open, *status_out and *unfinished set), 0 not found (404 sent,
 * rolled back), -1 failed (500 sent, rolled back). */
static int lock_batch(pl_req *r, pl_dbconn *c, const char *id, const char *account,
                      char status_out[32], long *unfinished, const char *what)
{
    char terminal[256];
    terminal_statuses(terminal, sizeof(terminal));
    const char *p[3] = {id, account, terminal};
    PGresult *res = pl_db_query(c, "BEGIN", 0, NULL);
    int ok = pl_db_ok(res), rc = -1;
    PQclear(res);
    if (!ok)
        return api_db_error(r, NULL, what), -1;
    res = pl_db_exec(c, &lock_stmt, p);
    if (!pl_db_ok(res)) {
        api_db_error(r, res, what);
    } else if (PQntuples(res) == 0) {
        pl_http_error(r, 404, "batch %s not found", id);
        rc = 0;
    } else {
        snprintf(status_out, 32, "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
        res = pl_db_exec(c, &unfinished_stmt, p);
        if (pl_db_ok(res)) {
            *unfinished = strtol(PQgetvalue(res, 0, 0), NULL, 10);
            rc = 1;
        } else {
            api_db_error(r, res, what);
        }
    }
    PQclear(res);
    if (rc != 1)
        PQclear(pl_db_query(c, "ROLLBACK", 0, NULL));
    return rc;
}

/* Runs `st` (id, account) then COMMIT; 0, or -1 with 500 sent and the transaction rolled back. */
static int update_and_commit(pl_req *r, pl_dbconn *c, const pl_db_stmt *st, const char *id,
                             const char *account, const char *what)
{
    const char *p[2] = {id, account};
    PGresult *res = pl_db_exec(c, st, p);
    if (!pl_db_ok(res)) {
        api_db_error(r, res, what);
        PQclear(res);
        PQclear(pl_db_query(c, "ROLLBACK", 0, NULL));
        return -1;
    }
    PQclear(res);
    res = pl_db_query(c, "COMMIT", 0, NULL);
    int ok = pl_db_ok(res);
    if (!ok)
        api_db_error(r, res, what);
    PQclear(res);
    return ok ? 0 : -1;
}

int api_batch_stop(pl_req *r)
{
    char account[40], id[33], bstatus[32];
    long unfinished = 0;
    int denied = api_auth(r, account);
    if (denied != 0)
        return denied;
    if (batch_path_id(r, id) != 0)
        return 422;
    api_ctx *app = r->app;
    pl_dbconn *c = pl_db_acquire(app->db);
    int locked = lock_batch(r, c, id, account, bstatus, &unfinished, "batch stop");
    if (locked != 1) {
        pl_db_release(app->db, c);
        return locked == 0 ? 404 : 500;
    }
    int executed =
        (strcmp(bstatus, "scheduled") == 0 || strcmp(bstatus, "queued") == 0) && unfinished == 0;
    if (strcmp(bstatus, "stopped") == 0 || executed) {
        PQclear(pl_db_query(c, "ROLLBACK", 0, NULL));
        pl_db_release(app->db, c);
        return pl_http_error(r, 409, "batch %s is %s; there is nothing left to stop", id,
                             executed ? "executed" : "already stopped");
    }
    if (update_and_commit(r, c, &mark_stopped_stmt, id, account, "batch stop") != 0) {
        pl_db_release(app->db, c);
        return 500;
    }

    /* The batch is stopped: nothing can schedule it now. Stop each waiting execution through
     * the state machine; one the scheduler takes meanwhile is simply not stopped. */
    char sources[128];
    pl_status_sources(PL_ST_STOPPED, sources, sizeof(sources));
    const char *p[3] = {id, account, sources};
    PGresult *res = pl_db_exec(c, &waiting_stmt, p);
    if (!pl_db_ok(res)) {
        pl_db_release(app->db, c);
        int s = api_db_error(r, res, "batch stop");
        PQclear(res);
        return s;
    }
    int rows = PQntuples(res), n = 0;
    pl_transition *t = calloc((size_t)rows + 1, sizeof(*t));
    char(*ids)[40] = calloc((size_t)rows + 1, sizeof(*ids));
    char(*attempts)[16] = calloc((size_t)rows + 1, sizeof(*attempts));
    for (int i = 0; t != NULL && ids != NULL && attempts != NULL && i < rows; i++) {
        if (pl_state_apply(c, PQgetvalue(res, i, 0), PL_ST_STOPPED, NULL, NULL, &t[n]) != 0)
            continue;
        snprintf(ids[n], sizeof(ids[n]), "%s", PQgetvalue(res, i, 0));
        snprintf(attempts[n], sizeof(attempts[n]), "%s", PQgetvalue(res, i, 1));
        exec_cache_invalidate(app->executions, ids[n]);
        n++;
    }
    pl_db_release(app->db, c);
    PQclear(res);
    int status;
    if (t == NULL || ids == NULL || attempts == NULL) {
        status = pl_http_error(r, 500, "internal error while stopping batch %s; retry", id);
    } else {
        unschedule(app, ids, attempts, n);
        for (int i = 0; i < n; i++)
            pl_state_publish(app->bus, &t[i]);
        char out[160];
        snprintf(out, sizeof(out),
                 "{\"message\":\"success\",\"state\":\"stopped\",\"stopped_executions\":%d}", n);
        status = pl_http_json(r, 200, out);
    }
    free(t);
    free(ids);
    free(attempts);
    return status;
}

int api_batch_delete(pl_req *r)
{
    char account[40], id[33], bstatus[32];
    long unfinished = 0;
    int denied = api_auth(r, account);
    if (denied != 0)
        return denied;
    if (batch_path_id(r, id) != 0)
        return 422;
    api_ctx *app = r->app;
    pl_dbconn *c = pl_db_acquire(app->db);
    int locked = lock_batch(r, c, id, account, bstatus, &unfinished, "batch delete");
    int status;
    if (locked != 1) {
        status = locked == 0 ? 404 : 500;
    } else if (unfinished > 0) {
        PQclear(pl_db_query(c, "ROLLBACK", 0, NULL));
        status = pl_http_error(r, 409,
                               "batch %s has %ld executions not finished yet; stop it first "
                               "(POST /batches/%s/stop) and let calls in progress end",
                               id, unfinished, id);
    } else if (update_and_commit(r, c, &mark_deleted_stmt, id, account, "batch delete") != 0) {
        status = 500;
    } else {
        status = pl_http_json(r, 200, "{\"message\":\"success\",\"state\":\"deleted\"}");
    }
    pl_db_release(app->db, c);
    return status;
}

/* ---------------------------------------------------------------- reads */

int api_batch_get(pl_req *r)
{
    char account[40], id[33], terminal[256], nf[100];
    int denied = api_auth(r, account);
    if (denied != 0)
        return denied;
    if (batch_path_id(r, id) != 0)
        return 422;
    terminal_statuses(terminal, sizeof(terminal));
    const char *p[3] = {id, account, terminal};
    snprintf(nf, sizeof(nf), "batch %s not found", id);
    return api_reply_row_json(r, &get_stmt, p, "batch get", nf);
}

int api_batch_list(pl_req *r)
{
    char account[40], terminal[256], nf[200];
    int denied = api_auth(r, account);
    if (denied != 0)
        return denied;
    if (api_path_uuid(r, r->params[0], "agent_id") != 0)
        return 422;
    terminal_statuses(terminal, sizeof(terminal));
    const char *p[3] = {r->params[0], account, terminal};
    snprintf(nf, sizeof(nf), "agent %s not found", r->params[0]);
    return api_reply_row_json(r, &list_stmt, p, "batch list", nf);
}

int api_batch_executions(pl_req *r)
{
    char account[40], id[33], nf[100];
    int denied = api_auth(r, account);
    if (denied != 0)
        return denied;
    if (batch_path_id(r, id) != 0)
        return 422;
    const char *p[2] = {id, account};
    snprintf(nf, sizeof(nf), "batch %s not found", id);
    return api_reply_row_json(r, &executions_stmt, p, "batch executions", nf);
}
