/* db: pool, prepared statements, migrations applied once, error codes. Real Postgres. */
#include <pthread.h>
#include <unistd.h>

#include "check.h"
#include "db.h"

static pl_db *db;

static void migrations_apply_once(void)
{
    const char *dir = check_env("PL_MIGRATIONS_DIR");
    pl_dbconn *c = pl_db_acquire(db);
    CHECK(pl_db_migrate(c, dir) == 0);
    CHECK(pl_db_migrate(c, dir) == 0); /* second run: nothing to do, no error */
    PGresult *r = pl_db_query(c, "SELECT count(*) FROM schema_migrations", 0, NULL);
    CHECK(pl_db_ok(r));
    CHECK(atoi(PQgetvalue(r, 0, 0)) >= 1);
    PQclear(r);
    r = pl_db_query(c, "SELECT count(*) FROM accounts", 0, NULL);
    CHECK(pl_db_ok(r)); /* the schema exists */
    PQclear(r);
    pl_db_release(db, c);
}

static void migration_failure_is_reported_and_rolled_back(void)
{
    char dir[] = "/tmp/pl-mig-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof(path), "%s/001_bad.sql", dir);
    FILE *f = fopen(path, "w");
    fputs("CREATE TABLE half_done (x int); SELECT no_such_function();", f);
    fclose(f);
    pl_dbconn *c = pl_db_acquire(db);
    CHECK(pl_db_migrate(c, dir) != 0);
    PGresult *r = pl_db_query(c, "SELECT to_regclass('half_done') IS NULL", 0, NULL);
    CHECK(pl_db_ok(r) && strcmp(PQgetvalue(r, 0, 0), "t") == 0);
    PQclear(r);
    r = pl_db_query(c, "SELECT count(*) FROM schema_migrations WHERE version = '001_bad.sql'", 0,
                    NULL);
    CHECK(pl_db_ok(r) && strcmp(PQgetvalue(r, 0, 0), "0") == 0);
    PQclear(r);
    pl_db_release(db, c);
    unlink(path);
    rmdir(dir);
}

static const pl_db_stmt echo = {"t_echo", "SELECT $1::text || '!'", 1};

static void prepared_statements_reused(void)
{
    pl_dbconn *c = pl_db_acquire(db);
    for (int i = 0; i < 3; i++) {
        const char *p[1] = {"hi"};
        PGresult *r = pl_db_exec(c, &echo, p);
        CHECK(pl_db_ok(r));
        CHECK_STR(PQgetvalue(r, 0, 0), "hi!");
        PQclear(r);
    }
    PGresult *r = pl_db_query(
        c, "SELECT count(*) FROM pg_prepared_statements WHERE name = 't_echo'", 0, NULL);
    CHECK_STR(PQgetvalue(r, 0, 0), "1");
    PQclear(r);
    pl_db_release(db, c);
}

static void sqlstate_of_errors(void)
{
    pl_dbconn *c = pl_db_acquire(db);
    PGresult *r = pl_db_query(c, "SELECT 1/0", 0, NULL);
    CHECK(!pl_db_ok(r));
    CHECK_STR(pl_db_sqlstate(r), "22012");
    PQclear(r);
    /* A NULL parameter is SQL NULL; parameters are never spliced into SQL text. */
    const char *p[1] = {"'); DROP TABLE accounts; --"};
    r = pl_db_query(c, "SELECT $1::text", 1, p);
    CHECK_STR(PQgetvalue(r, 0, 0), p[0]);
    PQclear(r);
    pl_db_release(db, c);
}

/* The binary's statement table: what pl_db_warm prepares (and, for warm ones, plans). */
PL_DB_STMT_WARM(warm_insert) = {
    "t_warm_insert",
    "INSERT INTO warm_probe (v) VALUES (COALESCE($1, 'null')) RETURNING v",
    1,
};
PL_DB_STMT(cold_lookup) = {"t_cold_lookup", "SELECT v FROM warm_probe WHERE v = $1", 1};
PL_DB_STMT(broken_lookup) = {"t_broken_lookup", "SELECT * FROM no_such_table WHERE id = $1", 1};

/* On every connection of the pool: the table's statements are prepared, the warm one has its
 * generic plan and changed nothing (rolled back), the cold one was never run, the broken one is
 * skipped without harm and still reports its error when used; sessions plan generically. */
