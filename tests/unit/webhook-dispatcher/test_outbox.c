/* The durable contracts of webhook_deliveries on a real Postgres (PL_TEST_DATABASE_URL): the
 * trigger writes one row per event of a webhook agent with the body at that status; only the
 * first pending event of an execution is claimable; a claim is exclusive and fenced; outcomes
 * unblock the next event; released and expired claims come back; redelivery resets a row. */
#include <stdlib.h>

#include "check.h"
#include "dispatcher.h"
#include "error.h"
#include "log.h"
#include "state.h"

static wd w;
static pl_dbconn *c;

static const char *ACCOUNT = "00000000-0000-0000-0000-0000000000a1";
static const char *HOOKED = "00000000-0000-0000-0000-0000000000b1"; /* agent with webhook_url */
static const char *PLAIN = "00000000-0000-0000-0000-0000000000b2";  /* agent without */

static PGresult *q(const char *sql, int n, const char *const *p)
{
    PGresult *r = pl_db_query(c, sql, n, p);
    if (!pl_db_ok(r))
        printf("    SQL failed: %s\n    %s\n", PQresultErrorMessage(r), sql);
    return r;
}

static void exec_sql(const char *sql)
{
    PQclear(q(sql, 0, NULL));
}

static long long scalar(const char *sql, const char *p1)
{
    const char *p[1] = {p1};
    PGresult *r = q(sql, p1 != NULL ? 1 : 0, p);
    long long v = pl_db_ok(r) && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0)
                      ? strtoll(PQgetvalue(r, 0, 0), NULL, 10)
                      : -1;
    PQclear(r);
    return v;
}

/* POST /call's statement shape: the execution and its outbox row in one statement. */
static void new_execution(const char *id, const char *agent)
{
    const char *p[3] = {id, ACCOUNT, agent};
    PQclear(q("WITH ins AS (INSERT INTO executions (id, account_id, agent_id, status, to_number)"
              " VALUES ($1, $2, $3, 'queued', '+14155550100') RETURNING id, account_id, status)"
              " INSERT INTO execution_events (execution_id, account_id, status)"
              " SELECT id, account_id, status FROM ins",
              3, p));
}

/* common/state.c's transition, the way every service moves an execution. */
static void move(const char *id, pl_status to)
{
    pl_transition t;
    CHECK(pl_state_apply(c, id, to, NULL, NULL, &t) == PL_OK);
}

static int claim(int max, wd_delivery **list)
{
    *list = NULL;
    return wd_outbox_claim(&w, c, max, NULL, 0, list);
}

static void free_list(wd_delivery *d)
{
    while (d != NULL) {
        wd_delivery *n = d->next;
        wd_delivery_free(d);
        d = n;
    }
}

static wd_result outcome(const wd_delivery *d, wd_outcome o, int code, int64_t delay)
{
    wd_result r;
    memset(&r, 0, sizeof(r));
    r.event_id = d->event_id;
    r.claims = d->claims;
    r.code = code;
    r.outcome = o;
    r.delay_ms = delay;
    if (o != WD_DELIVERED)
        snprintf(r.error, sizeof(r.error), "HTTP %d: \"quoted\" \\ text", code);
    return r;
}

static void reset(void)
{
    exec_sql("TRUNCATE webhook_deliveries, webhook_bodies, execution_events, executions CASCADE");
}

static void test_trigger_rows_and_bodies(void)
{
    reset();
    const char *e = "00000000-0000-0000-0000-0000000000e1";
    new_execution(e, HOOKED);
    new_execution("00000000-0000-0000-0000-0000000000e2", PLAIN);
    move(e, PL_ST_INITIATED);
    move(e, PL_ST_RINGING);
    CHECK(scalar("SELECT count(*) FROM execution_events", NULL) == 4);
    CHECK(scalar("SELECT count(*) FROM webhook_deliveries", NULL) == 3); /* none for PLAIN */
    /* each body is the execution at its own status, though the execution moved on */
    CHECK(scalar("SELECT count(*) FROM webhook_deliveries d JOIN webhook_bodies b USING (event_id)"
                 " WHERE (b.body::jsonb)->>'status' = d.status AND (b.body::jsonb)->>'id' = $1",
                 e) == 3);
    /* the first is due, the later ones wait for it */
    CHECK(scalar("SELECT count(*) FROM webhook_deliveries WHERE next_attempt_at = 'infinity'",
                 NULL) == 2);
}

