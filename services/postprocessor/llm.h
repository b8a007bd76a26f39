/* llm: one blocking, non-streamed chat completion against an OpenAI-compatible provider
 * (POST {base_url}/chat/completions), for the post-call tasks. This service is off the audio
 * path: a worker thread may block here for up to the timeout.
 *
 * Where and how, from the llm_config (the same rules as the media-pipeline's `openai` provider):
 *   provider  default "openai"
 *   model     required
 *   base_url  required, except for "openai": PL_OPENAI_BASE_URL, else https://api.openai.com/v1
 *   api_key   else PL_<PROVIDER>_API_KEY from the environment (PL_OPENAI_API_KEY, ...); with
 *             neither, no Authorization header is sent (Ollama needs none)
 *   temperature  sent when set
 */
#ifndef PP_LLM_H
#define PP_LLM_H

#include <stddef.h>

#include <cjson/cJSON.h>

typedef struct {
    const char *role; /* "system", "user", "assistant" */
    const char *content;
} pp_msg;

/* The provider named by llm_config, "openai" when none is. */
const char *pp_llm_provider(const cJSON *llm_config);

/* Tokens one completion consumed, as the provider's answer reports them (`usage.prompt_tokens`,
 * `usage.completion_tokens`); zero when it reports none or did not answer. */
typedef struct {
    double input, output;
} pp_llm_tokens;

/* Sends msgs; json_mode asks for a JSON object (response_format json_object). PL_OK with the
 * reply's content in *text (malloc'd, caller frees); otherwise *text is NULL and `why` says what
 * went wrong (a configuration error, the provider's error message with its HTTP status, a
 * timeout...). *used gets the tokens of every successful (2xx) answer, usable or not: the
 * provider bills them. Never retries: the caller decides. */
int pp_llm_chat(const cJSON *llm_config, const pp_msg *msgs, int n, int json_mode, long timeout_ms,
                char **text, pp_llm_tokens *used, char *why, size_t cap);

#endif
