/* job: one execution's post-processing, from claim to the published completion (pp.h).
 *
 * Order: claim (store.h) -> load -> wait for the media-pipeline's figures (re-queued, never a
 * sleeping worker) -> transcript, duration, usage -> extraction and summary (may block on an
 * LLM; their tokens join the usage) -> cost -> recording URL -> finalize (finalize.h) -> publish ->
 * unclaim. Every step before finalize only reads, so a crash anywhere repeats work and never writes
 * twice.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "extract.h"
#include "finalize.h"
#include "log.h"
#include "pp.h"
#include "queue.h"
#include "recording.h"
#include "store.h"
#include "transcript.h"
#include "usage.h"

/* How often a job waiting for the media-pipeline's figures looks again. */
#define MEDIA_POLL_MS 100
/* After a failed job (a database error), when this process tries that execution again. The
 * entry stays queued meanwhile, so the sweep does not bring it back sooner: a failure that
 * persists costs one attempt (and its LLM calls) per replica per period, not one per sweep. */
#define ERROR_RETRY_MS 10000

/* telephony_data.duration: a number, or a numeric string (as Bolna renders it); -1 if neither. */
static double telephony_duration(const cJSON *t)
{
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(t, "duration");
    if (cJSON_IsNumber(d))
        return d->valuedouble;
    if (cJSON_IsString(d)) {
        char *end;
        double v = strtod(d->valuestring, &end);
        if (end != d->valuestring && *end == '\0' && isfinite(v))
            return v;
    }
    return -1;
}

static const char *carrier(const pp_exec *e)
{
    const char *p =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e->telephony, "provider"));
    return p != NULL && p[0] != '\0' ? p : e->provider;
}

/* Everything but the database write: fills f and the buffers it points into. */
typedef struct {
    pp_agent agent;
    pp_tasks tasks;
    cJSON *usage;
    char *usage_json, *cost_json, *transcript, *extracted_json;
    char url[1024];
    pp_cost cost;
} assembled;

static void assembled_free(assembled *a)
{
    pp_agent_free(&a->agent);
    pp_tasks_free(&a->tasks);
    cJSON_Delete(a->usage);
    free(a->usage_json);
    free(a->cost_json);
    free(a->transcript);
    free(a->extracted_json);
}

static int assemble(pp *app, const pp_exec *e, assembled *a, pp_final *f)
{
    char why[256];
    memset(a, 0, sizeof(*a));
    if (pp_agent_parse(e->config_json, e->prompts_json, &a->agent, why, sizeof(why)) != 0)
        PL_WARN("%s: agent %s: %s; completing without extraction or summary", e->id, e->agent_id,
                why); /* the agent is then empty: default usage, no tasks */
    a->transcript = pp_transcript_text(e->turns, e->nturns);
    a->usage = pp_usage_normalize(e->usage_json, &a->agent);
    if (a->transcript == NULL || a->usage == NULL)
        return PL_ERR_NOMEM;
    pp_cost_input in = {.duration_s = pp_conversation_duration(telephony_duration(e->telephony),
                                                               e->turns, e->nturns),
                        .carrier = carrier(e)};
    pp_call_facts facts = {.duration_s = in.duration_s};
    for (int i = 0; i < e->nturns; i++) {
        if (strcmp(e->turns[i].role, "assistant") == 0)
            facts.agent_turns++;
        else
            facts.user_turns++;
    }
    pp_tasks_run(&a->agent, a->transcript, &facts, app->cfg.llm_timeout_ms, e->id, &a->tasks);
    pl_metric_add(app->stats.task_failures, a->tasks.failures);
    /* The tasks' tokens are the call's too: priced with the conversation's. */
    for (int i = 0; i < a->tasks.ntokens; i++)
        pp_usage_add_llm(a->usage, a->tasks.tokens[i].model, a->tasks.tokens[i].input,
                         a->tasks.tokens[i].output);
    pp_usage_cost_input(a->usage, &a->agent, &in);
    pp_cost_compute(&app->pricing, &in, &a->cost);
    cJSON *cost = pp_cost_json(&a->cost);
    a->cost_json = cJSON_PrintUnformatted(cost);
    cJSON_Delete(cost);
    a->usage_json = cJSON_PrintUnformatted(a->usage);
    if (a->tasks.extracted != NULL)
        a->extracted_json = cJSON_PrintUnformatted(a->tasks.extracted);

    if (e->recording_path != NULL &&
        pl_recording_url(a->url, sizeof(a->url), app->cfg.public_api_url, app->cfg.recording_key,
                         e->id, pl_now_ms() / 1000 + app->cfg.recording_ttl_s) != PL_OK) {
        PL_WARN("%s: recording URL longer than %zu bytes; none given", e->id, sizeof(a->url));
        a->url[0] = '\0';
    }
    if (a->cost_json == NULL || a->usage_json == NULL ||
        (a->tasks.extracted != NULL && a->extracted_json == NULL))
        return PL_ERR_NOMEM;
    *f = (pp_final){.execution_id = e->id,
                    .duration_s = in.duration_s,
                    .total_hundredths = a->cost.total,
                    .cost_json = a->cost_json,
                    .usage_json = a->usage_json,
                    .transcript = a->transcript,
                    .extracted_json = a->extracted_json,
                    .summary = a->tasks.summary,
                    .recording_url = a->url[0] != '\0' ? a->url : NULL,
                    .logs = a->tasks.logs,
                    .nlogs = a->tasks.nlogs};
    return PL_OK;
}

