/* http: routing, one-write JSON replies, body limit, error shape, ops endpoints — over a real
 * civetweb server and libcurl. */
#include <curl/curl.h>

#include "check.h"
#include "http.h"
#include "queue.h"

static int port;

static int h_echo(pl_req *r)
{
    int status;
    cJSON *j = pl_http_json_body(r, &status);
    if (j == NULL)
        return status;
    cJSON_AddStringToObject(j, "id", r->params[0]);
    status = pl_http_cjson(r, 201, j);
    cJSON_Delete(j);
    return status;
}

static int h_query(pl_req *r)
{
    char v[64];
    if (pl_http_query(r, "q", v, sizeof(v)) < 0)
        return pl_http_error(r, 422, "q: is required");
    return pl_http_send(r, 200, "text/plain", v, strlen(v), "X-Test: 1\r\n");
}

static int not_ready;
static int ready(void *app, char *why, size_t cap)
{
    (void)app;
    if (not_ready)
        snprintf(why, cap, "test says no");
    return not_ready;
}

static const pl_route routes[] = {
    {"POST", "/things/{}", h_echo, "echo"},
    {"GET", "/q", h_query, "query"},
};

typedef struct {
    char *data;
    size_t len;
} buf;

static size_t collect(char *p, size_t sz, size_t n, void *u)
{
    buf *b = u;
    b->data = realloc(b->data, b->len + sz * n + 1);
    memcpy(b->data + b->len, p, sz * n);
    b->len += sz * n;
    b->data[b->len] = '\0';
    return sz * n;
}

/* Performs one request; returns the status, the body in *out (caller frees). */
static long request(const char *method, const char *path, const char *body, size_t len, char **out,
                    char **headers)
{
    CURL *c = curl_easy_init();
    char url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    buf b = {calloc(1, 1), 0}, h = {calloc(1, 1), 0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
    struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
    hl = curl_slist_append(hl, "Expect:");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
    }
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    *out = b.data;
    if (headers != NULL)
        *headers = h.data;
    else
        free(h.data);
    return status;
}

static void pattern_matching(void)
{
    char p[4][128];
    CHECK(pl_http_match("/v2/agent/{}", "/v2/agent/abc", p, 4));
    CHECK_STR(p[0], "abc");
    CHECK(pl_http_match("/v2/agent/{}/executions", "/v2/agent/x1/executions", p, 4));
    CHECK_STR(p[0], "x1");
    CHECK(pl_http_match("/call", "/call/", p, 4));
    CHECK(!pl_http_match("/v2/agent/{}", "/v2/agent/", p, 4));
    CHECK(!pl_http_match("/v2/agent/{}", "/v2/agent/a/b", p, 4));
    CHECK(!pl_http_match("/v2/agent/all", "/v2/agent/allx", p, 4));
    /* a literal suffix after {} in the same segment */
    CHECK(pl_http_match("/recordings/{}.wav", "/recordings/abc.wav", p, 4));
    CHECK_STR(p[0], "abc");
    CHECK(pl_http_match("/r/{}.wav/x", "/r/a.b.wav/x", p, 4));
    CHECK_STR(p[0], "a.b");
    CHECK(!pl_http_match("/recordings/{}.wav", "/recordings/.wav", p, 4));
    CHECK(!pl_http_match("/recordings/{}.wav", "/recordings/abc.mp3", p, 4));
    CHECK(!pl_http_match("/recordings/{}.wav", "/recordings/abc", p, 4));
    CHECK(!pl_http_match("/recordings/{}.wav", "/recordings/a/b.wav", p, 4));
}

static void json_roundtrip_and_params(void)
{
    char *out;
    const char *body = "{\"a\":1}";
    CHECK(request("POST", "/things/t7", body, strlen(body), &out, NULL) == 201);
    cJSON *j = cJSON_Parse(out);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "id")), "t7");
    CHECK(cJSON_GetObjectItem(j, "a")->valueint == 1);
    cJSON_Delete(j);
    free(out);
}

static void bad_json_is_400_with_bolna_shape(void)
{
    char *out;
    CHECK(request("POST", "/things/x", "{\"a\":", 5, &out, NULL) == 400);
    cJSON *j = cJSON_Parse(out);
    CHECK(j != NULL && cJSON_GetObjectItem(j, "error")->valueint == 400);
    CHECK(strstr(cJSON_GetStringValue(cJSON_GetObjectItem(j, "message")), "not valid JSON"));
    CHECK(cJSON_GetObjectItem(j, "detail") != NULL);
    cJSON_Delete(j);
    free(out);
    CHECK(request("POST", "/things/x", "[1,2]", 5, &out, NULL) == 400);
    free(out);
    CHECK(request("POST", "/things/x", "{} trailing", 11, &out, NULL) == 400);
    free(out);
    CHECK(request("POST", "/things/x", "", 0, &out, NULL) == 400);
    free(out);
}

