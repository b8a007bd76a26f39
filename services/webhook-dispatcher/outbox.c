/* The durable side of delivery: claiming due rows of webhook_deliveries, recording outcomes,
 * releasing claims, and the repair sweep. The rows themselves are written by the trigger of
 * proto/sql/005_webhooks.sql in the transaction of each status change.
 *
 * Claims: FOR UPDATE SKIP LOCKED lets replicas claim side by side without waiting on each
 * other or taking the same row; the claim then holds a lease (next_attempt_at = lease_until =
 * now + timeout + margin) instead of a transaction, so no transaction stays open during HTTP.
 * A replica that dies leaves its leases to run out, and its rows become due for anyone. Each
 * claim bumps `claims`, the fencing token an outcome must quote to be recorded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatcher.h"
#include "error.h"
#include "log.h"
#include "validate.h"

/* Only the first pending event of an execution may go: the NOT EXISTS. Blocked rows sit at
 * 'infinity' and never enter the range scan; the check here covers the rare rows that are due
 * while an earlier one is pending again (a redelivery of an earlier event). The rows are then
 * updated by key (= ANY of an array), a plan that does not depend on the table's statistics. */
PL_DB_STMT(claim_stmt) = {
    "wd_claim",
    "WITH due AS ("
    "  SELECT d.event_id FROM webhook_deliveries d"
    "  WHERE d.next_attempt_at <= now() AND d.next_attempt_at < 'infinity'"
    "    AND d.url <> ALL($3::text[])"
    "    AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p"
    "      WHERE p.execution_id = d.execution_id AND p.event_id < d.event_id"
    "        AND p.next_attempt_at IS NOT NULL)"
    "  ORDER BY d.next_attempt_at LIMIT $1"
    "  FOR UPDATE OF d SKIP LOCKED)"
    " UPDATE webhook_deliveries d SET claims = d.claims + 1, lease_owner = $4,"
    "   lease_until = now() + $2::bigint * interval '1 millisecond',"
    "   next_attempt_at = now() + $2::bigint * interval '1 millisecond'"
    " WHERE d.event_id = ANY (ARRAY(SELECT event_id FROM due))"
    " RETURNING d.event_id, d.execution_id, d.status, d.url,"
    "   (SELECT b.body FROM webhook_bodies b WHERE b.event_id = d.event_id), d.attempts,"
    "   d.claims, (SELECT a.webhook_secret FROM accounts a WHERE a.id = d.account_id),"
    "   (extract(epoch FROM d.created_at) * 1000)::bigint",
    4,
};

PL_DB_STMT(finish_stmt) = {
    "wd_finish",
    "SELECT recorded, unblocked FROM webhook_finish($1::bigint[], $2::integer[],"
    " $3::integer[], $4::text[], $5::text[], $6::bigint[])",
    6,
};

PL_DB_STMT(release_stmt) = {
    "wd_release",
    "UPDATE webhook_deliveries d SET next_attempt_at = now(), lease_until = NULL,"
    " lease_owner = NULL FROM unnest($1::bigint[], $2::integer[]) AS u(id, claims)"
    " WHERE d.event_id = ANY ($1::bigint[]) AND d.event_id = u.id AND d.claims = u.claims",
    2,
};

PL_DB_STMT(next_due_stmt) = {
    "wd_next_due",
    "SELECT GREATEST(0, (extract(epoch FROM min(next_attempt_at) - now()) * 1000)::bigint)"
    " FROM webhook_deliveries WHERE next_attempt_at IS NOT NULL"
    " AND next_attempt_at < 'infinity'",
    0,
};

PL_DB_STMT(sweep_stmt) = {
    "wd_sweep",
    "UPDATE webhook_deliveries w SET next_attempt_at = now()"
    " WHERE w.next_attempt_at = 'infinity' AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p"
    "   WHERE p.execution_id = w.execution_id AND p.event_id < w.event_id"
    "     AND p.next_attempt_at IS NOT NULL)",
    0,
};

/* ---- Postgres array literals ---- */

typedef struct {
    char *buf;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->buf, cap);
        if (p == NULL) {
            b->oom = 1;
            return;
        }
        b->buf = p;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

/* Appends one element: NULL when s is NULL, else a quoted string with " and \ escaped. */
static void sb_elem(sbuf *b, const char *s)
{
    if (b->len > 1)
        sb_put(b, ",", 1);
    if (s == NULL) {
        sb_str(b, "NULL");
        return;
    }
    sb_put(b, "\"", 1);
    for (const char *p = s; *p; p++) {
        if (*p == '"' || *p == '\\')
            sb_put(b, "\\", 1);
        sb_put(b, p, 1);
    }
    sb_put(b, "\"", 1);
}

