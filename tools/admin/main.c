/* parley-admin: operator commands that have no public API (yet).
 *
 *   parley-admin migrate
 *   parley-admin create-account --name NAME --email EMAIL [--concurrency N] [--wallet AMOUNT]
 *   parley-admin create-key --account ACCOUNT_ID
 *
 * create-account and create-key print the new API key once; only its SHA-256 is stored.
 * Settings: PL_DATABASE_URL, PL_MIGRATIONS_DIR. Output: KEY=VALUE lines (shell-friendly).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "db.h"
#include "error.h"
#include "log.h"

static const char *arg(int argc, char **argv, const char *name, const char *def)
{
    for (int i = 2; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return def;
}

static int new_key(pl_dbconn *c, const char *account)
{
    char rnd[49], key[64], hash[65];
    if (pl_random_hex(rnd, 24) != PL_OK)
        return 1;
    snprintf(key, sizeof(key), "pl_%s", rnd);
    pl_sha256_hex(key, strlen(key), hash);
    char prefix[12];
    snprintf(prefix, sizeof(prefix), "%.10s", key);
    const char *p[3] = {account, hash, prefix};
    PGresult *r = pl_db_query(
        c, "INSERT INTO api_keys (account_id, key_hash, key_prefix) VALUES ($1, $2, $3)", 3, p);
    int ok = pl_db_ok(r);
    if (!ok)
        fprintf(stderr, "create-key: %s", PQresultErrorMessage(r));
    PQclear(r);
    if (ok)
        printf("API_KEY=%s\n", key);
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    pl_log_init("admin", getenv("PL_LOG_LEVEL"));
    if (argc < 2) {
        fprintf(stderr, "usage: parley-admin migrate | create-account --name N --email E "
                        "[--concurrency N] [--wallet X] | create-key --account ID\n");
        return 2;
    }
    const char *url = getenv("PL_DATABASE_URL");
    const char *dir = getenv("PL_MIGRATIONS_DIR");
    pl_db *db = pl_db_open(url != NULL ? url : "postgresql://postgres@127.0.0.1:5432/parley", 1);
    if (db == NULL)
        return 1;
    pl_dbconn *c = pl_db_acquire(db);
    int rc = pl_db_migrate(c, dir != NULL ? dir : "proto/sql") == PL_OK ? 0 : 1;
    if (rc == 0 && strcmp(argv[1], "create-account") == 0) {
        const char *p[4] = {
            arg(argc, argv, "--name", "Demo"), arg(argc, argv, "--email", "demo@example.com"),
            arg(argc, argv, "--concurrency", "10"), arg(argc, argv, "--wallet", "100")};
        PGresult *r = pl_db_query(c,
                                  "INSERT INTO accounts (name, email, concurrency_max, wallet)"
                                  " VALUES ($1, $2, $3::int, $4::numeric) RETURNING id,"
                                  " webhook_secret",
                                  4, p);
        if (pl_db_ok(r)) {
            printf("ACCOUNT_ID=%s\n", PQgetvalue(r, 0, 0));
            /* The key receivers verify X-Parley-Signature with (docs/webhooks.md). */
            printf("WEBHOOK_SECRET=%s\n", PQgetvalue(r, 0, 1));
            rc = new_key(c, PQgetvalue(r, 0, 0));
        } else {
            fprintf(stderr, "create-account: %s", PQresultErrorMessage(r));
            rc = 1;
        }
        PQclear(r);
    } else if (rc == 0 && strcmp(argv[1], "create-key") == 0) {
        const char *account = arg(argc, argv, "--account", NULL);
        if (account == NULL) {
            fprintf(stderr, "create-key: --account ACCOUNT_ID is required\n");
            rc = 2;
        } else {
            rc = new_key(c, account);
        }
    } else if (rc == 0 && strcmp(argv[1], "migrate") != 0) {
        fprintf(stderr, "parley-admin: unknown command '%s'\n", argv[1]);
        rc = 2;
    }
    pl_db_release(db, c);
    pl_db_close(db);
    return rc;
}
