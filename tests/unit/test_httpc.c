/* httpc: methods, bodies, Basic auth, status passthrough, response cap, deadline and refused
 * connections, redirects not followed, public_only's SSRF guard, against a real civetweb server
 * in this process. */
#include <unistd.h>

#include "check.h"
#include "error.h"
#include "http.h"
#include "httpc.h"
#include "queue.h"

static int port;

/* Echoes "METHOD|content-type|authorization|body". */
static int h_echo(pl_req *r)
{
    char *body = NULL;
    size_t len = 0;
    if (strcmp(r->method, "POST") == 0 && pl_http_body(r, &body, &len) != PL_OK)
        return 413;
    const char *ct = pl_http_header(r, "Content-Type");
    const char *auth = pl_http_header(r, "Authorization");
    char out[4096];
    int n = snprintf(out, sizeof(out), "%s|%s|%s|%s", r->method, ct ? ct : "-", auth ? auth : "-",
                     body ? body : "");
    free(body);
    return pl_http_send(r, strcmp(r->params[0], "created") == 0 ? 201 : 200, "text/plain", out,
                        (size_t)n, NULL);
}

static int h_big(pl_req *r)
{
    static char big[100000];
    memset(big, 'x', sizeof(big));
    return pl_http_send(r, 200, "text/plain", big, sizeof(big), NULL);
}

static int h_slow(pl_req *r)
{
    usleep(1500 * 1000);
    return pl_http_json(r, 200, "{}");
}

static int h_error(pl_req *r)
{
    return pl_http_json(r, 400, "{\"code\":21211,\"message\":\"bad To\"}");
}

/* A redirect to this server's /echo/redirected. */
static int h_redirect(pl_req *r)
{
    char loc[128];
    snprintf(loc, sizeof(loc), "Location: http://127.0.0.1:%d/echo/redirected\r\n", port);
    return pl_http_send(r, 302, "text/plain", "moved", 5, loc);
}

static const pl_route routes[] = {
    {"GET", "/echo/{}", h_echo, "echo"},
    {"POST", "/echo/{}", h_echo, "echo"},
    {"DELETE", "/echo/{}", h_echo, "echo"},
    {"GET", "/big", h_big, "big"},
    {"GET", "/slow", h_slow, "slow"},
    {"POST", "/error", h_error, "error"},
    {"GET", "/redirect", h_redirect, "redirect"},
};

static void url(char *buf, size_t cap, const char *path)
{
    snprintf(buf, cap, "http://127.0.0.1:%d%s", port, path);
}

static void get_and_delete(void)
{
    char u[128];
    pl_httpc_resp r;
    url(u, sizeof(u), "/echo/x");
    CHECK(pl_httpc_get(u, NULL, &r) == PL_OK);
    CHECK(r.status == 200);
    CHECK(strncmp(r.body, "GET|-|-|", 8) == 0);
    pl_httpc_resp_free(&r);
    CHECK(pl_httpc_delete(u, NULL, &r) == PL_OK);
    CHECK(r.status == 200 && strncmp(r.body, "DELETE|", 7) == 0);
    pl_httpc_resp_free(&r);
}

static void post_form_with_basic_auth(void)
{
    char u[128];
    pl_httpc_resp r;
    pl_form f;
    pl_form_init(&f);
    pl_form_add(&f, "To", "+15005550006");
    pl_form_add(&f, "StatusCallbackEvent", "initiated");
    pl_form_add(&f, "StatusCallbackEvent", "answered");
    pl_httpc_opts o = {.user = "AC123", .password = "secret", .timeout_ms = 2000};
    url(u, sizeof(u), "/echo/created");
    CHECK(pl_httpc_post_form(u, &f, &o, &r) == PL_OK);
    CHECK(r.status == 201);
    /* base64("AC123:secret") = QUMxMjM6c2VjcmV0 */
    CHECK_STR(r.body, "POST|application/x-www-form-urlencoded|Basic QUMxMjM6c2VjcmV0|"
                      "To=%2B15005550006&StatusCallbackEvent=initiated&"
                      "StatusCallbackEvent=answered");
    CHECK(r.len == strlen(r.body));
    pl_httpc_resp_free(&r);
    pl_form_free(&f);
}

static void post_json_with_bearer(void)
{
    char u[128];
    pl_httpc_resp r;
    pl_httpc_opts o = {.bearer = "sk-test-123", .timeout_ms = 2000};
    url(u, sizeof(u), "/echo/j");
    CHECK(pl_httpc_post_json(u, "{}", &o, &r) == PL_OK);
    CHECK_STR(r.body, "POST|application/json|Bearer sk-test-123|{}");
    pl_httpc_resp_free(&r);
}

static void post_json_and_error_status(void)
{
    char u[128];
    pl_httpc_resp r;
    url(u, sizeof(u), "/echo/j");
    CHECK(pl_httpc_post_json(u, "{\"to\":\"1\"}", NULL, &r) == PL_OK);
    CHECK_STR(r.body, "POST|application/json|-|{\"to\":\"1\"}");
    pl_httpc_resp_free(&r);
    url(u, sizeof(u), "/error");
    CHECK(pl_httpc_post_json(u, "{}", NULL, &r) == PL_OK); /* a 4xx is a response, not an error */
    CHECK(r.status == 400);
    CHECK(strstr(r.body, "21211") != NULL);
    pl_httpc_resp_free(&r);
}

