/* The `openai` LLM provider: any OpenAI-compatible POST {base_url}/chat/completions, streamed.
 *
 * llm_config (tools_config.llm_agent.llm_config) fields read here:
 *   provider     "openai" (default) or any OpenAI-compatible name (groq, ollama, vllm, ...)
 *   model        required
 *   base_url     e.g. "https://api.openai.com/v1"; for "openai" it defaults to the environment's
 *                PL_OPENAI_BASE_URL, then to https://api.openai.com/v1; other names need it
 *   api_key      else PL_<PROVIDER>_API_KEY from the environment (PL_OPENAI_API_KEY, ...);
 *                with neither, no Authorization header is sent (Ollama needs none)
 *   max_tokens, temperature, top_p, presence_penalty, frequency_penalty   sent when set
 *   first_token_timeout_ms  [10000] the first token (or tool call) must arrive by then
 *   request_timeout_ms      [60000] the whole reply
 *   connect_timeout_ms      [5000]
 *
 * The request follows ../shared/reference/providers.md section 5: stream: true with
 * stream_options.include_usage, so the last chunk (choices: []) carries the usage; Groq's
 * x_groq.usage is read too. Tool-call deltas are joined per `index` (when a server omits it, as
 * Ollama did, a fragment with an id or a name starts the next call) and delivered whole when
 * finish_reason arrives or the stream ends. A non-2xx answer's {"error":{"message"}} body, an
 * `error` object inside the stream, a timeout or a lost connection end the stream with on_error
 * naming the provider's message. A server that ignores `stream` and answers one JSON completion is
 * accepted too.
 *
 * Transfers run on the loop's CURLM (see llm.h): the SSE bytes are parsed in the write
 * callback, so tokens reach the pipeline as soon as libcurl reads them. Cancelling removes
 * the easy handle, which closes the connection (HTTP/1.1) or resets the stream (HTTP/2): the
 * server stops generating. libcurl forbids adding or removing handles from inside its own
 * callbacks; when asked to from there, the work moves to a 0 ms loop timer.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "llm.h"
#include "sse.h"

#define OA_DEFAULT_BASE       "https://api.openai.com/v1"
#define OA_MAX_TOOLS          16
#define OA_MAX_ARGS           (64 * 1024) /* one tool call's arguments */
#define OA_MAX_ERROR_BODY     (16 * 1024) /* kept of a non-2xx body (the rest is dropped) */
#define OA_REASON_MAX         768
#define OA_DEFAULT_FIRST_MS   10000
#define OA_DEFAULT_REQUEST_MS 60000
#define OA_DEFAULT_CONNECT_MS 5000

typedef struct oa_stream oa_stream;

typedef struct {
    llm_client base; /* first: the ops table */
    llm_loop loop;
    char provider[32];
    char *url;
    char *auth; /* "Authorization: Bearer ..." or NULL */
    char *model;
    cJSON *params; /* the sampling settings copied into every body */
    long first_ms, request_ms, connect_ms;
    oa_stream *streams; /* every stream not yet freed, running or winding down */
} oa_client;

typedef enum {
    OA_RUNNING,   /* callbacks may still fire */
    OA_FINISHED,  /* on_done/on_error was delivered; waiting to be reaped */
    OA_CANCELLED, /* llm_cancel: silent; waiting to be reaped */
} oa_state;

typedef enum { BODY_NONE, BODY_SSE, BODY_JSON, BODY_ERROR } oa_body;

typedef struct {
    char *id, *name;
    char *args;
    size_t args_len, args_cap;
} oa_tool;

struct oa_stream {
    llm_stream base;   /* first: the ops table */
    llm_xfer xfer;     /* CURLOPT_PRIVATE */
    oa_client *client; /* NULL once the client is destroyed */
    oa_stream *prev, *next;
    llm_loop loop;
    char provider[32];
    long first_ms, request_ms;

    CURL *easy;
    struct curl_slist *headers;
    char *body;
    char errbuf[CURL_ERROR_SIZE];
    int attached;      /* the easy handle is on the multi */
    void *first_timer; /* first-token deadline */
    void *defer_timer; /* attach or reap outside libcurl's callbacks */

    llm_callbacks cb;
    void *user;
    oa_state state;
    int busy; /* > 0 while a user callback may be running on this stream */

