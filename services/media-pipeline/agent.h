/* agent: what a call's conversation is told by its agent (agent_config, agent_prompts) and its
 * execution (user_data, agent_data), read once when the call starts. Bolna's task_config
 * defaults apply where a field is absent (reference/bolna-api.md). */
#ifndef MP_AGENT_H
#define MP_AGENT_H

#include <cjson/cJSON.h>

#include "prompt.h"
#include "store.h"

typedef struct {
    char *welcome;       /* agent_welcome_message, variables filled; "" for none */
    char *system_prompt; /* agent_prompts.task_1.system_prompt, variables filled */
    char *hangup_message;
    char *online_message;
    const cJSON *llm_config; /* points into the context's config */
    char voice[64];
    char stt_provider[32], tts_provider[32];
    char **keywords; /* transcriber.keywords: phrases the local recognizer listens for */
    int nkeywords;
    long silence_hangup_ms; /* hangup_after_silence */
    long turn_silence_ms;   /* incremental_delay: the silence that ends a caller's turn */
    int interrupt_words;    /* number_of_words_for_interruption */
    long interrupt_backoff_ms;
    long call_terminate_ms;
    int check_online;
    long online_after_ms;
    int inbound; /* call_type inbound: the agent is the callee */
} mp_agent;

/* Fills a from the call's context; vars gets user_data and the system variables. 0, or
 * PL_ERR_INVALID with why naming the field. */
int mp_agent_read(mp_agent *a, const mp_call_ctx *ctx, const char *execution_id,
                  const char *call_sid, prompt_vars *vars, char *why, size_t cap);
void mp_agent_free(mp_agent *a);

#endif
