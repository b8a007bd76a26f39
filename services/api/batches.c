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
#include "csv.h"
#include "error.h"
#include "log.h"
#include "multipart.h"
#include "queue.h"
#include "state.h"
#include "validate.h"

#define DIAL_STREAM       "dial"
#define BATCH_MAX_ROWS    10000 /* contact rows in one CSV */
#define BATCH_MAX_FROM    100   /* from_phone_numbers */
#define BATCH_MAX_COLUMNS 256
#define FILE_NAME_MAX     255
#define ENQUEUE_CHUNK     500 /* jobs per Redis command */

/* ---------------------------------------------------------------- retry_config */

/* Lifted from calls.c so that POST /call and POST /batches validate retry_config alike. */
int api_validate_retry_config(const cJSON *rc, char *err, size_t cap)
{
    static const char *const retry_statuses[] = {"no-answer", "busy", "failed", "error"};
    const cJSON *f;
    if (!cJSON_IsObject(rc)) {
        snprintf(err, cap, "retry_config: must be an object");
        return -1;
    }
    cJSON_ArrayForEach(f, rc)
    {
        const char *k = f->string;
        if (strcmp(k, "enabled") == 0 || strcmp(k, "retry_on_voicemail") == 0) {
            if (!cJSON_IsBool(f)) {
                snprintf(err, cap, "retry_config.%s: must be true or false", k);
                return -1;
            }
        } else if (strcmp(k, "max_retries") == 0) {
            if (!cJSON_IsNumber(f) || f->valuedouble != (double)(int)f->valuedouble ||
                f->valueint < 1 || f->valueint > 3) {
                snprintf(err, cap, "retry_config.max_retries: must be an integer from 1 to 3");
                return -1;
            }
        } else if (strcmp(k, "retry_on_statuses") == 0) {
            const cJSON *s;
            if (!cJSON_IsArray(f)) {
                snprintf(err, cap, "retry_config.retry_on_statuses: must be an array");
                return -1;
            }
            cJSON_ArrayForEach(s, f)
            {
                int ok = 0;
                for (int i = 0; i < 4 && cJSON_IsString(s); i++)
                    ok |= strcmp(s->valuestring, retry_statuses[i]) == 0;
                if (!ok) {
                    snprintf(err, cap,
                             "retry_config.retry_on_statuses: items must be no-answer, busy, "
                             "failed or error");
                    return -1;
                }
            }
        } else if (strcmp(k, "retry_intervals_minutes") == 0) {
            const cJSON *s;
            if (!cJSON_IsArray(f) || cJSON_GetArraySize(f) == 0 || cJSON_GetArraySize(f) > 10) {
                snprintf(err, cap,
                         "retry_config.retry_intervals_minutes: must be an array of 1 "
                         "to 10 integers");
                return -1;
            }
            cJSON_ArrayForEach(s, f)
            {
                if (!cJSON_IsNumber(s) || s->valuedouble != (double)(int)s->valuedouble ||
                    s->valueint < 1 || s->valueint > 10080) {
                    snprintf(err, cap,
                             "retry_config.retry_intervals_minutes: items must be "
                             "integers from 1 to 10080 (one week)");
                    return -1;
                }
            }
        }
    }
    return 0;
}

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