    oa_body mode;
    long http_status;
    sse_parser sse;
    char *raw; /* a JSON or error body */
    size_t raw_len, raw_cap;
    int got_first, seen_done, tools_sent;
    char model[128]; /* configured, then the one the server reports */
    int model_seen;
    char finish[32];
    long prompt_tokens, completion_tokens;
    int has_usage;
    oa_tool tools[OA_MAX_TOOLS];
    int ntools;
};

static void reap(oa_stream *s);

/* ---- small helpers ---- */

static const char *json_str(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src != NULL ? src : "");
}

/* The provider's message in an error object ({"message","type","code"}) or string. */
static void error_text(const cJSON *err, char *out, size_t cap)
{
    if (cJSON_IsString(err)) {
        copy_str(out, cap, err->valuestring);
        return;
    }
    const char *msg = json_str(err, "message");
    const char *code = json_str(err, "code");
    const char *type = json_str(err, "type");
    const char *tag = code != NULL ? code : type;
    if (msg == NULL)
        msg = "(no message)";
    if (tag != NULL && tag[0] != '\0')
        snprintf(out, cap, "%s (%s)", msg, tag);
    else
        copy_str(out, cap, msg);
}

/* One line of printable text from a body that is not JSON: an HTML error page of a proxy
 * loses its tags, line breaks become spaces. */