/* The job proper, with the claim held. Returns PL_OK, or an error after which the job should
 * be tried again later. */
static int process(pp *app, pl_dbconn *c, const char *id, int64_t *retry_at_ms)
{
    pp_exec e;
    int64_t loaded_at = pl_now_ms();
    int rc = pp_load(c, id, &e);
    if (rc == PL_ERR_NOTFOUND) {
        PL_WARN("%s: no such execution; dropped", id);
        return PL_OK;
    }
    if (rc != PL_OK)
        return rc;
    if (e.status != PL_ST_CALL_DISCONNECTED)
        goto out; /* done already (here or by another replica), or never ours */
    if (e.usage_json == NULL && e.waited_ms < app->cfg.media_wait_ms) {
        int64_t left = app->cfg.media_wait_ms - e.waited_ms;
        *retry_at_ms = pl_now_ms() + (left < MEDIA_POLL_MS ? left : MEDIA_POLL_MS);
        goto out;
    }
    if (e.usage_json == NULL) {
        pl_metric_add(app->stats.without_media, 1);
        PL_INFO("%s: no figures from the media-pipeline %lld ms after call-disconnected; going on "
                "without them",
                id, (long long)e.waited_ms);
    }
    if ((rc = pp_load_turns(c, &e)) != PL_OK)
        goto out;
    assembled a;
    pp_final f;
    rc = assemble(app, &e, &a, &f);
    pl_transition t;
    if (rc == PL_OK)
        rc = pp_finalize(c, &f, &t);
    if (rc == PL_OK) {
        pl_state_publish(app->svc.bus, &t);
        pl_metric_add(app->stats.completed, 1);
        pl_histogram_observe(app->stats.latency,
                             (double)(e.waited_ms + pl_now_ms() - loaded_at) / 1000.0);
        PL_INFO("%s: completed: %.1f s, total_cost %.2f cents, %d turn(s)%s", id, f.duration_s,
                (double)f.total_hundredths / 100.0, e.nturns,
                a.tasks.failures ? ", with a failed post-call task" : "");
    } else if (rc == PL_ERR_CONFLICT) {
        rc = PL_OK; /* moved on meanwhile: nothing to do */
    }
    assembled_free(&a);
out:
    pp_exec_free(&e);
    return rc;
}

void pp_job_run(pp *app, const char *id, int64_t *retry_at_ms)
{
    *retry_at_ms = 0;
    pl_dbconn *c = pl_db_acquire(app->svc.db);
    int claimed = pp_claim(c, id), rc = PL_OK;
    if (claimed == 1) {
        rc = process(app, c, id, retry_at_ms);
        pp_unclaim(c, id);
    } else if (claimed == 0) {
        pl_metric_add(app->stats.contended, 1);
    } else {
        rc = PL_ERR_DB;
    }
    pl_db_release(app->svc.db, c);
    if (rc != PL_OK) {
        pl_metric_add(app->stats.errors, 1);
        PL_ERROR("%s: post-processing failed (%s); trying again in %d s", id, pl_strerror(rc),
                 ERROR_RETRY_MS / 1000);
        *retry_at_ms = pl_now_ms() + ERROR_RETRY_MS;
    }
}
