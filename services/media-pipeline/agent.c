/* agent: the call's settings from its agent and execution (agent.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "error.h"

static const cJSON *get(const cJSON *o, const char *k)
{
    return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
}

static const char *str(const cJSON *o, const char *k, const char *def)
{
    const cJSON *v = get(o, k);
    return cJSON_IsString(v) ? v->valuestring : def;
}

/* A number field in seconds (or ms when ms is set) as milliseconds; def_ms when absent. */
static long msecs(const cJSON *o, const char *k, double scale, long def_ms)
{
    const cJSON *v = get(o, k);
    if (!cJSON_IsNumber(v) || v->valuedouble < 0)
        return def_ms;
    return (long)(v->valuedouble * scale);
}

static const cJSON *conversation_task(const cJSON *config)
{
    const cJSON *tasks = get(config, "tasks");
    const cJSON *t;
    cJSON_ArrayForEach(t, tasks)
    {
        const char *type = str(t, "task_type", "conversation");
        if (strcmp(type, "conversation") == 0)
            return t;
    }
    return NULL;
}

static int read_keywords(mp_agent *a, const cJSON *tr)
{
    const cJSON *k = get(tr, "keywords");
    char *text = NULL;
    if (cJSON_IsString(k) && k->valuestring[0] != '\0')
        text = strdup(k->valuestring);
    if (cJSON_IsArray(k)) {
        int n = cJSON_GetArraySize(k);
        a->keywords = calloc((size_t)n + 1, sizeof(char *));
        const cJSON *e;
        cJSON_ArrayForEach(e, k) if (cJSON_IsString(e) && e->valuestring[0] != '\0')
            a->keywords[a->nkeywords++] = strdup(e->valuestring);
        return 0;
    }
    if (text == NULL)
        return 0;
    /* Deepgram's comma-separated form, with optional ":boost" suffixes. */
    int n = 1;
    for (const char *p = text; *p; p++)
        n += *p == ',';
    a->keywords = calloc((size_t)n + 1, sizeof(char *));
    for (char *save = NULL, *w = strtok_r(text, ",", &save); w != NULL;
         w = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(w, ':');
        if (colon != NULL)
            *colon = '\0';
        while (*w == ' ')
            w++;
        if (*w != '\0')
            a->keywords[a->nkeywords++] = strdup(w);
    }
    free(text);
    return 0;
}

int mp_agent_read(mp_agent *a, const mp_call_ctx *ctx, const char *execution_id,
                  const char *call_sid, prompt_vars *vars, char *why, size_t cap)
{
    memset(a, 0, sizeof(*a));
    const cJSON *task = conversation_task(ctx->config);
    if (task == NULL) {
        snprintf(why, cap, "agent_config.tasks: no conversation task");
        return PL_ERR_INVALID;
    }
    const cJSON *tools = get(task, "tools_config");
    const cJSON *tc = get(task, "task_config");
    a->llm_config = get(get(tools, "llm_agent"), "llm_config");
    if (!cJSON_IsObject(a->llm_config)) {
        snprintf(why, cap, "agent_config.tasks[].tools_config.llm_agent.llm_config is missing");
        return PL_ERR_INVALID;
    }
    const cJSON *syn = get(tools, "synthesizer"), *tr = get(tools, "transcriber");
    snprintf(a->tts_provider, sizeof(a->tts_provider), "%s", str(syn, "provider", "local"));
    snprintf(a->stt_provider, sizeof(a->stt_provider), "%s", str(tr, "provider", "local"));
    const char *voice = str(get(syn, "provider_config"), "voice", "");
    const char *override = str(ctx->agent_data, "voice_id", "");
    snprintf(a->voice, sizeof(a->voice), "%s", override[0] != '\0' ? override : voice);
    read_keywords(a, tr);

    a->silence_hangup_ms = msecs(tc, "hangup_after_silence", 1000, 10000);
    a->turn_silence_ms = msecs(tc, "incremental_delay", 1, 400);
    const cJSON *w = get(tc, "number_of_words_for_interruption");
    a->interrupt_words = cJSON_IsNumber(w) && w->valuedouble >= 0 ? (int)w->valuedouble : 2;
    a->interrupt_backoff_ms = msecs(tc, "interruption_backoff_period", 1, 0);
    a->call_terminate_ms = msecs(tc, "call_terminate", 1000, 90000);
    a->check_online = cJSON_IsTrue(get(tc, "check_if_user_online"));
    a->online_after_ms = msecs(tc, "trigger_user_online_message_after", 1000, 10000);
    a->inbound = strcmp(ctx->call_type, "inbound") == 0;

    prompt_vars_add_json(vars, ctx->user_data);
    prompt_system sys = {.agent_id = ctx->agent_id,
                         .execution_id = execution_id,
                         .call_sid = call_sid,
                         .from_number = ctx->from_number,
                         .to_number = ctx->to_number};
    prompt_vars_add_system(vars, &sys);
    a->welcome = prompt_fill(str(ctx->config, "agent_welcome_message", ""), vars);
    const char *sp = str(get(ctx->prompts, "task_1"), "system_prompt", "");
    a->system_prompt = prompt_fill(sp, vars);
    a->hangup_message = prompt_fill(str(tc, "call_hangup_message", ""), vars);
    a->online_message =
        prompt_fill(str(tc, "check_user_online_message", "Hey, are you still there?"), vars);
    if (a->welcome == NULL || a->system_prompt == NULL || a->hangup_message == NULL ||
        a->online_message == NULL) {
        snprintf(why, cap, "out of memory");
        mp_agent_free(a);
        return PL_ERR_NOMEM;
    }
    return PL_OK;
}

void mp_agent_free(mp_agent *a)
{
    free(a->welcome);
    free(a->system_prompt);
    free(a->hangup_message);
    free(a->online_message);
    for (int i = 0; i < a->nkeywords; i++)
        free(a->keywords[i]);
    free(a->keywords);
    memset(a, 0, sizeof(*a));
}
