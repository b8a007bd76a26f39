/* Validation of Bolna v2 agent configurations.
 *
 * Every failure names the field by its JSON path, e.g.
 * "agent_config.tasks[0].task_config.hangup_after_silence: must be a number between 1 and 3600".
 * Unknown fields are kept as sent (Bolna adds fields often); known fields must have the right
 * type and range, and providers must be ones this platform can run.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "validate.h"

typedef struct {
    char *err;
    size_t cap;
} vctx;

static int fail(vctx *v, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(vctx *v, const char *path, const char *fmt, ...)
{
    int n = snprintf(v->err, v->cap, "%s: ", path);
    va_list ap;
    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < v->cap)
        vsnprintf(v->err + n, v->cap - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

/* out = base.key, truncated if it must be (paths are only used in messages). */
static void join(char *out, size_t cap, const char *base, const char *key)
{
    if (snprintf(out, cap, "%s.%s", base, key) >= (int)cap)
        out[cap - 1] = '\0';
}

static const char *const llm_providers[] = {"openai",    "azure",      "groq",     "ollama",
                                            "vllm",      "openrouter", "together", "deepinfra",
                                            "fireworks", "perplexity", "deepseek", "mistral",
                                            "llamacpp",  "scripted",   NULL};
static const char *const transcriber_providers[] = {"deepgram", "local", NULL};
static const char *const synthesizer_providers[] = {"elevenlabs", "deepgram", "openai", "local",
                                                    NULL};
static const char *const telephony_providers[] = {"twilio", "plivo", "exotel", NULL};
static const char *const task_types[] = {"conversation", "extraction", "summarization", NULL};
static const char *const pipeline_parts[] = {"transcriber", "llm", "synthesizer", NULL};

static int in_list(const char *s, const char *const *list)
{
    for (; *list != NULL; list++)
        if (strcmp(s, *list) == 0)
            return 1;
    return 0;
}

static void list_text(const char *const *list, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (; *list != NULL && len < cap; list++)
        len += (size_t)snprintf(out + len, cap - len, "%s%s", len ? ", " : "", *list);
}

/* A present-and-non-null member, else NULL. */
static const cJSON *member(const cJSON *obj, const char *key)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNull(m) ? NULL : m;
}

static int need_object(vctx *v, const cJSON *obj, const char *key, const char *base, int required,
                       const cJSON **out)
{
    char path[256];
    join(path, sizeof(path), base, key);
    const cJSON *m = member(obj, key);
    *out = m;
    if (m == NULL)
        return required ? fail(v, path, "is required") : 0;
    if (!cJSON_IsObject(m))
        return fail(v, path, "must be an object");
    return 0;
}

static int check_string(vctx *v, const cJSON *obj, const char *key, const char *base, int required,
                        size_t maxlen)
{
    char path[256];
    join(path, sizeof(path), base, key);
    const cJSON *m = member(obj, key);
    if (m == NULL)
        return required ? fail(v, path, "is required") : 0;
    if (!cJSON_IsString(m))
        return fail(v, path, "must be a string");
    if (required && m->valuestring[0] == '\0')
        return fail(v, path, "must not be empty");
    if (strlen(m->valuestring) > maxlen)
        return fail(v, path, "is longer than %zu characters", maxlen);
    return 0;
}

static int check_enum(vctx *v, const cJSON *obj, const char *key, const char *base, int required,
                      const char *const *allowed, const char *what)
{
    char path[256], options[512];
    join(path, sizeof(path), base, key);
    const cJSON *m = member(obj, key);
    if (m == NULL)
        return required ? fail(v, path, "is required") : 0;
    if (!cJSON_IsString(m))
        return fail(v, path, "must be a string");
    if (!in_list(m->valuestring, allowed)) {
        list_text(allowed, options, sizeof(options));
        return fail(v, path, "unknown %s '%s'; expected one of: %s", what, m->valuestring, options);
    }
    return 0;
}