static void body_snippet(const char *b, size_t len, char *out, size_t cap)
{
    size_t o = 0, i = 0;
    int space = 0, tag = 0;
    while (i < len && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t'))
        i++;
    int html = i < len && b[i] == '<';
    for (; i < len && o + 1 < cap && o < 200; i++) {
        unsigned char c = (unsigned char)b[i];
        if (html && (c == '<' || tag)) {
            tag = c != '>';
            space = o > 0;
            continue;
        }
        if (c <= 0x20 || c == 0x7f) {
            space = o > 0;
            continue;
        }
        if (space && o + 2 < cap)
            out[o++] = ' ';
        space = 0;
        out[o++] = (char)c;
    }
    out[o] = '\0';
}

static void stop_timer(oa_stream *s, void **t)
{
    if (*t != NULL) {
        s->loop.timer_stop(s->loop.ctx, *t);
        *t = NULL;
    }
}

/* ---- delivering to the user ---- */

static void fail(oa_stream *s, long status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(oa_stream *s, long status, const char *fmt, ...)
{
    if (s->state != OA_RUNNING)
        return;
    s->state = OA_FINISHED;
    stop_timer(s, &s->first_timer);
    char reason[OA_REASON_MAX];
    int n = snprintf(reason, sizeof(reason), "%s: ", s->provider);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason + n, sizeof(reason) - (size_t)n, fmt, ap);
    va_end(ap);
    if (s->cb.on_error != NULL) {
        s->busy++;
        s->cb.on_error(s->user, status, reason);
        s->busy--;
    }
}

static void got_first(oa_stream *s)
{
    if (!s->got_first) {
        s->got_first = 1;
        stop_timer(s, &s->first_timer);
    }
}

static void send_token(oa_stream *s, const char *text, size_t len)
{
    if (len == 0 || s->state != OA_RUNNING)
        return;
    got_first(s);
    if (s->cb.on_token != NULL) {
        s->busy++;
        s->cb.on_token(s->user, text, len);
        s->busy--;
    }
}

static void send_tools(oa_stream *s)
{
    for (int i = 0; i < s->ntools && s->state == OA_RUNNING && !s->tools_sent; i++) {
        oa_tool *t = &s->tools[i];
        if (t->name == NULL)
            continue; /* a slot skipped by the server's indexes */
        char id[32];
        snprintf(id, sizeof(id), "call_%d", i);
        if (s->cb.on_tool_call != NULL) {
            s->busy++;
            s->cb.on_tool_call(s->user, t->name, t->args_len > 0 ? t->args : "{}",
                               t->id != NULL && t->id[0] != '\0' ? t->id : id);
            s->busy--;
        }
    }
    s->tools_sent = 1;
}

static void finish_ok(oa_stream *s)
{
    send_tools(s);
    if (s->state != OA_RUNNING)
        return;
    s->state = OA_FINISHED;
    stop_timer(s, &s->first_timer);
    llm_done d = {
        .prompt_tokens = s->prompt_tokens,
        .completion_tokens = s->completion_tokens,
        .has_usage = s->has_usage,
        .model = s->model,
        .finish_reason = s->finish,
        .hangup = 0,
    };
    if (s->cb.on_done != NULL) {
        s->busy++;
        s->cb.on_done(s->user, &d);
        s->busy--;
    }
}

/* ---- reading chunks ---- */

static void read_usage(oa_stream *s, const cJSON *u)
{
    if (!cJSON_IsObject(u))
        return;
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(u, "completion_tokens");
    if (cJSON_IsNumber(p))
        s->prompt_tokens = (long)p->valuedouble;
    if (cJSON_IsNumber(c))
        s->completion_tokens = (long)c->valuedouble;
    s->has_usage |= cJSON_IsNumber(p) || cJSON_IsNumber(c);
}

static int set_once(char **dst, const char *v)
{
    if (v == NULL || v[0] == '\0' || *dst != NULL)
        return PL_OK;
    *dst = strdup(v);
    return *dst != NULL ? PL_OK : PL_ERR_NOMEM;
}

static int append_args(oa_tool *t, const char *v, size_t len)
{
    if (t->args_len + len > OA_MAX_ARGS)
        return PL_ERR_TOOBIG;
    if (t->args_len + len + 1 > t->args_cap) {
        size_t cap = t->args_cap != 0 ? t->args_cap : 256;
        while (cap < t->args_len + len + 1)
            cap *= 2;
        char *a = realloc(t->args, cap);
        if (a == NULL)
            return PL_ERR_NOMEM;
        t->args = a;
        t->args_cap = cap;
    }
    memcpy(t->args + t->args_len, v, len);
    t->args_len += len;
    t->args[t->args_len] = '\0';
    return PL_OK;
}

/* Joins tool-call fragments (deltas, or whole calls of a non-streamed reply) by index. */
static void read_tool_calls(oa_stream *s, const cJSON *calls)
{
    const cJSON *tc;
    cJSON_ArrayForEach(tc, calls)
    {
        const cJSON *ix = cJSON_GetObjectItemCaseSensitive(tc, "index");
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
        const cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
        int i;
        if (cJSON_IsNumber(ix))
            i = (int)ix->valuedouble;
        else if (json_str(tc, "id") != NULL || json_str(fn, "name") != NULL)
            i = s->ntools; /* no index (Ollama): a fragment naming a call starts a new one */
        else
            i = s->ntools > 0 ? s->ntools - 1 : 0; /* ... and the others continue the last */
        if (i < 0 || i >= OA_MAX_TOOLS) {
            fail(s, 0, "more than %d tool calls in one reply", OA_MAX_TOOLS);
            return;
        }
        got_first(s);
        oa_tool *t = &s->tools[i];
        if (i >= s->ntools)
            s->ntools = i + 1;
        int rc = set_once(&t->id, json_str(tc, "id"));
        if (rc == PL_OK)
            rc = set_once(&t->name, json_str(fn, "name"));
        if (rc == PL_OK && cJSON_IsString(args))
            rc = append_args(t, args->valuestring, strlen(args->valuestring));
        else if (rc == PL_OK && (cJSON_IsObject(args) || cJSON_IsArray(args))) {
            /* Some servers send the arguments as an object rather than JSON text. */
            char *txt = cJSON_PrintUnformatted(args);
            rc = txt != NULL ? append_args(t, txt, strlen(txt)) : PL_ERR_NOMEM;
            free(txt);
        }
        if (rc != PL_OK) {
            fail(s, 0, "tool call %d: %s", i,
                 rc == PL_ERR_TOOBIG ? "arguments too long" : "out of memory");
            return;
        }
    }
}

static const cJSON *first_choice(const cJSON *j)
{
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(j, "choices");
    const cJSON *c, *first = NULL;
    cJSON_ArrayForEach(c, choices)
    {
        const cJSON *ix = cJSON_GetObjectItemCaseSensitive(c, "index");
        if (!cJSON_IsNumber(ix) || ix->valuedouble == 0)
            return c;
        if (first == NULL)
            first = c;
    }
    return first;
}

/* One parsed chunk of the stream, or the whole non-streamed completion (`whole`). */
static void read_chunk(oa_stream *s, const cJSON *j, int whole)
{
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(j, "error");
    if (err != NULL && !cJSON_IsNull(err)) {
        char msg[512];
        error_text(err, msg, sizeof(msg));
        if (whole)
            fail(s, s->http_status, "error in the reply: %s", msg);
        else
            fail(s, 0, "error mid-stream: %s", msg);
        return;
    }
    const char *model = json_str(j, "model");
    if (!s->model_seen && model != NULL && model[0] != '\0') {
        copy_str(s->model, sizeof(s->model), model);
        s->model_seen = 1;
    }
    read_usage(s, cJSON_GetObjectItemCaseSensitive(j, "usage"));
    const cJSON *groq = cJSON_GetObjectItemCaseSensitive(j, "x_groq");
    if (cJSON_IsObject(groq) && !s->has_usage)
        read_usage(s, cJSON_GetObjectItemCaseSensitive(groq, "usage"));

    const cJSON *choice = first_choice(j);
    if (choice == NULL)
        return;
    const cJSON *delta = cJSON_GetObjectItemCaseSensitive(choice, whole ? "message" : "delta");
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(delta, "content");
    if (cJSON_IsString(content))
        send_token(s, content->valuestring, strlen(content->valuestring));
    const cJSON *calls = cJSON_GetObjectItemCaseSensitive(delta, "tool_calls");
    if (s->state == OA_RUNNING && cJSON_IsArray(calls))
        read_tool_calls(s, calls);
    const char *fin = json_str(choice, "finish_reason");
    if (s->state == OA_RUNNING && fin != NULL) {
        copy_str(s->finish, sizeof(s->finish), fin);
        if (s->ntools > 0)
            send_tools(s);
    }
}

static int on_event(void *arg, const sse_event *ev)
{
    oa_stream *s = arg;
    if (s->seen_done)
        return 0; /* nothing counts after [DONE] */
    if (ev->done) {
        s->seen_done = 1;
        return 0;
    }
    cJSON *j = cJSON_ParseWithLength(ev->data, ev->len);
    if (j == NULL) {
        fail(s, 0, "malformed stream event: %.80s", ev->data);
        return 1;
    }
    if (strcmp(ev->type, "error") == 0 && cJSON_GetObjectItemCaseSensitive(j, "error") == NULL) {
        char msg[512];
        error_text(j, msg, sizeof(msg));
        fail(s, 0, "error mid-stream: %s", msg);
    } else
        read_chunk(s, j, 0);
    cJSON_Delete(j);
    return s->state == OA_RUNNING ? 0 : 1;
}

static void pick_mode(oa_stream *s)
{
    long code = 0;
    char *ctype = NULL;
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(s->easy, CURLINFO_CONTENT_TYPE, &ctype);
    s->http_status = code;
    if (code < 200 || code >= 300)
        s->mode = BODY_ERROR;
    else if (ctype != NULL && strcasestr(ctype, "json") != NULL)
        s->mode = BODY_JSON;
    else
        s->mode = BODY_SSE; /* text/event-stream, or no Content-Type at all */
}

/* Keeps a non-SSE body: an error body is truncated, a JSON reply past the limit fails. */
static int keep_raw(oa_stream *s, const char *p, size_t n)
{
    size_t limit = s->mode == BODY_ERROR ? OA_MAX_ERROR_BODY : s->sse.max;
    if (s->raw_len + n > limit) {
        if (s->mode == BODY_ERROR)
            n = limit - s->raw_len;
        else
            return PL_ERR_TOOBIG;
    }
    if (s->raw_len + n + 1 > s->raw_cap) {
        size_t cap = s->raw_cap != 0 ? s->raw_cap : 1024;
        while (cap < s->raw_len + n + 1)
            cap *= 2;
        char *r = realloc(s->raw, cap);
        if (r == NULL)
            return PL_ERR_NOMEM;
        s->raw = r;
        s->raw_cap = cap;
    }
    memcpy(s->raw + s->raw_len, p, n);
    s->raw_len += n;
    s->raw[s->raw_len] = '\0';
    return PL_OK;
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
    oa_stream *s = arg;
    size_t n = size * nmemb;
    if (s->state != OA_RUNNING)
        return 0; /* cancelled or failed: abort the transfer */
    if (s->mode == BODY_NONE)
        pick_mode(s);
    s->busy++;
    int rc = s->mode == BODY_SSE ? sse_feed(&s->sse, ptr, n, on_event, s) : keep_raw(s, ptr, n);
    if (rc == PL_ERR_TOOBIG)
        fail(s, 0, "%s over %zu bytes", s->mode == BODY_SSE ? "a stream event" : "the reply",
             s->sse.max);
    else if (rc == PL_ERR_NOMEM)
        fail(s, 0, "out of memory");
    s->busy--;
    return s->state == OA_RUNNING ? n : 0;
}

/* ---- the end of a transfer ---- */

static void http_error(oa_stream *s)
{
    char msg[512] = "";
    cJSON *j = s->raw != NULL ? cJSON_ParseWithLength(s->raw, s->raw_len) : NULL;
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(j, "error");
    const char *detail = json_str(j, "detail"); /* some compatible servers (FastAPI) */
    if (err != NULL && !cJSON_IsNull(err))
        error_text(err, msg, sizeof(msg));
    else if (detail != NULL)
        copy_str(msg, sizeof(msg), detail);
    else if (s->raw != NULL)
        body_snippet(s->raw, s->raw_len, msg, sizeof(msg));
    cJSON_Delete(j);
    if (msg[0] != '\0')
        fail(s, s->http_status, "HTTP %ld: %s", s->http_status, msg);
    else
        fail(s, s->http_status, "HTTP %ld", s->http_status);
}

static void complete(oa_stream *s, CURLcode rc)
{
    if (s->mode == BODY_NONE) {
        curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &s->http_status);
        if (s->http_status != 0 && (s->http_status < 200 || s->http_status >= 300))
            s->mode = BODY_ERROR;
    }
    if (s->mode == BODY_ERROR) {
        http_error(s);
    } else if (rc != CURLE_OK && !s->seen_done) {
        const char *url = NULL;
        curl_easy_getinfo(s->easy, CURLINFO_EFFECTIVE_URL, &url);
        if (rc == CURLE_OPERATION_TIMEDOUT)
            fail(s, 0, "timed out after %ld ms (%s)", s->request_ms,
                 s->errbuf[0] ? s->errbuf : curl_easy_strerror(rc));
        else if (s->mode == BODY_NONE)
            fail(s, 0, "request to %s failed: %s", url != NULL ? url : "?",
                 s->errbuf[0] ? s->errbuf : curl_easy_strerror(rc));
        else
            fail(s, 0, "connection lost mid-stream: %s",
                 s->errbuf[0] ? s->errbuf : curl_easy_strerror(rc));
    } else if (s->mode == BODY_JSON) {
        cJSON *j = cJSON_ParseWithLength(s->raw != NULL ? s->raw : "", s->raw_len);
        if (j == NULL)
            fail(s, 0, "malformed JSON reply");
        else {
            read_chunk(s, j, 1);
            cJSON_Delete(j);
            finish_ok(s);
        }
    } else if (s->seen_done || s->finish[0] != '\0') {
        finish_ok(s);
    } else {
        fail(s, 0, "the stream ended before [DONE]");
    }
}

