/* llm: the language-model layer of the media pipeline. One interface, one file per provider:
 *   llm_openai.c    any OpenAI-compatible POST {base_url}/chat/completions with stream: true
 *   llm_scripted.c  deterministic replies from rules in the agent's llm_config (not an AI)
 *
 * Event-driven, never blocking: a provider runs on the loop thread that owns a call. It is
 * handed an llm_loop (that thread's libcurl multi handle and one-shot timers) and does all its
 * work from the loop's callbacks: a stream's bytes are parsed in libcurl's write callback as
 * curl_multi_socket_action delivers them, and the user's callbacks run from there, from the
 * loop's timers, or from llm_multi_dispatch. No thread is started and nothing waits.
 *
 * Life of a stream:
 *   llm_client_create(llm_config)   once per call (parses and checks the config)
 *   llm_start(client, request)      one streamed completion; returns at once
 *     -> on_token* on_tool_call*    as the reply arrives (never from inside llm_start)
 *     -> on_done | on_error         exactly one of them ends the stream ...
 *   llm_cancel(stream)              ... unless it was cancelled first (barge-in): the transfer
 *                                   is aborted at once and no callback fires after it returns
 *   llm_client_destroy(client)      cancels what still runs, frees the client
 * The stream belongs to the provider. It is released after on_done/on_error returns (forget
 * the pointer there) or by llm_cancel; never touch it afterwards. llm_cancel, llm_start and
 * llm_client_destroy may be called from inside any callback, including the stream's own.
 *
 * The loop's contract (what the pipeline's loop must do for providers):
 *   - Every easy handle on the loop's CURLM carries CURLOPT_PRIVATE = a pointer to an llm_xfer.
 *     After each curl_multi_socket_action (or curl_multi_perform) the loop calls
 *     llm_multi_dispatch(multi), which reads curl_multi_info_read and calls each finished
 *     transfer's done(). Other modules putting handles on the same CURLM follow the same rule.
 *   - timer_start(ctx, ms, fn, arg) runs fn(arg) once on the loop thread after ms (0 = on the
 *     next turn of the loop, never inside timer_start); timer_stop cancels one that has not
 *     fired yet (never call it for one that fired).
 *   - curl_global_init ran before the first client is created.
 */
#ifndef LLM_H
#define LLM_H

#include <stddef.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "prompt.h"

typedef struct {
    CURLM *multi; /* the loop thread's multi handle */
    void *ctx;    /* passed back to the timer functions */
    void *(*timer_start)(void *ctx, long ms, void (*fn)(void *arg), void *arg); /* NULL: failed */
    void (*timer_stop)(void *ctx, void *timer);
} llm_loop;

/* See "The loop's contract" above. */
typedef struct llm_xfer {
    void (*done)(struct llm_xfer *x, CURLcode result);
} llm_xfer;

/* Drains curl_multi_info_read(multi) and calls done() of every finished transfer. Call it on
 * the loop thread after curl_multi_socket_action/curl_multi_perform, never from a callback. */
void llm_multi_dispatch(CURLM *multi);

/* What one completion is asked. Read only during llm_start: the caller may change or free it
 * (and the history) as soon as llm_start returns. */
typedef struct {
    const char *system;            /* system prompt, variables filled; NULL or "": none */
    const prompt_history *history; /* the turns so far, oldest first; NULL: none */
    const char *tools_json;        /* JSON array in the OpenAI `tools` format, or NULL */
    const prompt_vars *vars;       /* variables for providers that write their own text
                                      (scripted replies may use {name}); may be NULL */
} llm_request;

/* How a stream ended well. Strings are valid only during on_done. */
typedef struct {
    long prompt_tokens; /* 0 when the provider reported no usage (has_usage = 0) */
    long completion_tokens;
    int has_usage;             /* the provider sent a usage object */
    const char *model;         /* the model that answered (as reported, else configured) */
    const char *finish_reason; /* "stop", "length", "tool_calls", "content_filter", or "" */
    int hangup;                /* the reply ends the call once spoken (scripted rules) */
} llm_done;