static int check_number(vctx *v, const cJSON *obj, const char *key, const char *base, double min,
                        double max, int integer)
{
    char path[256];
    join(path, sizeof(path), base, key);
    const cJSON *m = member(obj, key);
    if (m == NULL)
        return 0;
    if (!cJSON_IsNumber(m) || (integer && m->valuedouble != (double)(long long)m->valuedouble))
        return fail(v, path, "must be %s", integer ? "an integer" : "a number");
    if (m->valuedouble < min || m->valuedouble > max)
        return fail(v, path, "must be between %g and %g, got %g", min, max, m->valuedouble);
    return 0;
}

static int check_bool(vctx *v, const cJSON *obj, const char *key, const char *base)
{
    char path[256];
    join(path, sizeof(path), base, key);
    const cJSON *m = member(obj, key);
    if (m != NULL && !cJSON_IsBool(m))
        return fail(v, path, "must be true or false");
    return 0;
}

static int check_url(vctx *v, const cJSON *obj, const char *key, const char *base)
{
    char path[256];
    join(path, sizeof(path), base, key);
    const cJSON *m = member(obj, key);
    if (m == NULL)
        return 0;
    if (!cJSON_IsString(m))
        return fail(v, path, "must be a string or null");
    if (m->valuestring[0] != '\0' && !pl_is_http_url(m->valuestring))
        return fail(v, path, "'%s' is not an absolute http(s) URL", m->valuestring);
    return 0;
}

static int check_llm_agent(vctx *v, const cJSON *llm, const char *base)
{
    static const char *const agent_types[] = {"simple_llm_agent", "knowledgebase_agent", NULL};
    static const char *const flow_types[] = {"streaming", "preprocessed", NULL};
    const cJSON *cfg;
    char path[256];
    if (check_enum(v, llm, "agent_type", base, 0, agent_types, "agent type") ||
        check_enum(v, llm, "agent_flow_type", base, 0, flow_types, "flow type") ||
        need_object(v, llm, "llm_config", base, 0, &cfg))
        return -1;
    /* v1-style agents put the model settings on llm_agent itself: accept both places. */
    const cJSON *c = cfg != NULL ? cfg : llm;
    if (cfg != NULL)
        join(path, sizeof(path), base, "llm_config");
    else
        snprintf(path, sizeof(path), "%s", base);
    if (check_enum(v, c, "provider", path, 0, llm_providers, "LLM provider") ||
        check_string(v, c, "model", path, 0, 200) || check_string(v, c, "family", path, 0, 100) ||
        check_number(v, c, "max_tokens", path, 1, 32768, 1) ||
        check_number(v, c, "temperature", path, 0, 2, 0) ||
        check_number(v, c, "top_p", path, 0, 1, 0) ||
        check_number(v, c, "presence_penalty", path, -2, 2, 0) ||
        check_number(v, c, "frequency_penalty", path, -2, 2, 0) ||
        check_url(v, c, "base_url", path) || check_bool(v, c, "request_json", path))
        return -1;
    return 0;
}

