/* Postgres access: a small pool of connections shared by a service's threads, parameterized
 * queries only, statements prepared once per connection, and ordered migrations.
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

/* A statement prepared lazily on each connection, identified by its address: declare it static. */
typedef struct {
    const char *name; /* unique among statements */
    const char *sql;
    int nparams;
} pl_db_stmt;

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

/* 0 when a trivial query succeeds on a pooled connection. */
int pl_db_ping(pl_db *db);

#endif
