/* HTTP delivery through libcurl's multi interface: every attempt in flight is one easy handle
 * on one multi handle driven by the loop thread, so a slow receiver occupies a socket, not a
 * thread, and never delays the others. Connections (and DNS answers) are cached by the multi
 * handle and reused across deliveries to the same receiver.
 *
 * Every request: POST, the stored body as is, Content-Type: application/json, X-Parley-Event-Id,
 * X-Parley-Signature (signed now, with the current time), X-Parley-Attempt; a whole-request
 * timeout; no redirects followed; no proxy from the environment; http and https only; at most
 * WD_MAX_RESPONSE bytes of response read. The SSRF guard checks each address libcurl is about to
 * connect to (CURLOPT_OPENSOCKETFUNCTION), after resolution, so a name pointing at a private
 * address is refused like the address itself.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <curl/curl.h>

#include "dispatcher.h"
#include "error.h"
#include "log.h"
#include "ssrf.h"

#define POOL_MAX 1024 /* idle easy handles kept for reuse */

struct wd_http {
    CURLM *multi;
    const wd_config *cfg;
    int running;      /* transfers added and not completed */
    wd_delivery *run; /* running transfers (prev_run/next_run) */
    CURL *idle[POOL_MAX];
    int nidle;
};

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

wd_http *wd_http_new(const wd_config *cfg)
{
    wd_http *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return NULL;
    h->cfg = cfg;
    h->multi = curl_multi_init();
    if (h->multi == NULL) {
        free(h);
        return NULL;
    }
    curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, cfg->concurrency);
    return h;
}

void wd_http_free(wd_http *h)
{
    if (h == NULL)
        return;
    for (int i = 0; i < h->nidle; i++)
        curl_easy_cleanup(h->idle[i]);
    curl_multi_cleanup(h->multi);
    free(h);
}

void wd_http_wakeup(wd_http *h)
{
    curl_multi_wakeup(h->multi);
}

int wd_http_running(const wd_http *h)
{
    return h->running;
}

void wd_http_wait(wd_http *h, int timeout_ms, const int *fds, const int *writes, int n)
{
    struct curl_waitfd extra[8];
    if (n > 8)
        n = 8;
    for (int i = 0; i < n; i++) {
        extra[i].fd = fds[i];
        extra[i].events = (short)(CURL_WAIT_POLLIN | (writes[i] ? CURL_WAIT_POLLOUT : 0));
        extra[i].revents = 0;
    }
    curl_multi_poll(h->multi, extra, (unsigned)n, timeout_ms < 0 ? 0 : timeout_ms, NULL);
}

/* The SSRF guard: called for each address libcurl tries (several for a name with several
 * addresses). Refusing one makes libcurl try the next; refusing all fails the transfer. */
static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
    wd_delivery *d = clientp;
    wd_http *h = d->http;
    if (purpose == CURLSOCKTYPE_IPCXN) {
        pl_addr_class c = pl_ssrf_classify(&a->addr);
        if (!pl_ssrf_allowed(c, h->cfg->allow_private)) {
            char ip[PL_SSRF_ADDRSTRLEN];
            d->guard_refused++;
            snprintf(d->refused, sizeof(d->refused), "refused to connect to %s: %s address%s",
                     pl_ssrf_ntop(&a->addr, ip), pl_ssrf_class_name(c),
                     pl_ssrf_allowed(c, 1) ? " (PL_WEBHOOK_ALLOW_PRIVATE=1 allows it)" : "");
            return CURL_SOCKET_BAD;
        }
        d->guard_allowed++;
    }
    return socket(a->family, a->socktype, a->protocol);
}

static size_t on_body(char *p, size_t sz, size_t n, void *u)
{
    wd_delivery *d = u;
    size_t add = sz * n;
    size_t room = sizeof(d->response_head) - 1 - strlen(d->response_head);
    if (room > 0) {
        size_t k = add < room ? add : room;
        size_t at = strlen(d->response_head);
        memcpy(d->response_head + at, p, k);
        d->response_head[at + k] = '\0';
    }
    d->response_len += add;
    if (d->response_len > WD_MAX_RESPONSE)
        return 0; /* aborts the transfer (CURLE_WRITE_ERROR); the status is kept */
    return add;
}