static int check_tools_config(vctx *v, const cJSON *tc, const char *base, int conversation)
{
    const cJSON *llm, *syn, *tr, *in, *out, *api_tools, *pc;
    char path[256];
    if (need_object(v, tc, "llm_agent", base, 1, &llm))
        return -1;
    join(path, sizeof(path), base, "llm_agent");
    if (check_llm_agent(v, llm, path))
        return -1;
    if (need_object(v, tc, "synthesizer", base, conversation, &syn) ||
        need_object(v, tc, "transcriber", base, conversation, &tr) ||
        need_object(v, tc, "input", base, conversation, &in) ||
        need_object(v, tc, "output", base, conversation, &out) ||
        need_object(v, tc, "api_tools", base, 0, &api_tools))
        return -1;
    if (syn != NULL) {
        join(path, sizeof(path), base, "synthesizer");
        if (check_enum(v, syn, "provider", path, 1, synthesizer_providers,
                       "synthesizer provider") ||
            need_object(v, syn, "provider_config", path, 0, &pc) ||
            check_bool(v, syn, "stream", path) ||
            check_number(v, syn, "buffer_size", path, 0, 100000, 1) ||
            check_string(v, syn, "audio_format", path, 0, 32))
            return -1;
    }
    if (tr != NULL) {
        join(path, sizeof(path), base, "transcriber");
        if (check_enum(v, tr, "provider", path, 1, transcriber_providers, "transcriber provider") ||
            check_string(v, tr, "model", path, 0, 200) ||
            check_string(v, tr, "language", path, 0, 32) || check_bool(v, tr, "stream", path) ||
            check_number(v, tr, "sampling_rate", path, 8000, 48000, 1) ||
            check_string(v, tr, "encoding", path, 0, 32) ||
            check_number(v, tr, "endpointing", path, 0, 10000, 1))
            return -1;
    }
    const cJSON *io[2] = {in, out};
    const char *io_name[2] = {"input", "output"};
    for (int i = 0; i < 2; i++) {
        if (io[i] == NULL)
            continue;
        join(path, sizeof(path), base, io_name[i]);
        if (check_enum(v, io[i], "provider", path, 1, telephony_providers, "telephony provider") ||
            check_string(v, io[i], "format", path, 0, 32))
            return -1;
    }
    if (api_tools != NULL) {
        join(path, sizeof(path), base, "api_tools");
        const cJSON *tools = member(api_tools, "tools");
        if (tools != NULL && !cJSON_IsArray(tools))
            return fail(v, path, "tools must be an array");
        int i = 0;
        const cJSON *t;
        cJSON_ArrayForEach(t, tools)
        {
            char tp[300];
            snprintf(tp, sizeof(tp), "%s.tools[%d]", path, i++);
            if (!cJSON_IsObject(t))
                return fail(v, tp, "must be an object");
            if (check_string(v, t, "name", tp, 1, 64) ||
                check_string(v, t, "description", tp, 0, 4096))
                return -1;
        }
        const cJSON *params;
        if (need_object(v, api_tools, "tools_params", path, 0, &params))
            return -1;
        const cJSON *p;
        cJSON_ArrayForEach(p, params)
        {
            char pp[300];
            snprintf(pp, sizeof(pp), "%s.tools_params.%s", path, p->string);
            if (!cJSON_IsObject(p))
                return fail(v, pp, "must be an object");
            if (check_url(v, p, "url", pp) || check_string(v, p, "method", pp, 0, 10))
                return -1;
        }
    }
    return 0;
}

static int check_toolchain(vctx *v, const cJSON *tch, const char *base)
{
    static const char *const modes[] = {"parallel", "sequential", NULL};
    char path[256];
    if (check_enum(v, tch, "execution", base, 0, modes, "execution mode"))
        return -1;
    join(path, sizeof(path), base, "pipelines");
    const cJSON *pipes = member(tch, "pipelines");
    if (pipes == NULL)
        return 0;
    if (!cJSON_IsArray(pipes))
        return fail(v, path, "must be an array");
    /* Bolna's schema says an array of strings, its examples send an array of arrays: accept both.
     */
    int i = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, pipes)
    {
        char ip[300];
        snprintf(ip, sizeof(ip), "%s[%d]", path, i++);
        if (cJSON_IsString(p)) {
            if (!in_list(p->valuestring, pipeline_parts))
                return fail(v, ip, "unknown pipeline part '%s'", p->valuestring);
            continue;
        }
        if (!cJSON_IsArray(p))
            return fail(v, ip, "must be a string or an array of strings");
        const cJSON *q;
        cJSON_ArrayForEach(q, p)
        {
            if (!cJSON_IsString(q) || !in_list(q->valuestring, pipeline_parts))
                return fail(v, ip, "items must be one of: transcriber, llm, synthesizer");
        }
    }
    return 0;
}