static void on_xfer_done(llm_xfer *x, CURLcode rc)
{
    oa_stream *s = (oa_stream *)(void *)((char *)x - offsetof(oa_stream, xfer));
    if (s->state == OA_RUNNING)
        complete(s, rc);
    reap(s);
}

/* ---- attaching, reaping ---- */

static void on_defer(void *arg);

static int defer(oa_stream *s)
{
    if (s->defer_timer != NULL)
        return PL_OK;
    s->defer_timer = s->loop.timer_start(s->loop.ctx, 0, on_defer, s);
    return s->defer_timer != NULL ? PL_OK : PL_ERR_NOMEM;
}

static void free_stream(oa_stream *s)
{
    if (s->client != NULL) {
        if (s->prev != NULL)
            s->prev->next = s->next;
        else
            s->client->streams = s->next;
        if (s->next != NULL)
            s->next->prev = s->prev;
    }
    if (s->easy != NULL)
        curl_easy_cleanup(s->easy);
    curl_slist_free_all(s->headers);
    free(s->body);
    free(s->raw);
    sse_free(&s->sse);
    for (int i = 0; i < OA_MAX_TOOLS; i++) {
        free(s->tools[i].id);
        free(s->tools[i].name);
        free(s->tools[i].args);
    }
    free(s);
}