static void test_in_order_per_execution(void)
{
    wd_delivery *list;
    CHECK(claim(10, &list) == 1);
    CHECK(list != NULL && strcmp(list->status, "queued") == 0);
    CHECK(list != NULL && list->attempts == 0 && list->claims == 1);
    CHECK(list != NULL && strlen(list->secret) == 64);
    /* claimed: nothing else of that execution is claimable, not even by another replica */
    wd_delivery *again;
    CHECK(claim(10, &again) == 0);
    /* a failed attempt keeps the order: the next event still waits */
    wd_result r = outcome(list, WD_RETRY, 500, 0);
    CHECK(wd_outbox_finish(c, &r, 1) == PL_OK);
    CHECK(scalar("SELECT attempts FROM webhook_deliveries WHERE status = 'queued'", NULL) == 1);
    CHECK(scalar("SELECT count(*) FROM webhook_deliveries WHERE last_error LIKE '%\"quoted\"%'",
                 NULL) == 1);
    free_list(list);
    CHECK(claim(10, &list) == 1 && strcmp(list->status, "queued") == 0);
    CHECK(list->attempts == 1 && list->claims == 2);
    r = outcome(list, WD_DELIVERED, 200, 0);
    CHECK(wd_outbox_finish(c, &r, 1) == PL_OK);
    free_list(list);
    /* delivered: the next one is unblocked and claimable at once */
    CHECK(claim(10, &list) == 1 && strcmp(list->status, "initiated") == 0);
    r = outcome(list, WD_DEAD, 410, 0);
    CHECK(wd_outbox_finish(c, &r, 1) == PL_OK);
    free_list(list);
    /* dead also unblocks */
    CHECK(claim(10, &list) == 1 && strcmp(list->status, "ringing") == 0);
    r = outcome(list, WD_DELIVERED, 204, 0);
    CHECK(wd_outbox_finish(c, &r, 1) == PL_OK);
    free_list(list);
    CHECK(claim(10, &list) == 0);
    CHECK(scalar("SELECT count(*) FROM webhook_deliveries WHERE next_attempt_at IS NULL", NULL) ==
          3);
    CHECK(scalar("SELECT count(*) FROM webhook_deliveries WHERE dead", NULL) == 1);
}

static void test_many_executions_claimed_together(void)
{
    reset();
    char id[40];
    for (int i = 0; i < 20; i++) {
        snprintf(id, sizeof(id), "00000000-0000-0000-0000-%012d", 100 + i);
        new_execution(id, HOOKED);
        move(id, PL_ST_INITIATED);
    }
    wd_delivery *a, *b;
    CHECK(claim(15, &a) == 15);
    CHECK(claim(15, &b) == 5); /* the rest; none twice */
    int seen = 0;
    for (wd_delivery *d = a; d; d = d->next)
        for (wd_delivery *e = b; e; e = e->next)
            seen += d->event_id == e->event_id;
    CHECK(seen == 0);
    for (wd_delivery *d = a; d; d = d->next)
        CHECK(strcmp(d->status, "queued") == 0);
    free_list(a);
    free_list(b);
}

static void test_fencing_and_release(void)
{
    reset();
    const char *e = "00000000-0000-0000-0000-0000000000e3";
    new_execution(e, HOOKED);
    wd_delivery *first, *second;
    CHECK(claim(1, &first) == 1);
    /* the lease runs out (the replica died); another claim takes the row */
    exec_sql("UPDATE webhook_deliveries SET next_attempt_at = now() - interval '1 s'");
    CHECK(claim(1, &second) == 1 && second->claims == first->claims + 1);
    /* the first replica's late outcome is ignored; the second's counts */
    wd_result r = outcome(first, WD_DELIVERED, 200, 0);
    CHECK(wd_outbox_finish(c, &r, 1) == PL_OK);
    CHECK(scalar("SELECT count(*) FROM webhook_deliveries WHERE delivered_at IS NULL", NULL) == 1);
    /* released without an outcome (shutdown): due again at once, no attempt counted */
    CHECK(wd_outbox_release(c, second) == PL_OK);
    CHECK(scalar("SELECT attempts FROM webhook_deliveries", NULL) == 0);
    wd_delivery *third;
    CHECK(claim(1, &third) == 1);
    r = outcome(third, WD_RETRY, 503, 3600000);
    CHECK(wd_outbox_finish(c, &r, 1) == PL_OK);
    /* backing off: not claimable, and the next due time is about an hour away */
    wd_delivery *none;
    CHECK(claim(1, &none) == 0);
    int64_t due = wd_outbox_next_due_ms(c);
    CHECK(due > 3500000 && due <= 3600000);
    free_list(first);
    free_list(second);
    free_list(third);
}

