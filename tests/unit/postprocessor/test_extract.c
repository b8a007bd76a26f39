/* extract and agent: where tasks are found in an agent, the scripted provider, and the
 * OpenAI-compatible path against a small server in this process (valid JSON, a fenced answer,
 * invalid JSON retried with a correction, invalid twice recorded as an error, HTTP errors). */
#include <stdatomic.h>
#include <unistd.h>

#include "agent.h"
#include "check.h"
#include "extract.h"
#include "http.h"
#include "validate.h"

static int port;
static atomic_int requests;
static char last_auth[128];

static int reply_content(pl_req *r, const char *content)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *choice = cJSON_CreateObject();
    cJSON_AddStringToObject(cJSON_AddObjectToObject(choice, "message"), "content", content);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "choices"), choice);
    cJSON *usage = cJSON_AddObjectToObject(o, "usage"); /* as OpenAI reports it */
    cJSON_AddNumberToObject(usage, "prompt_tokens", 100);
    cJSON_AddNumberToObject(usage, "completion_tokens", 7);
    cJSON_AddNumberToObject(usage, "total_tokens", 107);
    int st = pl_http_cjson(r, 200, o);
    cJSON_Delete(o);
    return st;
}

/* Answers by what the request asks for (the words are in the extraction details). */
static int h_chat(pl_req *r)
{
    char *body;
    size_t len;
    if (pl_http_body(r, &body, &len) != 0)
        return 413;
    atomic_fetch_add(&requests, 1);
    const char *auth = pl_http_header(r, "Authorization");
    snprintf(last_auth, sizeof(last_auth), "%s", auth ? auth : "-");
    int st;
    int corrected = strstr(body, "not a valid JSON object") != NULL;
    if (strstr(body, "json_object") == NULL && strstr(body, "WANT-SUMMARY") == NULL)
        st = pl_http_error(r, 400, "extraction must ask for response_format json_object");
    else if (strstr(body, "WANT-GOOD"))
        st = reply_content(r, "{\"name\": \"Bruce\", \"day\": \"tuesday\"}");
    else if (strstr(body, "WANT-FENCED"))
        st = reply_content(r, "```json\n{\"ok\": true}\n```\n");
    else if (strstr(body, "WANT-FIXABLE"))
        st = reply_content(r, corrected ? "{\"fixed\": 1}" : "Sure! The name is Bruce.");
    else if (strstr(body, "WANT-BAD"))
        st = reply_content(r, "[1, 2]");
    else if (strstr(body, "WANT-NOT-UTF8"))
        st = reply_content(r, "{\"name\": \"\xff\xfe\"}");
    else if (strstr(body, "WANT-503-LATIN1"))
        st = pl_http_json(r, 503, "{\"error\":{\"message\":\"caf\xe9 closed\"}}");
    else if (strstr(body, "WANT-500"))
        st = pl_http_json(r, 500, "{\"error\":{\"message\":\"upstream exploded\"}}");
    else if (strstr(body, "WANT-SUMMARY"))
        st = reply_content(r, "The caller booked Tuesday.");
    else
        st = reply_content(r, "?");
    free(body);
    return st;
}

static const pl_route routes[] = {{"POST", "/v1/chat/completions", h_chat, "chat"}};

/* An agent whose conversation task uses `conv_llm` and which has an extraction task with
 * `extraction_llm` (NULL: no extraction task). */
static void make_agent(pp_agent *a, const char *conv_llm, const char *extraction_llm,
                       const char *prompts)
{
    char cfg[4096];
    snprintf(cfg, sizeof(cfg),
             "{\"agent_name\":\"t\",\"tasks\":[{\"task_type\":\"conversation\",\"tools_config\":{"
             "\"llm_agent\":{\"llm_config\":%s},"
             "\"transcriber\":{\"provider\":\"deepgram\",\"model\":\"nova-2\"},"
             "\"synthesizer\":{\"provider\":\"elevenlabs\",\"provider_config\":{\"voice\":\"v\","
             "\"model\":\"eleven_turbo_v2_5\"}}}}%s%s%s]}",
             conv_llm,
             extraction_llm ? ",{\"task_type\":\"extraction\",\"tools_config\":{"
                              "\"llm_agent\":{\"llm_config\":"
                            : "",
             extraction_llm ? extraction_llm : "", extraction_llm ? "}}}" : "");
    char err[256];
    int rc = pp_agent_parse(cfg, prompts, a, err, sizeof(err));
    CHECK(rc == 0);
    if (rc != 0)
        printf("    %s\n    %s\n", err, cfg);
}