/* Detaches and frees a stream that will deliver nothing more. Outside libcurl's callbacks it
 * happens now; inside them (CURLM_RECURSIVE_API_CALL) on the next turn of the loop. */
static void reap(oa_stream *s)
{
    stop_timer(s, &s->first_timer);
    if (s->attached) {
        CURLMcode mc = curl_multi_remove_handle(s->loop.multi, s->easy);
        if (mc == CURLM_RECURSIVE_API_CALL) {
            /* Meanwhile the write callback refuses data, which aborts the transfer; its
             * completion reaps it if it comes first. */
            defer(s);
            return;
        }
        s->attached = 0;
    }
    stop_timer(s, &s->defer_timer);
    free_stream(s);
}

/* Puts the handle on the multi; PL_OK, or PL_ERR_IO. */
static int attach(oa_stream *s)
{
    CURLMcode mc = curl_multi_add_handle(s->loop.multi, s->easy);
    if (mc == CURLM_OK) {
        s->attached = 1;
        return PL_OK;
    }
    if (mc == CURLM_RECURSIVE_API_CALL)
        return defer(s) == PL_OK ? PL_OK : PL_ERR_IO;
    return PL_ERR_IO;
}

static void on_defer(void *arg)
{
    oa_stream *s = arg;
    s->defer_timer = NULL;
    if (s->state == OA_RUNNING && !s->attached) {
        if (attach(s) != PL_OK) {
            fail(s, 0, "cannot start the transfer");
            reap(s);
        }
        return;
    }
    if (s->state != OA_RUNNING)
        reap(s);
}

