/* extract: see extract.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "extract.h"
#include "llm.h"
#include "log.h"

#define SYSTEM_EXTRACT                                                                             \
    "You extract information from the transcript of a phone call between an AI agent "             \
    "(\"assistant\") and a person (\"user\"). Answer with a single JSON object and nothing "       \
    "else: no prose, no code fences. Use null for anything the call did not reveal."
#define SYSTEM_SUMMARY                                                                             \
    "You summarise the transcript of a phone call between an AI agent (\"assistant\") and a "      \
    "person (\"user\"). Answer with the summary as plain text: a few sentences, no preamble."
#define DEFAULT_SUMMARY_HOW "Say what the call was about, what was agreed and how it ended."

static char *dupf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *dupf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    return s;
}

static void add_log(pp_tasks *t, const char *type, const char *component, const char *provider,
                    char *data)
{
    if (t->nlogs >= PP_MAX_LOGS || data == NULL) {
        free(data);
        return;
    }
    pp_log_entry *e = &t->logs[t->nlogs++];
    e->type = type;
    e->component = component;
    e->provider = strdup(provider);
    e->data = data;
}

cJSON *pp_parse_json_object(const char *text, char *why, size_t cap)
{
    if (text == NULL) {
        snprintf(why, cap, "no answer");
        return NULL;
    }
    const char *s = text;
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
        s++;
    size_t len = strlen(s);
    while (len > 0 &&
           (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r' || s[len - 1] == '\n'))
        len--;
    if (len >= 6 && strncmp(s, "```", 3) == 0 && strncmp(s + len - 3, "```", 3) == 0) {
        const char *nl = memchr(s, '\n', len);
        if (nl != NULL) { /* drop the opening fence line ("```json") and the closing fence */
            len = (size_t)(s + len - 3 - (nl + 1));
            s = nl + 1;
        }
    }
    char *copy = strndup(s, len);
    if (copy == NULL) {
        snprintf(why, cap, "out of memory");
        return NULL;
    }
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithOpts(copy, &end, 1);
    if (j == NULL) {
        size_t at = end != NULL ? (size_t)(end - copy) : 0;
        snprintf(why, cap, "not valid JSON (error near byte %zu of the answer)", at);
    } else if (!cJSON_IsObject(j)) {
        snprintf(why, cap, "valid JSON but not an object");
        cJSON_Delete(j);
        j = NULL;
    }
    free(copy);
    return j;
}

static int is_scripted(const cJSON *cfg)
{
    return strcmp(pp_llm_provider(cfg), "scripted") == 0;
}

/* llm_config.scripted.<key> of the task's llm_config, else of the conversation's. */
static const cJSON *scripted_value(const pp_task *task, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(task->llm_config, "scripted"), key);
    if (v == NULL)
        v = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(task->conversation_llm, "scripted"), key);
    return v;
}

static cJSON *error_object(const char *why)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", why);
    return o;
}

/* llm_config.model for log lines; the call itself refuses a missing one. */
static const char *model_of(const pp_task *task)
{
    const char *m =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(task->llm_config, "model"));
    return m != NULL ? m : "(no model)";
}

/* Adds one request's tokens to the tasks' count of its model (the slots are few: a model beyond
 * them is counted with the last one's name kept, which cannot happen with two tasks). */
static void add_tokens(pp_tasks *t, const char *model, const pp_llm_tokens *used)
{
    if (used->input == 0 && used->output == 0)
        return;
    int i = 0;
    while (i < t->ntokens && strcmp(t->tokens[i].model, model) != 0)
        i++;
    if (i == t->ntokens) {
        if (t->ntokens == PP_MAX_TASK_MODELS)
            i = PP_MAX_TASK_MODELS - 1;
        else
            snprintf(t->tokens[t->ntokens++].model, sizeof(t->tokens[0].model), "%s", model);
    }
    t->tokens[i].input += used->input;
    t->tokens[i].output += used->output;
}