static void openai_llm(char *buf, size_t cap, const char *details)
{
    snprintf(buf, cap,
             "{\"provider\":\"openai\",\"model\":\"gpt-4o-mini\",\"api_key\":\"sk-unit\","
             "\"base_url\":\"http://127.0.0.1:%d/v1\",\"extraction_details\":\"%s\"}",
             port, details);
}

static void where_tasks_are_found(void)
{
    pp_agent a;
    /* extraction_details on the conversation's llm_config (Bolna's other place) */
    make_agent(&a, "{\"provider\":\"scripted\",\"extraction_details\":\"name\"}", NULL, NULL);
    CHECK(a.extraction.enabled && !a.summarization.enabled);
    CHECK_STR(a.extraction.details, "name");
    CHECK(a.extraction.llm_config == a.conversation_llm);
    CHECK_STR(a.transcriber_provider, "deepgram");
    CHECK_STR(a.transcriber_model, "nova-2");
    CHECK_STR(a.synthesizer_provider, "elevenlabs");
    CHECK_STR(a.synthesizer_model, "eleven_turbo_v2_5");
    pp_agent_free(&a);
    /* an extraction task with its own model; details from its prompt */
    make_agent(&a, "{\"provider\":\"scripted\"}", "{\"provider\":\"openai\",\"model\":\"m\"}",
               "{\"task_1\":{\"system_prompt\":\"talk\"},\"task_2\":{\"system_prompt\":\"get "
               "the day\"}}");
    CHECK(a.extraction.enabled);
    CHECK_STR(a.extraction.details, "get the day");
    CHECK(a.extraction.llm_config != a.conversation_llm);
    pp_agent_free(&a);
    /* an extraction task without a model of its own uses the conversation's */
    make_agent(&a, "{\"provider\":\"scripted\"}", "{\"extraction_details\":\"x\"}", NULL);
    CHECK(a.extraction.enabled && a.extraction.llm_config == a.conversation_llm);
    CHECK_STR(a.extraction.details, "x");
    pp_agent_free(&a);
    /* no task, no details: nothing runs */
    make_agent(&a, "{\"provider\":\"scripted\"}", NULL, NULL);
    CHECK(!a.extraction.enabled && !a.summarization.enabled);
    pp_agent_free(&a);
    char err[128];
    CHECK(pp_agent_parse("[1]", NULL, &a, err, sizeof(err)) == -1);
    CHECK(pp_agent_parse(NULL, NULL, &a, err, sizeof(err)) == -1);
    CHECK(strstr(err, "missing") != NULL);
}

static void scripted_answers_as_configured(void)
{
    pp_agent a;
    make_agent(&a,
               "{\"provider\":\"scripted\",\"extraction_details\":\"name\","
               "\"summarization_details\":\"short\",\"scripted\":{\"extraction\":"
               "{\"name\":\"Bruce\",\"n\":2},\"summary\":\"A scripted summary.\"}}",
               NULL, NULL);
    pp_call_facts f = {12, 2, 1};
    pp_tasks t;
    pp_tasks_run(&a, "assistant: hi\nuser: yo\n", &f, 1000, "e1", &t);
    char *s = cJSON_PrintUnformatted(t.extracted);
    CHECK_STR(s, "{\"name\":\"Bruce\",\"n\":2}");
    free(s);
    CHECK_STR(t.summary, "A scripted summary.");
    CHECK(t.failures == 0 && t.nlogs == 4);
    CHECK_STR(t.logs[1].data, "{\"name\":\"Bruce\",\"n\":2}");
    CHECK_STR(t.logs[1].component, "extraction");
    pp_tasks_free(&t);
    /* no transcript: no tasks */
    pp_tasks_run(&a, "", &f, 1000, "e1", &t);
    CHECK(t.extracted == NULL && t.summary == NULL && t.nlogs == 0);
    pp_tasks_free(&t);
    pp_agent_free(&a);
    /* built-in summary; missing extraction -> {} */
    make_agent(&a,
               "{\"provider\":\"scripted\",\"extraction_details\":\"x\","
               "\"summarization_details\":\"y\"}",
               NULL, NULL);
    pp_tasks_run(&a, "user: yo\n", &f, 1000, "e1", &t);
    s = cJSON_PrintUnformatted(t.extracted);
    CHECK_STR(s, "{}");
    free(s);
    CHECK(strstr(t.summary, "12 seconds: 2 turn(s) by the agent and 1 by the caller") != NULL);
    pp_tasks_free(&t);
    pp_agent_free(&a);
}

