/* The openai LLM provider against tests/fakes/openai/server.py, which this test starts itself
 * (python3, on a port the server picks and prints) and stops at the end. */
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "error.h"
#include "llm.h"

#define UNICODE_REPLY                                                                              \
    "Gr\xc3\xbc\xc3\x9f"                                                                           \
    "e aus K\xc3\xb6ln \xe2\x80\x94 caf\xc3\xa9 \xe2\x98\x95, na\xc3\xafve "                       \
    "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x98\x80!"

static pid_t fake_pid;
static int fake_port;
static char base_url[64];
static llm_driver *drv;

/* ---- the fake server ---- */

static int start_fake(void)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    fake_pid = fork();
    if (fake_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive the test */
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execlp("python3", "python3", "tests/fakes/openai/server.py", "--port", "0", "--api-key",
               "sk-test", "--split", "random", "--seed", "7", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char line[256];
    size_t len = 0;
    struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
    while (len + 1 < sizeof(line) && poll(&pfd, 1, 10000) == 1) {
        ssize_t n = read(fds[0], line + len, 1);
        if (n <= 0 || line[len] == '\n')
            break;
        len++;
    }
    line[len] = '\0';
    close(fds[0]);
    const char *colon = strrchr(line, ':');
    fake_port = colon != NULL ? atoi(colon + 1) : 0;
    if (fake_port <= 0) {
        printf("fake server did not start: \"%s\"\n", line);
        return -1;
    }
    snprintf(base_url, sizeof(base_url), "http://127.0.0.1:%d/v1", fake_port);
    return 0;
}

static void stop_fake(void)
{
    if (fake_pid > 0) {
        kill(fake_pid, SIGTERM);
        waitpid(fake_pid, NULL, 0);
    }
}

typedef struct {
    char *p;
    size_t len;
} body;

static size_t grab(char *p, size_t size, size_t n, void *arg)
{
    body *b = arg;
    char *q = realloc(b->p, b->len + size * n + 1);
    if (q == NULL)
        return 0;
    memcpy(q + b->len, p, size * n);
    b->p = q;
    b->len += size * n;
    b->p[b->len] = '\0';
    return size * n;
}

/* What the fake received (a blocking request: fine in a test). */
static cJSON *fake_requests(void)
{
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/fake/requests", fake_port);
    body b = {0};
    CURL *e = curl_easy_init();
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, grab);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_perform(e);
    curl_easy_cleanup(e);
    cJSON *j = b.p != NULL ? cJSON_Parse(b.p) : NULL;
    free(b.p);
    return j;
}

/* The fake's record of the last request whose last message contains `needle`. */
static cJSON *request_with(cJSON *all, const char *needle)
{
    cJSON *r, *found = NULL;
    cJSON_ArrayForEach(r, all)
    {
        char *txt = cJSON_PrintUnformatted(cJSON_GetObjectItem(r, "body"));
        if (txt != NULL && strstr(txt, needle) != NULL)
            found = r;
        free(txt);
    }
    return found;
}

/* ---- a stream's observer ---- */

typedef struct {
    char text[16384];
    size_t len;
    int ntokens, bad_utf8;
    int done, errors, finished;
    llm_done d;
    char model[128], finish[32];
    long status;
    char reason[1024];
    int ntools;
    char tool_name[4][64], tool_args[4][512], tool_id[4][64];
    int after_end; /* callbacks after on_done/on_error or after a cancel */
    llm_stream *stream;
    int cancelled;
    int cancel_after;     /* llm_cancel(stream) from on_token after this many tokens */
    int stop_at;          /* set `finished` once this many tokens arrived */
    llm_stream *other;    /* on the cancel_after-th token: cancel this one too ... */
    void (*hook)(void *); /* ... and call this */
    void *hook_arg;
    llm_client *destroy_on_error;
} result;