static void test_sweep_unblocks_orphans(void)
{
    reset();
    const char *e = "00000000-0000-0000-0000-0000000000e4";
    new_execution(e, HOOKED);
    move(e, PL_ST_INITIATED);
    /* an outcome written around webhook_finish (as a crash between statements might leave) */
    exec_sql("UPDATE webhook_deliveries SET next_attempt_at = NULL, delivered_at = now()"
             " WHERE status = 'queued'");
    wd_delivery *list;
    CHECK(claim(10, &list) == 0);
    CHECK(wd_outbox_sweep(c) == 1);
    CHECK(claim(10, &list) == 1 && strcmp(list->status, "initiated") == 0);
    free_list(list);
    CHECK(wd_outbox_sweep(c) == 0);
}

static void test_redeliver(void)
{
    reset();
    const char *e = "00000000-0000-0000-0000-0000000000e5";
    new_execution(e, HOOKED);
    wd_delivery *list;
    CHECK(claim(1, &list) == 1);
    long long ev = list->event_id;
    char evs[24];
    snprintf(evs, sizeof(evs), "%lld", ev);
    const char *p[3] = {e, ACCOUNT, evs};
    const char *sql = "SELECT result FROM webhook_redeliver($1, $2, $3)";
    PGresult *r = q(sql, 3, p);
    CHECK(pl_db_ok(r) && strcmp(PQgetvalue(r, 0, 0), "in_flight") == 0);
    PQclear(r);
    wd_result res = outcome(list, WD_DEAD, 500, 0);
    CHECK(wd_outbox_finish(c, &res, 1) == PL_OK);
    free_list(list);
    r = q(sql, 3, p);
    CHECK(pl_db_ok(r) && strcmp(PQgetvalue(r, 0, 0), "scheduled") == 0);
    PQclear(r);
    CHECK(scalar("SELECT attempts + redeliveries * 10 + dead::int FROM webhook_deliveries", NULL) ==
          10);
    CHECK(claim(1, &list) == 1 && list->event_id == ev);
    free_list(list);
    const char *other[3] = {e, "00000000-0000-0000-0000-0000000000ff", evs};
    r = q(sql, 3, other); /* another account: as if it did not exist */
    CHECK(pl_db_ok(r) && strcmp(PQgetvalue(r, 0, 0), "no_execution") == 0);
    PQclear(r);
    const char *missing[3] = {e, ACCOUNT, "999999"};
    r = q(sql, 3, missing);
    CHECK(pl_db_ok(r) && strcmp(PQgetvalue(r, 0, 0), "no_event") == 0);
    PQclear(r);
}

int main(void)
{
    pl_log_init("test", "warn");
    memset(&w, 0, sizeof(w));
    w.cfg.timeout_ms = 10000;
    snprintf(w.svc.id, sizeof(w.svc.id), "test");
    w.svc.db = pl_db_open(check_env("PL_TEST_DATABASE_URL"), 1);
    if (w.svc.db == NULL)
        return 2;
    c = pl_db_acquire(w.svc.db);
    const char *dir = getenv("PL_MIGRATIONS_DIR");
    if (pl_db_migrate(c, dir != NULL ? dir : "proto/sql") != PL_OK)
        return 2;
    exec_sql("INSERT INTO accounts (id, name, email) VALUES"
             " ('00000000-0000-0000-0000-0000000000a1', 't', 't@example.com')"
             " ON CONFLICT DO NOTHING");
    exec_sql("INSERT INTO agents (id, account_id, agent_name, config, prompts, webhook_url) VALUES"
             " ('00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-0000000000a1',"
             "  'hooked', '{}', '{}', 'http://127.0.0.1:9/hook'),"
             " ('00000000-0000-0000-0000-0000000000b2', '00000000-0000-0000-0000-0000000000a1',"
             "  'plain', '{}', '{}', NULL) ON CONFLICT DO NOTHING");
    RUN(test_trigger_rows_and_bodies);
    RUN(test_in_order_per_execution);
    RUN(test_many_executions_claimed_together);
    RUN(test_fencing_and_release);
    RUN(test_sweep_unblocks_orphans);
    RUN(test_redeliver);
    pl_db_release(w.svc.db, c);
    pl_db_close(w.svc.db);
    return check_summary();
}