static void sb_num(sbuf *b, long long v)
{
    char n[32];
    snprintf(n, sizeof(n), "%lld", v);
    sb_elem(b, n);
}

static char *dupstr(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p != NULL)
        memcpy(p, s, n);
    return p;
}

void wd_delivery_free(wd_delivery *d)
{
    if (d == NULL)
        return;
    free(d->url);
    free(d->body);
    free(d->secret);
    free(d);
}

const pl_db_stmt *const wd_outbox_async_stmts[] = {&claim_stmt, &finish_stmt};
const int wd_outbox_nasync = 2;

/* The claim's parameters; *buf owns the text of the saturated-URL array. */
static int claim_params(wd *w, int max, const char *const *saturated, int nsaturated,
                        char max_s[16], char lease_s[24], char **buf, const char *p[4])
{
    snprintf(max_s, 16, "%d", max);
    snprintf(lease_s, 24, "%ld", w->cfg.timeout_ms + WD_LEASE_MARGIN_MS);
    sbuf sat = {0};
    sb_str(&sat, "{");
    for (int i = 0; i < nsaturated; i++)
        sb_elem(&sat, saturated[i]);
    sb_str(&sat, "}");
    if (sat.oom) {
        free(sat.buf);
        return PL_ERR_NOMEM;
    }
    *buf = sat.buf;
    p[0] = max_s;
    p[1] = lease_s;
    p[2] = sat.buf;
    p[3] = w->svc.id;
    return PL_OK;
}

int wd_outbox_claimed(PGresult *r, wd_delivery **out)
{
    if (r == NULL || !pl_db_ok(r)) {
        PL_ERROR("webhooks: claim failed: %s", r ? PQresultErrorMessage(r) : "connection lost");
        return PL_ERR_DB;
    }
    int n = PQntuples(r), got = 0;
    for (int i = 0; i < n; i++) {
        wd_delivery *d = calloc(1, sizeof(*d));
        if (d == NULL)
            break; /* unclaimed rows come back when their lease runs out */
        d->event_id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        snprintf(d->execution_id, sizeof(d->execution_id), "%s", PQgetvalue(r, i, 1));
        snprintf(d->status, sizeof(d->status), "%s", PQgetvalue(r, i, 2));
        d->url = dupstr(PQgetvalue(r, i, 3));
        d->body_len = (size_t)PQgetlength(r, i, 4); /* always there: written with the row */
        d->body = malloc(d->body_len + 1);
        if (d->body != NULL)
            memcpy(d->body, PQgetvalue(r, i, 4), d->body_len + 1);
        pl_parse_int(PQgetvalue(r, i, 5), 0, 1 << 30, 0, &d->attempts);
        pl_parse_int(PQgetvalue(r, i, 6), 0, 1 << 30, 0, &d->claims);
        /* An account row always exists; an empty secret would still sign (and be visible). */
        d->secret = dupstr(PQgetisnull(r, i, 7) ? "" : PQgetvalue(r, i, 7));
        d->created_ms = strtoll(PQgetvalue(r, i, 8), NULL, 10);
        if (d->url == NULL || d->body == NULL || d->secret == NULL) {
            wd_delivery_free(d);
            break;
        }
        d->next = *out;
        *out = d;
        got++;
    }
    return got;
}

int wd_outbox_claim(wd *w, pl_dbconn *c, int max, const char *const *saturated, int nsaturated,
                    wd_delivery **out)
{
    char max_s[16], lease_s[24], *buf;
    const char *p[4];
    if (claim_params(w, max, saturated, nsaturated, max_s, lease_s, &buf, p) != PL_OK)
        return PL_ERR_NOMEM;
    PGresult *r = pl_db_exec(c, &claim_stmt, p);
    free(buf);
    int n = wd_outbox_claimed(r, out);
    PQclear(r);
    return n;
}

int wd_outbox_claim_send(wd *w, wd_pg *pg, int max, const char *const *saturated, int nsaturated)
{
    char max_s[16], lease_s[24], *buf;
    const char *p[4];
    if (claim_params(w, max, saturated, nsaturated, max_s, lease_s, &buf, p) != PL_OK)
        return PL_ERR_NOMEM;
    int rc = wd_pg_send(pg, &claim_stmt, p); /* libpq copies the parameters */
    free(buf);
    return rc;
}

static const char *outcome_name(wd_outcome o)
{
    return o == WD_DELIVERED ? "delivered" : o == WD_DEAD ? "dead" : "retry";
}

