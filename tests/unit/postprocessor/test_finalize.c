/* finalize and store on a real Postgres: completion, fields, logs and debit in one transaction;
 * a second finalisation writes nothing; a failure inside rolls everything back; the claim is
 * exclusive between connections. */
#include "check.h"
#include "check_db.h"
#include "db.h"
#include "finalize.h"
#include "store.h"

static pl_db *db;
static char account[40], agent[40];

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

static char *value(const char *sql, const char *param)
{
    pl_dbconn *c = pl_db_acquire(db);
    const char *p[1] = {param};
    PGresult *r = pl_db_query(c, sql, 1, p);
    char *v = pl_db_ok(r) && PQntuples(r) == 1 ? strdup(PQgetvalue(r, 0, 0)) : strdup("?");
    if (!pl_db_ok(r))
        printf("    %s\n", PQresultErrorMessage(r));
    PQclear(r);
    pl_db_release(db, c);
    return v;
}

#define CHECK_SQL(sql, param, want)                                                                \
    do {                                                                                           \
        char *v_ = value(sql, param);                                                              \
        CHECK_STR(v_, want);                                                                       \
        free(v_);                                                                                  \
    } while (0)

static pp_final final_for(const char *id, pp_log_entry *logs, int nlogs)
{
    return (pp_final){.execution_id = id,
                      .duration_s = 42.5,
                      .total_hundredths = 1234, /* 12.34 cents */
                      .cost_json = "{\"llm\":1,\"network\":2,\"platform\":3,\"synthesizer\":4,"
                                   "\"transcriber\":2.34}",
                      .usage_json = "{\"llm_tokens\":0}",
                      .transcript = "assistant: hi\n",
                      .extracted_json = "{\"name\":\"Bruce\"}",
                      .summary = "A short call.",
                      .recording_url = "http://x/recordings/r.wav?exp=1&sig=ab",
                      .logs = logs,
                      .nlogs = nlogs};
}

static void completes_once_and_debits_once(void)
{
    char id[40];
    new_execution(id, "call-disconnected");
    char *before = value("SELECT wallet FROM accounts WHERE id = $1", account);
    pp_log_entry logs[2] = {{"request", "extraction", "openai", "what to extract"},
                            {"response", "extraction", "openai", "{\"name\":\"Bruce\"}"}};
    pp_final f = final_for(id, logs, 2);
    pl_transition t;
    pl_dbconn *c = pl_db_acquire(db);
    CHECK(pp_finalize(c, &f, &t) == PL_OK);
    CHECK(t.from == PL_ST_CALL_DISCONNECTED && t.to == PL_ST_COMPLETED && t.event_id > 0);
    CHECK(pp_finalize(c, &f, &t) == PL_ERR_CONFLICT); /* again: nothing written */
    pl_db_release(db, c);
    CHECK_SQL("SELECT status || ' ' || total_cost || ' ' || conversation_duration || ' ' ||"
              " (extracted_data->>'name') || ' ' || summary FROM executions WHERE id = $1",
              id, "completed 12.34 42.5 Bruce A short call.");
    CHECK_SQL("SELECT count(*) FROM execution_events WHERE execution_id = $1 AND"
              " status = 'completed'",
              id, "1");
    CHECK_SQL("SELECT count(*) FROM execution_logs WHERE execution_id = $1", id, "2");
    CHECK_SQL("SELECT amount FROM wallet_ledger WHERE execution_id = $1", id, "0.1234");
    char want[64];
    snprintf(want, sizeof(want), "%.4f", atof(before) - 0.1234);
    CHECK_SQL("SELECT wallet FROM accounts WHERE id = $1", account, want);
    free(before);
}

static void failure_inside_rolls_back(void)
{
    char id[40];
    new_execution(id, "call-disconnected");
    char *before = value("SELECT wallet FROM accounts WHERE id = $1", account);
    pp_final f = final_for(id, NULL, 0);
    f.extracted_json = "{not json"; /* refused by the jsonb cast, after the transition */
    pl_transition t;
    pl_dbconn *c = pl_db_acquire(db);
    CHECK(pp_finalize(c, &f, &t) == PL_ERR_DB);
    pl_db_release(db, c);
    CHECK_SQL("SELECT status FROM executions WHERE id = $1", id, "call-disconnected");
    CHECK_SQL("SELECT count(*) FROM execution_events WHERE execution_id = $1", id, "0");
    CHECK_SQL("SELECT count(*) FROM wallet_ledger WHERE execution_id = $1", id, "0");
    char *after = value("SELECT wallet FROM accounts WHERE id = $1", account);
    CHECK_STR(after, before);
    free(before);
    free(after);
    /* the connection is usable again (the transaction was rolled back) */
    c = pl_db_acquire(db);
    f.extracted_json = NULL;
    CHECK(pp_finalize(c, &f, &t) == PL_OK);
    pl_db_release(db, c);
    CHECK_SQL("SELECT extracted_data IS NULL FROM executions WHERE id = $1", id, "t");
}

static void only_from_call_disconnected(void)
{
    char id[40];
    new_execution(id, "in-progress");
    pp_final f = final_for(id, NULL, 0);
    pl_transition t;
    pl_dbconn *c = pl_db_acquire(db);
    CHECK(pp_finalize(c, &f, &t) == PL_ERR_CONFLICT);
    pl_db_release(db, c);
    CHECK_SQL("SELECT count(*) FROM wallet_ledger WHERE execution_id = $1", id, "0");
}

static void claim_is_exclusive(void)
{
    char id[40];
    new_execution(id, "call-disconnected");
    pl_dbconn *a = pl_db_acquire(db);
    pl_dbconn *b = pl_db_acquire(db);
    CHECK(pp_claim(a, id) == 1);
    CHECK(pp_claim(b, id) == 0);
    pp_unclaim(a, id);
    CHECK(pp_claim(b, id) == 1);
    pp_unclaim(b, id);
    pp_exec e;
    CHECK(pp_load(a, id, &e) == PL_OK);
    CHECK(e.status == PL_ST_CALL_DISCONNECTED && e.usage_json == NULL && e.nturns == 0);
    CHECK(cJSON_IsObject(e.telephony));
    CHECK(pp_load_turns(a, &e) == PL_OK && e.nturns == 0);
    pp_exec_free(&e);
    CHECK(pp_load(a, "00000000-0000-0000-0000-000000000000", &e) == PL_ERR_NOTFOUND);
    pl_db_release(db, a);
    pl_db_release(db, b);
}

int main(void)
{
    db = check_db_seed(2, "10", account, agent);
    if (db == NULL)
        return 1;
    RUN(completes_once_and_debits_once);
    RUN(failure_inside_rolls_back);
    RUN(only_from_call_disconnected);
    RUN(claim_is_exclusive);
    pl_db_close(db);
    return check_summary();
}