static void oversized_body_is_413(void)
{
    size_t n = 70000; /* the server's limit is 64 KiB */
    char *big = malloc(n);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    char *out;
    CHECK(request("POST", "/things/x", big, n, &out, NULL) == 413);
    CHECK(strstr(out, "\"error\":413") != NULL);
    free(out);
    CHECK(request("POST", "/things/x", big, 60000, &out, NULL) == 400); /* under: parsed */
    free(out);
    free(big);
}

static void unknown_path_and_method(void)
{
    char *out;
    CHECK(request("GET", "/nope", NULL, 0, &out, NULL) == 404);
    CHECK(strstr(out, "\"error\":404") != NULL);
    free(out);
    CHECK(request("GET", "/things/x", NULL, 0, &out, NULL) == 405);
    free(out);
}

static void query_and_extra_headers(void)
{
    char *out, *hdr;
    CHECK(request("GET", "/q?q=hello%20there", NULL, 0, &out, &hdr) == 200);
    CHECK_STR(out, "hello there");
    CHECK(strstr(hdr, "X-Test: 1") != NULL);
    CHECK(strstr(hdr, "Content-Length: 11") != NULL);
    free(out);
    free(hdr);
    CHECK(request("GET", "/q", NULL, 0, &out, NULL) == 422);
    free(out);
}

static void ops_endpoints(void)
{
    char *out;
    CHECK(request("GET", "/healthz", NULL, 0, &out, NULL) == 200);
    free(out);
    CHECK(request("GET", "/readyz", NULL, 0, &out, NULL) == 200);
    free(out);
    not_ready = 1;
    CHECK(request("GET", "/readyz", NULL, 0, &out, NULL) == 503);
    CHECK(strstr(out, "test says no") != NULL);
    free(out);
    not_ready = 0;
    CHECK(request("GET", "/metrics", NULL, 0, &out, NULL) == 200);
    CHECK(strstr(out, "pl_http_requests_total{route=\"echo\",code=\"2xx\"} 1") != NULL);
    CHECK(strstr(out, "pl_http_requests_total{route=\"echo\",code=\"4xx\"}") != NULL);
    CHECK(strstr(out, "pl_http_request_seconds_count{route=\"echo\"}") != NULL);
    free(out);
}

/* Range headers as RFC 9110 writes them, against a 1000-byte file. */
static void byte_ranges(void)
{
    long long a = -7, b = -7;
    CHECK(pl_http_range("bytes=0-3", 1000, &a, &b) == 1 && a == 0 && b == 3);
    CHECK(pl_http_range("bytes=500-", 1000, &a, &b) == 1 && a == 500 && b == 999);
    CHECK(pl_http_range("bytes=-4", 1000, &a, &b) == 1 && a == 996 && b == 999);
    CHECK(pl_http_range("bytes=-5000", 1000, &a, &b) == 1 && a == 0 && b == 999);
    CHECK(pl_http_range("bytes=990-5000", 1000, &a, &b) == 1 && a == 990 && b == 999);
    CHECK(pl_http_range("BYTES=1-1", 1000, &a, &b) == 1 && a == 1 && b == 1);
    /* unsatisfiable: 416 */
    CHECK(pl_http_range("bytes=1000-", 1000, &a, &b) == -1);
    CHECK(pl_http_range("bytes=2000-3000", 1000, &a, &b) == -1);
    CHECK(pl_http_range("bytes=-0", 1000, &a, &b) == -1);
    CHECK(pl_http_range("bytes=0-", 0, &a, &b) == -1);
    /* ignored: the whole file is served */
    a = b = -7;
    CHECK(pl_http_range(NULL, 1000, &a, &b) == 0);
    CHECK(pl_http_range("bytes=0-1,5-6", 1000, &a, &b) == 0);
    CHECK(pl_http_range("items=0-1", 1000, &a, &b) == 0);
    CHECK(pl_http_range("bytes=5-2", 1000, &a, &b) == 0);
    CHECK(pl_http_range("bytes=x-2", 1000, &a, &b) == 0);
    CHECK(pl_http_range("bytes=1-2junk", 1000, &a, &b) == 0);
    CHECK(pl_http_range("bytes=-", 1000, &a, &b) == 0);
    CHECK(pl_http_range("bytes=99999999999999999999-", 1000, &a, &b) == 0);
    CHECK(a == -7 && b == -7); /* untouched when not 1 */
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    char portstr[16];
    pl_http *h = NULL;
    for (int i = 0; i < 20 && h == NULL; i++) {
        port = 20000 + (int)(pl_now_ms() % 30000) + i;
        snprintf(portstr, sizeof(portstr), "127.0.0.1:%d", port);
        pl_http_opts o = {portstr, 4, 1000, 65536, ready};
        h = pl_http_start(&o, routes, 2, NULL);
    }
    if (h == NULL)
        return 1;
    RUN(byte_ranges);
    RUN(pattern_matching);
    RUN(json_roundtrip_and_params);
    RUN(bad_json_is_400_with_bolna_shape);
    RUN(oversized_body_is_413);
    RUN(unknown_path_and_method);
    RUN(query_and_extra_headers);
    RUN(ops_endpoints);
    pl_http_stop(h);
    return check_summary();
}