static void on_first_timeout(void *arg)
{
    oa_stream *s = arg;
    s->first_timer = NULL;
    if (s->state != OA_RUNNING || s->got_first)
        return;
    fail(s, 0, "no first token within %ld ms", s->first_ms);
    reap(s);
}

static void oa_cancel(llm_stream *base)
{
    oa_stream *s = (oa_stream *)base;
    if (s->state != OA_RUNNING)
        return; /* already over: the provider reaps it */
    s->state = OA_CANCELLED;
    stop_timer(s, &s->first_timer);
    if (s->busy > 0)
        return; /* inside our own callback: the write callback aborts, completion reaps */
    reap(s);
}

/* ---- the request ---- */

static cJSON *message_json(const prompt_msg *m)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL || cJSON_AddStringToObject(o, "role", prompt_role_name(m->role)) == NULL)
        goto fail;
    if (m->role == PROMPT_ASSISTANT && m->tool_calls != NULL) {
        cJSON *tc = cJSON_Duplicate(m->tool_calls, 1);
        if (tc == NULL)
            goto fail;
        cJSON_AddItemToObject(o, "tool_calls", tc);
        if ((m->len > 0 ? cJSON_AddStringToObject(o, "content", m->content)
                        : cJSON_AddNullToObject(o, "content")) == NULL)
            goto fail;
        return o;
    }
    if (m->role == PROMPT_TOOL &&
        cJSON_AddStringToObject(o, "tool_call_id",
                                m->tool_call_id != NULL ? m->tool_call_id : "") == NULL)
        goto fail;
    if (cJSON_AddStringToObject(o, "content", m->content) == NULL)
        goto fail;
    return o;
fail:
    cJSON_Delete(o);
    return NULL;
}

static int build_body(const oa_client *c, const llm_request *req, char **out)
{
    int rc = PL_ERR_NOMEM;
    cJSON *root = cJSON_CreateObject(), *msgs = cJSON_CreateArray();
    if (root == NULL || msgs == NULL) {
        cJSON_Delete(msgs);
        goto out;
    }
    cJSON_AddItemToObject(root, "model", cJSON_CreateString(c->model));
    cJSON_AddItemToObject(root, "messages", msgs);
    if (req->system != NULL && req->system[0] != '\0') {
        cJSON *sys = cJSON_CreateObject();
        if (sys == NULL)
            goto out;
        cJSON_AddItemToArray(msgs, sys);
        if (cJSON_AddStringToObject(sys, "role", "system") == NULL ||
            cJSON_AddStringToObject(sys, "content", req->system) == NULL)
            goto out;
    }
    for (size_t i = 0; req->history != NULL && i < req->history->n; i++) {
        const prompt_msg *m = &req->history->msgs[i];
        /* A turn the caller heard nothing of (cut at 0) says nothing: leave it out. */
        if (m->role == PROMPT_ASSISTANT && m->len == 0 && m->tool_calls == NULL)
            continue;
        cJSON *o = message_json(m);
        if (o == NULL)
            goto out;
        cJSON_AddItemToArray(msgs, o);
    }
    cJSON *so = cJSON_AddObjectToObject(root, "stream_options");
    if (cJSON_AddTrueToObject(root, "stream") == NULL || so == NULL ||
        cJSON_AddTrueToObject(so, "include_usage") == NULL)
        goto out;
    const cJSON *p;
    cJSON_ArrayForEach(p, c->params)
    {
        cJSON *dup = cJSON_Duplicate(p, 1);
        if (dup == NULL)
            goto out;
        cJSON_AddItemToObject(root, p->string, dup);
    }
    if (req->tools_json != NULL && req->tools_json[0] != '\0') {
        cJSON *tools = cJSON_Parse(req->tools_json);
        if (!cJSON_IsArray(tools)) {
            cJSON_Delete(tools);
            rc = PL_ERR_INVALID;
            goto out;
        }
        if (cJSON_GetArraySize(tools) > 0) {
            cJSON_AddItemToObject(root, "tools", tools);
            if (cJSON_AddStringToObject(root, "tool_choice", "auto") == NULL)
                goto out;
        } else
            cJSON_Delete(tools);
    }
    *out = cJSON_PrintUnformatted(root);
    rc = *out != NULL ? PL_OK : PL_ERR_NOMEM;
out:
    cJSON_Delete(root);
    return rc;
}