/* 1 when url is an absolute http(s) URL with a host (libcurl's own parser decides). */
static int url_ok(const char *url, char *why, size_t cap)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    int ok = 0;
    if (u == NULL) {
        snprintf(why, cap, "out of memory");
        return 0;
    }
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
    if (uc != CURLUE_OK)
        snprintf(why, cap, "invalid webhook_url: %s", curl_url_strerror(uc));
    else if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
             (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0))
        snprintf(why, cap, "invalid webhook_url: only http and https are delivered");
    else if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || host[0] == '\0')
        snprintf(why, cap, "invalid webhook_url: no host");
    else
        ok = 1;
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return ok;
}

int wd_http_start(wd_http *h, wd_delivery *d)
{
    d->http = h;
    d->refused[0] = d->curl_error[0] = d->response_head[0] = '\0';
    d->response_len = 0;
    d->guard_allowed = d->guard_refused = 0;
    if (!url_ok(d->url, d->curl_error, sizeof(d->curl_error)))
        return PL_ERR_INVALID;
    char sig[WD_SIG_CAP];
    if (wd_signature(d->secret, (long long)time(NULL), d->body, d->body_len, sig) != PL_OK) {
        snprintf(d->curl_error, sizeof(d->curl_error), "out of memory");
        return PL_ERR_NOMEM;
    }
    CURL *e = h->nidle > 0 ? h->idle[--h->nidle] : curl_easy_init();
    if (e == NULL) {
        snprintf(d->curl_error, sizeof(d->curl_error), "curl_easy_init failed");
        return PL_ERR_NOMEM;
    }
    char line[160];
    struct curl_slist *hd = curl_slist_append(NULL, "Content-Type: application/json");
    snprintf(line, sizeof(line), "X-Parley-Event-Id: %lld", d->event_id);
    hd = curl_slist_append(hd, line);
    snprintf(line, sizeof(line), "X-Parley-Signature: %s", sig);
    hd = curl_slist_append(hd, line);
    snprintf(line, sizeof(line), "X-Parley-Attempt: %d", d->attempts + 1);
    hd = curl_slist_append(hd, line);
    hd = curl_slist_append(hd, "Expect:"); /* no 100-continue round trip */
    if (hd == NULL) {
        curl_easy_cleanup(e);
        snprintf(d->curl_error, sizeof(d->curl_error), "out of memory");
        return PL_ERR_NOMEM;
    }
    long timeout = h->cfg->timeout_ms;
    curl_easy_setopt(e, CURLOPT_URL, d->url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, d->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)d->body_len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "parley-webhooks/1");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROXY, ""); /* never a proxy from http_proxy & co */
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout < 5000 ? timeout : 5000L);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, d);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, d);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, d->curl_error);
    curl_easy_setopt(e, CURLOPT_PRIVATE, d);
    d->easy = e;
    d->headers = hd;
    d->started_us = now_us();
    CURLMcode mc = curl_multi_add_handle(h->multi, e);
    if (mc != CURLM_OK) {
        snprintf(d->curl_error, sizeof(d->curl_error), "curl_multi_add_handle: %s",
                 curl_multi_strerror(mc));
        curl_slist_free_all(hd);
        curl_easy_cleanup(e);
        d->easy = d->headers = NULL;
        return PL_ERR_IO;
    }
    h->running++;
    d->prev_run = NULL;
    d->next_run = h->run;
    if (h->run != NULL)
        h->run->prev_run = d;
    h->run = d;
    return PL_OK;
}

/* Detaches a transfer's handle and keeps it for reuse. */
static void retire(wd_http *h, wd_delivery *d)
{
    CURL *e = d->easy;
    curl_multi_remove_handle(h->multi, e);
    curl_slist_free_all(d->headers);
    d->easy = d->headers = NULL;
    h->running--;
    if (d->prev_run != NULL)
        d->prev_run->next_run = d->next_run;
    else
        h->run = d->next_run;
    if (d->next_run != NULL)
        d->next_run->prev_run = d->prev_run;
    d->prev_run = d->next_run = NULL;
    if (h->nidle < POOL_MAX) {
        curl_easy_reset(e);
        h->idle[h->nidle++] = e;
    } else {
        curl_easy_cleanup(e);
    }
}

