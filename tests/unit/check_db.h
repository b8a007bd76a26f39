/* Unit tests of modules that write executions: a migrated test database (a fresh server per test
 * binary, set by tests/run.py) holding one account and one agent of it. */
#ifndef CHECK_DB_H
#define CHECK_DB_H

#include <stdio.h>

#include "check.h"
#include "db.h"

/* Opens a pool of `size` connections, applies the migrations and inserts the account (with this
 * wallet) and its agent; their ids go to account and agent. NULL when the server is unreachable. */
static inline pl_db *check_db_seed(int size, const char *wallet, char account[40], char agent[40])
{
    pl_db *db = pl_db_open(check_env("PL_TEST_DATABASE_URL"), size);
    if (db == NULL)
        return NULL;
    pl_dbconn *c = pl_db_acquire(db);
    pl_db_migrate(c, check_env("PL_MIGRATIONS_DIR"));
    const char *p[1] = {wallet};
    PGresult *r = pl_db_query(c,
                              "WITH a AS (INSERT INTO accounts (name, email, wallet)"
                              " VALUES ('t', 't@x', $1::numeric) RETURNING id)"
                              " INSERT INTO agents (account_id, agent_name, config, prompts)"
                              " SELECT id, 'a', '{}', '{}' FROM a RETURNING account_id, id",
                              1, p);
    snprintf(account, 40, "%s", PQgetvalue(r, 0, 0));
    snprintf(agent, 40, "%s", PQgetvalue(r, 0, 1));
    PQclear(r);
    pl_db_release(db, c);
    return db;
}

#endif
