/* extract: the agent's post-call tasks over the transcript — extraction (→ extracted_data, a
 * JSON object) and summarization (→ summary, text).
 *
 * Providers: `scripted` answers from its configuration (llm_config.scripted.extraction, an
 * object returned as is, and llm_config.scripted.summary, text; docs/postprocess.md); every other
 * provider is called as OpenAI-compatible (llm.h). A failed call, or an extraction answer that is
 * not a JSON object, is tried once more (after invalid JSON, with the bad answer and a
 * correction in the conversation); a second failure is recorded, never fatal:
 *   extraction     extracted_data = {"error": "<why>"}
 *   summarization  summary stays NULL
 * Both cases are logged, and every request/answer becomes an execution log entry
 * (GET /executions/{id}/log, components "extraction" and "summarization").
 * Tasks run only over a non-empty transcript.
 */
#ifndef PP_EXTRACT_H
#define PP_EXTRACT_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "agent.h"

#define PP_MAX_LOGS 8

/* One execution_logs row. */
typedef struct {
    const char *type;      /* "request" or "response" */
    const char *component; /* "extraction" or "summarization" */
    char *provider;
    char *data;
} pp_log_entry;

#define PP_MAX_TASK_MODELS 4

/* The tokens the tasks' LLM requests consumed, per llm_config.model. */
typedef struct {
    char model[128];
    double input, output;
} pp_task_tokens;

typedef struct {
    cJSON *extracted; /* an object ({"error": ...} after a failure), or NULL: no extraction */
    char *summary;    /* or NULL */
    int failures;     /* tasks that ended in an error */
    pp_log_entry logs[PP_MAX_LOGS];
    int nlogs;
    pp_task_tokens tokens[PP_MAX_TASK_MODELS]; /* every request's, retries and failures too */
    int ntokens;
} pp_tasks;

/* Facts the built-in scripted summary states. */
typedef struct {
    double duration_s;
    int agent_turns, user_turns;
} pp_call_facts;

/* Runs the agent's enabled tasks. Blocks for up to about 2 x timeout_ms per task. */
void pp_tasks_run(const pp_agent *a, const char *transcript, const pp_call_facts *facts,
                  long timeout_ms, const char *execution_id, pp_tasks *out);
void pp_tasks_free(pp_tasks *t);

/* An LLM answer as one JSON object. Surrounding blanks and a Markdown code fence (```json ...
 * ```) are tolerated, as models add them even when told not to; anything else (prose, an array,
 * trailing text) is refused with the reason in why. Caller owns the result. */
cJSON *pp_parse_json_object(const char *text, char *why, size_t cap);

#endif