static void response_cap(void)
{
    char u[128];
    pl_httpc_resp r;
    url(u, sizeof(u), "/big");
    pl_httpc_opts small = {.max_response = 1024};
    CHECK(pl_httpc_get(u, &small, &r) == PL_ERR_TOOBIG);
    CHECK(r.status == 0 && strstr(r.error, "1024") != NULL);
    pl_httpc_resp_free(&r);
    pl_httpc_opts enough = {.max_response = 200000};
    CHECK(pl_httpc_get(u, &enough, &r) == PL_OK);
    CHECK(r.len == 100000);
    pl_httpc_resp_free(&r);
}

static void deadline_and_refused(void)
{
    char u[128];
    pl_httpc_resp r;
    url(u, sizeof(u), "/slow");
    pl_httpc_opts fast = {.timeout_ms = 300};
    int64_t t0 = pl_now_ms();
    CHECK(pl_httpc_get(u, &fast, &r) == PL_ERR_TIMEOUT);
    CHECK(pl_now_ms() - t0 < 1200);
    CHECK(r.error[0] != '\0');
    pl_httpc_resp_free(&r);
    /* Port 1 on loopback: nothing listens. */
    CHECK(pl_httpc_get("http://127.0.0.1:1/x", &fast, &r) == PL_ERR_IO);
    pl_httpc_resp_free(&r);
    CHECK(pl_httpc_get("ftp://127.0.0.1/x", &fast, &r) == PL_ERR_INVALID);
    pl_httpc_resp_free(&r);
}

static void redirect_not_followed(void)
{
    char u[128];
    pl_httpc_resp r;
    url(u, sizeof(u), "/redirect");
    CHECK(pl_httpc_get(u, NULL, &r) == PL_OK);
    CHECK(r.status == 302);
    CHECK_STR(r.body, "moved");
    pl_httpc_resp_free(&r);
}

static void public_only_refuses_private_addresses(void)
{
    char u[128];
    pl_httpc_resp r;
    pl_httpc_opts guarded = {.timeout_ms = 2000, .public_only = 1};
    url(u, sizeof(u), "/echo/x");
    /* Unguarded, it works; this thread now keeps that connection alive, and the guarded request
     * must not reuse it. */
    CHECK(pl_httpc_get(u, NULL, &r) == PL_OK);
    CHECK(r.status == 200 && strncmp(r.body, "GET|", 4) == 0);
    pl_httpc_resp_free(&r);
    CHECK(pl_httpc_get(u, &guarded, &r) == PL_ERR_IO);
    CHECK(r.status == 0 && r.len == 0);
    CHECK_STR(r.error, "refused: 127.0.0.1 is a loopback address");
    pl_httpc_resp_free(&r);
    CHECK(pl_httpc_post_json(u, "{}", &guarded, &r) == PL_ERR_IO);
    CHECK_STR(r.error, "refused: 127.0.0.1 is a loopback address");
    pl_httpc_resp_free(&r);
    /* and the guard does not stick to the thread's handle */
    CHECK(pl_httpc_get(u, NULL, &r) == PL_OK && r.status == 200);
    pl_httpc_resp_free(&r);

    /* A name is judged by the addresses it resolves to. */
    snprintf(u, sizeof(u), "http://localhost:%d/echo/x", port);
    CHECK(pl_httpc_get(u, &guarded, &r) == PL_ERR_IO);
    CHECK(strncmp(r.error, "refused: ", 9) == 0 && strstr(r.error, " loopback address") != NULL);
    pl_httpc_resp_free(&r);
    /* Refused before any connection is attempted (none of these is reachable from here). */
    CHECK(pl_httpc_get("http://169.254.169.254/latest/meta-data/", &guarded, &r) == PL_ERR_IO);
    CHECK_STR(r.error, "refused: 169.254.169.254 is a cloud metadata address");
    pl_httpc_resp_free(&r);
    CHECK(pl_httpc_get("http://10.255.255.1/x", &guarded, &r) == PL_ERR_IO);
    CHECK_STR(r.error, "refused: 10.255.255.1 is a private address");
    pl_httpc_resp_free(&r);
    CHECK(pl_httpc_get("http://[::ffff:127.0.0.1]:1/x", &guarded, &r) == PL_ERR_IO);
    CHECK_STR(r.error, "refused: ::ffff:127.0.0.1 is a loopback address");
    pl_httpc_resp_free(&r);
    CHECK(pl_httpc_get("http://0.0.0.0:1/x", &guarded, &r) == PL_ERR_IO);
    CHECK_STR(r.error, "refused: 0.0.0.0 is an unspecified address");
    pl_httpc_resp_free(&r);
}

int main(void)
{
    pl_httpc_init();
    char portstr[32];
    pl_http *h = NULL;
    for (int i = 0; i < 20 && h == NULL; i++) {
        port = 20000 + (int)(pl_now_ms() % 30000) + i;
        snprintf(portstr, sizeof(portstr), "127.0.0.1:%d", port);
        pl_http_opts o = {portstr, 8, 1000, 65536, NULL};
        h = pl_http_start(&o, routes, (int)(sizeof(routes) / sizeof(routes[0])), NULL);
    }
    if (h == NULL)
        return 1;
    RUN(get_and_delete);
    RUN(post_form_with_basic_auth);
    RUN(post_json_with_bearer);
    RUN(post_json_and_error_status);
    RUN(response_cap);
    RUN(deadline_and_refused);
    RUN(redirect_not_followed);
    RUN(public_only_refuses_private_addresses);
    pl_http_stop(h);
    return check_summary();
}
