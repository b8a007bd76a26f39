#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "error.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "validate.h"

#define MAX_ROUTES 64

typedef struct {
    pl_metric *by_class[6]; /* 1xx..5xx */
    pl_histogram *latency;
} route_stats;

struct pl_http {
    struct mg_context *ctx;
    const pl_route *routes;
    int nroutes;
    route_stats stats[MAX_ROUTES + 1]; /* last: unmatched */
    void *app;
    pl_http_opts opts;
};

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 416:
        return "Range Not Satisfiable";
    case 422:
        return "Unprocessable Entity";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    }
    return "Status";
}

int pl_http_send(pl_req *r, int status, const char *ctype, const char *body, size_t len,
                 const char *extra_headers)
{
    char stackbuf[8192];
    char head[512];
    int hl = snprintf(head, sizeof(head),
                      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s\r\n", status,
                      reason(status), ctype, len, extra_headers != NULL ? extra_headers : "");
    size_t total = (size_t)hl + len;
    char *out = total <= sizeof(stackbuf) ? stackbuf : malloc(total);
    if (out == NULL) {
        mg_write(r->conn, head, (size_t)hl);
        mg_write(r->conn, body, len);
        return status;
    }
    memcpy(out, head, (size_t)hl);
    memcpy(out + hl, body, len);
    mg_write(r->conn, out, total);
    if (out != stackbuf)
        free(out);
    return status;
}

int pl_http_json(pl_req *r, int status, const char *json)
{
    return pl_http_send(r, status, "application/json", json, strlen(json), NULL);
}

int pl_http_cjson(pl_req *r, int status, const cJSON *obj)
{
    char *s = cJSON_PrintUnformatted(obj);
    if (s == NULL)
        return pl_http_error(r, 500, "out of memory");
    pl_http_json(r, status, s);
    free(s);
    return status;
}

static int error_reply(pl_req *r, int status, const char *extra_headers, const char *fmt,
                       va_list ap) __attribute__((format(printf, 4, 0)));

static int error_reply(pl_req *r, int status, const char *extra_headers, const char *fmt,
                       va_list ap)
{
    char msg[1024];
    char body[2400];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t len = (size_t)snprintf(body, sizeof(body), "{\"error\":%d,\"message\":\"", status);
    len = pl_json_escape(body, sizeof(body) - 512, len, msg);
    len += (size_t)snprintf(body + len, sizeof(body) - len, "\",\"detail\":\"");
    len = pl_json_escape(body, sizeof(body) - 8, len, msg);
    len += (size_t)snprintf(body + len, sizeof(body) - len, "\"}");
    return pl_http_send(r, status, "application/json", body, len, extra_headers);
}

int pl_http_error(pl_req *r, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int st = error_reply(r, status, status == 429 ? "Retry-After: 1\r\n" : NULL, fmt, ap);
    va_end(ap);
    return st;
}

int pl_http_error_with(pl_req *r, int status, const char *extra_headers, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int st = error_reply(r, status, extra_headers, fmt, ap);
    va_end(ap);
    return st;
}

int pl_http_body(pl_req *r, char **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    long long cl = r->ri->content_length;
    if (cl > (long long)r->max_body) {
        pl_http_error(r, 413, "request body of %lld bytes exceeds the limit of %zu bytes", cl,
                      r->max_body);
        return PL_ERR_TOOBIG;
    }
    size_t cap = cl >= 0 ? (size_t)cl + 1 : 4096;
    char *b = malloc(cap);
    if (b == NULL)
        return PL_ERR_NOMEM;
    size_t n = 0;
    for (;;) {
        if (n + 1 >= cap) {
            if (cap > r->max_body + 1) {
                free(b);
                pl_http_error(r, 413, "request body exceeds the limit of %zu bytes", r->max_body);
                return PL_ERR_TOOBIG;
            }
            cap *= 2;
            char *nb = realloc(b, cap);
            if (nb == NULL) {
                free(b);
                return PL_ERR_NOMEM;
            }
            b = nb;
        }
        int got = mg_read(r->conn, b + n, cap - 1 - n);
        if (got <= 0)
            break;
        n += (size_t)got;
        if (n > r->max_body) {
            free(b);
            pl_http_error(r, 413, "request body exceeds the limit of %zu bytes", r->max_body);
            return PL_ERR_TOOBIG;
        }
    }
    b[n] = '\0';
    *buf = b;
    *len = n;
    return PL_OK;
}