/* Tokens the last extract_with counted for its model ("gpt-4o-mini" in openai_llm). */
static double tokens_in, tokens_out;

static cJSON *extract_with(const char *details, int *failures, int *nreq)
{
    char llm[1024];
    openai_llm(llm, sizeof(llm), details);
    pp_agent a;
    make_agent(&a, llm, NULL, NULL);
    pp_call_facts f = {0};
    pp_tasks t;
    atomic_store(&requests, 0);
    pp_tasks_run(&a, "assistant: hello\nuser: I am Bruce\n", &f, 2000, "e2", &t);
    *failures = t.failures;
    *nreq = atomic_load(&requests);
    tokens_in = tokens_out = 0;
    CHECK(t.ntokens <= 1);
    if (t.ntokens == 1) {
        CHECK_STR(t.tokens[0].model, "gpt-4o-mini");
        tokens_in = t.tokens[0].input;
        tokens_out = t.tokens[0].output;
    }
    cJSON *out = t.extracted;
    t.extracted = NULL;
    pp_tasks_free(&t);
    pp_agent_free(&a);
    return out;
}

static void openai_extraction(void)
{
    int failures, n;
    cJSON *x = extract_with("WANT-GOOD", &failures, &n);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(x, "name")), "Bruce");
    CHECK(failures == 0 && n == 1);
    CHECK(tokens_in == 100 && tokens_out == 7);
    CHECK_STR(last_auth, "Bearer sk-unit");
    cJSON_Delete(x);

    x = extract_with("WANT-FENCED", &failures, &n);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(x, "ok")) && n == 1);
    cJSON_Delete(x);

    x = extract_with("WANT-FIXABLE", &failures, &n); /* prose, then fixed after the correction */
    CHECK(cJSON_GetObjectItem(x, "fixed") != NULL && failures == 0 && n == 2);
    CHECK(tokens_in == 200 && tokens_out == 14); /* the unusable first answer was paid for too */
    cJSON_Delete(x);

    x = extract_with("WANT-BAD", &failures, &n); /* an array twice: recorded, not fatal */
    const char *e = cJSON_GetStringValue(cJSON_GetObjectItem(x, "error"));
    CHECK(e != NULL && strstr(e, "extraction failed twice") && strstr(e, "not an object"));
    CHECK(failures == 1 && n == 2);
    CHECK(tokens_in == 200 && tokens_out == 14);
    cJSON_Delete(x);

    /* Text Postgres would refuse never reaches it: bad answers fail, reasons are cleaned. */
    x = extract_with("WANT-NOT-UTF8", &failures, &n);
    e = cJSON_GetStringValue(cJSON_GetObjectItem(x, "error"));
    CHECK(e != NULL && strstr(e, "not valid UTF-8") && failures == 1);
    cJSON_Delete(x);
    x = extract_with("WANT-503-LATIN1", &failures, &n);
    e = cJSON_GetStringValue(cJSON_GetObjectItem(x, "error"));
    CHECK(e != NULL && strstr(e, "HTTP 503: caf? closed") && pl_is_utf8(e, strlen(e)));
    cJSON_Delete(x);

    x = extract_with("WANT-500", &failures, &n);
    e = cJSON_GetStringValue(cJSON_GetObjectItem(x, "error"));
    CHECK(e != NULL && strstr(e, "HTTP 500: upstream exploded"));
    CHECK(failures == 1 && n == 2);
    CHECK(tokens_in == 0 && tokens_out == 0); /* errors bill nothing */
    cJSON_Delete(x);
}

