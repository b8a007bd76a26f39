/* One error convention for libparley: 0 is success, a small negative enum otherwise. */
#ifndef PL_ERROR_H
#define PL_ERROR_H

typedef enum {
    PL_OK = 0,
    PL_ERR_NOMEM = -1,    /* allocation failed */
    PL_ERR_INVALID = -2,  /* caller passed bad input */
    PL_ERR_DB = -3,       /* Postgres refused or is unreachable */
    PL_ERR_REDIS = -4,    /* Redis refused or is unreachable */
    PL_ERR_BUS = -5,      /* nng socket error */
    PL_ERR_NOTFOUND = -6, /* the row or key does not exist */
    PL_ERR_CONFLICT = -7, /* a guarded update found the row in another state */
    PL_ERR_TOOBIG = -8,   /* input exceeds a hard limit */
    PL_ERR_IO = -9,       /* file or socket I/O failed */
    PL_ERR_TIMEOUT = -10, /* a deadline passed */
} pl_err;

/* Static text for an error code; never NULL. */
const char *pl_strerror(int err);

#endif