/* The user's callbacks; any may be NULL. `user` is the pointer given to llm_start. Strings are
 * valid only during the call. All run on the loop thread. */
typedef struct {
    /* A piece of the reply: complete UTF-8 characters, not NUL-terminated. */
    void (*on_token)(void *user, const char *text, size_t len);
    /* A complete tool call (arguments joined across chunks), delivered before on_done. args is
     * JSON text ("{}" when the model sent none); id is the provider's, or "call_<index>". */
    void (*on_tool_call)(void *user, const char *name, const char *args_json, const char *id);
    void (*on_done)(void *user, const llm_done *done);
    /* The stream failed. http_status is the provider's HTTP status, or 0 (timeout, connection
     * failure, an error inside a 200 stream). reason names the provider and, when it sent one,
     * its own message, e.g. "openai: HTTP 429: Rate limit reached for gpt-4o-mini". */
    void (*on_error)(void *user, long http_status, const char *reason);
} llm_callbacks;

typedef struct llm_provider llm_provider;

/* Every provider's client and stream start with these (their ops table). */
typedef struct {
    const llm_provider *ops;
} llm_client;

typedef struct {
    const llm_provider *ops;
} llm_stream;

struct llm_provider {
    const char *name;
    /* Parses llm_config (tools_config.llm_agent.llm_config). On error returns PL_ERR_INVALID
     * (or PL_ERR_NOMEM) and writes why into err. The loop must outlive the client and every
     * stream it started (including those still winding down after destroy). */
    int (*create)(const cJSON *llm_config, const llm_loop *loop, llm_client **out, char *err,
                  size_t errcap);
    void (*destroy)(llm_client *c);
    /* PL_OK and *out, or PL_ERR_INVALID (bad tools_json) / PL_ERR_NOMEM / PL_ERR_IO (the
     * transfer could not be set up): then no callback will fire. */
    int (*start)(llm_client *c, const llm_request *req, const llm_callbacks *cb, void *user,
                 llm_stream **out);
    void (*cancel)(llm_stream *s);
};

extern const llm_provider llm_openai_provider;
extern const llm_provider llm_scripted_provider;

/* The provider serving llm_config.provider: "scripted", or openai for every OpenAI-compatible
 * name ("openai", "groq", "ollama", "vllm", ...; all but "openai" need llm_config.base_url).
 * NULL for a name no provider serves (e.g. "azure", whose protocol differs). */
const llm_provider *llm_provider_for(const char *name);

/* llm_provider_for(llm_config.provider)->create(...), or PL_ERR_INVALID naming the provider. */
int llm_client_create(const cJSON *llm_config, const llm_loop *loop, llm_client **out, char *err,
                      size_t errcap);

static inline void llm_client_destroy(llm_client *c)
{
    if (c != NULL)
        c->ops->destroy(c);
}

static inline int llm_start(llm_client *c, const llm_request *req, const llm_callbacks *cb,
                            void *user, llm_stream **out)
{
    return c->ops->start(c, req, cb, user, out);
}

static inline void llm_cancel(llm_stream *s)
{
    if (s != NULL)
        s->ops->cancel(s);
}

/* ---- a tiny loop for tests and tools: a CURLM, timers, curl_multi_poll ---- */

typedef struct llm_driver llm_driver;

/* Calls curl_global_init once. NULL when out of memory. */
llm_driver *llm_driver_new(void);

/* The loop to hand to llm_client_create; valid while the driver lives. */
const llm_loop *llm_driver_loop(llm_driver *d);

/* Runs transfers and timers until *until becomes non-zero (0 returned) or timeout_ms passes
 * (PL_ERR_TIMEOUT). until may be NULL to run for the whole timeout. */
int llm_driver_run(llm_driver *d, const volatile int *until, long timeout_ms);

/* Frees the timers still pending and the multi handle; streams must be finished. */
void llm_driver_free(llm_driver *d);

#endif