static int utf8_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (k == 0 || i + k > n)
            return 0;
        for (size_t j = 1; j < k; j++)
            if (((unsigned char)s[i + j] & 0xC0) != 0x80)
                return 0;
        i += k;
    }
    return 1;
}

static void on_token(void *user, const char *t, size_t n)
{
    result *r = user;
    if (r->finished && (r->done || r->errors || r->cancelled))
        r->after_end++;
    if (!utf8_ok(t, n))
        r->bad_utf8++;
    if (r->len + n < sizeof(r->text)) {
        memcpy(r->text + r->len, t, n);
        r->len += n;
        r->text[r->len] = '\0';
    }
    r->ntokens++;
    if (r->stop_at > 0 && r->ntokens >= r->stop_at)
        r->finished = 1;
    if (r->cancel_after > 0 && r->ntokens == r->cancel_after) {
        llm_cancel(r->stream);
        r->cancelled = 1;
        r->finished = 1;
        if (r->other != NULL)
            llm_cancel(r->other);
        if (r->hook != NULL)
            r->hook(r->hook_arg);
    }
}

static void on_tool_call(void *user, const char *name, const char *args, const char *id)
{
    result *r = user;
    if (r->ntools < 4) {
        snprintf(r->tool_name[r->ntools], sizeof(r->tool_name[0]), "%s", name);
        snprintf(r->tool_args[r->ntools], sizeof(r->tool_args[0]), "%s", args);
        snprintf(r->tool_id[r->ntools], sizeof(r->tool_id[0]), "%s", id);
    }
    r->ntools++;
}

static void on_done(void *user, const llm_done *d)
{
    result *r = user;
    if (r->finished && (r->done || r->errors || r->cancelled))
        r->after_end++;
    r->done++;
    r->finished = 1;
    r->d = *d;
    snprintf(r->model, sizeof(r->model), "%s", d->model);
    snprintf(r->finish, sizeof(r->finish), "%s", d->finish_reason);
    r->d.model = r->model;
    r->d.finish_reason = r->finish;
}

static void on_error(void *user, long status, const char *reason)
{
    result *r = user;
    if (r->finished && (r->done || r->errors || r->cancelled))
        r->after_end++;
    r->errors++;
    r->finished = 1;
    r->status = status;
    snprintf(r->reason, sizeof(r->reason), "%s", reason);
    if (r->destroy_on_error != NULL) {
        llm_client_destroy(r->destroy_on_error);
        r->destroy_on_error = NULL;
    }
}

static const llm_callbacks CB = {
    .on_token = on_token, .on_tool_call = on_tool_call, .on_done = on_done, .on_error = on_error};

/* ---- helpers ---- */

static llm_client *client_with(const char *extra)
{
    char json[1024];
    snprintf(json, sizeof(json),
             "{\"provider\":\"openai\",\"model\":\"gpt-test\",\"base_url\":\"%s\","
             "\"api_key\":\"sk-test\"%s%s}",
             base_url, extra != NULL ? "," : "", extra != NULL ? extra : "");
    cJSON *cfg = cJSON_Parse(json);
    char err[256] = "";
    llm_client *c = NULL;
    int rc = llm_client_create(cfg, llm_driver_loop(drv), &c, err, sizeof(err));
    cJSON_Delete(cfg);
    if (rc != PL_OK)
        printf("    create: %s\n", err);
    return c;
}

static int start(llm_client *c, const char *said, result *r)
{
    prompt_history h;
    prompt_history_init(&h, 0);
    prompt_history_add(&h, PROMPT_USER, said, strlen(said));
    llm_request req = {.system = "You are a test agent.", .history = &h};
    int rc = llm_start(c, &req, &CB, r, &r->stream);
    prompt_history_free(&h);
    return rc;
}