static const pl_db_stmt create_stmt = {
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
static const pl_db_stmt schedule_stmt = {
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

static const pl_db_stmt state_stmt = {
    "batch_state",
    "SELECT b.status, EXISTS (SELECT 1 FROM agents a WHERE a.id = b.agent_id"
    "  AND a.deleted_at IS NULL), b.agent_id FROM batches b"
    " WHERE b.id = $1 AND b.account_id = $2 AND b.deleted_at IS NULL",
    2,
};

static const pl_db_stmt lock_stmt = {
    "batch_lock",
    "SELECT status FROM batches WHERE id = $1 AND account_id = $2 AND deleted_at IS NULL"
    " FOR UPDATE",
    2,
};

static const pl_db_stmt unfinished_stmt = {
    "batch_unfinished",
    "SELECT count(*) FROM executions WHERE batch_id = $1 AND account_id = $2"
    " AND NOT status = ANY($3::text[])",
    3,
};

static const pl_db_stmt mark_stopped_stmt = {
    "batch_mark_stopped",
    "UPDATE batches SET status = 'stopped', updated_at = now() WHERE id = $1 AND account_id = $2",
    2,
};

static const pl_db_stmt mark_deleted_stmt = {
    "batch_mark_deleted",
    "UPDATE batches SET deleted_at = now(), updated_at = now() WHERE id = $1 AND account_id = $2",
    2,
};

static const pl_db_stmt waiting_stmt = {
    "batch_waiting",
    "SELECT id, attempt FROM executions WHERE batch_id = $1 AND account_id = $2"
    " AND status = ANY($3::text[]) ORDER BY id",
    3,
};

static const pl_db_stmt get_stmt = {
    "batch_get",
    "SELECT (" BATCH_JSON " || jsonb_build_object('invalid_contacts', b.invalid_rows))::text"
    " FROM batches b" BATCH_COUNTS
    " WHERE b.id = $1 AND b.account_id = $2 AND b.deleted_at IS NULL",
    3,
};

static const pl_db_stmt list_stmt = {
    "batch_list",
    "SELECT (SELECT COALESCE(jsonb_agg(" BATCH_JSON " ORDER BY b.created_at DESC, b.id),"
    "  '[]'::jsonb) FROM batches b" BATCH_COUNTS
    "  WHERE b.agent_id = a.id AND b.account_id = a.account_id AND b.deleted_at IS NULL)::text"
    " FROM agents a WHERE a.id = $1 AND a.account_id = $2 AND a.deleted_at IS NULL",
    3,
};

static const pl_db_stmt executions_stmt = {
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

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

/* The delayed-set member of a dial job (execution, attempt): the canonical encoding of
 * common/queue.c (pl_delay_add), so that POST /call/{id}/stop can remove it. */
static void delay_member(char *buf, size_t cap, const char *execution_id, const char *attempt)
{
    snprintf(buf, cap,
             "{\"s\":\"" DIAL_STREAM "\",\"f\":[\"execution_id\",\"%s\",\"attempt\",\"%s\"]}",
             execution_id, attempt);
}

/* ---------------------------------------------------------------- request bodies */

typedef enum { FORM_NONE, FORM_MULTIPART, FORM_URLENCODED, FORM_JSON } form_kind;

/* A form body of any kind a Bolna client may send; fields are read by name. */
typedef struct {
    form_kind kind;
    char *body;
    size_t len;
    pl_multipart mp;
    cJSON *json;
} form;

static void form_free(form *f)
{
    pl_multipart_free(&f->mp);
    free(f->body);
    cJSON_Delete(f->json);
    memset(f, 0, sizeof(*f));
}

static int media_is(const char *ctype, const char *type)
{
    size_t n = strlen(type);
    return ctype != NULL && strncasecmp(ctype, type, n) == 0 &&
           (ctype[n] == '\0' || ctype[n] == ';' || ctype[n] == ' ');
}

/* Reads the body by its Content-Type: multipart/form-data always; with `others`, also JSON,
 * urlencoded, or nothing at all (no Content-Type and no body). 0, or the status replied. */
static int form_read(pl_req *r, form *f, int others)
{
    char boundary[PL_MULTIPART_MAX_BOUNDARY + 1], err[512];
    int status;
    memset(f, 0, sizeof(*f));
    const char *ctype = pl_http_header(r, "Content-Type");
    if (others && media_is(ctype, "application/json")) {
        f->json = pl_http_json_body(r, &status);
        f->kind = FORM_JSON;
        return f->json != NULL ? 0 : status;
    }
    if (!media_is(ctype, "multipart/form-data") &&
        !(others && (ctype == NULL || media_is(ctype, "application/x-www-form-urlencoded"))))
        return pl_http_error(r, 415, "Content-Type: %s %s takes multipart/form-data%s, not %s",
                             r->method, r->path, others ? " (or JSON)" : "",
                             ctype != NULL ? ctype : "no Content-Type");
    int rc = pl_http_body(r, &f->body, &f->len);
    if (rc == PL_ERR_TOOBIG)
        return 413;
    if (rc != PL_OK)
        return pl_http_error(r, 500, "cannot read request body");
    if (ctype == NULL) {
        if (f->len > 0)
            return pl_http_error(r, 415, "Content-Type: a body needs a Content-Type");
        f->kind = FORM_NONE;
        return 0;
    }
    if (media_is(ctype, "application/x-www-form-urlencoded")) {
        f->kind = FORM_URLENCODED;
        return 0;
    }
    f->kind = FORM_MULTIPART;
    if (pl_multipart_boundary(ctype, boundary, sizeof(boundary), err, sizeof(err)) != 0)
        return pl_http_error(r, 400, "%s", err);
    if (pl_multipart_parse(f->body, f->len, boundary, &f->mp, err, sizeof(err)) != 0)
        return pl_http_error(r, 400, "request body is not valid multipart/form-data: %s", err);
    return 0;
}

/* The idx-th value of field `name` as a new string in *out. 1 present, 0 absent, or -1 when
 * the value is not UTF-8 text (or, in JSON, not a string or boolean): 422 sent. */
static int form_get(pl_req *r, const form *f, const char *name, int idx, char **out)
{
    *out = NULL;
    if (f->kind == FORM_JSON) {
        const cJSON *v = idx == 0 ? cJSON_GetObjectItemCaseSensitive(f->json, name) : NULL;
        if (v == NULL || cJSON_IsNull(v))
            return 0;
        if (cJSON_IsBool(v))
            *out = strdup(cJSON_IsTrue(v) ? "true" : "false");
        else if (cJSON_IsString(v))
            *out = strdup(v->valuestring);
        else
            return pl_http_error(r, 422, "%s: must be a string", name), -1;
        return *out != NULL ? 1 : (pl_http_error(r, 500, "out of memory"), -1);
    }
    size_t n;
    if (f->kind == FORM_MULTIPART) {
        const pl_mpart *p = pl_multipart_get(&f->mp, name, idx);
        if (p == NULL)
            return 0;
        if ((*out = malloc(p->len + 1)) == NULL)
            return pl_http_error(r, 500, "out of memory"), -1;
        memcpy(*out, p->data, p->len);
        (*out)[p->len] = '\0';
        n = p->len;
    } else if (f->kind == FORM_URLENCODED) {
        if ((*out = malloc(f->len + 1)) == NULL)
            return pl_http_error(r, 500, "out of memory"), -1;
        int got = mg_get_var2(f->body, f->len, name, *out, f->len + 1, (size_t)idx);
        if (got < 0) {
            free(*out);
            *out = NULL;
            return 0;
        }
        n = (size_t)got;
    } else {
        return 0;
    }
    if (!pl_is_utf8(*out, n)) {
        free(*out);
        *out = NULL;
        return pl_http_error(r, 422, "%s: is not UTF-8 text", name), -1;
    }
    return 1;
}

/* ---------------------------------------------------------------- POST /batches */

typedef struct {
    char *agent_id;
    cJSON *from;     /* array of E.164 strings, or NULL */
    char *retry;     /* validated retry_config JSON text, or NULL */
    char *file_name; /* basename, or NULL */
    cJSON *contacts; /* [{r, n, v}] */
    cJSON *invalid;  /* [{row, line, reason}] */
    int total, valid;
} batch_upload;

static void upload_free(batch_upload *u)
{
    free(u->agent_id);
    cJSON_Delete(u->from);
    free(u->retry);
    free(u->file_name);
    cJSON_Delete(u->contacts);
    cJSON_Delete(u->invalid);
}

/* Adds each number of one from_phone_numbers value: a JSON array, or a comma-separated list. */
static int add_from_numbers(cJSON *out, char *value, char *err, size_t cap)
{
    char *v = trim(value);
    if (*v == '[') {
        cJSON *arr = cJSON_Parse(v);
        const cJSON *item;
        if (!cJSON_IsArray(arr)) {
            cJSON_Delete(arr);
            return snprintf(err, cap, "from_phone_numbers: '%.80s' is not a JSON array", v), -1;
        }
        cJSON_ArrayForEach(item, arr)
        {
            if (!cJSON_IsString(item) || !pl_is_e164(item->valuestring)) {
                cJSON_Delete(arr);
                return snprintf(err, cap,
                                "from_phone_numbers: every item must be an E.164 number such as "
                                "+14155550100"),
                       -1;
            }
            cJSON_AddItemToArray(out, cJSON_CreateString(item->valuestring));
        }
        cJSON_Delete(arr);
    } else {
        for (char *save = NULL, *tok = strtok_r(v, ",", &save); tok != NULL;
             tok = strtok_r(NULL, ",", &save)) {
            tok = trim(tok);
            if (*tok == '\0')
                continue;
            if (!pl_is_e164(tok))
                return snprintf(err, cap,
                                "from_phone_numbers: '%.40s' is not an E.164 number such as "
                                "+14155550100",
                                tok),
                       -1;
            cJSON_AddItemToArray(out, cJSON_CreateString(tok));
        }
    }
    if (cJSON_GetArraySize(out) > BATCH_MAX_FROM)
        return snprintf(err, cap, "from_phone_numbers: more than %d numbers", BATCH_MAX_FROM), -1;
    return 0;
}

static void add_invalid(batch_upload *u, long row, long line, const char *reason)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "row", (double)row);
    cJSON_AddNumberToObject(o, "line", (double)line);
    cJSON_AddStringToObject(o, "reason", reason);
    cJSON_AddItemToArray(u->invalid, o);
}

/* Reads the CSV into contacts and invalid rows. 0, or -1 with a message (starting "file:") for
 * a file that cannot be a batch at all. */
static int read_contacts(batch_upload *u, const char *data, size_t len, char *err, size_t cap)
{
    char reason[256], cerr[200];
    pl_csv csv;
    if (len == 0)
        return snprintf(err, cap, "file: is empty; send a CSV with a contact_number column"), -1;
    if (!pl_is_utf8(data, len))
        return snprintf(err, cap, "file: is not UTF-8 text (save the CSV as UTF-8)"), -1;
    pl_csv_init(&csv, data, len);
    int rc = pl_csv_next(&csv, cerr, sizeof(cerr));
    int ncols = csv.nfields, number_col = -1;
    char **cols = NULL;
    if (rc == 0)
        snprintf(err, cap, "file: is empty; send a CSV with a contact_number column"), rc = -1;
    else if (rc < 0)
        snprintf(err, cap, "file: %s", cerr);
    else if (ncols > BATCH_MAX_COLUMNS)
        snprintf(err, cap, "file: more than %d columns", BATCH_MAX_COLUMNS), rc = -1;
    else if ((cols = calloc((size_t)ncols, sizeof(*cols))) == NULL)
        snprintf(err, cap, "file: out of memory"), rc = -1;
    for (int i = 0; rc == 1 && i < ncols; i++) {
        cols[i] = strdup(trim(csv.fields[i]));
        if (cols[i] == NULL || cols[i][0] == '\0') {
            snprintf(err, cap, "file: column %d of the header row has no name", i + 1);
            rc = -1;
            break;
        }
        for (int j = 0; j < i; j++)
            if (strcmp(cols[i], cols[j]) == 0) {
                snprintf(err, cap, "file: column '%.60s' appears twice in the header row", cols[i]);
                rc = -1;
            }
        if (strcmp(cols[i], "contact_number") == 0)
            number_col = i;
    }
    if (rc == 1 && number_col < 0) {
        snprintf(err, cap, "file: the header row has no contact_number column (columns: ");
        for (int i = 0; i < ncols; i++) {
            size_t n = strlen(err);
            snprintf(err + n, cap - n, "%s%.40s", i > 0 ? ", " : "", cols[i]);
        }
        size_t n = strlen(err);
        snprintf(err + n, cap - n, ")");
        rc = -1;
    }
    while (rc == 1 && (rc = pl_csv_next(&csv, cerr, sizeof(cerr))) == 1) {
        int blank = 1;
        for (int i = 0; i < csv.nfields && blank; i++)
            blank = strspn(csv.fields[i], " \t") == csv.lens[i];
        if (blank) /* ",,," lines that spreadsheets write after the data */
            continue;
        if (++u->total > BATCH_MAX_ROWS) {
            snprintf(err, cap, "file: more than %d contact rows; split it into several batches",
                     BATCH_MAX_ROWS);
            rc = -1;
            break;
        }
        if (csv.nfields != ncols) {
            snprintf(reason, sizeof(reason), "has %d fields, the header row has %d", csv.nfields,
                     ncols);
            add_invalid(u, csv.record_number, csv.record_line, reason);
            continue;
        }
        const char *number = trim(csv.fields[number_col]);
        if (*number == '\0') {
            add_invalid(u, csv.record_number, csv.record_line, "contact_number: is empty");
            continue;
        }
        if (!pl_is_e164(number)) {
            snprintf(reason, sizeof(reason),
                     "contact_number: '%.40s' is not an E.164 number such as +14155550100 "
                     "('+', country code, 7 to 15 digits)",
                     number);
            add_invalid(u, csv.record_number, csv.record_line, reason);
            continue;
        }
        cJSON *c = cJSON_CreateObject(), *vars = cJSON_CreateObject();
        cJSON_AddNumberToObject(c, "r", (double)csv.record_number);
        cJSON_AddStringToObject(c, "n", number);
        for (int i = 0; i < ncols; i++)
            if (i != number_col)
                cJSON_AddItemToObject(vars, cols[i], cJSON_CreateString(csv.fields[i]));
        cJSON_AddItemToObject(c, "v", vars);
        cJSON_AddItemToArray(u->contacts, c);
        u->valid++;
    }
    if (rc < 0 && err[0] == '\0')
        snprintf(err, cap, "file: %s", cerr);
    if (rc == 0 && u->total == 0) {
        snprintf(err, cap, "file: has a header row but no contact rows");
        rc = -1;
    } else if (rc == 0 && u->valid == 0) {
        const cJSON *first = cJSON_GetArrayItem(u->invalid, 0);
        snprintf(err, cap, "file: none of the %d contact rows is valid (row %d: %s)", u->total,
                 cJSON_GetObjectItem(first, "row")->valueint,
                 cJSON_GetObjectItem(first, "reason")->valuestring);
        rc = -1;
    }
    for (int i = 0; cols != NULL && i < ncols; i++)
        free(cols[i]);
    free(cols);
    pl_csv_free(&csv);
    return rc < 0 ? -1 : 0;
}

/* Reads and validates every field of the upload. 0, or the status replied. */
static int parse_upload(pl_req *r, const form *f, batch_upload *u)
{
    static const char *const from_fields[] = {"from_phone_numbers", "from_phone_numbers[]",
                                              "from_phone_number"};
    char err[512] = "";
    char *v = NULL;
    int got;
    u->contacts = cJSON_CreateArray();
    u->invalid = cJSON_CreateArray();

    if ((got = form_get(r, f, "agent_id", 0, &u->agent_id)) < 0)
        return 422;
    if (got == 0 || *trim(u->agent_id) == '\0')
        return pl_http_error(r, 422, "agent_id: is required");
    if (!pl_is_uuid(trim(u->agent_id)))
        return pl_http_error(r, 422, "agent_id: must be a UUID");
    memmove(u->agent_id, trim(u->agent_id), strlen(trim(u->agent_id)) + 1);

    u->from = cJSON_CreateArray();
    for (size_t k = 0; k < sizeof(from_fields) / sizeof(from_fields[0]); k++)
        for (int i = 0;; i++) {
            if ((got = form_get(r, f, from_fields[k], i, &v)) <= 0) {
                if (got < 0)
                    return 422;
                break;
            }
            int bad = add_from_numbers(u->from, v, err, sizeof(err));
            free(v);
            if (bad)
                return pl_http_error(r, 422, "%s", err);
        }
    if (cJSON_GetArraySize(u->from) == 0) {
        cJSON_Delete(u->from);
        u->from = NULL;
    }

    if ((got = form_get(r, f, "retry_config", 0, &v)) < 0)
        return 422;
    if (got == 1 && *trim(v) != '\0') {
        const char *end = NULL;
        cJSON *rc = pl_json_depth(v, strlen(v)) <= PL_HTTP_MAX_JSON_DEPTH
                        ? cJSON_ParseWithOpts(trim(v), &end, 1)
                        : NULL;
        int bad = rc == NULL ? (snprintf(err, sizeof(err),
                                         "retry_config: is not a JSON object such as "
                                         "{\"enabled\":true,\"max_retries\":2}"),
                                -1)
                             : api_validate_retry_config(rc, err, sizeof(err));
        if (bad == 0)
            u->retry = cJSON_PrintUnformatted(rc);
        cJSON_Delete(rc);
        if (bad) {
            free(v);
            return pl_http_error(r, 422, "%s", err);
        }
    }
    free(v);

    const pl_mpart *file = f->kind == FORM_MULTIPART ? pl_multipart_get(&f->mp, "file", 0) : NULL;
    if (file == NULL)
        return pl_http_error(r, 422, "file: is required (the CSV of contacts, as a file part)");
    if (file->filename != NULL && file->filename[0] != '\0') {
        const char *base = file->filename;
        for (const char *p = base; *p != '\0'; p++)
            if (*p == '/' || *p == '\\')
                base = p + 1; /* clients may send a path; keep the name only */
        if (strlen(base) > FILE_NAME_MAX || !pl_is_utf8(base, strlen(base)))
            return pl_http_error(r, 422, "file: the file name must be UTF-8 and at most %d bytes",
                                 FILE_NAME_MAX);
        u->file_name = strdup(base);
    }
    if (read_contacts(u, file->data, file->len, err, sizeof(err)) != 0)
        return pl_http_error(r, 422, "%s", err);
    return 0;
}

int api_batch_create(pl_req *r)
{
    char account[40];
    if (api_auth(r, account) != 0)
        return 401;
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
    if (got == 0 || *trim(v) == '\0') {
        free(v);
        return pl_http_error(r, 422,
                             "scheduled_at: is required (ISO 8601 such as "
                             "2025-08-21T10:35:00+05:30; a time already past means now)");
    }
    if (pl_parse_iso8601(trim(v), &ms) != 0) {
        int s = pl_http_error(r, 422,
                              "scheduled_at: '%.60s' is not an ISO 8601 date-time such as "
                              "2025-08-21T10:35:00+05:30",
                              trim(v));
        free(v);
        return s;
    }
    free(v);
    *due_ms = ms > pl_now_ms() ? ms : 0;
    if ((got = form_get(r, f, "bypass_call_guardrails", 0, &v)) < 0)
        return 422;
    *bypass = 0;
    if (got == 1) {
        const char *b = trim(v);
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
    if (api_auth(r, account) != 0)
        return 401;
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
    if (api_auth(r, account) != 0)
        return 401;
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
    if (api_auth(r, account) != 0)
        return 401;
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
    if (api_auth(r, account) != 0)
        return 401;
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
    if (api_auth(r, account) != 0)
        return 401;
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
    if (api_auth(r, account) != 0)
        return 401;
    if (batch_path_id(r, id) != 0)
        return 422;
    const char *p[2] = {id, account};
    snprintf(nf, sizeof(nf), "batch %s not found", id);
    return api_reply_row_json(r, &executions_stmt, p, "batch executions", nf);
}
