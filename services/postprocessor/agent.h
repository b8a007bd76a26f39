/* agent: what post-processing needs from an agent's stored configuration (agents.config and
 * agents.prompts, as the api validated them): the providers and models that price the call, and
 * the extraction and summarization tasks.
 *
 * Where a task's settings are looked for (Bolna puts them in more than one place):
 *   llm_config  the extraction/summarization task's tools_config.llm_agent.llm_config (or, in
 *               v1-style agents, llm_agent itself) when it names a provider or model; else the
 *               conversation task's
 *   details     that llm_config's extraction_details / summarization_details, else the
 *               conversation task's llm_config's, else the task's prompt
 *               (agent_prompts.task_<n>.system_prompt)
 * A task runs when the agent has a task of that type, or the conversation's llm_config carries
 * non-empty extraction_details / summarization_details.
 */
#ifndef PP_AGENT_H
#define PP_AGENT_H

#include <stddef.h>

#include <cjson/cJSON.h>

typedef struct {
    int enabled;
    const cJSON *llm_config;       /* where to call (never NULL when enabled) */
    const cJSON *conversation_llm; /* the conversation's llm_config, or NULL */
    char *details;                 /* what to extract / how to summarise; NULL when not given */
} pp_task;

typedef struct {
    cJSON *config, *prompts; /* owned parses of the stored JSON */
    const cJSON *conversation_llm;
    const char *transcriber_provider, *transcriber_model;
    const char *synthesizer_provider, *synthesizer_model;
    pp_task extraction, summarization;
} pp_agent;

/* Parses the stored agent. prompts_json may be NULL. 0, or -1 with the reason in err (the
 * agent is then empty: no tasks, no providers). */
int pp_agent_parse(const char *config_json, const char *prompts_json, pp_agent *out, char *err,
                   size_t cap);
void pp_agent_free(pp_agent *a);

#endif
