#include "error.h"

const char *pl_strerror(int err)
{
    switch (err) {
    case PL_OK:
        return "ok";
    case PL_ERR_NOMEM:
        return "out of memory";
    case PL_ERR_INVALID:
        return "invalid argument";
    case PL_ERR_DB:
        return "database error";
    case PL_ERR_REDIS:
        return "redis error";
    case PL_ERR_BUS:
        return "event bus error";
    case PL_ERR_NOTFOUND:
        return "not found";
    case PL_ERR_CONFLICT:
        return "conflict";
    case PL_ERR_TOOBIG:
        return "too big";
    case PL_ERR_IO:
        return "i/o error";
    case PL_ERR_TIMEOUT:
        return "timeout";
    }
    return "unknown error";
}
