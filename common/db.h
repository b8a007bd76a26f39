/* Postgres access: a small pool of connections shared by a service's threads, parameterized
 * queries only, statements prepared once per connection, and ordered migrations.
 *
 * Every connection plans its prepared statements generically (plan_cache_mode =
 * force_generic_plan, see db.c): write statements whose best plan does not depend on the
 * parameters' values, or run them with pl_db_query.
 *
 * Threading: pl_db_acquire blocks until a connection is free; the caller owns it until
 * pl_db_release. A connection found broken is reset on its next acquire (prepared statements are
 * then prepared again). Results are owned by the caller (PQclear).
 */
#ifndef PL_DB_H
#define PL_DB_H

#include <libpq-fe.h>

typedef struct pl_db pl_db;

typedef struct pl_dbconn pl_dbconn;

/* A statement prepared on each connection, identified by its address. Declare it with
 * PL_DB_STMT(name) = {"name", "SQL", nparams}; at file scope: that also records it in the
 * binary's statement table, which pl_db_warm prepares on every connection at start. A statement
 * not prepared there (a connection reset since, a cap reached) is prepared on its first use.
 *
 * The tables are linker sections (pl_db_stmts, pl_db_stmts_warm) of pointers to the statements;
 * the linker provides their bounds. A section must not share its name with a function: the
 * assembler would bind calls to the section. */
typedef struct {
    const char *name; /* unique among the binary's statements */
    const char *sql;
    int nparams;
} pl_db_stmt;

#define PL_DB_STMT(var)                                                                            \
    static const pl_db_stmt var;                                                                   \
    static const pl_db_stmt *const pl_db_stmt_entry_##var                                          \
        __attribute__((used, section("pl_db_stmts"))) = &var;                                      \
    static const pl_db_stmt var

/* PL_DB_STMT_WARM(name) = {...}; for a statement on a latency-critical path: pl_db_warm also runs
 * it once on every connection, with every parameter NULL, in a transaction it rolls back, so its
 * plan is built before the first request. Only for statements keyed by their parameters, which
 * then match no row (or fail): never one with a LIMIT, a batch or an effect that outlives the
 * transaction (a session advisory lock, a sequence that must not advance). */
#define PL_DB_STMT_WARM(var)                                                                       \
    static const pl_db_stmt var;                                                                   \
    static const pl_db_stmt *const pl_db_warm_entry_##var                                          \
        __attribute__((used, section("pl_db_stmts_warm"))) = &var;                                 \
    PL_DB_STMT(var)

/* Opens `size` connections; returns NULL (and logs why) when the first cannot connect. */
pl_db *pl_db_open(const char *url, int size);
void pl_db_close(pl_db *db);

pl_dbconn *pl_db_acquire(pl_db *db);
void pl_db_release(pl_db *db, pl_dbconn *c);
PGconn *pl_db_pg(pl_dbconn *c);

/* Runs a prepared statement with text parameters (NULL entries are SQL NULL). Never returns NULL:
 * on a lost connection it returns a PGRES_FATAL_ERROR result and marks the connection for reset. */
PGresult *pl_db_exec(pl_dbconn *c, const pl_db_stmt *st, const char *const *params);

/* Runs ad-hoc SQL with text parameters (not prepared): for rare queries built at run time. */
PGresult *pl_db_query(pl_dbconn *c, const char *sql, int nparams, const char *const *params);

/* 1 if the result is a success (tuples or command ok). */
int pl_db_ok(const PGresult *r);

/* The SQLSTATE of a failed result ("23505" ...), or "" */
const char *pl_db_sqlstate(const PGresult *r);

/* Applies every `dir/NNN_name.sql` not yet recorded in schema_migrations, in name order, each in
 * its own transaction, under an advisory lock so replicas starting together apply each once.
 * Returns 0 or a negative pl_err; logs which file failed and why. */
int pl_db_migrate(pl_dbconn *c, const char *dir);

/* Prepares every statement of the binary's table (PL_DB_STMT) on every connection of the pool,
 * and plans the PL_DB_STMT_WARM ones, so that the first requests after a start do not pay for
 * parsing, catalog lookups, planning and a round trip each: every pooled connection meets every
 * statement in the first second of a burst (bench-dial from a cold start at 200 calls/s). Call it
 * after the migrations, before serving. A statement Postgres refuses is logged and left to be
 * prepared on first use, where its error reaches the caller. Returns how many were prepared. */
int pl_db_warm(pl_db *db);

/* 0 when a trivial query succeeds on a pooled connection. */
int pl_db_ping(pl_db *db);

#endif
