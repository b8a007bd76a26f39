#include "api.h"
#include "validate.h"

int api_reply_row_json(pl_req *r, const pl_db_stmt *st, const char *const *params, const char *what,
                       const char *notfound)
{
    api_ctx *app = r->app;
    pl_dbconn *c = pl_db_acquire(app->db);
    PGresult *res = pl_db_exec(c, st, params);
    pl_db_release(app->db, c);
    int status;
    if (!pl_db_ok(res))
        status = api_db_error(r, res, what);
    else if (PQntuples(res) == 0 || PQgetisnull(res, 0, 0))
        status = pl_http_error(r, 404, "%s", notfound);
    else
        status = pl_http_send(r, 200, "application/json", PQgetvalue(res, 0, 0),
                              (size_t)PQgetlength(res, 0, 0), NULL);
    PQclear(res);
    return status;
}

int api_path_uuid(pl_req *r, const char *id, const char *field)
{
    if (pl_is_uuid(id))
        return 0;
    pl_http_error(r, 422, "%s: '%s' is not a UUID", field, id);
    return -1;
}

PGresult *api_exec(pl_req *r, const pl_db_stmt *st, const char *const *params)
{
    api_ctx *app = r->app;
    pl_dbconn *c = pl_db_acquire(app->db);
    PGresult *res = pl_db_exec(c, st, params);
    pl_db_release(app->db, c);
    return res;
}
