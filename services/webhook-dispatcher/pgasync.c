/* One statement at a time on a Postgres connection of the loop's own, without blocking the
 * loop: the statement is sent with libpq's non-blocking calls, its socket joins the loop's
 * curl_multi_poll, and the result is read when it is complete. A blocking round trip would
 * stall every HTTP transfer for its duration (measured: 6-8 ms per call on the loaded 2-core
 * machine, which then showed as the receivers' answers waiting unread).
 *
 * The connection is taken from the service's pool for the life of the loop. Statements are
 * prepared on it once per backend (again after a reconnect) under their own names, apart from
 * the ones pl_db_exec prepares. A broken connection is given back to the pool, which resets it
 * on the next acquire.
 */
#include <stdio.h>
#include <string.h>

#include "dispatcher.h"
#include "error.h"
#include "log.h"

static int configure(wd_pg *p)
{
    PGconn *pg = pl_db_pg(p->c);
    if (PQstatus(pg) != CONNECTION_OK)
        return PL_ERR_DB;
    /* Generic plans come with every pooled connection (pl_db): the claim's row estimates vary
     * with its LIMIT parameter, which kept the planner on custom plans, planned again at every
     * execution (0.7-5 ms measured); the generic plan is the same index walk. */
    PGresult *r;
    int ok;
    if (p->async_commit) {
        r = PQexec(pg, "SET synchronous_commit = off");
        ok = pl_db_ok(r);
        PQclear(r);
        if (!ok)
            return PL_ERR_DB;
    }
    for (int i = 0; i < p->nstmts; i++) {
        char name[96];
        snprintf(name, sizeof(name), "async_%s", p->stmts[i]->name);
        r = PQprepare(pg, name, p->stmts[i]->sql, p->stmts[i]->nparams, NULL);
        ok = pl_db_ok(r);
        if (!ok)
            PL_ERROR("webhooks: prepare %s: %s", name, PQresultErrorMessage(r));
        PQclear(r);
        if (!ok)
            return PL_ERR_DB;
    }
    if (PQsetnonblocking(pg, 1) != 0)
        return PL_ERR_DB;
    p->pid = PQbackendPID(pg);
    return PL_OK;
}

int wd_pg_open(wd_pg *p, pl_db *db, int async_commit, const pl_db_stmt *const *stmts, int n)
{
    memset(p, 0, sizeof(*p));
    p->db = db;
    p->async_commit = async_commit;
    p->stmts = stmts;
    p->nstmts = n;
    p->c = pl_db_acquire(db);
    return configure(p);
}

void wd_pg_close(wd_pg *p)
{
    if (p->c == NULL)
        return;
    PGconn *pg = pl_db_pg(p->c);
    if (p->busy) { /* drop the pending result; the pool's next user must find it idle */
        PGresult *r;
        PQsetnonblocking(pg, 0);
        while ((r = PQgetResult(pg)) != NULL)
            PQclear(r);
    }
    PQsetnonblocking(pg, 0);
    pl_db_release(p->db, p->c);
    p->c = NULL;
    p->busy = 0;
}

/* After a failure: the connection goes back to the pool (reset on its next acquire) and a
 * fresh one is taken and configured. Returns 0 when the new one is usable. */
static int reopen(wd_pg *p)
{
    wd_pg_close(p);
    p->c = pl_db_acquire(p->db);
    return configure(p);
}

pl_dbconn *wd_pg_conn(wd_pg *p)
{
    return p->busy ? NULL : p->c;
}

int wd_pg_send(wd_pg *p, const pl_db_stmt *st, const char *const *params)
{
    if (p->busy)
        return PL_ERR_INVALID;
    PGconn *pg = pl_db_pg(p->c);
    if ((PQstatus(pg) != CONNECTION_OK || PQbackendPID(pg) != p->pid) && reopen(p) != PL_OK) {
        PL_ERROR("webhooks: postgres connection unusable: %s", PQerrorMessage(pl_db_pg(p->c)));
        return PL_ERR_DB;
    }
    pg = pl_db_pg(p->c);
    char name[96];
    snprintf(name, sizeof(name), "async_%s", st->name);
    if (!PQsendQueryPrepared(pg, name, st->nparams, params, NULL, NULL, 0)) {
        PL_ERROR("webhooks: send %s: %s", st->name, PQerrorMessage(pg));
        reopen(p);
        return PL_ERR_DB;
    }
    p->busy = 1;
    p->want_write = PQflush(pg) == 1; /* 1: the rest goes out as the socket drains */
    return PL_OK;
}

int wd_pg_fd(const wd_pg *p, int *fd, int *write)
{
    if (!p->busy)
        return 0;
    *fd = PQsocket(pl_db_pg(p->c));
    *write = p->want_write;
    return *fd >= 0;
}

int wd_pg_result(wd_pg *p, PGresult **out)
{
    *out = NULL;
    if (!p->busy)
        return 0;
    PGconn *pg = pl_db_pg(p->c);
    if (p->want_write) {
        int f = PQflush(pg);
        p->want_write = f == 1;
        if (f < 0)
            goto broken;
        if (f == 1)
            return 0;
    }
    if (!PQconsumeInput(pg))
        goto broken;
    if (PQisBusy(pg))
        return 0;
    /* One statement: one result, then NULL. */
    PGresult *r = PQgetResult(pg), *extra;
    while ((extra = PQgetResult(pg)) != NULL)
        PQclear(extra);
    p->busy = 0;
    *out = r;
    if (r == NULL || !pl_db_ok(r)) {
        if (PQstatus(pg) != CONNECTION_OK)
            reopen(p);
    }
    return 1;
broken:
    PL_ERROR("webhooks: postgres connection lost: %s", PQerrorMessage(pg));
    p->busy = 0;
    reopen(p);
    return 1; /* done, with no result */
}