static void ask(llm_client *c, const char *said, result *r)
{
    CHECK(start(c, said, r) == PL_OK);
    CHECK(llm_driver_run(drv, &r->finished, 15000) == PL_OK);
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- tests ---- */

static void test_stream_reassembles_reply(void)
{
    llm_client *c = client_with("\"max_tokens\":50,\"temperature\":0.2,\"top_p\":0.9");
    result r = {0};
    ask(c, "hello there", &r);
    CHECK(r.done == 1 && r.errors == 0);
    CHECK_STR(r.text, "Hello! How can I help you today?");
    CHECK(r.ntokens > 3);
    CHECK(r.d.has_usage);
    CHECK(r.d.completion_tokens == r.ntokens); /* the fake counts one per content delta */
    CHECK(r.d.prompt_tokens == 3 + 5 + 3 + 2); /* 3 per message + words */
    CHECK_STR(r.model, "gpt-test");
    CHECK_STR(r.finish, "stop");
    CHECK(r.d.hangup == 0);

    /* What went over the wire. */
    cJSON *all = fake_requests();
    cJSON *req = request_with(all, "hello there");
    CHECK(req != NULL);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(req, "authorization")), "Bearer sk-test");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(req, "content_type")), "application/json");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(req, "path")), "/v1/chat/completions");
    cJSON *b = cJSON_GetObjectItem(req, "body");
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(b, "stream")));
    CHECK(cJSON_IsTrue(
        cJSON_GetObjectItem(cJSON_GetObjectItem(b, "stream_options"), "include_usage")));
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(b, "max_tokens")) == 50);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(b, "temperature")) == 0.2);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(b, "top_p")) == 0.9);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(b, "model")), "gpt-test");
    CHECK(cJSON_GetObjectItem(b, "tools") == NULL);
    cJSON *msgs = cJSON_GetObjectItem(b, "messages");
    CHECK(cJSON_GetArraySize(msgs) == 2);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 0), "role")),
              "system");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 0), "content")),
              "You are a test agent.");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(req, "outcome")), "complete");
    cJSON_Delete(all);
    llm_client_destroy(c);
}

static void test_unicode_under_splits(void)
{
    llm_client *c = client_with(NULL);
    const char *asks[] = {"fake:unicode fake:bytes", "fake:unicode fake:random-split fake:crlf",
                          "fake:unicode"};
    for (size_t i = 0; i < sizeof(asks) / sizeof(asks[0]); i++) {
        result r = {0};
        ask(c, asks[i], &r);
        CHECK(r.done == 1);
        CHECK_STR(r.text, UNICODE_REPLY);
        CHECK(r.bad_utf8 == 0); /* every token is whole characters */
        CHECK(r.d.completion_tokens == r.ntokens);
    }
    /* The caller's own words echoed back, cut at random byte offsets. */
    result r = {0};
    const char *said = "na\xc3\xafve \xe6\x97\xa5\xe6\x9c\xac \"quoted\" \\ back\\slash";
    ask(c, said, &r);
    char want[256];
    snprintf(want, sizeof(want), "You said: %s", said);
    CHECK_STR(r.text, want);
    llm_client_destroy(c);
}