static int oa_start(llm_client *base, const llm_request *req, const llm_callbacks *cb, void *user,
                    llm_stream **out)
{
    oa_client *c = (oa_client *)base;
    *out = NULL;
    if (req == NULL)
        return PL_ERR_INVALID;
    oa_stream *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return PL_ERR_NOMEM;
    s->base.ops = &llm_openai_provider;
    s->xfer.done = on_xfer_done;
    s->loop = c->loop;
    copy_str(s->provider, sizeof(s->provider), c->provider);
    copy_str(s->model, sizeof(s->model), c->model);
    s->first_ms = c->first_ms;
    s->request_ms = c->request_ms;
    if (cb != NULL)
        s->cb = *cb;
    s->user = user;
    sse_init(&s->sse, SSE_DEFAULT_MAX_EVENT);
    int rc = build_body(c, req, &s->body);
    if (rc != PL_OK) {
        free_stream(s);
        return rc;
    }
    struct curl_slist *h = NULL, *t;
    const char *lines[] = {"Content-Type: application/json", "Accept: text/event-stream",
                           "Expect:", c->auth};
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        if (lines[i] == NULL)
            continue;
        if ((t = curl_slist_append(h, lines[i])) == NULL) {
            curl_slist_free_all(h);
            free_stream(s);
            return PL_ERR_NOMEM;
        }
        h = t;
    }
    s->headers = h;
    if ((s->easy = curl_easy_init()) == NULL) {
        free_stream(s);
        return PL_ERR_NOMEM;
    }
    CURL *e = s->easy;
    curl_easy_setopt(e, CURLOPT_URL, c->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, s->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(s->body));
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, s->headers);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "parley-media-pipeline");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(e, CURLOPT_PRIVATE, &s->xfer);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, s->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, c->connect_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, c->request_ms);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);

    if (attach(s) != PL_OK) {
        free_stream(s);
        return PL_ERR_IO;
    }
    /* Linked only now: every failure above freed a stream the client never saw. */
    s->client = c;
    s->next = c->streams;
    if (c->streams != NULL)
        c->streams->prev = s;
    c->streams = s;
    if (c->first_ms > 0)
        s->first_timer = c->loop.timer_start(c->loop.ctx, c->first_ms, on_first_timeout, s);
    *out = &s->base;
    return PL_OK;
}

/* ---- the client ---- */

static int bad(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int bad(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err != NULL && cap > 0)
        vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return PL_ERR_INVALID;
}

static int get_ms(const cJSON *cfg, const char *key, long def, long *out, char *err, size_t cap)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    *out = def;
    if (v == NULL || cJSON_IsNull(v))
        return PL_OK;
    if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > 600000)
        return bad(err, cap, "llm_config.%s: must be a number of ms between 1 and 600000", key);
    *out = (long)v->valuedouble;
    return PL_OK;
}

static void oa_destroy(llm_client *base)
{
    oa_client *c = (oa_client *)base;
    if (c == NULL)
        return;
    oa_stream *s = c->streams;
    while (s != NULL) {
        oa_stream *next = s->next;
        s->client = NULL; /* it may outlive us while libcurl lets go of it */
        oa_cancel(&s->base);
        s = next;
    }
    free(c->url);
    free(c->auth);
    free(c->model);
    cJSON_Delete(c->params);
    free(c);
}

