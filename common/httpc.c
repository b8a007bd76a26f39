#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "error.h"
#include "httpc.h"
#include "ssrf.h"

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static pthread_key_t handle_key;

static void handle_free(void *h)
{
    curl_easy_cleanup(h);
}

static void init_global(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    pthread_key_create(&handle_key, handle_free);
}

void pl_httpc_init(void)
{
    pthread_once(&init_once, init_global);
}

/* The calling thread's handle, reset to defaults; freed when the thread exits. */
static CURL *thread_handle(void)
{
    pl_httpc_init();
    CURL *h = pthread_getspecific(handle_key);
    if (h == NULL) {
        h = curl_easy_init();
        if (h != NULL)
            pthread_setspecific(handle_key, h);
    } else {
        curl_easy_reset(h);
    }
    return h;
}

typedef struct {
    pl_httpc_resp *r;
    size_t cap;
    size_t max;
    int toobig;
} sink;

static size_t on_data(char *p, size_t sz, size_t n, void *u)
{
    sink *s = u;
    size_t add = sz * n;
    if (s->r->len + add > s->max) {
        s->toobig = 1;
        return 0; /* aborts the transfer */
    }
    if (s->r->len + add + 1 > s->cap) {
        size_t cap = s->cap > 0 ? s->cap : 1024;
        while (cap < s->r->len + add + 1)
            cap *= 2;
        char *b = realloc(s->r->body, cap);
        if (b == NULL)
            return 0;
        s->r->body = b;
        s->cap = cap;
    }
    memcpy(s->r->body + s->r->len, p, add);
    s->r->len += add;
    s->r->body[s->r->len] = '\0';
    return add;
}

/* public_only's SSRF guard, called for each address libcurl tries (several for a name with
 * several addresses). Refusing one makes libcurl try the next; refusing all fails the request. */
typedef struct {
    int allowed;       /* addresses let through */
    char refused[128]; /* the reason for the last address refused, "" when none */
} guard;

static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
    guard *g = clientp;
    if (purpose == CURLSOCKTYPE_IPCXN) {
        pl_addr_class c = pl_ssrf_classify(&a->addr);
        if (!pl_ssrf_allowed(c, 0)) {
            char ip[PL_SSRF_ADDRSTRLEN];
            const char *name = pl_ssrf_class_name(c);
            snprintf(g->refused, sizeof(g->refused), "refused: %s is %s %s address",
                     pl_ssrf_ntop(&a->addr, ip), strchr("aeiou", name[0]) != NULL ? "an" : "a",
                     name);
            return CURL_SOCKET_BAD;
        }
        g->allowed++;
    }
    return socket(a->family, a->socktype, a->protocol);
}

int pl_httpc_request(const char *method, const char *url, const char *ctype, const char *body,
                     size_t len, const pl_httpc_opts *o, pl_httpc_resp *out)
{
    memset(out, 0, sizeof(*out));
    out->body = calloc(1, 1);
    if (out->body == NULL)
        return PL_ERR_NOMEM;
    if (method == NULL || url == NULL ||
        (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)) {
        snprintf(out->error, sizeof(out->error), "not an http(s) URL: %s", url ? url : "(null)");
        return PL_ERR_INVALID;
    }
    CURL *h = thread_handle();
    if (h == NULL) {
        snprintf(out->error, sizeof(out->error), "curl_easy_init failed");
        return PL_ERR_NOMEM;
    }
    long timeout = o != NULL && o->timeout_ms > 0 ? o->timeout_ms : 10000;
    long connect =
        o != NULL && o->connect_ms > 0 ? o->connect_ms : (timeout < 5000 ? timeout : 5000);
    sink s = {out, 1, o != NULL && o->max_response > 0 ? o->max_response : 1 << 20, 0};
    guard g = {0, ""};
    struct curl_slist *headers = NULL;
    char hdr[256];
    if (ctype != NULL) {
        snprintf(hdr, sizeof(hdr), "Content-Type: %s", ctype);
        headers = curl_slist_append(headers, hdr);
    }
    headers = curl_slist_append(headers, "Expect:"); /* no 100-continue round trip */
    headers = curl_slist_append(headers, "Accept: application/json");

    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "parley/1");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L); /* (the default) a 3xx is the response */
    if (o != NULL && o->public_only) {
        curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_socket);
        curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, &g);
        /* A connection this thread kept alive from an unguarded request would skip the guard. */
        curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
        curl_easy_setopt(h, CURLOPT_PROXY, ""); /* never a proxy from http_proxy & co */
    }
    if (o != NULL && o->user != NULL) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(h, CURLOPT_USERNAME, o->user);
        curl_easy_setopt(h, CURLOPT_PASSWORD, o->password != NULL ? o->password : "");
    } else if (o != NULL && o->bearer != NULL) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
        curl_easy_setopt(h, CURLOPT_XOAUTH2_BEARER, o->bearer);
    }
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else {
        if (strcmp(method, "POST") != 0)
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        if (body != NULL || strcmp(method, "POST") == 0) {
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, body != NULL ? body : "");
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        }
    }
    CURLcode cc = curl_easy_perform(h);
    curl_slist_free_all(headers);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    if (cc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
        return PL_OK;
    }
    out->status = 0;
    if (s.toobig) {
        snprintf(out->error, sizeof(out->error), "response larger than %zu bytes", s.max);
        return PL_ERR_TOOBIG;
    }
    if (g.refused[0] != '\0' && g.allowed == 0) {
        snprintf(out->error, sizeof(out->error), "%s", g.refused);
        return PL_ERR_IO;
    }
    if (g.refused[0] != '\0') /* another address was allowed, and failed */
        snprintf(out->error, sizeof(out->error), "%s (%s)", curl_easy_strerror(cc), g.refused);
    else
        snprintf(out->error, sizeof(out->error), "%s", curl_easy_strerror(cc));
    if (cc == CURLE_OPERATION_TIMEDOUT)
        return PL_ERR_TIMEOUT;
    if (cc == CURLE_URL_MALFORMAT || cc == CURLE_UNSUPPORTED_PROTOCOL)
        return PL_ERR_INVALID;
    return PL_ERR_IO;
}

int pl_httpc_post_form(const char *url, const pl_form *form, const pl_httpc_opts *o,
                       pl_httpc_resp *out)
{
    char *body = pl_form_encode(form);
    if (body == NULL) {
        memset(out, 0, sizeof(*out));
        return PL_ERR_NOMEM;
    }
    int rc = pl_httpc_request("POST", url, "application/x-www-form-urlencoded", body, strlen(body),
                              o, out);
    free(body);
    return rc;
}

int pl_httpc_post_json(const char *url, const char *json, const pl_httpc_opts *o,
                       pl_httpc_resp *out)
{
    return pl_httpc_request("POST", url, "application/json", json, strlen(json), o, out);
}

int pl_httpc_get(const char *url, const pl_httpc_opts *o, pl_httpc_resp *out)
{
    return pl_httpc_request("GET", url, NULL, NULL, 0, o, out);
}

int pl_httpc_delete(const char *url, const pl_httpc_opts *o, pl_httpc_resp *out)
{
    return pl_httpc_request("DELETE", url, NULL, NULL, 0, o, out);
}

void pl_httpc_resp_free(pl_httpc_resp *r)
{
    free(r->body);
    r->body = NULL;
    r->len = 0;
}