static void test_tool_call_with_split_arguments(void)
{
    llm_client *c = client_with(NULL);
    result r = {0};
    ask(c, "please end the call fake:tool", &r);
    CHECK(r.done == 1 && r.errors == 0);
    CHECK(r.ntools == 1);
    CHECK_STR(r.tool_name[0], "end_call");
    CHECK_STR(r.tool_id[0], "call_fake0");
    cJSON *args = cJSON_Parse(r.tool_args[0]);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(args, "reason")),
              "caller asked to end the call");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(args, "note")), "na\xc3\xafve caf\xc3\xa9");
    cJSON_Delete(args);
    CHECK_STR(r.finish, "tool_calls");
    CHECK(r.ntokens == 0);

    result p = {0};
    ask(c, "fake:tool-parallel", &p);
    CHECK(p.ntools == 2);
    CHECK_STR(p.tool_name[0], "lookup_order");
    CHECK_STR(p.tool_args[0], "{\"order_id\": \"A-1001\"}");
    CHECK_STR(p.tool_name[1], "end_call");
    CHECK_STR(p.tool_args[1], "{\"reason\": \"done\"}");

    /* Ollama's old shape: whole calls in one chunk, without `index`. */
    result o = {0};
    ask(c, "fake:tool-ollama", &o);
    CHECK(o.ntools == 1);
    CHECK_STR(o.tool_name[0], "end_call");
    CHECK_STR(o.tool_args[0], "{\"reason\": \"caller asked\"}");
    CHECK(o.done == 1);
    result o2 = {0}; /* ... one whole call per chunk, still without `index` */
    ask(c, "fake:tool-ollama-parallel", &o2);
    CHECK(o2.ntools == 2);
    CHECK_STR(o2.tool_name[0], "lookup_order");
    CHECK_STR(o2.tool_args[0], "{\"order_id\": \"A-1001\"}");
    CHECK_STR(o2.tool_id[1], "call_fake1");
    CHECK_STR(o2.tool_args[1], "{\"reason\": \"done\"}");
    llm_client_destroy(c);
}

static void test_error_mid_stream(void)
{
    llm_client *c = client_with(NULL);
    result r = {0};
    ask(c, "fake:error-midstream", &r);
    CHECK(r.errors == 1 && r.done == 0);
    CHECK(r.ntokens == 3); /* what came before the error was delivered */
    CHECK(strncmp(r.text, "I was abo", 9) == 0);
    CHECK(r.status == 0);
    CHECK(strncmp(r.reason, "openai: error mid-stream: The server had an error", 49) == 0);
    CHECK(strstr(r.reason, "(fake mid-stream error)") != NULL);
    CHECK(strstr(r.reason, "server_error") != NULL);

    result d = {0}; /* the connection drops without [DONE] */
    ask(c, "fake:drop", &d);
    CHECK(d.errors == 1 && d.done == 0);
    CHECK(strstr(d.reason, "openai: connection lost mid-stream") == d.reason);
    llm_client_destroy(c);
}

