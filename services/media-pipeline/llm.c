/* llm: what the LLM layer shares across providers (declared in llm.h). The registry maps
 * llm_config.provider to the provider serving it (llm_provider_for, llm_client_create), and
 * llm_multi_dispatch hands each finished transfer on a loop's CURLM back to its owner (the
 * loop's contract in llm.h). The providers themselves live in llm_<name>.c.
 */
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "llm.h"

const llm_provider *llm_provider_for(const char *name)
{
    static const char *const compatible[] = {
        "openai",    "groq",       "ollama",   "vllm",    "openrouter", "together", "deepinfra",
        "fireworks", "perplexity", "deepseek", "mistral", "llamacpp",   NULL};
    if (name == NULL || name[0] == '\0')
        return NULL;
    if (strcmp(name, "scripted") == 0)
        return &llm_scripted_provider;
    for (const char *const *p = compatible; *p != NULL; p++)
        if (strcmp(name, *p) == 0)
            return &llm_openai_provider;
    return NULL;
}

int llm_client_create(const cJSON *llm_config, const llm_loop *loop, llm_client **out, char *err,
                      size_t errcap)
{
    *out = NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(llm_config, "provider");
    const char *name = cJSON_IsString(v) ? v->valuestring : NULL;
    const llm_provider *p = llm_provider_for(name);
    if (p == NULL) {
        if (err != NULL && errcap > 0)
            snprintf(err, errcap, "llm_config.provider: no LLM provider '%s' in this build",
                     name != NULL ? name : "(missing)");
        return PL_ERR_INVALID;
    }
    return p->create(llm_config, loop, out, err, errcap);
}

void llm_multi_dispatch(CURLM *multi)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        /* m is invalid once its handle is removed: read it all first. */
        CURL *easy = m->easy_handle;
        CURLcode rc = m->data.result;
        char *priv = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
        llm_xfer *x = (llm_xfer *)(void *)priv;
        if (x != NULL && x->done != NULL)
            x->done(x, rc);
    }
}