static int check_task_config(vctx *v, const cJSON *tc, const char *base)
{
    static const struct {
        const char *key;
        double min, max;
        int integer;
    } nums[] = {
        {"hangup_after_silence", 1, 3600, 0},
        {"incremental_delay", 0, 10000, 0},
        {"number_of_words_for_interruption", 0, 100, 1},
        {"interruption_backoff_period", 0, 10000, 0},
        {"backchanneling_message_gap", 1, 120, 0},
        {"backchanneling_start_delay", 0, 120, 0},
        {"call_terminate", 10, 14400, 0},
        {"voicemail_detection_time", 0.5, 60, 0},
        {"voicemail_check_interval", 0.5, 60, 0},
        {"voicemail_detection_duration", 1, 300, 0},
        {"trigger_user_online_message_after", 1, 600, 0},
        {"inbound_limit", -1, 1000000, 1},
    };
    static const char *const bools[] = {
        "hangup_after_LLMCall",    "backchanneling", "ambient_noise",    "voicemail",
        "check_if_user_online",    "use_fillers",    "optimize_latency", "dtmf_enabled",
        "disallow_unknown_numbers"};
    static const char *const strings[] = {"call_cancellation_prompt", "ambient_noise_track",
                                          "check_user_online_message", "call_hangup_message"};
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
        if (check_number(v, tc, nums[i].key, base, nums[i].min, nums[i].max, nums[i].integer))
            return -1;
    for (size_t i = 0; i < sizeof(bools) / sizeof(bools[0]); i++)
        if (check_bool(v, tc, bools[i], base))
            return -1;
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
        if (check_string(v, tc, strings[i], base, 0, 4096))
            return -1;
    const cJSON *wl = member(tc, "whitelist_phone_numbers");
    if (wl != NULL) {
        char path[256];
        join(path, sizeof(path), base, "whitelist_phone_numbers");
        if (!cJSON_IsArray(wl))
            return fail(v, path, "must be an array of E.164 numbers");
        int i = 0;
        const cJSON *n;
        cJSON_ArrayForEach(n, wl)
        {
            if (!cJSON_IsString(n) || !pl_is_e164(n->valuestring))
                return fail(v, path, "item %d is not an E.164 number (+ and 7 to 15 digits)", i);
            i++;
        }
    }
    return 0;
}

int api_validate_agent_config(const cJSON *config, char *err, size_t cap)
{
    vctx v = {err, cap};
    const char *base = "agent_config";
    if (config == NULL || cJSON_IsNull(config))
        return fail(&v, base, "is required");
    if (!cJSON_IsObject(config))
        return fail(&v, base, "must be an object");
    const cJSON *guard, *ingest;
    if (check_string(&v, config, "agent_name", base, 1, 255) ||
        check_string(&v, config, "agent_welcome_message", base, 0, 4096) ||
        check_string(&v, config, "agent_type", base, 0, 64) ||
        check_url(&v, config, "webhook_url", base) ||
        need_object(&v, config, "calling_guardrails", base, 0, &guard) ||
        need_object(&v, config, "ingest_source_config", base, 0, &ingest))
        return -1;
    if (guard != NULL) {
        if (check_number(&v, guard, "call_start_hour", "agent_config.calling_guardrails", 0, 23,
                         1) ||
            check_number(&v, guard, "call_end_hour", "agent_config.calling_guardrails", 0, 23, 1))
            return -1;
    }
    const cJSON *tasks = member(config, "tasks");
    if (tasks == NULL)
        return fail(&v, "agent_config.tasks", "is required");
    if (!cJSON_IsArray(tasks) || cJSON_GetArraySize(tasks) == 0)
        return fail(&v, "agent_config.tasks", "must be a non-empty array of tasks");
    int i = 0, conversations = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, tasks)
    {
        char tp[64], path[128];
        snprintf(tp, sizeof(tp), "agent_config.tasks[%d]", i++);
        if (!cJSON_IsObject(t))
            return fail(&v, tp, "must be an object");
        const cJSON *tools, *chain, *tcfg;
        if (check_enum(&v, t, "task_type", tp, 1, task_types, "task type") ||
            need_object(&v, t, "tools_config", tp, 1, &tools) ||
            need_object(&v, t, "toolchain", tp, 0, &chain) ||
            need_object(&v, t, "task_config", tp, 0, &tcfg))
            return -1;
        int conversation = strcmp(member(t, "task_type")->valuestring, "conversation") == 0;
        conversations += conversation;
        join(path, sizeof(path), tp, "tools_config");
        if (check_tools_config(&v, tools, path, conversation))
            return -1;
        join(path, sizeof(path), tp, "toolchain");
        if (chain != NULL && check_toolchain(&v, chain, path))
            return -1;
        join(path, sizeof(path), tp, "task_config");
        if (tcfg != NULL && check_task_config(&v, tcfg, path))
            return -1;
    }
    if (conversations != 1)
        return fail(&v, "agent_config.tasks",
                    "must hold exactly one task of task_type "
                    "'conversation', found %d",
                    conversations);
    return 0;
}