static void test_http_errors(void)
{
    llm_client *c = client_with(NULL);
    const struct {
        const char *said;
        long status;
        const char *want;
    } cases[] = {
        {"fake:429", 429, "openai: HTTP 429: Rate limit reached for gpt-test"},
        {"fake:500", 500, "openai: HTTP 500: The server had an error while processing"},
        {"fake:502-html", 502, "openai: HTTP 502: 502 Bad Gateway"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        result r = {0};
        ask(c, cases[i].said, &r);
        CHECK(r.errors == 1 && r.done == 0 && r.ntokens == 0);
        CHECK(r.status == cases[i].status);
        if (strncmp(r.reason, cases[i].want, strlen(cases[i].want)) != 0) {
            printf("    got \"%s\"\n", r.reason);
            CHECK(0);
        }
    }
    result r = {0};
    ask(c, "fake:429", &r);
    CHECK(strstr(r.reason, "(rate_limit_exceeded)") != NULL);
    llm_client_destroy(c);

    /* A wrong key. */
    cJSON *cfg = cJSON_CreateObject();
    cJSON_AddStringToObject(cfg, "provider", "openai");
    cJSON_AddStringToObject(cfg, "model", "gpt-test");
    cJSON_AddStringToObject(cfg, "base_url", base_url);
    cJSON_AddStringToObject(cfg, "api_key", "sk-wrong-key");
    char err[256];
    CHECK(llm_client_create(cfg, llm_driver_loop(drv), &c, err, sizeof(err)) == PL_OK);
    result k = {0};
    ask(c, "hello", &k);
    CHECK(k.status == 401);
    CHECK(strstr(k.reason, "openai: HTTP 401: Incorrect API key provided") == k.reason);
    CHECK(strstr(k.reason, "(invalid_api_key)") != NULL);
    llm_client_destroy(c);
    cJSON_Delete(cfg);
}

static void test_timeouts_and_connection_failures(void)
{
    /* The first token is late: comments (keep-alives) arrive meanwhile but are not tokens. */
    llm_client *c = client_with("\"first_token_timeout_ms\":400");
    result r = {0};
    long t0 = now_ms();
    ask(c, "fake:slow=3000", &r);
    long took = now_ms() - t0;
    CHECK(r.errors == 1 && r.done == 0);
    CHECK_STR(r.reason, "openai: no first token within 400 ms");
    CHECK(took >= 390 && took < 1500);
    /* A first token in time passes. */
    result ok = {0};
    ask(c, "fake:slow=200 hello", &ok);
    CHECK(ok.done == 1);
    llm_client_destroy(c);

    /* The whole reply is late. */
    c = client_with("\"request_timeout_ms\":500");
    result t = {0};
    ask(c, "fake:long", &t);
    CHECK(t.errors == 1 && t.ntokens > 0);
    CHECK(strstr(t.reason, "openai: timed out after 500 ms") == t.reason);
    llm_client_destroy(c);

    /* Nobody listens. */
    cJSON *cfg = cJSON_Parse("{\"provider\":\"openai\",\"model\":\"m\","
                             "\"base_url\":\"http://127.0.0.1:1/v1\"}");
    char err[256];
    CHECK(llm_client_create(cfg, llm_driver_loop(drv), &c, err, sizeof(err)) == PL_OK);
    result n = {0};
    ask(c, "hello", &n);
    CHECK(n.errors == 1 && n.status == 0);
    CHECK(strstr(n.reason, "openai: request to http://127.0.0.1:1/v1/chat/completions failed") ==
          n.reason);
    llm_client_destroy(c);
    cJSON_Delete(cfg);
}

static void test_cancel_mid_stream(void)
{
    llm_client *c = client_with(NULL);
    /* From inside on_token. */
    result r = {0};
    r.cancel_after = 3;
    ask(c, "fake:long", &r);
    llm_driver_run(drv, NULL, 300);
    CHECK(r.ntokens == 3 && r.done == 0 && r.errors == 0 && r.after_end == 0);
    /* The server saw the client go (it stops generating). */
    int gone = 0;
    for (int i = 0; i < 40 && !gone; i++) {
        cJSON *all = fake_requests();
        cJSON *req = request_with(all, "fake:long");
        gone = req != NULL && strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(req, "outcome")),
                                     "client_disconnected") == 0;
        cJSON_Delete(all);
        if (!gone)
            llm_driver_run(drv, NULL, 50);
    }
    CHECK(gone);

    /* From outside any callback, between tokens. */
    result o = {0};
    o.stop_at = 2;
    ask(c, "fake:long", &o);
    int seen = o.ntokens;
    llm_cancel(o.stream);
    o.cancelled = 1;
    llm_driver_run(drv, NULL, 300);
    CHECK(o.ntokens == seen && o.done == 0 && o.errors == 0);

    /* Before anything arrived (even before the connection is up). */
    result b = {0};
    CHECK(start(c, "fake:long", &b) == PL_OK);
    llm_cancel(b.stream);
    llm_driver_run(drv, NULL, 200);
    CHECK(b.ntokens == 0 && b.done == 0 && b.errors == 0);
    llm_client_destroy(c);
}

typedef struct {
    llm_client *c;
    result *r;
    int rc;
    result *cancelled; /* its token count when it was cancelled */
    int cancelled_at;
} start_later;

static void start_hook(void *arg)
{
    start_later *s = arg;
    s->cancelled_at = s->cancelled->ntokens;
    s->rc = start(s->c, "hello from a callback", s->r);
}

