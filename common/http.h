/* HTTP serving over civetweb: one routing table per service, JSON replies written with a single
 * mg_write, a hard body-size limit, Bolna-shaped JSON errors, and /healthz, /readyz, /metrics.
 *
 * Threading: civetweb runs each keep-alive connection on its own worker thread for as long as it
 * stays open, so `threads` bounds concurrent clients; idle keep-alive is closed after
 * keepalive_ms. Handlers run on those threads and must be thread-safe.
 */
#ifndef PL_HTTP_H
#define PL_HTTP_H

#include <stddef.h>

#include <civetweb.h>
#include <cjson/cJSON.h>

#define PL_HTTP_MAX_PARAMS 4
/* JSON bodies nested deeper are refused (400) before parsing: the parser recurses per level on a
 * worker thread's stack. Agent configs nest about 8 deep. */
#define PL_HTTP_MAX_JSON_DEPTH 64

typedef struct {
    struct mg_connection *conn;
    const struct mg_request_info *ri;
    const char *method;
    const char *path;
    char params[PL_HTTP_MAX_PARAMS][128]; /* the {} segments of the matched pattern, in order */
    void *app;                            /* the service context given to pl_http_start */
    size_t max_body;
} pl_req;

/* A handler replies (exactly once) and returns the HTTP status it sent. */
typedef int (*pl_handler)(pl_req *req);

typedef struct {
    const char *method;  /* "GET", "POST", ... */
    const char *pattern; /* "/v2/agent/{}/executions": {} matches one non-empty segment */
    pl_handler fn;
    const char *name; /* metric label */
} pl_route;

typedef struct {
    const char *port; /* "8080" or "127.0.0.1:8080" */
    int threads;
    int keepalive_ms;
    size_t max_body;
    /* 0 when the service can take traffic (for /readyz); NULL means always ready. */
    int (*ready)(void *app, char *why, size_t cap);
} pl_http_opts;

typedef struct pl_http pl_http;

/* Starts serving; the routes array must outlive the server. NULL (logged) on failure. */
pl_http *pl_http_start(const pl_http_opts *o, const pl_route *routes, int nroutes, void *app);
void pl_http_stop(pl_http *h);

/* Low-level reply: status line, Content-Type, Content-Length, extra headers (each ending in
 * "\r\n", or NULL), then the body, in one write. */
int pl_http_send(pl_req *r, int status, const char *ctype, const char *body, size_t len,
                 const char *extra_headers);
int pl_http_json(pl_req *r, int status, const char *json);
/* Serializes obj (not freed) and replies. */
int pl_http_cjson(pl_req *r, int status, const cJSON *obj);
/* {"error":status,"message":msg,"detail":msg}. */
int pl_http_error(pl_req *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* pl_http_error with extra headers (each ending in "\r\n"), such as a 416's Content-Range. */
int pl_http_error_with(pl_req *r, int status, const char *extra_headers, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Reads the whole body into a NUL-terminated buffer the caller frees. When the body exceeds
 * max_body it replies 413 itself and returns PL_ERR_TOOBIG; the caller just returns 413. */
int pl_http_body(pl_req *r, char **buf, size_t *len);

/* Reads the body and parses it as a JSON object. On failure it has replied (413, or 400
 * naming the problem) and returns NULL with *status set to the status sent. */
cJSON *pl_http_json_body(pl_req *r, int *status);

const char *pl_http_header(pl_req *r, const char *name);
/* Copies query parameter `name` (URL-decoded) into buf; returns its length, -1 when absent,
 * -2 when too long for buf or not valid UTF-8 once decoded. */
int pl_http_query(pl_req *r, const char *name, char *buf, size_t cap);

/* A Range request header (RFC 9110 14.2) against a representation of `size` bytes: one range of
 * the `bytes` unit, `a-b`, `a-` or `-n` (the last n bytes). 1: serve bytes *first..*last (an end
 * past the size is cut to it); -1: unsatisfiable (answer 416 with `Content-Range: bytes
 * * /size`); 0: no header, or one this server ignores as RFC 9110 allows (several ranges, another
 * unit, bad syntax): serve the whole. */
int pl_http_range(const char *header, long long size, long long *first, long long *last);

/* Matches path against pattern; fills params. 1 on match. Exposed for unit tests. */
int pl_http_match(const char *pattern, const char *path, char params[][128], int maxp);

#endif