/* The six array parameters of webhook_finish; bufs[k] own their text. */
static int finish_params(const wd_result *res, int n, sbuf a[6])
{
    memset(a, 0, 6 * sizeof(sbuf));
    for (int k = 0; k < 6; k++)
        sb_str(&a[k], "{");
    for (int i = 0; i < n; i++) {
        sb_num(&a[0], res[i].event_id);
        sb_num(&a[1], res[i].claims);
        if (res[i].code > 0)
            sb_num(&a[2], res[i].code);
        else
            sb_elem(&a[2], NULL);
        sb_elem(&a[3], res[i].error[0] ? res[i].error : NULL);
        sb_elem(&a[4], outcome_name(res[i].outcome));
        sb_num(&a[5], res[i].delay_ms);
    }
    int oom = 0;
    for (int k = 0; k < 6; k++) {
        sb_str(&a[k], "}");
        oom |= a[k].oom;
    }
    if (oom) {
        for (int k = 0; k < 6; k++)
            free(a[k].buf);
        return PL_ERR_NOMEM;
    }
    return PL_OK;
}

int wd_outbox_finished(PGresult *r, int n)
{
    if (r == NULL || !pl_db_ok(r) || PQntuples(r) != 1) {
        PL_ERROR("webhooks: recording %d outcome(s) failed: %s", n,
                 r ? PQresultErrorMessage(r) : "connection lost");
        return PL_ERR_DB;
    }
    int recorded = (int)strtol(PQgetvalue(r, 0, 0), NULL, 10);
    if (recorded < n) /* fenced off: those leases ran out and another claim owns the rows */
        PL_WARN("webhooks: %d of %d outcome(s) were stale (lease expired)", n - recorded, n);
    return (int)strtol(PQgetvalue(r, 0, 1), NULL, 10);
}

int wd_outbox_finish(pl_dbconn *c, const wd_result *res, int n)
{
    if (n == 0)
        return PL_OK;
    if (c == NULL)
        return PL_ERR_DB;
    sbuf a[6];
    if (finish_params(res, n, a) != PL_OK)
        return PL_ERR_NOMEM;
    const char *p[6] = {a[0].buf, a[1].buf, a[2].buf, a[3].buf, a[4].buf, a[5].buf};
    PGresult *r = pl_db_exec(c, &finish_stmt, p);
    int rc = wd_outbox_finished(r, n) < 0 ? PL_ERR_DB : PL_OK;
    PQclear(r);
    for (int k = 0; k < 6; k++)
        free(a[k].buf);
    return rc;
}

int wd_outbox_finish_send(wd_pg *pg, const wd_result *res, int n)
{
    sbuf a[6];
    if (finish_params(res, n, a) != PL_OK)
        return PL_ERR_NOMEM;
    const char *p[6] = {a[0].buf, a[1].buf, a[2].buf, a[3].buf, a[4].buf, a[5].buf};
    int rc = wd_pg_send(pg, &finish_stmt, p);
    for (int k = 0; k < 6; k++)
        free(a[k].buf);
    return rc;
}

int wd_outbox_release(pl_dbconn *c, const wd_delivery *list)
{
    if (list == NULL)
        return PL_OK;
    if (c == NULL)
        return PL_ERR_DB;
    sbuf ids = {0}, claims = {0};
    sb_str(&ids, "{");
    sb_str(&claims, "{");
    for (const wd_delivery *d = list; d != NULL; d = d->next) {
        sb_num(&ids, d->event_id);
        sb_num(&claims, d->claims);
    }
    sb_str(&ids, "}");
    sb_str(&claims, "}");
    int rc = PL_OK;
    if (ids.oom || claims.oom) {
        rc = PL_ERR_NOMEM;
    } else {
        const char *p[2] = {ids.buf, claims.buf};
        PGresult *r = pl_db_exec(c, &release_stmt, p);
        if (!pl_db_ok(r)) {
            PL_ERROR("webhooks: release failed: %s", PQresultErrorMessage(r));
            rc = PL_ERR_DB;
        }
        PQclear(r);
    }
    free(ids.buf);
    free(claims.buf);
    return rc;
}

int64_t wd_outbox_next_due_ms(pl_dbconn *c)
{
    if (c == NULL)
        return -1;
    PGresult *r = pl_db_exec(c, &next_due_stmt, NULL);
    int64_t ms = -1;
    if (pl_db_ok(r) && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
        ms = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return ms;
}

int wd_outbox_sweep(pl_dbconn *c)
{
    if (c == NULL)
        return PL_ERR_DB;
    PGresult *r = pl_db_exec(c, &sweep_stmt, NULL);
    int n = PL_ERR_DB;
    if (pl_db_ok(r))
        n = (int)strtol(PQcmdTuples(r), NULL, 10);
    else
        PL_ERROR("webhooks: sweep failed: %s", PQresultErrorMessage(r));
    PQclear(r);
    return n;
}