static void test_cancel_and_start_inside_another_callback(void)
{
    /* Inside a libcurl write callback of stream B, cancel stream A and start stream C: libcurl
     * refuses handle changes there, so the provider must defer them. */
    llm_client *c = client_with(NULL);
    result a = {0}, b = {0}, cc = {0};
    start_later later = {.c = c, .r = &cc, .rc = -1, .cancelled = &a};
    CHECK(start(c, "fake:long fake:token-delay=20", &a) == PL_OK);
    CHECK(start(c, "fake:long fake:token-delay=20", &b) == PL_OK);
    a.stop_at = 2;
    CHECK(llm_driver_run(drv, &a.finished, 5000) == PL_OK);
    a.cancelled = 1;
    b.cancel_after = b.ntokens + 2;
    b.other = a.stream;
    b.hook = start_hook;
    b.hook_arg = &later;
    CHECK(llm_driver_run(drv, &b.finished, 5000) == PL_OK);
    CHECK(later.rc == PL_OK);
    CHECK(llm_driver_run(drv, &cc.finished, 5000) == PL_OK);
    CHECK(cc.done == 1);
    CHECK_STR(cc.text, "Hello! How can I help you today?");
    llm_driver_run(drv, NULL, 300);
    CHECK(a.ntokens == later.cancelled_at && a.done == 0 && a.errors == 0);
    CHECK(b.done == 0 && b.errors == 0 && b.after_end == 0);
    llm_client_destroy(c);
}

static void test_destroy_client_inside_callbacks(void)
{
    llm_client *c = client_with(NULL);
    result r = {0};
    r.destroy_on_error = c;
    ask(c, "fake:500", &r);
    CHECK(r.errors == 1);
    llm_driver_run(drv, NULL, 100);

    /* With other streams running: they stop silently. */
    c = client_with(NULL);
    result x = {0}, y = {0};
    CHECK(start(c, "fake:long", &y) == PL_OK);
    x.destroy_on_error = c;
    ask(c, "fake:error-midstream", &x);
    CHECK(x.errors == 1);
    int seen = y.ntokens;
    llm_driver_run(drv, NULL, 300);
    CHECK(y.ntokens == seen && y.done == 0 && y.errors == 0);
}

static void test_many_streams_on_one_loop(void)
{
    llm_client *c = client_with(NULL);
    enum { N = 8 };
    result r[N];
    memset(r, 0, sizeof(r));
    for (int i = 0; i < N; i++) {
        char said[64];
        snprintf(said, sizeof(said), "number %d fake:token-delay=10", i);
        CHECK(start(c, said, &r[i]) == PL_OK);
    }
    long t0 = now_ms();
    for (int i = 0; i < N; i++)
        CHECK(llm_driver_run(drv, &r[i].finished, 10000) == PL_OK);
    for (int i = 0; i < N; i++) {
        char want[64];
        snprintf(want, sizeof(want), "You said: number %d fake:token-delay=10", i);
        CHECK_STR(r[i].text, want);
        CHECK(r[i].done == 1);
    }
    /* Concurrently, not one after another (each takes ~10 tokens x 10 ms). */
    CHECK(now_ms() - t0 < 1500);
    llm_client_destroy(c);
}