static void run_extraction(const pp_task *task, const char *transcript, long timeout_ms,
                           const char *id, pp_tasks *out)
{
    const char *provider = pp_llm_provider(task->llm_config);
    const char *model = model_of(task);
    char why[600] = "";
    if (is_scripted(task->llm_config)) {
        const cJSON *v = scripted_value(task, "extraction");
        add_log(out, "request", "extraction", provider, dupf("scripted extraction (not an AI)"));
        if (v == NULL) {
            out->extracted = cJSON_CreateObject();
        } else if (cJSON_IsObject(v)) {
            out->extracted = cJSON_Duplicate(v, 1);
        } else {
            snprintf(why, sizeof(why), "llm_config.scripted.extraction: must be an object");
            out->extracted = error_object(why);
        }
        add_log(out, "response", "extraction", provider, cJSON_PrintUnformatted(out->extracted));
    } else if (task->details == NULL) {
        snprintf(why, sizeof(why),
                 "extraction: no extraction_details (nor a prompt for the extraction task)");
        out->extracted = error_object(why);
    } else {
        char *user = dupf("Transcript:\n%s\nWhat to extract:\n%s", transcript, task->details);
        char *fix = NULL, *first = NULL;
        pp_msg msgs[4] = {{"system", SYSTEM_EXTRACT}, {"user", user ? user : ""}};
        int n = 2;
        for (int attempt = 1; attempt <= 2 && out->extracted == NULL; attempt++) {
            char *text = NULL;
            add_log(out, "request", "extraction", provider,
                    attempt == 1 || fix == NULL ? dupf("attempt %d, %s over the transcript: %s",
                                                       attempt, model, task->details)
                                                : dupf("attempt %d, %s: %s", attempt, model, fix));
            pp_llm_tokens used;
            int rc = pp_llm_chat(task->llm_config, msgs, n, 1, timeout_ms, &text, &used, why,
                                 sizeof(why));
            add_tokens(out, model, &used);
            add_log(out, "response", "extraction", provider, strdup(rc == PL_OK ? text : why));
            cJSON *obj = rc == PL_OK ? pp_parse_json_object(text, why, sizeof(why)) : NULL;
            if (obj != NULL) {
                out->extracted = obj;
            } else if (attempt == 1 && rc == PL_OK) {
                /* Show the model its answer and what was wrong with it. */
                first = text;
                text = NULL;
                fix = dupf("That answer was not a valid JSON object (%s). Answer again with only "
                           "the JSON object.\nWhat to extract:\n%s",
                           why, task->details);
                msgs[2] = (pp_msg){"assistant", first};
                msgs[3] = (pp_msg){"user", fix ? fix : ""};
                n = 4;
            }
            free(text);
        }
        if (out->extracted == NULL) {
            char reason[700];
            snprintf(reason, sizeof(reason), "extraction failed twice: %s", why);
            out->extracted = error_object(reason);
            out->failures++;
            PL_WARN("%s: %s", id, reason);
        }
        why[0] = '\0';
        free(user);
        free(fix);
        free(first);
    }
    if (why[0] != '\0') {
        out->failures++;
        PL_WARN("%s: %s", id, why);
    }
}

static void run_summary(const pp_task *task, const char *transcript, const pp_call_facts *f,
                        long timeout_ms, const char *id, pp_tasks *out)
{
    const char *provider = pp_llm_provider(task->llm_config);
    const char *model = model_of(task);
    if (is_scripted(task->llm_config)) {
        const cJSON *v = scripted_value(task, "summary");
        add_log(out, "request", "summarization", provider, dupf("scripted summary (not an AI)"));
        if (cJSON_IsString(v))
            out->summary = strdup(v->valuestring);
        else
            out->summary = dupf("A call of %.0f seconds: %d turn(s) by the agent and %d by the "
                                "caller. (Scripted summary, not an AI.)",
                                f->duration_s, f->agent_turns, f->user_turns);
        add_log(out, "response", "summarization", provider,
                out->summary ? strdup(out->summary) : NULL);
        return;
    }
    char why[600] = "";
    char *user = dupf("Transcript:\n%s\nHow to summarise:\n%s", transcript,
                      task->details != NULL ? task->details : DEFAULT_SUMMARY_HOW);
    pp_msg msgs[2] = {{"system", SYSTEM_SUMMARY}, {"user", user ? user : ""}};
    for (int attempt = 1; attempt <= 2 && out->summary == NULL; attempt++) {
        char *text = NULL;
        add_log(out, "request", "summarization", provider,
                dupf("attempt %d, %s over the transcript: %s", attempt, model,
                     task->details != NULL ? task->details : DEFAULT_SUMMARY_HOW));
        pp_llm_tokens used;
        int rc =
            pp_llm_chat(task->llm_config, msgs, 2, 0, timeout_ms, &text, &used, why, sizeof(why));
        add_tokens(out, model, &used);
        if (rc == PL_OK && text[strspn(text, " \t\r\n")] == '\0') {
            snprintf(why, sizeof(why), "%s answered an empty summary", provider);
            rc = PL_ERR_INVALID;
        }
        add_log(out, "response", "summarization", provider, strdup(rc == PL_OK ? text : why));
        if (rc == PL_OK) {
            out->summary = text;
            text = NULL;
        }
        free(text);
    }
    free(user);
    if (out->summary == NULL) {
        out->failures++;
        PL_WARN("%s: summarization failed twice: %s", id, why);
    }
}

void pp_tasks_run(const pp_agent *a, const char *transcript, const pp_call_facts *facts,
                  long timeout_ms, const char *execution_id, pp_tasks *out)
{
    memset(out, 0, sizeof(*out));
    if (transcript == NULL || transcript[0] == '\0') {
        if (a->extraction.enabled || a->summarization.enabled)
            PL_INFO("%s: no transcript; extraction and summary skipped", execution_id);
        return;
    }
    if (a->extraction.enabled)
        run_extraction(&a->extraction, transcript, timeout_ms, execution_id, out);
    if (a->summarization.enabled)
        run_summary(&a->summarization, transcript, facts, timeout_ms, execution_id, out);
}

void pp_tasks_free(pp_tasks *t)
{
    cJSON_Delete(t->extracted);
    free(t->summary);
    for (int i = 0; i < t->nlogs; i++) {
        free(t->logs[i].provider);
        free(t->logs[i].data);
    }
    memset(t, 0, sizeof(*t));
}