static int oa_create(const cJSON *cfg, const llm_loop *loop, llm_client **out, char *err,
                     size_t errcap)
{
    *out = NULL;
    if (!cJSON_IsObject(cfg))
        return bad(err, errcap, "llm_config: must be an object");
    if (loop == NULL || loop->multi == NULL || loop->timer_start == NULL ||
        loop->timer_stop == NULL)
        return bad(err, errcap, "openai: the loop has no multi handle or timers");
    const char *provider = json_str(cfg, "provider");
    if (provider == NULL || provider[0] == '\0')
        provider = "openai";
    if (strlen(provider) >= 32)
        return bad(err, errcap, "llm_config.provider: too long");
    const char *model = json_str(cfg, "model");
    if (model == NULL || model[0] == '\0')
        return bad(err, errcap, "llm_config.model: required for provider %s", provider);

    const char *base_url = json_str(cfg, "base_url");
    if ((base_url == NULL || base_url[0] == '\0') && strcmp(provider, "openai") == 0) {
        base_url = getenv("PL_OPENAI_BASE_URL");
        if (base_url == NULL || base_url[0] == '\0')
            base_url = OA_DEFAULT_BASE;
    }
    if (base_url == NULL || base_url[0] == '\0')
        return bad(err, errcap, "llm_config.base_url: required for provider %s", provider);
    if (strncmp(base_url, "http://", 7) != 0 && strncmp(base_url, "https://", 8) != 0)
        return bad(err, errcap, "llm_config.base_url: '%s' is not an http(s) URL", base_url);

    /* The key: llm_config.api_key, else PL_<PROVIDER>_API_KEY. A key of one vendor is never
     * sent to another's base URL by default. */
    char env[64] = "PL_";
    size_t el = 3;
    for (const char *p = provider; *p != '\0' && el + 9 < sizeof(env); p++)
        env[el++] = isalnum((unsigned char)*p) ? (char)toupper((unsigned char)*p) : '_';
    snprintf(env + el, sizeof(env) - el, "_API_KEY");
    const char *key = json_str(cfg, "api_key");
    if (key == NULL || key[0] == '\0')
        key = getenv(env);

    oa_client *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return PL_ERR_NOMEM;
    c->base.ops = &llm_openai_provider;
    c->loop = *loop;
    copy_str(c->provider, sizeof(c->provider), provider);
    int rc = get_ms(cfg, "first_token_timeout_ms", OA_DEFAULT_FIRST_MS, &c->first_ms, err, errcap);
    if (rc == PL_OK)
        rc = get_ms(cfg, "request_timeout_ms", OA_DEFAULT_REQUEST_MS, &c->request_ms, err, errcap);
    if (rc == PL_OK)
        rc = get_ms(cfg, "connect_timeout_ms", OA_DEFAULT_CONNECT_MS, &c->connect_ms, err, errcap);
    if (rc != PL_OK) {
        oa_destroy(&c->base);
        return rc;
    }
    size_t blen = strlen(base_url);
    while (blen > 0 && base_url[blen - 1] == '/')
        blen--;
    c->url = malloc(blen + sizeof("/chat/completions"));
    c->model = strdup(model);
    c->params = cJSON_CreateObject();
    if (key != NULL && key[0] != '\0') {
        size_t alen = strlen(key) + sizeof("Authorization: Bearer ");
        if ((c->auth = malloc(alen)) != NULL)
            snprintf(c->auth, alen, "Authorization: Bearer %s", key);
    }
    if (c->url == NULL || c->model == NULL || c->params == NULL ||
        (key != NULL && key[0] != '\0' && c->auth == NULL)) {
        oa_destroy(&c->base);
        return PL_ERR_NOMEM;
    }
    memcpy(c->url, base_url, blen);
    memcpy(c->url + blen, "/chat/completions", sizeof("/chat/completions"));

    static const char *const params[] = {"max_tokens", "temperature", "top_p", "presence_penalty",
                                         "frequency_penalty"};
    for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, params[i]);
        if (v == NULL || cJSON_IsNull(v))
            continue;
        if (!cJSON_IsNumber(v)) {
            rc = bad(err, errcap, "llm_config.%s: must be a number", params[i]);
            oa_destroy(&c->base);
            return rc;
        }
        cJSON *n = strcmp(params[i], "max_tokens") == 0
                       ? cJSON_CreateNumber((double)(long)v->valuedouble)
                       : cJSON_CreateNumber(v->valuedouble);
        if (n == NULL) {
            oa_destroy(&c->base);
            return PL_ERR_NOMEM;
        }
        cJSON_AddItemToObject(c->params, params[i], n);
    }
    *out = &c->base;
    return PL_OK;
}

const llm_provider llm_openai_provider = {
    .name = "openai",
    .create = oa_create,
    .destroy = oa_destroy,
    .start = oa_start,
    .cancel = oa_cancel,
};