static void warm_prepares_every_statement_on_every_connection(void)
{
    pl_dbconn *c = pl_db_acquire(db);
    PQclear(pl_db_query(c, "CREATE TABLE warm_probe (v text NOT NULL)", 0, NULL));
    pl_db_release(db, c);
    CHECK(pl_db_warm(db) == 4); /* 2 connections x 2 statements Postgres accepts */
    pl_dbconn *held[2] = {pl_db_acquire(db), pl_db_acquire(db)};
    for (int i = 0; i < 2; i++) {
        PGresult *r = pl_db_query(held[i],
                                  "SELECT string_agg(name || ':' || generic_plans, ',' ORDER BY"
                                  " name) FROM pg_prepared_statements WHERE name IN"
                                  " ('t_warm_insert', 't_cold_lookup', 't_broken_lookup')",
                                  0, NULL);
        CHECK_STR(PQgetvalue(r, 0, 0), "t_cold_lookup:0,t_warm_insert:1");
        PQclear(r);
        r = pl_db_query(held[i], "SHOW plan_cache_mode", 0, NULL);
        CHECK_STR(PQgetvalue(r, 0, 0), "force_generic_plan");
        PQclear(r);
    }
    PGresult *r = pl_db_query(held[0], "SELECT count(*) FROM warm_probe", 0, NULL);
    CHECK_STR(PQgetvalue(r, 0, 0), "0");
    PQclear(r);
    r = pl_db_exec(held[0], &broken_lookup, (const char *[]){"x"});
    CHECK(!pl_db_ok(r));
    CHECK_STR(pl_db_sqlstate(r), "42P01");
    PQclear(r);
    r = pl_db_exec(held[1], &warm_insert, (const char *[]){"kept"});
    CHECK(pl_db_ok(r));
    CHECK_STR(PQgetvalue(r, 0, 0), "kept");
    PQclear(r);
    pl_db_release(db, held[0]);
    pl_db_release(db, held[1]);
}

static void *worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 50; i++) {
        pl_dbconn *c = pl_db_acquire(db);
        const char *p[1] = {"x"};
        PGresult *r = pl_db_exec(c, &echo, p);
        if (!pl_db_ok(r))
            check_case_failed = 1;
        PQclear(r);
        pl_db_release(db, c);
    }
    return NULL;
}

static void pool_shared_by_threads(void)
{
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        pthread_create(&t[i], NULL, worker, NULL);
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    PGresult *r;
    pl_dbconn *c = pl_db_acquire(db);
    r = pl_db_query(c,
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND backend_type = 'client backend'",
                    0, NULL);
    CHECK(atoi(PQgetvalue(r, 0, 0)) <= 2); /* 8 threads, 2 connections */
    PQclear(r);
    pl_db_release(db, c);
}

static void reconnects_after_backend_dies(void)
{
    pl_dbconn *c = pl_db_acquire(db);
    PGresult *r = pl_db_query(c, "SELECT pg_backend_pid()", 0, NULL);
    char pid[32];
    snprintf(pid, sizeof(pid), "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    pl_dbconn *other = pl_db_acquire(db);
    const char *p[1] = {pid};
    r = pl_db_query(other, "SELECT pg_terminate_backend($1::int)", 1, p);
    PQclear(r);
    pl_db_release(db, other);
    r = pl_db_query(c, "SELECT 1", 0, NULL); /* fails: its backend is gone */
    CHECK(!pl_db_ok(r));
    PQclear(r);
    pl_db_release(db, c);
    /* The next acquire of that connection resets it. */
    int ok = 0;
    for (int i = 0; i < 2; i++) {
        c = pl_db_acquire(db);
        r = pl_db_exec(c, &echo, (const char *[]){"y"});
        ok += pl_db_ok(r);
        PQclear(r);
        r = pl_db_query(c, "SHOW plan_cache_mode", 0, NULL); /* session settings again */
        ok += pl_db_ok(r) && strcmp(PQgetvalue(r, 0, 0), "force_generic_plan") == 0;
        PQclear(r);
        pl_db_release(db, c);
    }
    CHECK(ok == 4);
}

int main(void)
{
    db = pl_db_open(check_env("PL_TEST_DATABASE_URL"), 2);
    if (db == NULL) {
        printf("cannot connect\n0 passed, 1 failed\n");
        return 1;
    }
    RUN(migrations_apply_once);
    RUN(migration_failure_is_reported_and_rolled_back);
    RUN(prepared_statements_reused);
    RUN(sqlstate_of_errors);
    RUN(warm_prepares_every_statement_on_every_connection);
    RUN(pool_shared_by_threads);
    RUN(reconnects_after_backend_dies);
    pl_db_close(db);
    return check_summary();
}