static void openai_summary_and_unreachable(void)
{
    char llm[1024];
    snprintf(llm, sizeof(llm),
             "{\"provider\":\"groq\",\"model\":\"llama\",\"base_url\":\"http://127.0.0.1:%d/v1\","
             "\"summarization_details\":\"WANT-SUMMARY\"}",
             port);
    pp_agent a;
    make_agent(&a, llm, NULL, NULL);
    pp_call_facts f = {0};
    pp_tasks t;
    pp_tasks_run(&a, "user: hi\n", &f, 2000, "e3", &t);
    CHECK_STR(t.summary, "The caller booked Tuesday.");
    CHECK(t.extracted == NULL && t.failures == 0);
    CHECK(t.ntokens == 1 && t.tokens[0].input == 100 && t.tokens[0].output == 7);
    CHECK_STR(t.tokens[0].model, "llama");
    CHECK_STR(last_auth, "-"); /* no api_key, no PL_GROQ_API_KEY: no Authorization */
    pp_tasks_free(&t);
    pp_agent_free(&a);
    /* nothing listens on port 1: the summary stays NULL, the failure is counted */
    make_agent(&a,
               "{\"provider\":\"vllm\",\"model\":\"m\",\"base_url\":\"http://127.0.0.1:1/v1\","
               "\"summarization_details\":\"x\"}",
               NULL, NULL);
    pp_tasks_run(&a, "user: hi\n", &f, 2000, "e4", &t);
    CHECK(t.summary == NULL && t.failures == 1 && t.nlogs == 4);
    pp_tasks_free(&t);
    pp_agent_free(&a);
    /* a provider without base_url is a configuration error, recorded */
    make_agent(&a, "{\"provider\":\"groq\",\"model\":\"m\",\"extraction_details\":\"x\"}", NULL,
               NULL);
    pp_tasks_run(&a, "user: hi\n", &f, 2000, "e5", &t);
    const char *e = cJSON_GetStringValue(cJSON_GetObjectItem(t.extracted, "error"));
    CHECK(e != NULL && strstr(e, "llm_config.base_url: required for provider groq"));
    pp_tasks_free(&t);
    pp_agent_free(&a);
}

static void json_answers(void)
{
    char why[128];
    cJSON *j = pp_parse_json_object("  {\"a\": 1}\n", why, sizeof(why));
    CHECK(j != NULL);
    cJSON_Delete(j);
    j = pp_parse_json_object("```\n{\"a\": 1}\n```", why, sizeof(why));
    CHECK(j != NULL);
    cJSON_Delete(j);
    CHECK(pp_parse_json_object("{\"a\": 1} and more", why, sizeof(why)) == NULL);
    CHECK(strstr(why, "not valid JSON") != NULL);
    CHECK(pp_parse_json_object("\"text\"", why, sizeof(why)) == NULL);
    CHECK(strstr(why, "not an object") != NULL);
    CHECK(pp_parse_json_object("", why, sizeof(why)) == NULL);
    CHECK(pp_parse_json_object(NULL, why, sizeof(why)) == NULL);
}

int main(void)
{
    pl_http *h = NULL;
    for (int i = 0; i < 50 && h == NULL; i++) {
        char p[32];
        port = 20000 + (int)((getpid() + i * 7919) % 20000);
        snprintf(p, sizeof(p), "127.0.0.1:%d", port);
        pl_http_opts o = {.port = p, .threads = 4, .keepalive_ms = 1000, .max_body = 1 << 20};
        h = pl_http_start(&o, routes, 1, NULL);
    }
    if (h == NULL) {
        printf("cannot start the test server\n");
        return 2;
    }
    RUN(where_tasks_are_found);
    RUN(scripted_answers_as_configured);
    RUN(openai_extraction);
    RUN(openai_summary_and_unreachable);
    RUN(json_answers);
    pl_http_stop(h);
    return check_summary();
}
