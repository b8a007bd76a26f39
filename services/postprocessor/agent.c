/* agent: see agent.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"

static const cJSON *member(const cJSON *o, const char *k)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNull(m) ? NULL : m;
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *m = member(o, k);
    return cJSON_IsString(m) && m->valuestring[0] != '\0' ? m->valuestring : NULL;
}

/* tools_config.llm_agent.llm_config, or llm_agent itself (v1 agents). */
static const cJSON *task_llm(const cJSON *task)
{
    const cJSON *llm = member(member(task, "tools_config"), "llm_agent");
    const cJSON *cfg = member(llm, "llm_config");
    return cJSON_IsObject(cfg) ? cfg : cJSON_IsObject(llm) ? llm : NULL;
}

/* A details value as text: strings as they are, anything else (Bolna has sent objects) as JSON. */
static char *details_text(const cJSON *v)
{
    if (v == NULL)
        return NULL;
    if (cJSON_IsString(v))
        return v->valuestring[0] != '\0' ? strdup(v->valuestring) : NULL;
    return cJSON_IsObject(v) || cJSON_IsArray(v) ? cJSON_PrintUnformatted(v) : NULL;
}

static int has_details(const cJSON *v)
{
    return (cJSON_IsString(v) && v->valuestring[0] != '\0') ||
           ((cJSON_IsObject(v) || cJSON_IsArray(v)) && v->child != NULL);
}

static void find_task(pp_agent *a, const char *type, const char *details_key, pp_task *t)
{
    const cJSON *task;
    const cJSON *own = NULL;
    int i = 0, index = -1;
    cJSON_ArrayForEach(task, member(a->config, "tasks"))
    {
        const char *tt = str(task, "task_type");
        if (tt != NULL && strcmp(tt, type) == 0) {
            own = task_llm(task);
            index = i;
            break;
        }
        i++;
    }
    t->conversation_llm = a->conversation_llm;
    int own_names_model = own != NULL && (str(own, "provider") != NULL || str(own, "model"));
    t->llm_config = own_names_model ? own : a->conversation_llm;
    t->details = details_text(member(own, details_key));
    if (t->details == NULL)
        t->details = details_text(member(a->conversation_llm, details_key));
    if (t->details == NULL && index >= 0) {
        char key[32];
        snprintf(key, sizeof(key), "task_%d", index + 1);
        t->details = details_text(member(member(a->prompts, key), "system_prompt"));
    }
    int asked = index >= 0 || has_details(member(a->conversation_llm, details_key));
    t->enabled = asked && t->llm_config != NULL;
}

int pp_agent_parse(const char *config_json, const char *prompts_json, pp_agent *out, char *err,
                   size_t cap)
{
    memset(out, 0, sizeof(*out));
    out->config = config_json != NULL ? cJSON_Parse(config_json) : NULL;
    if (!cJSON_IsObject(out->config)) {
        snprintf(err, cap, "the agent's stored configuration is %s",
                 config_json == NULL ? "missing (agent row not found)" : "not a JSON object");
        pp_agent_free(out);
        return -1;
    }
    out->prompts = prompts_json != NULL ? cJSON_Parse(prompts_json) : NULL;
    const cJSON *task;
    cJSON_ArrayForEach(task, member(out->config, "tasks"))
    {
        const char *tt = str(task, "task_type");
        if (tt == NULL || strcmp(tt, "conversation") != 0)
            continue;
        const cJSON *tools = member(task, "tools_config");
        out->conversation_llm = task_llm(task);
        const cJSON *tr = member(tools, "transcriber");
        out->transcriber_provider = str(tr, "provider");
        out->transcriber_model = str(tr, "model");
        const cJSON *sy = member(tools, "synthesizer");
        out->synthesizer_provider = str(sy, "provider");
        const cJSON *pc = member(sy, "provider_config");
        out->synthesizer_model = str(pc, "model");
        if (out->synthesizer_model == NULL)
            out->synthesizer_model = str(pc, "voice");
        break;
    }
    find_task(out, "extraction", "extraction_details", &out->extraction);
    find_task(out, "summarization", "summarization_details", &out->summarization);
    return 0;
}

void pp_agent_free(pp_agent *a)
{
    free(a->extraction.details);
    free(a->summarization.details);
    cJSON_Delete(a->config);
    cJSON_Delete(a->prompts);
    memset(a, 0, sizeof(*a));
}
