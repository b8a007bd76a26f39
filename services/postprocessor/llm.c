/* llm: see llm.h. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "httpc.h"
#include "llm.h"
#include "validate.h"

#define DEFAULT_BASE "https://api.openai.com/v1"
#define MAX_REPLY    (4 << 20)

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(m) && m->valuestring[0] != '\0' ? m->valuestring : NULL;
}

const char *pp_llm_provider(const cJSON *cfg)
{
    const char *p = str(cfg, "provider");
    return p != NULL ? p : "openai";
}

/* The provider's own words from an error body ({"error": {"message"}}), else the body's start. */
static void error_text(const pl_httpc_resp *r, char *why, size_t cap)
{
    cJSON *j = cJSON_Parse(r->body);
    const char *msg = str(cJSON_GetObjectItemCaseSensitive(j, "error"), "message");
    if (msg == NULL)
        msg = str(j, "error");
    if (msg != NULL)
        snprintf(why, cap, "HTTP %ld: %s", r->status, msg);
    else
        snprintf(why, cap, "HTTP %ld: %.200s", r->status, r->body);
    cJSON_Delete(j);
}

static char *request_body(const cJSON *cfg, const char *model, const pp_msg *msgs, int n,
                          int json_mode)
{
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "model", model);
    cJSON *arr = cJSON_AddArrayToObject(b, "messages");
    for (int i = 0; i < n; i++) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", msgs[i].role);
        cJSON_AddStringToObject(m, "content", msgs[i].content);
        cJSON_AddItemToArray(arr, m);
    }
    cJSON_AddFalseToObject(b, "stream");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(cfg, "temperature");
    if (cJSON_IsNumber(t))
        cJSON_AddNumberToObject(b, "temperature", t->valuedouble);
    if (json_mode)
        cJSON_AddStringToObject(cJSON_AddObjectToObject(b, "response_format"), "type",
                                "json_object");
    char *s = cJSON_PrintUnformatted(b);
    cJSON_Delete(b);
    return s;
}

/* Replaces every byte that does not start a well-formed UTF-8 sequence with '?': reasons quote
 * provider text, cut to fit a buffer, and they end up in Postgres text columns, which refuse
 * anything else (a write refused forever would repeat the job, and its LLM calls, forever). */
static void utf8_clean(char *s)
{
    size_t len = strlen(s);
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        size_t n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : 4;
        if (i + n <= len && pl_is_utf8(s + i, n)) {
            i += n;
        } else {
            s[i++] = '?';
        }
    }
}

static int chat(const cJSON *cfg, const pp_msg *msgs, int n, int json_mode, long timeout_ms,
                char **text, pp_llm_tokens *used, char *why, size_t cap);

int pp_llm_chat(const cJSON *cfg, const pp_msg *msgs, int n, int json_mode, long timeout_ms,
                char **text, pp_llm_tokens *used, char *why, size_t cap)
{
    *used = (pp_llm_tokens){0, 0};
    int rc = chat(cfg, msgs, n, json_mode, timeout_ms, text, used, why, cap);
    if (rc == PL_OK && !pl_is_utf8(*text, strlen(*text))) {
        snprintf(why, cap, "%s answered text that is not valid UTF-8", pp_llm_provider(cfg));
        free(*text);
        *text = NULL;
        rc = PL_ERR_INVALID;
    }
    if (rc != PL_OK)
        utf8_clean(why);
    return rc;
}

/* A token count of the answer's usage object: a number >= 0, else 0. */
static double token_count(const cJSON *usage, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(usage, name);
    return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 1e12 ? v->valuedouble : 0;
}

static int chat(const cJSON *cfg, const pp_msg *msgs, int n, int json_mode, long timeout_ms,
                char **text, pp_llm_tokens *used, char *why, size_t cap)
{
    *text = NULL;
    const char *provider = pp_llm_provider(cfg);
    const char *model = str(cfg, "model");
    if (model == NULL) {
        snprintf(why, cap, "llm_config.model: required for provider %s", provider);
        return PL_ERR_INVALID;
    }
    const char *base = str(cfg, "base_url");
    if (base == NULL && strcmp(provider, "openai") == 0) {
        base = getenv("PL_OPENAI_BASE_URL");
        if (base == NULL || base[0] == '\0')
            base = DEFAULT_BASE;
    }
    if (base == NULL) {
        snprintf(why, cap, "llm_config.base_url: required for provider %s", provider);
        return PL_ERR_INVALID;
    }
    /* The key: llm_config.api_key, else PL_<PROVIDER>_API_KEY; a key of one vendor is never
     * sent to another's base URL by default. */
    char env[64] = "PL_";
    size_t el = 3;
    for (const char *p = provider; *p != '\0' && el + 9 < sizeof(env); p++)
        env[el++] = isalnum((unsigned char)*p) ? (char)toupper((unsigned char)*p) : '_';
    snprintf(env + el, sizeof(env) - el, "_API_KEY");
    const char *key = str(cfg, "api_key");
    if (key == NULL)
        key = getenv(env);

    char url[1024];
    size_t blen = strlen(base);
    while (blen > 0 && base[blen - 1] == '/')
        blen--;
    if (snprintf(url, sizeof(url), "%.*s/chat/completions", (int)blen, base) >= (int)sizeof(url)) {
        snprintf(why, cap, "llm_config.base_url: too long");
        return PL_ERR_INVALID;
    }
    char *body = request_body(cfg, model, msgs, n, json_mode);
    if (body == NULL) {
        snprintf(why, cap, "out of memory");
        return PL_ERR_NOMEM;
    }
    pl_httpc_opts o = {.bearer = key != NULL && key[0] != '\0' ? key : NULL,
                       .timeout_ms = timeout_ms,
                       .max_response = MAX_REPLY};
    pl_httpc_resp r;
    int rc = pl_httpc_post_json(url, body, &o, &r);
    free(body);
    if (rc != PL_OK) {
        snprintf(why, cap, "%s %s: %s", provider, rc == PL_ERR_TIMEOUT ? "timed out" : "failed",
                 r.error);
        pl_httpc_resp_free(&r);
        return rc;
    }
    if (r.status < 200 || r.status > 299) {
        error_text(&r, why, cap);
        pl_httpc_resp_free(&r);
        return PL_ERR_IO;
    }
    cJSON *j = cJSON_Parse(r.body);
    const cJSON *usage = cJSON_GetObjectItemCaseSensitive(j, "usage");
    used->input = token_count(usage, "prompt_tokens");
    used->output = token_count(usage, "completion_tokens");
    const cJSON *choice = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "choices"), 0);
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(choice, "message"), "content");
    if (cJSON_IsString(content)) {
        *text = strdup(content->valuestring);
        rc = *text != NULL ? PL_OK : PL_ERR_NOMEM;
        if (rc != PL_OK)
            snprintf(why, cap, "out of memory");
    } else {
        snprintf(why, cap, "%s answered without choices[0].message.content: %.200s", provider,
                 r.body);
        rc = PL_ERR_INVALID;
    }
    cJSON_Delete(j);
    pl_httpc_resp_free(&r);
    return rc;
}