/* Keeps printable ASCII of a receiver's answer, whitespace runs folded to one space, so the
 * log and Postgres get valid, short text whatever the receiver sent. */
static void sanitize(const char *in, char *out, size_t cap)
{
    size_t n = 0;
    int space = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p && n + 4 < cap; p++) {
        if (isspace(*p)) {
            space = n > 0;
            continue;
        }
        if (space)
            out[n++] = ' ';
        space = 0;
        out[n++] = (*p >= 0x20 && *p < 0x7f) ? (char)*p : '?';
    }
    out[n] = '\0';
}

void wd_judge(int curl_code, long http_code, const char *curl_error, const char *refused,
              const char *response, const char *location, int attempts, int max_attempts,
              long timeout_ms, wd_result *out)
{
    out->code = (int)http_code;
    out->error[0] = '\0';
    out->delay_ms = 0;
    int permanent = 0;
    CURLcode cc = (CURLcode)curl_code;
    const char *detail = curl_error != NULL && curl_error[0] ? curl_error : curl_easy_strerror(cc);
    char snippet[128];
    if (http_code >= 200 && http_code < 300 && (cc == CURLE_OK || cc == CURLE_WRITE_ERROR)) {
        out->outcome = WD_DELIVERED; /* an oversized body after a 2xx: accepted all the same */
        return;
    }
    if (refused != NULL && refused[0]) {
        snprintf(out->error, sizeof(out->error), "SSRF guard: %s", refused);
        permanent = 1;
    } else if (cc == CURLE_URL_MALFORMAT) {
        snprintf(out->error, sizeof(out->error), "invalid webhook_url: %s", detail);
        permanent = 1;
    } else if (cc == CURLE_OPERATION_TIMEDOUT) {
        snprintf(out->error, sizeof(out->error), "timed out after %ld ms (%s)", timeout_ms, detail);
    } else if (http_code == 0) {
        snprintf(out->error, sizeof(out->error), "%s", detail);
    } else if (cc == CURLE_WRITE_ERROR) {
        snprintf(out->error, sizeof(out->error), "HTTP %ld with a response body over %d bytes",
                 http_code, WD_MAX_RESPONSE);
    } else if (http_code >= 300 && http_code < 400) {
        sanitize(location != NULL ? location : "", snippet, sizeof(snippet));
        snprintf(out->error, sizeof(out->error),
                 "HTTP %ld: redirects are not followed (Location: %s)", http_code,
                 snippet[0] ? snippet : "none");
    } else {
        sanitize(response != NULL ? response : "", snippet, sizeof(snippet));
        snprintf(out->error, sizeof(out->error), "HTTP %ld%s%s", http_code, snippet[0] ? ": " : "",
                 snippet);
    }
    out->outcome = permanent || attempts + 1 >= max_attempts ? WD_DEAD : WD_RETRY;
}

int wd_http_progress(wd_http *h, wd_delivery **done, wd_result *res, int max)
{
    int still, n = 0;
    curl_multi_perform(h->multi, &still);
    CURLMsg *m;
    int left;
    while (n < max && (m = curl_multi_info_read(h->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        wd_delivery *d = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&d);
        long code = 0;
        char *location = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_getinfo(m->easy_handle, CURLINFO_REDIRECT_URL, &location);
        /* A refusal only decides when no allowed address was tried. */
        const char *refused = d->guard_allowed == 0 ? d->refused : "";
        wd_judge(m->data.result, code, d->curl_error, refused, d->response_head, location,
                 d->attempts, (int)h->cfg->max_attempts, h->cfg->timeout_ms, &res[n]);
        res[n].event_id = d->event_id;
        res[n].claims = d->claims;
        retire(h, d);
        done[n++] = d;
    }
    return n;
}

wd_delivery *wd_http_cancel_all(wd_http *h)
{
    wd_delivery *out = NULL;
    while (h->run != NULL) {
        wd_delivery *d = h->run;
        retire(h, d);
        d->next = out;
        out = d;
    }
    return out;
}