cJSON *pl_http_json_body(pl_req *r, int *status)
{
    char *body;
    size_t len;
    int rc = pl_http_body(r, &body, &len);
    if (rc == PL_ERR_TOOBIG) {
        *status = 413;
        return NULL;
    }
    if (rc != PL_OK) {
        *status = pl_http_error(r, 500, "cannot read request body");
        return NULL;
    }
    if (len == 0) {
        free(body);
        *status = pl_http_error(r, 400, "request body is empty; a JSON object is required");
        return NULL;
    }
    if (!pl_is_utf8(body, len)) {
        free(body);
        *status = pl_http_error(r, 400, "request body is not valid UTF-8 JSON text");
        return NULL;
    }
    if (pl_json_depth(body, len) > PL_HTTP_MAX_JSON_DEPTH) {
        free(body);
        *status = pl_http_error(r, 400, "request body nests deeper than %d levels",
                                PL_HTTP_MAX_JSON_DEPTH);
        return NULL;
    }
    /* cJSON wants the terminating NUL inside the length when it must check for trailing
     * garbage. */
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(body, len + 1, &end, 1);
    if (j == NULL) {
        size_t at = end != NULL ? (size_t)(end - body) : 0;
        free(body);
        *status = pl_http_error(r, 400, "request body is not valid JSON (error near byte %zu)", at);
        return NULL;
    }
    free(body);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        *status = pl_http_error(r, 400, "request body must be a JSON object");
        return NULL;
    }
    return j;
}

const char *pl_http_header(pl_req *r, const char *name)
{
    return mg_get_header(r->conn, name);
}

int pl_http_query(pl_req *r, const char *name, char *buf, size_t cap)
{
    const char *q = r->ri->query_string;
    if (q == NULL)
        return -1;
    int n = mg_get_var(q, strlen(q), name, buf, cap);
    if (n == -2 || (n >= 0 && !pl_is_utf8(buf, (size_t)n)))
        return -2;
    return n >= 0 ? n : -1;
}

/* Digits at *p as a non-negative number (at most 18 digits); -1 when there are none. */
static long long range_number(const char **p)
{
    long long v = 0;
    int n = 0;
    while (**p >= '0' && **p <= '9' && n < 18) {
        v = v * 10 + (**p - '0');
        (*p)++;
        n++;
    }
    return n > 0 && !(**p >= '0' && **p <= '9') ? v : -1;
}

int pl_http_range(const char *h, long long size, long long *first, long long *last)
{
    if (h == NULL)
        return 0;
    while (*h == ' ' || *h == '\t')
        h++;
    if (strncasecmp(h, "bytes=", 6) != 0 || strchr(h, ',') != NULL)
        return 0;
    const char *p = h + 6;
    while (*p == ' ')
        p++;
    long long a = -1, b = -1;
    if (*p == '-') { /* suffix: the last n bytes */
        p++;
        long long n = range_number(&p);
        while (*p == ' ')
            p++;
        if (n < 0 || *p != '\0')
            return 0;
        if (n == 0 || size == 0)
            return -1;
        a = n >= size ? 0 : size - n;
        b = size - 1;
    } else {
        a = range_number(&p);
        if (a < 0 || *p != '-')
            return 0;
        p++;
        if (*p >= '0' && *p <= '9') {
            b = range_number(&p);
            if (b < 0 || b < a)
                return 0;
        }
        while (*p == ' ')
            p++;
        if (*p != '\0')
            return 0;
        if (a >= size)
            return -1;
        if (b < 0 || b >= size)
            b = size - 1;
    }
    *first = a;
    *last = b;
    return 1;
}

