/* state: the edge table, and transitions as guarded UPDATE + outbox row on real Postgres. */
#include "check.h"
#include "check_db.h"
#include "db.h"
#include "state.h"

static pl_db *db;
static char account[40], agent[40];

static void names_roundtrip(void)
{
    for (int s = 0; s < PL_ST__COUNT; s++) {
        pl_status back;
        CHECK(pl_status_parse(pl_status_name((pl_status)s), &back) == 0);
        CHECK(back == (pl_status)s);
    }
    pl_status x;
    CHECK(pl_status_parse("done", &x) != 0);
    CHECK(pl_status_is_terminal(PL_ST_COMPLETED));
    CHECK(!pl_status_is_terminal(PL_ST_CALL_DISCONNECTED));
}

static void edges_follow_design(void)
{
    CHECK(pl_status_edge(PL_ST_QUEUED, PL_ST_INITIATED));
    CHECK(pl_status_edge(PL_ST_INITIATED, PL_ST_IN_PROGRESS)); /* fast answer */
    CHECK(pl_status_edge(PL_ST_RINGING, PL_ST_RESCHEDULED));
    CHECK(pl_status_edge(PL_ST_RESCHEDULED, PL_ST_QUEUED));
    CHECK(pl_status_edge(PL_ST_CALL_DISCONNECTED, PL_ST_COMPLETED));
    CHECK(!pl_status_edge(PL_ST_IN_PROGRESS, PL_ST_RINGING)); /* never backwards */
    CHECK(!pl_status_edge(PL_ST_CALL_DISCONNECTED, PL_ST_QUEUED));
    CHECK(!pl_status_edge(PL_ST_IN_PROGRESS, PL_ST_COMPLETED)); /* post-processing first */
    CHECK(!pl_status_edge(PL_ST_INITIATED, PL_ST_STOPPED));
    for (int t = PL_ST_COMPLETED; t < PL_ST__COUNT; t++)
        for (int to = 0; to < PL_ST__COUNT; to++)
            CHECK(!pl_status_edge((pl_status)t, (pl_status)to)); /* terminal stays terminal */
    char buf[256];
    pl_status_sources(PL_ST_STOPPED, buf, sizeof(buf));
    CHECK_STR(buf, "{scheduled,queued,rescheduled}");
}

static void new_execution(char id[40], const char *status)
{
    pl_dbconn *c = pl_db_acquire(db);
    const char *p[3] = {account, agent, status};
    PGresult *r = pl_db_query(c,
                              "INSERT INTO executions (account_id, agent_id, status, to_number)"
                              " VALUES ($1, $2, $3, '+14155550100') RETURNING id",
                              3, p);
    CHECK(pl_db_ok(r));
    snprintf(id, 40, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    pl_db_release(db, c);
}

static int count(const char *sql, const char *id)
{
    pl_dbconn *c = pl_db_acquire(db);
    const char *p[1] = {id};
    PGresult *r = pl_db_query(c, sql, 1, p);
    int n = pl_db_ok(r) ? atoi(PQgetvalue(r, 0, 0)) : -1;
    PQclear(r);
    pl_db_release(db, c);
    return n;
}

static void transition_writes_outbox(void)
{
    char id[40];
    new_execution(id, "queued");
    pl_transition t;
    pl_dbconn *c = pl_db_acquire(db);
    CHECK(pl_state_apply(c, id, PL_ST_INITIATED, "{\"provider\":\"twilio\"}", NULL, &t) == 0);
    CHECK(t.from == PL_ST_QUEUED && t.to == PL_ST_INITIATED && t.event_id > 0);
    CHECK_STR(t.account_id, account);
    CHECK(pl_state_apply(c, id, PL_ST_RINGING, "{\"provider_call_id\":\"CA1\"}", NULL, &t) == 0);
    pl_db_release(db, c);
    CHECK(count("SELECT count(*) FROM execution_events WHERE execution_id = $1", id) == 2);
    CHECK(count("SELECT count(*) FROM executions WHERE id = $1 AND status = 'ringing'"
                " AND telephony_data->>'provider' = 'twilio'"
                " AND telephony_data->>'provider_call_id' = 'CA1'",
                id) == 1);
}

static void late_callback_cannot_move_backwards(void)
{
    char id[40];
    new_execution(id, "in-progress");
    pl_transition t;
    pl_dbconn *c = pl_db_acquire(db);
    CHECK(pl_state_apply(c, id, PL_ST_RINGING, NULL, NULL, &t) == PL_ERR_CONFLICT);
    CHECK(t.from == PL_ST_IN_PROGRESS);
    CHECK(pl_state_apply(c, id, PL_ST_CALL_DISCONNECTED, NULL, NULL, &t) == 0);
    /* duplicate delivery of the same status: refused, nothing written */
    CHECK(pl_state_apply(c, id, PL_ST_CALL_DISCONNECTED, NULL, NULL, &t) == PL_ERR_CONFLICT);
    CHECK(pl_state_apply(c, "00000000-0000-0000-0000-000000000000", PL_ST_QUEUED, NULL, NULL, &t) ==
          PL_ERR_NOTFOUND);
    pl_db_release(db, c);
    CHECK(count("SELECT count(*) FROM execution_events WHERE execution_id = $1", id) == 1);
    CHECK(count("SELECT count(*) FROM executions WHERE id = $1 AND status = 'call-disconnected'",
                id) == 1);
}

static void error_message_recorded(void)
{
    char id[40];
    new_execution(id, "queued");
    pl_transition t;
    pl_dbconn *c = pl_db_acquire(db);
    CHECK(pl_state_apply(c, id, PL_ST_ERROR, NULL, "carrier rejected the number", &t) == 0);
    pl_db_release(db, c);
    CHECK(count("SELECT count(*) FROM executions WHERE id = $1 AND error_message = "
                "'carrier rejected the number'",
                id) == 1);
}

int main(void)
{
    db = check_db_seed(2, "0", account, agent);
    if (db == NULL)
        return 1;
    RUN(names_roundtrip);
    RUN(edges_follow_design);
    RUN(transition_writes_outbox);
    RUN(late_callback_cannot_move_backwards);
    RUN(error_message_recorded);
    pl_db_close(db);
    return check_summary();
}