int api_validate_agent_prompts(const cJSON *prompts, char *err, size_t cap)
{
    vctx v = {err, cap};
    if (prompts == NULL || cJSON_IsNull(prompts))
        return fail(&v, "agent_prompts", "is required");
    if (!cJSON_IsObject(prompts))
        return fail(&v, "agent_prompts",
                    "must be an object like {\"task_1\": "
                    "{\"system_prompt\": \"...\"}}");
    const cJSON *p;
    cJSON_ArrayForEach(p, prompts)
    {
        char path[128];
        snprintf(path, sizeof(path), "agent_prompts.%s", p->string);
        if (strncmp(p->string, "task_", 5) != 0)
            return fail(&v, path, "keys must be task_<n>");
        if (!cJSON_IsObject(p))
            return fail(&v, path, "must be an object with system_prompt");
        if (check_string(&v, p, "system_prompt", path, 1, 100000))
            return -1;
    }
    return 0;
}

/* PATCH may change only these agent_config fields (Bolna's AgentConfigPatchRequest). */
int api_patch_agent_config(cJSON *config, const cJSON *patch, char *err, size_t cap)
{
    vctx v = {err, cap};
    if (!cJSON_IsObject(patch))
        return fail(&v, "agent_config", "must be an object");
    const cJSON *f;
    cJSON_ArrayForEach(f, patch)
    {
        char path[128];
        snprintf(path, sizeof(path), "agent_config.%s", f->string);
        if (strcmp(f->string, "agent_name") == 0 ||
            strcmp(f->string, "agent_welcome_message") == 0 ||
            strcmp(f->string, "webhook_url") == 0) {
            cJSON_DeleteItemFromObjectCaseSensitive(config, f->string);
            cJSON_AddItemToObject(config, f->string, cJSON_Duplicate(f, 1));
        } else if (strcmp(f->string, "synthesizer") == 0 ||
                   strcmp(f->string, "telephony_provider") == 0) {
            if (strcmp(f->string, "telephony_provider") == 0 && !cJSON_IsString(f))
                return fail(&v, path, "must be a string");
            const cJSON *t;
            cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(config, "tasks"))
            {
                cJSON *tools = cJSON_GetObjectItemCaseSensitive(t, "tools_config");
                const cJSON *type = cJSON_GetObjectItemCaseSensitive(t, "task_type");
                if (!cJSON_IsObject(tools) || !cJSON_IsString(type) ||
                    strcmp(type->valuestring, "conversation") != 0)
                    continue;
                if (strcmp(f->string, "synthesizer") == 0) {
                    cJSON_DeleteItemFromObjectCaseSensitive(tools, "synthesizer");
                    cJSON_AddItemToObject(tools, "synthesizer", cJSON_Duplicate(f, 1));
                    continue;
                }
                const char *io[2] = {"input", "output"};
                for (int i = 0; i < 2; i++) {
                    cJSON *o = cJSON_GetObjectItemCaseSensitive(tools, io[i]);
                    if (!cJSON_IsObject(o))
                        continue;
                    cJSON_DeleteItemFromObjectCaseSensitive(o, "provider");
                    cJSON_AddStringToObject(o, "provider", f->valuestring);
                }
            }
        } else {
            return fail(&v, path,
                        "cannot be patched; PATCH accepts agent_name, agent_welcome_message, "
                        "webhook_url, synthesizer and telephony_provider (use PUT for the rest)");
        }
    }
    return 0;
}

const char *api_agent_telephony_provider(const cJSON *config)
{
    const cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(config, "tasks"))
    {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(t, "task_type");
        if (!cJSON_IsString(type) || strcmp(type->valuestring, "conversation") != 0)
            continue;
        const cJSON *tools = cJSON_GetObjectItemCaseSensitive(t, "tools_config");
        const cJSON *in = cJSON_GetObjectItemCaseSensitive(tools, "input");
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(in, "provider");
        return cJSON_IsString(p) ? p->valuestring : NULL;
    }
    return NULL;
}