static void test_history_and_tools_in_the_request(void)
{
    llm_client *c = client_with(NULL);
    prompt_history h;
    prompt_history_init(&h, 0);
    prompt_history_add(&h, PROMPT_ASSISTANT, "Hello, this is Parley calling about your order.", 47);
    prompt_history_cut(&h, 0, 12); /* heard "Hello, this " */
    prompt_history_add(&h, PROMPT_USER, "who is this", 11);
    prompt_history_add(&h, PROMPT_ASSISTANT, "Never heard", 11);
    prompt_history_cut(&h, 2, 0);
    prompt_history_add_tool_call(&h, "call_9", "lookup_order", "{\"id\":7}");
    prompt_history_add_tool_result(&h, "call_9", "shipped");
    prompt_history_add(&h, PROMPT_USER, "history check", 13);
    const char *tools = "[{\"type\":\"function\",\"function\":{\"name\":\"end_call\","
                        "\"parameters\":{\"type\":\"object\",\"properties\":{}}}}]";
    llm_request req = {.system = "sys", .history = &h, .tools_json = tools};
    result r = {0};
    CHECK(llm_start(c, &req, &CB, &r, &r.stream) == PL_OK);
    prompt_history_free(&h);
    CHECK(llm_driver_run(drv, &r.finished, 5000) == PL_OK);
    CHECK(r.done == 1);
    CHECK_STR(r.text, "You said: history check");

    cJSON *all = fake_requests();
    cJSON *b = cJSON_GetObjectItem(request_with(all, "history check"), "body");
    char *msgs = cJSON_PrintUnformatted(cJSON_GetObjectItem(b, "messages"));
    CHECK_STR(msgs, "[{\"role\":\"system\",\"content\":\"sys\"},"
                    "{\"role\":\"assistant\",\"content\":\"Hello, this\"},"
                    "{\"role\":\"user\",\"content\":\"who is this\"},"
                    "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"call_9\",\"type\":"
                    "\"function\",\"function\":{\"name\":\"lookup_order\",\"arguments\":"
                    "\"{\\\"id\\\":7}\"}}],\"content\":null},"
                    "{\"role\":\"tool\",\"tool_call_id\":\"call_9\",\"content\":\"shipped\"},"
                    "{\"role\":\"user\",\"content\":\"history check\"}]");
    free(msgs);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(b, "tool_choice")), "auto");
    CHECK_STR(
        cJSON_GetStringValue(cJSON_GetObjectItem(
            cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(b, "tools"), 0), "function"),
            "name")),
        "end_call");
    cJSON_Delete(all);

    /* Tools that are not a JSON array: refused, and no callback ever fires. */
    prompt_history_init(&h, 0);
    prompt_history_add(&h, PROMPT_USER, "x", 1);
    llm_request bad = {.history = &h, .tools_json = "{\"type\":"};
    result z = {0};
    CHECK(llm_start(c, &bad, &CB, &z, &z.stream) == PL_ERR_INVALID);
    CHECK(z.stream == NULL);
    llm_driver_run(drv, NULL, 50);
    CHECK(z.finished == 0);
    prompt_history_free(&h);
    llm_client_destroy(c);
}

static void test_reply_shapes(void)
{
    llm_client *c = client_with(NULL);
    result n = {0}; /* a server answering one JSON completion despite stream: true */
    ask(c, "hello fake:nostream", &n);
    CHECK(n.done == 1);
    CHECK_STR(n.text, "Hello! How can I help you today?");
    CHECK(n.ntokens == 1 && n.d.has_usage && n.d.completion_tokens > 0);
    CHECK_STR(n.finish, "stop");

    result u = {0}; /* no usage chunk */
    ask(c, "hello fake:no-usage", &u);
    CHECK(u.done == 1 && !u.d.has_usage && u.d.completion_tokens == 0);

    result t = {0}; /* a tool call in a whole JSON completion */
    ask(c, "fake:tool fake:nostream", &t);
    CHECK(t.done == 1 && t.ntools == 1);
    CHECK_STR(t.tool_name[0], "end_call");
    llm_client_destroy(c);
}