int pl_http_match(const char *pattern, const char *path, char params[][128], int maxp)
{
    int np = 0;
    const char *p = pattern, *s = path;
    while (*p != '\0') {
        if (p[0] == '{' && p[1] == '}') {
            const char *seg_end = strchr(s, '/');
            size_t n = seg_end != NULL ? (size_t)(seg_end - s) : strlen(s);
            /* "{}.wav": literal text after {} in the same segment is a suffix the segment must
             * end with; the parameter is what precedes it. */
            const char *lit_end = strchr(p + 2, '/');
            size_t lit = lit_end != NULL ? (size_t)(lit_end - (p + 2)) : strlen(p + 2);
            if (n <= lit || memcmp(s + n - lit, p + 2, lit) != 0)
                return 0;
            n -= lit;
            if (n >= 128 || np >= maxp)
                return 0;
            memcpy(params[np], s, n);
            params[np][n] = '\0';
            np++;
            s += n;
            p += 2;
        } else if (*p == *s) {
            p++;
            s++;
        } else {
            return 0;
        }
    }
    return *s == '\0' || (s[0] == '/' && s[1] == '\0');
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int ops_route(pl_http *h, pl_req *r)
{
    if (strcmp(r->path, "/healthz") == 0)
        return pl_http_json(r, 200, "{\"status\":\"ok\"}");
    if (strcmp(r->path, "/readyz") == 0) {
        char why[256] = "";
        if (h->opts.ready != NULL && h->opts.ready(h->app, why, sizeof(why)) != 0)
            return pl_http_error(r, 503, "not ready: %s", why);
        return pl_http_json(r, 200, "{\"status\":\"ready\"}");
    }
    if (strcmp(r->path, "/metrics") == 0) {
        size_t cap = 256 * 1024, len = 0;
        char *buf = malloc(cap);
        if (buf == NULL)
            return pl_http_error(r, 500, "out of memory");
        pl_metrics_render(buf, cap, &len);
        pl_http_send(r, 200, "text/plain; version=0.0.4", buf, len, NULL);
        free(buf);
        return 200;
    }
    return 0;
}

static int dispatch(struct mg_connection *conn, void *cbdata)
{
    pl_http *h = cbdata;
    double t0 = now_s();
    pl_req r;
    memset(&r, 0, sizeof(r));
    r.conn = conn;
    r.ri = mg_get_request_info(conn);
    r.method = r.ri->request_method;
    r.path = r.ri->local_uri;
    r.app = h->app;
    r.max_body = h->opts.max_body;

    int idx = h->nroutes, status = 0, path_matched = 0;
    int is_ops = strcmp(r.path, "/healthz") == 0 || strcmp(r.path, "/readyz") == 0 ||
                 strcmp(r.path, "/metrics") == 0;
    if (is_ops && strcmp(r.method, "GET") == 0)
        status = ops_route(h, &r);
    path_matched = is_ops;
    for (int i = 0; status == 0 && i < h->nroutes; i++) {
        if (!pl_http_match(h->routes[i].pattern, r.path, r.params, PL_HTTP_MAX_PARAMS))
            continue;
        path_matched = 1;
        if (strcmp(h->routes[i].method, r.method) != 0)
            continue;
        idx = i;
        status = h->routes[i].fn(&r);
    }
    if (status == 0 && path_matched)
        status = pl_http_error(&r, 405, "method %s is not allowed on %s", r.method, r.path);
    else if (status == 0)
        status = pl_http_error(&r, 404, "no such path: %s %s", r.method, r.path);
    route_stats *st = &h->stats[idx];
    int cls = status / 100;
    if (cls >= 1 && cls <= 5)
        pl_metric_add(st->by_class[cls], 1);
    pl_histogram_observe(st->latency, now_s() - t0);
    return status;
}

static int log_message(const struct mg_connection *conn, const char *message)
{
    (void)conn;
    PL_WARN("civetweb: %s", message);
    return 1;
}

static void init_stats(route_stats *st, const char *name)
{
    char labels[128];
    for (int c = 1; c <= 5; c++) {
        snprintf(labels, sizeof(labels), "route=\"%s\",code=\"%dxx\"", name, c);
        st->by_class[c] =
            pl_metric_counter("pl_http_requests_total", labels, "HTTP requests by route and class");
    }
    snprintf(labels, sizeof(labels), "route=\"%s\"", name);
    st->latency = pl_histogram_new("pl_http_request_seconds", labels, "HTTP request handling time");
}

pl_http *pl_http_start(const pl_http_opts *o, const pl_route *routes, int nroutes, void *app)
{
    if (nroutes > MAX_ROUTES)
        return NULL;
    pl_http *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return NULL;
    h->routes = routes;
    h->nroutes = nroutes;
    h->app = app;
    h->opts = *o;
    for (int i = 0; i < nroutes; i++)
        init_stats(&h->stats[i], routes[i].name);
    init_stats(&h->stats[nroutes], "other");

    char threads[16], keepalive[16];
    snprintf(threads, sizeof(threads), "%d", o->threads);
    snprintf(keepalive, sizeof(keepalive), "%d", o->keepalive_ms);
    const char *options[] = {"listening_ports",
                             o->port,
                             "num_threads",
                             threads,
                             "tcp_nodelay",
                             "1",
                             "enable_keep_alive",
                             "yes",
                             "keep_alive_timeout_ms",
                             keepalive,
                             "request_timeout_ms",
                             "30000",
                             "listen_backlog",
                             "1024",
                             NULL};
    struct mg_callbacks cb;
    memset(&cb, 0, sizeof(cb));
    cb.log_message = log_message;
    h->ctx = mg_start(&cb, h, options);
    if (h->ctx == NULL) {
        PL_ERROR("http: cannot listen on %s", o->port);
        free(h);
        return NULL;
    }
    mg_set_request_handler(h->ctx, "/", dispatch, h);
    PL_INFO("http: listening on %s with %d threads", o->port, o->threads);
    return h;
}

void pl_http_stop(pl_http *h)
{
    if (h == NULL)
        return;
    mg_stop(h->ctx);
    free(h);
}
