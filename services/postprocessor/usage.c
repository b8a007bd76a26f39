/* usage: see usage.h. */
#include <math.h>
#include <string.h>

#include "usage.h"

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(m) && m->valuestring[0] != '\0' ? m->valuestring : NULL;
}

static double num(const cJSON *o, const char *k)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(m) && isfinite(m->valuedouble) ? m->valuedouble : 0;
}

static void ensure_number(cJSON *u, const char *k, double v)
{
    if (!cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(u, k))) {
        cJSON_DeleteItemFromObjectCaseSensitive(u, k);
        cJSON_AddNumberToObject(u, k, v);
    }
}

static void ensure_model(cJSON *u, const char *k, const char *agent_value)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(u, k);
    if (cJSON_IsString(m))
        return;
    cJSON_DeleteItemFromObjectCaseSensitive(u, k);
    if (agent_value != NULL)
        cJSON_AddStringToObject(u, k, agent_value);
    else
        cJSON_AddNullToObject(u, k);
}

cJSON *pp_usage_normalize(const char *usage_json, const pp_agent *a)
{
    cJSON *u = usage_json != NULL ? cJSON_Parse(usage_json) : NULL;
    if (!cJSON_IsObject(u)) {
        cJSON_Delete(u);
        u = cJSON_CreateObject();
        if (u == NULL)
            return NULL;
    }
    ensure_number(u, "synthesizer_characters", 0);
    ensure_model(u, "synthesizer_model", a->synthesizer_model);
    ensure_number(u, "transcriber_duration", 0);
    ensure_model(u, "transcriber_model", a->transcriber_model);
    if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(u, "llm_model"))) {
        cJSON_DeleteItemFromObjectCaseSensitive(u, "llm_model");
        cJSON_AddObjectToObject(u, "llm_model");
    }
    double tokens = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(u, "llm_model"))
    {
        tokens += num(m, "input") + num(m, "output");
    }
    ensure_number(u, "llm_tokens", tokens);
    return u;
}

/* Sets o[k] to the number v, replacing whatever was there. */
static void set_number(cJSON *o, const char *k, double v)
{
    cJSON *m = cJSON_GetObjectItemCaseSensitive(o, k);
    if (cJSON_IsNumber(m))
        cJSON_SetNumberValue(m, v);
    else if (m != NULL)
        cJSON_ReplaceItemInObjectCaseSensitive(o, k, cJSON_CreateNumber(v));
    else
        cJSON_AddNumberToObject(o, k, v);
}

void pp_usage_add_llm(cJSON *u, const char *model, double input, double output)
{
    cJSON *models = cJSON_GetObjectItemCaseSensitive(u, "llm_model");
    cJSON *m = cJSON_GetObjectItemCaseSensitive(models, model);
    if (!cJSON_IsObject(m)) {
        cJSON_DeleteItemFromObjectCaseSensitive(models, model);
        m = cJSON_AddObjectToObject(models, model);
    }
    if (m == NULL)
        return;
    set_number(m, "input", num(m, "input") + input);
    set_number(m, "output", num(m, "output") + output);
    set_number(u, "llm_tokens", num(u, "llm_tokens") + input + output);
}

void pp_usage_cost_input(const cJSON *u, const pp_agent *a, pp_cost_input *in)
{
    in->transcriber_provider = str(u, "transcriber_provider");
    if (in->transcriber_provider == NULL)
        in->transcriber_provider = a->transcriber_provider;
    in->transcriber_model = str(u, "transcriber_model");
    in->transcriber_seconds = num(u, "transcriber_duration");
    in->synthesizer_provider = str(u, "synthesizer_provider");
    if (in->synthesizer_provider == NULL)
        in->synthesizer_provider = a->synthesizer_provider;
    in->synthesizer_model = str(u, "synthesizer_model");
    in->synthesizer_characters = num(u, "synthesizer_characters");
    in->llm_model = cJSON_GetObjectItemCaseSensitive(u, "llm_model");
}