static void test_config_and_environment(void)
{
    char err[256];
    llm_client *c = NULL;
    const struct {
        const char *cfg, *want;
    } bad[] = {
        {"{\"provider\":\"openai\"}", "llm_config.model: required for provider openai"},
        {"{\"provider\":\"groq\",\"model\":\"m\"}",
         "llm_config.base_url: required for provider groq"},
        {"{\"provider\":\"openai\",\"model\":\"m\",\"base_url\":\"file:///etc/passwd\"}",
         "llm_config.base_url: 'file:///etc/passwd' is not an http(s) URL"},
        {"{\"provider\":\"openai\",\"model\":\"m\",\"first_token_timeout_ms\":\"soon\"}",
         "llm_config.first_token_timeout_ms: must be a number of ms"},
        {"{\"provider\":\"openai\",\"model\":\"m\",\"temperature\":\"hot\"}",
         "llm_config.temperature: must be a number"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cJSON *cfg = cJSON_Parse(bad[i].cfg);
        CHECK(llm_client_create(cfg, llm_driver_loop(drv), &c, err, sizeof(err)) == PL_ERR_INVALID);
        CHECK(c == NULL);
        if (strncmp(err, bad[i].want, strlen(bad[i].want)) != 0) {
            printf("    case %zu: got \"%s\"\n", i, err);
            CHECK(0);
        }
        cJSON_Delete(cfg);
    }

    /* openai: base URL and key from the environment. */
    setenv("PL_OPENAI_BASE_URL", base_url, 1);
    setenv("PL_OPENAI_API_KEY", "sk-test", 1);
    cJSON *cfg = cJSON_Parse("{\"provider\":\"openai\",\"model\":\"from-env\"}");
    CHECK(llm_client_create(cfg, llm_driver_loop(drv), &c, err, sizeof(err)) == PL_OK);
    result r = {0};
    ask(c, "hello env", &r);
    CHECK(r.done == 1);
    CHECK_STR(r.model, "from-env");
    llm_client_destroy(c);
    cJSON_Delete(cfg);

    /* Another vendor never gets the OpenAI key: its own variable, or none. */
    char json[256];
    snprintf(json, sizeof(json), "{\"provider\":\"groq\",\"model\":\"m\",\"base_url\":\"%s/\"}",
             base_url);
    cfg = cJSON_Parse(json);
    CHECK(llm_client_create(cfg, llm_driver_loop(drv), &c, err, sizeof(err)) == PL_OK);
    result g = {0};
    ask(c, "hello groq without key", &g);
    CHECK(g.status == 401);
    CHECK(strstr(g.reason, "groq: HTTP 401: You didn't provide an API key") == g.reason);
    llm_client_destroy(c);
    setenv("PL_GROQ_API_KEY", "sk-test", 1);
    CHECK(llm_client_create(cfg, llm_driver_loop(drv), &c, err, sizeof(err)) == PL_OK);
    result g2 = {0};
    ask(c, "hello groq with key", &g2);
    CHECK(g2.done == 1);
    cJSON *all = fake_requests();
    CHECK_STR(cJSON_GetStringValue(
                  cJSON_GetObjectItem(request_with(all, "groq with key"), "authorization")),
              "Bearer sk-test");
    CHECK(
        cJSON_GetObjectItem(request_with(all, "groq without key"), "authorization") != NULL &&
        cJSON_IsNull(cJSON_GetObjectItem(request_with(all, "groq without key"), "authorization")));
    cJSON_Delete(all);
    llm_client_destroy(c);
    cJSON_Delete(cfg);
    unsetenv("PL_GROQ_API_KEY");
    unsetenv("PL_OPENAI_BASE_URL");
    unsetenv("PL_OPENAI_API_KEY");
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    drv = llm_driver_new();
    if (start_fake() != 0) {
        printf("0 passed, 1 failed\n");
        return 1;
    }
    RUN(test_stream_reassembles_reply);
    RUN(test_unicode_under_splits);
    RUN(test_tool_call_with_split_arguments);
    RUN(test_error_mid_stream);
    RUN(test_http_errors);
    RUN(test_timeouts_and_connection_failures);
    RUN(test_cancel_mid_stream);
    RUN(test_cancel_and_start_inside_another_callback);
    RUN(test_destroy_client_inside_callbacks);
    RUN(test_many_streams_on_one_loop);
    RUN(test_history_and_tools_in_the_request);
    RUN(test_reply_shapes);
    RUN(test_config_and_environment);
    llm_driver_run(drv, NULL, 100); /* let cancelled transfers wind down */
    llm_driver_free(drv);
    stop_fake();
    return check_summary();
}
